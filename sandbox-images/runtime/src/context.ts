/**
 * The state every route handler shares. Mutable fields change exactly once, at /init.
 */
import type { TokenGate } from './auth.js';
import type { ProcessGroups } from './exec.js';
import type { RunAs } from './handles.js';
import type { Workspace } from './paths.js';

export interface Limits {
  maxJsonBytes: number;
  maxUploadBytes: number;
  maxOutputBytes: number;
}

export interface Context {
  readonly limits: Limits;
  readonly gate: TokenGate;
  readonly processes: ProcessGroups;
  readonly runAs: RunAs;
  workspace: Workspace;
  /** Env of every process run here: the image's env without sandboxd's settings, then the caller's. */
  processEnv: Record<string, string>;
  initialized: boolean;
}
