/**
 * One sandbox's whole life through the server CLI over real HTTP, on each backend (real Docker, and
 * pods on the fake Kubernetes API server): acquired warm from the pool (which refills), bound to the
 * caller's env and a new token, used for exec (JSON and streamed), files and archives, kept alive,
 * released, and nothing of it left afterwards.
 */
import { describe, expect, it } from 'vitest';
import { eventually, waitForWarm } from '../../support/server-process.js';
import { BACKENDS, withBackend } from '../support/backends.js';
import { withServer } from '../support/fixture.js';

const TOKEN = 'lifecycle-test-token-0123456789';

interface Info {
  id: string;
  type: string;
  status: string;
  sessionId: string | null;
  fromPool: boolean;
  metadata: Record<string, string>;
  idleTimeoutSeconds: number;
  createdAt: string;
  claimedAt: string;
  expiresAt: string | null;
}

describe.each(BACKENDS)('sandbox lifecycle over HTTP on %s', (name) => {
  let sandbox: Info;
  const backend = withBackend(name);
  const server = withServer(`h5-test-lifecycle-${name}`, {
    ports: 40,
    env: () => ({
      ...backend.settings(),
      POOL_SIZE: '2',
      BEARER_TOKEN: TOKEN,
      MAINTENANCE_INTERVAL_MS: '500',
    }),
    warm: 2,
  });
  const sandboxesWithId = async (id: string) => (await backend.sandboxIds(server)).filter((s) => s === id);

  it('hands out a warm pool sandbox bound to the caller, and the pool refills', async () => {
    const { status, body } = await server.call<Info>('POST', '/v1/sandboxes', {
      sessionId: 'session-1',
      env: { GREETING: 'hello from the caller' },
      metadata: { owner: 'lifecycle-test' },
    });
    expect(status).toBe(201);
    sandbox = body;
    expect(body).toMatchObject({
      type: 'base',
      status: 'claimed',
      sessionId: 'session-1',
      fromPool: true,
      metadata: { owner: 'lifecycle-test' },
    });
    expect(Number.isNaN(Date.parse(body.createdAt))).toBe(false);
    // SANDBOX_TTL's default: a day from the claim.
    expect(Date.parse(body.expiresAt ?? '') - Date.parse(body.claimedAt)).toBe(24 * 60 * 60 * 1000);
    expect(body).not.toHaveProperty('token');

    // The claim left a gap; the refiller fills it without anyone asking.
    await waitForWarm(server, 'base', 2);
    const pooled = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?status=warm');
    expect(pooled.body.sandboxes.map((s) => s.id)).not.toContain(sandbox.id);
  });

  it('runs commands with the late-bound env, as JSON and as an NDJSON stream', async () => {
    const result = await server.call<{ exitCode: number; stdout: string; stderr: string }>(
      'POST',
      `/v1/sandboxes/${sandbox.id}/exec`,
      { command: 'echo "$GREETING"; echo oops >&2; exit 3' },
    );
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ exitCode: 3, stdout: 'hello from the caller\n', stderr: 'oops\n' });

    const argv = await server.call<{ exitCode: number; stdout: string }>(
      'POST',
      `/v1/sandboxes/${sandbox.id}/exec`,
      {
        command: ['printf', '%s|', 'a b', 'c'],
      },
    );
    expect(argv.body).toMatchObject({ exitCode: 0, stdout: 'a b|c|' });

    const response = await server.fetch(`/v1/sandboxes/${sandbox.id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo one; echo two >&2; echo three' }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/x-ndjson');
    const events = (await response.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; data?: string; exitCode?: number });
    const stdout = events
      .filter((e) => e.type === 'stdout')
      .map((e) => e.data)
      .join('');
    expect(stdout).toBe('one\nthree\n');
    expect(
      events
        .filter((e) => e.type === 'stderr')
        .map((e) => e.data)
        .join(''),
    ).toBe('two\n');
    expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 });
  });

  it('stops a streamed command when the caller hangs up', async () => {
    const controller = new AbortController();
    const response = await server.fetch(`/v1/sandboxes/${sandbox.id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo started; exec sleep 987' }),
      signal: controller.signal,
    });
    const reader = response.body?.getReader();
    if (!reader) throw new Error('no body');
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('started')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`stream ended early: ${seen}`);
      seen += decoder.decode(value);
    }
    const running = async () => {
      const ps = await server.call<{ stdout: string }>('POST', `/v1/sandboxes/${sandbox.id}/exec`, {
        command: 'ps -eo args',
      });
      return ps.body.stdout.includes('sleep 987');
    };
    expect(await running()).toBe(true);
    controller.abort();

    await eventually('the orphaned sleep to be killed', async () => ((await running()) ? undefined : true));
  });

  it('writes, reads, lists, stats, moves, makes and deletes files', async () => {
    const base = `/v1/sandboxes/${sandbox.id}`;
    const put = await server.fetch(`${base}/files?path=notes/today.txt`, {
      method: 'PUT',
      body: 'line 1\nline 2\n',
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ path: 'notes/today.txt', type: 'file', size: 14 });

    const read = await server.fetch(`${base}/files?path=notes/today.txt`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('line 1\nline 2\n');

    const mkdir = await server.call('POST', `${base}/files/mkdir`, { path: 'archive/2024' });
    expect(mkdir).toMatchObject({ status: 200, body: { path: 'archive/2024', type: 'directory' } });

    const moved = await server.call('POST', `${base}/files/move`, {
      from: 'notes/today.txt',
      to: 'archive/2024/today.txt',
    });
    expect(moved).toMatchObject({ status: 200, body: { path: 'archive/2024/today.txt' } });

    const stat = await server.call('GET', `${base}/files/stat?path=archive/2024/today.txt`);
    expect(stat).toMatchObject({ status: 200, body: { type: 'file', size: 14 } });

    const list = await server.call<{ entries: Array<{ path: string }> }>(
      'GET',
      `${base}/files/list?path=.&depth=3`,
    );
    expect(list.status).toBe(200);
    expect(list.body.entries.map((e) => e.path)).toEqual(
      expect.arrayContaining(['archive', 'archive/2024', 'archive/2024/today.txt', 'notes']),
    );

    const removed = await server.fetch(`${base}/files?path=archive&recursive=true`, { method: 'DELETE' });
    expect(removed.status).toBe(204);
    const gone = await server.call('GET', `${base}/files/stat?path=archive`);
    expect(gone).toMatchObject({ status: 404, body: { error: { code: 'FILE_NOT_FOUND' } } });

    // The files are in the workspace storage the backend provides (the host dir, the pod's volume).
    await server.fetch(`${base}/files?path=in-storage.txt`, { method: 'PUT', body: 'x' });
    expect(await backend.workspaceHolds(server, sandbox.id, 'in-storage.txt')).toBe(true);
    expect(await backend.workspaceHolds(server, sandbox.id, 'not-written.txt')).toBe(false);
  });

  it('streams a directory out as tar and back in elsewhere', async () => {
    const base = `/v1/sandboxes/${sandbox.id}`;
    await server.fetch(`${base}/files?path=project/src/main.txt`, { method: 'PUT', body: 'main' });
    await server.fetch(`${base}/files?path=project/README`, { method: 'PUT', body: 'readme' });

    const out = await server.fetch(`${base}/archive?path=project`);
    expect(out.status).toBe(200);
    const tar = Buffer.from(await out.arrayBuffer());
    expect(tar.length).toBeGreaterThan(1024);

    const into = await server.fetch(`${base}/archive?path=copy`, {
      method: 'PUT',
      headers: { 'content-type': 'application/x-tar' },
      body: tar,
    });
    expect(into.status).toBe(200);
    expect(((await into.json()) as { entries: number }).entries).toBeGreaterThanOrEqual(2);
    const read = await server.fetch(`${base}/files?path=copy/src/main.txt`);
    expect(await read.text()).toBe('main');
  });

  it('keeps alive with a new idle timeout, and info never shows secrets', async () => {
    const before = await server.call<Info & { lastActiveAt: string }>('GET', `/v1/sandboxes/${sandbox.id}`);
    const kept = await server.call<Info & { lastActiveAt: string }>(
      'POST',
      `/v1/sandboxes/${sandbox.id}/keepalive`,
      {
        idleTimeoutSeconds: 1234,
      },
    );
    expect(kept.status).toBe(200);
    expect(kept.body.idleTimeoutSeconds).toBe(1234);
    expect(Date.parse(kept.body.lastActiveAt)).toBeGreaterThanOrEqual(Date.parse(before.body.lastActiveAt));
    const info = await server.fetch(`/v1/sandboxes/${sandbox.id}`);
    const text = await info.text();
    expect(text).not.toMatch(/token|handle|hostPort|mountDir|endpoint/i);

    const mine = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?sessionId=session-1');
    expect(mine.body.sandboxes.map((s) => s.id)).toEqual([sandbox.id]);
  });

  it('no longer accepts the boot token once the sandbox is claimed', async () => {
    const { bootToken, url } = await backend.directAccess(server, sandbox.id);
    const direct = await fetch(`${url}/exec`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bootToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'id' }),
    });
    expect(direct.status).toBe(401);
    const rebind = await fetch(`${url}/init`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bootToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'an-attacker-chosen-token-123456' }),
    });
    expect(rebind.status).toBe(401);
  });

  it('release destroys the container or pod and frees the workspace', async () => {
    expect(await sandboxesWithId(sandbox.id)).toHaveLength(1);
    const released = await server.fetch(`/v1/sandboxes/${sandbox.id}`, { method: 'DELETE' });
    expect(released.status).toBe(204);

    expect(await sandboxesWithId(sandbox.id)).toHaveLength(0);
    expect(await backend.hasWorkspace(server, sandbox.id)).toBe(false);
    const after = await server.call('GET', `/v1/sandboxes/${sandbox.id}`);
    expect(after).toMatchObject({ status: 404, body: { error: { code: 'SANDBOX_NOT_FOUND' } } });
    const again = await server.call('DELETE', `/v1/sandboxes/${sandbox.id}`);
    expect(again.status).toBe(404);
  });

  it('starts a cold sandbox when the pool is empty', async () => {
    const resized = await server.call('PUT', '/v1/pools/base', { size: 0 });
    expect(resized).toMatchObject({ status: 200, body: { type: 'base', target: 0 } });
    await eventually('the pool to drain', async () => {
      const { body } = await server.call<{ pools: Array<{ warm: number; creating: number }> }>(
        'GET',
        '/v1/pools',
      );
      return body.pools[0]?.warm === 0 && body.pools[0]?.creating === 0 ? true : undefined;
    });
    const cold = await server.call<Info>('POST', '/v1/sandboxes', { ttlSeconds: 600 });
    expect(cold.status).toBe(201);
    expect(cold.body.fromPool).toBe(false);
    expect(cold.body.expiresAt).not.toBeNull();
    const echo = await server.call('POST', `/v1/sandboxes/${cold.body.id}/exec`, { command: 'echo cold' });
    expect(echo.body).toMatchObject({ stdout: 'cold\n' });
    expect((await server.fetch(`/v1/sandboxes/${cold.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await backend.sandboxIds(server)).toEqual([]);
  });
});
