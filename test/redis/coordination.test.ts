/**
 * The parts replicas coordinate through, each against a real redis-server with several
 * connections standing in for several processes: the leader lease (one leader; renewed while the
 * leader is busy; handed over at once on stop; taken over once a silent holder's TTL runs out, with
 * the old term's signal aborted), the live-replica registry (heartbeats expire; leaving counts the
 * others atomically), and refill signals (every replica hears them, again after Redis restarts).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaderLease } from '../../server/src/cluster/leader-lease.js';
import { RedisRefillSignal } from '../../server/src/cluster/refill-signal.js';
import { RedisReplicaRegistry } from '../../server/src/cluster/replica-registry.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { RedisStateStore } from '../../server/src/state/redis.js';
import { connectRedis } from '../../server/src/state/redis-connection.js';
import { eventually } from '../../support/eventually.js';
import { type RedisServer, startRedisServer } from '../../support/redis-server.js';

const TTL_MS = 600;
const logger = createLogger('silent');

let server: RedisServer;
const opened: Redis[] = [];

beforeAll(async () => {
  server = await startRedisServer();
});

afterEach(async () => {
  for (const redis of opened.splice(0)) redis.disconnect();
});

afterAll(async () => {
  await server?.stop();
});

async function connect(): Promise<Redis> {
  const redis = await connectRedis(
    {
      REDIS_SERVER: '127.0.0.1',
      REDIS_PORT: server.port,
      REDIS_DB: 0,
      REDIS_USER: undefined,
      REDIS_PASSWORD: undefined,
    },
    { onError: () => undefined, readyTimeoutMs: 5000 },
  );
  opened.push(redis);
  return redis;
}

describe('leader lease', () => {
  /** Per contender: how many of its tries took or kept the lease (its first, then each renewal). */
  const grants = new Map<LeaderLease, () => number>();

  async function contender(deploymentId: string, changes: boolean[] = []) {
    const store = new RedisStateStore({ redis: await connect(), keyPrefix: 'coord', deploymentId });
    let granted = 0;
    const lease = new LeaderLease({
      store: {
        async acquireLease(...args: Parameters<RedisStateStore['acquireLease']>) {
          const held = await store.acquireLease(...args);
          if (held) granted++;
          return held;
        },
        releaseLease: (...args: Parameters<RedisStateStore['releaseLease']>) => store.releaseLease(...args),
      },
      name: 'leader',
      holder: randomUUID(),
      ttlMs: TTL_MS,
      logger,
      onChange: (leader) => changes.push(leader),
    });
    grants.set(lease, () => granted);
    return lease;
  }

  it('makes exactly one of several contenders leader, keeps it while it is busy, and hands over on stop', async () => {
    const deployment = randomUUID();
    const changes: boolean[][] = [[], [], []];
    const leases = await Promise.all(changes.map((c) => contender(deployment, c)));
    await Promise.all(leases.map((lease) => lease.start()));
    expect(leases.filter((lease) => lease.isLeader)).toHaveLength(1);

    // Several TTLs pass (a long reconcile, say): renewals run on their own timer, a third of the
    // TTL apart, so nine of them after the first grant span at least three TTLs.
    const leader = leases.find((lease) => lease.isLeader) as LeaderLease;
    const signal = leader.signal;
    const grantsOfLeader = grants.get(leader) ?? (() => 0);
    await eventually('nine renewals of the lease', () => (grantsOfLeader() >= 10 ? true : undefined), 10_000);
    expect(leader.isLeader).toBe(true);
    expect(signal.aborted).toBe(false);
    expect(leases.filter((lease) => lease.isLeader)).toHaveLength(1);

    await leader.stop();
    expect(signal.aborted).toBe(true);
    expect(leader.isLeader).toBe(false);
    const next = await eventually(
      'another contender to lead',
      async () => leases.find((l) => l.isLeader),
      5000,
    );
    expect(next).not.toBe(leader);
    expect(changes[leases.indexOf(leader)]).toEqual([true, false]);
    for (const lease of leases) await lease.stop();
  });

  it('ends a term whose lease went to another holder, and is taken over once a silent holder expires', async () => {
    const deployment = randomUUID();
    const first = await contender(deployment);
    await first.start();
    expect(first.isLeader).toBe(true);
    const signal = first.signal;

    // Someone else holds the lease now (as after the holder froze past its TTL).
    const raw = await connect();
    await raw.set(`coord:${deployment}:lease:leader`, 'someone-else', 'PX', TTL_MS * 10);
    await eventually('the first holder to notice', async () => (signal.aborted ? true : undefined), 5000);
    expect(first.isLeader).toBe(false);
    await first.stop();

    // A holder that goes silent (its process killed) is replaced once its lease runs out.
    await raw.del(`coord:${deployment}:lease:leader`);
    const silent = await contender(deployment);
    await silent.start();
    expect(silent.isLeader).toBe(true);
    const silentHolder = await raw.get(`coord:${deployment}:lease:leader`);
    // Its connection (the last one opened) goes: renewals now fail, as in a dead process.
    (opened.at(-1) as Redis).disconnect();
    const follower = await contender(deployment);
    await follower.start();
    expect(follower.isLeader).toBe(false);
    const started = Date.now();
    await eventually('the follower to take over', async () => (follower.isLeader ? true : undefined), 5000);
    expect(Date.now() - started).toBeLessThanOrEqual(TTL_MS * 2 + 500);
    expect(await raw.get(`coord:${deployment}:lease:leader`)).not.toBe(silentHolder);
    await follower.stop();
    await silent.stop();
  });
});

describe('replica registry', () => {
  it('counts replicas alive while they beat, drops silent ones after the TTL, and counts the others on leave', async () => {
    const key = `coord:${randomUUID()}:replicas`;
    const redis = await connect();
    const replica = (id: string) => new RedisReplicaRegistry({ redis, key, replicaId: id, ttlMs: TTL_MS });
    const [a, b, c] = [replica('a'), replica('b'), replica('c')];
    await Promise.all([a.heartbeat(), b.heartbeat(), c.heartbeat()]);
    expect(await a.live()).toEqual(new Set(['a', 'b', 'c']));

    // c stops beating; a and b carry on, a third of the TTL apart, until c's heartbeat expired.
    await eventually(
      'the silent replica to drop out',
      async () => {
        await Promise.all([a.heartbeat(), b.heartbeat()]);
        return (await a.live()).has('c') ? undefined : true;
      },
      5000,
      TTL_MS / 3,
    );
    expect(await a.live()).toEqual(new Set(['a', 'b']));

    // Leaving at the same moment: exactly one of the two sees itself last.
    const others = await Promise.all([a.leave(), b.leave()]);
    expect(others.sort()).toEqual([0, 1]);
    expect(await redis.exists(key)).toBe(0);

    // The key expires with its last member: nothing is left when every replica dies.
    await replica('d').heartbeat();
    expect(await redis.exists(key)).toBe(1);
    await eventually(
      'the key to expire',
      async () => ((await redis.exists(key)) === 0 ? true : undefined),
      5000,
    );
  });
});

describe('refill signals', () => {
  it('reach every replica, again after Redis restarts', async () => {
    const channel = `coord:${randomUUID()}:refill`;
    const heard = [0, 0];
    const signals = await Promise.all(
      heard.map(async (_, i) => {
        const signal = new RedisRefillSignal({ redis: await connect(), channel, logger });
        await signal.listen(() => {
          heard[i] = (heard[i] ?? 0) + 1;
        });
        return signal;
      }),
    );
    // Each poll looks for what the previous one's signal brought, then sends another.
    await eventually('both to be subscribed', () => {
      if (heard.every((n) => n > 0)) return true;
      signals[0]?.notify();
      return undefined;
    });

    await server.restart();
    const before = [...heard];
    await eventually(
      'signals to flow again',
      () => {
        if (heard.every((n, i) => n > (before[i] ?? 0))) return true;
        signals[1]?.notify();
        return undefined;
      },
      15_000,
    );
    for (const signal of signals) await signal.close();
  });
});
