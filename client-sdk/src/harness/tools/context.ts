/**
 * What every agent tool shares: the sandbox, the toolkit's options and limits, path confinement
 * (workspace-path.ts), hidden folders, and `defineTool`, which ties a tool's schema to the check
 * of its arguments and merges the per-call and toolkit signals.
 */
import type { SandboxDataPlane } from '../../direct-sandbox.js';
import { ValidationError } from '../../errors.js';
import { HARNESS_DIR } from '../projection.js';
import { type ArgsOf, type Properties, type ToolParameters, validateArgs } from '../tool-schema.js';
import { confinePath, isWithin } from '../workspace-path.js';

export interface ToolCallOptions {
  signal?: AbortSignal;
}

export interface AgentTool<Result = unknown> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments, for the model; `run` checks arguments against it. */
  readonly parameters: ToolParameters;
  /** Runs the tool. `args` is an object or its JSON text. Throws ValidationError for bad arguments. */
  run(args: unknown, options?: ToolCallOptions): Promise<Result>;
}

export interface AgentToolsOptions {
  /**
   * Absolute path of the workspace root in the sandbox (e.g. `/workspace`): absolute tool paths
   * must lie under it. Unknown: only relative paths are taken.
   */
  workspaceRoot?: string;
  /** `execute`'s timeout when the model gives none, and grep_files' timeout, milliseconds. Default 120000. */
  execTimeoutMs?: number;
  /** The longest timeout the model may ask `execute` for, milliseconds. Default 600000. */
  maxExecTimeoutMs?: number;
  /** Longest text a tool returns (output, file content), characters; more is cut and flagged. Default 100000. */
  maxOutputChars?: number;
  /** Most matches, paths or entries a search or listing returns. Default 500. */
  maxResults?: number;
  /** Applies to every call, e.g. the turn's lease signal. */
  signal?: AbortSignal;
  /** Workspace folders left out of listings and searches. Default the harness's own `.harness`. */
  hidden?: readonly string[];
}

/** Read from the options on each use, as callers may change them between calls. */
export class ToolContext {
  constructor(
    readonly sandbox: SandboxDataPlane,
    private readonly options: AgentToolsOptions,
  ) {}

  get execTimeoutMs(): number {
    return this.options.execTimeoutMs ?? 120_000;
  }

  get maxExecTimeoutMs(): number {
    return this.options.maxExecTimeoutMs ?? 600_000;
  }

  get maxOutputChars(): number {
    return this.options.maxOutputChars ?? 100_000;
  }

  get maxResults(): number {
    return this.options.maxResults ?? 500;
  }

  get hidden(): readonly string[] {
    return this.options.hidden ?? [HARNESS_DIR];
  }

  /** `path` (default the workspace root) confined to the workspace. */
  path(path: string | undefined): string {
    return confinePath(path ?? '.', this.options.workspaceRoot);
  }

  isHidden(path: string): boolean {
    return this.hidden.some((hidden) => isWithin(path, hidden));
  }

  defineTool<P extends Properties, R extends keyof P & string, Result>(
    name: string,
    description: string,
    parameters: ToolParameters<P, R>,
    run: (args: ArgsOf<P, R>, call: ToolCallOptions) => Promise<Result>,
  ): AgentTool<Result> {
    return {
      name,
      description,
      parameters,
      run: (args, options = {}) => run(validateArgs(name, parameters, args), this.callOptions(options)),
    };
  }

  /** The per-call signal and the toolkit's, whichever aborts first. */
  private callOptions(options: ToolCallOptions): ToolCallOptions {
    const signals = [options.signal, this.options.signal].filter((signal) => signal !== undefined);
    if (signals.length === 0) return {};
    return { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) };
  }
}

/** UTF-8 text, or a ValidationError for a binary file (tools show text to a model). */
export function decodeText(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ValidationError({
      code: 'VALIDATION_ERROR',
      message: `${path} is not UTF-8 text; use execute to inspect binary files`,
      details: { path },
    });
  }
}

/** At most `max` characters: the start and the end, with a marker where the middle was cut. */
export function clip(text: string, max: number): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  const half = Math.floor(max / 2);
  return {
    text: `${text.slice(0, half)}\n[... ${text.length - 2 * half} characters cut ...]\n${text.slice(-half)}`,
    cut: true,
  };
}

export function toolError(tool: string, message: string): ValidationError {
  return new ValidationError({ code: 'VALIDATION_ERROR', message: `${tool}: ${message}`, details: { tool } });
}
