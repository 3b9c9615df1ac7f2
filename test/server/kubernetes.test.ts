/**
 * The server with CONTAINER_DEPLOYMENT=k8s over real HTTP, against the fake API server
 * (test/support/fake-kube), whose node agent runs each pod as a real container of the base image:
 * a warm pod is handed out and bound late, runs commands, takes and gives files and archives,
 * and goes on release; a pod deleted behind the server's back is noticed and replaced; a type
 * whose image the cluster cannot pull fails its acquire with its code and leaves no pod; while the
 * API server is away /readyz and cold acquires answer 503 DEPLOYER_UNAVAILABLE, warm sandboxes
 * keep serving, and all recovers when it returns; idle and expired sandboxes are reaped with their
 * pods; MAX_SANDBOX_INSTANCES bounds the pods; shutdown leaves no pod.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/eventually.js';
import { waitForWarm } from '../../support/server-process.js';
import { expectFileAndArchiveRoundTrip } from '../support/file-round-trip.js';
import { kubernetesSettings, withFakeKube, withServer } from '../support/fixture.js';

const TOKEN = 'kubernetes-test-token-0123456789';
const NAMESPACE = 'sandboxes';
const MAX_INSTANCES = 3;

interface Info {
  id: string;
  status: string;
  fromPool: boolean;
}

/** A type whose image no node has: the cluster cannot pull it. */
const scratch = mkdtempSync(join(tmpdir(), 'rsbx-k8s-test-'));
const GHOST_EXTENSION = join(scratch, 'ghost.mjs');
writeFileSync(
  GHOST_EXTENSION,
  "export default { name: 'ghost', image: 'runtime-sandbox/runtime-sandbox-ghost:never-built', poolSize: 0 };\n",
);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the server on Kubernetes', () => {
  const fake = withFakeKube({ namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } } });
  const server = withServer('h5-test-k8s', {
    env: () => ({
      ...kubernetesSettings(fake, NAMESPACE),
      POOL_SIZE: '1',
      BEARER_TOKEN: TOKEN,
      MAINTENANCE_INTERVAL_MS: '300',
      MAX_SANDBOX_INSTANCES: String(MAX_INSTANCES),
    }),
    args: ['--extension', GHOST_EXTENSION],
    warm: 1,
  });

  /** The pods of the sandbox with this id. */
  const podsOf = (id: string) =>
    fake.pods(NAMESPACE).filter((pod) => pod.metadata.labels?.['runtime-sandbox.io/sandbox-id'] === id);

  it('hands out a warm pod bound to the caller, runs commands, moves files, and deletes the pod on release', async () => {
    const acquired = await server.call<Info>('POST', '/v1/sandboxes', {
      env: { GREETING: 'hello from k8s' },
    });
    expect(acquired).toMatchObject({ status: 201, body: { status: 'claimed', fromPool: true } });
    const { id } = acquired.body;
    expect(podsOf(id)).toHaveLength(1);
    const base = `/v1/sandboxes/${id}`;

    const exec = await server.call('POST', `${base}/exec`, { command: 'echo "$GREETING"; id -u' });
    expect(exec).toMatchObject({ status: 200, body: { exitCode: 0, stdout: 'hello from k8s\n1000\n' } });
    const stream = await server.fetch(`${base}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ command: 'echo one; echo two' }),
    });
    expect(stream.headers.get('content-type')).toContain('application/x-ndjson');
    expect(await stream.text()).toContain('"exitCode":0');

    await expectFileAndArchiveRoundTrip(server, base, 'pods too');

    expect((await server.fetch(base, { method: 'DELETE' })).status).toBe(204);
    expect(podsOf(id)).toEqual([]);
    await waitForWarm(server, 'base', 1);
  });

  it('notices a pod deleted behind its back and replaces it in the pool', async () => {
    await waitForWarm(server, 'base', 1);
    const { body } = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?status=warm');
    const [warm] = body.sandboxes;
    if (!warm) throw new Error('no warm sandbox');
    const [pod] = podsOf(warm.id);
    const deleted = await fetch(`${fake.url}/api/v1/namespaces/${NAMESPACE}/pods/${pod?.metadata.name}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${fake.token}` },
    });
    expect(deleted.status).toBe(200);
    await eventually('the lost sandbox to be dropped', async () =>
      (await server.call('GET', `/v1/sandboxes/${warm.id}`)).status === 404 ? true : undefined,
    );
    await waitForWarm(server, 'base', 1);
  });

  it('fails the acquire of a type whose image cannot be pulled, with its code, and leaves no pod', async () => {
    const before = fake.pods(NAMESPACE).length;
    const failed = await server.call<{ error: { code: string; message: string } }>('POST', '/v1/sandboxes', {
      type: 'ghost',
    });
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).toBe('SANDBOX_CREATE_FAILED');
    expect(failed.body.error.message).toMatch(/ErrImagePull|ImagePullBackOff/);
    expect(fake.pods(NAMESPACE)).toHaveLength(before);
  });

  it('while the API server is away: /readyz and cold acquires answer 503, warm sandboxes keep serving', async () => {
    await fake.goDown();
    try {
      const ready = await server.call<{ error: { code: string } }>('GET', '/readyz');
      expect(ready.status).toBe(503);
      const warm = await server.call<Info>('POST', '/v1/sandboxes', {});
      expect(warm).toMatchObject({ status: 201, body: { fromPool: true } });
      const exec = await server.call('POST', `/v1/sandboxes/${warm.body.id}/exec`, {
        command: 'echo still here',
      });
      expect(exec).toMatchObject({ status: 200, body: { stdout: 'still here\n' } });

      const cold = await server.fetch('/v1/sandboxes', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'ghost' }),
      });
      expect(cold.status).toBe(503);
      expect(cold.headers.get('retry-after')).toBe('5');
      expect(((await cold.json()) as { error: { code: string } }).error.code).toBe('DEPLOYER_UNAVAILABLE');
    } finally {
      await fake.comeBack();
    }
    await eventually('/readyz to answer 200 again', async () =>
      (await server.fetch('/readyz')).status === 200 ? true : undefined,
    );
    await waitForWarm(server, 'base', 1);
  });

  it('reaps an idle sandbox and one past its TTL, deleting their pods', async () => {
    const idle = await server.call<Info>('POST', '/v1/sandboxes', { idleTimeoutSeconds: 1 });
    const short = await server.call<Info>('POST', '/v1/sandboxes', { ttlSeconds: 2 });
    expect([idle.status, short.status]).toEqual([201, 201]);
    for (const { id } of [idle.body, short.body]) {
      await eventually(`sandbox ${id} to be reaped`, async () =>
        (await server.call('GET', `/v1/sandboxes/${id}`)).status === 404 && podsOf(id).length === 0
          ? true
          : undefined,
      );
    }
  });

  it('lets no more than MAX_SANDBOX_INSTANCES pods run, and serves again after a release', async () => {
    const { body } = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?status=claimed');
    for (const { id } of body.sandboxes) await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' });
    await waitForWarm(server, 'base', 1);
    // The refiller takes slots too (a claim from the pool starts a new warm pod): acquires are
    // refused once the pods, warm ones included, reach the limit, and never before one was served.
    const held: string[] = [];
    let refused: { status: number; body: unknown } | undefined;
    for (let i = 0; i <= MAX_INSTANCES && refused === undefined; i++) {
      const acquired = await server.call<Info>('POST', '/v1/sandboxes', {});
      if (acquired.status === 201) held.push(acquired.body.id);
      else refused = acquired;
      expect(fake.pods(NAMESPACE).length).toBeLessThanOrEqual(MAX_INSTANCES);
    }
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(refused).toMatchObject({ status: 429, body: { error: { code: 'CAPACITY_EXCEEDED' } } });
    for (const id of held)
      expect((await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);
    await waitForWarm(server, 'base', 1);
  });

  it('deletes every pod of the deployment on shutdown', async () => {
    expect(fake.pods(NAMESPACE).length).toBeGreaterThan(0);
    expect(await server.stop()).toBe(0);
    expect(fake.pods(NAMESPACE)).toEqual([]);
    expect(fake.networkPolicies(NAMESPACE)).toEqual([]);
  });
});
