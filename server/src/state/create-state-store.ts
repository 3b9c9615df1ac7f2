/**
 * Picks the state store from the config: in memory for one worker (the default), or Redis
 * (REDIS_ENABLED) for any number of workers and replicas. With Redis the client is handed back too,
 * for the parts that share its connection (leader election, refill signals, snapshot metadata).
 */
import type { Redis } from 'ioredis';
import { type Config, deploymentIdOf } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { MemoryStateStore } from './memory.js';
import { RedisStateStore } from './redis.js';
import { connectRedis } from './redis-connection.js';
import type { StateStore } from './state-store.js';

export interface StateStoreParts {
  /** Owns the Redis client: closing the store closes it. */
  store: StateStore;
  redis: Redis | undefined;
}

/** With Redis, waits until it answers; rejects with StoreUnavailableError if it does not in time. */
export async function createStateStore(config: Config, deps: { logger: Logger }): Promise<StateStoreParts> {
  if (!config.REDIS_ENABLED) return { store: new MemoryStateStore(), redis: undefined };
  const deploymentId = deploymentIdOf(config);
  const redis = await connectRedis(config, {
    connectionName: `${deploymentId}:state:${process.pid}`,
    onError: (err) => deps.logger.warn({ err: messageOf(err) }, 'state store: Redis connection error'),
  });
  const store = new RedisStateStore({ redis, keyPrefix: config.REDIS_KEY_PREFIX, deploymentId });
  return { store, redis };
}
