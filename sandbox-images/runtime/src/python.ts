/**
 * POST /python: the sandbox's Python contexts, each an Interpreter started on first use and kept
 * until the sandbox goes (or it had to be killed, when the next cell starts a fresh one). Cells of
 * one context queue up and run one at a time, so their output never interleaves; contexts are
 * independent of each other. At most PYTHON_MAX_CONTEXTS contexts per sandbox.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PYTHON_MAX_CONTEXTS, type PythonRunResult, pythonRunRequestSchema } from '@runtime-sandbox/contract';
import type { z } from 'zod';
import type { Context } from './context.js';
import { SandboxdError } from './errors.js';
import { hangUpSignal, type Route, readJson, sendJson } from './http.js';
import { type Cell, type CellOutcome, Interpreter } from './python-interpreter.js';

export type PythonRun = z.output<typeof pythonRunRequestSchema>;

class PythonContext {
  private interpreter: Interpreter | undefined;
  /** The end of the last queued cell; the next one starts after it. */
  private queue: Promise<unknown> = Promise.resolve();

  run(ctx: Context, cell: Cell): Promise<CellOutcome> {
    const turn = this.queue.then(() => this.runNow(ctx, cell));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  kill(): void {
    this.interpreter?.kill();
  }

  private async runNow(ctx: Context, cell: Cell): Promise<CellOutcome> {
    if (cell.signal.aborted) {
      throw new SandboxdError('TIMEOUT', 'The caller hung up before the cell started; it was not run');
    }
    if (!this.interpreter?.alive) this.interpreter = await Interpreter.start(ctx);
    const outcome = await this.interpreter.run(cell);
    if (outcome.restarted) this.interpreter = undefined;
    return outcome;
  }
}

/** Every Python context of the sandbox, by name. */
export class PythonContexts {
  private readonly contexts = new Map<string, PythonContext>();

  async run(ctx: Context, request: PythonRun, signal: AbortSignal): Promise<PythonRunResult> {
    let context = this.contexts.get(request.context);
    if (!context) {
      if (this.contexts.size >= PYTHON_MAX_CONTEXTS) {
        throw new SandboxdError(
          'PYTHON_CONTEXT_LIMIT',
          `This sandbox already has ${PYTHON_MAX_CONTEXTS} Python contexts, the most it may have`,
          { limit: PYTHON_MAX_CONTEXTS, contexts: [...this.contexts.keys()] },
        );
      }
      context = new PythonContext();
      this.contexts.set(request.context, context);
    }
    const outcome = await context.run(ctx, { code: request.code, timeoutMs: request.timeoutMs, signal });
    return { context: request.context, ...outcome };
  }

  /** Kills every interpreter (shutdown). */
  killAll(): void {
    for (const context of this.contexts.values()) context.kill();
  }
}

async function handlePython(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = await readJson(req, ctx.limits.maxJsonBytes, pythonRunRequestSchema);
  sendJson(res, 200, await ctx.python.run(ctx, request, hangUpSignal(res)));
}

export function pythonRoutes(ctx: Context): Array<[string, Route]> {
  return [['/python', { auth: true, methods: { POST: (req, res) => handlePython(ctx, req, res) } }]];
}
