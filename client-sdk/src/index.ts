/**
 * @runtime-sandbox/client: a TypeScript client for the runtime-sandbox server, and for one
 * sandboxd directly. Web-standard fetch and streams only; its one dependency is the shared contract.
 */
import './dispose.js';

export {
  BUILTIN_TOOLS,
  ERROR_CODES,
  type ErrorBody,
  type ErrorCode,
  isErrorCode,
  PYTHON_DEFAULT_CONTEXT,
  PYTHON_DEFAULT_TIMEOUT_MS,
  PYTHON_MAX_CONTEXTS,
  statusOf,
} from '@runtime-sandbox/contract';
export { Archive, type ArchiveOptions } from './archive.js';
export { SandboxClient, type SandboxClientOptions } from './client.js';
export {
  CommandHandle,
  type CommandOutput,
  type CommandResult,
  type OutputCallback,
} from './command-handle.js';
export { type CommandOptions, Commands, EXEC_ANSWER_GRACE_MS, type RunOptions } from './commands.js';
export { type DirectConnectOptions, DirectSandbox, type SandboxDataPlane } from './direct-sandbox.js';
export {
  AuthError,
  CapacityError,
  ConflictError,
  createSandboxError,
  ERROR_CLASS_BY_CODE,
  NotFoundError,
  SandboxError,
  type SandboxErrorClass,
  type SandboxErrorInit,
  TimeoutError,
  UpstreamError,
  ValidationError,
} from './errors.js';
export {
  Files,
  type ListOptions,
  type MkdirOptions,
  type MoveOptions,
  type ReadFormat,
  type ReadOptions,
  type RemoveOptions,
  type WriteOptions,
} from './files.js';
export * from './harness/index.js';
export { parseNdjson } from './ndjson.js';
export { Python, type PythonRunOptions } from './python.js';
export { type CloseOptions, Sandbox } from './sandbox.js';
export { SandboxSnapshots, SNAPSHOT_TIMEOUT_MS, Snapshots } from './snapshots.js';
export {
  type BuiltinToolArguments,
  type ToolArguments,
  type ToolCallOptions,
  Tools,
} from './tools.js';
export {
  type CallOptions,
  type ConnectionOptions,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  type FetchFunction,
  type RawBody,
} from './transport.js';
export * from './types.js';
