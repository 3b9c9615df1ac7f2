/**
 * Every server setting, with its default, in one zod schema. Names follow the seed server so its
 * users can bring their `.env`. `loadConfig` (config/load.ts) reads dotenv + process.env into this.
 */
import { join, resolve } from 'node:path';
import { z } from 'zod';

const bool = z
  .union([
    z.boolean(),
    z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', 'TRUE', 'FALSE', 'True', 'False']),
  ])
  .transform((v) => (typeof v === 'boolean' ? v : ['true', '1', 'yes', 'on'].includes(v.toLowerCase())));

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/** "[49152,59152]" or "49152-59152" or "49152,59152". */
const portRange = z.string().transform((raw, ctx) => {
  const match = raw.trim().match(/^\[?\s*(\d+)\s*[,-]\s*(\d+)\s*\]?$/);
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `PORT_RANGE must look like [49152,59152], got "${raw}"` });
    return z.NEVER;
  }
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (start < 1 || end > 65535 || start > end) {
    ctx.addIssue({
      code: 'custom',
      message: `PORT_RANGE [${start},${end}] is inverted or outside 1-65535`,
    });
    return z.NEVER;
  }
  return { start, end };
});

/** JSON.parse that reports a zod issue (and gives undefined) instead of throwing out of a transform. */
function parseJson(text: string, ctx: z.RefinementCtx): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: `not valid JSON: ${error instanceof Error ? error.message : error}`,
    });
    return undefined;
  }
}

/** A comma list, or a JSON array: "base,filesystem" or '["base","filesystem"]'. */
const stringList = z.string().transform((raw, ctx) => {
  const text = raw.trim();
  if (text === '') return [];
  if (text.startsWith('[')) {
    const parsed = parseJson(text, ctx);
    if (parsed === undefined) return z.NEVER;
    if (Array.isArray(parsed)) return parsed.map(String).filter((s) => s !== '');
  }
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
});

/** "key=value,key2=value2" (Kubernetes labels); keys and values are checked by the API server. */
/** A Kubernetes namespace name (an RFC 1123 label). */
function namespaceName(setting: string) {
  return z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${setting} must be a Kubernetes namespace name`);
}

const labelMap = z.string().transform((raw, ctx) => {
  const labels: Record<string, string> = {};
  for (const item of raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const [key, value, extra] = item.split('=');
    if (!key || value === undefined || extra !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${item}" is not key=value` });
      return z.NEVER;
    }
    labels[key.trim()] = value.trim();
  }
  return labels;
});

const tolerationSchema = z.strictObject({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});
export type Toleration = z.output<typeof tolerationSchema>;

const tolerations = z.string().transform((raw, ctx) => {
  if (raw.trim() === '') return [];
  const parsed = z.array(tolerationSchema).safeParse(parseJson(raw, ctx));
  if (parsed.success) return parsed.data;
  ctx.addIssue({ code: 'custom', message: `K8S_TOLERATIONS: ${z.prettifyError(parsed.error)}` });
  return z.NEVER;
});

/**
 * READONLY_MOUNTS: host paths bound read-only into every sandbox. Each item is
 * "/host/path" (mounted at the same path) or "/host/path:/container/path"; comma list or JSON
 * object {"/host": "/container"}.
 */
const readonlyMounts = z.string().transform((raw, ctx) => {
  const text = raw.trim();
  if (text === '') return [];
  let pairs: Array<[string, string]>;
  if (text.startsWith('{')) {
    const parsed = parseJson(text, ctx);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      if (parsed !== undefined)
        ctx.addIssue({ code: 'custom', message: 'READONLY_MOUNTS JSON must be an object' });
      return z.NEVER;
    }
    pairs = Object.entries(parsed).map(([h, c]) => [h, String(c)]);
  } else {
    pairs = text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((item) => {
        const [host = '', container] = item.split(':');
        return [host, container ?? host];
      });
  }
  for (const [host, container] of pairs) {
    if (!host.startsWith('/') || !container.startsWith('/')) {
      ctx.addIssue({
        code: 'custom',
        message: `READONLY_MOUNTS entries need absolute paths, got "${host}:${container}"`,
      });
      return z.NEVER;
    }
  }
  return pairs.map(([hostPath, containerPath]) => ({ hostPath, containerPath }));
});

/** Replicas sharing Redis must derive the same sandbox tokens (manager/sandbox-tokens.ts). */
export const REDIS_NEEDS_SECRET =
  'REDIS_ENABLED needs SANDBOX_TOKEN_SECRET or BEARER_TOKEN so every replica derives the same sandbox tokens';

export const configSchema = z
  .object({
    HOST: z.string().default('127.0.0.1'),
    PORT: z.coerce.number().int().min(0).max(65535).default(8000),
    WORKERS: z.coerce.number().int().min(1).max(64).default(1),
    DEBUG: bool.default(false),
    LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
    /** The admin key: sees and touches every sandbox and snapshot. */
    BEARER_TOKEN: optionalString,
    /**
     * JSON file of tenants, each with SHA-256 hashes of its API keys and its limits
     * (tenants/api-keys.ts). A tenant's key sees only that tenant's sandboxes and snapshots.
     */
    API_KEYS_FILE: optionalString,
    /**
     * Key the per-sandbox tokens are derived from (HMAC), so the state store holds only nonces.
     * Unset: derived from BEARER_TOKEN, else random per process (in-memory state only).
     */
    SANDBOX_TOKEN_SECRET: optionalString.pipe(
      z.string().min(32, 'needs at least 32 characters, e.g. `openssl rand -hex 32`').optional(),
    ),

    DEFAULT_SANDBOX_TYPE: stringList.default(['base']),
    POOL_SIZE: z.coerce.number().int().min(0).max(1000).default(1),
    /** How many sandboxes the refiller creates at once. */
    POOL_FILL_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
    /**
     * Sandboxes (warm ones included) this deployment runs at once. Unset or 0: derived from the
     * machine's memory (manager/instance-limit.ts), never unlimited.
     */
    MAX_SANDBOX_INSTANCES: z.coerce.number().int().min(0).default(0),
    AUTO_CLEANUP: bool.default(true),
    CONTAINER_PREFIX_KEY: z
      .string()
      .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'CONTAINER_PREFIX_KEY must be a valid container name prefix')
      .default('runtime-sandbox'),
    /** Names this deployment in labels and keys; defaults to CONTAINER_PREFIX_KEY. */
    DEPLOYMENT_ID: optionalString,
    CONTAINER_DEPLOYMENT: z.enum(['docker', 'k8s', 'agentrun', 'fc']).default('docker'),

    DEFAULT_MOUNT_DIR: z.string().default('/tmp/runtime-sandbox/mounts'),
    READONLY_MOUNTS: readonlyMounts.default([]),
    /** Allow callers to ask for host paths to be mounted (off: no caller-supplied host paths). */
    ALLOW_HOST_MOUNTS: bool.default(false),
    PORT_RANGE: portRange.default({ start: 49152, end: 59152 }),
    /** Host address the sandboxd ports are published on, and the server connects to. */
    SANDBOX_HOST_ADDRESS: z.string().default('127.0.0.1'),
    /**
     * Install the host packet filter that keeps sandboxes off the host's addresses and private
     * networks (iptables, needs root). Turning it off leaves those reachable from every sandbox.
     */
    SANDBOX_FIREWALL: bool.default(true),
    /**
     * The resolver the sandboxes' DNS goes to (`host` or `host:port`), through the one the server
     * runs on each sandbox network's gateway; default the host's first nameserver (/etc/resolv.conf).
     */
    SANDBOX_DNS_UPSTREAM: optionalString,
    /**
     * Give each sandbox's /workspace a file system of its type's `workspaceMiB` (a loop-mounted
     * ext4 image, needs root and loop devices), so the kernel bounds what the code writes there.
     * Turning it off leaves workspaces as plain host directories, bounded only by the host's disk.
     */
    WORKSPACE_QUOTA: bool.default(true),
    /** Docker runtime for every sandbox (`runsc` for gVisor, `kata-runtime`); a type may set its own. */
    DOCKER_RUNTIME: optionalString,
    DOCKER_SOCKET: z.string().default('/var/run/docker.sock'),
    /**
     * Read only to refuse what the Docker deployer cannot serve: a remote engine (`tcp://`,
     * `ssh://`), or a local socket other than DOCKER_SOCKET (the Docker CLI's variable, often set).
     */
    DOCKER_HOST: optionalString,

    HEARTBEAT_TIMEOUT: z.coerce.number().int().min(1).default(300).describe('idle timeout, seconds'),
    /**
     * Hard time-to-live of a claimed sandbox, seconds (default a day), and the longest an acquire
     * may ask for; 0 means none, which lets a caller keep a sandbox forever with keep-alives.
     */
    SANDBOX_TTL: z.coerce
      .number()
      .int()
      .min(0)
      .default(24 * 60 * 60),
    /** How often the reaper, refiller and reconciler run, milliseconds. */
    MAINTENANCE_INTERVAL_MS: z.coerce.number().int().min(50).default(2000),
    /**
     * With Redis: TTL of the leader lease (renewed every third of it) and of each replica's
     * heartbeat. A dead leader is replaced, and a dead worker's half-made sandboxes cleared, within it.
     */
    LEADER_LEASE_MS: z.coerce.number().int().min(300).default(6000),
    /** Bodies of raw file and archive uploads, bytes. */
    MAX_UPLOAD_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024 * 1024),
    /**
     * JSON request bodies, bytes. Small: a JSON body is held whole, several times over while it is
     * parsed and forwarded; bulk data goes through the streamed file and archive uploads.
     */
    MAX_JSON_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(2 * 1024 * 1024),
    /**
     * JSON body bytes a worker holds at once, each until its handler has answered; a request that
     * would pass it is answered SERVER_BUSY (503, Retry-After) instead of growing the heap. At
     * least MAX_JSON_BYTES.
     */
    JSON_BYTES_IN_FLIGHT: z.coerce
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024),
    /** How long a client may take to send its request headers, milliseconds. */
    HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /**
     * A request body that sends nothing for this long is cut off (REQUEST_TIMEOUT, 408),
     * milliseconds; time spent waiting on the sandbox to take the bytes does not count.
     */
    BODY_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(15000),

    REDIS_ENABLED: bool.default(false),
    REDIS_SERVER: z.string().default('localhost'),
    REDIS_PORT: z.coerce.number().int().min(1).max(65535).default(6379),
    REDIS_DB: z.coerce.number().int().min(0).default(0),
    REDIS_USER: optionalString,
    REDIS_PASSWORD: optionalString,
    REDIS_KEY_PREFIX: z.string().default('rsbx'),

    FILE_SYSTEM: z.enum(['local', 'oss', 'redis']).default('local'),
    SNAPSHOT_DIR: z.string().default('/tmp/runtime-sandbox/snapshots'),
    /** Versions kept per snapshot key, the head included; older ones are deleted. */
    SNAPSHOT_KEEP_VERSIONS: z.coerce.number().int().min(1).default(5),
    /** Largest snapshot FILE_SYSTEM=redis stores, bytes (64 MiB). */
    SNAPSHOT_REDIS_MAX_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    /** FILE_SYSTEM=redis: seconds a snapshot lives after its last write or read; 0 means forever. */
    SNAPSHOT_REDIS_TTL_SECONDS: z.coerce
      .number()
      .int()
      .min(0)
      .default(7 * 24 * 60 * 60),
    OSS_ENDPOINT: optionalString,
    OSS_ACCESS_KEY_ID: optionalString,
    OSS_ACCESS_KEY_SECRET: optionalString,
    OSS_BUCKET_NAME: optionalString,
    OSS_REGION: z.string().default('us-east-1'),
    OSS_KEY_PREFIX: z.string().default('runtime-sandbox/snapshots/'),
    OSS_FORCE_PATH_STYLE: bool.default(true),

    K8S_NAMESPACE: namespaceName('K8S_NAMESPACE').default('default'),
    /** Empty: the pod's service account when the server runs in a cluster, else ~/.kube/config. */
    KUBECONFIG_PATH: optionalString,
    /**
     * How the server reaches sandboxd in each pod. `pod-ip`: at the pod's IP (the server runs in
     * the cluster, or on a routed pod network). `proxy`: through the API server's pods/proxy over
     * the kubeconfig's TLS and credentials, for a server outside the cluster (development; every
     * call makes one more hop). The kubeconfig's user then also needs pods/proxy
     * `get create update delete`.
     */
    K8S_ACCESS: z.enum(['pod-ip', 'proxy']).default('pod-ip'),
    /**
     * What a sandbox is on the cluster. `pods`: one bare Pod per sandbox. `agent-sandbox`: a
     * SandboxClaim of kubernetes-sigs/agent-sandbox per sandbox, against a SandboxWarmPool and
     * SandboxTemplate per type that the server applies at start; that project's CRDs and
     * controller must be installed (checked at start).
     */
    K8S_MODE: z.enum(['pods', 'agent-sandbox']).default('pods'),
    /**
     * With K8S_MODE=agent-sandbox: replicas of each type's SandboxWarmPool, the ready sandboxes the
     * server's own pool refills from. Empty: POOL_SIZE.
     */
    K8S_WARM_POOL_REPLICAS: z.coerce.number().int().min(0).max(1000).optional(),
    /**
     * The Pod Security profile sandbox pods meet. `restricted`: sandboxd runs as the type's user,
     * with no capability, so the code shares its uid (the pod, and K8S_RUNTIME_CLASS, are the
     * boundary). `baseline`: sandboxd starts as root with its few capabilities and runs the code as
     * the type's user, as on Docker; the namespace must allow the baseline profile.
     */
    K8S_POD_SECURITY: z.enum(['restricted', 'baseline']).default('restricted'),
    /** RuntimeClass of every sandbox pod (gVisor, Kata); checked at start. */
    K8S_RUNTIME_CLASS: optionalString,
    /** One NetworkPolicy per sandbox type: ingress from the server's pods only, egress as the type says. */
    K8S_NETWORK_POLICY: bool.default(true),
    /** Labels of the server's own pods, the only ones the NetworkPolicy lets reach sandboxd. */
    K8S_SERVER_POD_LABELS: labelMap.default({ 'app.kubernetes.io/name': 'runtime-sandbox-server' }),
    /**
     * The namespace of the server's own pods, whose labelled pods alone may reach sandboxd. Empty:
     * the namespace the server runs in (its service account's), else K8S_NAMESPACE.
     */
    K8S_SERVER_NAMESPACE: namespaceName('K8S_SERVER_NAMESPACE').optional(),
    /** nodeSelector of every sandbox pod, e.g. `pool=sandboxes,kubernetes.io/arch=amd64`. */
    K8S_NODE_SELECTOR: labelMap.default({}),
    /** Tolerations of every sandbox pod, as a JSON array of Kubernetes tolerations. */
    K8S_TOLERATIONS: tolerations.default([]),
    K8S_IMAGE_PULL_POLICY: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
    /** Names of the image pull secrets in K8S_NAMESPACE, comma-separated. */
    K8S_IMAGE_PULL_SECRETS: stringList.default([]),

    RUNTIME_SANDBOX_REGISTRY: z.string().default(''),
    RUNTIME_SANDBOX_IMAGE_NAMESPACE: z.string().default('runtime-sandbox'),
    RUNTIME_SANDBOX_IMAGE_TAG: z.string().default('latest'),
    /** Login for `runtime-sandbox-builder --push`, when the registry wants one. */
    RUNTIME_SANDBOX_REGISTRY_USERNAME: optionalString,
    RUNTIME_SANDBOX_REGISTRY_PASSWORD: optionalString,
  })
  .superRefine((c, ctx) => {
    if (c.WORKERS > 1 && !c.REDIS_ENABLED) {
      ctx.addIssue({
        code: 'custom',
        path: ['WORKERS'],
        message: 'WORKERS > 1 needs REDIS_ENABLED=true: workers share pool and port state through Redis',
      });
    }
    if (c.REDIS_ENABLED && !c.SANDBOX_TOKEN_SECRET && !c.BEARER_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['SANDBOX_TOKEN_SECRET'], message: REDIS_NEEDS_SECRET });
    }
    if (c.CONTAINER_DEPLOYMENT === 'agentrun' || c.CONTAINER_DEPLOYMENT === 'fc') {
      ctx.addIssue({
        code: 'custom',
        path: ['CONTAINER_DEPLOYMENT'],
        message: `CONTAINER_DEPLOYMENT=${c.CONTAINER_DEPLOYMENT} is not available yet; use docker or k8s`,
      });
    }
    const dockerHostIssue = c.CONTAINER_DEPLOYMENT === 'docker' ? dockerHostIssueOf(c) : undefined;
    if (dockerHostIssue !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['DOCKER_HOST'], message: dockerHostIssue });
    }
    if (c.JSON_BYTES_IN_FLIGHT < c.MAX_JSON_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: ['JSON_BYTES_IN_FLIGHT'],
        message:
          'JSON_BYTES_IN_FLIGHT must be at least MAX_JSON_BYTES, or no JSON body that large is ever served',
      });
    }
    if (c.FILE_SYSTEM === 'oss' && !c.OSS_BUCKET_NAME) {
      ctx.addIssue({
        code: 'custom',
        path: ['OSS_BUCKET_NAME'],
        message: 'FILE_SYSTEM=oss needs OSS_BUCKET_NAME',
      });
    }
    if (!isLoopback(c.HOST) && !c.BEARER_TOKEN && !c.API_KEYS_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['BEARER_TOKEN'],
        message: `HOST=${c.HOST} listens beyond loopback; set BEARER_TOKEN (or API_KEYS_FILE) first`,
      });
    }
  });

/**
 * Why DOCKER_HOST cannot be served, if it cannot. The Docker deployer makes each sandbox's
 * workspace, its packet filter rules and its DNS resolver on the host it runs on, so the engine
 * must be that host's, reached through its socket.
 */
function dockerHostIssueOf(c: Pick<Config, 'DOCKER_HOST' | 'DOCKER_SOCKET'>): string | undefined {
  if (c.DOCKER_HOST === undefined) return undefined;
  if (!c.DOCKER_HOST.startsWith('unix://')) {
    return `DOCKER_HOST=${c.DOCKER_HOST} names a remote engine; the Docker deployer makes each sandbox's workspace, packet filter rules and DNS resolver on its own host, so it drives that host's engine only: run the server on the engine's host (README, "Run it as a container"), and unset DOCKER_HOST or set DOCKER_SOCKET`;
  }
  const socket = c.DOCKER_HOST.slice('unix://'.length);
  if (socket !== c.DOCKER_SOCKET) {
    return `DOCKER_HOST=${c.DOCKER_HOST} and DOCKER_SOCKET=${c.DOCKER_SOCKET} name different engines; the server uses DOCKER_SOCKET: set it to ${socket}, or unset DOCKER_HOST`;
  }
  return undefined;
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The name this deployment puts in labels and state keys. */
export function deploymentIdOf(config: Config): string {
  return config.DEPLOYMENT_ID ?? config.CONTAINER_PREFIX_KEY;
}

/** The deployment's own folder under DEFAULT_MOUNT_DIR, holding one workspace dir per sandbox. */
export function workspaceRootOf(config: Config): string {
  return join(resolve(config.DEFAULT_MOUNT_DIR), deploymentIdOf(config));
}

/** `[REGISTRY/]NAMESPACE/runtime-sandbox-<type>:TAG` */
export function imageNameFor(
  type: string,
  config: Pick<
    Config,
    'RUNTIME_SANDBOX_REGISTRY' | 'RUNTIME_SANDBOX_IMAGE_NAMESPACE' | 'RUNTIME_SANDBOX_IMAGE_TAG'
  >,
): string {
  const registry = config.RUNTIME_SANDBOX_REGISTRY.replace(/\/+$/, '');
  const repo = `${config.RUNTIME_SANDBOX_IMAGE_NAMESPACE}/runtime-sandbox-${type}`;
  return `${registry ? `${registry}/` : ''}${repo}:${config.RUNTIME_SANDBOX_IMAGE_TAG}`;
}
