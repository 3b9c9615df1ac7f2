/**
 * The worker side of WORKERS > 1 (see primary.ts): log lines name the worker, and shutdown is
 * driven by the primary. A service manager or a terminal may signal the whole process group
 * (systemd's default, Ctrl-C), so a worker that is signalled directly and told by the primary as
 * well must see one request to stop, not a second, forcing one: here every stop request is the
 * same graceful stop, and only the primary's explicit "exit now" cuts it short.
 */
import cluster from 'node:cluster';
import type { Logger } from '../observability/logger.js';

/** What the primary sends its workers over the cluster channel. */
export const WORKER_COMMANDS = {
  shutdown: 'runtime-sandbox:shutdown',
  exitNow: 'runtime-sandbox:exit-now',
} as const;

/** The logger with the worker id on every line, in a cluster worker. */
export function workerLogger(logger: Logger): Logger {
  const worker = cluster.isWorker ? cluster.worker?.id : undefined;
  return worker === undefined ? logger : logger.child({ worker });
}

export interface WorkerControl {
  /** The graceful shutdown; called again, it must not do more. */
  stop(reason: string): void;
  /** Exit at once, without cleanup. */
  abandon(reason: string): void;
}

/**
 * In a cluster worker: SIGTERM, SIGINT, the primary's shutdown command and the loss of the primary
 * all mean `stop`; the primary's exit-now command means `abandon`. Returns whether this is a
 * cluster worker; outside a cluster it does nothing (the caller handles signals itself).
 */
export function followPrimary(control: WorkerControl): boolean {
  if (!cluster.isWorker) return false;
  process.on('SIGTERM', () => control.stop('SIGTERM'));
  process.on('SIGINT', () => control.stop('SIGINT'));
  process.on('message', (message: unknown) => {
    if (message === WORKER_COMMANDS.shutdown) control.stop('the cluster is shutting down');
    if (message === WORKER_COMMANDS.exitNow) control.abandon('the cluster primary said exit now');
  });
  process.once('disconnect', () => control.stop('the cluster primary is gone'));
  return true;
}
