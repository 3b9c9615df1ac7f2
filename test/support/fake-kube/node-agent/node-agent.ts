/**
 * The fake node's agent (scheduler and kubelet in one): a runner per pod stored, real Docker
 * containers on a bridge network of the instance's own (`fakekube-<id>`, masquerading off, so
 * pods reach nothing beyond this machine), container exits from one Docker event stream, and the
 * PodRuntime the API deletes and reads logs through.
 */
import type Dockerode from 'dockerode';
import { FAKE_KUBE_LABEL, instanceLabels } from '../docker-labels.js';
import type { PodRuntime } from '../pod-api.js';
import type { Pod } from '../pod-schema.js';
import type { ResourceStore } from '../resource-store.js';
import { ContainerExits } from './docker-events.js';
import { PodAddresses } from './pod-addresses.js';
import { PodRunner } from './pod-runner.js';

export interface NodeAgentOptions {
  docker: Dockerode;
  pods: ResourceStore<Pod>;
  instanceId: string;
  nodeLabels: Readonly<Record<string, string>>;
  backoffInitialMs: number;
  backoffMaxMs: number;
  unroutablePodIPs: boolean;
}

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

export class NodeAgent implements PodRuntime {
  readonly networkName: string;
  private readonly runners = new Map<string, PodRunner>();
  /** Docker container id -> the runner of its pod. */
  private readonly byContainer = new Map<string, PodRunner>();
  private readonly addresses: PodAddresses;
  private readonly exits: ContainerExits;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: NodeAgentOptions) {
    this.networkName = `fakekube-${options.instanceId.slice(0, 8)}`;
    this.addresses = new PodAddresses(options.instanceId);
    this.exits = new ContainerExits(options.docker, options.instanceId, (id) =>
      this.byContainer.get(id)?.containerDied(),
    );
  }

  /** Makes the network and opens the event stream, then runs every pod stored from now on. */
  async start(): Promise<void> {
    await this.options.docker.createNetwork({
      Name: this.networkName,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: instanceLabels(this.options.instanceId),
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
    });
    await this.exits.open();
    this.unsubscribe = this.options.pods.subscribe((change) => {
      const key = keyOf(change.object.metadata.namespace, change.object.metadata.name);
      if (change.type === 'ADDED') {
        const runner = new PodRunner(
          {
            docker: this.options.docker,
            pods: this.options.pods,
            addresses: this.addresses,
            network: this.networkName,
            instanceId: this.options.instanceId,
            nodeLabels: this.options.nodeLabels,
            backoffInitialMs: this.options.backoffInitialMs,
            backoffMaxMs: this.options.backoffMaxMs,
            unroutablePodIPs: this.options.unroutablePodIPs,
            registerContainer: (id) => this.byContainer.set(id, runner),
          },
          change.object,
        );
        this.runners.set(key, runner);
        // After the ADDED event has gone out to every watch, as the scheduler comes later.
        setImmediate(() => runner.start());
      } else if (change.type === 'MODIFIED') {
        const seconds = change.object.spec.activeDeadlineSeconds;
        if (seconds !== change.previous?.spec.activeDeadlineSeconds)
          this.runners.get(key)?.deadlineChanged(seconds);
      } else if (change.type === 'DELETED') {
        const runner = this.runners.get(key);
        if (runner === undefined) return;
        this.runners.delete(key);
        runner.close();
        for (const [id, owner] of this.byContainer) if (owner === runner) this.byContainer.delete(id);
      }
    });
  }

  removeNow(pod: Pod): Promise<void> {
    return this.runnerOf(pod)?.removeNow() ?? Promise.resolve();
  }

  terminate(pod: Pod, graceSeconds: number): void {
    const runner = this.runnerOf(pod);
    if (runner === undefined) {
      this.options.pods.remove(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid);
      return;
    }
    runner.terminate(graceSeconds);
  }

  async logs(
    pod: Pod,
    options: { container?: string; tailLines?: number; timestamps: boolean },
  ): Promise<string> {
    const runner = this.runnerOf(pod);
    if (runner === undefined) return '';
    return runner.logs(options);
  }

  addressOf(pod: Pod): string | undefined {
    return this.runnerOf(pod)?.address;
  }

  /** The Docker container id of a pod's container, once created. */
  containerIdOf(namespace: string, name: string): string | undefined {
    return this.runners.get(keyOf(namespace, name))?.dockerContainerId;
  }

  /** Removes every container, the network and the address claims. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.exits.close();
    await Promise.all([...this.runners.values()].map((runner) => runner.removeNow().catch(() => undefined)));
    this.runners.clear();
    this.byContainer.clear();
    // Anything labelled with this instance that a runner lost track of goes too.
    const leftovers = await this.options.docker.listContainers({
      all: true,
      filters: { label: [`${FAKE_KUBE_LABEL}=${this.options.instanceId}`] },
    });
    await Promise.all(
      leftovers.map((c) =>
        this.options.docker
          .getContainer(c.Id)
          .remove({ force: true, v: true })
          .catch(() => undefined),
      ),
    );
    await this.options.docker
      .getNetwork(this.networkName)
      .remove()
      .catch((error: unknown) => {
        if ((error as { statusCode?: number }).statusCode !== 404) throw error;
      });
    this.addresses.releaseAll();
  }

  private runnerOf(pod: Pod): PodRunner | undefined {
    return this.runners.get(keyOf(pod.metadata.namespace, pod.metadata.name));
  }
}
