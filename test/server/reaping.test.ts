/**
 * The maintenance tick against real sandboxes on each backend (Docker containers, pods on the fake
 * Kubernetes API server): idle sandboxes are reaped, a hard TTL ends a sandbox however busy its
 * caller is, a long call keeps its sandbox from counting as idle, and a warm sandbox whose
 * container died is replaced.
 */
import { describe, expect, it } from 'vitest';
import { eventually, waitForWarm } from '../../support/server-process.js';
import { BACKENDS, withBackend } from '../support/backends.js';
import { withServer } from '../support/fixture.js';

describe.each(BACKENDS)('reaping on %s', (name) => {
  const backend = withBackend(name);
  const server = withServer(`h5-test-reaping-${name}`, {
    env: () => ({ ...backend.settings(), POOL_SIZE: '1', MAINTENANCE_INTERVAL_MS: '200' }),
    warm: 1,
  });

  async function acquire(body: Record<string, unknown>): Promise<string> {
    const { status, body: info } = await server.call<{ id: string }>('POST', '/v1/sandboxes', body);
    expect(status).toBe(201);
    return info.id;
  }

  async function isGone(id: string): Promise<true | undefined> {
    const { status } = await server.call('GET', `/v1/sandboxes/${id}`);
    const left = (await backend.sandboxIds(server)).includes(id) || (await backend.hasWorkspace(server, id));
    return status === 404 && !left ? true : undefined;
  }

  it('destroys a sandbox left idle past its idle timeout', async () => {
    const id = await acquire({ idleTimeoutSeconds: 1 });
    expect((await server.call('GET', `/v1/sandboxes/${id}`)).status).toBe(200);
    await eventually('the idle sandbox to be reaped', () => isGone(id), 15_000);
  });

  it('does not count a long-running call as idle time', async () => {
    const id = await acquire({ idleTimeoutSeconds: 1 });
    const result = await server.call('POST', `/v1/sandboxes/${id}/exec`, { command: 'sleep 3; echo done' });
    expect(result).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'done\n' } });
    await eventually('the sandbox to be reaped once quiet', () => isGone(id), 15_000);
  });

  it('ends a sandbox at its hard TTL even while it is kept alive', async () => {
    const id = await acquire({ ttlSeconds: 2, idleTimeoutSeconds: 600 });
    const started = Date.now();
    await eventually(
      'the TTL to end the sandbox',
      async () => {
        await server.call('POST', `/v1/sandboxes/${id}/keepalive`, {});
        return isGone(id);
      },
      15_000,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  });

  it('replaces a warm sandbox whose container died', async () => {
    await waitForWarm(server, 'base', 1);
    const { body } = await server.call<{ sandboxes: Array<{ id: string }> }>(
      'GET',
      '/v1/sandboxes?status=warm',
    );
    const [warm] = body.sandboxes;
    if (!warm) throw new Error('no warm sandbox');
    await backend.crash(server, warm.id);

    await eventually('the dead warm sandbox to be dropped', () => isGone(warm.id), 15_000);
    await waitForWarm(server, 'base', 1);
    const acquired = await server.call<{ id: string; fromPool: boolean }>('POST', '/v1/sandboxes', {});
    expect(acquired.body.fromPool).toBe(true);
    expect(acquired.body.id).not.toBe(warm.id);
    const echo = await server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
      command: 'echo alive',
    });
    expect(echo.body).toMatchObject({ stdout: 'alive\n' });
  });
});
