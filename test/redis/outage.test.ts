/**
 * Redis going away under a running two-worker server that is being used, and coming back empty
 * (restarted without persistence). While it is away: /readyz and acquire answer 503
 * STATE_STORE_UNAVAILABLE, liveness still answers, no worker crashes and no request gets anything
 * but a coded answer. Once it is back the service resumes without a restart: the pool fills again,
 * acquires and calls work, and containers whose records were lost with the old Redis are destroyed
 * by the reconciler.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, type ServerProcess, waitForWarm } from '../../support/server-process.js';
import { withRedis, withServer } from '../support/fixture.js';
import { containerSandboxIds, expectNothingLeft, LEADER_LEASE_MS, onRedis, recordsOf } from './support.js';

const POOL = 2;
/**
 * What a caller may get while Redis is away or just back empty: the store is unavailable; a sandbox
 * whose record was lost is not found; a create under way when the records vanished failed.
 */
const EXPECTED = new Set([
  '503 STATE_STORE_UNAVAILABLE',
  '404 SANDBOX_NOT_FOUND',
  '502 SANDBOX_CREATE_FAILED',
]);

/**
 * Two callers in a loop of acquire, exec, release until stopped. Failures are collected as
 * `<status> <code>` (or the network error), and cycles that completed after the restart counted.
 */
function keepBusy(server: ServerProcess): {
  stop(): Promise<{ failures: string[]; completedAfterRestart: number }>;
} {
  const failures: string[] = [];
  let completed = 0;
  let completedAtStop = 0;
  let running = true;
  const failed = (status: number, body: unknown) =>
    failures.push(`${status} ${(body as { error?: { code?: string } }).error?.code ?? JSON.stringify(body)}`);
  const loop = async () => {
    while (running) {
      try {
        const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
        if (acquired.status !== 201) {
          failed(acquired.status, acquired.body);
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        const exec = await server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, { command: 'true' });
        if (exec.status !== 200) failed(exec.status, exec.body);
        const released = await server.call('DELETE', `/v1/sandboxes/${acquired.body.id}`);
        if (released.status !== 204) failed(released.status, released.body);
        if (exec.status === 200 && released.status === 204) completed++;
      } catch (err) {
        failures.push(`no answer: ${String(err)}`);
      }
    }
  };
  const loops = [loop(), loop()];
  return {
    // Called once Redis is back: waits for a cycle to complete from here on.
    async stop() {
      completedAtStop = completed;
      const deadline = Date.now() + 60_000;
      while (completed === completedAtStop && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      running = false;
      await Promise.all(loops);
      return { failures, completedAfterRestart: completed - completedAtStop };
    },
  };
}

describe('Redis outage and restart', () => {
  const { redis, client } = withRedis();
  // The test's own client must not give up while Redis is away.
  beforeAll(() => {
    client.on('error', () => undefined);
  });
  const server = withServer('h10-test-outage', {
    start: onRedis(redis, 2),
    ports: 40,
    env: { POOL_SIZE: String(POOL) },
    warm: POOL,
  });
  const DEPLOYMENT = server.deployment.id;

  it('answers 503 STATE_STORE_UNAVAILABLE while Redis is down, and resumes once it is back', async () => {
    const before = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(before.status).toBe(201);
    const containersBefore = await containerSandboxIds(DEPLOYMENT);
    const traffic = keepBusy(server);

    const logsBefore = server.logs().length;
    await redis.stop();
    for (let i = 0; i < 4; i++) {
      // Several requests, so both workers answer some.
      const ready = await server.call('GET', '/readyz');
      expect(ready).toMatchObject({ status: 503, body: { error: { code: 'STATE_STORE_UNAVAILABLE' } } });
      const acquire = await server.call('POST', '/v1/sandboxes', {});
      expect(acquire).toMatchObject({ status: 503, body: { error: { code: 'STATE_STORE_UNAVAILABLE' } } });
      const exec = await server.call('POST', `/v1/sandboxes/${before.body.id}/exec`, { command: 'true' });
      expect(exec).toMatchObject({ status: 503, body: { error: { code: 'STATE_STORE_UNAVAILABLE' } } });
      expect((await server.fetch('/healthz')).status).toBe(200);
    }
    // Through a failed maintenance tick and the end of the leader's term: the process stays up.
    await eventually(
      'a maintenance tick to fail and the leader lease to run out',
      async () => {
        const since = server.logs().slice(logsBefore);
        const tickFailed = since.some((line) => line.msg === 'maintenance tick failed');
        const leaseEnded = since.some((line) => line.reason === 'the leader lease expired unrenewed');
        return tickFailed && leaseEnded ? true : undefined;
      },
      LEADER_LEASE_MS * 3,
    );
    expect(server.child.exitCode).toBeNull();
    const faults = server
      .logs()
      .filter((line) => line.msg === 'worker died; starting a replacement' || line.level === 'fatal');
    expect(faults).toEqual([]);

    // Back, but empty: every record went with the old Redis.
    await redis.restart();
    await eventually('readiness to return', async () =>
      (await server.fetch('/readyz')).status === 200 ? true : undefined,
    );
    // The callers using the server throughout got sandboxes before and after, and in between only
    // "the store is away" or, for sandboxes whose records the empty Redis lost, "not found".
    const outcomes = await traffic.stop();
    expect(outcomes.completedAfterRestart).toBeGreaterThan(0);
    expect(outcomes.failures.filter((failure) => !EXPECTED.has(failure))).toEqual([]);
    await waitForWarm(server, 'base', POOL);
    const after = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(after.status).toBe(201);
    const exec = await server.call('POST', `/v1/sandboxes/${after.body.id}/exec`, { command: 'echo back' });
    expect(exec).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'back\n' } });

    // Containers no record claims any more (the pool and the sandbox held before) are destroyed.
    await eventually('containers of lost records to be destroyed', async () => {
      const containers = await containerSandboxIds(DEPLOYMENT);
      const ids = new Set((await recordsOf(client, DEPLOYMENT)).map((r) => r.id));
      return containers.every((id) => ids.has(id)) ? true : undefined;
    });
    const containersAfter = await containerSandboxIds(DEPLOYMENT);
    expect(containersAfter.filter((id) => containersBefore.includes(id))).toEqual([]);
    expect((await server.fetch(`/v1/sandboxes/${after.body.id}`, { method: 'DELETE' })).status).toBe(204);
  }, 180_000);

  it('shuts down cleanly after the outage, leaving nothing behind', async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
    await expectNothingLeft(client, DEPLOYMENT);
  }, 120_000);
});
