/**
 * What a sandbox type is. Built-in types and extension modules both describe types with
 * `defineSandboxType`, and the registry validates them with `sandboxTypeSchema`.
 */
import {
  allowEntrySchema,
  DEFAULT_RUN_AS,
  networkPolicySchema,
  runAsSchema,
  typeNameSchema,
} from '@runtime-sandbox/contract';
import { z } from 'zod';

/** Writable paths of a type that lists none: scratch space, and the sandbox user's home. */
const DEFAULT_WRITABLE_MIB: Readonly<Record<string, number>> = {
  '/tmp': 64,
  '/var/tmp': 64,
  '/home/sandbox': 64,
};

/** The fields of a definition; `sandboxTypeSchema` then folds the superseded `tmpfsMiB` into `storage`. */
const sandboxTypeFields = z.strictObject({
  /** Lowercase name used in the API (`type`) and in the image name. */
  name: typeNameSchema,
  description: z.string().default(''),
  /** Full image reference; default `[REGISTRY/]NAMESPACE/runtime-sandbox-<name>:TAG`. */
  image: z.string().optional(),
  /** Folder holding the Dockerfile that `runtime-sandbox-builder <name>` builds; relative to the module. */
  dockerfileDir: z.string().optional(),
  resources: z
    .strictObject({
      /** CPU cores, e.g. 0.5. */
      cpus: z.number().positive().max(256).default(1),
      /** Memory limit in MiB; the writable tmpfs paths (`storage.writable`) count against it. */
      memoryMiB: z.number().int().min(16).default(512),
      /** Max processes and threads in the container. */
      pidsLimit: z.number().int().min(16).default(256),
      /**
       * Size of /workspace in MiB, enforced by the kernel (a file system of its own per sandbox,
       * see WORKSPACE_QUOTA); uploads, extractions and restores past it answer QUOTA_EXCEEDED.
       */
      workspaceMiB: z
        .number()
        .int()
        .min(8)
        .max(1024 * 1024)
        .default(1024),
      /** Superseded by `storage.writable`: sizes /tmp among the default writable paths when that is not given. */
      tmpfsMiB: z.number().int().min(1).optional(),
    })
    .prefault({}),
  storage: z
    .strictObject({
      /**
       * The paths outside /workspace the code may write, each a size-capped tmpfs (MiB; counted
       * against the memory limit). With a read-only root these are all that is writable there.
       */
      writable: z
        .record(
          z
            .string()
            .regex(/^\/[^\0]*[^/]$/, 'writable paths are absolute, e.g. /var/tmp')
            .refine((path) => !path.split('/').includes('..'), 'writable paths may not contain ..')
            .refine((path) => path !== '/workspace', '/workspace is sized by resources.workspaceMiB'),
          z.number().int().min(1),
        )
        .optional(),
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
      /**
       * The image's file system read-only, so only /workspace and `storage.writable` take writes.
       * Off, nothing limits what the code writes to the container's root layer (overlay2 on ext4
       * has no size limit); the server warns at start.
       */
      readOnlyRootfs: z.boolean().default(true),
      /**
       * `uid:gid` (numbers) the sandbox's code runs as and its files belong to; never root. sandboxd
       * itself starts as root with a few capabilities and runs every process as this user.
       */
      user: runAsSchema.default(DEFAULT_RUN_AS),
      /** Capabilities added back after dropping all; empty by default, and it should stay so. */
      capAdd: z.array(z.string()).default([]),
      /**
       * `public`: the internet, but no other sandbox, no host address and no private, link-local or
       * metadata range. `allowlist`: only the `allow` ranges and domains (never what is blocked for `public`).
       * `none`: no network at all (the server still reaches sandboxd).
       */
      network: networkPolicySchema.default('public'),
      /** With `network: 'allowlist'`: the IPv4 ranges and domains the sandbox may reach. */
      allow: z.array(allowEntrySchema).max(64).default([]),
      /** Container runtime (`runsc` for gVisor, `kata-runtime`); default DOCKER_RUNTIME, else the engine's. */
      runtime: z.string().min(1).optional(),
    })
    .prefault({}),
  /** Warm pool size for this type; default POOL_SIZE. */
  poolSize: z.number().int().min(0).optional(),
});

export const sandboxTypeSchema = sandboxTypeFields.transform(
  ({ resources: { tmpfsMiB, ...resources }, storage, ...type }) => ({
    ...type,
    resources,
    // A type that sets neither gets the defaults; an older type's tmpfsMiB sizes /tmp among them.
    storage: {
      writable: storage.writable ?? {
        ...DEFAULT_WRITABLE_MIB,
        ...(tmpfsMiB === undefined ? {} : { '/tmp': tmpfsMiB }),
      },
    },
  }),
);

export type SandboxTypeInput = z.input<typeof sandboxTypeSchema>;
export type SandboxType = z.output<typeof sandboxTypeSchema>;

/** Typed helper for extension modules: `export default defineSandboxType({ name: 'python', ... })`. */
export function defineSandboxType(definition: SandboxTypeInput): SandboxTypeInput {
  return definition;
}
