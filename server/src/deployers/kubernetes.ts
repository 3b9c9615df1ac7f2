/**
 * Sandboxes as pods on a Kubernetes cluster (CONTAINER_DEPLOYMENT=k8s, K8S_MODE=pods), one per
 * sandbox in K8S_NAMESPACE, built by kubernetes-objects.ts: locked down to the Pod Security profile
 * K8S_POD_SECURITY names, requests equal to limits, /workspace and the writable paths on sized
 * emptyDirs, and a NetworkPolicy per type (kubernetes-base.ts has what this shares with
 * K8S_MODE=agent-sandbox).
 *
 * `create` returns once the pod is Ready (its readiness probe is sandboxd's /healthz), as one
 * shared watch reports it; it fails at once, deleting the pod, when the cluster refuses the pod
 * (admission, quota) or the pod cannot start (image pull, crash, config), and at the type's
 * readiness deadline when it is still not scheduled. Pods are deleted with no grace period. The
 * API server being away is DEPLOYER_UNAVAILABLE (503) to callers; warm sandboxes keep serving, as
 * they need no API call.
 *
 * A claimed pod gets the claim's hard expiry, plus a grace, as its activeDeadlineSeconds: the
 * kubelet ends it if no reaper does.
 */
import { CoreV1Api, PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { ServiceError } from '../errors.js';
import type { CreateSpec, DeployedSandbox } from './deployer.js';
import { loadKubeConfig, unless } from './kubernetes-api.js';
import { KubernetesBackend, type KubernetesDeployerOptions } from './kubernetes-base.js';
import {
  claimDeadlineSeconds,
  deploymentSelector,
  objectName,
  type PodStart,
  podStart,
  sandboxPod,
} from './kubernetes-objects.js';
import { type ObjectChange, ObjectWatch } from './kubernetes-watch.js';

export class KubernetesDeployer extends KubernetesBackend<V1Pod> {
  readonly kind = 'k8s';
  protected readonly objects: ObjectWatch<V1Pod>;
  private readonly core: CoreV1Api;

  constructor(options: KubernetesDeployerOptions) {
    const kubeConfig = options.kubeConfig ?? loadKubeConfig(options.config);
    super({ ...options, kubeConfig });
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    const { namespace } = this;
    const labelSelector = deploymentSelector(this.deploymentId);
    this.objects = new ObjectWatch<V1Pod>({
      kubeConfig,
      path: `/api/v1/namespaces/${namespace}/pods`,
      list: () => this.core.listNamespacedPod({ namespace, labelSelector }),
      namespace,
      labelSelector,
      what: 'sandbox pods',
      logger: options.logger,
    });
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
    ).catch(unless([404], undefined));
  }

  /**
   * Sets the pod's activeDeadlineSeconds to the claim's (claimDeadlineSeconds), with a merge patch.
   * The API allows setting it where there is none and lowering it, never raising it: a pod whose
   * deadline is already as short keeps it. A pod already gone needs none.
   */
  async bindExpiry(handle: string, expiresAt: number): Promise<void> {
    const pod = this.objects.get(handle) ?? (await this.read(handle));
    if (!pod) return;
    const startTime = pod.status?.startTime;
    if (startTime === undefined) throw new Error(`pod ${handle} has no start time to count a deadline from`);
    // The watch's objects are JSON as sent (a string), the API client's are parsed (a Date).
    const seconds = claimDeadlineSeconds(new Date(startTime).getTime(), expiresAt, this.config);
    const current = pod.spec?.activeDeadlineSeconds;
    if (current !== undefined && current <= seconds) return;
    // 404: gone, it needs none. 422: the only field sent is in range, so the API refused to raise
    // a shorter deadline the watch had not brought yet, and that one stands.
    await this.call(`set the deadline of pod ${handle}`, () =>
      this.core.patchNamespacedPod(
        { name: handle, namespace: this.namespace, body: { spec: { activeDeadlineSeconds: seconds } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ).catch(unless([404, 422], undefined));
  }

  protected async checkAccess(): Promise<void> {
    await this.call('list pods', () => this.core.listNamespacedPod({ namespace: this.namespace, limit: 1 }));
  }

  protected async listFromApi(deploymentId: string): Promise<readonly V1Pod[]> {
    const pods = await this.call('list pods', () =>
      this.core.listNamespacedPod({
        namespace: this.namespace,
        labelSelector: deploymentSelector(deploymentId),
      }),
    );
    return pods.items;
  }

  protected read(name: string): Promise<V1Pod | undefined> {
    return this.call(`read pod ${name}`, () =>
      this.core.readNamespacedPod({ name, namespace: this.namespace }),
    ).catch(unless([404], undefined));
  }

  protected isRunning(pod: V1Pod): boolean {
    return pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;
  }

  /** The pod's IP once it is Ready; throws as soon as it cannot be, or at the deadline. */
  private async readyAddress(name: string, timeoutMs: number): Promise<string> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const settled = (change: ObjectChange<V1Pod>): PodStart | undefined => {
      const start =
        change === 'deleted'
          ? ({ kind: 'failed', reason: 'Deleted', message: 'the pod was deleted' } as const)
          : podStart(change);
      return start.kind === 'pending' ? undefined : start;
    };
    const start = await this.objects.until(name, settled, deadline).catch(async (err: unknown) => {
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
}
