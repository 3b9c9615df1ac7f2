/**
 * One interface over every compute backend. The manager decides what to run; a deployer only
 * starts, inspects, lists and removes containers (or pods, or functions).
 */
import type { SecureContextOptions } from 'node:tls';
import { SANDBOXD_ENV } from '@runtime-sandbox/contract';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { SandboxType } from '../sandbox-types/definition.js';

/**
 * Where the server reaches a sandbox's sandboxd: plain HTTP at host:port; or, with `proxyPath`,
 * HTTPS to an authenticating proxy at host:port (the Kubernetes API server), sandboxd's paths
 * under that prefix, with the deployer's `proxyTransport`. Stored in state records, so it holds
 * addresses only, never credentials; records written before `proxyPath` existed still parse.
 */
export const endpointSchema = z.object({
  host: z.string(),
  port: z.number(),
  proxyPath: z.string().optional(),
});
export type Endpoint = z.infer<typeof endpointSchema>;

/**
 * How to go through the proxy of endpoints that have a `proxyPath`. Secrets: used for requests,
 * never stored or logged.
 */
export interface ProxyTransport {
  /** The proxy's certificate authority, client certificate and key, server name, verification. */
  tls: Pick<SecureContextOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase'> & {
    rejectUnauthorized: boolean;
    servername?: string;
  };
  /** The proxy's own credentials (e.g. `authorization`), sent with every request. */
  headers: Record<string, string>;
}

/** Gives the current ProxyTransport (credentials may be refreshed, so ask per request). */
export type ProxyTransportSource = () => Promise<ProxyTransport>;

/** Labels every container this server creates carries. */
export const LABELS = {
  managedBy: 'io.runtime-sandbox.managed-by',
  deployment: 'io.runtime-sandbox.deployment',
  sandboxId: 'io.runtime-sandbox.sandbox-id',
  type: 'io.runtime-sandbox.type',
  pool: 'io.runtime-sandbox.pool',
  /** The replica (server process) that created it: only that one, or anyone once it is dead, removes it unclaimed. */
  replica: 'io.runtime-sandbox.replica',
} as const;
export const MANAGED_BY_VALUE = 'runtime-sandbox';

export interface CreateSpec {
  sandboxId: string;
  deploymentId: string;
  /** The creating replica (Coordinator.replicaId), for the replica label. */
  replicaId: string;
  type: SandboxType;
  image: string;
  /** Container name. */
  name: string;
  /** The boot token sandboxd accepts until /init replaces it. */
  bootToken: string;
  /** Host port to publish sandboxd on, from the port allocator, when `needsHostPort(type)` says so. */
  hostPort?: number;
  readonlyMounts: Array<{ hostPath: string; containerPath: string }>;
  /** Whether this sandbox is created for the warm pool (label only). */
  pooled: boolean;
}

export interface DeployedSandbox {
  /** Backend handle (container id, pod name). */
  handle: string;
  endpoint: Endpoint;
  /**
   * Set when sandboxd booted with a token shared by several sandboxes (a template's, from
   * SharedBootTokens) instead of `CreateSpec.bootToken`: that token's nonce, which the record then
   * keeps until /init replaces the token with the sandbox's own.
   */
  bootNonce?: string;
}

/**
 * Boot tokens for backends whose sandboxes start from a shared template and so cannot each boot
 * with their own token: the one token of `scope` (for the template) and its nonce (for records).
 */
export type SharedBootTokens = (scope: string) => { nonce: string; token: string };

export interface ContainerSummary {
  handle: string;
  sandboxId: string | undefined;
  deploymentId: string | undefined;
  /** Its creator's replica id; undefined on containers of servers that predate the label. */
  replicaId: string | undefined;
  running: boolean;
}

/** The host port was taken by something outside the allocator; the caller may retry with another. */
export class HostPortTakenError extends Error {
  constructor(
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(`host port ${port} is already in use`, options);
    this.name = 'HostPortTakenError';
  }
}

export interface Deployer {
  readonly kind: string;
  /** Where the backend is (a socket, an API server and namespace), for the operator's messages. */
  readonly location: string;
  /**
   * Readies the backend for these types before any sandbox exists (runtimes present, networks and
   * host filters in place); throws when it cannot do so safely.
   */
  prepare(types: readonly SandboxType[]): Promise<void>;
  /**
   * Removes what `prepare`, `create` and `provideWorkspace` set up for the deployment, once its last
   * sandbox is gone.
   */
  teardown(): Promise<void>;
  /**
   * Whether sandboxd of a `type` sandbox is reached on a host port, which the caller then takes from
   * PORT_RANGE (shared by every replica on the host) and passes as `CreateSpec.hostPort`.
   */
  needsHostPort(type: SandboxType): boolean;
  /** Starts the sandbox and returns once it runs; readiness (sandboxd /healthz) is the caller's wait. */
  create(spec: CreateSpec): Promise<DeployedSandbox>;
  /** Removes it, forcefully; succeeds if it is already gone. */
  destroy(handle: string): Promise<void>;
  /**
   * Makes the storage of sandbox `sandboxId`'s /workspace, sized and owned as `type` says, before
   * `create` mounts it. Backends whose sandboxes bring their own volume do nothing here.
   */
  provideWorkspace(sandboxId: string, type: SandboxType): Promise<void>;
  /** Removes that storage, its content included; succeeds if it is gone or never existed. */
  releaseWorkspace(sandboxId: string): Promise<void>;
  /** The sandboxes that have workspace storage here, so that strays can be found and removed. */
  workspaceIds(): Promise<string[]>;
  /**
   * Everything this backend runs with the given deployment label. `expected` names handles the
   * caller takes for gone unless they are listed running: a backend that answers from a cache
   * (which may lag a create by another replica) confirms those with the backend itself.
   */
  list(deploymentId: string, expected?: readonly string[]): Promise<ContainerSummary[]>;
  /**
   * The sandbox was claimed and must be gone by `expiresAt` (ms since the epoch, the record's hard
   * expiry, which never moves later): a backend that can end it by itself at about that time is
   * told so, as a backstop for a reaper that never comes; others do nothing. The reaper stays the
   * one that ends it normally, as it also gives back what the sandbox holds.
   */
  bindExpiry(handle: string, expiresAt: number): Promise<void>;
  /** The backend answers (for /readyz). */
  ping(): Promise<void>;
  /** Whether the image for a type exists where the backend can start it. */
  hasImage(image: string): Promise<boolean>;
  /** Present on deployers whose endpoints carry a `proxyPath`: the way through that proxy. */
  readonly proxyTransport?: ProxyTransportSource;
}

/** The environment of a sandbox's container: the type's own, then what sandboxd reads at start. */
export function sandboxEnv(
  spec: Pick<CreateSpec, 'type' | 'bootToken'>,
  config: Config,
): Record<string, string> {
  return {
    ...spec.type.env,
    [SANDBOXD_ENV.bootToken]: spec.bootToken,
    [SANDBOXD_ENV.maxJsonBytes]: String(config.MAX_JSON_BYTES),
    [SANDBOXD_ENV.maxUploadBytes]: String(config.MAX_UPLOAD_BYTES),
    [SANDBOXD_ENV.runAs]: spec.type.security.user,
  };
}
