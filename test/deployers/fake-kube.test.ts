/**
 * The fake Kubernetes API server (test/support/fake-kube) driven by the real @kubernetes/client-node,
 * as the Kubernetes deployer will drive it: pods of the real base image come up Ready and answer
 * at their pod IP, the API's refusals carry the real status codes and Status bodies, watches
 * replay, expire and bookmark as the apiserver's do, the node agent reports kubelet statuses, and
 * stop() leaves nothing in Docker. Needs Docker and the base image; fails loudly without them.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  NetworkingV1Api,
  NodeV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1ContainerPort,
  type V1Pod,
  type V1Probe,
  VersionApi,
  Watch,
} from '@kubernetes/client-node';
import { SANDBOXD_CAPABILITIES, SANDBOXD_ENV, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../support/eventually.js';
import { BASE_IMAGE } from '../../support/images.js';
import {
  FAKE_KUBE_LABEL,
  type FakeKube,
  removeFakeKubeLeftovers,
  startFakeKube,
} from '../support/fake-kube/index.js';

const run = promisify(execFile);
const docker = new Dockerode();
const NS = 'default';
const BASELINE_NS = 'legacy';
const READY_MS = 60_000;

let fake: FakeKube;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  await docker.ping().catch((error: unknown) => {
    throw new Error(`these tests need a running Docker engine: ${String(error)}`);
  });
  await docker
    .getImage(BASE_IMAGE)
    .inspect()
    .catch(() => {
      throw new Error(`${BASE_IMAGE} is missing: build it with \`node dist/builder.mjs base\``);
    });
  fake = await startFakeKube({
    namespaces: { [NS]: { podSecurity: 'restricted' }, [BASELINE_NS]: { podSecurity: 'baseline' } },
    runtimeClasses: { gvisor: 'runsc' },
    bookmarkIntervalMs: 200,
  });
  kc = new KubeConfig();
  kc.loadFromFile(fake.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
});

afterAll(async () => {
  await fake?.stop();
});

let serial = 0;
const uniqueName = (base: string) => `${base}-${++serial}`;

/** A pod of the base image that the restricted profile admits: sandboxd as uid 1000, everything dropped. */
function restrictedPod(
  name: string,
  options: {
    labels?: Record<string, string>;
    image?: string;
    command?: string[];
    restartPolicy?: 'Always' | 'Never' | 'OnFailure';
    activeDeadlineSeconds?: number;
    nodeSelector?: Record<string, string>;
    ports?: V1ContainerPort[];
    readinessProbe?: V1Probe;
  } = {},
): V1Pod {
  return {
    metadata: { name, labels: options.labels ?? { app: 'fake-kube-test' } },
    spec: {
      restartPolicy: options.restartPolicy ?? 'Never',
      ...(options.activeDeadlineSeconds === undefined
        ? {}
        : { activeDeadlineSeconds: options.activeDeadlineSeconds }),
      ...(options.nodeSelector === undefined ? {} : { nodeSelector: options.nodeSelector }),
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        fsGroup: 1000,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'sandbox',
          image: options.image ?? BASE_IMAGE,
          ...(options.command === undefined ? {} : { command: options.command }),
          env: [
            { name: SANDBOXD_ENV.bootToken, value: 'boot-token' },
            { name: SANDBOXD_ENV.runAs, value: '1000:1000' },
          ],
          ports: options.ports ?? [{ name: 'sandboxd', containerPort: SANDBOXD_PORT }],
          readinessProbe: options.readinessProbe ?? {
            httpGet: { path: '/healthz', port: 'sandboxd' },
            periodSeconds: 1,
          },
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            readOnlyRootFilesystem: true,
          },
          resources: { limits: { cpu: '500m', memory: '512Mi' } },
          volumeMounts: [
            { name: 'tmp', mountPath: '/tmp' },
            { name: 'workspace', mountPath: '/workspace' },
          ],
        },
      ],
      volumes: [
        { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
        { name: 'workspace', emptyDir: { sizeLimit: '128Mi' } },
      ],
    },
  };
}

/** A pod no node fits (nodeSelector), so it never reaches Docker: for API-only checks. */
function parkedPod(name: string, labels: Record<string, string>): V1Pod {
  return restrictedPod(name, { labels, nodeSelector: { 'fake-kube/nowhere': 'true' } });
}

/** The ApiException a call ends in, with its Status body parsed. */
async function apiError(call: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof ApiException)) throw error;
    return { code: error.code, status: JSON.parse(String(error.body)) as Record<string, unknown> };
  }
  throw new Error('the call succeeded; an error was expected');
}

interface WatchEvent {
  type: string;
  object: V1Pod & { code?: number; reason?: string; message?: string };
}

/** A client-node Watch on pods that records its events and how it ended. */
async function watchPods(query: Record<string, string | number | boolean | undefined>, namespace = NS) {
  const events: WatchEvent[] = [];
  let ended: { error: unknown } | undefined;
  const controller = await new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    query,
    (type, object) => events.push({ type, object }),
    (error) => {
      ended = { error };
    },
  );
  return { events, ended: () => ended, stop: () => controller.abort() };
}

const readyOf = (pod: V1Pod | undefined) => pod?.status?.conditions?.find((c) => c.type === 'Ready')?.status;
const stateOf = (pod: V1Pod | undefined) => pod?.status?.containerStatuses?.[0]?.state;

async function readPod(name: string, namespace = NS): Promise<V1Pod | undefined> {
  try {
    return await core.readNamespacedPod({ namespace, name });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

/** The pod once `holds` is true of it, as the API reads it. */
function podOnce(name: string, what: string, holds: (pod: V1Pod) => boolean, timeoutMs = READY_MS) {
  return eventually(
    what,
    async () => {
      const pod = await readPod(name);
      return pod && holds(pod) ? pod : undefined;
    },
    timeoutMs,
  );
}

async function deletePodNow(name: string, namespace = NS): Promise<void> {
  await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(() => undefined);
}

describe('the cluster endpoints', () => {
  it('answers /version, discovery, the namespace with its Pod Security label, RuntimeClasses', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.major).toBe('1');
    const namespace = await core.readNamespace({ name: NS });
    expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const gvisor = await kc.makeApiClient(NodeV1Api).readRuntimeClass({ name: 'gvisor' });
    expect(gvisor.handler).toBe('runsc');
    const missing = await apiError(kc.makeApiClient(NodeV1Api).readRuntimeClass({ name: 'kata' }));
    expect(missing.code).toBe(404);
    expect(missing.status).toMatchObject({
      reason: 'NotFound',
      message: 'runtimeclasses.node.k8s.io "kata" not found',
    });
  });

  it('refuses a request without the bearer token with a 401 Status, and unknown paths with a 404 Status', async () => {
    const anonymous = await fetch(`${fake.url}/api/v1/namespaces/${NS}/pods`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    const unknown = await fetch(`${fake.url}/api/v1/namespaces/${NS}/widgets`, {
      headers: { authorization: `Bearer ${fake.token}` },
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
  });
});

describe('a pod of the base image', () => {
  it('comes up: the watch sees ADDED then MODIFIED up to Ready, and sandboxd answers at the pod IP', async () => {
    const name = uniqueName('ready');
    const watch = await watchPods({ labelSelector: `app=${name}` });
    try {
      const created = await core.createNamespacedPod({
        namespace: NS,
        body: restrictedPod(name, { labels: { app: name } }),
      });
      expect(created.status?.phase).toBe('Pending');
      expect(created.spec?.nodeName).toBeUndefined();
      const ready = await eventually(
        'the watch to report the pod Ready',
        () => watch.events.find((e) => e.type === 'MODIFIED' && readyOf(e.object) === 'True')?.object,
        READY_MS,
      );
      expect(watch.events[0]?.type).toBe('ADDED');
      expect(watch.events.every((e, i) => i === 0 || e.type === 'MODIFIED')).toBe(true);
      const versions = watch.events.map((e) => Number(e.object.metadata?.resourceVersion));
      expect([...versions].sort((a, b) => a - b)).toEqual(versions);
      expect(ready.spec?.nodeName).toBe('fake-node');
      expect(ready.status?.phase).toBe('Running');
      expect(ready.status?.qosClass).toBe('Guaranteed');
      expect(ready.status?.podIP).toMatch(/^127\.0\.0\.\d+$/);
      expect(ready.status?.podIPs).toEqual([{ ip: ready.status?.podIP }]);
      // Watch objects are the raw JSON: metav1.Time is RFC 3339 in seconds.
      expect(String(stateOf(ready)?.running?.startedAt)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const seen = watch.events.map((e) => stateOf(e.object)?.waiting?.reason).filter(Boolean);
      expect(seen).toContain('ContainerCreating');

      const health = await fetch(`http://${ready.status?.podIP}:${SANDBOXD_PORT}/healthz`);
      expect(health.status).toBe(200);
      // The same through the apiserver's pod proxy, and its output through pods/log.
      const proxied = await fetch(
        `${fake.url}/api/v1/namespaces/${NS}/pods/${name}:${SANDBOXD_PORT}/proxy/healthz`,
        {
          headers: { authorization: `Bearer ${fake.token}` },
        },
      );
      expect(proxied.status).toBe(200);
      expect(await core.readNamespacedPodLog({ namespace: NS, name })).toContain('sandboxd listening');

      // The security context, limits and emptyDirs reached Docker.
      const id = fake.containerIdOf(name);
      expect(id).toBeDefined();
      const info = await docker.getContainer(id ?? '').inspect();
      expect(info.Config.User).toBe('1000:1000');
      expect(info.Config.Labels[FAKE_KUBE_LABEL]).toBe(fake.instanceId);
      expect(info.HostConfig.CapDrop).toEqual(['ALL']);
      expect(info.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.NanoCpus).toBe(500_000_000);
      expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
      expect(info.HostConfig.MemorySwap).toBe(512 * 1024 * 1024);
      const tmp = info.HostConfig.Mounts?.find((mount) => mount.Target === '/tmp');
      expect(tmp?.VolumeOptions?.DriverConfig?.Options?.o).toContain(`size=${64 * 1024 * 1024}`);
      expect(tmp?.VolumeOptions?.DriverConfig?.Options?.o).toContain('gid=1000');
      expect(info.HostConfig.PortBindings?.[`${SANDBOXD_PORT}/tcp`]).toEqual([
        { HostIp: ready.status?.podIP, HostPort: String(SANDBOXD_PORT) },
      ]);
      expect(info.HostConfig.NetworkMode).toBe(fake.networkName);
    } finally {
      watch.stop();
      await deletePodNow(name);
    }
  });

  it('runs sandboxd as root with its capabilities in a baseline namespace', async () => {
    const name = uniqueName('baseline');
    const pod: V1Pod = {
      metadata: { name },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'sandbox',
            image: BASE_IMAGE,
            env: [{ name: SANDBOXD_ENV.bootToken, value: 'boot-token' }],
            ports: [{ containerPort: SANDBOXD_PORT }],
            readinessProbe: { httpGet: { path: '/healthz', port: SANDBOXD_PORT }, periodSeconds: 1 },
            securityContext: {
              runAsUser: 0,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'], add: [...SANDBOXD_CAPABILITIES] },
            },
          },
        ],
      },
    };
    try {
      await core.createNamespacedPod({ namespace: BASELINE_NS, body: pod });
      const ready = await eventually(
        'the root sandboxd to be Ready',
        async () => {
          const current = await readPod(name, BASELINE_NS);
          return readyOf(current) === 'True' ? current : undefined;
        },
        READY_MS,
      );
      const health = await fetch(`http://${ready.status?.podIP}:${SANDBOXD_PORT}/healthz`);
      expect(health.status).toBe(200);
      const info = await docker.getContainer(fake.containerIdOf(name, BASELINE_NS) ?? '').inspect();
      expect(info.HostConfig.CapAdd).toEqual([...SANDBOXD_CAPABILITIES]);
    } finally {
      await deletePodNow(name, BASELINE_NS);
    }
  });
});

describe('refusals on create', () => {
  it('answers 409 AlreadyExists for a name in use', async () => {
    const name = uniqueName('duplicate');
    await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: 'dup' }) });
    try {
      const error = await apiError(
        core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: 'dup' }) }),
      );
      expect(error.code).toBe(409);
      expect(error.status).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `pods "${name}" already exists`,
        reason: 'AlreadyExists',
        details: { name, kind: 'pods' },
        code: 409,
      });
    } finally {
      await deletePodNow(name);
    }
  });

  it('answers 403 with the Pod Security message for a pod the restricted profile forbids', async () => {
    const error = await apiError(
      core.createNamespacedPod({
        namespace: NS,
        body: { metadata: { name: 'plain' }, spec: { containers: [{ name: 'x', image: BASE_IMAGE }] } },
      }),
    );
    expect(error.code).toBe(403);
    expect(error.status).toMatchObject({
      reason: 'Forbidden',
      details: { name: 'plain', kind: 'pods' },
      code: 403,
    });
    expect(error.status.message).toBe(
      'pods "plain" is forbidden: violates PodSecurity "restricted:latest": ' +
        'allowPrivilegeEscalation != false (container "x" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "x" must set securityContext.capabilities.drop=["ALL"]), ' +
        'runAsNonRoot != true (pod or container "x" must set securityContext.runAsNonRoot=true), ' +
        'seccompProfile (pod or container "x" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
  });

  it('answers 403 for baseline violations in a baseline namespace', async () => {
    const error = await apiError(
      core.createNamespacedPod({
        namespace: BASELINE_NS,
        body: {
          metadata: { name: 'priv' },
          spec: {
            hostNetwork: true,
            containers: [
              {
                name: 'x',
                image: BASE_IMAGE,
                securityContext: { privileged: true, capabilities: { add: ['NET_ADMIN'] } },
              },
            ],
            volumes: [{ name: 'host', hostPath: { path: '/' } }],
          },
        },
      }),
    );
    expect(error.code).toBe(403);
    expect(error.status.message).toBe(
      'pods "priv" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork), ' +
        'privileged (container "x" must not set securityContext.privileged=true), ' +
        'non-default capabilities (container "x" must not include "NET_ADMIN" in securityContext.capabilities.add), ' +
        'hostPath volumes (volume "host")',
    );
  });

  it('answers 422 Invalid for a bad name and bad labels', async () => {
    const body = restrictedPod('Bad_Name', { labels: { 'bad key': 'ok', good: 'not ok!' } });
    const error = await apiError(core.createNamespacedPod({ namespace: NS, body }));
    expect(error.code).toBe(422);
    expect(error.status).toMatchObject({
      reason: 'Invalid',
      details: { name: 'Bad_Name', kind: 'Pod' },
      code: 422,
    });
    expect(String(error.status.message)).toMatch(
      /^Pod "Bad_Name" is invalid: \[metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/,
    );
    const causes = (error.status.details as { causes: Array<{ field: string; reason: string }> }).causes;
    expect(causes.map((c) => c.field)).toEqual(['metadata.name', 'metadata.labels', 'metadata.labels']);
    expect(causes.every((c) => c.reason === 'FieldValueInvalid')).toBe(true);
  });

  it('answers 422 for a pod without containers or image', async () => {
    const noContainers = await apiError(
      core.createNamespacedPod({
        namespace: NS,
        body: { metadata: { name: 'empty' }, spec: { containers: [] } },
      }),
    );
    expect(noContainers.code).toBe(422);
    expect(noContainers.status.message).toBe('Pod "empty" is invalid: spec.containers: Required value');
  });

  it('answers 403 for an unknown RuntimeClass, as the RuntimeClass admission plugin does', async () => {
    const body = restrictedPod('needs-kata');
    if (body.spec) body.spec.runtimeClassName = 'kata';
    const error = await apiError(core.createNamespacedPod({ namespace: NS, body }));
    expect(error.code).toBe(403);
    expect(error.status.message).toBe(
      'pods "needs-kata" is forbidden: pod rejected: RuntimeClass "kata" not found',
    );
  });

  it('answers 403 exceeded quota while refuseCreates() is on', async () => {
    fake.refuseCreates();
    try {
      const error = await apiError(
        core.createNamespacedPod({ namespace: NS, body: parkedPod('over-quota', {}) }),
      );
      expect(error.code).toBe(403);
      expect(String(error.status.message)).toMatch(/^pods "over-quota" is forbidden: exceeded quota: /);
    } finally {
      fake.acceptCreates();
    }
  });

  it('answers 404 for a namespace that does not exist', async () => {
    const error = await apiError(
      core.createNamespacedPod({ namespace: 'nowhere', body: parkedPod('lost', {}) }),
    );
    expect(error.code).toBe(404);
    expect(error.status.message).toBe('namespaces "nowhere" not found');
  });
});

describe('list and get', () => {
  it('lists by equality and set-based label selectors and refuses a malformed one with 400', async () => {
    const pods = [
      ['sel-a', { sel: 'a', tier: 'web' }],
      ['sel-b', { sel: 'b' }],
      ['sel-c', { sel: 'c', tier: 'db' }],
    ] as const;
    for (const [name, labels] of pods)
      await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, labels) });
    try {
      const names = async (labelSelector: string) => {
        const list = await core.listNamespacedPod({ namespace: NS, labelSelector });
        expect(Number(list.metadata?.resourceVersion)).toBeGreaterThan(0);
        return list.items.map((pod) => pod.metadata?.name);
      };
      expect(await names('sel=a')).toEqual(['sel-a']);
      expect(await names('sel==b')).toEqual(['sel-b']);
      expect(await names('sel,sel!=a')).toEqual(['sel-b', 'sel-c']);
      expect(await names('sel in (a, c)')).toEqual(['sel-a', 'sel-c']);
      expect(await names('sel,sel notin (a)')).toEqual(['sel-b', 'sel-c']);
      expect(await names('sel,tier')).toEqual(['sel-a', 'sel-c']);
      expect(await names('sel,!tier')).toEqual(['sel-b']);
      expect(await names('sel in (a,b),tier=web')).toEqual(['sel-a']);
      const byField = await core.listNamespacedPod({ namespace: NS, fieldSelector: 'metadata.name=sel-b' });
      expect(byField.items.map((pod) => pod.metadata?.name)).toEqual(['sel-b']);
      const badField = await apiError(
        core.listNamespacedPod({ namespace: NS, fieldSelector: 'spec.image=x' }),
      );
      expect(badField.code).toBe(400);
      const malformed = await apiError(core.listNamespacedPod({ namespace: NS, labelSelector: 'sel in (a' }));
      expect(malformed.code).toBe(400);
      expect(malformed.status).toMatchObject({ reason: 'BadRequest', code: 400 });

      // A pod no node fits stays Pending, unscheduled.
      const parked = await readPod('sel-a');
      expect(parked?.status?.phase).toBe('Pending');
      expect(parked?.status?.conditions).toMatchObject([
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable' },
      ]);
    } finally {
      for (const [name] of pods) await deletePodNow(name);
    }
  });

  it('answers 404 NotFound with a Status for a pod that does not exist', async () => {
    const error = await apiError(core.readNamespacedPod({ namespace: NS, name: 'ghost' }));
    expect(error.code).toBe(404);
    expect(error.status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "ghost" not found',
      reason: 'NotFound',
      details: { name: 'ghost', kind: 'pods' },
      code: 404,
    });
  });
});

describe('delete', () => {
  it('with grace 0 removes the container and then the pod: the watch sees DELETED', async () => {
    const name = uniqueName('gone');
    await core.createNamespacedPod({ namespace: NS, body: restrictedPod(name, { labels: { app: name } }) });
    const id = await eventually('the container to exist', () => fake.containerIdOf(name), READY_MS);
    const watch = await watchPods({ labelSelector: `app=${name}` });
    try {
      await eventually('the watch to list the pod', () => watch.events.find((e) => e.type === 'ADDED'));
      const answer = await core.deleteNamespacedPod({ namespace: NS, name, gracePeriodSeconds: 0 });
      expect(answer.metadata?.name).toBe(name);
      expect(await readPod(name)).toBeUndefined();
      await eventually('the DELETED event', () => watch.events.find((e) => e.type === 'DELETED'));
      const left = await docker.listContainers({ all: true, filters: { id: [id] } });
      expect(left).toEqual([]);
      const again = await apiError(core.deleteNamespacedPod({ namespace: NS, name, gracePeriodSeconds: 0 }));
      expect(again.code).toBe(404);
    } finally {
      watch.stop();
    }
  });

  it('with a grace period sets deletionTimestamp (MODIFIED), then stops the container (DELETED)', async () => {
    const name = uniqueName('graceful');
    await core.createNamespacedPod({ namespace: NS, body: restrictedPod(name, { labels: { app: name } }) });
    await eventually(
      'Ready',
      async () => (readyOf(await readPod(name)) === 'True' ? true : undefined),
      READY_MS,
    );
    const watch = await watchPods({ labelSelector: `app=${name}` });
    try {
      const answer = await core.deleteNamespacedPod({ namespace: NS, name, body: { gracePeriodSeconds: 2 } });
      expect(answer.metadata?.deletionTimestamp).toBeInstanceOf(Date);
      expect(answer.metadata?.deletionGracePeriodSeconds).toBe(2);
      await eventually('the DELETED event', () => watch.events.find((e) => e.type === 'DELETED'), 30_000);
      const marked = watch.events.find((e) => e.type === 'MODIFIED' && e.object.metadata?.deletionTimestamp);
      expect(marked).toBeDefined();
      expect(await readPod(name)).toBeUndefined();
    } finally {
      watch.stop();
      await deletePodNow(name);
    }
  });
});

describe('patch', () => {
  const patchPod = (name: string, body: object, type: string = PatchStrategy.MergePatch) =>
    core.patchNamespacedPod({ namespace: NS, name, body }, setHeaderOptions('Content-Type', type));

  it('sets activeDeadlineSeconds where there is none and lowers it, with labels: a new resourceVersion and a MODIFIED event', async () => {
    const name = uniqueName('patched');
    const created = await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: name }) });
    const watch = await watchPods({
      labelSelector: `app=${name}`,
      resourceVersion: created.metadata?.resourceVersion,
    });
    try {
      const set = await patchPod(name, {
        metadata: { labels: { claimed: 'yes' } },
        spec: { activeDeadlineSeconds: 300 },
      });
      expect(set.spec?.activeDeadlineSeconds).toBe(300);
      expect(set.metadata?.labels).toEqual({ app: name, claimed: 'yes' });
      expect(Number(set.metadata?.resourceVersion)).toBeGreaterThan(
        Number(created.metadata?.resourceVersion),
      );
      const modified = await eventually('the MODIFIED event', () =>
        watch.events.find((e) => e.type === 'MODIFIED' && e.object.spec?.activeDeadlineSeconds === 300),
      );
      expect(modified.object.metadata?.resourceVersion).toBe(set.metadata?.resourceVersion);

      const lowered = await patchPod(
        name,
        { metadata: { labels: { claimed: null } }, spec: { activeDeadlineSeconds: 120 } },
        PatchStrategy.StrategicMergePatch,
      );
      expect(lowered.spec?.activeDeadlineSeconds).toBe(120);
      expect(lowered.metadata?.labels).toEqual({ app: name });
      expect((await readPod(name))?.spec?.activeDeadlineSeconds).toBe(120);
    } finally {
      watch.stop();
      await deletePodNow(name);
    }
  });

  it('refuses to raise or remove the deadline and to change the rest of the spec with 422 Invalid, a stale resourceVersion with 409', async () => {
    const name = uniqueName('immutable');
    await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: name }) });
    try {
      await patchPod(name, { spec: { activeDeadlineSeconds: 60 } });
      const raised = await apiError(patchPod(name, { spec: { activeDeadlineSeconds: 61 } }));
      expect(raised.code).toBe(422);
      expect(raised.status).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        reason: 'Invalid',
        code: 422,
        message: `Pod "${name}" is invalid: spec.activeDeadlineSeconds: Invalid value: 61: must be less than or equal to previous value`,
        details: {
          name,
          kind: 'Pod',
          causes: [
            {
              reason: 'FieldValueInvalid',
              field: 'spec.activeDeadlineSeconds',
              message: 'Invalid value: 61: must be less than or equal to previous value',
            },
          ],
        },
      });
      const removed = await apiError(patchPod(name, { spec: { activeDeadlineSeconds: null } }));
      expect(removed.code).toBe(422);
      expect(removed.status.message).toMatch(
        /spec\.activeDeadlineSeconds: .*must not update from a positive integer to nil value/,
      );
      const zero = await apiError(patchPod(name, { spec: { activeDeadlineSeconds: 0 } }));
      expect(zero.status.message).toMatch(
        /spec\.activeDeadlineSeconds: Invalid value: 0: must be between 1 and/,
      );
      const other = await apiError(patchPod(name, { spec: { restartPolicy: 'Always' } }));
      expect(other.code).toBe(422);
      expect(other.status.message).toMatch(/spec: Forbidden: pod updates may not change fields other than/);
      const stale = await apiError(
        patchPod(name, { metadata: { resourceVersion: '1' }, spec: { activeDeadlineSeconds: 30 } }),
      );
      expect(stale).toMatchObject({ code: 409, status: { reason: 'Conflict' } });
      expect((await readPod(name))?.spec?.activeDeadlineSeconds).toBe(60);
    } finally {
      await deletePodNow(name);
    }
  });

  it('answers 415 for a patch type it does not apply, before looking the pod up', async () => {
    const jsonPatch = await apiError(
      patchPod(
        'ghost',
        [{ op: 'add', path: '/spec/activeDeadlineSeconds', value: 5 }],
        PatchStrategy.JsonPatch,
      ),
    );
    expect(jsonPatch.code).toBe(415);
    expect(jsonPatch.status).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });
    expect((await apiError(patchPod('ghost', { spec: {} }, 'text/plain'))).code).toBe(415);
    expect((await apiError(patchPod('ghost', { spec: {} }))).code).toBe(404);
  });

  it('ends a running pod at a deadline set after it started, counted from its startTime', async () => {
    const name = uniqueName('late-deadline');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, { command: ['sleep', '600'] }),
    });
    try {
      const running = await podOnce(name, 'Running', (pod) => pod.status?.phase === 'Running');
      const started = new Date(running.status?.startTime ?? 0).getTime();
      const seconds = Math.ceil((Date.now() - started) / 1000) + 2;
      await patchPod(name, { spec: { activeDeadlineSeconds: seconds } });
      const failed = await podOnce(
        name,
        'DeadlineExceeded',
        (pod) => pod.status?.reason === 'DeadlineExceeded',
      );
      expect(failed.status?.phase).toBe('Failed');
      // Not before the deadline, counted from startTime (second precision, so up to a second early).
      expect(Date.now()).toBeGreaterThanOrEqual(started + (seconds - 1) * 1000);
    } finally {
      await deletePodNow(name);
    }
  });
});

describe('kubelet statuses', () => {
  it('reports ErrImagePull then ImagePullBackOff for an image the engine does not have, phase Pending', async () => {
    const name = uniqueName('no-image');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, { image: 'fake-kube.invalid/never-built:1.0' }),
    });
    try {
      const reasons = new Set<string>();
      await eventually('ImagePullBackOff', async () => {
        const pod = await readPod(name);
        const reason = stateOf(pod)?.waiting?.reason;
        if (reason) reasons.add(reason);
        return reason === 'ImagePullBackOff' ? pod : undefined;
      });
      expect(reasons).toContain('ErrImagePull');
      const pod = await readPod(name);
      expect(pod?.status?.phase).toBe('Pending');
      expect(stateOf(pod)?.waiting?.message).toContain('fake-kube.invalid/never-built:1.0');
    } finally {
      await deletePodNow(name);
    }
  });

  it('reports a container that exits as terminated with its exit code, phase Failed (restartPolicy Never)', async () => {
    const name = uniqueName('exits');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, { command: ['sh', '-c', 'exit 3'] }),
    });
    try {
      const failed = await podOnce(name, 'phase Failed', (pod) => pod.status?.phase === 'Failed');
      expect(stateOf(failed)?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
      expect(readyOf(failed)).toBe('False');
    } finally {
      await deletePodNow(name);
    }
  });

  it('restarts a crashing container under restartPolicy Always, into CrashLoopBackOff', async () => {
    const name = uniqueName('crashloop');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, { command: ['sh', '-c', 'exit 1'], restartPolicy: 'Always' }),
    });
    try {
      const looping = await eventually(
        'CrashLoopBackOff',
        async () => {
          const pod = await readPod(name);
          return stateOf(pod)?.waiting?.reason === 'CrashLoopBackOff' ? pod : undefined;
        },
        READY_MS,
      );
      const status = looping.status?.containerStatuses?.[0];
      expect(status?.restartCount).toBeGreaterThanOrEqual(1);
      expect(status?.lastState?.terminated?.exitCode).toBe(1);
      expect(looping.status?.phase).toBe('Running');
    } finally {
      await deletePodNow(name);
    }
  });

  it('turns Ready back to False when the readiness probe starts failing', async () => {
    const name = uniqueName('flaky');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, {
        command: ['sh', '-c', 'python3 -m http.server 8080 & exec sleep 600'],
        ports: [{ name: 'web', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/', port: 'web' }, periodSeconds: 1, failureThreshold: 1 },
      }),
    });
    try {
      await eventually(
        'Ready',
        async () => (readyOf(await readPod(name)) === 'True' ? true : undefined),
        READY_MS,
      );
      const exec = await docker
        .getContainer(fake.containerIdOf(name) ?? '')
        .exec({ Cmd: ['pkill', '-f', 'http.server'], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      stream.resume();
      await new Promise((resolve) => stream.on('end', resolve));
      const unready = await eventually('Ready False', async () => {
        const pod = await readPod(name);
        return readyOf(pod) === 'False' ? pod : undefined;
      });
      expect(unready.status?.phase).toBe('Running');
      expect(unready.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('ContainersNotReady');
    } finally {
      await deletePodNow(name);
    }
  });

  it('kills a pod past activeDeadlineSeconds: Failed, DeadlineExceeded', async () => {
    const name = uniqueName('deadline');
    await core.createNamespacedPod({
      namespace: NS,
      body: restrictedPod(name, { command: ['sleep', '600'], activeDeadlineSeconds: 3 }),
    });
    try {
      const failed = await podOnce(
        name,
        'DeadlineExceeded',
        (pod) => pod.status?.reason === 'DeadlineExceeded',
      );
      expect(failed.status?.phase).toBe('Failed');
      const info = await docker.getContainer(fake.containerIdOf(name) ?? '').inspect();
      expect(info.State.Running).toBe(false);
    } finally {
      await deletePodNow(name);
    }
  });
});

describe('watch', () => {
  it('replays from a resourceVersion, and answers one ERROR 410 Expired once the history is gone', async () => {
    const list = await core.listNamespacedPod({ namespace: NS });
    const from = list.metadata?.resourceVersion ?? '';
    const name = uniqueName('replayed');
    await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: name }) });
    try {
      const replay = await watchPods({ resourceVersion: from, labelSelector: `app=${name}` });
      await eventually('the replayed ADDED', () => replay.events.find((e) => e.type === 'ADDED'));
      replay.stop();

      fake.expireWatchHistory();
      const expired = await watchPods({ resourceVersion: from, allowWatchBookmarks: true });
      await eventually('the watch to end', () => expired.ended());
      expect(expired.events).toHaveLength(1);
      expect(expired.events[0]?.type).toBe('ERROR');
      expect(expired.events[0]?.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
      expect(expired.events[0]?.object.message).toMatch(/^too old resource version: /);
      expect(expired.ended()?.error).toBeNull();
    } finally {
      await deletePodNow(name);
    }
  });

  it('starts with synthetic ADDED for the current objects without a resourceVersion, and sends bookmarks', async () => {
    const name = uniqueName('listed');
    await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: name }) });
    const watch = await watchPods({ labelSelector: `app=${name}`, allowWatchBookmarks: true });
    try {
      await eventually('the synthetic ADDED', () => watch.events.find((e) => e.type === 'ADDED'));
      const bookmark = await eventually('a BOOKMARK', () => watch.events.find((e) => e.type === 'BOOKMARK'));
      expect(Number(bookmark.object.metadata?.resourceVersion)).toBeGreaterThan(0);
      expect(
        fake.requests.some((r) => r.query.watch === 'true' && r.query.labelSelector === `app=${name}`),
      ).toBe(true);
    } finally {
      watch.stop();
      await deletePodNow(name);
    }
  });

  it('ends a watch after timeoutSeconds', async () => {
    const watch = await watchPods({ timeoutSeconds: 1 });
    await eventually('the watch to end', () => watch.ended(), 10_000);
    expect(watch.ended()?.error).toBeNull();
  });

  it('keeps a client-node informer in sync: after a 410 it lists again and carries on', async () => {
    const selector = `informed=${uniqueName('set')}`;
    const [key = '', value = ''] = selector.split('=');
    const informer = makeInformer(
      kc,
      `/api/v1/namespaces/${NS}/pods`,
      () => core.listNamespacedPod({ namespace: NS, labelSelector: selector }),
      selector,
    );
    const added: string[] = [];
    const errors: unknown[] = [];
    informer.on('add', (pod) => added.push(pod.metadata?.name ?? ''));
    informer.on('error', (error) => errors.push(error));
    await informer.start();
    try {
      await core.createNamespacedPod({ namespace: NS, body: parkedPod('informed-a', { [key]: value }) });
      await eventually('the informer to see the first pod', () =>
        added.includes('informed-a') ? true : undefined,
      );
      fake.expireWatchHistory();
      fake.dropWatches();
      await core.createNamespacedPod({ namespace: NS, body: parkedPod('informed-b', { [key]: value }) });
      await eventually('the informer to see the second pod', () =>
        added.includes('informed-b') ? true : undefined,
      );
      const lists = fake.requests.filter(
        (r) => r.query.labelSelector === selector && r.query.watch === undefined,
      );
      expect(lists.length).toBeGreaterThanOrEqual(2);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
      await deletePodNow('informed-a');
      await deletePodNow('informed-b');
    }
  });

  it('ends every open watch on dropWatches()', async () => {
    const watch = await watchPods({});
    fake.dropWatches();
    await eventually('the watch to end', () => watch.ended());
  });
});

describe('network policies', () => {
  it('creates, lists by label, gets, replaces and deletes them', async () => {
    const networking = kc.makeApiClient(NetworkingV1Api);
    const name = uniqueName('deny-all');
    const created = await networking.createNamespacedNetworkPolicy({
      namespace: NS,
      body: {
        metadata: { name, labels: { policy: name } },
        spec: {
          podSelector: { matchLabels: { app: 'sandbox' } },
          policyTypes: ['Ingress', 'Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '169.254.0.0/16'] } }] }],
        },
      },
    });
    expect(created.metadata?.uid).toBeTruthy();
    const listed = await networking.listNamespacedNetworkPolicy({
      namespace: NS,
      labelSelector: `policy=${name}`,
    });
    expect(listed.items.map((p) => p.metadata?.name)).toEqual([name]);
    const read = await networking.readNamespacedNetworkPolicy({ namespace: NS, name });
    expect(read.spec?.egress?.[0]?.to?.[0]?.ipBlock?.except).toEqual(['10.0.0.0/8', '169.254.0.0/16']);
    const bad = await apiError(
      networking.createNamespacedNetworkPolicy({
        namespace: NS,
        body: {
          metadata: { name: 'bad-cidr' },
          spec: { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] },
        },
      }),
    );
    expect(bad.code).toBe(422);

    // Replace: unconditional without a resourceVersion; a stale one is 409 Conflict.
    const spec = { podSelector: { matchLabels: { app: 'sandbox' } }, policyTypes: ['Ingress'] };
    const replaced = await networking.replaceNamespacedNetworkPolicy({
      namespace: NS,
      name,
      body: { metadata: { name, labels: { policy: name } }, spec },
    });
    expect(replaced.spec?.egress).toBeUndefined();
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(
      Number(created.metadata?.resourceVersion),
    );
    const stale = await apiError(
      networking.replaceNamespacedNetworkPolicy({
        namespace: NS,
        name,
        body: { metadata: { name, resourceVersion: created.metadata?.resourceVersion }, spec },
      }),
    );
    expect(stale.code).toBe(409);
    await networking.deleteNamespacedNetworkPolicy({ namespace: NS, name });
    const gone = await apiError(networking.readNamespacedNetworkPolicy({ namespace: NS, name }));
    expect(gone.code).toBe(404);
  });
});

describe('the API server going away', () => {
  it('refuses connections while down, ends open watches, and comes back on the same port with its state', async () => {
    const name = uniqueName('survivor');
    await core.createNamespacedPod({ namespace: NS, body: parkedPod(name, { app: name }) });
    const watch = await watchPods({ labelSelector: `app=${name}` });
    await eventually('the watch to start', () => watch.events.find((e) => e.type === 'ADDED'));
    await fake.goDown();
    try {
      await eventually('the watch to end', () => watch.ended());
      await expect(core.readNamespacedPod({ namespace: NS, name })).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await fake.comeBack();
    }
    try {
      const pod = await core.readNamespacedPod({ namespace: NS, name });
      expect(pod.metadata?.name).toBe(name);
      expect(new URL(fake.url).port).toBe(String(fake.port));
    } finally {
      await deletePodNow(name);
    }
  });
});

describe('stop()', () => {
  it('leaves no container or network of the instance behind', async () => {
    const own = await startFakeKube({ namespaces: { [NS]: { podSecurity: 'restricted' } } });
    const ownConfig = new KubeConfig();
    ownConfig.loadFromFile(own.kubeconfigPath);
    const ownCore = ownConfig.makeApiClient(CoreV1Api);
    await ownCore.createNamespacedPod({ namespace: NS, body: restrictedPod('left-running') });
    await eventually('the container', () => own.containerIdOf('left-running'), READY_MS);
    await own.stop();
    // Only this instance's: other test runs on the machine may have fakes of their own running.
    const label = `label=${FAKE_KUBE_LABEL}=${own.instanceId}`;
    const containers = await run('docker', ['ps', '-a', '-q', '--filter', label]);
    expect(containers.stdout.trim()).toBe('');
    const networks = await run('docker', ['network', 'ls', '-q', '--filter', label]);
    expect(networks.stdout.trim()).toBe('');
  });
});

describe('removeFakeKubeLeftovers()', () => {
  it("removes what a dead process's instance left, and nothing of a live one", async () => {
    const exited = spawn('true');
    const deadPid = await new Promise<number>((resolve) => exited.on('exit', () => resolve(exited.pid ?? 0)));
    const instance = `dead-${deadPid}-${Date.now()}`;
    const labels = { [FAKE_KUBE_LABEL]: instance, [`${FAKE_KUBE_LABEL}.pid`]: String(deadPid) };
    const network = await docker.createNetwork({ Name: `fakekube-${instance}`, Labels: labels });
    const container = await docker.createContainer({
      Image: BASE_IMAGE,
      Labels: labels,
      HostConfig: { NetworkMode: `fakekube-${instance}` },
    });
    await removeFakeKubeLeftovers(docker);
    await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(network.inspect()).rejects.toMatchObject({ statusCode: 404 });
    // The shared fake of this file is alive: its network stays.
    expect((await docker.getNetwork(fake.networkName).inspect()).Name).toBe(fake.networkName);
  });
});
