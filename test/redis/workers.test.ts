/**
 * WORKERS=2: one server, two worker processes (node:cluster) on one listening port, sharing pool,
 * port and sandbox state through a real redis-server. Concurrent acquire/use/release cycles never hand a
 * sandbox or a host port out twice; a worker killed with SIGKILL in the middle of pool creates is
 * replaced, and what it left half-made is cleared within a lease and a reconcile pass; SIGTERM
 * leaves no container, key or port behind.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventually, waitForWarm, workspaceDirsIn } from '../../support/server-process.js';
import { withRedis, withServer } from '../support/fixture.js';
import {
  containerSandboxIds,
  expectNothingLeft,
  lastLeader,
  onRedis,
  portsHeld,
  RACE,
  recordsOf,
  runCycles,
} from './support.js';

const POOL = RACE.pool;

describe('two workers on one Redis', () => {
  const { redis, client } = withRedis();
  const server = withServer('h10-test-workers', {
    start: onRedis(redis, 2),
    ports: 100,
    env: { POOL_SIZE: String(POOL) },
    warm: POOL,
  });
  const DEPLOYMENT = server.deployment.id;
  const mountDir = server.deployment.mountDir;

  it(`runs ${RACE.cycles} concurrent acquire/release cycles across both workers without handing anything out twice`, async () => {
    const report = await runCycles([server], client, RACE);
    expect(report.fromPool).toBeGreaterThanOrEqual(POOL);
    // Both workers handed out sandboxes (the primary shares connections out round-robin).
    expect(report.servingPids.size).toBe(2);
    await waitForWarm(server, 'base', POOL);
    const records = await recordsOf(client, DEPLOYMENT);
    expect(records.map((r) => r.status)).toEqual(Array(POOL).fill('warm'));
    expect(await containerSandboxIds(DEPLOYMENT)).toEqual(records.map((r) => r.id).sort());
    expect((await portsHeld(client)).map((p) => p.owner).sort()).toEqual(records.map((r) => r.id).sort());
  }, 300_000);

  it('replaces a worker killed mid-create, clears what it left half-made and loses no held sandbox', async () => {
    const leader = lastLeader([server]);
    if (!leader) throw new Error('no worker became leader');
    // Emptying the pool sets the leader creating replacements; kill it while they are under way.
    const held = await Promise.all(
      Array.from({ length: POOL }, async () => {
        const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', { env: { HELD: 'yes' } });
        expect(acquired.status).toBe(201);
        return acquired.body.id;
      }),
    );
    await eventually('the leader to be creating', async () => {
      const records = await recordsOf(client, DEPLOYMENT);
      return records.some((r) => r.status === 'creating' && r.creator === leader.holder) ? true : undefined;
    });
    process.kill(leader.pid, 'SIGKILL');
    const killedAt = Date.now();

    await eventually(
      'the dead worker to be replaced',
      async () =>
        server.logs().some((line) => line.msg === 'worker died; starting a replacement') ? true : undefined,
      30_000,
    );
    const clearedMs = await eventually(
      'no orphan: every container, port, slot and workspace dir belongs to a record',
      async () => {
        const records = await recordsOf(client, DEPLOYMENT);
        if (records.some((r) => r.creator === leader.holder && r.status === 'creating')) return undefined;
        const ids = new Set(records.map((r) => r.id));
        const taken = [
          ...(await containerSandboxIds(DEPLOYMENT)),
          ...(await portsHeld(client)).map((p) => p.owner),
          ...(await client.smembers(`rsbx:${DEPLOYMENT}:instances`)),
          ...workspaceDirsIn(mountDir, DEPLOYMENT),
        ];
        return taken.every((id) => ids.has(id)) ? Date.now() - killedAt : undefined;
      },
      60_000,
    );
    console.log(`the killed worker's half-made sandboxes were cleared ${clearedMs} ms after SIGKILL`);

    // The sandboxes callers hold are untouched, and the pool fills up again under the new leader.
    for (const id of held) {
      const exec = await server.call('POST', `/v1/sandboxes/${id}/exec`, { command: 'echo $HELD' });
      expect(exec).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'yes\n' } });
    }
    await waitForWarm(server, 'base', POOL);
    const records = await recordsOf(client, DEPLOYMENT);
    expect(records.filter((r) => r.status === 'warm')).toHaveLength(POOL);
    expect(await containerSandboxIds(DEPLOYMENT)).toEqual(records.map((r) => r.id).sort());
    for (const id of held)
      expect((await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);
  }, 180_000);

  it('shuts down on SIGTERM leaving no container, key, port or workspace dir', async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
    await expectNothingLeft(client, DEPLOYMENT);
    expect(readdirSync(mountDir)).toEqual([]);
  }, 120_000);
});
