/**
 * `POST /python`, on sandboxd and as `POST /v1/sandboxes/:id/python`: runs a cell in a stateful
 * Python interpreter of the sandbox. Each named context is one long-lived python3 process, started
 * on first use, whose variables and imports live until the sandbox goes (or the interpreter has to
 * be killed); cells sent to one context run one after another, never interleaved.
 */
import { z } from 'zod';
import { timeoutMsSchema } from './exec.js';

/** The context a cell runs in when the request names none. */
export const PYTHON_DEFAULT_CONTEXT = 'default';
/** A cell's time limit when the request gives none, milliseconds. */
export const PYTHON_DEFAULT_TIMEOUT_MS = 60_000;
/** How many contexts one sandbox may have; one more answers PYTHON_CONTEXT_LIMIT. */
export const PYTHON_MAX_CONTEXTS = 8;

export const pythonContextNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a context name is 1 to 64 letters, digits, _, . or -');

export const pythonRunRequestSchema = z.strictObject({
  /** The cell: statements, the last of which, if an expression, gives `value`. */
  code: z.string(),
  /** Which interpreter runs it; default `default`. */
  context: pythonContextNameSchema.default(PYTHON_DEFAULT_CONTEXT),
  /**
   * Milliseconds after which the cell is interrupted (KeyboardInterrupt); an interpreter that does
   * not come back from that soon after is killed and restarted. Default 60 000. Time spent waiting
   * behind earlier cells of the context does not count.
   */
  timeoutMs: timeoutMsSchema.default(PYTHON_DEFAULT_TIMEOUT_MS),
});
/** `POST .../python` body. */
export type PythonRunRequest = z.input<typeof pythonRunRequestSchema>;

export const pythonErrorSchema = z.object({
  /** The exception's class name, e.g. `ZeroDivisionError`, `KeyboardInterrupt`. */
  name: z.string(),
  message: z.string(),
  /** The formatted traceback, the interpreter's own frames left out. */
  traceback: z.string(),
});
export type PythonError = z.output<typeof pythonErrorSchema>;

export const pythonRunResultSchema = z.object({
  context: pythonContextNameSchema,
  /** `repr()` of the last statement's value when it is an expression that is not None; else null. */
  value: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  /** The stream was longer than the output limit and was cut. */
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  /** The exception the cell ended with; null when it ran to its end. */
  error: pythonErrorSchema.nullable(),
  /** The cell ran past `timeoutMs` and was interrupted. */
  timedOut: z.boolean(),
  /**
   * The interpreter had to be killed (the cell ignored the interrupt, or the interpreter died): the
   * context's variables and imports are gone, and its next cell starts a fresh interpreter.
   */
  restarted: z.boolean(),
  durationMs: z.number(),
});
/** `POST .../python` answer. */
export type PythonRunResult = z.output<typeof pythonRunResultSchema>;
