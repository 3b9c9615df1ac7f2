/**
 * `POST /exec`, on sandboxd and as `POST /v1/sandboxes/:id/exec`: the request, the answer, and the
 * NDJSON events of a streamed run (`Accept: application/x-ndjson`), where `start` comes only if
 * the process started. A program that cannot be started exits 127 if missing, else 126, with the
 * reason on stderr, in both forms.
 */
import { z } from 'zod';
import { envSchema } from './env.js';

/** A per-call time limit in milliseconds: a positive integer, at most a day. */
export const timeoutMsSchema = z
  .number()
  .int()
  .positive()
  .max(24 * 60 * 60 * 1000);

export const execRequestSchema = z.strictObject({
  /** A string is run by `sh -c`; an array is an argv run without a shell. */
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  /** Working directory, relative to the workspace root (resolved inside it); default the root. */
  cwd: z.string().optional(),
  env: envSchema.optional(),
  /** Written to the process's stdin, which is then closed. */
  stdin: z.string().optional(),
  /** Kill the whole process group after this many milliseconds; default no limit. */
  timeoutMs: timeoutMsSchema.optional(),
});
/** `POST .../exec` body. */
export type ExecRequest = z.input<typeof execRequestSchema>;

export const execResultSchema = z.object({
  /** Exit status, or null when a signal ended the process. */
  exitCode: z.number().int().nullable(),
  /** The signal that ended the process, e.g. `SIGKILL` after a timeout. */
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  /** The stream was longer than the output limit and was cut. */
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  timedOut: z.boolean(),
  durationMs: z.number(),
});
/** `POST .../exec` answer (without streaming). */
export type ExecResult = z.output<typeof execResultSchema>;

export const execEventSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('start'), pid: z.number().int() }),
    z.object({ type: z.literal('stdout'), data: z.string() }),
    z.object({ type: z.literal('stderr'), data: z.string() }),
    z.object({
      type: z.literal('exit'),
      exitCode: z.number().int().nullable(),
      signal: z.string().nullable(),
      timedOut: z.boolean(),
      durationMs: z.number(),
    }),
    z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  ])
  .describe('One line of an NDJSON exec stream');
/** One NDJSON event of a streamed exec. */
export type ExecEvent = z.output<typeof execEventSchema>;
