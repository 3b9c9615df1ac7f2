/**
 * What both Kubernetes deployers share (the bare-pod one, kubernetes.ts, and the agent-sandbox
 * one, kubernetes-agent-sandbox.ts), whatever object a sandbox is there: the clients and the
 * kubeconfig, the checks at start (types that would run with less isolation than they ask for,
 * the RuntimeClass), the NetworkPolicy per type, the watch over the deployment's sandbox objects
 * with `list` answered from its cache, how sandboxd is reached (the pod IP, or the API server's
 * pod proxy with K8S_ACCESS=proxy), and /readyz's check of the API server.
 *
 * Workspaces live in the pod (an emptyDir), so there is no host storage and no host port.
 */
import {
  type KubeConfig,
  type KubernetesObject,
  NetworkingV1Api,
  NodeV1Api,
  VersionApi,
} from '@kubernetes/client-node';
import { SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { type Config, deploymentIdOf } from '../config/schema.js';
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
import { inClusterNamespace, kubeCall, type RefusalCode, unless } from './kubernetes-api.js';
import { labelOf, typeNetworkPolicy, unsupportedBy } from './kubernetes-objects.js';
import { kubeProxyTransport, type PodProxy, podProxyEndpoint, podProxyOf } from './kubernetes-proxy.js';
import type { ObjectWatch } from './kubernetes-watch.js';

export interface KubernetesDeployerOptions {
  config: Config;
  logger: Logger;
  /** Default: loadKubeConfig(config). */
  kubeConfig?: KubeConfig;
}

export abstract class KubernetesBackend<T extends KubernetesObject> implements Deployer {
  abstract readonly kind: string;
  readonly location: string;
  protected readonly config: Config;
  protected readonly namespace: string;
  protected readonly deploymentId: string;
  protected readonly logger: Logger;
  /** The deployment's sandbox objects (pods, or SandboxClaims), one per sandbox, named by its handle. */
  protected abstract readonly objects: ObjectWatch<T>;
  /** Where the server's pods run, the only ones allowed to reach sandboxd. */
  private readonly serverNamespace: string;
  private readonly networking: NetworkingV1Api;
  private readonly nodes: NodeV1Api;
  private readonly version: VersionApi;
  /** The NetworkPolicies `prepare` applied, for teardown. */
  private readonly policies = new Set<string>();
  /** With K8S_ACCESS=proxy: where the pods' proxies are. */
  private readonly podProxy: PodProxy | undefined;
  readonly proxyTransport: ProxyTransportSource | undefined;

  constructor(options: { config: Config; logger: Logger; kubeConfig: KubeConfig }) {
    const { config, kubeConfig } = options;
    this.config = config;
    this.logger = options.logger;
    this.namespace = config.K8S_NAMESPACE;
    this.serverNamespace = config.K8S_SERVER_NAMESPACE ?? inClusterNamespace() ?? this.namespace;
    this.deploymentId = deploymentIdOf(config);
    this.location = `${kubeConfig.getCurrentCluster()?.server ?? 'no cluster'}, namespace ${this.namespace}`;
    if (config.K8S_ACCESS === 'proxy') {
      this.podProxy = podProxyOf(kubeConfig, this.namespace);
      this.proxyTransport = kubeProxyTransport(kubeConfig);
    }
    this.networking = kubeConfig.makeApiClient(NetworkingV1Api);
    this.nodes = kubeConfig.makeApiClient(NodeV1Api);
    this.version = kubeConfig.makeApiClient(VersionApi);
  }

  abstract create(spec: CreateSpec): Promise<DeployedSandbox>;
  abstract destroy(handle: string): Promise<void>;
  abstract bindExpiry(handle: string, expiresAt: number): Promise<void>;
  /** Throws, saying what is missing, when the namespace's sandbox objects cannot be used. */
  protected abstract checkAccess(): Promise<void>;
  /** The deployment's sandbox objects, from the API. */
  protected abstract listFromApi(deploymentId: string): Promise<readonly T[]>;
  /** Sandbox object `name` as the API has it now; undefined when there is none. */
  protected abstract read(name: string): Promise<T | undefined>;
  /** Whether the sandbox object stands for a running sandbox. */
  protected abstract isRunning(object: T): boolean;

  /**
   * Refuses types that would run with less isolation here than they ask for, checks that the
   * namespace can be used and the RuntimeClass exists, applies the NetworkPolicies and starts the
   * watch.
   */
  async prepare(types: readonly SandboxType[]): Promise<void> {
    for (const type of types) {
      const problem = unsupportedBy(type, this.config);
      if (problem) throw new Error(`sandbox type "${type.name}" cannot run on Kubernetes: it ${problem}`);
    }
    await this.checkAccess();
    const runtimeClass = this.config.K8S_RUNTIME_CLASS;
    if (runtimeClass !== undefined) {
      await this.call(`read RuntimeClass ${runtimeClass}`, () =>
        this.nodes.readRuntimeClass({ name: runtimeClass }),
      ).catch((err: unknown) => {
        unless([404], undefined)(err);
        throw new Error(`K8S_RUNTIME_CLASS=${runtimeClass}: the cluster has no such RuntimeClass`);
      });
    }
    if (this.config.K8S_NETWORK_POLICY) {
      for (const type of types) await this.applyNetworkPolicy(type);
    }
    await this.objects.start();
  }

  async teardown(): Promise<void> {
    await this.objects.stop();
    for (const name of this.policies) {
      await this.call(`delete NetworkPolicy ${name}`, () =>
        this.networking.deleteNamespacedNetworkPolicy({ name, namespace: this.namespace }),
      ).catch(unless([404], undefined));
      this.policies.delete(name);
    }
  }

  needsHostPort(): boolean {
    return false;
  }

  /** The storage is the pod's own emptyDir. */
  async provideWorkspace(): Promise<void> {}

  async releaseWorkspace(): Promise<void> {}

  async workspaceIds(): Promise<string[]> {
    return [];
  }

  /**
   * From the watch's cache while it is open (it holds this deployment's objects only), else from
   * the API. The cache has every object this replica created (create waits for it through the
   * watch), but may lag one another replica just made ready, or miss its ADDED while the watch
   * reconnects: an `expected` object the cache does not show running is read from the API before
   * it counts as gone.
   */
  async list(deploymentId: string, expected: readonly string[] = []): Promise<ContainerSummary[]> {
    const cached = deploymentId === this.deploymentId ? this.objects.cached() : undefined;
    if (cached === undefined) return (await this.listFromApi(deploymentId)).map((o) => this.summaryOf(o));
    const byName = new Map(cached.map((object) => [object.metadata?.name ?? '', object]));
    for (const name of expected) {
      const seen = byName.get(name);
      if (seen && this.isRunning(seen)) continue;
      const object = await this.read(name);
      if (object) byName.set(name, object);
      else byName.delete(name);
    }
    return [...byName.values()].map((object) => this.summaryOf(object));
  }

  async ping(): Promise<void> {
    await this.call('read the version', () => this.version.getCode());
  }

  /** The cluster pulls images itself; one it cannot pull fails that pod's start (ImagePullBackOff). */
  async hasImage(): Promise<boolean> {
    return true;
  }

  /** sandboxd of pod `podName` at `podIP`. */
  protected endpointOf(podName: string, podIP: string): Endpoint {
    if (this.podProxy !== undefined) return podProxyEndpoint(this.podProxy, podName);
    return { host: podIP, port: SANDBOXD_PORT };
  }

  /** One API call (kubeCall) against this deployer's API server. */
  protected call<R>(what: string, request: () => Promise<R>, refusal?: RefusalCode): Promise<R> {
    return kubeCall({ location: this.location, logger: this.logger }, what, request, refusal);
  }

  private summaryOf(object: T): ContainerSummary {
    return {
      handle: object.metadata?.name ?? '',
      sandboxId: labelOf(object, 'sandboxId'),
      deploymentId: labelOf(object, 'deployment'),
      replicaId: labelOf(object, 'replica'),
      running: this.isRunning(object),
    };
  }

  /** Creates the type's NetworkPolicy, or replaces the one a previous run left. */
  private async applyNetworkPolicy(type: SandboxType): Promise<void> {
    const body = typeNetworkPolicy(type, this.deploymentId, this.config, this.serverNamespace);
    const name = body.metadata?.name ?? '';
    const namespace = this.namespace;
    await this.call(`create NetworkPolicy ${name}`, () =>
      this.networking.createNamespacedNetworkPolicy({ namespace, body }),
    ).catch((err: unknown) => {
      unless([409], undefined)(err);
      return this.call(`replace NetworkPolicy ${name}`, () =>
        this.networking.replaceNamespacedNetworkPolicy({ name, namespace, body }),
      );
    });
    this.policies.add(name);
  }
}
