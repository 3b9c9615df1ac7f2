/**
 * The pods and NetworkPolicies the Kubernetes deployer sends, and how it reads a pod's status:
 * plain data, checked here without any API server (test/deployers/kubernetes.test.ts runs them
 * against the fake one).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { SANDBOXD_CAPABILITIES } from '@runtime-sandbox/contract';
import { describe, expect, it } from 'vitest';
import { type ConfigInput, configSchema } from '../../server/src/config/schema.js';
import type { CreateSpec } from '../../server/src/deployers/deployer.js';
import {
  claimDeadlineSeconds,
  deploymentSelector,
  labelOf,
  labelValue,
  objectName,
  podStart,
  sandboxPod,
  typeNetworkPolicy,
  unsupportedBy,
} from '../../server/src/deployers/kubernetes-objects.js';
import { type SandboxTypeInput, sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';

const configOf = (settings: ConfigInput = {}) =>
  configSchema.parse({ CONTAINER_DEPLOYMENT: 'k8s', ...settings });
const typeOf = (input: Partial<SandboxTypeInput> = {}) => sandboxTypeSchema.parse({ name: 'base', ...input });

function specOf(type = typeOf(), overrides: Partial<CreateSpec> = {}): CreateSpec {
  return {
    sandboxId: '0123abcd',
    deploymentId: 'a-deployment-id-that-is-rather-long-and-goes-on-past-sixty-three-chars',
    replicaId: 'replica-1',
    type,
    image: 'registry.example.com/runtime-sandbox/runtime-sandbox-base:latest',
    name: 'Runtime_Sandbox-0123abcd',
    bootToken: 'boot',
    readonlyMounts: [],
    pooled: true,
    ...overrides,
  };
}

function containerOf(pod: V1Pod) {
  const container = pod.spec?.containers[0];
  if (!container) throw new Error('the pod has no container');
  return container;
}

describe('Kubernetes objects of a sandbox', () => {
  it('names objects and labels as the API server takes them, and finds the true values again', () => {
    expect(objectName('runtime-sandbox-0123abcd')).toBe('runtime-sandbox-0123abcd');
    const renamed = objectName('Runtime_Sandbox-0123abcd');
    expect(renamed).toMatch(/^runtime-sandbox-0123abcd-[0-9a-f]{10}$/);
    expect(objectName('x'.repeat(80))).toHaveLength(63);
    expect(labelValue('base')).toBe('base');
    expect(labelValue('bad value/with:chars')).toMatch(/^h-[0-9a-f]{40}$/);

    const spec = specOf();
    const pod = sandboxPod(spec, renamed, configOf());
    const deployment = pod.metadata?.labels?.['runtime-sandbox.io/deployment'];
    expect(deployment).toBe(labelValue(spec.deploymentId));
    expect(deployment).toMatch(/^h-/);
    expect(labelOf(pod, 'deployment')).toBe(spec.deploymentId);
    expect(labelOf(pod, 'sandboxId')).toBe('0123abcd');
    expect(deploymentSelector(spec.deploymentId)).toBe(
      `runtime-sandbox.io/managed-by=runtime-sandbox,runtime-sandbox.io/deployment=${deployment}`,
    );
  });

  it('meets the restricted profile: sandboxd runs as the type user, no capability, read-only root, sized volumes', () => {
    const type = typeOf({
      resources: { cpus: 0.5, memoryMiB: 256, pidsLimit: 128, workspaceMiB: 512 },
      storage: { writable: { '/tmp': 32 } },
    });
    const pod = sandboxPod(
      specOf(type, { pooled: false }),
      'pod-a',
      configOf({ K8S_RUNTIME_CLASS: 'gvisor' }),
    );
    const container = containerOf(pod);
    expect(pod.spec).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      runtimeClassName: 'gvisor',
      securityContext: { runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    });
    // Not even a cold pod has a deadline yet: it gets its claim's once bound (claimDeadlineSeconds).
    expect(pod.spec?.activeDeadlineSeconds).toBeUndefined();
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      seccompProfile: { type: 'RuntimeDefault' },
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      capabilities: { drop: ['ALL'], add: [] },
    });
    const quantities = { cpu: '500m', memory: '256Mi', 'ephemeral-storage': '768Mi' };
    expect(container.resources).toEqual({ requests: quantities, limits: quantities });
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: 'SANDBOXD_TOKEN', value: 'boot' },
        { name: 'SANDBOXD_RUN_AS', value: '1000:1000' },
      ]),
    );
    expect(container.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'sandboxd' });
    expect(pod.spec?.volumes).toEqual([
      { name: 'workspace', emptyDir: { sizeLimit: '512Mi' } },
      { name: 'writable-0', emptyDir: { medium: 'Memory', sizeLimit: '32Mi' } },
    ]);
    expect(container.volumeMounts).toEqual([
      { name: 'workspace', mountPath: '/workspace' },
      { name: 'writable-0', mountPath: '/tmp' },
    ]);
  });

  it('under baseline starts sandboxd as root with exactly its capabilities', () => {
    const pod = sandboxPod(specOf(), 'pod-b', configOf({ K8S_POD_SECURITY: 'baseline' }));
    expect(containerOf(pod).securityContext).toMatchObject({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: [...SANDBOXD_CAPABILITIES] },
    });
    expect(pod.spec?.securityContext?.runAsNonRoot).toBeUndefined();
  });

  it('gives a claimed pod the deadline of its hard expiry, counted from its start, plus a grace for the reaper', () => {
    const config = configOf({ MAINTENANCE_INTERVAL_MS: 2000, LEADER_LEASE_MS: 6000 });
    const startedAt = Date.parse('2030-01-01T00:00:00Z');
    // Claimed a minute after the start for an hour: the grace is a tick, a lease and 10 s.
    const expiresAt = startedAt + 60_000 + 3_600_000;
    expect(claimDeadlineSeconds(startedAt, expiresAt, config)).toBe(60 + 3600 + 2 + 6 + 10);
    // Rounded up, so that it never ends before expiresAt plus the grace.
    expect(claimDeadlineSeconds(startedAt, expiresAt + 1, config)).toBe(60 + 3600 + 2 + 6 + 10 + 1);
    // Within the API's range: at least 1, at most an int32.
    expect(claimDeadlineSeconds(startedAt, startedAt - 3_600_000, config)).toBe(1);
    expect(claimDeadlineSeconds(startedAt, Number.MAX_SAFE_INTEGER, config)).toBe(2_147_483_647);
  });

  it('refuses types that would run with less isolation than they ask for', () => {
    const restricted = configOf();
    expect(unsupportedBy(typeOf(), restricted)).toBeUndefined();
    expect(unsupportedBy(typeOf({ security: { capAdd: ['SYS_PTRACE'] } }), restricted)).toMatch(/restricted/);
    expect(unsupportedBy(typeOf({ security: { runtime: 'runsc' } }), restricted)).toMatch(
      /K8S_RUNTIME_CLASS/,
    );
    const domains = typeOf({ security: { network: 'allowlist', allow: ['pypi.org', '203.0.113.0/24'] } });
    expect(unsupportedBy(domains, restricted)).toMatch(/domains/);
    const ranges = typeOf({ security: { network: 'allowlist', allow: ['203.0.113.0/24'] } });
    expect(unsupportedBy(ranges, restricted)).toBeUndefined();
    expect(unsupportedBy(ranges, configOf({ K8S_NETWORK_POLICY: 'false' }))).toMatch(/K8S_NETWORK_POLICY/);
  });

  it("writes a type's network policy into its NetworkPolicy", () => {
    const config = configOf();
    const publicPolicy = typeNetworkPolicy(typeOf(), 'dep', config, 'servers');
    expect(publicPolicy.spec?.podSelector?.matchLabels).toMatchObject({ 'runtime-sandbox.io/type': 'base' });
    // The server's pods, in the server's namespace: one peer with both selectors.
    expect(publicPolicy.spec?.ingress?.[0]?._from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'servers' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'runtime-sandbox-server' } },
      },
    ]);
    const internet = publicPolicy.spec?.egress?.[0]?.to?.[0]?.ipBlock;
    expect(internet?.cidr).toBe('0.0.0.0/0');
    expect(internet?.except).toEqual(
      expect.arrayContaining(['10.0.0.0/8', '169.254.0.0/16', '192.168.0.0/16']),
    );
    const ranges = typeOf({ name: 'narrow', security: { network: 'allowlist', allow: ['203.0.113.0/24'] } });
    expect(typeNetworkPolicy(ranges, 'dep', config, 'servers').spec?.egress).toEqual([
      { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }] },
    ]);
    const offline = typeOf({ name: 'offline', security: { network: 'none' } });
    expect(typeNetworkPolicy(offline, 'dep', config, 'servers').spec?.egress).toEqual([]);
  });

  it('reads a start from the pod status as the kubelet and scheduler report it', () => {
    const pod = (status: V1Pod['status'], deleting = false): V1Pod => ({
      metadata: { name: 'p', ...(deleting ? { deletionTimestamp: new Date() } : {}) },
      status,
    });
    const waiting = (reason: string) => ({
      phase: 'Pending',
      containerStatuses: [
        {
          name: 'sandbox',
          image: 'i',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason, message: `${reason}!` } },
        },
      ],
    });
    expect(podStart(pod({ phase: 'Pending' }))).toEqual({ kind: 'pending', reason: 'Pending' });
    expect(podStart(pod(waiting('ContainerCreating')))).toEqual({
      kind: 'pending',
      reason: 'ContainerCreating',
    });
    expect(podStart(pod(waiting('ImagePullBackOff')))).toEqual({
      kind: 'failed',
      reason: 'ImagePullBackOff',
      message: 'ImagePullBackOff!',
    });
    const unschedulable = {
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' }],
    };
    expect(podStart(pod(unschedulable))).toEqual({ kind: 'pending', reason: 'Unschedulable: 0/3 nodes' });
    const ready = { phase: 'Running', podIP: '10.1.2.3', conditions: [{ type: 'Ready', status: 'True' }] };
    expect(podStart(pod(ready))).toEqual({ kind: 'ready', podIP: '10.1.2.3' });
    expect(podStart(pod(ready, true)).kind).toBe('failed');
    expect(podStart(pod({ phase: 'Running', podIP: '10.1.2.3' })).kind).toBe('pending');
    expect(podStart(pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'too long' }))).toEqual({
      kind: 'failed',
      reason: 'DeadlineExceeded',
      message: 'too long',
    });
  });
});
