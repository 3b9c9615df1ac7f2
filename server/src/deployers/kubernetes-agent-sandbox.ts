/**
 * Sandboxes as kubernetes-sigs/agent-sandbox objects (CONTAINER_DEPLOYMENT=k8s,
 * K8S_MODE=agent-sandbox), for clusters that already run its controller: at start the server
 * applies per type a SandboxTemplate (the same locked-down pod as K8S_MODE=pods) and a
 * SandboxWarmPool of K8S_WARM_POOL_REPLICAS (default POOL_SIZE) ready sandboxes; each sandbox of
 * the server is one SandboxClaim against its type's pool, which the controller binds to a ready
 * warm Sandbox (the pool then makes another) or to a new one. The handle is the claim's name;
 * deleting the claim deletes its Sandbox and pod (owner references). The objects are reached
 * through CustomObjectsApi; a cluster that does not serve the CRDs fails the start, saying so.
 *
 * The server keeps its own pool (POOL_SIZE records, each a bound claim, sandboxd checked and
 * warmed up) above the SandboxWarmPool: an acquire then stays one atomic claim in the state store
 * plus /init, with no API call and no controller round trip, and keeps working while the API
 * server is away; refilling that pool adopts a ready warm sandbox instead of starting a pod.
 *
 * Boot tokens: every pod of a template boots with the type's shared token (SharedBootTokens,
 * derived from the token secret, never stored); `create` returns its nonce, the record keeps it,
 * and the acquire's /init replaces it with the sandbox's own, after which only that one is
 * accepted. Until then an unclaimed sandbox accepts the type's token, which is in the template, so
 * whoever may read SandboxTemplates, Sandboxes or pods in the namespace can call any unclaimed
 * sandbox of the type (in K8S_MODE=pods, only the one pod whose spec they read).
 *
 * A claimed sandbox's hard expiry, plus a grace, becomes its claim's lifecycle.shutdownTime with
 * policy Delete: the controller deletes it if no reaper does.
 */
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { z } from 'zod';
import { ServiceError } from '../errors.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { CreateSpec, DeployedSandbox, SharedBootTokens } from './deployer.js';
import {
  bootTokenScope,
  type ClaimStart,
  type CustomResource,
  claimShutdownTime,
  claimStart,
  resourcePath,
  SANDBOX_CLAIMS,
  SANDBOX_TEMPLATES,
  SANDBOX_WARM_POOLS,
  type SandboxClaim,
  sandboxClaim,
  sandboxClaimListSchema,
  sandboxClaimSchema,
  sandboxTemplate,
  sandboxWarmPool,
} from './kubernetes-agent-sandbox-objects.js';
import { apiCodeOf, loadKubeConfig, unless } from './kubernetes-api.js';
import { KubernetesBackend, type KubernetesDeployerOptions } from './kubernetes-base.js';
import { deploymentSelector, objectName } from './kubernetes-objects.js';
import { type ObjectChange, ObjectWatch } from './kubernetes-watch.js';

/** What `apply` reads of an object it replaces. */
const versionedSchema = z.looseObject({ metadata: z.looseObject({ resourceVersion: z.string() }) });

export interface AgentSandboxDeployerOptions extends KubernetesDeployerOptions {
  sharedBootTokens: SharedBootTokens;
  /** Names each type's image. */
  registry: Pick<SandboxTypeRegistry, 'imageFor'>;
}

export class AgentSandboxDeployer extends KubernetesBackend<SandboxClaim> {
  readonly kind = 'k8s';
  protected readonly objects: ObjectWatch<SandboxClaim>;
  private readonly custom: CustomObjectsApi;
  private readonly sharedBootTokens: SharedBootTokens;
  private readonly registry: Pick<SandboxTypeRegistry, 'imageFor'>;
  /** The names of the SandboxTemplates and SandboxWarmPools `prepare` applied, for teardown. */
  private readonly applied = new Set<string>();

  constructor(options: AgentSandboxDeployerOptions) {
    const kubeConfig: KubeConfig = options.kubeConfig ?? loadKubeConfig(options.config);
    super({ ...options, kubeConfig });
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.sharedBootTokens = options.sharedBootTokens;
    this.registry = options.registry;
    const { namespace } = this;
    const labelSelector = deploymentSelector(this.deploymentId);
    this.objects = new ObjectWatch<SandboxClaim>({
      kubeConfig,
      path: resourcePath(SANDBOX_CLAIMS, namespace),
      list: () => this.listClaims(labelSelector),
      namespace,
      labelSelector,
      what: 'sandbox claims',
      logger: options.logger,
    });
  }

  /** The checks and NetworkPolicies of every Kubernetes deployer, then each type's template and pool. */
  override async prepare(types: readonly SandboxType[]): Promise<void> {
    await super.prepare(types);
    for (const type of types) {
      const bootToken = this.sharedBootTokens(bootTokenScope(this.deploymentId, type)).token;
      const image = this.registry.imageFor(type);
      const template = sandboxTemplate(
        type,
        { deploymentId: this.deploymentId, image, bootToken },
        this.config,
      );
      await this.apply(SANDBOX_TEMPLATES, template);
      const replicas = this.config.K8S_WARM_POOL_REPLICAS ?? this.config.POOL_SIZE;
      await this.apply(SANDBOX_WARM_POOLS, sandboxWarmPool(type, this.deploymentId, replicas));
      this.applied.add(template.metadata.name);
    }
  }

  /** Deletes the pools (and so their unclaimed sandboxes) and templates, then what every deployer does. */
  override async teardown(): Promise<void> {
    const { namespace } = this;
    for (const name of this.applied) {
      await this.call(`delete SandboxWarmPool ${name}`, () =>
        this.custom.deleteNamespacedCustomObject({ ...SANDBOX_WARM_POOLS, namespace, name }),
      ).catch(unless([404], undefined));
      await this.call(`delete SandboxTemplate ${name}`, () =>
        this.custom.deleteNamespacedCustomObject({ ...SANDBOX_TEMPLATES, namespace, name }),
      ).catch(unless([404], undefined));
      this.applied.delete(name);
    }
    await super.teardown();
  }

  async create(spec: CreateSpec): Promise<DeployedSandbox> {
    const name = objectName(spec.name);
    await this.call(
      `create SandboxClaim ${name}`,
      () =>
        this.custom.createNamespacedCustomObject({
          ...SANDBOX_CLAIMS,
          namespace: this.namespace,
          body: sandboxClaim(spec, name),
        }),
      'SANDBOX_CREATE_FAILED',
    );
    try {
      const bound = await this.boundSandbox(name, spec.type.timeouts.readyMs);
      const { nonce } = this.sharedBootTokens(bootTokenScope(this.deploymentId, spec.type));
      return { handle: name, endpoint: this.endpointOf(bound.sandbox, bound.podIP), bootNonce: nonce };
    } catch (err) {
      // Nothing leaks: a claim that did not come up is deleted (its sandbox with it).
      await this.destroy(name).catch(() => undefined);
      throw err;
    }
  }

  async destroy(handle: string): Promise<void> {
    await this.call(`delete SandboxClaim ${handle}`, () =>
      this.custom.deleteNamespacedCustomObject({
        ...SANDBOX_CLAIMS,
        namespace: this.namespace,
        name: handle,
      }),
    ).catch(unless([404], undefined));
  }

  /** Sets the claim's shutdownTime (a merge patch); a claim already gone needs none. */
  async bindExpiry(handle: string, expiresAt: number): Promise<void> {
    const lifecycle = { shutdownTime: claimShutdownTime(expiresAt, this.config), shutdownPolicy: 'Delete' };
    await this.call(`set the shutdown time of SandboxClaim ${handle}`, () =>
      this.custom.patchNamespacedCustomObject(
        { ...SANDBOX_CLAIMS, namespace: this.namespace, name: handle, body: { spec: { lifecycle } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ).catch(unless([404], undefined));
  }

  /** The CRDs are served (a 404 says they are not installed) and the claims may be listed. */
  protected async checkAccess(): Promise<void> {
    for (const resource of [SANDBOX_CLAIMS, SANDBOX_TEMPLATES, SANDBOX_WARM_POOLS]) {
      await this.call(`list ${resource.plural}`, () =>
        this.custom.listNamespacedCustomObject({ ...resource, namespace: this.namespace, limit: 1 }),
      ).catch((err: unknown) => {
        if (apiCodeOf(err) !== 404) throw err;
        throw new Error(
          `K8S_MODE=agent-sandbox: the cluster does not serve ${resource.plural}.${resource.group}/${resource.version}; install kubernetes-sigs/agent-sandbox with its extensions (CRDs and controller), or set K8S_MODE=pods`,
        );
      });
    }
  }

  protected async listFromApi(deploymentId: string): Promise<readonly SandboxClaim[]> {
    return (await this.listClaims(deploymentSelector(deploymentId))).items;
  }

  protected async read(name: string): Promise<SandboxClaim | undefined> {
    const claim = await this.call(`read SandboxClaim ${name}`, () =>
      this.custom.getNamespacedCustomObject({ ...SANDBOX_CLAIMS, namespace: this.namespace, name }),
    ).catch(unless([404], undefined));
    return claim === undefined ? undefined : sandboxClaimSchema.parse(claim);
  }

  /** Bound to a sandbox that is Ready, and not being deleted. */
  protected isRunning(claim: SandboxClaim): boolean {
    return claimStart(claim).kind === 'ready';
  }

  private async listClaims(labelSelector: string): Promise<KubernetesListObject<SandboxClaim>> {
    const list = await this.call('list SandboxClaims', () =>
      this.custom.listNamespacedCustomObject({ ...SANDBOX_CLAIMS, namespace: this.namespace, labelSelector }),
    );
    return sandboxClaimListSchema.parse(list);
  }

  /** Creates the object, or replaces the one a previous run (or another replica) left. */
  private async apply(resource: CustomResource, body: { metadata: { name: string } }): Promise<void> {
    const { namespace } = this;
    const { name } = body.metadata;
    await this.call(`create ${resource.plural} ${name}`, () =>
      this.custom.createNamespacedCustomObject({ ...resource, namespace, body }),
    ).catch(async (err: unknown) => {
      unless([409], undefined)(err);
      const current = await this.call(`read ${resource.plural} ${name}`, () =>
        this.custom.getNamespacedCustomObject({ ...resource, namespace, name }),
      );
      // A custom resource is replaced only under its current resourceVersion.
      const { resourceVersion } = versionedSchema.parse(current).metadata;
      const replacement = { ...body, metadata: { ...body.metadata, resourceVersion } };
      return this.call(`replace ${resource.plural} ${name}`, () =>
        this.custom.replaceNamespacedCustomObject({ ...resource, namespace, name, body: replacement }),
      );
    });
  }

  /** The claim's sandbox and pod IP once it is Ready; throws as soon as it cannot be, or at the deadline. */
  private async boundSandbox(name: string, timeoutMs: number): Promise<{ sandbox: string; podIP: string }> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const settled = (change: ObjectChange<SandboxClaim>): ClaimStart | undefined => {
      const start =
        change === 'deleted'
          ? ({ kind: 'failed', reason: 'Deleted', message: 'the claim was deleted' } as const)
          : claimStart(change);
      return start.kind === 'pending' ? undefined : start;
    };
    const start = await this.objects.until(name, settled, deadline).catch(async (err: unknown) => {
      if (!deadline.aborted) throw err;
      // The watch may have been away: the claim's own status has the last word, and the reason.
      const claim = await this.read(name);
      return claim === undefined
        ? ({ kind: 'pending', reason: 'the claim is gone' } as const)
        : claimStart(claim);
    });
    if (start.kind === 'ready') return start;
    if (start.kind === 'pending') {
      throw new ServiceError(
        'TIMEOUT',
        `SandboxClaim ${name} was not bound to a ready sandbox within ${timeoutMs} ms (${start.reason})`,
        { claim: name, reason: start.reason },
      );
    }
    throw new ServiceError(
      'SANDBOX_CREATE_FAILED',
      `SandboxClaim ${name} cannot be bound: ${start.reason}: ${start.message}`,
      { claim: name, reason: start.reason },
    );
  }
}
