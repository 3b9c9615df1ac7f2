/**
 * How a replica that just took a sandbox from a pool (or resized one) tells the leader, which alone
 * refills pools, to look now rather than at its next maintenance tick. Best effort by design: a
 * signal lost (Redis briefly away) only delays the refill until that tick.
 */
import type { Redis } from 'ioredis';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';

export interface RefillSignal {
  /** Reaches every replica's listener, this one's included. Never throws. */
  notify(): void;
  /** Starts delivering signals to `listener`. */
  listen(listener: () => void): Promise<void>;
  close(): Promise<void>;
}

/** One process: a direct call. */
export class LocalRefillSignal implements RefillSignal {
  private listener: (() => void) | undefined;

  notify(): void {
    this.listener?.();
  }

  async listen(listener: () => void): Promise<void> {
    this.listener = listener;
  }

  async close(): Promise<void> {
    this.listener = undefined;
  }
}

/**
 * Redis pub/sub on `<keyPrefix>:<deploymentId>:refill`: published on the store's connection,
 * received on a connection of its own (a subscribed connection can do nothing else), which
 * subscribes again each time it reconnects.
 */
export class RedisRefillSignal implements RefillSignal {
  private subscriber: Redis | undefined;

  constructor(private readonly options: { redis: Redis; channel: string; logger: Logger }) {}

  notify(): void {
    const { redis, channel, logger } = this.options;
    redis.publish(channel, '1').catch((err: unknown) => {
      logger.debug({ err: messageOf(err) }, 'refill signal not sent; the leader refills on its next tick');
    });
  }

  async listen(listener: () => void): Promise<void> {
    const { redis, channel, logger } = this.options;
    const subscriber = redis.duplicate({ autoResubscribe: false, lazyConnect: true });
    this.subscriber = subscriber;
    subscriber.on('error', (err: Error) =>
      logger.debug({ err: messageOf(err) }, 'refill signal connection error'),
    );
    subscriber.on('message', listener);
    subscriber.on('ready', () => {
      subscriber.subscribe(channel).catch((err: unknown) => {
        logger.warn({ err: messageOf(err) }, 'cannot subscribe to refill signals');
      });
    });
    // Not fatal: the client keeps reconnecting, and subscribes once it is ready.
    await subscriber.connect().catch((err: unknown) => {
      logger.warn({ err: messageOf(err) }, 'refill signals wait for Redis');
    });
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (!subscriber) return;
    await subscriber.quit().catch(() => subscriber.disconnect());
  }
}
