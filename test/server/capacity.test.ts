/**
 * Limits, on each backend (Docker containers, pods on the fake Kubernetes API server):
 * MAX_SANDBOX_INSTANCES turns extra acquires away with CAPACITY_EXCEEDED until one is released,
 * concurrent ones included. On Docker, a PORT_RANGE of two ports serves many sandboxes one after
 * another, which only works if every release gives its port back (pods take no host port).
 */
import { describe, expect, it } from 'vitest';
import { BACKENDS, withBackend } from '../support/backends.js';
import { withServer } from '../support/fixture.js';

describe.each(BACKENDS)('capacity limits on %s', (name) => {
  const backend = withBackend(name);
  const server = withServer(`h5-test-capacity-${name}`, {
    ports: 2,
    env: () => ({ ...backend.settings(), POOL_SIZE: '0', MAX_SANDBOX_INSTANCES: '2' }),
  });
  const sandboxCount = async () => (await backend.sandboxIds(server)).length;

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
    expect(await sandboxCount()).toBe(2);

    expect((await server.fetch(`/v1/sandboxes/${first.body.id}`, { method: 'DELETE' })).status).toBe(204);
    const fourth = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(fourth.status).toBe(201);

    for (const id of [second.body.id, fourth.body.id]) {
      expect((await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect(await sandboxCount()).toBe(0);
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
    expect(await sandboxCount()).toBe(2);
    for (const { body } of admitted) {
      expect((await server.fetch(`/v1/sandboxes/${body.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    expect(await sandboxCount()).toBe(0);
  });

  // Only where sandboxes publish host ports: a pod has none to give back.
  if (!backend.usesHostPorts) return;
  it('reuses released host ports: five sandboxes in turn through a range of two', async () => {
    const used: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { status, body } = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
      expect(status).toBe(201);
      used.push(Number(new URL((await backend.directAccess(server, body.id)).url).port));
      const echo = await server.call('POST', `/v1/sandboxes/${body.id}/exec`, { command: 'echo ok' });
      expect(echo.body).toMatchObject({ stdout: 'ok\n' });
      expect((await server.fetch(`/v1/sandboxes/${body.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    const [first, last] = server.deployment.portRange.split('-').map(Number);
    expect(new Set(used)).toEqual(new Set([first, last]));
  });
});
