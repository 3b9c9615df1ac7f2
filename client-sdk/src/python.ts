/**
 * The sandbox's stateful Python interpreter: `run` sends a cell to a context (one long-lived
 * python3 process each, started on first use) and resolves with its stdout, stderr, the value of
 * its last expression and its error. The same module serves a sandbox behind the server and a
 * direct sandboxd.
 */
import { PYTHON_DEFAULT_TIMEOUT_MS } from '@runtime-sandbox/contract';
import { EXEC_ANSWER_GRACE_MS } from './commands.js';
import type { Transport } from './transport.js';
import type { PythonRunRequest, PythonRunResult } from './types.js';

export interface PythonRunOptions {
  /**
   * The interpreter to run in: 1 to 64 letters, digits, `_`, `.` or `-`. Each context keeps its own
   * variables; a sandbox has at most PYTHON_MAX_CONTEXTS (8), one more throws CapacityError
   * (`PYTHON_CONTEXT_LIMIT`). Default `default`.
   */
  context?: string;
  /**
   * Milliseconds the cell may run before it is interrupted (KeyboardInterrupt, `timedOut: true`);
   * an interpreter that does not stop within 2 s of that is killed and restarted (`restarted:
   * true`, its state lost). Default 60 000. Waiting behind earlier cells of the context does not
   * count toward it, but does toward the client's deadline: this plus `EXEC_ANSWER_GRACE_MS`.
   */
  timeoutMs?: number;
  /** Aborting ends the call and interrupts the cell (or drops it, if it has not started). */
  signal?: AbortSignal;
}

export class Python {
  /** @internal Made by `Sandbox` and `DirectSandbox`. */
  constructor(private readonly transport: Transport) {}

  /**
   * Runs a cell; cells sent to one context run one after another. An exception in the cell is a
   * result (`error` with its name, message and traceback), not a thrown error, and the context
   * stays usable.
   */
  async run(code: string, options: PythonRunOptions = {}): Promise<PythonRunResult> {
    const body: PythonRunRequest = { code };
    if (options.context !== undefined) body.context = options.context;
    if (options.timeoutMs !== undefined) body.timeoutMs = options.timeoutMs;
    return this.transport.json<PythonRunResult>({
      method: 'POST',
      path: '/python',
      json: body,
      timeoutMs: (options.timeoutMs ?? PYTHON_DEFAULT_TIMEOUT_MS) + EXEC_ANSWER_GRACE_MS,
      signal: options.signal,
    });
  }
}
