/** Snapshots of a sandbox's workspace as callers see them: ids, keys, requests and answers. */
import { z } from 'zod';

/** Snapshot ids are UUIDs minted by the store; anything else names no snapshot. */
export const snapshotIdSchema = z.uuid();

/** Printable ASCII without spaces, e.g. `session:42/main`. */
export const snapshotKeySchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'a snapshot key is 1-256 printable ASCII characters, no spaces');

/** Where the server keeps snapshot bytes (its `FILE_SYSTEM`). */
export const snapshotBackendSchema = z.enum(['local', 'oss', 'redis']);
export type SnapshotBackend = z.output<typeof snapshotBackendSchema>;

export const snapshotInfoSchema = z
  .object({
    /** A UUID. */
    id: snapshotIdSchema,
    /** The key whose line of versions it is on, or null for a one-off snapshot. */
    key: snapshotKeySchema.nullable().describe('The key whose line of versions it is on; null for a one-off'),
    /** 1, 2, ... along its key's line (the head's version + 1); null without a key. */
    version: z.number().int().positive().nullable(),
    /** The sandbox it was taken from. */
    sandboxId: z.string(),
    /** That sandbox's type. */
    type: z.string(),
    /** Size of the stored archive, bytes. */
    sizeBytes: z.number().int().nonnegative(),
    /** Lowercase hex sha256 of the stored archive; every restore checks it. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    /** ISO 8601. */
    createdAt: z.iso.datetime(),
    backend: snapshotBackendSchema,
  })
  .describe("A stored workspace snapshot (a gzipped tar); `version` counts along its key's line");
/** A stored snapshot of a sandbox's workspace (a gzipped tar). */
export type SnapshotInfo = z.output<typeof snapshotInfoSchema>;

export const snapshotListSchema = z.object({ snapshots: z.array(snapshotInfoSchema) });

export const snapshotListQuerySchema = z.object({
  /** Only this key's versions, newest first. */
  key: snapshotKeySchema.optional().describe("Only this key's versions, newest first"),
});
/** `GET /v1/snapshots` query. */
export type ListSnapshotsFilter = z.input<typeof snapshotListQuerySchema>;

/** What `expectedHead` means, for the snapshot request and the release query alike. */
export const EXPECTED_HEAD =
  "Compare-and-swap on the key's head: the snapshot id the head must still be when this snapshot lands " +
  '(SNAPSHOT_CONFLICT otherwise); omitted: the head read when the snapshot starts';

export const snapshotRequestSchema = z
  .strictObject({
    /** Add the snapshot to this key's line of versions as its new head; omitted: a one-off snapshot. */
    key: snapshotKeySchema
      .optional()
      .describe('Adds the snapshot to this key as its new head; omitted: a one-off snapshot'),
    /**
     * Compare-and-swap on the key's head: the snapshot id the head must still be when this snapshot
     * lands (null: the key must have no snapshot yet), else ConflictError SNAPSHOT_CONFLICT and
     * nothing changes. Omitted: the head as the server reads it when the snapshot starts.
     */
    expectedHead: snapshotIdSchema
      .nullable()
      .optional()
      .describe(`${EXPECTED_HEAD}; null: the key must have no snapshot yet`),
  })
  .refine((request) => request.expectedHead === undefined || request.key !== undefined, {
    message: 'expectedHead needs a key',
    path: ['expectedHead'],
  });
/** `POST /v1/sandboxes/:id/snapshots` body. */
export type CreateSnapshotOptions = z.input<typeof snapshotRequestSchema>;

/** `restore` by snapshot id. */
export const restoreFromSnapshotSchema = z.strictObject({
  snapshotId: snapshotIdSchema.describe('The snapshot to restore'),
});
export type RestoreFromSnapshot = z.input<typeof restoreFromSnapshotSchema>;

/** `restore` by key: its latest snapshot (the key's head). */
export const restoreFromKeySchema = z.strictObject({
  key: snapshotKeySchema.describe("Restore the key's latest snapshot (its head)"),
  /** Start empty when the key has no snapshot yet, instead of failing with SNAPSHOT_NOT_FOUND. Default false. */
  allowEmpty: z
    .boolean()
    .default(false)
    .describe('Start empty when the key has no snapshot yet, instead of failing with SNAPSHOT_NOT_FOUND'),
});
export type RestoreFromKey = z.input<typeof restoreFromKeySchema>;

/**
 * Hydrate the workspace from a snapshot before the sandbox is handed out. A restore that fails
 * fails the create (UpstreamError RESTORE_FAILED, NotFoundError SNAPSHOT_NOT_FOUND) and leaves
 * no sandbox behind.
 */
export const restoreSchema = z
  .union([restoreFromSnapshotSchema, restoreFromKeySchema])
  .describe(
    'Hydrate the workspace from a snapshot before the sandbox is handed out; a failed restore fails the acquire',
  );
export type RestoreOptions = z.input<typeof restoreSchema>;
