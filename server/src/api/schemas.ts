/**
 * Every request and response shape of the v1 API, in zod. Handlers validate with these and type
 * their answers with them; the OpenAPI document is generated from the same objects. Data-plane
 * shapes come from sandboxd's protocol, so what passes here never fails there.
 */
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../../client-sdk/src/error-codes.js';
import { initRequestSchema } from '../../../sandbox-images/runtime/src/protocol.js';
import { allowEntrySchema, networkPolicySchema } from '../sandbox-types/definition.js';
import { snapshotIdSchema, snapshotKeySchema, snapshotRecordSchema } from '../snapshots/snapshot-store.js';

export {
  archiveQuerySchema,
  deleteQuerySchema,
  execRequestSchema,
  listQuerySchema,
  mkdirRequestSchema,
  moveRequestSchema,
  pathQuerySchema,
  writeQuerySchema,
} from '../../../sandbox-images/runtime/src/protocol.js';

const DAY_SECONDS = 24 * 60 * 60;

const errorCodeSchema = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

export const errorBodySchema = z
  .object({
    error: z.object({
      code: errorCodeSchema,
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .describe('Every error answer; `code` is stable, `message` is for humans');

// ---- identifiers --------------------------------------------------------------------------------

const typeNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'type names are lowercase letters, digits and -');

export const sandboxIdParamsSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'not a sandbox id'),
});

export const poolTypeParamsSchema = z.object({ type: typeNameSchema });

// ---- sandboxes ----------------------------------------------------------------------------------

const metadataSchema = z
  .record(z.string().min(1).max(128), z.string().max(4096))
  .refine((m) => Object.keys(m).length <= 64, 'at most 64 metadata entries');

const idleTimeoutSchema = z
  .number()
  .int()
  .positive()
  .max(7 * DAY_SECONDS)
  .describe('Seconds without a call before the sandbox is destroyed');

export const acquireRequestSchema = z.strictObject({
  /** Default: the first of DEFAULT_SANDBOX_TYPE. */
  type: typeNameSchema.optional(),
  sessionId: z.string().min(1).max(256).optional(),
  /** Env for every process in the sandbox, over the type's env. */
  env: initRequestSchema.shape.env,
  metadata: metadataSchema.optional(),
  idleTimeoutSeconds: idleTimeoutSchema.optional(),
  ttlSeconds: z
    .number()
    .int()
    .positive()
    .max(30 * DAY_SECONDS)
    .optional()
    .describe('Hard lifetime in seconds from the acquire, whatever the activity'),
  network: networkPolicySchema
    .optional()
    .describe(
      "Network policy: `public` (the internet only), `allowlist` (only `allow`) or `none`; only as strict as the type's or stricter. A policy other than the type's skips the warm pool",
    ),
  allow: z
    .array(allowEntrySchema)
    .max(64)
    .optional()
    .describe(
      "With `allowlist`: IPv4 addresses, CIDRs and domains (`pypi.org`, `*.pythonhosted.org`) the sandbox may reach (a subset of the type's list when it has one)",
    ),
  restore: z
    .union([
      z.strictObject({ snapshotId: snapshotIdSchema.describe('The snapshot to restore') }),
      z.strictObject({
        key: snapshotKeySchema.describe("Restore the key's latest snapshot (its head)"),
        allowEmpty: z
          .boolean()
          .default(false)
          .describe(
            'Start empty when the key has no snapshot yet, instead of failing with SNAPSHOT_NOT_FOUND',
          ),
      }),
    ])
    .optional()
    .describe(
      'Hydrate the workspace from a snapshot before the sandbox is handed out; a failed restore fails the acquire',
    ),
});
export type AcquireRequestBody = z.infer<typeof acquireRequestSchema>;

const sandboxStatusSchema = z.enum(['creating', 'warm', 'claimed', 'releasing']);

export const sandboxListQuerySchema = z.object({
  sessionId: z.string().min(1).optional(),
  type: typeNameSchema.optional(),
  status: sandboxStatusSchema.optional(),
});

export const keepaliveRequestSchema = z.strictObject({
  idleTimeoutSeconds: idleTimeoutSchema.optional(),
});

const isoTime = z.iso.datetime();

export const sandboxInfoSchema = z.object({
  id: z.string(),
  type: z.string(),
  status: sandboxStatusSchema,
  sessionId: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
  fromPool: z.boolean().describe('Whether it was taken warm from the pool rather than created for the call'),
  createdAt: isoTime,
  claimedAt: isoTime.nullable(),
  lastActiveAt: isoTime,
  idleTimeoutSeconds: z.number().int(),
  expiresAt: isoTime.nullable().describe('When the hard TTL ends it, or null for no TTL'),
});
export type SandboxInfo = z.infer<typeof sandboxInfoSchema>;

export const sandboxListSchema = z.object({ sandboxes: z.array(sandboxInfoSchema) });

// ---- data plane answers (sandboxd's, passed through) ----------------------------------------------

export const execResultSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  timedOut: z.boolean(),
  durationMs: z.number(),
});

export const execEventSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('start'), pid: z.number().int() }),
    z.object({ type: z.literal('stdout'), data: z.string() }),
    z.object({ type: z.literal('stderr'), data: z.string() }),
    z.object({
      type: z.literal('exit'),
      exitCode: z.number().int().nullable(),
      signal: z.string().nullable(),
      timedOut: z.boolean(),
      durationMs: z.number(),
    }),
    z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  ])
  .describe('One line of an NDJSON exec stream');

export const fileEntrySchema = z.object({
  name: z.string(),
  path: z.string().describe('Relative to the workspace root'),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number().int(),
  mode: z.number().int(),
  modifiedAt: isoTime,
  symlinkTarget: z.string().optional(),
});

export const fileListSchema = z.object({ entries: z.array(fileEntrySchema) });

export const archiveExtractSchema = z.object({
  entries: z.number().int().describe('Archive entries written into the directory'),
});

// ---- snapshots ----------------------------------------------------------------------------------

export const snapshotIdParamsSchema = z.object({ id: snapshotIdSchema });

/** The record as its caller sees it: its own key, no owner (SnapshotService's view). */
export const snapshotInfoSchema = snapshotRecordSchema
  .omit({ tenantId: true })
  .extend({
    key: snapshotKeySchema.nullable().describe('The key whose line of versions it is on; null for a one-off'),
  })
  .describe("A stored workspace snapshot (a gzipped tar); `version` counts along its key's line");

export const snapshotListSchema = z.object({ snapshots: z.array(snapshotInfoSchema) });

export const snapshotListQuerySchema = z.object({
  key: snapshotKeySchema.optional().describe("Only this key's versions, newest first"),
});

const EXPECTED_HEAD =
  "Compare-and-swap on the key's head: the snapshot id the head must still be when this snapshot lands " +
  '(SNAPSHOT_CONFLICT otherwise); omitted: the head read when the snapshot starts';

export const snapshotRequestSchema = z
  .strictObject({
    key: snapshotKeySchema
      .optional()
      .describe('Adds the snapshot to this key as its new head; omitted: a one-off snapshot'),
    expectedHead: snapshotIdSchema
      .nullable()
      .optional()
      .describe(`${EXPECTED_HEAD}; null: the key must have no snapshot yet`),
  })
  .refine((request) => request.expectedHead === undefined || request.key !== undefined, {
    message: 'expectedHead needs a key',
    path: ['expectedHead'],
  });

export const releaseQuerySchema = z
  .object({
    snapshot: z
      .enum(['true', 'false'])
      .default('false')
      .describe('Snapshot the workspace first; when the snapshot fails the sandbox is not released'),
    key: snapshotKeySchema.optional().describe('With snapshot=true: the key the snapshot is added to'),
    expectedHead: z
      .union([snapshotIdSchema, z.literal('')])
      .optional()
      .describe(`With snapshot=true and a key: ${EXPECTED_HEAD}; empty: the key must have no snapshot yet`),
  })
  .refine(
    (query) => query.snapshot === 'true' || (query.key === undefined && query.expectedHead === undefined),
    {
      message: 'key and expectedHead need snapshot=true',
      path: ['snapshot'],
    },
  )
  .refine((query) => query.expectedHead === undefined || query.key !== undefined, {
    message: 'expectedHead needs a key',
    path: ['expectedHead'],
  });

// ---- pools and types ----------------------------------------------------------------------------

export const poolStatusSchema = z.object({
  type: z.string(),
  target: z.number().int(),
  warm: z.number().int(),
  creating: z.number().int(),
});

export const poolListSchema = z.object({ pools: z.array(poolStatusSchema) });

export const poolResizeRequestSchema = z.strictObject({
  size: z.number().int().min(0).max(1000),
});

export const sandboxTypeInfoSchema = z.object({
  name: z.string(),
  description: z.string(),
  image: z.string(),
  source: z.string().describe('`built-in` or the extension module that registered it'),
  resources: z.object({
    cpus: z.number(),
    memoryMiB: z.number().int(),
    pidsLimit: z.number().int(),
    workspaceMiB: z.number().int().describe("/workspace's size, enforced by the kernel"),
  }),
  storage: z.object({
    readOnlyRootfs: z.boolean(),
    writable: z
      .record(z.string(), z.number().int())
      .describe('the paths outside /workspace the code may write, each a tmpfs of this many MiB'),
  }),
  idleTimeoutSeconds: z.number().int(),
  ttlSeconds: z.number().int().describe('0: no hard TTL'),
  pool: poolStatusSchema,
});

export const sandboxTypeListSchema = z.object({ types: z.array(sandboxTypeInfoSchema) });

// ---- system -------------------------------------------------------------------------------------

export const healthSchema = z.object({ status: z.literal('ok') });

export const readySchema = z.object({
  status: z.literal('ready'),
  checks: z.object({ store: z.literal('ok'), deployer: z.literal('ok') }),
});
