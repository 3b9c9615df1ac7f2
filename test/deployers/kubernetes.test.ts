/**
 * The Kubernetes deployer against the fake API server (test/support/fake-kube), whose node agent
 * runs every pod as a real container of the real base image: pods come up Ready and locked down,
 * sandboxd answers at the pod IP, refusals and failed starts come back with their codes and leave
 * no pod, the API server going away is DEPLOYER_UNAVAILABLE and the deployer recovers when it
 * returns, an expired watch is listed again; `list` answers from the watch's cache while it is open
 * and from the API while it is not; a claimed pod gets its claim's deadline; refusals outside
 * create are UPSTREAM_ERROR. What the fake does not model is in its header.
 */
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { execResultSchema, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Config, type ConfigInput, configSchema, imageNameFor } from '../../server/src/config/schema.js';
import type { CreateSpec, DeployedSandbox } from '../../server/src/deployers/deployer.js';
import { KubernetesDeployer } from '../../server/src/deployers/kubernetes.js';
import { claimDeadlineSeconds } from '../../server/src/deployers/kubernetes-objects.js';
import { describeCodedError } from '../../server/src/errors.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { type SandboxTypeInput, sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';
import { eventually } from '../../support/eventually.js';
import { IMAGE_SETTINGS } from '../../support/images.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube/index.js';

const docker = new Dockerode();
const runId = randomBytes(4).toString('hex');
const deploymentId = `test-k8s-${runId}`;
const RESTRICTED_NS = 'sandboxes';
const BASELINE_NS = 'legacy';
const logger = createLogger('silent');

let fake: FakeKube;
const deployers: KubernetesDeployer[] = [];

beforeAll(async () => {
  fake = await startFakeKube({
    namespaces: {
      [RESTRICTED_NS]: { podSecurity: 'restricted' },
      [BASELINE_NS]: { podSecurity: 'baseline' },
    },
    runtimeClasses: { gvisor: 'runsc' },
  });
});

afterEach(async () => {
  for (const deployer of deployers.splice(0)) {
    for (const pod of await deployer.list(deploymentId)) await deployer.destroy(pod.handle);
    await deployer.teardown();
  }
  expect(fake.pods()).toEqual([]);
});

afterAll(async () => {
  await fake?.stop();
});

function configWith(settings: ConfigInput = {}): Config {
  return configSchema.parse({
    CONTAINER_DEPLOYMENT: 'k8s',
    KUBECONFIG_PATH: fake.kubeconfigPath,
    K8S_NAMESPACE: RESTRICTED_NS,
    DEPLOYMENT_ID: deploymentId,
    ...IMAGE_SETTINGS,
    ...settings,
  });
}

function deployerWith(settings: ConfigInput = {}): {
  deployer: KubernetesDeployer;
  image: string;
  config: Config;
} {
  const config = configWith(settings);
  const deployer = new KubernetesDeployer({ config, logger });
  deployers.push(deployer);
  return { deployer, image: imageNameFor('base', config), config };
}

function specFor(image: string, type: Partial<SandboxTypeInput> = {}): CreateSpec {
  const sandboxId = randomBytes(6).toString('hex');
  return {
    sandboxId,
    deploymentId,
    replicaId: 'kubernetes-test-replica',
    type: sandboxTypeSchema.parse({ name: 'base', timeouts: { readyMs: 60_000 }, ...type }),
    image,
    name: `rsbx-test-${sandboxId}`,
    bootToken: randomBytes(24).toString('hex'),
    readonlyMounts: [],
    pooled: false,
  };
}

async function sandboxdExec(deployed: DeployedSandbox, token: string, command: string) {
  const response = await fetch(`http://${deployed.endpoint.host}:${deployed.endpoint.port}/exec`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command }),
  });
  return execResultSchema.parse(await response.json());
}

/** The fake's requests for one pod, by method. */
const podRequests = (method: string, name: string) =>
  fake.requests.filter((request) => request.method === method && request.path.endsWith(`/pods/${name}`))
    .length;

/** The error's code and `details.reason`, as a caller of the API would see them. */
async function refusalOf(promise: Promise<unknown>): Promise<{ code: string; reason: unknown }> {
  const error = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: unknown) => err,
  );
  const coded = describeCodedError(error);
  if (!coded) throw error;
  return { code: coded.code, reason: coded.details?.reason };
}

describe('KubernetesDeployer', () => {
  it('runs a sandbox as a Ready pod under the restricted profile, reached at its pod IP', async () => {
    const { deployer, image } = deployerWith({ K8S_RUNTIME_CLASS: 'gvisor' });
    const type = sandboxTypeSchema.parse({ name: 'base' });
    await deployer.prepare([type]);
    expect(fake.networkPolicies(RESTRICTED_NS).map((policy) => policy.metadata.name)).toEqual([
      `${deploymentId}-base`,
    ]);
    const spec = specFor(image);
    const deployed = await deployer.create(spec);
    expect(deployed.endpoint).toEqual({
      host: expect.stringMatching(/^127\.0\.0\.\d+$/),
      port: SANDBOXD_PORT,
    });
    const health = await fetch(`http://${deployed.endpoint.host}:${SANDBOXD_PORT}/healthz`);
    expect(health.status).toBe(200);
    await health.body?.cancel();

    const [pod] = fake.pods(RESTRICTED_NS);
    expect(pod?.metadata.name).toBe(deployed.handle);
    expect(pod?.spec.runtimeClassName).toBe('gvisor');
    expect(pod?.metadata.labels).toMatchObject({
      'runtime-sandbox.io/managed-by': 'runtime-sandbox',
      'runtime-sandbox.io/deployment': deploymentId,
      'runtime-sandbox.io/sandbox-id': spec.sandboxId,
    });

    // sandboxd and the code share uid 1000, with no capability and no way to gain one.
    const identity = await sandboxdExec(
      deployed,
      spec.bootToken,
      "id -u; stat -c %u /proc/1; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '; touch /etc/x 2>&1 || true",
    );
    expect(identity.stdout.split('\n').slice(0, 4)).toEqual([
      '1000',
      '1000',
      'CapEff: 0000000000000000',
      'NoNewPrivs: 1',
    ]);
    expect(identity.stdout).toMatch(/Read-only file system/);
    const workspace = await sandboxdExec(
      deployed,
      spec.bootToken,
      'echo hi > /workspace/a && cat /workspace/a',
    );
    expect(workspace).toMatchObject({ stdout: 'hi\n', exitCode: 0 });

    expect(await deployer.list(deploymentId)).toEqual([
      {
        handle: deployed.handle,
        sandboxId: spec.sandboxId,
        deploymentId,
        replicaId: 'kubernetes-test-replica',
        running: true,
      },
    ]);
    const container = fake.containerIdOf(deployed.handle, RESTRICTED_NS);
    await deployer.destroy(deployed.handle);
    await deployer.destroy(deployed.handle);
    expect(fake.pods()).toEqual([]);
    await expect(docker.getContainer(container ?? 'none').inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    await deployer.teardown();
    expect(fake.networkPolicies()).toEqual([]);
  });

  it('under baseline starts sandboxd as root with its capabilities and the code as uid 1000, where the namespace allows it', async () => {
    const { deployer, image } = deployerWith({ K8S_POD_SECURITY: 'baseline', K8S_NAMESPACE: BASELINE_NS });
    await deployer.prepare([]);
    const spec = specFor(image);
    const deployed = await deployer.create(spec);
    const identity = await sandboxdExec(
      deployed,
      spec.bootToken,
      "id -u; stat -c %u /proc/1; grep -E '^CapEff' /proc/self/status | tr -s '\\t' ' '",
    );
    expect(identity.stdout).toBe('1000\n0\nCapEff: 0000000000000000\n');

    const refused = deployerWith({ K8S_POD_SECURITY: 'baseline' });
    await refused.deployer.prepare([]);
    expect(await refusalOf(refused.deployer.create(specFor(refused.image)))).toEqual({
      code: 'SANDBOX_CREATE_FAILED',
      reason: 'Forbidden',
    });
    expect(fake.pods(RESTRICTED_NS)).toEqual([]);
  });

  it('fails at once, and deletes the pod, when its image cannot be pulled or the cluster refuses it', async () => {
    const { deployer, image } = deployerWith();
    await deployer.prepare([]);
    const started = Date.now();
    const missing = await refusalOf(deployer.create(specFor(`${image}-missing-${runId}`)));
    expect(missing.code).toBe('SANDBOX_CREATE_FAILED');
    expect(['ErrImagePull', 'ImagePullBackOff']).toContain(missing.reason);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(fake.pods()).toEqual([]);

    fake.refuseCreates();
    try {
      expect(await refusalOf(deployer.create(specFor(image)))).toEqual({
        code: 'SANDBOX_CREATE_FAILED',
        reason: 'Forbidden',
      });
    } finally {
      fake.acceptCreates();
    }
    expect(fake.pods()).toEqual([]);
  });

  it('refuses at start the types it cannot run as isolated as they ask, and a RuntimeClass the cluster lacks', async () => {
    const { deployer } = deployerWith();
    const ptrace = sandboxTypeSchema.parse({ name: 'tracer', security: { capAdd: ['SYS_PTRACE'] } });
    await expect(deployer.prepare([ptrace])).rejects.toThrow(/"tracer" cannot run on Kubernetes.*restricted/);
    const missingClass = deployerWith({ K8S_RUNTIME_CLASS: 'kata' });
    await expect(missingClass.deployer.prepare([])).rejects.toThrow(
      /K8S_RUNTIME_CLASS=kata.*no such RuntimeClass/,
    );
  });

  it('answers DEPLOYER_UNAVAILABLE while the API server is away, and recovers when it returns', async () => {
    const { deployer, image } = deployerWith();
    await deployer.prepare([]);
    await fake.goDown();
    try {
      expect((await refusalOf(deployer.create(specFor(image)))).code).toBe('DEPLOYER_UNAVAILABLE');
      await expect(deployer.ping()).rejects.toThrow(/cannot read the version/);
    } finally {
      await fake.comeBack();
    }
    await deployer.ping();
    // The watch was started again by itself: this create hears its pod become Ready.
    const deployed = await deployer.create(specFor(image));
    expect((await deployer.list(deploymentId)).map((pod) => pod.handle)).toEqual([deployed.handle]);
  });

  it('lists again when its watch expired, and still hears every pod become Ready', async () => {
    const { deployer, image } = deployerWith();
    await deployer.prepare([]);
    await deployer.create(specFor(image));
    fake.expireWatchHistory();
    fake.dropWatches();
    const second = await deployer.create(specFor(image));
    expect((await deployer.list(deploymentId)).map((pod) => pod.handle)).toContain(second.handle);
    expect(fake.podLists()).toBeGreaterThanOrEqual(2);
  });
  it('lists from its watch once it is open, sees a pod deleted behind its back, and asks the API while the watch is away', async () => {
    const { deployer, image } = deployerWith();
    await deployer.prepare([]);
    const first = await deployer.create(specFor(image));
    const second = await deployer.create(specFor(image));
    const lists = fake.podLists();
    const handles = async () => (await deployer.list(deploymentId)).map((pod) => pod.handle).sort();
    for (let i = 0; i < 3; i++) expect(await handles()).toEqual([first.handle, second.handle].sort());
    expect(fake.podLists()).toBe(lists);

    const deleted = await fetch(`${fake.url}/api/v1/namespaces/${RESTRICTED_NS}/pods/${first.handle}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${fake.token}` },
    });
    expect(deleted.status).toBe(200);
    await eventually('the cache to lose the deleted pod', async () =>
      (await handles()).includes(first.handle) ? undefined : true,
    );
    expect(await handles()).toEqual([second.handle]);
    expect(fake.podLists()).toBe(lists);
    // A pod the caller expects but the cache does not show is read from the API, not taken for gone.
    const reads = podRequests('GET', first.handle);
    expect((await deployer.list(deploymentId, [first.handle, second.handle])).map((p) => p.handle)).toEqual([
      second.handle,
    ]);
    expect(podRequests('GET', first.handle)).toBe(reads + 1);
    expect(podRequests('GET', second.handle)).toBe(0);

    await fake.goDown();
    try {
      // Once the watch has noticed, the cache is not trusted: the list asks the API, which is away.
      await eventually('the list to go to the API', async () =>
        deployer.list(deploymentId).then(
          () => undefined,
          (err: unknown) => describeCodedError(err)?.code,
        ),
      ).then((code) => expect(code).toBe('DEPLOYER_UNAVAILABLE'));
    } finally {
      await fake.comeBack();
    }
    await eventually('the cache to serve again', async () => {
      const before = fake.podLists();
      await deployer.list(deploymentId);
      return fake.podLists() === before ? true : undefined;
    });
  });

  it('gives a claimed pod its deadline, counted from its start, lowers it for an earlier expiry and never raises it', async () => {
    const { deployer, image, config } = deployerWith();
    await deployer.prepare([]);
    const deployed = await deployer.create(specFor(image));
    const startedAt = () => Date.parse(fake.pods(RESTRICTED_NS)[0]?.status.startTime ?? '');
    const deadline = () => fake.pods(RESTRICTED_NS)[0]?.spec.activeDeadlineSeconds;
    expect(deadline()).toBeUndefined();

    const expiresAt = Date.now() + 600_000;
    await deployer.bindExpiry(deployed.handle, expiresAt);
    const set = claimDeadlineSeconds(startedAt(), expiresAt, config);
    expect(deadline()).toBe(set);
    // Counted from startTime, it ends the pod a grace after the expiry, never before it.
    expect(startedAt() + set * 1000).toBeGreaterThan(expiresAt);
    expect(startedAt() + set * 1000).toBeLessThanOrEqual(
      expiresAt + config.MAINTENANCE_INTERVAL_MS + config.LEADER_LEASE_MS + 12_000,
    );

    // Whether or not the watch has brought the patched pod back yet, the deadline is not raised.
    await deployer.bindExpiry(deployed.handle, expiresAt + 60_000);
    expect(deadline()).toBe(set);
    await deployer.bindExpiry(deployed.handle, expiresAt - 300_000);
    expect(deadline()).toBe(claimDeadlineSeconds(startedAt(), expiresAt - 300_000, config));

    await deployer.destroy(deployed.handle);
    await deployer.bindExpiry(deployed.handle, expiresAt);
  });

  it('answers refusals outside create with UPSTREAM_ERROR, and those of create with SANDBOX_CREATE_FAILED', async () => {
    const real = new KubeConfig();
    real.loadFromFile(fake.kubeconfigPath);
    const wrong = new KubeConfig();
    wrong.loadFromOptions({
      clusters: real.clusters,
      users: [{ name: 'wrong', token: 'not-the-token' }],
      contexts: [{ name: 'wrong', cluster: real.getCurrentCluster()?.name ?? '', user: 'wrong' }],
      currentContext: 'wrong',
    });
    // Not among `deployers`: it can make nothing, and could not list for the clean-up either.
    const config = configWith();
    const deployer = new KubernetesDeployer({ config, logger, kubeConfig: wrong });
    const image = imageNameFor('base', config);
    // A 401 carries no Status body through the client: the reason is the HTTP status.
    const refused = { reason: '401' };
    expect(await refusalOf(deployer.create(specFor(image)))).toEqual({
      code: 'SANDBOX_CREATE_FAILED',
      ...refused,
    });
    expect(await refusalOf(deployer.list(deploymentId))).toEqual({ code: 'UPSTREAM_ERROR', ...refused });
    expect(await refusalOf(deployer.destroy('some-pod'))).toEqual({ code: 'UPSTREAM_ERROR', ...refused });
    expect(await refusalOf(deployer.bindExpiry('some-pod', Date.now()))).toEqual({
      code: 'UPSTREAM_ERROR',
      ...refused,
    });
  });
});
