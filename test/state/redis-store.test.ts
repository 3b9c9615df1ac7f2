/**
 * The Redis store against a real redis-server: the shared contract, then what only a store shared
 * by many processes must show: atomic claims, ports and slots under races from separate
 * connections, deployments kept apart, no keys left behind, and fast failure and recovery when
 * Redis goes away and comes back.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../server/src/state/errors.js';
import { RedisStateStore, type RedisStateStoreOptions } from '../../server/src/state/redis.js';
import {
  connectRedis,
  createRedisClient,
  type RedisConnectionConfig,
} from '../../server/src/state/redis-connection.js';
import { type RedisServer, startRedisServer } from '../../support/redis-server.js';
import { eventually } from '../../support/server-process.js';
import { sandboxRecord } from './record-fixture.js';
import { describeStateStoreContract } from './state-store-contract.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

function configFor(port: number): RedisConnectionConfig {
  return {
    REDIS_SERVER: '127.0.0.1',
    REDIS_PORT: port,
    REDIS_DB: 0,
    REDIS_USER: undefined,
    REDIS_PASSWORD: undefined,
  };
}

function connect(port = server.port): Promise<Redis> {
  // Connection errors are expected here only while a test has stopped its server.
  return connectRedis(configFor(port), { onError: () => {}, readyTimeoutMs: 5_000 });
}

/** A store on its own connection; a fresh key prefix and deployment unless given. */
async function openStore(
  options: Partial<Omit<RedisStateStoreOptions, 'redis'>> = {},
): Promise<RedisStateStore> {
  return new RedisStateStore({
    redis: await connect(),
    keyPrefix: options.keyPrefix ?? `test-${randomUUID()}`,
    deploymentId: options.deploymentId ?? 'deployment-a',
    portsKey: options.portsKey,
  });
}

/** Every key under a prefix, by SCAN: fine in a test, never done by the store. */
async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

describeStateStoreContract(
  'redis',
  () => openStore(),
  (store) => store.close(),
);

describe('RedisStateStore across connections', () => {
  const opened: RedisStateStore[] = [];
  const open = async (options: Partial<Omit<RedisStateStoreOptions, 'redis'>> = {}) => {
    const store = await openStore(options);
    opened.push(store);
    return store;
  };
  let admin: Redis;

  beforeAll(async () => {
    admin = await connect();
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  afterAll(async () => {
    await admin.quit();
  });

  it('200 concurrent claims from two connections over 50 warm sandboxes: 50 winners, all distinct', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const [a, b] = [await open({ keyPrefix }), await open({ keyPrefix })];
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const record = sandboxRecord({ status: 'warm' });
      await a.put(record);
      await a.pushWarm('base', record.id);
      ids.push(record.id);
    }

    const claims = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).claimWarm('base', 1_732_190_000_000 + i)),
    );
    const winners = claims.filter((c) => c !== null);
    expect(winners).toHaveLength(50);
    expect(new Set(winners.map((w) => w.id)).size).toBe(50);
    expect(winners.map((w) => w.id).sort()).toEqual([...ids].sort());
    expect(winners.every((w) => w.status === 'claimed' && w.claimedAt !== null)).toBe(true);
    expect(await b.warmCount('base')).toBe(0);
    expect(await b.list({ status: 'warm' })).toEqual([]);
    expect((await b.list({ status: 'claimed' })).length).toBe(50);
  });

  it('500 concurrent port allocations from two deployments over 300 ports: 300 distinct, the rest null', async () => {
    // Two deployments on one Redis share the host's ports: the port map is per key prefix.
    const keyPrefix = `test-${randomUUID()}`;
    const a = await open({ keyPrefix, deploymentId: 'deployment-a' });
    const b = await open({ keyPrefix, deploymentId: 'deployment-b' });
    const range = { start: 50_000, end: 50_299 };

    const ports = await Promise.all(
      Array.from({ length: 500 }, (_, i) => (i % 2 === 0 ? a : b).allocatePort(range, `owner-${i}`)),
    );
    const taken = ports.filter((p) => p !== null);
    expect(taken).toHaveLength(300);
    expect(new Set(taken).size).toBe(300);
    expect(taken.every((p) => p >= range.start && p <= range.end)).toBe(true);
    expect(ports.filter((p) => p === null)).toHaveLength(200);

    // Each owner gets its own port back into the range, and only its own.
    const owner = ports.findIndex((p) => p !== null);
    const port = ports[owner] ?? null;
    if (port === null) throw new Error('no allocated port');
    await b.releasePort(port, 'someone-else');
    expect(await a.allocatePort(range, 'late')).toBeNull();
    await b.releasePort(port, `owner-${owner}`);
    expect(await a.allocatePort(range, 'late')).toBe(port);
  });

  it('racing instance reservations from two connections never exceed the limit', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const [a, b] = [await open({ keyPrefix }), await open({ keyPrefix })];
    const granted = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).reserveInstance(`sandbox-${i}`, 10)),
    );
    expect(granted.filter(Boolean)).toHaveLength(10);
    expect(await a.instanceCount()).toBe(10);
    expect(await b.instanceCount()).toBe(10);
  });

  it('tenant slots and acquire windows are shared across connections, and leave no keys', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const [a, b] = [await open({ keyPrefix }), await open({ keyPrefix })];
    const acme = { tenantId: 'acme', maxSandboxes: 3 };
    for (let i = 0; i < 10; i++) {
      const record = sandboxRecord({ status: 'warm' });
      await a.put(record);
      await a.pushWarm('base', record.id);
    }
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).claimWarm('base', i, acme)),
    );
    const winners = claims.filter((claim) => claim !== null);
    expect(winners).toHaveLength(3);
    expect(winners.every((w) => w.tenantId === 'acme')).toBe(true);
    expect(await b.warmCount('base')).toBe(7);

    const windowMs = 300;
    const counted = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).countInWindow('acquires:acme', 4, windowMs)),
    );
    expect(counted.filter((c) => c.allowed)).toHaveLength(4);

    for (const record of await a.list()) await b.delete(record.id);
    await eventually('the rate window key to expire', async () =>
      (await keysUnder(admin, keyPrefix)).length === 0 ? true : undefined,
    );
  });

  it('keeps two deployments on one Redis apart', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const a = await open({ keyPrefix, deploymentId: 'deployment-a' });
    const b = await open({ keyPrefix, deploymentId: 'deployment-b' });
    const record = sandboxRecord({ status: 'warm', sessionId: 's-1' });
    await a.put(record);
    await a.pushWarm('base', record.id);
    await a.reserveInstance(record.id, 1);
    await a.setPoolTarget('base', 4);
    expect(await a.acquireLease('leader', 'a-worker', 30_000)).toBe(true);

    expect(await b.get(record.id)).toBeNull();
    expect(await b.list()).toEqual([]);
    expect(await b.list({ sessionId: 's-1' })).toEqual([]);
    expect(await b.warmCount('base')).toBe(0);
    expect(await b.claimWarm('base', 1)).toBeNull();
    expect(await b.update(record.id, { status: 'releasing' })).toBeNull();
    await b.delete(record.id);
    await b.removeWarm('base', record.id);
    await b.releaseInstance(record.id);
    expect(await b.instanceCount()).toBe(0);
    expect(await b.reserveInstance('b-sandbox', 1)).toBe(true);
    expect(await b.getPoolTarget('base')).toBeNull();
    expect(await b.acquireLease('leader', 'b-worker', 30_000)).toBe(true);

    expect(await a.get(record.id)).toEqual(record);
    expect(await a.warmCount('base')).toBe(1);
    expect(await a.instanceCount()).toBe(1);
    expect(await a.getPoolTarget('base')).toBe(4);
    expect(await a.acquireLease('leader', 'a-worker', 30_000)).toBe(true);
  });

  it('shares host ports across deployments by default, and keeps them apart with their own portsKey', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const one = { start: 50_500, end: 50_500 };
    const a = await open({ keyPrefix, deploymentId: 'deployment-a' });
    const b = await open({ keyPrefix, deploymentId: 'deployment-b' });
    const elsewhere = await open({
      keyPrefix,
      deploymentId: 'deployment-c',
      portsKey: `${keyPrefix}:host-2:ports`,
    });
    expect(await a.allocatePort(one, 'a-1')).toBe(50_500);
    expect(await b.allocatePort(one, 'b-1')).toBeNull();
    expect(await elsewhere.allocatePort(one, 'c-1')).toBe(50_500);
  });

  it('leaves no keys of a deployment behind once its sandboxes are released', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const store = await open({ keyPrefix, deploymentId: 'deployment-a' });
    const range = { start: 51_000, end: 51_009 };
    const records = Array.from({ length: 6 }, (_, i) =>
      sandboxRecord({ status: 'warm', type: i % 2 === 0 ? 'base' : 'browser', sessionId: `s-${i % 3}` }),
    );
    for (const record of records) {
      await store.put(record);
      await store.pushWarm(record.type, record.id);
      await store.reserveInstance(record.id, 0);
    }
    const claimed = await store.claimWarm('base', 1_732_190_000_000);
    if (!claimed) throw new Error('nothing claimed');
    await store.update(claimed.id, { sessionId: 'bound', metadata: { k: 'v' } });
    await store.touch(claimed.id, 1_732_190_000_500);
    const port = await store.allocatePort(range, claimed.id);
    await store.acquireLease('leader', 'worker-a', 30_000);
    expect((await keysUnder(admin, `${keyPrefix}:deployment-a:`)).length).toBeGreaterThan(0);

    for (const record of records) {
      await store.delete(record.id);
      await store.releaseInstance(record.id);
    }
    if (port !== null) await store.releasePort(port, claimed.id);
    await store.releaseLease('leader', 'worker-a');

    expect(await keysUnder(admin, `${keyPrefix}:deployment-a:`)).toEqual([]);
    expect(await admin.zcard(`${keyPrefix}:ports`)).toBe(0);
  });

  it('keeps a pool count exact: delete and leaving warm take the id out, non-warm ids are not pooled', async () => {
    const store = await open();
    const [a, b, creating] = [
      sandboxRecord({ status: 'warm' }),
      sandboxRecord({ status: 'warm' }),
      sandboxRecord({ status: 'creating' }),
    ];
    for (const record of [a, b, creating]) {
      await store.put(record);
      await store.pushWarm('base', record.id);
    }
    await store.pushWarm('browser', a.id);
    expect(await store.warmCount('base')).toBe(2);
    expect(await store.warmCount('browser')).toBe(0);
    await store.delete(a.id);
    expect(await store.warmCount('base')).toBe(1);
    await store.update(b.id, { status: 'releasing' });
    expect(await store.warmCount('base')).toBe(0);
  });

  it('rejects a malformed record with a clear error, not as an unavailable store', async () => {
    const keyPrefix = `test-${randomUUID()}`;
    const store = await open({ keyPrefix, deploymentId: 'deployment-a' });
    await admin.hset(`${keyPrefix}:deployment-a:sbx:broken`, { id: '"broken"', status: '"sleeping"' });
    const failure = await store.get('broken').catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(StoreUnavailableError);
    expect(String(failure)).toContain('broken');
  });
});

/** Whether the store's ping succeeds within `timeoutMs`, trying every 100 ms. */
async function answersWithin(store: RedisStateStore, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answered = await store.ping().then(
      () => true,
      () => false,
    );
    if (answered || Date.now() >= deadline) return answered;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('RedisStateStore when Redis goes away', () => {
  let own: RedisServer;

  beforeAll(async () => {
    own = await startRedisServer();
  });

  afterAll(async () => {
    await own?.stop();
  });

  it('fails fast with StoreUnavailableError while Redis is down and recovers by itself', async () => {
    const store = new RedisStateStore({
      redis: await connect(own.port),
      keyPrefix: `test-${randomUUID()}`,
      deploymentId: 'deployment-a',
    });
    try {
      const record = sandboxRecord({ status: 'warm' });
      await store.put(record);
      await store.pushWarm('base', record.id);

      await own.stop();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['ping', () => store.ping()],
        ['get', () => store.get(record.id)],
        ['put', () => store.put(sandboxRecord())],
        ['list', () => store.list({ status: 'warm' })],
        ['claimWarm', () => store.claimWarm('base', 1)],
        ['allocatePort', () => store.allocatePort({ start: 52_000, end: 52_010 }, 'x')],
        ['reserveInstance', () => store.reserveInstance('x', 0)],
        ['acquireLease', () => store.acquireLease('leader', 'x', 1_000)],
      ];
      for (const [name, call] of calls) {
        const started = performance.now();
        const failure = await call().then(
          () => new Error(`${name} succeeded with Redis down`),
          (err: unknown) => err,
        );
        const elapsedMs = performance.now() - started;
        expect(failure, name).toBeInstanceOf(StoreUnavailableError);
        expect((failure as StoreUnavailableError).code).toBe('STATE_STORE_UNAVAILABLE');
        expect(elapsedMs, `${name} took ${elapsedMs} ms`).toBeLessThan(2_000);
      }

      // Back, but empty (no persistence) and without the scripts cached: the same store works again.
      await own.restart();
      expect(await answersWithin(store, 15_000)).toBe(true);
      const fresh = sandboxRecord({ status: 'warm' });
      await store.put(fresh);
      await store.pushWarm('base', fresh.id);
      expect((await store.claimWarm('base', 7))?.id).toBe(fresh.id);
      expect(await store.get(fresh.id)).toMatchObject({ status: 'claimed', claimedAt: 7 });
    } finally {
      await store.close();
    }
  });

  it('connectRedis rejects with StoreUnavailableError when nothing answers', async () => {
    await own.stop();
    const failure = await connectRedis(configFor(own.port), { onError: () => {}, readyTimeoutMs: 500 }).catch(
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(String(failure)).toContain(`127.0.0.1:${own.port}`);
  });

  it('a client created while Redis is down connects once it comes up', async () => {
    await own.stop();
    const redis = createRedisClient(configFor(own.port), { onError: () => {} });
    const store = new RedisStateStore({
      redis,
      keyPrefix: `test-${randomUUID()}`,
      deploymentId: 'deployment-a',
    });
    try {
      await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
      await own.restart();
      expect(await answersWithin(store, 15_000)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
