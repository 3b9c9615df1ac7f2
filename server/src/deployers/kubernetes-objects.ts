/**
 * The Kubernetes objects of a sandbox deployment, as plain data: the pod of each sandbox (one
 * container, locked down to the Pod Security profile K8S_POD_SECURITY names), the NetworkPolicy of
 * each sandbox type, the labels that find them again, and what a pod's status says about its start.
 *
 * Labels are the Docker deployer's under Kubernetes' own key form (`runtime-sandbox.io/<name>`).
 * A value Kubernetes would refuse (over 63 characters, or other characters than `[-_.A-Za-z0-9]`)
 * is replaced by a digest, so that selectors still match; the true values ride in annotations.
 */
import { createHash } from 'node:crypto';
import type {
  KubernetesObject,
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1Pod,
  V1PodSpec,
  V1SecurityContext,
} from '@kubernetes/client-node';
import { isAddressRange, parseRunAs, SANDBOXD_CAPABILITIES, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import type { Config } from '../config/schema.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import { type CreateSpec, MANAGED_BY_VALUE, sandboxEnv } from './deployer.js';
import { BLOCKED_IPV4_RANGES } from './sandbox-firewall.js';

const LABEL_PREFIX = 'runtime-sandbox.io/';
export const POD_LABELS = {
  managedBy: `${LABEL_PREFIX}managed-by`,
  deployment: `${LABEL_PREFIX}deployment`,
  sandboxId: `${LABEL_PREFIX}sandbox-id`,
  type: `${LABEL_PREFIX}type`,
  pool: `${LABEL_PREFIX}pool`,
  replica: `${LABEL_PREFIX}replica`,
} as const;
type LabelName = keyof typeof POD_LABELS;

const CONTAINER = 'sandbox';
const WORKSPACE = '/workspace';
const SANDBOXD_PORT_NAME = 'sandboxd';
/** The container's own layer and logs, beside the workspace, in its ephemeral-storage limit. */
const CONTAINER_LAYER_MIB = 256;
/** Capabilities the restricted profile lets a container add. */
const RESTRICTED_ADDABLE = new Set(['NET_BIND_SERVICE']);

/** Set by the API server on every namespace (Kubernetes 1.21 and later). */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** `value` as Kubernetes takes it in a label: itself when valid, else a digest of it. */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  return `h-${createHash('sha256').update(value).digest('hex').slice(0, 40)}`;
}

/** `name` as an object name (RFC 1123 label: lowercase, digits and `-`, at most 63). */
export function objectName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (cleaned.length > 0 && cleaned.length <= 63 && cleaned === name) return cleaned;
  // Changed or too long: a digest keeps names that differ only in what was changed apart.
  const digest = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${cleaned.slice(0, 52).replace(/-+$/, '')}-${digest}`;
}

/** The label selector of a deployment's pods (and of its NetworkPolicies). */
export function deploymentSelector(deploymentId: string): string {
  return `${POD_LABELS.managedBy}=${MANAGED_BY_VALUE},${POD_LABELS.deployment}=${labelValue(deploymentId)}`;
}

/** The labels (and annotations) of the object that stands for one sandbox: its pod, or its claim. */
export function sandboxLabels(spec: CreateSpec): ReturnType<typeof labelled> {
  return labelled({
    managedBy: MANAGED_BY_VALUE,
    deployment: spec.deploymentId,
    replica: spec.replicaId,
    sandboxId: spec.sandboxId,
    type: spec.type.name,
    pool: String(spec.pooled),
  });
}

/** Labels and the annotations that keep their true values. */
export function labelled(values: Partial<Record<LabelName, string>>): {
  labels: Record<string, string>;
  annotations: Record<string, string>;
} {
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  for (const [name, value] of Object.entries(values) as Array<[LabelName, string]>) {
    labels[POD_LABELS[name]] = labelValue(value);
    annotations[POD_LABELS[name]] = value;
  }
  return { labels, annotations };
}

/** The true value of label `name` on an object this deployer made. */
export function labelOf(object: KubernetesObject, name: LabelName): string | undefined {
  const { metadata } = object;
  return metadata?.annotations?.[POD_LABELS[name]] ?? metadata?.labels?.[POD_LABELS[name]];
}

/**
 * Why a type cannot run as a pod under these settings; undefined when it can. Checked at start,
 * so a type that would run with less isolation than it asks for is refused, not weakened.
 */
export function unsupportedBy(type: SandboxType, config: Config): string | undefined {
  const { security } = type;
  if (security.runtime !== undefined && config.K8S_RUNTIME_CLASS === undefined) {
    return `asks for the Docker runtime "${security.runtime}"; on Kubernetes set K8S_RUNTIME_CLASS (a RuntimeClass such as gVisor's) instead`;
  }
  if (config.K8S_POD_SECURITY === 'restricted') {
    const refused = security.capAdd.filter((cap) => !RESTRICTED_ADDABLE.has(cap));
    if (refused.length > 0) {
      return `adds capabilities ${refused.join(', ')}, which the restricted Pod Security profile forbids (K8S_POD_SECURITY=baseline allows some)`;
    }
  }
  if (security.network === 'allowlist') {
    const domains = security.allow.filter((entry) => !isAddressRange(entry));
    if (domains.length > 0) {
      return `allows domains (${domains.join(', ')}), which a NetworkPolicy cannot express; list address ranges instead`;
    }
    if (!config.K8S_NETWORK_POLICY) return 'has an allowlist, which needs K8S_NETWORK_POLICY=true';
  }
  return undefined;
}

/**
 * The container's security context. Both profiles: no privilege escalation, seccomp RuntimeDefault,
 * every capability dropped, the type's read-only root. `baseline` keeps sandboxd's few capabilities
 * and starts it as root, so the code runs under another uid than sandboxd; `restricted` starts
 * sandboxd as the type's user itself.
 */
function securityContextOf(type: SandboxType, config: Config): V1SecurityContext {
  const { uid, gid } = parseRunAs(type.security.user);
  const common: V1SecurityContext = {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: type.security.readOnlyRootfs,
    seccompProfile: { type: 'RuntimeDefault' },
  };
  if (config.K8S_POD_SECURITY === 'baseline') {
    return {
      ...common,
      runAsUser: 0,
      runAsGroup: 0,
      capabilities: { drop: ['ALL'], add: [...SANDBOXD_CAPABILITIES, ...type.security.capAdd] },
    };
  }
  return {
    ...common,
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    capabilities: { drop: ['ALL'], add: [...type.security.capAdd] },
  };
}

/**
 * The pod of one sandbox. It has no activeDeadlineSeconds: a pool pod waits for a claim for as
 * long as it takes, and every pod gets its claim's own (claimDeadlineSeconds) once bound; the API
 * allows setting one later, and lowering it, but never raising it.
 */
export function sandboxPod(spec: CreateSpec, podName: string, config: Config): V1Pod {
  const { labels, annotations } = sandboxLabels(spec);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, labels, annotations },
    spec: sandboxPodSpec(spec.type, spec.image, sandboxEnv(spec, config), config),
  };
}

/** The spec of a sandbox's pod: one container of `image` with sandboxd's `env`, locked down. */
export function sandboxPodSpec(
  type: SandboxType,
  image: string,
  env: Record<string, string>,
  config: Config,
): V1PodSpec {
  const { gid } = parseRunAs(type.security.user);
  const quantity = {
    cpu: `${Math.round(type.resources.cpus * 1000)}m`,
    memory: `${type.resources.memoryMiB}Mi`,
  };
  const writable = Object.entries(type.storage.writable);
  const ephemeral = `${type.resources.workspaceMiB + CONTAINER_LAYER_MIB}Mi`;
  const resources = { ...quantity, 'ephemeral-storage': ephemeral };
  return {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    ...(config.K8S_RUNTIME_CLASS ? { runtimeClassName: config.K8S_RUNTIME_CLASS } : {}),
    ...(Object.keys(config.K8S_NODE_SELECTOR).length > 0 ? { nodeSelector: config.K8S_NODE_SELECTOR } : {}),
    ...(config.K8S_TOLERATIONS.length > 0 ? { tolerations: config.K8S_TOLERATIONS } : {}),
    ...(config.K8S_IMAGE_PULL_SECRETS.length > 0
      ? { imagePullSecrets: config.K8S_IMAGE_PULL_SECRETS.map((name) => ({ name })) }
      : {}),
    securityContext: {
      ...(config.K8S_POD_SECURITY === 'restricted' ? { runAsNonRoot: true } : {}),
      // Volumes are the group's, so the code (and a non-root sandboxd) may write them.
      fsGroup: gid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: CONTAINER,
        image,
        imagePullPolicy: config.K8S_IMAGE_PULL_POLICY,
        env: Object.entries(env).map(([name, value]) => ({ name, value })),
        ports: [{ name: SANDBOXD_PORT_NAME, containerPort: SANDBOXD_PORT, protocol: 'TCP' }],
        readinessProbe: {
          httpGet: { path: '/healthz', port: SANDBOXD_PORT_NAME },
          periodSeconds: 1,
          timeoutSeconds: 1,
          failureThreshold: 3,
        },
        resources: { requests: resources, limits: resources },
        securityContext: securityContextOf(type, config),
        volumeMounts: [
          { name: 'workspace', mountPath: WORKSPACE },
          ...writable.map(([path], index) => ({ name: `writable-${index}`, mountPath: path })),
        ],
      },
    ],
    volumes: [
      { name: 'workspace', emptyDir: { sizeLimit: `${type.resources.workspaceMiB}Mi` } },
      // In memory, as Docker's tmpfs: it counts against the memory limit, not the node's disk.
      ...writable.map(([, sizeMiB], index) => ({
        name: `writable-${index}`,
        emptyDir: { medium: 'Memory', sizeLimit: `${sizeMiB}Mi` },
      })),
    ],
  };
}

/** activeDeadlineSeconds is an int32 of at least 1. */
const MAX_DEADLINE_SECONDS = 2_147_483_647;
/** On top of a maintenance tick and a leader lease, for the reaper's own work. */
const DEADLINE_SLACK_SECONDS = 10;

/**
 * How long after a claim's hard expiry a backend's own backstop may end the sandbox: time in which
 * the reaper, which also gives back what the sandbox holds, normally ends it first. The reaper runs
 * every MAINTENANCE_INTERVAL_MS, and a LEADER_LEASE_MS later when the leader has just changed.
 */
export function reaperGraceMs(config: Pick<Config, 'MAINTENANCE_INTERVAL_MS' | 'LEADER_LEASE_MS'>): number {
  return config.MAINTENANCE_INTERVAL_MS + config.LEADER_LEASE_MS + DEADLINE_SLACK_SECONDS * 1000;
}

/**
 * The activeDeadlineSeconds of a claimed pod, which the kubelet counts from the pod's startTime
 * (`startedAt`, ms): its claim's hard expiry `expiresAt` (ms), plus reaperGraceMs.
 */
export function claimDeadlineSeconds(
  startedAt: number,
  expiresAt: number,
  config: Pick<Config, 'MAINTENANCE_INTERVAL_MS' | 'LEADER_LEASE_MS'>,
): number {
  const seconds = Math.ceil((expiresAt + reaperGraceMs(config) - startedAt) / 1000);
  return Math.min(MAX_DEADLINE_SECONDS, Math.max(1, seconds));
}

/** Cluster DNS, which every sandbox with a network may ask. */
const CLUSTER_DNS: V1NetworkPolicyEgressRule = {
  to: [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    },
  ],
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};

/**
 * The NetworkPolicy of a type's pods: sandboxd may be reached from the server's pods (labelled
 * K8S_SERVER_POD_LABELS, in `serverNamespace`) only; egress as the type's network policy says
 * (`public`: the internet but no private, link-local or metadata range; `allowlist`: its ranges
 * only; `none`: nothing). Enforced only by a CNI that implements
 * NetworkPolicy (Calico, Cilium); IPv6 egress is not allowed at all.
 */
export function typeNetworkPolicy(
  type: SandboxType,
  deploymentId: string,
  config: Config,
  serverNamespace: string,
): V1NetworkPolicy {
  const { labels } = labelled({ managedBy: MANAGED_BY_VALUE, deployment: deploymentId, type: type.name });
  const egress: V1NetworkPolicyEgressRule[] = {
    public: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [...BLOCKED_IPV4_RANGES] } }] }, CLUSTER_DNS],
    allowlist: [{ to: type.security.allow.filter(isAddressRange).map((cidr) => ({ ipBlock: { cidr } })) }],
    none: [],
  }[type.security.network];
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: objectName(`${deploymentId}-${type.name}`), labels },
    spec: {
      podSelector: { matchLabels: labels },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          // `_from` is the client's name for the field `from` (a reserved word in its generator).
          // Both selectors in one peer: those pods, in the server's namespace (a podSelector alone
          // would match in the sandboxes' namespace only).
          _from: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: serverNamespace } },
              podSelector: { matchLabels: config.K8S_SERVER_POD_LABELS },
            },
          ],
          ports: [{ protocol: 'TCP', port: SANDBOXD_PORT }],
        },
      ],
      egress,
    },
  };
}

/** Waiting reasons after which a pod will not start by itself. */
const HOPELESS_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

export type PodStart =
  | { kind: 'ready'; podIP: string }
  | { kind: 'pending'; reason: string }
  | { kind: 'failed'; reason: string; message: string };

/** Where a pod's start stands, from its status as the kubelet and scheduler report it. */
export function podStart(pod: V1Pod): PodStart {
  const status = pod.status;
  if (pod.metadata?.deletionTimestamp)
    return { kind: 'failed', reason: 'Deleted', message: 'the pod is being deleted' };
  if (status?.phase === 'Failed' || status?.phase === 'Succeeded') {
    const terminated = status.containerStatuses?.[0]?.state?.terminated;
    const detail = terminated
      ? `exit code ${terminated.exitCode}${terminated.reason ? ` (${terminated.reason})` : ''}`
      : '';
    return {
      kind: 'failed',
      reason: status.reason ?? terminated?.reason ?? status.phase,
      message: status.message ?? `the container ended: ${detail}`,
    };
  }
  for (const container of status?.containerStatuses ?? []) {
    const waiting = container.state?.waiting;
    if (waiting?.reason && HOPELESS_WAITING.has(waiting.reason)) {
      return { kind: 'failed', reason: waiting.reason, message: waiting.message ?? waiting.reason };
    }
  }
  const condition = (type: string) => status?.conditions?.find((c) => c.type === type);
  const scheduled = condition('PodScheduled');
  if (scheduled?.status === 'False') {
    return {
      kind: 'pending',
      reason: `${scheduled.reason ?? 'Unschedulable'}: ${scheduled.message ?? ''}`.trim(),
    };
  }
  if (condition('Ready')?.status === 'True' && status?.podIP) return { kind: 'ready', podIP: status.podIP };
  const waiting = status?.containerStatuses?.[0]?.state?.waiting?.reason;
  return { kind: 'pending', reason: waiting ?? status?.phase ?? 'Pending' };
}
