/** Sandboxes as the v1 API takes and describes them: acquire, keepalive, list, info. */
import { z } from 'zod';
import { envSchema } from './env.js';
import { allowEntrySchema, networkPolicySchema } from './network.js';
import { restoreSchema } from './snapshots.js';

const DAY_SECONDS = 24 * 60 * 60;

/** The name of a sandbox type, as the API and image names use it. */
export const typeNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'type names are lowercase letters, digits and -');

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
  /** Sandbox type; default the server's first `DEFAULT_SANDBOX_TYPE`. */
  type: typeNameSchema.optional(),
  /** Free-form id grouping sandboxes of one agent session; filterable in `list`. */
  sessionId: z.string().min(1).max(256).optional(),
  /** Env given to every process the sandbox runs (over the type's env). */
  env: envSchema.optional(),
  /** Caller-chosen string labels, returned by `info()` and `list()`. */
  metadata: metadataSchema.optional(),
  /** Seconds without calls before the server destroys the sandbox; default the type's, else `HEARTBEAT_TIMEOUT` (300). */
  idleTimeoutSeconds: idleTimeoutSchema.optional(),
  /** Hard time-to-live in seconds from the acquire; default the type's, else `SANDBOX_TTL` (0: none). */
  ttlSeconds: z
    .number()
    .int()
    .positive()
    .max(30 * DAY_SECONDS)
    .optional()
    .describe('Hard lifetime in seconds from the acquire, whatever the activity'),
  /**
   * Network policy: `public` (the internet only: no other sandbox, host or private range),
   * `allowlist` (only the `allow` ranges and domains) or `none`. Only as strict as the type's policy or
   * stricter (else ValidationError NETWORK_POLICY_DENIED); a policy other than the type's skips
   * the warm pool. Default the type's.
   */
  network: networkPolicySchema
    .optional()
    .describe(
      "Network policy: `public` (the internet only), `allowlist` (only `allow`) or `none`; only as strict as the type's or stricter. A policy other than the type's skips the warm pool",
    ),
  /**
   * With `allowlist` (implied when given): IPv4 addresses or CIDRs (`203.0.113.10`,
   * `198.51.100.0/24`) and domains (`pypi.org`, or `*.pythonhosted.org` for the names below it,
   * reachable at the addresses they resolve to); within the type's own list when it has one.
   * Private and host ranges stay blocked whatever the list says.
   */
  allow: z
    .array(allowEntrySchema)
    .max(64)
    .optional()
    .describe(
      "With `allowlist`: IPv4 addresses, CIDRs and domains (`pypi.org`, `*.pythonhosted.org`) the sandbox may reach (a subset of the type's list when it has one)",
    ),
  /**
   * Hydrate the workspace from a snapshot before the sandbox is handed out. A restore that fails
   * fails the create (UpstreamError RESTORE_FAILED, NotFoundError SNAPSHOT_NOT_FOUND) and leaves
   * no sandbox behind.
   */
  restore: restoreSchema.optional(),
});
/** `POST /v1/sandboxes` body. Every field is optional. */
export type CreateSandboxOptions = z.input<typeof acquireRequestSchema>;

/** Lifecycle state of a sandbox as the server reports it. */
export const sandboxStatusSchema = z.enum(['creating', 'warm', 'claimed', 'releasing']);
export type SandboxStatus = z.output<typeof sandboxStatusSchema>;

export const sandboxListQuerySchema = z.object({
  sessionId: z.string().min(1).optional(),
  type: typeNameSchema.optional(),
  status: sandboxStatusSchema.optional(),
});
/** `GET /v1/sandboxes` query. */
export type ListSandboxesFilter = z.input<typeof sandboxListQuerySchema>;

export const keepaliveRequestSchema = z.strictObject({
  /** New idle timeout in seconds; omitted: keep the current one and only refresh the idle timer. */
  idleTimeoutSeconds: idleTimeoutSchema.optional(),
});
/** `POST /v1/sandboxes/:id/keepalive` body. */
export type KeepAliveOptions = z.input<typeof keepaliveRequestSchema>;

const isoTime = z.iso.datetime();

export const sandboxInfoSchema = z.object({
  id: z.string(),
  type: z.string(),
  status: sandboxStatusSchema,
  sessionId: z.string().nullable(),
  /** Caller-chosen labels given at create. */
  metadata: z.record(z.string(), z.string()),
  /** Whether the sandbox came warm out of the pool (false: created cold for this call). */
  fromPool: z.boolean().describe('Whether it was taken warm from the pool rather than created for the call'),
  /** ISO 8601. */
  createdAt: isoTime,
  /** ISO 8601 time a caller acquired it, or null while it is not bound to one. */
  claimedAt: isoTime.nullable(),
  /** ISO 8601 time of the last call that touched the sandbox. */
  lastActiveAt: isoTime,
  /** Seconds without calls after which the server destroys the sandbox. */
  idleTimeoutSeconds: z.number().int(),
  /** ISO 8601 end of the hard time-to-live, or null for none. */
  expiresAt: isoTime.nullable().describe('When the hard TTL ends it, or null for no TTL'),
});
/** A sandbox as `GET /v1/sandboxes/:id` describes it. Never carries tokens. */
export type SandboxInfo = z.output<typeof sandboxInfoSchema>;

export const sandboxListSchema = z.object({ sandboxes: z.array(sandboxInfoSchema) });
