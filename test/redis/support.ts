/**
 * What the multi-worker and multi-replica tests share: server processes on one real redis-server,
 * a direct Redis client to look at what they keep there (SCAN is fine in a test; the server never
 * scans), and the acquire/use/release cycle run under load with its no-double-handout checks.
 */
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { LABELS } from '../../server/src/deployers/deployer.js';
import type { RedisServer } from '../../support/redis-server.js';
import {
  docker,
  eventually,
  type ServerProcess,
  type ServerProcessOptions,
  startServerProcess,
} from '../../support/server-process.js';
import { redisClient } from '../support/fixture.js';

export const KEY_PREFIX = 'rsbx';
/** Short enough that takeovers and clean-ups happen within a test's patience. */
export const MAINTENANCE_INTERVAL_MS = 500;
export const LEADER_LEASE_MS = 3000;
/** Shared by every replica so they derive the same sandbox tokens (REDIS_ENABLED requires one). */
export const SANDBOX_TOKEN_SECRET = 'redis-tests-sandbox-token-secret-0123456789';

export { redisClient };

/** How the fixture (withServer, withDeployment) starts a server on `redis`: see startRedisServerProcess. */
export function onRedis(
  redis: RedisServer,
  workers?: number,
): (options: ServerProcessOptions) => Promise<ServerProcess> {
  return (options) => startRedisServerProcess(redis, { ...options, workers });
}

/** A server process on `redis`, with the short maintenance interval and lease of these tests. */
export async function startRedisServerProcess(
  redis: RedisServer,
  options: ServerProcessOptions & { workers?: number },
): Promise<ServerProcess> {
  const workers = options.workers ?? 1;
  const server = await startServerProcess({
    ...options,
    env: {
      REDIS_ENABLED: 'true',
      REDIS_SERVER: '127.0.0.1',
      REDIS_PORT: String(redis.port),
      REDIS_KEY_PREFIX: KEY_PREFIX,
      SANDBOX_TOKEN_SECRET,
      WORKERS: String(workers),
      MAINTENANCE_INTERVAL_MS: String(MAINTENANCE_INTERVAL_MS),
      LEADER_LEASE_MS: String(LEADER_LEASE_MS),
      SHUTDOWN_GRACE_MS: '5000',
      ...options.env,
    },
  });
  if (workers > 1) {
    // The first worker listening lets the harness in; wait until every worker serves.
    await eventually('every worker to listen', async () =>
      server.logs().some((line) => line.msg === 'workers listening') ? true : undefined,
    );
  }
  return server;
}

/** Every key of the deployment, by SCAN. */
export async function keysOf(client: Redis, deploymentId: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(
      cursor,
      'MATCH',
      `${KEY_PREFIX}:${deploymentId}:*`,
      'COUNT',
      '500',
    );
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

/** The host port map: `{port, owner}` of every port taken (host-wide, all deployments). */
export async function portsHeld(client: Redis): Promise<Array<{ port: number; owner: string }>> {
  const members = await client.zrange(`${KEY_PREFIX}:ports`, '0', '-1');
  return members.map((member) => {
    const [port = '', owner = ''] = member.split(':');
    return { port: Number(port), owner };
  });
}

export interface StoredRecord {
  id: string;
  status: string;
  creator: string | null;
  hostPort: number | null;
}

/** The deployment's sandbox records as stored, read straight from Redis. */
export async function recordsOf(client: Redis, deploymentId: string): Promise<StoredRecord[]> {
  const prefix = `${KEY_PREFIX}:${deploymentId}:`;
  const ids = await client.smembers(`${prefix}all`);
  const records: StoredRecord[] = [];
  for (const id of ids) {
    const fields = await client.hgetall(`${prefix}sbx:${id}`);
    if (Object.keys(fields).length === 0) continue;
    const json = (name: string): unknown => JSON.parse(fields[name] ?? 'null');
    records.push({
      id,
      status: String(json('status')),
      creator: json('creator') as string | null,
      hostPort: json('hostPort') as number | null,
    });
  }
  return records;
}

/** Sandbox ids (from their labels) of the deployment's containers, running or not. */
export async function containerSandboxIds(deploymentId: string): Promise<string[]> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.deployment}=${deploymentId}`] },
  });
  return containers.map((c) => c.Labels[LABELS.sandboxId] ?? `unlabelled:${c.Id}`).sort();
}

/** The host port a sandbox's container publishes, as Docker has it. */
async function publishedPort(sandboxId: string): Promise<string> {
  const [container] = await docker.listContainers({
    filters: { label: [`${LABELS.sandboxId}=${sandboxId}`] },
  });
  const port = container?.Ports.find((p) => p.PublicPort !== undefined)?.PublicPort;
  if (port === undefined) throw new Error(`sandbox ${sandboxId} publishes no host port`);
  return `127.0.0.1:${port}`;
}

/** The replica id and pid of the replica (or worker) that most recently became leader. */
export function lastLeader(
  servers: ServerProcess[],
): { holder: string; pid: number; at: number } | undefined {
  let last: { holder: string; pid: number; at: number } | undefined;
  for (const server of servers) {
    for (const line of server.logs()) {
      if (line.msg !== 'became leader') continue;
      const at = Date.parse(String(line.time));
      if (!last || at >= last.at) last = { holder: String(line.holder), pid: Number(line.pid), at };
    }
  }
  return last;
}

/**
 * The race test of workers and replicas: 20 claims in flight at once against a pool of 5, so warm
 * claims, cold creates and the refiller contend on every round, spread over both processes. What
 * it proves (no id or host port handed out twice, every holder alone in its sandbox, both serving)
 * comes from the concurrency, not the count: 100 cycles are five full turnovers of the 20 in
 * flight; the 500 these once ran repeated the same interleavings for 5-8 minutes per file.
 */
export const RACE = { pool: 5, cycles: 100, concurrency: 20 } as const;

export interface CycleReport {
  cycles: number;
  fromPool: number;
  /** Distinct pids of the processes that handed out sandboxes (from their logs). */
  servingPids: Set<number>;
}

/**
 * `cycles` acquire/use/release rounds, `concurrency` at a time, spread over `servers` in turn. Each
 * round proves it has the sandbox to itself: it leaves a marker in the workspace only if no other
 * holder's marker is there and reads its own back before releasing, its sandbox id is new, and the
 * address the server reaches it at (`addressOf`, by default the host port Docker publishes for it)
 * is held by no other round at the time. Meanwhile the Redis port map is sampled: a port never has
 * two owners.
 */
export async function runCycles(
  servers: ServerProcess[],
  client: Redis,
  options: { cycles: number; concurrency: number; addressOf?: (sandboxId: string) => Promise<string> },
): Promise<CycleReport> {
  const addressOf = options.addressOf ?? publishedPort;
  const seenIds = new Set<string>();
  const portHolders = new Map<string, string>();
  let fromPool = 0;
  let next = 0;
  const doublePorts: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const ports = (await portsHeld(client)).map((p) => p.port);
      if (new Set(ports).size !== ports.length) doublePorts.push(ports.join(','));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  const round = async (index: number): Promise<void> => {
    const server = servers[index % servers.length] as ServerProcess;
    const marker = `holder-${index}`;
    const acquired = await server.call<{ id: string; fromPool: boolean }>('POST', '/v1/sandboxes', {
      sessionId: marker,
      env: { HOLDER: marker },
    });
    expect(acquired.status, JSON.stringify(acquired.body)).toBe(201);
    const { id } = acquired.body;
    expect(seenIds.has(id), `sandbox ${id} handed out twice`).toBe(false);
    seenIds.add(id);
    if (acquired.body.fromPool) fromPool++;

    const port = await addressOf(id);
    expect(portHolders.get(port), `address ${port} held by two sandboxes at once`).toBeUndefined();
    portHolders.set(port, id);

    const claim = await server.call<{ exitCode: number; stdout: string }>(
      'POST',
      `/v1/sandboxes/${id}/exec`,
      {
        command: `if [ -e /workspace/.holder ]; then cat /workspace/.holder; exit 3; fi; echo "$HOLDER" > /workspace/.holder; cat /workspace/.holder`,
      },
    );
    expect(claim.body, `sandbox ${id} already held`).toMatchObject({ exitCode: 0, stdout: `${marker}\n` });
    // Through the other server too: every replica serves every sandbox.
    const other = servers[(index + 1) % servers.length] as ServerProcess;
    const check = await other.call<{ exitCode: number; stdout: string }>('POST', `/v1/sandboxes/${id}/exec`, {
      command: ['cat', '/workspace/.holder'],
    });
    expect(check.body, `sandbox ${id} changed hands`).toMatchObject({ exitCode: 0, stdout: `${marker}\n` });

    portHolders.delete(port);
    const released = await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' });
    expect(released.status).toBe(204);
  };

  try {
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        for (let index = next++; index < options.cycles; index = next++) await round(index);
      }),
    );
  } finally {
    sampling = false;
    await sampler;
  }
  expect(doublePorts, 'a port with two owners in the port map').toEqual([]);
  expect(seenIds.size).toBe(options.cycles);

  const servingPids = new Set<number>();
  for (const server of servers) {
    for (const line of server.logs()) if (line.msg === 'sandbox acquired') servingPids.add(Number(line.pid));
  }
  return { cycles: options.cycles, fromPool, servingPids };
}

/** Nothing of the deployment is left: no container, no key, no port its sandboxes held. */
export async function expectNothingLeft(
  client: Redis,
  deploymentId: string,
  ids?: Set<string>,
): Promise<void> {
  expect(await containerSandboxIds(deploymentId)).toEqual([]);
  expect(await keysOf(client, deploymentId)).toEqual([]);
  const ports = await portsHeld(client);
  expect(ids ? ports.filter((p) => ids.has(p.owner)) : ports).toEqual([]);
}
