/**
 * K8S_ACCESS=proxy: the server reaches sandboxd only through the API server's pods/proxy, over
 * TLS verified against the kubeconfig's CA. The fake serves HTTPS under a CA it made at start and
 * reports pod IPs where nothing listens (unroutablePodIPs), so a server dialling a pod IP would
 * fail its readiness wait, and every sandboxd call shows up in the fake's request log as a proxy
 * call. A kubeconfig whose CA is another one is refused: at start, and by the proxy transport
 * itself for a pod that is there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { afterAll, describe, expect, it } from 'vitest';
import {
  kubeProxyTransport,
  podProxyEndpoint,
  podProxyOf,
} from '../../server/src/deployers/kubernetes-proxy.js';
import { discard, SandboxdClient } from '../../server/src/manager/sandboxd-client.js';
import { runServerCli, waitForWarm } from '../../support/server-process.js';
import { manifestAuthorization } from '../support/deploy-rbac.js';
import { makeTlsMaterial, writeKubeconfig } from '../support/fake-kube/index.js';
import { expectExecRoundTrip, expectFileAndArchiveRoundTrip } from '../support/file-round-trip.js';
import { kubernetesSettings, withFakeKube, withServer } from '../support/fixture.js';

const TOKEN = 'kubernetes-proxy-test-token-0123456789';
const NAMESPACE = 'proxied';

interface Info {
  id: string;
  status: string;
  fromPool: boolean;
}

const scratch = mkdtempSync(join(tmpdir(), 'rsbx-k8s-proxy-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the server on Kubernetes through the API server’s pod proxy', () => {
  // The in-cluster Role (deploy/kubernetes/rbac.yaml) plus pods/proxy, as the README tells a
  // kubeconfig user from outside the cluster to have: the API refuses anything more.
  const inCluster = manifestAuthorization(NAMESPACE);
  const fake = withFakeKube({
    tls: true,
    unroutablePodIPs: true,
    namespaces: { [NAMESPACE]: { podSecurity: 'restricted' } },
    authorization: {
      ...inCluster,
      roles: [
        ...inCluster.roles,
        {
          namespace: NAMESPACE,
          rules: [
            { apiGroups: [''], resources: ['pods/proxy'], verbs: ['get', 'create', 'update', 'delete'] },
          ],
        },
      ],
    },
  });
  const settings = () => ({ ...kubernetesSettings(fake, NAMESPACE), K8S_ACCESS: 'proxy' });
  const server = withServer('h5-test-k8s-proxy', {
    env: () => ({ ...settings(), POOL_SIZE: '1', BEARER_TOKEN: TOKEN, MAINTENANCE_INTERVAL_MS: '300' }),
    warm: 1,
  });

  const podOf = (id: string) => {
    const [pod] = fake
      .pods(NAMESPACE)
      .filter((candidate) => candidate.metadata.labels?.['runtime-sandbox.io/sandbox-id'] === id);
    return pod;
  };
  /** The kubeconfig of the fake with another CA than the one its certificate chains to. */
  const wrongCaKubeconfig = () => {
    const path = join(scratch, 'wrong-ca.kubeconfig');
    const other = makeTlsMaterial(scratch, 'other');
    writeKubeconfig(path, { server: fake.url, token: fake.token, namespace: NAMESPACE, caPem: other.caPem });
    return path;
  };

  it('serves a warm pod, exec (JSON and NDJSON), files and archives, and release, all through the proxy', async () => {
    const before = fake.requests.length;
    const acquired = await server.call<Info>('POST', '/v1/sandboxes', { env: { GREETING: 'via the proxy' } });
    expect(acquired).toMatchObject({ status: 201, body: { status: 'claimed', fromPool: true } });
    const { id } = acquired.body;
    const pod = podOf(id);
    if (pod === undefined) throw new Error(`sandbox ${id} has no pod`);
    // Its reported IP answers nothing: the proxy is the only way in.
    expect(pod.status.podIP).toMatch(/^127\.0\.1\./);
    await expect(fetch(`http://${pod.status.podIP}:${SANDBOXD_PORT}/healthz`)).rejects.toThrow();
    const base = `/v1/sandboxes/${id}`;

    await expectExecRoundTrip(server, base, 'echo "$GREETING"', 'via the proxy\n');

    await expectFileAndArchiveRoundTrip(server, base, 'proxied');

    const proxyPrefix = `/api/v1/namespaces/${NAMESPACE}/pods/${pod.metadata.name}:${SANDBOXD_PORT}/proxy`;
    const proxied = fake.requests
      .slice(before)
      .filter((request) => request.path.startsWith(`${proxyPrefix}/`))
      .map((request) => `${request.method} ${request.path.slice(proxyPrefix.length)}`);
    expect(proxied).toEqual([
      'POST /init',
      'POST /exec',
      'POST /exec',
      'PUT /files',
      'GET /files',
      'GET /archive',
      'PUT /archive',
      'GET /files',
    ]);

    expect((await server.fetch(base, { method: 'DELETE' })).status).toBe(204);
    expect(podOf(id)).toBeUndefined();
    await waitForWarm(server, 'base', 1);
    // The API server's credentials stay out of the logs (so do the endpoints' secrets: they have none).
    expect(JSON.stringify(server.logs())).not.toContain(fake.token);
  });

  it('verifies the API server’s certificate: another CA is refused by the proxy transport', async () => {
    await waitForWarm(server, 'base', 1);
    const { body } = await server.call<{ sandboxes: Info[] }>('GET', '/v1/sandboxes?status=warm');
    const pod = body.sandboxes[0] && podOf(body.sandboxes[0].id);
    if (pod === undefined) throw new Error('no warm pod');
    const healthz = (kubeconfigPath: string) => {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(kubeconfigPath);
      const client = new SandboxdClient({ proxyTransport: kubeProxyTransport(kubeConfig) });
      const endpoint = podProxyEndpoint(podProxyOf(kubeConfig, NAMESPACE), pod.metadata.name);
      return client
        .forward({ sandboxId: 'probe', endpoint, token: 'unused' }, { method: 'GET', path: '/healthz' })
        .finally(() => client.close());
    };
    const good = await healthz(fake.kubeconfigPath);
    expect(good.statusCode).toBe(200);
    discard(good);
    await expect(healthz(wrongCaKubeconfig())).rejects.toMatchObject({
      code: 'UPSTREAM_ERROR',
      message: expect.stringMatching(/certificate/i),
    });
  });

  it('refuses to start with a kubeconfig whose CA is not the API server’s, with a clear error', async () => {
    const run = await runServerCli([], {
      ...settings(),
      KUBECONFIG_PATH: wrongCaKubeconfig(),
      CONTAINER_PREFIX_KEY: 'h5-test-k8s-proxy-wrong-ca',
      PORT: '0',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/k8s deployer's backend does not answer/);
    expect(run.stderr).toMatch(/certificate/i);
  });
});
