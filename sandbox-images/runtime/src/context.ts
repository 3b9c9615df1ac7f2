/**
 * The state every route handler shares. Mutable fields change exactly once, at /init.
 */
import type { TokenGate } from '@runtime-sandbox/contract/token-gate';
import type { ProcessGroups } from './exec.js';
import type { RunAs } from './handles.js';
import type { Workspace } from './paths.js';
import type { PythonContexts } from './python.js';

export const DEFAULT_LIMITS = {
  /** JSON request bodies (exec with stdin included). */
  maxJsonBytes: 16 * 1024 * 1024,
  /** Raw file writes and archive uploads. */
  maxUploadBytes: 4 * 1024 * 1024 * 1024,
  /** Per stream (stdout, stderr) in a non-streaming exec answer; the rest is cut and flagged. */
  maxOutputBytes: 16 * 1024 * 1024,
} as const;

export interface Limits {
  maxJsonBytes: number;
  maxUploadBytes: number;
  maxOutputBytes: number;
}

export interface Context {
  readonly limits: Limits;
  readonly gate: TokenGate;
  readonly processes: ProcessGroups;
  readonly python: PythonContexts;
  readonly runAs: RunAs;
  workspace: Workspace;
  /** Env of every process run here: the image's env without sandboxd's settings, then the caller's. */
  processEnv: Record<string, string>;
  initialized: boolean;
}
