/** Warm pools and the sandbox types they hold, as `GET /v1/pools` and `GET /v1/sandbox-types` list them. */
import { z } from 'zod';

export const poolStatusSchema = z.object({
  type: z.string(),
  /** Warm sandboxes the refiller keeps ready. */
  target: z.number().int(),
  /** Warm sandboxes ready now. */
  warm: z.number().int(),
  /** Sandboxes of this type being created now. */
  creating: z.number().int(),
});
/** One type's pool as `GET /v1/pools` reports it. */
export type PoolInfo = z.output<typeof poolStatusSchema>;

export const poolListSchema = z.object({ pools: z.array(poolStatusSchema) });

export const poolResizeRequestSchema = z.strictObject({
  /** New warm pool target, 0 to 1000. */
  size: z.number().int().min(0).max(1000),
});
/** `PUT /v1/pools/:type` body. */
export type PoolResizeRequest = z.input<typeof poolResizeRequestSchema>;

const sandboxResourcesSchema = z.object({
  /** CPU cores, e.g. 0.5. */
  cpus: z.number(),
  /** Memory limit, MiB. */
  memoryMiB: z.number().int(),
  /** Max processes and threads. */
  pidsLimit: z.number().int(),
  /** Size of /workspace, MiB; the kernel stops writes past it (QUOTA_EXCEEDED for uploads). */
  workspaceMiB: z.number().int().describe("/workspace's size, enforced by the kernel"),
});
/** Resource limits of every sandbox of a type. */
export type SandboxResources = z.output<typeof sandboxResourcesSchema>;

const sandboxStorageSchema = z.object({
  /** Whether the image's file system is read-only. */
  readOnlyRootfs: z.boolean(),
  /** The writable paths outside /workspace, each a tmpfs of this many MiB (part of the memory limit). */
  writable: z
    .record(z.string(), z.number().int())
    .describe('the paths outside /workspace the code may write, each a tmpfs of this many MiB'),
});
/** Where the code of a type's sandboxes may write. */
export type SandboxStorage = z.output<typeof sandboxStorageSchema>;

export const sandboxTypeInfoSchema = z.object({
  name: z.string(),
  description: z.string(),
  /** Full image reference. */
  image: z.string(),
  /** `built-in`, or the extension module that registered it. */
  source: z.string().describe('`built-in` or the extension module that registered it'),
  resources: sandboxResourcesSchema,
  storage: sandboxStorageSchema,
  /** Default idle timeout of its sandboxes, seconds. */
  idleTimeoutSeconds: z.number().int(),
  /** Default hard TTL of its sandboxes, seconds; 0: none. */
  ttlSeconds: z.number().int().describe('0: no hard TTL'),
  pool: poolStatusSchema,
});
/** A registered sandbox type as `GET /v1/sandbox-types` lists it. */
export type SandboxTypeInfo = z.output<typeof sandboxTypeInfoSchema>;

export const sandboxTypeListSchema = z.object({ types: z.array(sandboxTypeInfoSchema) });
