/**
 * Request and response shapes of the v1 API and of sandboxd, written by hand so the client has no
 * server dependency. `SCHEMA_FIELDS` lists the same fields at runtime; a test compares it with the
 * server's `/v1/openapi.json`, and the `satisfies` clauses keep it equal to the interfaces here.
 */

/** Lifecycle state of a sandbox as the server reports it. */
export type SandboxStatus = 'creating' | 'warm' | 'claimed' | 'releasing';

/** A sandbox as `GET /v1/sandboxes/:id` describes it. Never carries tokens. */
export interface SandboxInfo {
  id: string;
  type: string;
  status: SandboxStatus;
  sessionId: string | null;
  /** Caller-chosen labels given at create. */
  metadata: Record<string, string>;
  /** Whether the sandbox came warm out of the pool (false: created cold for this call). */
  fromPool: boolean;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601 time a caller acquired it, or null while it is not bound to one. */
  claimedAt: string | null;
  /** ISO 8601 end of the hard time-to-live, or null for none. */
  expiresAt: string | null;
  /** Seconds without calls after which the server destroys the sandbox. */
  idleTimeoutSeconds: number;
  /** ISO 8601 time of the last call that touched the sandbox. */
  lastActiveAt: string;
}

/** What a sandbox may reach over the network. */
export type NetworkPolicy = 'public' | 'allowlist' | 'none';

/** `POST /v1/sandboxes` body. Every field is optional. */
export interface CreateSandboxOptions {
  /** Sandbox type; default the server's first `DEFAULT_SANDBOX_TYPE`. */
  type?: string;
  /** Free-form id grouping sandboxes of one agent session; filterable in `list`. */
  sessionId?: string;
  /** Env given to every process the sandbox runs (over the type's env). */
  env?: Record<string, string>;
  /** Caller-chosen string labels, returned by `info()` and `list()`. */
  metadata?: Record<string, string>;
  /** Seconds without calls before the server destroys the sandbox; default the type's, else `HEARTBEAT_TIMEOUT` (300). */
  idleTimeoutSeconds?: number;
  /** Hard time-to-live in seconds from the acquire; default the type's, else `SANDBOX_TTL` (0: none). */
  ttlSeconds?: number;
  /**
   * Network policy: `public` (the internet only: no other sandbox, host or private range),
   * `allowlist` (only the `allow` ranges and domains) or `none`. Only as strict as the type's policy or
   * stricter (else ValidationError NETWORK_POLICY_DENIED); a policy other than the type's skips
   * the warm pool. Default the type's.
   */
  network?: NetworkPolicy;
  /**
   * With `allowlist` (implied when given): IPv4 addresses or CIDRs (`203.0.113.10`,
   * `198.51.100.0/24`) and domains (`pypi.org`, or `*.pythonhosted.org` for the names below it,
   * reachable at the addresses they resolve to); within the type's own list when it has one.
   * Private and host ranges stay blocked whatever the list says.
   */
  allow?: string[];
  /**
   * Hydrate the workspace from a snapshot before the sandbox is handed out. A restore that fails
   * fails the create (UpstreamError RESTORE_FAILED, NotFoundError SNAPSHOT_NOT_FOUND) and leaves
   * no sandbox behind.
   */
  restore?: RestoreOptions;
}

/** `restore` by snapshot id. */
export interface RestoreFromSnapshot {
  snapshotId: string;
}

/** `restore` by key: its latest snapshot (the key's head). */
export interface RestoreFromKey {
  key: string;
  /** Start empty when the key has no snapshot yet, instead of failing with SNAPSHOT_NOT_FOUND. Default false. */
  allowEmpty?: boolean;
}

export type RestoreOptions = RestoreFromSnapshot | RestoreFromKey;

/** Where the server keeps snapshot bytes (its `FILE_SYSTEM`). */
export type SnapshotBackend = 'local' | 'oss' | 'redis';

/** A stored snapshot of a sandbox's workspace (a gzipped tar). */
export interface SnapshotInfo {
  /** A UUID. */
  id: string;
  /** The key whose line of versions it is on, or null for a one-off snapshot. */
  key: string | null;
  /** 1, 2, ... along its key's line; null without a key. */
  version: number | null;
  /** The sandbox it was taken from. */
  sandboxId: string;
  /** That sandbox's type. */
  type: string;
  /** Size of the stored archive, bytes. */
  sizeBytes: number;
  /** Lowercase hex sha256 of the stored archive; every restore checks it. */
  sha256: string;
  /** ISO 8601. */
  createdAt: string;
  backend: SnapshotBackend;
}

/** `POST /v1/sandboxes/:id/snapshots` body. */
export interface CreateSnapshotOptions {
  /** Add the snapshot to this key's line of versions as its new head; omitted: a one-off snapshot. */
  key?: string;
  /**
   * Compare-and-swap on the key's head: the snapshot id the head must still be when this snapshot
   * lands (null: the key must have no snapshot yet), else ConflictError SNAPSHOT_CONFLICT and
   * nothing changes. Omitted: the head as the server reads it when the snapshot starts.
   */
  expectedHead?: string | null;
}

/** `GET /v1/snapshots` query. */
export interface ListSnapshotsFilter {
  /** Only this key's versions, newest first. */
  key?: string;
}

/** `GET /v1/sandboxes` query. */
export interface ListSandboxesFilter {
  sessionId?: string;
  type?: string;
  status?: SandboxStatus;
}

/** `POST /v1/sandboxes/:id/keepalive` body. */
export interface KeepAliveOptions {
  /** New idle timeout in seconds; omitted: keep the current one and only refresh the idle timer. */
  idleTimeoutSeconds?: number;
}

/** One type's pool as `GET /v1/pools` reports it. */
export interface PoolInfo {
  type: string;
  /** Warm sandboxes the refiller keeps ready. */
  target: number;
  /** Warm sandboxes ready now. */
  warm: number;
  /** Sandboxes of this type being created now. */
  creating: number;
}

/** `PUT /v1/pools/:type` body. */
export interface PoolResizeRequest {
  /** New warm pool target, 0 to 1000. */
  size: number;
}

/** Resource limits of every sandbox of a type. */
export interface SandboxResources {
  /** CPU cores, e.g. 0.5. */
  cpus: number;
  /** Memory limit, MiB. */
  memoryMiB: number;
  /** Max processes and threads. */
  pidsLimit: number;
  /** Size of /workspace, MiB; the kernel stops writes past it (QUOTA_EXCEEDED for uploads). */
  workspaceMiB: number;
}

/** Where the code of a type's sandboxes may write. */
export interface SandboxStorage {
  /** Whether the image's file system is read-only. */
  readOnlyRootfs: boolean;
  /** The writable paths outside /workspace, each a tmpfs of this many MiB (part of the memory limit). */
  writable: Record<string, number>;
}

/** A registered sandbox type as `GET /v1/sandbox-types` lists it. */
export interface SandboxTypeInfo {
  name: string;
  description: string;
  /** Full image reference. */
  image: string;
  /** `built-in`, or the extension module that registered it. */
  source: string;
  resources: SandboxResources;
  storage: SandboxStorage;
  /** Default idle timeout of its sandboxes, seconds. */
  idleTimeoutSeconds: number;
  /** Default hard TTL of its sandboxes, seconds; 0: none. */
  ttlSeconds: number;
  pool: PoolInfo;
}

/** `POST .../exec` body. */
export interface ExecRequest {
  /** A string is run by `sh -c`; an array is an argv run without a shell. */
  command: string | string[];
  /** Working directory, relative to the workspace root; default the root. */
  cwd?: string;
  env?: Record<string, string>;
  /** Written to the process's stdin, which is then closed. */
  stdin?: string;
  /** Kill the whole process group after this many milliseconds; default no limit. */
  timeoutMs?: number;
}

/** `POST .../exec` answer (without streaming). */
export interface ExecResult {
  /** Exit status, or null when a signal ended the process. */
  exitCode: number | null;
  /** The signal that ended the process, e.g. `SIGKILL` after a timeout. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The stream was longer than the server's output limit and was cut. */
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** One NDJSON event of a streamed exec. */
export type ExecEvent =
  | { type: 'start'; pid: number }
  | { type: 'stdout'; data: string }
  | { type: 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; signal: string | null; timedOut: boolean; durationMs: number }
  | { type: 'error'; code: string; message: string };

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

/** A file or directory in the sandbox's workspace. */
export interface FileEntry {
  /** Base name. */
  name: string;
  /** Path relative to the workspace root, with `/` separators. */
  path: string;
  type: FileType;
  /** Bytes. */
  size: number;
  /** Permission bits, e.g. 0o644 as 420. */
  mode: number;
  /** ISO 8601 modification time. */
  modifiedAt: string;
  /** Present on symlinks: the link text as stored. */
  symlinkTarget?: string;
}

/** `PUT .../archive` answer. */
export interface ArchiveUploadResult {
  /** How many archive entries were written into the directory. */
  entries: number;
}

/** sandboxd's `GET /healthz` answer (direct mode). */
export interface SandboxdHealth {
  status: 'ok';
  /** Whether a server has bound this sandboxd to a caller (`POST /init`). */
  initialized: boolean;
}

/** `POST .../files/move` body. */
export interface MoveRequest {
  from: string;
  to: string;
  overwrite?: boolean;
}

/** `POST .../files/mkdir` body. */
export interface MkdirRequest {
  path: string;
  parents?: boolean;
}

/** JSON Schema base types. */
export type JsonType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

/**
 * JSON Schema type of a field as the SDK reads or sends it: one or two base types joined by `|`,
 * then `|null` when null is allowed, then `?` when the field may be absent. E.g. `string|null`,
 * `string|array`, `integer?`.
 */
export type FieldSpec = `${JsonType}${'' | `|${JsonType}`}${'' | '|null'}${'' | '?'}`;

/** Exactly one spec per field of T, no more, no fewer. */
type FieldsOf<T> = { [K in keyof Required<T>]: FieldSpec };

/** The fields of every shape above, for the OpenAPI drift test. */
export const SCHEMA_FIELDS = {
  SandboxInfo: {
    id: 'string',
    type: 'string',
    status: 'string',
    sessionId: 'string|null',
    metadata: 'object',
    fromPool: 'boolean',
    createdAt: 'string',
    claimedAt: 'string|null',
    expiresAt: 'string|null',
    idleTimeoutSeconds: 'integer',
    lastActiveAt: 'string',
  } satisfies FieldsOf<SandboxInfo>,
  CreateSandboxOptions: {
    type: 'string?',
    sessionId: 'string?',
    env: 'object?',
    metadata: 'object?',
    idleTimeoutSeconds: 'integer?',
    ttlSeconds: 'integer?',
    network: 'string?',
    allow: 'array?',
    restore: 'object?',
  } satisfies FieldsOf<CreateSandboxOptions>,
  RestoreFromSnapshot: {
    snapshotId: 'string',
  } satisfies FieldsOf<RestoreFromSnapshot>,
  RestoreFromKey: {
    key: 'string',
    allowEmpty: 'boolean?',
  } satisfies FieldsOf<RestoreFromKey>,
  SnapshotInfo: {
    id: 'string',
    key: 'string|null',
    version: 'integer|null',
    sandboxId: 'string',
    type: 'string',
    sizeBytes: 'integer',
    sha256: 'string',
    createdAt: 'string',
    backend: 'string',
  } satisfies FieldsOf<SnapshotInfo>,
  CreateSnapshotOptions: {
    key: 'string?',
    expectedHead: 'string|null?',
  } satisfies FieldsOf<CreateSnapshotOptions>,
  KeepAliveOptions: {
    idleTimeoutSeconds: 'integer?',
  } satisfies FieldsOf<KeepAliveOptions>,
  SandboxTypeInfo: {
    name: 'string',
    description: 'string',
    image: 'string',
    source: 'string',
    resources: 'object',
    storage: 'object',
    idleTimeoutSeconds: 'integer',
    ttlSeconds: 'integer',
    pool: 'object',
  } satisfies FieldsOf<SandboxTypeInfo>,
  PoolResizeRequest: {
    size: 'integer',
  } satisfies FieldsOf<PoolResizeRequest>,
  SandboxResources: {
    cpus: 'number',
    memoryMiB: 'integer',
    pidsLimit: 'integer',
    workspaceMiB: 'integer',
  } satisfies FieldsOf<SandboxResources>,
  SandboxStorage: {
    readOnlyRootfs: 'boolean',
    writable: 'object',
  } satisfies FieldsOf<SandboxStorage>,
  PoolInfo: {
    type: 'string',
    target: 'integer',
    warm: 'integer',
    creating: 'integer',
  } satisfies FieldsOf<PoolInfo>,
  ExecRequest: {
    command: 'string|array',
    cwd: 'string?',
    env: 'object?',
    stdin: 'string?',
    timeoutMs: 'integer?',
  } satisfies FieldsOf<ExecRequest>,
  ExecResult: {
    exitCode: 'integer|null',
    signal: 'string|null',
    stdout: 'string',
    stderr: 'string',
    stdoutTruncated: 'boolean',
    stderrTruncated: 'boolean',
    timedOut: 'boolean',
    durationMs: 'number',
  } satisfies FieldsOf<ExecResult>,
  FileEntry: {
    name: 'string',
    path: 'string',
    type: 'string',
    size: 'integer',
    mode: 'integer',
    modifiedAt: 'string',
    symlinkTarget: 'string?',
  } satisfies FieldsOf<FileEntry>,
  ArchiveUploadResult: {
    entries: 'integer',
  } satisfies FieldsOf<ArchiveUploadResult>,
  MoveRequest: {
    from: 'string',
    to: 'string',
    overwrite: 'boolean?',
  } satisfies FieldsOf<MoveRequest>,
  MkdirRequest: {
    path: 'string',
    parents: 'boolean?',
  } satisfies FieldsOf<MkdirRequest>,
} as const;

export type SchemaName = keyof typeof SCHEMA_FIELDS;
