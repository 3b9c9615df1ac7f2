/**
 * One Python context's interpreter: a python3 process running PYTHON_DRIVER as the sandbox user,
 * in its own process group, that runs one cell at a time. A cell past its time limit gets SIGINT
 * (KeyboardInterrupt); an interpreter that does not answer within INTERRUPT_GRACE_MS of that, dies,
 * or breaks the driver's protocol is killed with its whole group, and the cell says `restarted`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { type PythonError, type PythonRunResult, pythonErrorSchema } from '@runtime-sandbox/contract';
import { z } from 'zod';
import type { Context } from './context.js';
import { SandboxdError } from './errors.js';
import { CollectedOutput, openCwd } from './exec.js';
import { PYTHON_DRIVER } from './python-driver.js';

/** How long an interrupted cell may take to stop before the interpreter is killed. */
export const INTERRUPT_GRACE_MS = 2000;
/**
 * After a cell's outcome arrives, how long its marker may take on stdout and stderr. Written before
 * the outcome, it is late only when the cell closed or redirected those descriptors.
 */
const MARKER_GRACE_MS = 1000;
/** After the interpreter died, how long the rest of its output may take (a grandchild may hold a pipe). */
const PIPE_GRACE_MS = 100;

export interface Cell {
  code: string;
  timeoutMs: number;
  /** Aborted when the caller hung up: the cell is interrupted as on a timeout. */
  signal: AbortSignal;
}

export type CellOutcome = Omit<PythonRunResult, 'context'>;

const driverOutcomeSchema = z.object({ value: z.string().nullable(), error: pythonErrorSchema.nullable() });
type DriverOutcome = z.output<typeof driverOutcomeSchema>;

/** One output stream of a cell: collected up to the limit until the cell's marker shows up in it. */
class MarkedStream {
  private readonly output: CollectedOutput;
  /** The end of what came so far, held back because it may be the start of the marker. */
  private pending: Buffer = Buffer.alloc(0);
  done = false;

  constructor(
    private readonly marker: Buffer,
    limit: number,
    private readonly onDone: () => void,
  ) {
    this.output = new CollectedOutput(limit);
  }

  add(chunk: Buffer): void {
    if (this.done) return;
    const data = Buffer.concat([this.pending, chunk]);
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      this.output.add(data.subarray(0, at));
      this.pending = Buffer.alloc(0);
      this.end();
      return;
    }
    const held = Math.min(data.length, this.marker.length - 1);
    this.output.add(data.subarray(0, data.length - held));
    this.pending = data.subarray(data.length - held);
  }

  /** No marker will come (the stream ended, or its grace passed): what was held back is output. */
  end(): void {
    if (this.done) return;
    this.output.add(this.pending);
    this.done = true;
    this.onDone();
  }

  get text(): string {
    return this.output.text();
  }

  get truncated(): boolean {
    return this.output.truncated;
  }
}

/** Length-prefixed frames (4-byte big-endian length) read from a stream, each at most `maxBytes`. */
class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(
    private readonly maxBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly onViolation: (reason: string) => void,
  ) {}

  add(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const size = this.buffered.readUInt32BE(0);
      if (size > this.maxBytes) {
        this.onViolation(`a frame of ${size} bytes, over the limit of ${this.maxBytes}`);
        return;
      }
      if (this.buffered.length < 4 + size) return;
      const frame = this.buffered.subarray(4, 4 + size);
      this.buffered = this.buffered.subarray(4 + size);
      this.onFrame(frame);
    }
  }
}

function encodeFrame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** What the running cell is told about the interpreter's streams and its end. */
interface CellListener {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  streamEnded(stream: 'stdout' | 'stderr'): void;
  outcome(outcome: DriverOutcome): void;
  died(why: PythonError): void;
}

export class Interpreter {
  private cell: CellListener | undefined;
  /** Why the interpreter was killed, when sandboxd killed it; the cell's error says so. */
  private killReason: string | undefined;
  private exited = false;

  private constructor(
    private readonly child: ChildProcess,
    private readonly pid: number,
    private readonly maxChars: number,
  ) {
    const [, stdout, stderr, , results] = child.stdio;
    // A pipe the interpreter closed or died with fails here with EPIPE or ECONNRESET; its exit is
    // what counts.
    for (const pipe of child.stdio) pipe?.on('error', () => {});
    for (const stream of ['stdout', 'stderr'] as const) {
      const pipe = stream === 'stdout' ? stdout : stderr;
      pipe?.on('data', (chunk: Buffer) => this.cell?.output(stream, chunk));
      pipe?.on('end', () => this.cell?.streamEnded(stream));
    }
    // Every text field of an outcome is clipped to maxChars by the driver; JSON may spell a character
    // in up to 12 bytes (a \u escape pair).
    const frames = new FrameReader(
      2 * 12 * maxChars + 64 * 1024,
      (frame) => this.receive(frame),
      (reason) => this.kill(`the interpreter broke its protocol (${reason})`),
    );
    (results as Readable | null)?.on('data', (chunk: Buffer) => frames.add(chunk));
    child.once('exit', (code, signal) => {
      this.exited = true;
      this.killGroup();
      const reason =
        this.killReason ?? `the interpreter exited (${signal ?? `code ${code}`}) while running the cell`;
      this.cell?.died({
        name: this.killReason === undefined ? 'InterpreterExited' : 'InterpreterRestarted',
        message: `${reason}; this context's state is lost and its next cell starts a fresh interpreter`,
        traceback: '',
      });
    });
  }

  /** Starts python3 with the driver, as the sandbox user, in the workspace root. */
  static async start(ctx: Context): Promise<Interpreter> {
    const cwd = await openCwd(ctx, '.');
    let child: ChildProcess;
    try {
      child = spawn('python3', ['-u', '-c', PYTHON_DRIVER], {
        cwd: cwd.path,
        env: ctx.processEnv,
        // Its own process group, so that a kill reaches what the cells started too.
        detached: true,
        // No stdin (input() meets EOF); fds 3 and 4 carry cells in and outcomes out.
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
        ...(ctx.runAs.switchUser ? { uid: ctx.runAs.uid, gid: ctx.runAs.gid } : {}),
      });
    } finally {
      cwd.close().catch((err: unknown) => console.error('sandboxd: cannot close a cwd:', err));
    }
    if (child.pid === undefined) {
      const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
      if (error.code === 'ENOENT') {
        throw new SandboxdError('PYTHON_UNAVAILABLE', 'This sandbox has no python3 to run cells with');
      }
      throw error;
    }
    return new Interpreter(child, child.pid, ctx.limits.maxOutputBytes);
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Runs one cell; the caller makes sure cells do not overlap. Never rejects. */
  run(cell: Cell): Promise<CellOutcome> {
    const startedAt = performance.now();
    // NULs around it: text a cell prints is unlikely to contain it by chance.
    const markerText = `\u0000${randomBytes(16).toString('hex')}\u0000`;
    const marker = Buffer.from(markerText);
    return new Promise((resolve) => {
      let outcome: DriverOutcome | undefined;
      let death: PythonError | undefined;
      let timedOut = false;
      const timers: NodeJS.Timeout[] = [];
      const streams = {
        stdout: new MarkedStream(marker, this.maxChars, () => settle()),
        stderr: new MarkedStream(marker, this.maxChars, () => settle()),
      };
      const interrupt = () => {
        try {
          process.kill(this.pid, 'SIGINT');
        } catch {
          // Already gone: its exit ends the cell.
        }
        timers.push(
          setTimeout(
            () => this.kill(`the cell did not stop within ${INTERRUPT_GRACE_MS} ms of its interrupt`),
            INTERRUPT_GRACE_MS,
          ),
        );
      };
      const onAbort = () => interrupt();
      const settle = () => {
        const finished = death !== undefined || outcome !== undefined;
        if (!finished || !streams.stdout.done || !streams.stderr.done) return;
        for (const timer of timers) clearTimeout(timer);
        cell.signal.removeEventListener('abort', onAbort);
        this.cell = undefined;
        resolve({
          value: death === undefined ? (outcome?.value ?? null) : null,
          stdout: streams.stdout.text,
          stderr: streams.stderr.text,
          stdoutTruncated: streams.stdout.truncated,
          stderrTruncated: streams.stderr.truncated,
          error: death ?? outcome?.error ?? null,
          timedOut,
          restarted: death !== undefined,
          durationMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
        });
      };
      const endStreamsAfter = (ms: number) =>
        timers.push(
          setTimeout(() => {
            streams.stdout.end();
            streams.stderr.end();
          }, ms),
        );
      this.cell = {
        output: (stream, chunk) => streams[stream].add(chunk),
        streamEnded: (stream) => streams[stream].end(),
        outcome: (received) => {
          outcome = received;
          endStreamsAfter(MARKER_GRACE_MS);
          settle();
        },
        died: (why) => {
          death = why;
          endStreamsAfter(PIPE_GRACE_MS);
          settle();
        },
      };
      if (this.exited) {
        this.cell.died({ name: 'InterpreterExited', message: 'the interpreter is gone', traceback: '' });
        return;
      }
      timers.push(
        setTimeout(() => {
          timedOut = true;
          interrupt();
        }, cell.timeoutMs),
      );
      cell.signal.addEventListener('abort', onAbort, { once: true });
      const [, , , input] = this.child.stdio;
      (input as Writable | null)?.write(
        encodeFrame({ code: cell.code, marker: markerText, maxChars: this.maxChars }),
      );
    });
  }

  /** Kills the interpreter and everything it started; `reason` is what the running cell reports. */
  kill(reason = 'the sandbox is shutting down'): void {
    this.killReason ??= reason;
    this.killGroup();
  }

  private killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
  }

  private receive(frame: Buffer): void {
    let parsed: DriverOutcome | undefined;
    try {
      parsed = driverOutcomeSchema.safeParse(JSON.parse(frame.toString('utf8'))).data;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined) this.kill('the interpreter sent an outcome that is not one');
    else this.cell?.outcome(parsed);
  }
}
