/**
 * A real, throwaway redis-server for tests and benchmarks: a child process on a free loopback
 * port, in its own temp dir, with persistence off. `stop()` kills it (tests of an unreachable
 * store), `restart()` brings it back empty on the same port (clients reconnect by themselves). It
 * fails loudly when redis-server is missing, and any server still running when the process exits
 * is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from './free-port.js';

export interface RedisServer {
  port: number;
  /** Kills the server (idempotent) and removes its temp dir. */
  stop(): Promise<void>;
  /** Stops it if running, then starts a fresh, empty one on the same port. */
  restart(): Promise<void>;
}

const READY_LINE = 'Ready to accept connections';
const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();

process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** `bind`: the address redis-server listens on (default loopback; security tests use 0.0.0.0). */
export async function startRedisServer(options: { bind?: string } = {}): Promise<RedisServer> {
  // A free port can be taken by someone else before redis-server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return await serverOn(port, options.bind ?? '127.0.0.1');
    } catch (err) {
      if (attempt >= 5 || !(err instanceof PortTakenError)) throw err;
    }
  }
}

async function serverOn(port: number, bind: string): Promise<RedisServer> {
  let current = await launch(port, bind);
  const stop = async () => {
    await kill(current.child);
    rmSync(current.dir, { recursive: true, force: true });
  };
  return {
    port,
    stop,
    async restart() {
      await stop();
      current = await launch(port, bind);
    },
  };
}

class PortTakenError extends Error {}

async function launch(port: number, bind: string): Promise<{ child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rsbx-test-redis-'));
  const args = ['--port', String(port), '--bind', bind, '--dir', dir];
  args.push('--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', '');
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  try {
    await untilReady(child, port);
    return { child, dir };
  } catch (err) {
    await kill(child);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function untilReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () =>
        fail(new Error(`redis-server on port ${port} not ready after ${START_TIMEOUT_MS} ms:\n${output}`)),
      START_TIMEOUT_MS,
    );
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(READY_LINE)) finish();
    };
    const onError = (err: NodeJS.ErrnoException) => {
      fail(
        err.code === 'ENOENT'
          ? new Error(
              'redis-server is not installed (not on PATH): run scripts/bootstrap.sh or apt-get install redis-server',
            )
          : err,
      );
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      const why = `redis-server on port ${port} exited (${signal ?? code}) before it was ready:\n${output}`;
      fail(output.includes('Address already in use') ? new PortTakenError(why) : new Error(why));
    };
    const cleanUp = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onOutput);
      child.stderr?.off('data', onOutput);
      child.off('error', onError);
      child.off('exit', onExit);
      // Keep draining the pipes so a chatty server never blocks on a full one.
      child.stdout?.resume();
      child.stderr?.resume();
    };
    const finish = () => {
      cleanUp();
      resolve();
    };
    const fail = (err: Error) => {
      cleanUp();
      reject(err);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}
