/**
 * Running commands in a sandbox: `run` waits for the result, `start` streams the output.
 * The same module serves a sandbox behind the server and a direct sandboxd connection.
 */
import { NDJSON } from '@runtime-sandbox/contract';
import { CommandHandle, type CommandResult, type OutputCallback } from './command-handle.js';
import type { Transport } from './transport.js';
import type { ExecRequest, ExecResult } from './types.js';

/**
 * Extra time the client waits for an exec answer beyond the command's own `timeoutMs`, for the
 * server to kill the process group and answer. Milliseconds.
 */
export const EXEC_ANSWER_GRACE_MS = 30_000;

export interface CommandOptions {
  /** Working directory, relative to the workspace root (absolute paths must stay inside it). Default: the root. */
  cwd?: string;
  /** Env for this command, over the sandbox's env. */
  env?: Record<string, string>;
  /** Written to the command's stdin, which is then closed. Default: an empty, closed stdin. */
  stdin?: string;
  /**
   * Milliseconds after which sandboxd kills the command's whole process group and reports
   * `timedOut: true`. Default: no limit. The client then waits at most this plus
   * `EXEC_ANSWER_GRACE_MS` for the answer; without it, the client sets no deadline of its own.
   */
  timeoutMs?: number;
  /**
   * Aborting kills the command: `run` without callbacks rejects with the signal's reason (the
   * dropped connection makes sandboxd kill the process group); a streamed command ends with
   * `killed: true`; a command not yet accepted is not started.
   */
  signal?: AbortSignal;
}

export interface RunOptions extends CommandOptions {
  /** Each stdout chunk as it arrives; given either callback, the command runs streamed. */
  onStdout?: OutputCallback;
  /** Each stderr chunk as it arrives. */
  onStderr?: OutputCallback;
}

export class Commands {
  /** @internal Made by `Sandbox` and `DirectSandbox`. */
  constructor(private readonly transport: Transport) {}

  /**
   * Runs a command and resolves when it ends. A string runs under `sh -c`; an array is an argv
   * run without a shell. A non-zero exit code is a normal result (check `exitCode`).
   * Without callbacks the output comes in one answer, cut at the server's output limit
   * (`stdoutTruncated`); with `onStdout`/`onStderr` it streams, uncut.
   */
  async run(command: string | string[], options: RunOptions = {}): Promise<CommandResult> {
    if (options.onStdout || options.onStderr) {
      const handle = await this.start(command, options);
      return handle.wait();
    }
    const result = await this.transport.json<ExecResult>({
      method: 'POST',
      path: '/exec',
      json: execRequest(command, options),
      timeoutMs: options.timeoutMs === undefined ? null : options.timeoutMs + EXEC_ANSWER_GRACE_MS,
      signal: options.signal,
    });
    return { ...result, killed: false };
  }

  /**
   * Starts a command and resolves once sandboxd has accepted it, with a handle that streams its
   * output (`for await (const chunk of handle)`, or the callbacks) and ends with `wait()`.
   * Killing the handle, or aborting `signal`, kills the command's process group.
   */
  async start(command: string | string[], options: RunOptions = {}): Promise<CommandHandle> {
    // One controller ends the request, before and after the answer starts; the caller's signal
    // feeds it until the handle takes over.
    const abortController = new AbortController();
    const { signal } = options;
    const abort = () => abortController.abort(signal?.reason);
    if (signal?.aborted) abort();
    else signal?.addEventListener('abort', abort, { once: true });
    try {
      const body = await this.transport.stream({
        method: 'POST',
        path: '/exec',
        json: execRequest(command, options),
        accept: NDJSON,
        signal: abortController.signal,
      });
      return new CommandHandle(body, abortController, options);
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }
}

function execRequest(command: string | string[], options: CommandOptions): ExecRequest {
  const request: ExecRequest = { command };
  if (options.cwd !== undefined) request.cwd = options.cwd;
  if (options.env !== undefined) request.env = options.env;
  if (options.stdin !== undefined) request.stdin = options.stdin;
  if (options.timeoutMs !== undefined) request.timeoutMs = options.timeoutMs;
  return request;
}
