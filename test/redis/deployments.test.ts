/**
 * Scoped cleanup on one shared Redis. Two deployments, X (two replicas) and Y (one), share the
 * redis-server and the host port map. Shutting Y down with AUTO_CLEANUP removes Y's sandboxes,
 * keys and ports and nothing of X's; stopping one replica of X leaves X's sandboxes to the other,
 * which still serves the one a caller holds; the last replica of X cleans X up.
 */
import { readdirSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../support/redis-server.js';
import {
  removeContainersOf,
  removeMountDir,
  requireImage,
  type ServerProcess,
  waitForWarm,
} from '../support/server-process.js';
import {
  containerSandboxIds,
  expectNothingLeft,
  keysOf,
  portsHeld,
  recordsOf,
  redisClient,
  startRedisServerProcess,
  tempMountDir,
} from './support.js';

const X = 'h10-test-deployment-x';
const Y = 'h10-test-deployment-y';
/** One range for both: they share the host-wide port map. */
const PORT_RANGE = '56500-56999';
const POOL = 2;

describe('two deployments on one Redis', () => {
  let redis: RedisServer;
  let client: Redis;
  const servers: ServerProcess[] = [];
  const mountDirs: Record<typeof X | typeof Y, string> = { [X]: tempMountDir(X), [Y]: tempMountDir(Y) };

  const start = async (deploymentId: typeof X | typeof Y): Promise<ServerProcess> => {
    const server = await startRedisServerProcess(redis, {
      deploymentId,
      portRange: PORT_RANGE,
      mountDir: mountDirs[deploymentId],
      env: { POOL_SIZE: String(POOL) },
    });
    servers.push(server);
    return server;
  };

  beforeAll(async () => {
    await requireImage();
    await removeContainersOf(X);
    await removeContainersOf(Y);
    redis = await startRedisServer();
    client = redisClient(redis);
  });

  afterAll(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await removeContainersOf(X);
    await removeContainersOf(Y);
    client?.disconnect();
    await redis?.stop();
    for (const dir of Object.values(mountDirs)) removeMountDir(dir);
  });

  it("cleans up only its own deployment, and leaves a replica's sandboxes to the replicas still running", async () => {
    const x1 = await start(X);
    const x2 = await start(X);
    const y = await start(Y);
    await waitForWarm(x1, 'base', POOL);
    await waitForWarm(y, 'base', POOL);

    const heldX = await x1.call<{ id: string }>('POST', '/v1/sandboxes', { env: { WHO: 'x' } });
    const heldY = await y.call<{ id: string }>('POST', '/v1/sandboxes', { env: { WHO: 'y' } });
    expect([heldX.status, heldY.status]).toEqual([201, 201]);
    await waitForWarm(x1, 'base', POOL);
    await waitForWarm(y, 'base', POOL);
    const xContainers = await containerSandboxIds(X);
    const yIds = new Set((await recordsOf(client, Y)).map((r) => r.id));
    expect(xContainers).toHaveLength(POOL + 1);
    expect(yIds.size).toBe(POOL + 1);

    // Y, alone in its deployment, cleans up everything of Y's and nothing else.
    expect(await y.stop('SIGTERM')).toBe(0);
    await expectNothingLeft(client, Y, yIds);
    expect(readdirSync(mountDirs[Y])).toEqual([]);
    expect(await containerSandboxIds(X)).toEqual(xContainers);
    expect((await portsHeld(client)).map((p) => p.owner).sort()).toEqual(xContainers);
    const whoX = await x2.call('POST', `/v1/sandboxes/${heldX.body.id}/exec`, { command: 'echo $WHO' });
    expect(whoX).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'x\n' } });

    // x1 stops while x2 runs: X's sandboxes stay, and x2 serves the one x1 handed out.
    expect(await x1.stop('SIGTERM')).toBe(0);
    expect(
      x1
        .logs()
        .some(
          (line) => line.msg === 'other replicas still serve this deployment; leaving its sandboxes to them',
        ),
    ).toBe(true);
    expect(await containerSandboxIds(X)).toEqual(xContainers);
    const again = await x2.call('POST', `/v1/sandboxes/${heldX.body.id}/exec`, { command: 'echo $WHO' });
    expect(again).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'x\n' } });
    expect((await keysOf(client, X)).length).toBeGreaterThan(0);

    // x2 is the last of X: it cleans X up.
    expect(await x2.stop('SIGTERM')).toBe(0);
    await expectNothingLeft(client, X);
    expect(readdirSync(mountDirs[X])).toEqual([]);
  }, 300_000);
});
