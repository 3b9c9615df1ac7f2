/**
 * The server with K8S_MODE=agent-sandbox, over real HTTP against the fake API server serving
 * kubernetes-sigs/agent-sandbox's CRDs with its controller (fake-kube/agent-sandbox-*.ts), whose
 * node agent runs each pod as a real container of the base image. At start the server applies a
 * SandboxTemplate and a SandboxWarmPool per type; its own warm sandbox is a SandboxClaim bound to
 * one of the pool's ready sandboxes, which the pool replaces. An acquire of it execs (JSON and
 * NDJSON) and moves files; once bound it no longer takes the template's shared boot token, which
 * an unclaimed pool sandbox does. Release deletes the claim, its Sandbox and pod, and both pools
 * refill. A cluster without the CRDs fails the start with a clear message, and shutdown leaves no
 * claim, Sandbox, pod, template or warm pool. The API allows only what deploy/kubernetes/rbac.yaml
 * and deploy/kubernetes/agent-sandbox/rbac.yaml grant the server.
 */
import { SANDBOXD_ENV, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { eventually } from '../../support/eventually.js';
import { runServerCli, waitForWarm } from '../../support/server-process.js';
import { manifestAuthorization } from '../support/deploy-rbac.js';
import type { AgentSandboxObject } from '../support/fake-kube/agent-sandbox-api.js';
import { expectExecRoundTrip, expectFileAndArchiveRoundTrip } from '../support/file-round-trip.js';
import { kubernetesSettings, withFakeKube, withServer } from '../support/fixture.js';

const TOKEN = 'agent-sandbox-test-token-0123456789';
const NAMESPACE = 'sandboxes';
const SANDBOX_ID_LABEL = 'runtime-sandbox.io/sandbox-id';
const WARM_POOL_LABEL = 'agents.x-k8s.io/warm-pool-sandbox';

interface Info {
  id: string;
  status: string;
  fromPool: boolean;
}

const claimStatusSchema = z.looseObject({
  sandbox: z.looseObject({ name: z.string(), podIPs: z.array(z.string()) }),
});
const warmPoolStatusSchema = z.looseObject({ replicas: z.number(), readyReplicas: z.number() });
const templateSchema = z.looseObject({
  podTemplate: z.looseObject({
    spec: z.looseObject({
      containers: z.array(z.looseObject({ env: z.array(z.object({ name: z.string(), value: z.string() })) })),
    }),
  }),
});

describe('the server with K8S_MODE=agent-sandbox', () => {
  const fake = withFakeKube({
    namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } },
    authorization: manifestAuthorization(NAMESPACE, { agentSandbox: true }),
    agentSandbox: true,
  });
  const settings = () => ({
    ...kubernetesSettings(fake, NAMESPACE),
    K8S_MODE: 'agent-sandbox',
    POOL_SIZE: '1',
    K8S_WARM_POOL_REPLICAS: '1',
    BEARER_TOKEN: TOKEN,
    MAINTENANCE_INTERVAL_MS: '300',
  });
  const server = withServer('h5-test-k8s-agent-sandbox', { env: settings, warm: 1 });
  // A cluster without agent-sandbox's CRDs.
  const bare = withFakeKube({ namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } } });

  const objects = (kind: 'claims' | 'sandboxes' | 'templates' | 'warmPools') =>
    fake.agentSandboxObjects(kind, NAMESPACE);
  const claimOf = (id: string): AgentSandboxObject | undefined =>
    objects('claims').find((claim) => claim.metadata.labels?.[SANDBOX_ID_LABEL] === id);
  /** The sandbox (and pod) name and pod IP the claim of sandbox `id` reports. */
  const boundOf = (id: string) => claimStatusSchema.parse(claimOf(id)?.status).sandbox;
  const warmPoolReady = () =>
    objects('warmPools').every(
      (pool) => warmPoolStatusSchema.safeParse(pool.status).data?.readyReplicas === 1,
    )
      ? true
      : undefined;
  const templateToken = () => {
    const [template] = objects('templates');
    const env = templateSchema.parse(template?.spec).podTemplate.spec.containers[0]?.env ?? [];
    return env.find((entry) => entry.name === SANDBOXD_ENV.bootToken)?.value ?? '';
  };
  /** sandboxd's answer at `podIP` to an authenticated call with `token`. */
  const direct = async (podIP: string, token: string) =>
    (
      await fetch(`http://${podIP}:${SANDBOXD_PORT}/files/list?path=.`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).status;

  it('keeps its warm sandbox as a claim bound to a ready sandbox of the SandboxWarmPool, which refills', async () => {
    expect(objects('templates').map((t) => t.metadata.name)).toEqual(
      objects('warmPools').map((p) => p.metadata.name),
    );
    expect(objects('warmPools')).toHaveLength(1);
    const [pool] = objects('warmPools');
    const { body } = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?status=warm');
    const [warm] = body.sandboxes;
    if (!warm) throw new Error('no warm sandbox');
    const bound = boundOf(warm.id);
    // Adopted from the pool (its name is the pool's generated one), not made cold for the claim.
    expect(bound.name.startsWith(`${pool?.metadata.name}-`)).toBe(true);
    const sandbox = objects('sandboxes').find((s) => s.metadata.name === bound.name);
    expect(sandbox?.metadata.labels).toMatchObject({ 'agents.x-k8s.io/launch-type': 'warm' });
    expect(sandbox?.metadata.labels?.[WARM_POOL_LABEL]).toBeUndefined();
    expect(fake.pods(NAMESPACE).map((p) => p.metadata.name)).toContain(bound.name);
    await eventually('the SandboxWarmPool to have a ready sandbox again', async () => warmPoolReady());
  });

  it('acquires a warm sandbox that execs (JSON and NDJSON), moves files, and takes only its own token', async () => {
    const acquired = await server.call<Info>('POST', '/v1/sandboxes', { env: { GREETING: 'from a claim' } });
    expect(acquired).toMatchObject({ status: 201, body: { status: 'claimed', fromPool: true } });
    const { id } = acquired.body;
    const base = `/v1/sandboxes/${id}`;
    await expectExecRoundTrip(server, base, 'echo "$GREETING"', 'from a claim\n');
    await expectFileAndArchiveRoundTrip(server, base, 'claimed');

    // The template's shared boot token opens an unclaimed pool sandbox, but no longer this one.
    const shared = templateToken();
    expect(shared).not.toBe('');
    const [podIP] = boundOf(id).podIPs;
    if (podIP === undefined) throw new Error(`sandbox ${id} has no pod IP`);
    expect(await direct(podIP, shared)).toBe(401);
    await eventually('the SandboxWarmPool to have a ready sandbox', async () => warmPoolReady());
    const unclaimed = objects('sandboxes').find((s) => s.metadata.labels?.[WARM_POOL_LABEL] !== undefined);
    const unclaimedIP =
      z.looseObject({ podIPs: z.array(z.string()) }).parse(unclaimed?.status).podIPs[0] ?? '';
    expect(await direct(unclaimedIP, shared)).toBe(200);
    expect(await direct(unclaimedIP, 'not-the-token')).toBe(401);
  });

  it('deletes the claim, its Sandbox and its pod on release, and both pools refill', async () => {
    const { body } = await server.call<Info>('POST', '/v1/sandboxes', {});
    const { name } = boundOf(body.id);
    const claim = claimOf(body.id)?.metadata.name;
    expect((await server.fetch(`/v1/sandboxes/${body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(objects('claims').map((c) => c.metadata.name)).not.toContain(claim);
    await eventually('the Sandbox and pod of the released claim to go', async () =>
      objects('sandboxes').some((s) => s.metadata.name === name) ||
      fake.pods(NAMESPACE).some((p) => p.metadata.name === name)
        ? undefined
        : true,
    );
    await waitForWarm(server, 'base', 1);
    await eventually('the SandboxWarmPool to have a ready sandbox again', async () => warmPoolReady());
  });

  it('refuses to start on a cluster that does not serve the CRDs, saying so', async () => {
    const run = await runServerCli([], {
      ...settings(),
      KUBECONFIG_PATH: bare.kubeconfigPath,
      CONTAINER_PREFIX_KEY: 'h5-test-k8s-agent-sandbox-no-crds',
      PORT: '0',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/does not serve sandboxclaims\.extensions\.agents\.x-k8s\.io\/v1beta1/);
    expect(run.stderr).toMatch(/install kubernetes-sigs\/agent-sandbox/);
    expect(bare.pods()).toEqual([]);
  });

  it('leaves no claim, Sandbox, pod, template or warm pool on shutdown', async () => {
    expect(objects('claims').length).toBeGreaterThan(0);
    expect(await server.stop()).toBe(0);
    expect(objects('claims')).toEqual([]);
    expect(objects('templates')).toEqual([]);
    expect(objects('warmPools')).toEqual([]);
    await eventually('every Sandbox and pod to go', async () =>
      objects('sandboxes').length === 0 && fake.pods(NAMESPACE).length === 0 ? true : undefined,
    );
    expect(fake.networkPolicies(NAMESPACE)).toEqual([]);
  });
});
