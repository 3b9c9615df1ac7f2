/**
 * Structured JSON logs (pino). A request's id rides in an AsyncLocalStorage, so every line logged
 * while serving it, from any module, carries `reqId` without passing loggers around.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Logger, pino } from 'pino';
import type { Config } from '../config/schema.js';

export type { Logger } from 'pino';

export interface RequestContext {
  requestId: string;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: () => {
      const context = requestContext.getStore();
      return context ? { reqId: context.requestId } : {};
    },
    // Defence in depth: nothing should log these, and if something does they stay out of the log.
    redact: { paths: ['token', '*.token', 'authorization', '*.authorization', 'bootToken', '*.bootToken'] },
  });
}

/** LOG_LEVEL wins; DEBUG=true means debug; info otherwise. */
export function logLevelOf(config: Pick<Config, 'LOG_LEVEL' | 'DEBUG'>): string {
  return config.LOG_LEVEL ?? (config.DEBUG ? 'debug' : 'info');
}

/** Runs `work` outside any request's context, for background work a request merely set off. */
export function detached<T>(work: () => T): T {
  return requestContext.exit(work);
}
