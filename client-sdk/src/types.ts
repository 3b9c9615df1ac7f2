/**
 * Request and response shapes of the v1 API and of sandboxd, under the SDK's names. They are the
 * shared contract's (@runtime-sandbox/contract): the zod schemas the server and sandboxd validate
 * with, so they cannot drift from what those accept and answer.
 */
export type {
  ArchiveUploadResult,
  CreateSandboxOptions,
  CreateSnapshotOptions,
  ExecEvent,
  ExecRequest,
  ExecResult,
  FileEntry,
  FileType,
  KeepAliveOptions,
  ListSandboxesFilter,
  ListSnapshotsFilter,
  MkdirRequest,
  MoveRequest,
  NetworkPolicy,
  PoolInfo,
  PoolResizeRequest,
  RestoreFromKey,
  RestoreFromSnapshot,
  RestoreOptions,
  SandboxdHealth,
  SandboxInfo,
  SandboxResources,
  SandboxStatus,
  SandboxStorage,
  SandboxTypeInfo,
  SnapshotBackend,
  SnapshotInfo,
} from '@runtime-sandbox/contract';
