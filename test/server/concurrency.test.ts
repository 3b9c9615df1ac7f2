/**
 * A burst: 50 acquires at once against a pool of 5. Every one succeeds with its own sandbox and its
 * own host port, each sandbox works, and once all are released and the pool is sized to zero not a
 * container or workspace dir of the deployment is left.
 */
import { describe, expect, it } from 'vitest';
import { containersOf, docker, eventually } from '../../support/server-process.js';
import { testDeploymentId, withServer } from '../support/fixture.js';

const DEPLOYMENT = testDeploymentId('h5-test-concurrency');
const BURST = 50;

describe('concurrent acquires', () => {
  const server = withServer('h5-test-concurrency', {
    ports: 100,
    // Above the limit derived from a small machine's memory: the point is 50 at once.
    env: { POOL_SIZE: '5', MAX_SANDBOX_INSTANCES: '60' },
    warm: 5,
  });

  it(`serves ${BURST} simultaneous acquires with distinct sandboxes and ports, and leaves nothing behind`, async () => {
    const results = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        server.call<{ id: string; fromPool: boolean }>('POST', '/v1/sandboxes', { sessionId: `burst-${i}` }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(BURST).fill(201));
    const ids = results.map((r) => r.body.id);
    expect(new Set(ids).size).toBe(BURST);
    expect(results.filter((r) => r.body.fromPool).length).toBeGreaterThanOrEqual(5);

    const claimed = (await containersOf(DEPLOYMENT)).filter((c) =>
      ids.includes(c.Labels['io.runtime-sandbox.sandbox-id'] ?? ''),
    );
    expect(claimed).toHaveLength(BURST);
    const ports = await Promise.all(
      claimed.map(async (c) => {
        const inspected = await docker.getContainer(c.Id).inspect();
        return inspected.NetworkSettings.Ports['49983/tcp']?.[0]?.HostPort;
      }),
    );
    expect(new Set(ports).size).toBe(BURST);

    // Each answers with its own env: no two callers share a sandbox.
    const echoes = await Promise.all(
      ids.map((id) =>
        server.call<{ stdout: string }>('POST', `/v1/sandboxes/${id}/exec`, { command: 'hostname' }),
      ),
    );
    expect(echoes.map((e) => e.status)).toEqual(Array(BURST).fill(200));
    expect(new Set(echoes.map((e) => e.body.stdout)).size).toBe(BURST);

    const released = await Promise.all(
      ids.map((id) => server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })),
    );
    expect(released.map((r) => r.status)).toEqual(Array(BURST).fill(204));

    expect((await server.call('PUT', '/v1/pools/base', { size: 0 })).status).toBe(200);
    await eventually(
      'every container and workspace dir to be gone',
      async () => {
        const containers = await containersOf(DEPLOYMENT);
        const dirs = server.workspaceDirs();
        return containers.length === 0 && dirs.length === 0 ? true : undefined;
      },
      60_000,
    );
    const { body } = await server.call<{ sandboxes: unknown[] }>('GET', '/v1/sandboxes');
    expect(body.sandboxes).toEqual([]);
  });
});
