/**
 * What only the server with CONTAINER_DEPLOYMENT=k8s has to show, over real HTTP against the fake
 * API server (test/support/fake-kube), whose node agent runs each pod as a real container of the
 * base image. (The v1 behaviour suites, lifecycle, bad input, capacity, reaping and snapshots,
 * run on this deployer too: test/support/backends.ts.) A pod deleted through the API behind the
 * server's back is noticed and replaced; a type whose image the cluster cannot pull fails its
 * acquire with its code and leaves no pod; while the API server is away /readyz and cold acquires
 * answer 503 DEPLOYER_UNAVAILABLE, warm sandboxes keep serving, and all recovers when it returns;
 * a claimed sandbox's pod, warm or cold, gets the claim's hard expiry as its deadline, and one
 * ended by its deadline is noticed from the watch, with no pod list; MAX_SANDBOX_INSTANCES bounds
 * the pods, warm ones included; shutdown leaves no pod and no NetworkPolicy. The API allows only
 * what deploy/kubernetes/rbac.yaml grants the server.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, PatchStrategy, Watch } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../server/src/config/schema.js';
import { claimDeadlineSeconds } from '../../server/src/deployers/kubernetes-objects.js';
import { eventually } from '../../support/eventually.js';
import { waitForWarm } from '../../support/server-process.js';
import { manifestAuthorization } from '../support/deploy-rbac.js';
import { kubernetesSettings, withFakeKube, withServer } from '../support/fixture.js';

const TOKEN = 'kubernetes-test-token-0123456789';
const NAMESPACE = 'sandboxes';
const MAX_INSTANCES = 3;
const MAINTENANCE_INTERVAL_MS = '300';

interface Info {
  id: string;
  status: string;
  fromPool: boolean;
  expiresAt: string | null;
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
  // The API refuses what deploy/kubernetes/rbac.yaml does not grant the server.
  const fake = withFakeKube({
    namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } },
    authorization: manifestAuthorization(NAMESPACE),
  });
  const server = withServer('h5-test-k8s', {
    env: () => ({
      ...kubernetesSettings(fake, NAMESPACE),
      POOL_SIZE: '1',
      BEARER_TOKEN: TOKEN,
      MAINTENANCE_INTERVAL_MS,
      MAX_SANDBOX_INSTANCES: String(MAX_INSTANCES),
    }),
    args: ['--extension', GHOST_EXTENSION],
    warm: 1,
  });

  /** The pods of the sandbox with this id. */
  const podsOf = (id: string) =>
    fake.pods(NAMESPACE).filter((pod) => pod.metadata.labels?.['runtime-sandbox.io/sandbox-id'] === id);

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
    let served: string | undefined;
    await fake.goDown();
    try {
      const ready = await server.call<{ error: { code: string } }>('GET', '/readyz');
      expect(ready.status).toBe(503);
      const warm = await server.call<Info>('POST', '/v1/sandboxes', {});
      expect(warm).toMatchObject({ status: 201, body: { fromPool: true } });
      served = warm.body.id;
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
    // Given back, so that the next tests start under MAX_SANDBOX_INSTANCES with only the pool.
    if (served)
      expect((await server.fetch(`/v1/sandboxes/${served}`, { method: 'DELETE' })).status).toBe(204);
    await waitForWarm(server, 'base', 1);
  });

  it("gives a claimed sandbox's pod, warm or cold, its hard expiry as deadline; one its deadline ends is dropped without a pod list", async () => {
    const config = configSchema.parse({ CONTAINER_DEPLOYMENT: 'k8s', MAINTENANCE_INTERVAL_MS });
    await waitForWarm(server, 'base', 1);
    const warm = await server.call<Info>('POST', '/v1/sandboxes', { ttlSeconds: 3600 });
    // A stricter network than the type's: made for this caller, cold.
    const cold = await server.call<Info>('POST', '/v1/sandboxes', { ttlSeconds: 1800, network: 'none' });
    expect(warm).toMatchObject({ status: 201, body: { fromPool: true } });
    expect(cold).toMatchObject({ status: 201, body: { fromPool: false } });
    for (const { id, expiresAt } of [warm.body, cold.body]) {
      const expiry = Date.parse(expiresAt ?? '');
      // Set in the background after the claim, so that the acquire waits for no API call.
      const pod = await eventually(`the deadline of sandbox ${id}`, () =>
        podsOf(id).find((p) => p.spec.activeDeadlineSeconds !== undefined),
      );
      const startedAt = Date.parse(pod.status.startTime ?? '');
      const seconds = pod.spec.activeDeadlineSeconds ?? 0;
      expect(seconds).toBe(claimDeadlineSeconds(startedAt, expiry, config));
      // The kubelet ends it a grace after the expiry: the reaper's tick, a lease and 10 s.
      const endsAt = startedAt + seconds * 1000;
      expect(endsAt).toBeGreaterThan(expiry);
      expect(endsAt - expiry).toBeLessThanOrEqual(300 + 6000 + 10_000 + 1000);
    }

    // The deadline passing, without waiting an hour: lowered as an operator may (the API allows it).
    const [pod] = podsOf(warm.body.id);
    const name = pod?.metadata.name ?? '';
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(fake.kubeconfigPath);
    const reasons: string[] = [];
    const watch = await new Watch(kubeConfig).watch(
      `/api/v1/namespaces/${NAMESPACE}/pods`,
      { fieldSelector: `metadata.name=${name}` },
      (_type, object: { status?: { reason?: string } }) => {
        if (object.status?.reason) reasons.push(object.status.reason);
      },
      () => undefined,
    );
    const lists = fake.podLists();
    try {
      const elapsed = Math.ceil((Date.now() - Date.parse(pod?.status.startTime ?? '')) / 1000);
      const lowered = await fetch(`${fake.url}/api/v1/namespaces/${NAMESPACE}/pods/${name}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${fake.token}`, 'content-type': PatchStrategy.MergePatch },
        body: JSON.stringify({ spec: { activeDeadlineSeconds: elapsed + 1 } }),
      });
      expect(lowered.status).toBe(200);
      await eventually('the sandbox its deadline ended to be dropped', async () =>
        (await server.call('GET', `/v1/sandboxes/${warm.body.id}`)).status === 404 &&
        podsOf(warm.body.id).length === 0
          ? true
          : undefined,
      );
      expect(reasons).toContain('DeadlineExceeded');
    } finally {
      watch.abort();
    }
    // The reconciler saw it from the watch's cache: no tick listed the pods.
    expect(fake.podLists()).toBe(lists);
    expect((await server.fetch(`/v1/sandboxes/${cold.body.id}`, { method: 'DELETE' })).status).toBe(204);
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
