/**
 * FILE_SYSTEM=redis against a real redis-server: blobs as chunk lists, catalog and heads in Redis.
 * Also local blobs with the Redis catalog (REDIS_ENABLED). Beyond the contract: the size cap, the
 * TTL, and two replicas (separate connections, separate store instances) racing for one key.
 *
 * The 100 MiB round trip runs with SNAPSHOT_REDIS_MAX_BYTES raised to 128 MiB: the default cap
 * (64 MiB) is a policy for small workspaces, not a limit of the chunked format, and the full size
 * shows the chunking streams a large blob in and out like the other backends.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigInput, configSchema } from '../../server/src/config/schema.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { createSnapshotStore } from '../../server/src/snapshots/create-snapshot-store.js';
import { LocalBlobStore } from '../../server/src/snapshots/local-blob-store.js';
import { RedisBlobStore } from '../../server/src/snapshots/redis-blob-store.js';
import type { SnapshotRecord } from '../../server/src/snapshots/snapshot-store.js';
import { connectRedis } from '../../server/src/state/redis-connection.js';
import { type RedisServer, startRedisServer } from '../../support/redis-server.js';
import { barrier, digestOf, MiB, meetingAfterFirstChunk, randomish } from './payload.js';
import {
  blobNameOf,
  codeOf,
  describeSnapshotStoreContract,
  type OpenedBackend,
} from './snapshot-store-contract.js';

const logger = createLogger('silent');
let server: RedisServer;
/** The tests' own connection, for looking at keys. */
let probe: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  probe = await connectRedis(redisSettings(), { onError: () => {} });
});

afterAll(async () => {
  probe?.disconnect();
  await server?.stop();
});

function redisSettings() {
  return {
    REDIS_SERVER: '127.0.0.1',
    REDIS_PORT: server.port,
    REDIS_DB: 0,
    REDIS_USER: undefined,
    REDIS_PASSWORD: undefined,
  };
}

/** Every key under a prefix, by SCAN: fine in a test, never done on a hot path. */
async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await probe.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** A fresh REDIS_KEY_PREFIX per store, so tests share the server but never each other's keys. */
function freshConfig(settings: Partial<ConfigInput>) {
  return configSchema.parse({
    FILE_SYSTEM: 'redis',
    REDIS_SERVER: '127.0.0.1',
    REDIS_PORT: String(server.port),
    REDIS_KEY_PREFIX: `test-${randomUUID()}`,
    SNAPSHOT_REDIS_MAX_BYTES: String(128 * MiB),
    ...settings,
  });
}

function snapPrefix(config: { REDIS_KEY_PREFIX: string; CONTAINER_PREFIX_KEY: string }): string {
  return `${config.REDIS_KEY_PREFIX}:${config.CONTAINER_PREFIX_KEY}:snap:`;
}

async function openRedis(settings: Partial<ConfigInput> = {}): Promise<OpenedBackend & { prefix: string }> {
  const config = freshConfig(settings);
  const prefix = snapPrefix(config);
  const store = await createSnapshotStore(config, { logger });
  const blobs = new RedisBlobStore({
    redis: probe,
    keyPrefix: prefix,
    maxBytes: config.SNAPSHOT_REDIS_MAX_BYTES,
    ttlSeconds: config.SNAPSHOT_REDIS_TTL_SECONDS,
  });
  return {
    prefix,
    store,
    blobs,
    leftovers: () => keysUnder(`${prefix}staging:`),
    async close() {
      await store.close();
    },
  };
}

describeSnapshotStoreContract('redis', openRedis);

describeSnapshotStoreContract('local blobs + redis catalog', async (settings = {}) => {
  const dir = mkdtempSync(join(tmpdir(), 'rsbx-test-snapshots-'));
  const store = await createSnapshotStore(
    freshConfig({
      FILE_SYSTEM: 'local',
      REDIS_ENABLED: 'true',
      SANDBOX_TOKEN_SECRET: 'snapshot-tests-sandbox-token-secret-0123',
      SNAPSHOT_DIR: dir,
      ...settings,
    }),
    { logger },
  );
  return {
    store,
    blobs: new LocalBlobStore(dir),
    leftovers: async () => [],
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('redis snapshot store', () => {
  const opened: OpenedBackend[] = [];
  async function open(settings: Partial<ConfigInput> = {}) {
    const backend = await openRedis(settings);
    opened.push(backend);
    return backend;
  }

  afterEach(async () => {
    for (const backend of opened.splice(0)) await backend.close();
  });

  it('refuses a snapshot over SNAPSHOT_REDIS_MAX_BYTES with PAYLOAD_TOO_LARGE, keeping the head', async () => {
    const { store, blobs, prefix } = await open({ SNAPSHOT_REDIS_MAX_BYTES: String(4 * MiB) });
    const good = await store.save({
      key: 'capped',
      stream: randomish(4 * MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    const tooBig = store.save({
      key: 'capped',
      stream: randomish(6 * MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    const failure = await tooBig.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', details: { limitBytes: 4 * MiB } });
    expect(await store.latest('capped')).toEqual(good);
    expect(await blobs.list('blobs')).toEqual([blobNameOf(good)]);
    expect(await keysUnder(`${prefix}staging:`)).toEqual([]);
  });

  it('stores a blob as a list of chunks of at most 1 MiB, never one string', async () => {
    const { store, prefix } = await open();
    const record = await store.save({
      stream: randomish(5 * MiB + 10, 64 * 1024).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    const key = `${prefix}blob:${blobNameOf(record)}`;
    expect(await probe.type(key)).toBe('list');
    expect(await probe.llen(key)).toBe(6);
    const sizes = await Promise.all([0, 5].map((i) => probe.lrangeBuffer(key, i, i)));
    expect(sizes.map(([chunk]) => chunk?.length)).toEqual([MiB, 10]);
  });

  it('gives blobs SNAPSHOT_REDIS_TTL_SECONDS, renewed on each read; 0 means they never expire', async () => {
    const expiring = await open({ SNAPSHOT_REDIS_TTL_SECONDS: '3600' });
    const record = await expiring.store.save({
      stream: randomish(MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    const key = `${expiring.prefix}blob:${blobNameOf(record)}`;
    const ttl = await probe.ttl(key);
    expect(ttl).toBeGreaterThan(3500);
    await probe.expire(key, 60);
    await digestOf((await expiring.store.open(record.id)).stream);
    expect(await probe.ttl(key)).toBeGreaterThan(3500);

    const forever = await open({ SNAPSHOT_REDIS_TTL_SECONDS: '0' });
    const kept = await forever.store.save({ stream: randomish(MiB).chunks(), sandboxId: 's', type: 'base' });
    expect(await probe.ttl(`${forever.prefix}blob:${blobNameOf(kept)}`)).toBe(-1);
  });

  it('lets exactly one of two replicas win a race for the same key head', async () => {
    const config = freshConfig({});
    // Two store instances on two connections: what two server replicas sharing a Redis are.
    const replicaA = await createSnapshotStore(config, { logger });
    const replicaB = await createSnapshotStore(config, { logger });
    try {
      const base = await replicaA.save({
        key: 'shared',
        stream: randomish(MiB).chunks(),
        sandboxId: 's',
        type: 'base',
      });
      expect(await replicaB.latest('shared')).toEqual(base);
      const meet = barrier(2);
      const results = await Promise.allSettled(
        [replicaA, replicaB].map((replica) =>
          replica.save({
            key: 'shared',
            stream: meetingAfterFirstChunk(randomish(2 * MiB), meet),
            sandboxId: 's',
            type: 'base',
          }),
        ),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
      expect(won).toHaveLength(1);
      expect(lost).toMatchObject([{ code: 'SNAPSHOT_CONFLICT' }]);
      const winner = won[0] as SnapshotRecord;
      expect(await replicaA.latest('shared')).toEqual(winner);
      expect(await replicaB.latest('shared')).toEqual(winner);
      const blobKeys = await keysUnder(`${snapPrefix(config)}blob:`);
      expect(blobKeys).toEqual(
        [base, winner].map((r) => `${snapPrefix(config)}blob:${blobNameOf(r)}`).sort(),
      );
    } finally {
      await replicaA.close();
      await replicaB.close();
    }
  });

  it('answers STATE_STORE_UNAVAILABLE while Redis is down, and SNAPSHOT_FAILED for bytes it cannot take', async () => {
    const { store } = await open();
    const record = await store.save({
      key: 'down',
      stream: randomish(MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    await server.stop();
    try {
      expect(await codeOf(store.get(record.id))).toBe('STATE_STORE_UNAVAILABLE');
      expect(await codeOf(store.latest('down'))).toBe('STATE_STORE_UNAVAILABLE');
      // A keyed save needs the head first; a one-off save fails on the bytes.
      const keyed = store.save({
        key: 'down',
        stream: randomish(MiB).chunks(),
        sandboxId: 's',
        type: 'base',
      });
      expect(await codeOf(keyed)).toBe('STATE_STORE_UNAVAILABLE');
      const loose = store.save({ stream: randomish(MiB).chunks(), sandboxId: 's', type: 'base' });
      expect(await codeOf(loose)).toBe('SNAPSHOT_FAILED');
    } finally {
      await server.restart();
    }
  });
});
