/**
 * The snapshot store as the rest of the server sees it: save a workspace tarball (a gzip tar
 * stream from sandboxd's `GET /archive?path=.&gzip=true`), find it, stream it back for a restore
 * (`PUT /archive?path=.&gzip=true`), delete it. Snapshots may carry a key (e.g. an agent session):
 * a key's saves form a line of versions with a head that only moves by compare-and-swap, and only
 * to a snapshot whose bytes were fully stored. One implementation (catalog.ts) over three blob
 * backends; `createSnapshotStore` (create-snapshot-store.ts) picks them from the config.
 */
import type { Readable } from 'node:stream';
import { snapshotInfoSchema, snapshotKeySchema } from '@runtime-sandbox/contract';
import { z } from 'zod';
import { tenantIdSchema } from '../tenants/api-keys.js';

/**
 * A key as the store keeps it: a caller's key as given for the admin, `<tenantId> <key>` for a
 * tenant's (tenantKey). No caller key holds a space, so no key of one tenant, or of the admin, can
 * name another tenant's line of versions.
 */
export const storedSnapshotKeySchema = z.string().refine(
  (stored) => {
    const space = stored.indexOf(' ');
    if (space < 0) return snapshotKeySchema.safeParse(stored).success;
    return (
      tenantIdSchema.safeParse(stored.slice(0, space)).success &&
      snapshotKeySchema.safeParse(stored.slice(space + 1)).success
    );
  },
  { message: 'a stored snapshot key is a snapshot key, or a tenant id, a space and a snapshot key' },
);

/** The stored key of a caller's key: the admin's (tenant null) as given, a tenant's in its namespace. */
export function tenantKey(tenantId: string | null, key: string): string {
  return tenantId === null ? key : `${tenantId} ${key}`;
}

/** Why `stored` is not tenantKey(tenantId, key) of a valid caller key; undefined when it is. */
export function storedKeyProblem(tenantId: string | null, stored: string): string | undefined {
  if (tenantId !== null && !stored.startsWith(`${tenantId} `)) {
    return `not in the namespace of tenant "${tenantId}"`;
  }
  return snapshotKeySchema.safeParse(callerKeyOf(tenantId, stored)).error?.issues[0]?.message;
}

/** The caller's key of a stored one (tenantKey undone). */
export function callerKeyOf(tenantId: string | null, stored: string): string {
  return tenantId === null ? stored : stored.slice(tenantId.length + 1);
}

/** A snapshot as the store keeps it: what callers see, with the stored key and the owner. */
export const snapshotRecordSchema = snapshotInfoSchema.extend({
  /** Null for a one-off snapshot outside any key's line of versions; a stored key otherwise. */
  key: storedSnapshotKeySchema.nullable(),
  /** The tenant that owns it; null for the admin's (records from before tenants have none). */
  tenantId: tenantIdSchema.nullable().default(null),
});

export type SnapshotRecord = z.infer<typeof snapshotRecordSchema>;

export interface SaveSnapshotInput {
  /** Omit (or null) for a one-off snapshot. */
  key?: string | null;
  /**
   * The head the caller believes the key has: the save wins only if the head is still that
   * (null: the key must have no head yet). Omitted: the head read just before the upload.
   */
  expectedHead?: string | null;
  /** The gzip tar bytes; consumed once, never held whole. */
  stream: AsyncIterable<Uint8Array>;
  sandboxId: string;
  type: string;
  /** The owner; null (the default) for the admin. */
  tenantId?: string | null;
}

export interface OpenedSnapshot {
  record: SnapshotRecord;
  /**
   * The bytes, checked against the record's sha256 and size as they go by: on a mismatch or a read
   * failure the stream errors (RESTORE_FAILED) instead of ending, so a consumer that treats only a
   * clean end as success never restores a corrupted snapshot.
   */
  stream: Readable;
}

export interface SnapshotStore {
  readonly backend: SnapshotRecord['backend'];
  /**
   * Stores the bytes under a fresh id, then (with a key) moves the key's head to it by CAS and
   * collects versions beyond the retention count. Throws SNAPSHOT_CONFLICT when the head moved
   * (the bytes are deleted again), SNAPSHOT_FAILED when the bytes could not be stored (nothing
   * changes), PAYLOAD_TOO_LARGE over a backend's size cap.
   */
  save(input: SaveSnapshotInput): Promise<SnapshotRecord>;
  /** Throws SNAPSHOT_NOT_FOUND. */
  get(id: string): Promise<SnapshotRecord>;
  /** The key's head, or null when the key has none. */
  latest(key: string): Promise<SnapshotRecord | null>;
  /** Newest first: by version within a key, by creation time otherwise. */
  list(filter?: { key?: string }): Promise<SnapshotRecord[]>;
  /** Throws SNAPSHOT_NOT_FOUND (also when the bytes are gone, e.g. expired in Redis). */
  open(id: string): Promise<OpenedSnapshot>;
  /**
   * Deletes the snapshot; deleting a key's head moves the head to the key's previous version, or
   * clears it when none is left. Throws SNAPSHOT_NOT_FOUND. Returns what was deleted.
   */
  delete(id: string): Promise<SnapshotRecord>;
  close(): Promise<void>;
}
