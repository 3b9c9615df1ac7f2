/**
 * Two separately started server processes (replicas) of one deployment on one real redis-server
 * act as one server: concurrent acquire/use/release cycles spread over both never hand a sandbox or a
 * host port out twice, and each serves the other's sandboxes. Killing the leader with SIGKILL: the
 * other replica takes over refilling within the lease time, and the last replica to stop cleans up
 * everything.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, type ServerProcess, waitForWarm } from '../../support/server-process.js';
import { withDeployment, withRedis } from '../support/fixture.js';
import {
  containerSandboxIds,
  expectNothingLeft,
  KEY_PREFIX,
  LEADER_LEASE_MS,
  lastLeader,
  onRedis,
  RACE,
  recordsOf,
  runCycles,
} from './support.js';

const POOL = RACE.pool;

describe('two replicas of one deployment on one Redis', () => {
  const { redis, client } = withRedis();
  const deployment = withDeployment('h10-test-replicas', { start: onRedis(redis), ports: 100 });
  const DEPLOYMENT = deployment.id;
  let replicas: ServerProcess[] = [];

  beforeAll(async () => {
    const start = () => deployment.start({ env: { POOL_SIZE: String(POOL) } });
    replicas = [await start(), await start()];
    await waitForWarm(replicas[0] as ServerProcess, 'base', POOL);
  });

  it(`runs ${RACE.cycles} concurrent acquire/release cycles over both replicas without handing anything out twice`, async () => {
    const report = await runCycles(replicas, client, RACE);
    expect(report.fromPool).toBeGreaterThanOrEqual(POOL);
    expect(report.servingPids).toEqual(new Set(replicas.map((r) => r.child.pid)));
    await waitForWarm(replicas[0] as ServerProcess, 'base', POOL);
    const records = await recordsOf(client, DEPLOYMENT);
    expect(records.map((r) => r.status)).toEqual(Array(POOL).fill('warm'));
    expect(await containerSandboxIds(DEPLOYMENT)).toEqual(records.map((r) => r.id).sort());
  }, 300_000);

  it('hands refilling to the other replica within the lease time when the leader is killed', async () => {
    const leader = lastLeader(replicas);
    if (!leader) throw new Error('no replica became leader');
    const dead = replicas.find((r) => r.child.pid === leader.pid);
    const survivor = replicas.find((r) => r.child.pid !== leader.pid);
    if (!dead || !survivor) throw new Error(`leader pid ${leader.pid} is neither replica`);

    await dead.stop('SIGKILL');
    const killedAt = Date.now();
    // Empty the pool through the survivor: only a leader refills it.
    const held = await Promise.all(
      Array.from({ length: POOL }, async () => {
        const acquired = await survivor.call<{ id: string; fromPool: boolean }>('POST', '/v1/sandboxes', {});
        expect(acquired.status).toBe(201);
        return acquired.body.id;
      }),
    );
    const takeover = await eventually('the survivor to become leader', async () => {
      const line = survivor
        .logs()
        .find((l) => l.msg === 'became leader' && Date.parse(String(l.time)) > killedAt);
      return line ? Date.parse(String(line.time)) - killedAt : undefined;
    });
    await waitForWarm(survivor, 'base', POOL);
    const refilledMs = Date.now() - killedAt;
    console.log(
      `leader killed: survivor leader after ${takeover} ms (lease ${LEADER_LEASE_MS} ms), pool refilled after ${refilledMs} ms`,
    );
    // The old lease runs out at most a lease after the kill and the follower tries every third of
    // one; the margin is for timers on a busy 2-core machine.
    expect(takeover).toBeLessThanOrEqual(2 * LEADER_LEASE_MS);

    for (const id of held)
      expect((await survivor.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);
    replicas = [survivor];
  }, 180_000);

  it('leaves nothing behind when the last replica stops', async () => {
    const survivor = replicas[0] as ServerProcess;
    // Only once the killed replica's heartbeat has run out does the survivor know it is the last.
    await eventually('the killed replica to drop off the live replicas', async () => {
      const [seconds, micros] = await client.time();
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const live = await client.zcount(`${KEY_PREFIX}:${DEPLOYMENT}:replicas`, `(${now}`, '+inf');
      return live === 1 || undefined;
    });
    expect(await survivor.stop('SIGTERM')).toBe(0);
    replicas = [];
    await expectNothingLeft(client, DEPLOYMENT);
  }, 120_000);
});
