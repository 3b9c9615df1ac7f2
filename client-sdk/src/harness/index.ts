/**
 * The harness: runs an agent's turns in sandboxes whose workspace lives on across turns and
 * processes (snapshots under a scope key), projects the agent's workspace definition into them,
 * serialises turns per key, and gives the agent its file and command tools. No node: imports
 * here; the local-directory source is `@runtime-sandbox/client/harness/node` (node-source.ts).
 */
export {
  type AcquireOptions,
  DEFAULT_GUARD_WAIT_MS,
  type ExecutionGuard,
  type GuardLease,
  GuardTimeoutError,
  InProcessGuard,
  LeaseLostError,
} from './guard.js';
export type { Manifest, ManifestFiles } from './manifest.js';
export {
  DEFAULT_MANIFEST_PATH,
  HARNESS_DIR,
  type ProjectionOptions,
  type ProjectionResult,
  projectWorkspace,
} from './projection.js';
export { RedisGuard, type RedisGuardOptions, type RedisLike } from './redis-guard.js';
export { IsolationScope, type RuntimeContext, scopeKey } from './scope.js';
export {
  Harness,
  type HarnessOptions,
  type HarnessSandboxOptions,
  type TurnContext,
  type TurnResult,
  type TurnWork,
} from './session.js';
export type { ArgsOf, ParameterSchema, Properties, ToolParameters } from './tool-schema.js';
export {
  type AgentTool,
  AgentTools,
  type AgentToolsOptions,
  type EditFileResult,
  type ExecuteResult,
  type GlobResult,
  type GrepMatch,
  type GrepResult,
  type ListEntry,
  type ListResult,
  type ReadFileResult,
  type ToolCallOptions,
  type ToolCallOutcome,
  type ToolDefinition,
  type WriteFileResult,
} from './tools/index.js';
export {
  DEFAULT_WORKSPACE_ROOTS,
  type MemoryFile,
  memorySource,
  type SourceFile,
  type WorkspaceSource,
} from './workspace-source.js';
