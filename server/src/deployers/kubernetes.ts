/**
 * Sandboxes as pods on a Kubernetes cluster (CONTAINER_DEPLOYMENT=k8s), one per sandbox in
 * K8S_NAMESPACE, built by kubernetes-objects.ts: locked down to the Pod Security profile
 * K8S_POD_SECURITY names, requests equal to limits, /workspace and the writable paths on sized
 * emptyDirs, and a NetworkPolicy per type.
 *
 * The server dials sandboxd at the pod's IP (K8S_ACCESS=pod-ip: the server runs in the cluster),
 * or through the API server's pod proxy (K8S_ACCESS=proxy, kubernetes-proxy.ts). `create` returns
 * once the pod is Ready (its readiness probe is sandboxd's /healthz), as one shared watch reports
 * it; it fails at once, deleting the pod, when the cluster refuses the pod (admission, quota) or
 * the pod cannot start (image pull, crash, config), and at the type's readiness deadline when
 * it is still not scheduled. Pods are deleted with no grace period. The API server being away is
 * DEPLOYER_UNAVAILABLE (503) to callers; warm sandboxes keep serving, as they need no API call.
 * Its refusals (4xx) are SANDBOX_CREATE_FAILED on the way to a new pod, UPSTREAM_ERROR elsewhere.
 *
 * `list` answers from the watch's cache while the watch is open (no list request per maintenance
 * tick per replica), and from the API otherwise. A claimed pod gets the claim's hard expiry, plus
 * a grace, as its activeDeadlineSeconds: the kubelet ends it if no reaper does.
 *
 * Workspaces live in the pod (an emptyDir), so there is no host storage and no host port.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  NodeV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  VersionApi,
} from '@kubernetes/client-node';
import { type ErrorCode, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { z } from 'zod';
import { type Config, deploymentIdOf } from '../config/schema.js';
import { messageOf, ServiceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type {
  ContainerSummary,
  CreateSpec,
  DeployedSandbox,
  Deployer,
  Endpoint,
  ProxyTransportSource,
} from './deployer.js';
import {
  claimDeadlineSeconds,
  deploymentSelector,
  labelOf,
  objectName,
  type PodStart,
  podStart,
  sandboxPod,
  typeNetworkPolicy,
  unsupportedBy,
} from './kubernetes-objects.js';
import { type PodChange, PodWatch } from './kubernetes-pod-watch.js';
import { kubeProxyTransport, type PodProxy, podProxyEndpoint, podProxyOf } from './kubernetes-proxy.js';

/** A Retry-After for callers while the API server is away, seconds. */
const UNAVAILABLE_RETRY_SECONDS = 5;
/** Where a pod's service account credentials are mounted when the server runs in a cluster. */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** Beside the token: the namespace the server's own pod runs in. */
const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** What a refusal is to callers: a create's failure, or the backend answering badly. */
type RefusalCode = Extract<ErrorCode, 'SANDBOX_CREATE_FAILED' | 'UPSTREAM_ERROR'>;

/** The parts of a Kubernetes `Status` error body used here. */
const statusBodySchema = z.object({ reason: z.string().optional(), message: z.string().optional() });

export class KubernetesDeployer implements Deployer {
  readonly kind = 'k8s';
  readonly location: string;
  private readonly config: Config;
  private readonly namespace: string;
  /** Where the server's pods run, the only ones allowed to reach sandboxd. */
  private readonly serverNamespace: string;
  private readonly deploymentId: string;
  private readonly core: CoreV1Api;
  private readonly networking: NetworkingV1Api;
  private readonly nodes: NodeV1Api;
  private readonly version: VersionApi;
  private readonly pods: PodWatch;
  private readonly logger: Logger;
  /** The NetworkPolicies `prepare` applied, for teardown. */
  private readonly policies = new Set<string>();
  /** With K8S_ACCESS=proxy: where the pods' proxies are. */
  private readonly podProxy: PodProxy | undefined;
  readonly proxyTransport: ProxyTransportSource | undefined;

  constructor(options: { config: Config; logger: Logger; kubeConfig?: KubeConfig }) {
    this.config = options.config;
    this.logger = options.logger;
    this.namespace = options.config.K8S_NAMESPACE;
    this.serverNamespace = options.config.K8S_SERVER_NAMESPACE ?? inClusterNamespace() ?? this.namespace;
    this.deploymentId = deploymentIdOf(options.config);
    const kubeConfig = options.kubeConfig ?? loadKubeConfig(options.config);
    this.location = `${kubeConfig.getCurrentCluster()?.server ?? 'no cluster'}, namespace ${this.namespace}`;
    if (options.config.K8S_ACCESS === 'proxy') {
      this.podProxy = podProxyOf(kubeConfig, this.namespace);
      this.proxyTransport = kubeProxyTransport(kubeConfig);
    }
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.networking = kubeConfig.makeApiClient(NetworkingV1Api);
    this.nodes = kubeConfig.makeApiClient(NodeV1Api);
    this.version = kubeConfig.makeApiClient(VersionApi);
    this.pods = new PodWatch({
      kubeConfig,
      core: this.core,
      namespace: this.namespace,
      labelSelector: deploymentSelector(this.deploymentId),
      logger: options.logger,
    });
  }

  /**
   * Refuses types that would run with less isolation here than they ask for, checks that the
   * namespace can be used and the RuntimeClass exists, applies the NetworkPolicies and starts the
   * pod watch.
   */
  async prepare(types: readonly SandboxType[]): Promise<void> {
    for (const type of types) {
      const problem = unsupportedBy(type, this.config);
      if (problem) throw new Error(`sandbox type "${type.name}" cannot run on Kubernetes: it ${problem}`);
    }
    await this.call('list pods', () => this.core.listNamespacedPod({ namespace: this.namespace, limit: 1 }));
    const runtimeClass = this.config.K8S_RUNTIME_CLASS;
    if (runtimeClass !== undefined) {
      await this.call(`read RuntimeClass ${runtimeClass}`, () =>
        this.nodes.readRuntimeClass({ name: runtimeClass }),
      ).catch((err: unknown) => {
        if (apiCodeOf(err) !== 404) throw err;
        throw new Error(`K8S_RUNTIME_CLASS=${runtimeClass}: the cluster has no such RuntimeClass`);
      });
    }
    if (this.config.K8S_NETWORK_POLICY) {
      for (const type of types) await this.applyNetworkPolicy(type);
    }
    await this.pods.start();
  }

  async teardown(): Promise<void> {
    await this.pods.stop();
    for (const name of this.policies) {
      await this.call(`delete NetworkPolicy ${name}`, () =>
        this.networking.deleteNamespacedNetworkPolicy({ name, namespace: this.namespace }),
      ).catch((err: unknown) => {
        if (apiCodeOf(err) !== 404) throw err;
      });
      this.policies.delete(name);
    }
  }

  needsHostPort(): boolean {
    return false;
  }

  async create(spec: CreateSpec): Promise<DeployedSandbox> {
    const name = objectName(spec.name);
    const body = sandboxPod(spec, name, this.config);
    await this.call(
      `create pod ${name}`,
      () => this.core.createNamespacedPod({ namespace: this.namespace, body }),
      'SANDBOX_CREATE_FAILED',
    );
    try {
      const podIP = await this.readyAddress(name, spec.type.timeouts.readyMs);
      return { handle: name, endpoint: this.endpointOf(name, podIP) };
    } catch (err) {
      // Nothing leaks: a pod that did not come up is deleted before the error goes on.
      await this.destroy(name).catch(() => undefined);
      throw err;
    }
  }

  async destroy(handle: string): Promise<void> {
    await this.call(`delete pod ${handle}`, () =>
      this.core.deleteNamespacedPod({ name: handle, namespace: this.namespace, gracePeriodSeconds: 0 }),
    ).catch((err: unknown) => {
      if (apiCodeOf(err) !== 404) throw err;
    });
  }

  /** The storage is the pod's own emptyDir. */
  async provideWorkspace(): Promise<void> {}

  async releaseWorkspace(): Promise<void> {}

  async workspaceIds(): Promise<string[]> {
    return [];
  }

  /**
   * From the watch's cache while it is open (it holds this deployment's pods only), else from the
   * API. The cache has every pod this replica created (create waits for it through the watch), but
   * may lag one another replica just made Ready, or miss its ADDED while the watch reconnects: an
   * `expected` pod the cache does not show running is read from the API before it counts as gone.
   */
  async list(deploymentId: string, expected: readonly string[] = []): Promise<ContainerSummary[]> {
    const cached = deploymentId === this.deploymentId ? this.pods.cached() : undefined;
    if (cached === undefined) {
      const pods = await this.call('list pods', () =>
        this.core.listNamespacedPod({
          namespace: this.namespace,
          labelSelector: deploymentSelector(deploymentId),
        }),
      );
      return pods.items.map(summaryOf);
    }
    const byName = new Map(cached.map((pod) => [pod.metadata?.name ?? '', pod]));
    for (const name of expected) {
      const seen = byName.get(name);
      if (seen && isRunning(seen)) continue;
      const pod = await this.readPod(name);
      if (pod) byName.set(name, pod);
      else byName.delete(name);
    }
    return [...byName.values()].map(summaryOf);
  }

  /**
   * Sets the pod's activeDeadlineSeconds to the claim's (claimDeadlineSeconds), with a merge patch.
   * The API allows setting it where there is none and lowering it, never raising it: a pod whose
   * deadline is already as short keeps it. A pod already gone needs none.
   */
  async bindExpiry(handle: string, expiresAt: number): Promise<void> {
    const pod = this.pods.get(handle) ?? (await this.readPod(handle));
    if (!pod) return;
    const startTime = pod.status?.startTime;
    if (startTime === undefined) throw new Error(`pod ${handle} has no start time to count a deadline from`);
    // The watch's objects are JSON as sent (a string), the API client's are parsed (a Date).
    const seconds = claimDeadlineSeconds(new Date(startTime).getTime(), expiresAt, this.config);
    const current = pod.spec?.activeDeadlineSeconds;
    if (current !== undefined && current <= seconds) return;
    await this.call(`set the deadline of pod ${handle}`, () =>
      this.core.patchNamespacedPod(
        { name: handle, namespace: this.namespace, body: { spec: { activeDeadlineSeconds: seconds } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ).catch((err: unknown) => {
      // 404: gone, it needs none. 422: the only field sent is in range, so the API refused to raise
      // a shorter deadline the watch had not brought yet, and that one stands.
      const code = apiCodeOf(err);
      if (code !== 404 && code !== 422) throw err;
    });
  }

  async ping(): Promise<void> {
    await this.call('read the version', () => this.version.getCode());
  }

  /** The cluster pulls images itself; one it cannot pull fails that pod's start (ImagePullBackOff). */
  async hasImage(): Promise<boolean> {
    return true;
  }

  /** The pod as the API has it now; undefined when there is none. */
  private async readPod(name: string): Promise<V1Pod | undefined> {
    return this.call(`read pod ${name}`, () =>
      this.core.readNamespacedPod({ name, namespace: this.namespace }),
    ).catch((err: unknown) => {
      if (apiCodeOf(err) !== 404) throw err;
      return undefined;
    });
  }

  private endpointOf(name: string, podIP: string): Endpoint {
    if (this.podProxy !== undefined) return podProxyEndpoint(this.podProxy, name);
    return { host: podIP, port: SANDBOXD_PORT };
  }

  /** Creates the type's NetworkPolicy, or replaces the one a previous run left. */
  private async applyNetworkPolicy(type: SandboxType): Promise<void> {
    const body = typeNetworkPolicy(type, this.deploymentId, this.config, this.serverNamespace);
    const name = body.metadata?.name ?? '';
    const namespace = this.namespace;
    await this.call(`create NetworkPolicy ${name}`, () =>
      this.networking.createNamespacedNetworkPolicy({ namespace, body }),
    ).catch((err: unknown) => {
      if (apiCodeOf(err) !== 409) throw err;
      return this.call(`replace NetworkPolicy ${name}`, () =>
        this.networking.replaceNamespacedNetworkPolicy({ name, namespace, body }),
      );
    });
    this.policies.add(name);
  }

  /** The pod's IP once it is Ready; throws as soon as it cannot be, or at the deadline. */
  private async readyAddress(name: string, timeoutMs: number): Promise<string> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const settled = (change: PodChange): PodStart | undefined => {
      const start = change === 'deleted' ? failed('Deleted', 'the pod was deleted') : podStart(change);
      return start.kind === 'pending' ? undefined : start;
    };
    const start = await this.pods.until(name, settled, deadline).catch(async (err: unknown) => {
      if (!deadline.aborted) throw err;
      // The watch may have been away: the pod's own status has the last word, and the reason.
      const pod = await this.call(
        `read pod ${name}`,
        () => this.core.readNamespacedPod({ name, namespace: this.namespace }),
        'SANDBOX_CREATE_FAILED',
      );
      return podStart(pod);
    });
    if (start.kind === 'ready') return start.podIP;
    if (start.kind === 'pending') {
      throw new ServiceError(
        'TIMEOUT',
        `pod ${name} was not ready within ${timeoutMs} ms (${start.reason})`,
        {
          pod: name,
          reason: start.reason,
        },
      );
    }
    throw new ServiceError(
      'SANDBOX_CREATE_FAILED',
      `pod ${name} cannot start: ${start.reason}: ${start.message}`,
      {
        pod: name,
        reason: start.reason,
      },
    );
  }

  /**
   * One API call. A refusal (an answer with a status) is a KubernetesRefusal with `refusal` as its
   * code, naming the API's reason; no answer at all, or 5xx, is DEPLOYER_UNAVAILABLE.
   */
  private async call<T>(
    what: string,
    request: () => Promise<T>,
    refusal: RefusalCode = 'UPSTREAM_ERROR',
  ): Promise<T> {
    try {
      return await request();
    } catch (err) {
      const code = apiCodeOf(err);
      if (code === undefined || code >= 500) {
        throw new ServiceError(
          'DEPLOYER_UNAVAILABLE',
          `the Kubernetes API server (${this.location}) cannot ${what}: ${messageOf(err)}`,
          { retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS },
          { cause: err },
        );
      }
      const status = statusBodySchema.safeParse(
        err instanceof ApiException ? statusBodyOf(err.body) : undefined,
      );
      const reason = (status.success && status.data.reason) || String(code);
      const message = (status.success && status.data.message) || messageOf(err);
      this.logger.debug({ what, code, reason }, 'the Kubernetes API refused a call');
      throw new KubernetesRefusal(
        refusal,
        code,
        reason,
        `the Kubernetes API refused to ${what}: ${reason}: ${message}`,
        err,
      );
    }
  }
}

/** The API server answered with an error status (4xx). */
export class KubernetesRefusal extends ServiceError {
  constructor(
    code: RefusalCode,
    readonly status: number,
    readonly reason: string,
    message: string,
    cause: unknown,
  ) {
    super(code, message, { status, reason }, { cause });
    this.name = 'KubernetesRefusal';
  }
}

/** The client hands an error answer's body over as its text: the Status JSON, unparsed. */
function statusBodyOf(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function failed(reason: string, message: string): PodStart {
  return { kind: 'failed', reason, message };
}

function summaryOf(pod: V1Pod): ContainerSummary {
  return {
    handle: pod.metadata?.name ?? '',
    sandboxId: labelOf(pod, 'sandboxId'),
    deploymentId: labelOf(pod, 'deployment'),
    replicaId: labelOf(pod, 'replica'),
    running: isRunning(pod),
  };
}

function isRunning(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;
}

function apiCodeOf(err: unknown): number | undefined {
  if (err instanceof KubernetesRefusal) return err.status;
  if (err instanceof ApiException) return err.code;
  return undefined;
}

/** The namespace of the pod the server runs in, when it runs in a cluster. */
function inClusterNamespace(): string | undefined {
  if (!process.env.KUBERNETES_SERVICE_HOST || !existsSync(IN_CLUSTER_NAMESPACE)) return undefined;
  return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || undefined;
}

/** KUBECONFIG_PATH; else the pod's service account in a cluster; else ~/.kube/config (or $KUBECONFIG). */
function loadKubeConfig(config: Config): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (config.KUBECONFIG_PATH !== undefined) kubeConfig.loadFromFile(config.KUBECONFIG_PATH);
  else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
