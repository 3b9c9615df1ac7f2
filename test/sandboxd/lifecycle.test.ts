/**
 * sandboxd's lifecycle in the real base image: the one-time /init that binds a warm sandbox to its
 * caller, refusing to start without a boot token, and a clean stop on SIGTERM.
 */
import type { ExecEvent } from '@runtime-sandbox/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BASE_IMAGE,
  docker,
  type SandboxdContainer,
  startSandboxdContainer,
  TEST_LABEL,
} from '../../support/sandboxd-container.js';

async function expectError(res: Response, status: number, code: string): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(JSON.parse(text).error.code).toBe(code);
}

describe('POST /init', () => {
  let sandbox: SandboxdContainer;
  const callerToken = 'caller-token-0123456789abcdef';

  beforeAll(async () => {
    sandbox = await startSandboxdContainer({ purpose: 'sandboxd-init' });
  });

  afterAll(async () => {
    await sandbox?.remove();
  });

  const init = (body: unknown, token?: string) =>
    sandbox.request('/init', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(token === undefined ? {} : { token }),
    });
  const health = async () => (await sandbox.request('/healthz', { token: null })).json();

  it('binds the sandbox once: new token, caller env and workspace root; the boot token stops working', async () => {
    // Before /init the boot token serves the data plane (warm checks use it).
    const setup = await sandbox.exec({
      command:
        'mkdir -p /home/sandbox/ws && echo in-ws > /home/sandbox/ws/marker && echo old > /workspace/old',
    });
    expect(setup.exitCode).toBe(0);

    // Refused /init calls change nothing.
    await expectError(await init({ token: 'short' }), 400, 'VALIDATION_ERROR');
    await expectError(
      await init({ token: callerToken, workspaceRoot: '/home/sandbox/none' }),
      404,
      'FILE_NOT_FOUND',
    );
    await expectError(
      await init({ token: callerToken, workspaceRoot: '/home/sandbox/ws/marker' }),
      409,
      'NOT_A_DIRECTORY',
    );
    await expectError(await init({ token: callerToken }, 'not-the-boot-token'), 401, 'UNAUTHORIZED');
    expect(await health()).toEqual({ status: 'ok', initialized: false });

    const res = await init({
      token: callerToken,
      env: { GREETING: 'hello', LANG: 'C' },
      workspaceRoot: '/home/sandbox/ws',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', initialized: true });
    expect(await health()).toEqual({ status: 'ok', initialized: true });

    // Only the new token works now.
    await expectError(
      await sandbox.request('/exec', { method: 'POST', body: JSON.stringify({ command: 'true' }) }),
      401,
      'UNAUTHORIZED',
    );
    const bound = await sandbox.exec({ command: 'echo "$GREETING $LANG"; pwd' }, callerToken);
    expect(bound.stdout).toBe('hello C\n/home/sandbox/ws\n');
    // A request's env goes over the caller's.
    const overridden = await sandbox.exec(
      { command: 'echo $GREETING', env: { GREETING: 'hi' } },
      callerToken,
    );
    expect(overridden.stdout).toBe('hi\n');

    // Paths resolve in the new root; the old one is outside it now.
    const marker = await sandbox.request('/files?path=marker', { token: callerToken });
    expect(await marker.text()).toBe('in-ws\n');
    await expectError(
      await sandbox.request('/files?path=/workspace/old', { token: callerToken }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );

    // Once only.
    await expectError(await init({ token: `${callerToken}-again` }, callerToken), 409, 'ALREADY_INITIALIZED');
    await expectError(await init({ token: `${callerToken}-again` }), 401, 'UNAUTHORIZED');
  });
});

describe('process lifecycle', () => {
  it('refuses to start without SANDBOXD_TOKEN, saying why', async () => {
    const container = await docker.createContainer({
      Image: BASE_IMAGE,
      Labels: { [TEST_LABEL]: 'sandboxd-no-token' },
      HostConfig: { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
    });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      expect(StatusCode).toBe(1);
      const logs = (await container.logs({ stdout: true, stderr: true })).toString();
      expect(logs).toContain('SANDBOXD_TOKEN');
    } finally {
      await container.remove({ force: true });
    }
  });

  it('stops on SIGTERM: running commands are killed and the daemon exits 0', async () => {
    const sandbox = await startSandboxdContainer({ purpose: 'sandboxd-sigterm' });
    try {
      const res = await sandbox.request('/exec', {
        method: 'POST',
        headers: { accept: 'application/x-ndjson' },
        body: JSON.stringify({ command: 'sleep 1000' }),
      });
      const reader = res.body?.getReader();
      if (!reader) throw new Error('no body');
      const first = await reader.read();
      expect(JSON.parse(new TextDecoder().decode(first.value)) as ExecEvent).toMatchObject({ type: 'start' });

      // `docker stop` sends SIGTERM and waits 30 s before SIGKILL (which would show as 137).
      const container = docker.getContainer(sandbox.id);
      await container.stop({ t: 30 });
      const { State } = await container.inspect();
      expect(State.ExitCode).toBe(0);
    } finally {
      await sandbox.remove();
    }
  });
});
