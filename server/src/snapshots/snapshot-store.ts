/**
 * The snapshot store as the rest of the server sees it: save a workspace tarball (a gzip tar
 * stream from sandboxd's `GET /archive?path=.&gzip=true`), find it, stream it back for a restore
 * (`PUT /archive?path=.&gzip=true`), delete it. Snapshots may carry a key (e.g. an agent session):
 * a key's saves form a line of versions with a head that only moves by compare-and-swap, and only
 * to a snapshot whose bytes were fully stored. One implementation (catalog.ts) over three blob
 * backends; `createSnapshotStore` (create-snapshot-store.ts) picks them from the config.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';

/** Snapshot ids are UUIDs minted by the store; anything else names no snapshot. */
export const snapshotIdSchema = z.uuid();

/** Printable ASCII without spaces, e.g. `session:42/main`; validated at the API edge. */
export const snapshotKeySchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'a snapshot key is 1-256 printable ASCII characters, no spaces');

export const snapshotRecordSchema = z.object({
  id: snapshotIdSchema,
  /** Null for a one-off snapshot outside any key's line of versions. */
  key: snapshotKeySchema.nullable(),
  /** 1, 2, ... along a key's line (the head's version + 1); null without a key. */
  version: z.number().int().positive().nullable(),
  sandboxId: z.string(),
  type: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.iso.datetime(),
  backend: z.enum(['local', 'oss', 'redis']),
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
