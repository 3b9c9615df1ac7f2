/**
 * What a sandbox type is. Built-in types and extension modules both describe types with
 * `defineSandboxType`, and the registry validates them with `sandboxTypeSchema`.
 */
import { z } from 'zod';

export const sandboxTypeSchema = z.strictObject({
  /** Lowercase name used in the API (`type`) and in the image name. */
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'type names are lowercase letters, digits and -'),
  description: z.string().default(''),
  /** Full image reference; default `[REGISTRY/]NAMESPACE/runtime-sandbox-<name>:TAG`. */
  image: z.string().optional(),
  /** Folder holding the Dockerfile that `runtime-sandbox-builder <name>` builds; relative to the module. */
  dockerfileDir: z.string().optional(),
  resources: z
    .strictObject({
      /** CPU cores, e.g. 0.5. */
      cpus: z.number().positive().max(256).default(1),
      /** Memory limit in MiB. */
      memoryMiB: z.number().int().min(16).default(512),
      /** Max processes and threads in the container. */
      pidsLimit: z.number().int().min(16).default(256),
      /** Size of the tmpfs on /tmp in MiB. */
      tmpfsMiB: z.number().int().min(1).default(64),
    })
    .prefault({}),
  /** Env set in every sandbox of this type (callers' env goes over it). */
  env: z.record(z.string(), z.string()).default({}),
  timeouts: z
    .strictObject({
      /** Idle seconds before the reaper destroys a claimed sandbox; default HEARTBEAT_TIMEOUT. */
      idleSeconds: z.number().int().positive().optional(),
      /** Hard TTL of a claimed sandbox in seconds; default SANDBOX_TTL (0: none). */
      ttlSeconds: z.number().int().min(0).optional(),
      /** How long a create may take to answer /healthz, milliseconds. */
      readyMs: z.number().int().positive().default(30000),
    })
    .prefault({}),
  security: z
    .strictObject({
      readOnlyRootfs: z.boolean().default(false),
      /** Run as this user; default the image's (the unprivileged `sandbox` user). */
      user: z.string().optional(),
      /** Capabilities added back after dropping all; empty by default, and it should stay so. */
      capAdd: z.array(z.string()).default([]),
      /** Docker network mode when DOCKER_NETWORK is unset; `none` cuts the sandbox off entirely. */
      networkMode: z.enum(['bridge', 'none']).default('bridge'),
    })
    .prefault({}),
  /** Warm pool size for this type; default POOL_SIZE. */
  poolSize: z.number().int().min(0).optional(),
});

export type SandboxTypeInput = z.input<typeof sandboxTypeSchema>;
export type SandboxType = z.output<typeof sandboxTypeSchema>;

/** Typed helper for extension modules: `export default defineSandboxType({ name: 'python', ... })`. */
export function defineSandboxType(definition: SandboxTypeInput): SandboxTypeInput {
  return definition;
}
