/**
 * Two replicas of one deployment on one real redis-server, with their sandboxes as pods on the
 * fake Kubernetes API server (test/support/fake-kube): concurrent acquire/use/release cycles spread
 * over both never hand a sandbox or a pod out twice, each replica serves the other's sandboxes,
 * and once the last replica has stopped no pod, NetworkPolicy or Redis key of the deployment is left.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, waitForWarm } from '../../support/server-process.js';
import { manifestAuthorization } from '../support/deploy-rbac.js';
import { kubernetesSettings, withDeployment, withFakeKube, withRedis } from '../support/fixture.js';
import { keysOf, onRedis, recordsOf, runCycles } from './support.js';

const NAMESPACE = 'sandboxes';
const POOL = 3;

describe('two replicas on one Redis, with sandboxes as pods', () => {
  // The API refuses what deploy/kubernetes/rbac.yaml does not grant the server.
  const fake = withFakeKube({
    namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } },
    authorization: manifestAuthorization(NAMESPACE),
  });
  const { redis, client } = withRedis();
  const deployment = withDeployment('h10-test-k8s-replicas', { start: onRedis(redis) });
  let replicas: ServerProcess[] = [];

  /** The sandbox ids of the deployment's pods on the fake. */
  const podSandboxIds = () =>
    fake
      .pods(NAMESPACE)
      .map(
        (pod) => pod.metadata.labels?.['runtime-sandbox.io/sandbox-id'] ?? `unlabelled:${pod.metadata.name}`,
      )
      .sort();

  beforeAll(async () => {
    const start = () =>
      deployment.start({ env: { ...kubernetesSettings(fake, NAMESPACE), POOL_SIZE: String(POOL) } });
    replicas = [await start(), await start()];
    await waitForWarm(replicas[0] as ServerProcess, 'base', POOL);
  });

  it('runs concurrent acquire/release cycles over both replicas without handing a sandbox or a pod out twice', async () => {
    const report = await runCycles(replicas, client, {
      cycles: 40,
      concurrency: 10,
      addressOf: async (id) => {
        const pod = fake
          .pods(NAMESPACE)
          .find((p) => p.metadata.labels?.['runtime-sandbox.io/sandbox-id'] === id);
        if (!pod?.status?.podIP) throw new Error(`sandbox ${id} has no pod with an IP`);
        return pod.status.podIP;
      },
    });
    expect(report.servingPids).toEqual(new Set(replicas.map((r) => r.child.pid)));
    await waitForWarm(replicas[0] as ServerProcess, 'base', POOL);
    const records = await recordsOf(client, deployment.id);
    expect(records.map((r) => r.status)).toEqual(Array(POOL).fill('warm'));
    expect(podSandboxIds()).toEqual(records.map((r) => r.id).sort());
  }, 300_000);

  it('leaves no pod, NetworkPolicy or key once the last replica stopped', async () => {
    expect(await replicas[0]?.stop()).toBe(0);
    // The other replica still serves: the sandboxes stay.
    expect(podSandboxIds()).toHaveLength(POOL);
    expect(await replicas[1]?.stop()).toBe(0);
    expect(fake.pods(NAMESPACE)).toEqual([]);
    expect(fake.networkPolicies(NAMESPACE)).toEqual([]);
    expect(await keysOf(client, deployment.id)).toEqual([]);
  });
});
