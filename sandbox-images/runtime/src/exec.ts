/**
 * POST /exec: runs a command in its own process group and answers with the whole result (JSON) or
 * a stream of events (NDJSON). A timeout, a vanished client or shutdown kills the whole group.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import {
  type ExecEvent,
  type ExecRequest,
  type ExecResult,
  encodeNdjson,
  execRequestSchema,
  NDJSON,
} from '@runtime-sandbox/contract';
import type { Context } from './context.js';
import { isErrno, SandboxdError, withFsErrors } from './errors.js';
import { Dir, type RunAs } from './handles.js';
import { type Route, readJson, sendJson } from './http.js';

/**
 * After the main process exits, how long its pipes may stay open. A background grandchild that
 * keeps stdout open must not hold the answer forever; its later output is not collected.
 */
const PIPE_GRACE_MS = 100;

type StreamName = 'stdout' | 'stderr';

interface Outcome {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
}

/** The process groups running now, so that shutdown can kill them all. */
export class ProcessGroups {
  private readonly running = new Set<RunningProcess>();

  /** Tracks `running` until it finishes, and kills it if `res` closes before its answer was sent. */
  watch(running: RunningProcess, res: ServerResponse): void {
    this.running.add(running);
    void running.finished.finally(() => this.running.delete(running));
    // A caller that hung up will not read the answer: its process goes too. (After a complete
    // answer the group is left alone: a background job it started may be meant to outlive it.)
    res.once('close', () => {
      if (!res.writableFinished) running.kill();
    });
  }

  killAll(): void {
    for (const running of this.running) running.kill();
  }
}

export interface Launch {
  request: ExecRequest;
  /** The working directory, open; launch() closes it. */
  cwd: Dir;
  runAs: RunAs;
  env: Record<string, string>;
  onOutput: (stream: StreamName, chunk: Buffer) => void;
}

class RunningProcess {
  readonly pid: number;
  readonly finished: Promise<Outcome>;
  private readonly child: ChildProcess;
  private timedOut = false;
  /** Set while a slow client holds the output back; the pipe grace waits for it. */
  private outputPaused = false;
  private onOutputResumed: (() => void) | undefined;

  constructor(child: ChildProcess, pid: number, launch: Launch, startedAt: number) {
    this.child = child;
    this.pid = pid;
    child.stdout?.on('data', (chunk: Buffer) => launch.onOutput('stdout', chunk));
    child.stderr?.on('data', (chunk: Buffer) => launch.onOutput('stderr', chunk));
    // A process that never reads its stdin makes the write fail with EPIPE; that is its business.
    child.stdin?.on('error', () => {});
    child.stdin?.end(launch.request.stdin);
    const timer =
      launch.request.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            this.timedOut = true;
            this.kill();
          }, launch.request.timeoutMs);
    this.finished = new Promise((resolve) => {
      let exit: { code: number | null; signal: string | null } | undefined;
      let graceTimer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (!exit) return;
        clearTimeout(timer);
        clearTimeout(graceTimer);
        resolve({
          exitCode: exit.code,
          signal: exit.signal,
          timedOut: this.timedOut,
          durationMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
        });
      };
      const startGrace = () => {
        graceTimer = setTimeout(() => {
          // Pipes held open by our own pause still have output for the client: wait for it.
          if (this.outputPaused) {
            this.onOutputResumed = startGrace;
            return;
          }
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish();
        }, PIPE_GRACE_MS);
      };
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        startGrace();
      });
      // 'close' comes after 'exit' and after both pipes ended: all output has been read.
      child.once('close', finish);
    });
  }

  /** SIGKILL to the whole group: the process and everything it started that stayed in its group. */
  kill(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // The group is already gone.
    }
    // Whoever held the output back no longer matters.
    this.resumeOutput();
  }

  pauseOutput(): void {
    this.outputPaused = true;
    this.child.stdout?.pause();
    this.child.stderr?.pause();
  }

  resumeOutput(): void {
    this.outputPaused = false;
    this.child.stdout?.resume();
    this.child.stderr?.resume();
    const resumed = this.onOutputResumed;
    this.onOutputResumed = undefined;
    resumed?.();
  }
}

/** Starts the process, or says why it could not start (missing or not executable program). */
async function launch(launch: Launch): Promise<RunningProcess | { error: NodeJS.ErrnoException }> {
  const { command } = launch.request;
  const [file, args] =
    typeof command === 'string' ? ['/bin/sh', ['-c', command]] : [command[0]!, command.slice(1)];
  const startedAt = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(file, args, {
      // The child changes into the open directory itself (its /proc/self/fd path, before it
      // execs), so a directory swapped for a link after the check cannot send it elsewhere.
      cwd: launch.cwd.path,
      env: launch.env,
      // Its own process group, so that a kill reaches the grandchildren too.
      detached: true,
      stdio: 'pipe',
      // Setting uid and gid also clears the supplementary groups; leaving root drops every capability.
      ...(launch.runAs.switchUser ? { uid: launch.runAs.uid, gid: launch.runAs.gid } : {}),
    });
  } finally {
    // Spawning is synchronous, so the child is in its directory (or failed) already. Not awaited:
    // nothing may be awaited before the child's events are listened for, or an early exit is missed.
    launch.cwd.close().catch((err: unknown) => console.error('sandboxd: cannot close a cwd:', err));
  }
  if (child.pid === undefined) {
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
    return { error };
  }
  return new RunningProcess(child, child.pid, launch, startedAt);
}

/** The shell's answer to a program it cannot start: 127 if it is missing, 126 otherwise. */
function spawnFailure(
  request: ExecRequest,
  error: NodeJS.ErrnoException,
): { exitCode: number; stderr: string } {
  const program = typeof request.command === 'string' ? '/bin/sh' : request.command[0];
  return {
    exitCode: error.code === 'ENOENT' ? 127 : 126,
    stderr: `sandboxd: cannot run ${program}: ${error.code ?? error.message}\n`,
  };
}

/** One output stream of a buffered exec: kept up to the limit, then counted as cut. */
export class CollectedOutput {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  add(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) {
      this.truncated = true;
      if (room <= 0) return;
      chunk = chunk.subarray(0, room);
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  text(): string {
    const bytes = Buffer.concat(this.chunks, this.size);
    // A cut may split a character; write() keeps an incomplete last character back, so it is dropped.
    return this.truncated ? new StringDecoder('utf8').write(bytes) : bytes.toString('utf8');
  }
}

/** The launch of `request` by this sandbox: its cwd opened, run as the sandbox user with the sandbox's env. */
export async function launchSpecFor(ctx: Context, request: ExecRequest): Promise<Omit<Launch, 'onOutput'>> {
  const cwd = await openCwd(ctx, request.cwd ?? '.');
  return { request, cwd, runAs: ctx.runAs, env: { ...ctx.processEnv, ...request.env } };
}

/** The working directory `cwdPath` (relative to the workspace root), open for a spawn's `cwd`. */
export function openCwd(ctx: Context, cwdPath: string): Promise<Dir> {
  return withFsErrors({ path: cwdPath }, async () => {
    try {
      return await Dir.open(ctx.workspace, await ctx.workspace.resolve(cwdPath), cwdPath);
    } catch (err) {
      if (!isErrno(err, 'ENOTDIR')) throw err;
      throw new SandboxdError('NOT_A_DIRECTORY', 'cwd is not a directory', { path: cwdPath });
    }
  });
}

/** Runs a command to its end, its output collected up to the limit; `res` closing kills it. */
export async function runCollected(
  ctx: Context,
  res: ServerResponse,
  launchSpec: Omit<Launch, 'onOutput'>,
): Promise<ExecResult> {
  const output = {
    stdout: new CollectedOutput(ctx.limits.maxOutputBytes),
    stderr: new CollectedOutput(ctx.limits.maxOutputBytes),
  };
  const started = await launch({ ...launchSpec, onOutput: (stream, chunk) => output[stream].add(chunk) });
  if ('error' in started) {
    const failure = spawnFailure(launchSpec.request, started.error);
    return {
      exitCode: failure.exitCode,
      signal: null,
      stdout: '',
      stderr: failure.stderr,
      stdoutTruncated: false,
      stderrTruncated: false,
      timedOut: false,
      durationMs: 0,
    };
  }
  ctx.processes.watch(started, res);
  const outcome = await started.finished;
  return {
    ...outcome,
    stdout: output.stdout.text(),
    stderr: output.stderr.text(),
    stdoutTruncated: output.stdout.truncated,
    stderrTruncated: output.stderr.truncated,
  };
}

async function execStreamed(ctx: Context, res: ServerResponse, launchSpec: Omit<Launch, 'onOutput'>) {
  const send = (event: ExecEvent): boolean => res.write(encodeNdjson(event));
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  res.writeHead(200, { 'content-type': `${NDJSON}; charset=utf-8`, 'cache-control': 'no-store' });
  let running: RunningProcess | undefined;
  let clientGone = false;
  res.once('close', () => {
    clientGone = true;
  });
  const started = await launch({
    ...launchSpec,
    onOutput: (stream, chunk) => {
      const data = decoders[stream].write(chunk);
      // A slow reader slows the process down (its pipes fill) rather than growing our memory; a
      // reader that is gone will never drain, so it holds nothing back.
      if (data && !send({ type: stream, data }) && !clientGone) running?.pauseOutput();
    },
  });
  if ('error' in started) {
    const failure = spawnFailure(launchSpec.request, started.error);
    send({ type: 'stderr', data: failure.stderr });
    send({ type: 'exit', exitCode: failure.exitCode, signal: null, timedOut: false, durationMs: 0 });
    res.end();
    return;
  }
  running = started;
  ctx.processes.watch(started, res);
  res.on('drain', () => started.resumeOutput());
  send({ type: 'start', pid: started.pid });
  const outcome = await started.finished;
  for (const stream of ['stdout', 'stderr'] as const) {
    const rest = decoders[stream].end();
    if (rest) send({ type: stream, data: rest });
  }
  send({ type: 'exit', ...outcome });
  res.end();
}

async function handleExec(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = await readJson(req, ctx.limits.maxJsonBytes, execRequestSchema);
  const spec = await launchSpecFor(ctx, request);
  if (req.headers.accept?.includes(NDJSON) ?? false) await execStreamed(ctx, res, spec);
  else sendJson(res, 200, await runCollected(ctx, res, spec));
}

export function execRoutes(ctx: Context): Array<[string, Route]> {
  return [['/exec', { auth: true, methods: { POST: (req, res) => handleExec(ctx, req, res) } }]];
}
