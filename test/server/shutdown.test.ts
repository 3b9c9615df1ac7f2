/**
 * Stopping and crashing. SIGTERM: readiness fails and new requests get SHUTTING_DOWN at once, a
 * request in flight still finishes, the process exits 0, and no container of the deployment is left.
 * A crash (SIGKILL) leaves containers, and the next start with the same deployment destroys them.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { containersOf, eventually, waitForWarm, workspaceDirsIn } from '../../support/server-process.js';
import { withDeployment } from '../support/fixture.js';

describe('shutdown and restart', () => {
  const deployment = withDeployment('h5-test-shutdown');
  const DEPLOYMENT = deployment.id;

  it('drains on SIGTERM, then removes every sandbox of the deployment and exits 0', async () => {
    const server = await deployment.start({ env: { POOL_SIZE: '2', SHUTDOWN_GRACE_MS: '10000' } });
    await waitForWarm(server, 'base', 2);
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    expect((await containersOf(DEPLOYMENT)).length).toBeGreaterThanOrEqual(2);

    const inFlight = server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
      command: 'touch /workspace/started; sleep 2; echo finished',
    });
    // SIGTERM once the exec is running in the sandbox, so the drain has a request to wait for.
    const started = join(server.workspaceDir(acquired.body.id), 'started');
    await eventually('the exec to start', () => existsSync(started) || undefined, 10_000, 20);
    server.child.kill('SIGTERM');

    await eventually('readiness to fail', async () => {
      const ready = await server.fetch('/readyz');
      return ready.status === 503 ? ready : undefined;
    });
    const refused = await server.call('POST', '/v1/sandboxes', {});
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'SHUTTING_DOWN' } } });
    expect((await server.fetch('/healthz')).status).toBe(200);

    expect(await inFlight).toMatchObject({ status: 200, body: { stdout: 'finished\n' } });
    expect(await server.exited).toBe(0);
    expect(await containersOf(DEPLOYMENT)).toHaveLength(0);
    expect(server.workspaceDirs()).toEqual([]);
    expect(server.logs().some((line) => line.msg === 'stopped')).toBe(true);
    await server.stop();
  });

  it('destroys the containers a crashed run left behind when the deployment starts again', async () => {
    const { mountDir } = deployment;
    const crashed = await deployment.start({ env: { POOL_SIZE: '2' } });
    await waitForWarm(crashed, 'base', 2);
    const acquired = await crashed.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    await crashed.stop('SIGKILL');
    const leftovers = (await containersOf(DEPLOYMENT)).map((c) => c.Id);
    expect(leftovers.length).toBeGreaterThanOrEqual(2);
    const leftoverDirs = workspaceDirsIn(mountDir, DEPLOYMENT);
    expect(leftoverDirs).toContain(acquired.body.id);

    const restarted = await deployment.start({ env: { POOL_SIZE: '1' } });
    // The reconcile pass runs before the server listens: the leftovers are gone already.
    const now = (await containersOf(DEPLOYMENT)).map((c) => c.Id);
    expect(now.filter((id) => leftovers.includes(id))).toEqual([]);
    expect(workspaceDirsIn(mountDir, DEPLOYMENT).filter((name) => leftoverDirs.includes(name))).toEqual([]);
    await waitForWarm(restarted, 'base', 1);
    expect(await restarted.stop()).toBe(0);
    expect(await containersOf(DEPLOYMENT)).toHaveLength(0);
    expect(readdirSync(mountDir)).toEqual([]);
  });
});
