/**
 * An execution guard shared by every process that reaches one Redis. A lease is a key set with
 * NX and a TTL, its value `<fencing token>:<nonce>`; the fencing token comes from INCR on a counter
 * key that never expires, so it grows with every grant. While held, the lease is renewed by a
 * compare-and-pexpire script; if a renewal finds the value changed, or none succeeds for a whole
 * TTL, the lease counts as lost and its signal aborts. `assertHeld` is the same check-and-extend,
 * done right before the snapshot is written.
 *
 * The SDK does not depend on a Redis client: pass your own (an ioredis instance fits `RedisLike`).
 */
import {
  type AcquireOptions,
  DEFAULT_GUARD_WAIT_MS,
  type ExecutionGuard,
  type GuardLease,
  GuardTimeoutError,
  LeaseLostError,
} from './guard.js';

/** The one Redis call the guard makes: EVAL. ioredis's `Redis` and `Cluster` fit it as they are. */
export interface RedisLike {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

export interface RedisGuardOptions {
  redis: RedisLike;
  /** Prefix of the guard's Redis keys. Default `harness:guard:`. */
  prefix?: string;
  /** Lease time-to-live, milliseconds: how long a crashed holder blocks the key. Default 30000. */
  ttlMs?: number;
  /** How often a held lease is renewed, milliseconds. Default a third of `ttlMs`. */
  renewEveryMs?: number;
}

/** KEYS: lease, fence. ARGV: nonce, ttl. The new fencing token, or 0 when the key is held. */
const ACQUIRE = `
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token`;

/** KEYS: lease. ARGV: value, ttl. 1 when the value is still ours (and the TTL restarted), else 0. */
const RENEW = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`;

/** KEYS: lease. ARGV: value. Deletes the lease only if it is still ours. */
const RELEASE = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

const FIRST_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 1_000;

export class RedisGuard implements ExecutionGuard {
  private readonly redis: RedisLike;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly renewEveryMs: number;

  constructor(options: RedisGuardOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix ?? 'harness:guard:';
    this.ttlMs = options.ttlMs ?? 30_000;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(1, Math.floor(this.ttlMs / 3));
    if (!(this.renewEveryMs < this.ttlMs)) throw new RangeError('renewEveryMs must be below ttlMs');
  }

  /** The Redis keys of a workspace key; the hash tag keeps both in one Redis Cluster slot. */
  keysOf(key: string): { lease: string; fence: string } {
    return { lease: `${this.prefix}{${key}}:lease`, fence: `${this.prefix}{${key}}:fence` };
  }

  async acquire(key: string, options: AcquireOptions = {}): Promise<GuardLease> {
    const waitMs = options.waitMs ?? DEFAULT_GUARD_WAIT_MS;
    const deadline = Date.now() + waitMs;
    const keys = this.keysOf(key);
    const nonce = crypto.randomUUID();
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      const token = Number(await this.redis.eval(ACQUIRE, 2, keys.lease, keys.fence, nonce, this.ttlMs));
      if (token > 0) return this.lease(key, keys.lease, token, `${token}:${nonce}`);
      const backoffMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
      if (Date.now() + backoffMs > deadline) throw new GuardTimeoutError(key, waitMs);
      await sleep(backoffMs, options.signal);
    }
  }

  private lease(key: string, leaseKey: string, fencingToken: number, value: string): GuardLease {
    const controller = new AbortController();
    let lastRenewed = Date.now();
    let released = false;
    const lose = (reason: string) => {
      clearInterval(timer);
      if (!controller.signal.aborted) controller.abort(new LeaseLostError(key, fencingToken, reason));
    };
    /** One compare-and-pexpire; false when the value is no longer ours. */
    const renew = async (): Promise<boolean> => {
      const renewed = Number(await this.redis.eval(RENEW, 1, leaseKey, value, this.ttlMs)) === 1;
      if (renewed) lastRenewed = Date.now();
      else lose('another holder took the key, or the lease expired');
      return renewed;
    };
    const timer = setInterval(() => {
      renew().catch(() => {
        // Redis unreachable: the lease may still be ours until a whole TTL passed unrenewed.
        if (Date.now() - lastRenewed >= this.ttlMs) lose('it could not be renewed within its TTL');
      });
    }, this.renewEveryMs);
    return {
      key,
      fencingToken,
      signal: controller.signal,
      assertHeld: async () => {
        if (released) throw new LeaseLostError(key, fencingToken, 'it was released');
        controller.signal.throwIfAborted();
        let held: boolean;
        try {
          held = await renew();
        } catch (error) {
          // Unverifiable counts as lost: writing on a lease that may have passed on is what fencing prevents.
          throw new LeaseLostError(key, fencingToken, `it could not be checked (${String(error)})`, error);
        }
        if (!held) controller.signal.throwIfAborted();
      },
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, leaseKey, value).catch(() => undefined);
      },
    };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
