/**
 * Execution guards: the in-process queue, and the Redis lease against a real redis-server (two
 * guards with their own connections stand for two processes).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../support/eventually.js';
import { type RedisServer, startRedisServer } from '../../../support/redis-server.js';
import {
  type ExecutionGuard,
  type GuardLease,
  GuardTimeoutError,
  InProcessGuard,
  LeaseLostError,
  RedisGuard,
  type RedisLike,
} from '../../src/index.js';

/** Whether the promise is still pending once everything already queued has run. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const settled = await Promise.race([
    promise.then(
      () => 'settled',
      () => 'settled',
    ),
    marker,
  ]);
  return settled === marker;
}

function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
  });
}

/** A client as a RedisGuard sees it, counting the EVALs Redis has answered (tries, renewals). */
function countingEvals(redis: Redis): { redis: RedisLike; answered: () => number } {
  let answered = 0;
  return {
    redis: {
      async eval(script, numKeys, ...args) {
        const result = await redis.eval(script, numKeys, ...args);
        answered++;
        return result;
      },
    },
    answered: () => answered,
  };
}

/** Two guards on one key space (two processes, for Redis). */
interface GuardPair {
  a: ExecutionGuard;
  b: ExecutionGuard;
  /** How many of b's tries have had their answer: refused by Redis, or queued in process. */
  triesOfB: () => number;
}

/** Behaviour every guard shares. */
function describeGuard(name: string, makeGuards: () => GuardPair) {
  describe(name, () => {
    it('serialises two holders of one key and hands out growing fencing tokens', async () => {
      const { a, b, triesOfB } = makeGuards();
      const key = `serial-${Math.random()}`;
      const first = await a.acquire(key);
      const before = triesOfB();
      const second = b.acquire(key, { waitMs: 20_000 });
      // Once its try had an answer (Redis refused it, or the queue took it in), it is still waiting.
      await eventually('the second holder to be turned away', () => (triesOfB() > before ? true : undefined));
      expect(await isPending(second)).toBe(true);
      await first.assertHeld();
      await first.release();
      const secondLease = await second;
      expect(secondLease.fencingToken).toBeGreaterThan(first.fencingToken);
      await expect(first.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
      await secondLease.assertHeld();
      await secondLease.release();
      const third = await a.acquire(key);
      expect(third.fencingToken).toBeGreaterThan(secondLease.fencingToken);
      await third.release();
    });

    it('does not make different keys wait for each other', async () => {
      const { a, b } = makeGuards();
      const one = await a.acquire(`k1-${Math.random()}`);
      const two = await b.acquire(`k2-${Math.random()}`, { waitMs: 1 });
      await Promise.all([one.release(), two.release()]);
    });

    it('gives up after the bounded wait, and leaves the key usable', async () => {
      const { a, b } = makeGuards();
      const key = `bounded-${Math.random()}`;
      const holder = await a.acquire(key);
      const error = await b.acquire(key, { waitMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GuardTimeoutError);
      expect((error as GuardTimeoutError).code).toBe('TIMEOUT');
      await holder.release();
      await (await b.acquire(key, { waitMs: 5_000 })).release();
    });

    it('stops waiting when the caller aborts', async () => {
      const { a, b } = makeGuards();
      const key = `abort-${Math.random()}`;
      const holder = await a.acquire(key);
      const controller = new AbortController();
      const waiting = b.acquire(key, { signal: controller.signal, waitMs: 20_000 });
      controller.abort(new Error('caller gave up'));
      await expect(waiting).rejects.toThrow('caller gave up');
      await holder.release();
      await (await b.acquire(key, { waitMs: 5_000 })).release();
    });
  });
}

describeGuard('InProcessGuard', () => {
  const guard = new InProcessGuard();
  let tries = 0;
  const b: ExecutionGuard = {
    acquire(key, options) {
      // Its queue takes a waiter in synchronously, before acquire returns.
      const lease = guard.acquire(key, options);
      tries++;
      return lease;
    },
  };
  return { a: guard, b, triesOfB: () => tries };
});

describe('RedisGuard', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  /** A connected client that fails fast while Redis is away (no offline queue). */
  const client = async () => {
    const redis = new Redis({
      port: server.port,
      host: '127.0.0.1',
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    redis.on('error', () => undefined);
    clients.push(redis);
    await new Promise((resolve) => redis.once('ready', resolve));
    return redis;
  };
  let guards: GuardPair;

  beforeAll(async () => {
    server = await startRedisServer();
    const ofB = countingEvals(await client());
    guards = {
      a: new RedisGuard({ redis: await client() }),
      b: new RedisGuard({ redis: ofB.redis }),
      triesOfB: ofB.answered,
    };
  });

  afterAll(async () => {
    for (const redis of clients) redis.disconnect();
    await server?.stop();
  });

  describeGuard('shared behaviour', () => guards);

  it('keeps a lease past its TTL by renewing it', async () => {
    const counted = countingEvals(await client());
    const guard = new RedisGuard({ redis: counted.redis, ttlMs: 400, renewEveryMs: 100 });
    const lease = await guard.acquire(`renewed-${Math.random()}`);
    // Renewals at least 100 ms apart: twelve of them keep it three TTLs past the grant.
    const granted = counted.answered();
    await eventually('twelve renewals', () => (counted.answered() >= granted + 12 ? true : undefined));
    expect(lease.signal.aborted).toBe(false);
    await lease.assertHeld();
    await lease.release();
  });

  it('lets a crashed holder block the key only until its lease expires', async () => {
    const raw = await client();
    const guard = new RedisGuard({ redis: await client() });
    const key = `crashed-${Math.random()}`;
    // A holder that died: its lease is there, nobody renews it.
    await raw.set(guard.keysOf(key).lease, '999:dead', 'PX', 500);
    const lease = await guard.acquire(key, { waitMs: 10_000 });
    expect(await raw.pttl(guard.keysOf(key).lease)).toBeGreaterThan(500);
    await lease.release();
    expect(await raw.exists(guard.keysOf(key).lease)).toBe(0);
  });

  it('aborts the signal and fails assertHeld once another holder took the key', async () => {
    const raw = await client();
    const guard = new RedisGuard({ redis: await client(), ttlMs: 3_000, renewEveryMs: 100 });
    const key = `taken-${Math.random()}`;
    const lease = await guard.acquire(key);
    // As if the lease had expired and another process had acquired it.
    await raw.set(guard.keysOf(key).lease, `${lease.fencingToken + 1}:someone-else`, 'PX', 10_000);
    const reason = await aborted(lease.signal);
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect((reason as LeaseLostError).code).toBe('SNAPSHOT_CONFLICT');
    await expect(lease.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
    // Releasing a lost lease leaves the new holder's lease alone.
    await lease.release();
    expect(await raw.get(guard.keysOf(key).lease)).toBe(`${lease.fencingToken + 1}:someone-else`);
  });

  it('counts a lease it cannot check as lost, and one it cannot renew for a TTL too', async () => {
    const guard = new RedisGuard({ redis: await client(), ttlMs: 600, renewEveryMs: 100 });
    let lease: GuardLease | undefined;
    try {
      lease = await guard.acquire(`unreachable-${Math.random()}`);
      await server.stop();
      await expect(lease.assertHeld()).rejects.toBeInstanceOf(LeaseLostError);
      expect(await aborted(lease.signal)).toBeInstanceOf(LeaseLostError);
    } finally {
      await lease?.release();
      await server.restart();
    }
  });
});
