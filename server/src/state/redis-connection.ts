/**
 * The ioredis client behind the Redis state store, tuned to fail fast rather than queue: while Redis
 * is unreachable every call rejects at once (the store turns that into StoreUnavailableError, 503),
 * and the client keeps reconnecting in the background so calls succeed again once Redis is back,
 * without anything being recreated.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';
import { StoreUnavailableError } from './errors.js';

export type RedisConnectionConfig = Pick<
  Config,
  'REDIS_SERVER' | 'REDIS_PORT' | 'REDIS_DB' | 'REDIS_USER' | 'REDIS_PASSWORD'
>;

export interface RedisConnectionOptions {
  /** Every connection error, including each failed reconnect attempt (ioredis prints them without one). */
  onError: (err: Error) => void;
  /** Shown by CLIENT LIST, e.g. `runtime-sandbox:worker-2`. */
  connectionName?: string;
}

/** Longest wait between reconnect attempts: Redis coming back is noticed within this. */
const MAX_RECONNECT_DELAY_MS = 2000;
/** A connection that gets no answer to pending commands for this long is dropped and redialled. */
const SOCKET_TIMEOUT_MS = 3000;

export function redisOptionsFrom(config: RedisConnectionConfig, connectionName?: string): RedisOptions {
  return {
    host: config.REDIS_SERVER,
    port: config.REDIS_PORT,
    db: config.REDIS_DB,
    username: config.REDIS_USER,
    password: config.REDIS_PASSWORD,
    connectionName,
    // Never give up: 100 ms, 200 ms, ... capped, for as long as Redis stays away.
    retryStrategy: (attempt) => Math.min(100 * 2 ** (attempt - 1), MAX_RECONNECT_DELAY_MS),
    // Commands issued while disconnected fail at once instead of waiting in a queue...
    enableOfflineQueue: false,
    // ...and commands in flight when the connection drops fail with it. They are not resent after
    // a reconnect: a script such as claimWarm may already have run, and running it twice would
    // claim a second sandbox or port that nobody hears about.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: SOCKET_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
  };
}

/** A client that connects in the background; calls fail with StoreUnavailableError until it is ready. */
export function createRedisClient(config: RedisConnectionConfig, options: RedisConnectionOptions): Redis {
  const redis = new Redis(redisOptionsFrom(config, options.connectionName));
  redis.on('error', options.onError);
  return redis;
}

/**
 * A client that answered: waits until it is ready, up to `readyTimeoutMs`; otherwise closes it and
 * rejects with StoreUnavailableError naming the address, so a server with an unreachable Redis
 * says so at start.
 */
export async function connectRedis(
  config: RedisConnectionConfig,
  options: RedisConnectionOptions & { readyTimeoutMs?: number },
): Promise<Redis> {
  const redis = createRedisClient(config, options);
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  let lastError: Error | undefined;
  const remember = (err: Error) => {
    lastError = err;
  };
  redis.on('error', remember);
  let onReady = () => {};
  const ready = new Promise<boolean>((resolve) => {
    onReady = () => resolve(true);
    redis.once('ready', onReady);
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const answered = await Promise.race([ready, timedOut]);
  clearTimeout(timer);
  redis.off('ready', onReady);
  redis.off('error', remember);
  if (answered) return redis;
  redis.disconnect();
  throw new StoreUnavailableError(
    `cannot reach Redis at ${config.REDIS_SERVER}:${config.REDIS_PORT} (db ${config.REDIS_DB}) ` +
      `within ${timeoutMs} ms: ${lastError?.message ?? 'no answer'}`,
    { cause: lastError },
  );
}
