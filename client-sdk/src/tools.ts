/**
 * The sandbox's tools, MCP-style: `list` gives each tool's name, description and JSON schema of its
 * arguments; `call` runs one and resolves with its content items, `isError` and, for the built-ins,
 * `structuredContent` (the exec result of `run_shell_command`, the Python result of
 * `run_ipython_cell`). The same module serves a sandbox behind the server and a direct sandboxd.
 */
import { EXEC_ANSWER_GRACE_MS } from './commands.js';
import { type CallOptions, callSpec, type Transport } from './transport.js';
import type {
  PythonToolArguments,
  ShellToolArguments,
  Tool,
  ToolCallRequest,
  ToolCallResult,
  ToolList,
} from './types.js';

/** The arguments of each built-in tool; any other tool takes a plain object. */
export interface BuiltinToolArguments {
  run_shell_command: ShellToolArguments;
  run_ipython_cell: PythonToolArguments;
}

export type ToolArguments<Name extends string> = Name extends keyof BuiltinToolArguments
  ? BuiltinToolArguments[Name]
  : Record<string, unknown>;

export interface ToolCallOptions {
  /**
   * Milliseconds the call may run: a shell command is then killed (exit code null, `isError`), a
   * Python cell interrupted. Default: the tool's own, none for the shell and 60 000 for Python. The
   * client waits at most this plus `EXEC_ANSWER_GRACE_MS` for the answer; without it, the client
   * sets no deadline of its own.
   */
  timeoutMs?: number;
  /** Aborting ends the call: the command is killed, the cell interrupted. */
  signal?: AbortSignal;
}

export class Tools {
  /** @internal Made by `Sandbox` and `DirectSandbox`. */
  constructor(private readonly transport: Transport) {}

  /** Every tool the sandbox offers. */
  async list(options: CallOptions = {}): Promise<Tool[]> {
    const list = await this.transport.json<ToolList>({ method: 'GET', path: '/tools', ...callSpec(options) });
    return list.tools;
  }

  /**
   * Calls a tool. A failing tool (a non-zero exit code, a Python exception, a timeout) is a result
   * with `isError: true`, not a thrown error; an unknown tool throws NotFoundError
   * (`TOOL_NOT_FOUND`), arguments that do not fit its schema ValidationError (`INVALID_TOOL_ARGUMENTS`).
   */
  async call<Name extends string>(
    name: Name,
    args: ToolArguments<Name>,
    options: ToolCallOptions = {},
  ): Promise<ToolCallResult> {
    const body: ToolCallRequest = { arguments: args };
    if (options.timeoutMs !== undefined) body.timeoutMs = options.timeoutMs;
    return this.transport.json<ToolCallResult>({
      method: 'POST',
      path: `/tools/${encodeURIComponent(name)}`,
      json: body,
      timeoutMs: options.timeoutMs === undefined ? null : options.timeoutMs + EXEC_ANSWER_GRACE_MS,
      signal: options.signal,
    });
  }
}
