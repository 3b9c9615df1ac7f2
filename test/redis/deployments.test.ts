/**
 * Scoped cleanup on one shared Redis. Two deployments, X (two replicas) and Y (one), share the
 * redis-server and the host port map. Shutting Y down with AUTO_CLEANUP removes Y's sandboxes,
 * keys and ports and nothing of X's; stopping one replica of X leaves X's sandboxes to the other,
 * which still serves the one a caller holds; the last replica of X cleans X up.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type ServerProcess, waitForWarm } from '../../support/server-process.js';
import { withDeployment, withRedis } from '../support/fixture.js';
import { containerSandboxIds, expectNothingLeft, keysOf, onRedis, portsHeld, recordsOf } from './support.js';

const POOL = 2;

describe('two deployments on one Redis', () => {
  const { redis, client } = withRedis();
  const x = withDeployment('h10-test-deployment-x', { start: onRedis(redis), ports: 40 });
  // One range for both: they share the host-wide port map.
  const y = withDeployment('h10-test-deployment-y', { start: onRedis(redis), sharePortsWith: x });
  const X = x.id;
  const Y = y.id;

  const start = (deploymentId: string): Promise<ServerProcess> =>
    (deploymentId === X ? x : y).start({ env: { POOL_SIZE: String(POOL) } });

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
    expect(readdirSync(y.mountDir)).toEqual([]);
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
    expect(readdirSync(x.mountDir)).toEqual([]);
  }, 300_000);
});
