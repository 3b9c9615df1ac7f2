/**
 * Limits: MAX_SANDBOX_INSTANCES turns extra acquires away with CAPACITY_EXCEEDED until one is
 * released, concurrent ones included, and a PORT_RANGE of two ports serves many sandboxes one after another, which only works
 * if every release gives its port back.
 */
import { describe, expect, it } from 'vitest';
import { containersOf, docker } from '../../support/server-process.js';
import { testDeploymentId, withServer } from '../support/fixture.js';

const DEPLOYMENT = testDeploymentId('h5-test-capacity');

describe('capacity limits', () => {
  const server = withServer('h5-test-capacity', {
    ports: 2,
    env: { POOL_SIZE: '0', MAX_SANDBOX_INSTANCES: '2' },
  });

  async function hostPortOf(id: string): Promise<number> {
    const [container] = (await containersOf(DEPLOYMENT)).filter(
      (c) => c.Labels['io.runtime-sandbox.sandbox-id'] === id,
    );
    if (!container) throw new Error(`no container for ${id}`);
    const inspected = await docker.getContainer(container.Id).inspect();
    return Number(inspected.NetworkSettings.Ports['49983/tcp']?.[0]?.HostPort);
  }

  it('refuses acquires beyond MAX_SANDBOX_INSTANCES, and serves again after a release', async () => {
    const first = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    const second = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect([first.status, second.status]).toEqual([201, 201]);

    const third = await server.fetch('/v1/sandboxes', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(await third.json()).toMatchObject({ error: { code: 'CAPACITY_EXCEEDED' } });
    expect(await containersOf(DEPLOYMENT)).toHaveLength(2);

    expect((await server.fetch(`/v1/sandboxes/${first.body.id}`, { method: 'DELETE' })).status).toBe(204);
    const fourth = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(fourth.status).toBe(201);

    for (const id of [second.body.id, fourth.body.id]) {
      expect((await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect(await containersOf(DEPLOYMENT)).toHaveLength(0);
  });

  it('lets no more than MAX_SANDBOX_INSTANCES of six concurrent acquires through', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => server.call<{ id: string }>('POST', '/v1/sandboxes', {})),
    );
    const admitted = answers.filter((answer) => answer.status === 201);
    expect(admitted).toHaveLength(2);
    for (const refused of answers.filter((answer) => answer.status !== 201)) {
      expect(refused).toMatchObject({ status: 429, body: { error: { code: 'CAPACITY_EXCEEDED' } } });
    }
    expect(await containersOf(DEPLOYMENT)).toHaveLength(2);
    for (const { body } of admitted) {
      expect((await server.fetch(`/v1/sandboxes/${body.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect(await containersOf(DEPLOYMENT)).toHaveLength(0);
  });

  it('reuses released host ports: five sandboxes in turn through a range of two', async () => {
    const used: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { status, body } = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
      expect(status).toBe(201);
      used.push(await hostPortOf(body.id));
      const echo = await server.call('POST', `/v1/sandboxes/${body.id}/exec`, { command: 'echo ok' });
      expect(echo.body).toMatchObject({ stdout: 'ok\n' });
      expect((await server.fetch(`/v1/sandboxes/${body.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    const [first, last] = server.deployment.portRange.split('-').map(Number);
    expect(new Set(used)).toEqual(new Set([first, last]));
  });
});
