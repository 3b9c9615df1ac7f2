/**
 * WORKERS > 1: this process becomes the cluster primary (node:cluster). It serves no requests
 * itself; it forks the workers, each of which runs the whole server (extensions included, from the
 * same command line) on the one listening port the primary shares out among them, with pool, port
 * and sandbox state shared through Redis.
 *
 * - A worker that dies while the cluster runs is replaced: at once if it had run a while, else
 *   after a pause that grows while replacements keep dying young, so a broken worker (or Redis
 *   refusing new workers' start) cannot spin the machine.
 * - A worker that fails before the cluster ever came up (Docker down, an image missing, an
 *   extension that will not load) stops the whole start, with that worker's exit code.
 * - SIGTERM or SIGINT tells every worker to shut down (over the cluster channel, see worker.ts),
 *   and the primary exits once they all have: 0 if every one shut down cleanly. A second signal
 *   tells them to exit at once.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../observability/logger.js';
import { WORKER_COMMANDS } from './worker.js';

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
}

/** A replacement that lived at least this long resets the pause before the next one. */
const HEALTHY_UPTIME_MS = 30_000;
const MAX_RESTART_PAUSE_MS = 30_000;

/** Runs the cluster until it has shut down; resolves with the exit code for the process. */
export function runPrimary(options: PrimaryOptions): Promise<number> {
  const { workers, logger } = options;
  return new Promise((resolve) => {
    /** Workers alive, by when each was started. */
    const startedAt = new Map<Worker, number>();
    const listened = new Set<number>();
    let clusterUp = false;
    let stopping = false;
    let signals = 0;
    let exitCode = 0;
    let crashStreak = 0;
    const pendingRestarts = new Set<NodeJS.Timeout>();

    const tellWorkers = (command: string): void => {
      for (const worker of startedAt.keys()) {
        // A worker whose channel is already closed is on its way out anyway.
        if (worker.isConnected()) worker.send(command);
      }
    };

    const fork = (): void => {
      const worker = cluster.fork();
      startedAt.set(worker, Date.now());
    };

    const stopAll = (signal: NodeJS.Signals | 'startup failure'): void => {
      stopping = true;
      for (const timer of pendingRestarts) clearTimeout(timer);
      pendingRestarts.clear();
      logger.info({ signal, workers: startedAt.size }, 'stopping workers');
      tellWorkers(WORKER_COMMANDS.shutdown);
      if (startedAt.size === 0) resolve(exitCode);
    };

    cluster.on('listening', (worker, address) => {
      if (listened.has(worker.id)) return;
      listened.add(worker.id);
      if (!clusterUp && listened.size >= workers) {
        clusterUp = true;
        logger.info({ workers, port: address.port }, 'workers listening');
      }
    });

    cluster.on('exit', (worker, code, signal) => {
      const lived = Date.now() - (startedAt.get(worker) ?? Date.now());
      startedAt.delete(worker);
      const workerCode = code ?? 1;
      if (stopping) {
        if (workerCode !== 0) exitCode = 1;
        logger.info({ worker: worker.id, code, signal }, 'worker stopped');
        if (startedAt.size === 0) resolve(exitCode);
        return;
      }
      if (!clusterUp) {
        logger.error({ worker: worker.id, code, signal }, 'a worker failed to start; stopping the others');
        exitCode = workerCode === 0 ? 1 : workerCode;
        stopAll('startup failure');
        return;
      }
      crashStreak = lived >= HEALTHY_UPTIME_MS ? 0 : crashStreak + 1;
      const pauseMs = Math.min(MAX_RESTART_PAUSE_MS, 1000 * (2 ** crashStreak - 1));
      logger.error(
        { worker: worker.id, pid: worker.process.pid, code, signal, restartInMs: pauseMs },
        'worker died; starting a replacement',
      );
      const timer = setTimeout(() => {
        pendingRestarts.delete(timer);
        if (!stopping) fork();
      }, pauseMs);
      pendingRestarts.add(timer);
    });

    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        stopAll(signal);
        return;
      }
      exitCode = 1;
      logger.warn({ signal }, 'second signal: workers exit without cleanup');
      tellWorkers(WORKER_COMMANDS.exitNow);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    logger.info({ workers }, 'starting workers');
    for (let i = 0; i < workers; i++) fork();
  });
}
