/**
 * The agent-sandbox controller as far as a client of its objects can tell (its Go source:
 * controllers/sandbox_controller.go, extensions/controllers/sandboxwarmpool_controller.go and
 * sandboxclaim_controller.go), plus the garbage collector for what they own. After every change
 * to its objects or pods it reconciles, in one synchronous pass (so two claims never adopt one
 * sandbox):
 *
 * - garbage collection: a Sandbox whose controller owner (pool or claim, by uid) is gone is
 *   deleted, and so is a pod whose owning Sandbox is gone (with the pod's own grace period);
 * - SandboxWarmPool: keeps `spec.replicas` (default 1) Sandboxes it owns, from the template
 *   `spec.sandboxTemplateRef` names (generateName `<pool>-`, label
 *   `agents.x-k8s.io/warm-pool-sandbox`), deleting the surplus; status replicas and readyReplicas;
 * - Sandbox: one pod of its name from `spec.podTemplate` (owned by it, admitted like any pod:
 *   validation and Pod Security), pod template labels kept on the pod; status podIPs, nodeName,
 *   Ready (True once the pod is Running and Ready with an IP: DependenciesReady; else False,
 *   DependenciesNotReady, or ReconcilerError when the pod is refused) and Finished (PodFailed,
 *   PodSucceeded);
 * - SandboxClaim: keeps the Sandbox its status names; else adopts one of the pool's Sandboxes, a
 *   Ready one first (ownership moves to the claim, the warm-pool label goes, the claim's uid label
 *   `agents.x-k8s.io/claim-uid` is added to the pod template), else makes one named like the
 *   claim from the pool's template; status.sandbox {name, podIPs} and the Sandbox's Ready
 *   condition mirrored; WarmPoolNotFound / TemplateNotFound when those are missing.
 *
 * Not modelled: lifecycle (shutdownTime and shutdownPolicy are stored, never acted on),
 * operatingMode Suspended, Services and serviceFQDN, volumeClaimTemplates, claim env and
 * additionalPodMetadata, the template's managed NetworkPolicy and secure DNS defaults, update
 * strategies of stale pool sandboxes, foreground deletion and finalizers, events, metrics.
 */
import { createHash } from 'node:crypto';
import {
  type AgentSandboxObject,
  type AgentSandboxStores,
  CLAIMS,
  type CustomKind,
  SANDBOXES,
  VERSION,
  WARM_POOLS,
} from './agent-sandbox-api.js';
import { ApiError } from './api-status.js';
import type { Cluster } from './cluster.js';
import { createdMeta, generateName, type StoredMeta, timestamp } from './object-meta.js';
import { admitPod, type CreateGate } from './pod-admission.js';
import { deletePod, gracePeriodFor, type PodRuntime } from './pod-api.js';
import type { Pod } from './pod-schema.js';
import type { ResourceStore } from './resource-store.js';

const WARM_POOL_LABEL = 'agents.x-k8s.io/warm-pool-sandbox';
const CLAIM_UID_LABEL = 'agents.x-k8s.io/claim-uid';
const NAME_HASH_LABEL = 'agents.x-k8s.io/sandbox-name-hash';
const LAUNCH_TYPE_LABEL = 'agents.x-k8s.io/launch-type';

interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

const hashOf = (name: string) => createHash('sha256').update(name).digest('hex').slice(0, 8);

function ownerOf(object: { metadata: StoredMeta }): OwnerReference | undefined {
  const refs = object.metadata.ownerReferences;
  return Array.isArray(refs) ? (refs as OwnerReference[]).find((ref) => ref.controller) : undefined;
}

function ownerRef(kind: CustomKind, owner: AgentSandboxObject): OwnerReference {
  return {
    apiVersion: `${kind.group}/${VERSION}`,
    kind: kind.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

const isOwnedBy = (object: { metadata: StoredMeta }, owner: AgentSandboxObject) =>
  ownerOf(object)?.uid === owner.metadata.uid;

function conditionsOf(object: AgentSandboxObject): Condition[] {
  const conditions = object.status?.conditions;
  return Array.isArray(conditions) ? (conditions as Condition[]) : [];
}

/** `conditions` with `next` set, its transition time kept while its status does not change. */
function setCondition(conditions: Condition[], next: Omit<Condition, 'lastTransitionTime'>): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous !== undefined && previous.status === next.status ? previous.lastTransitionTime : timestamp();
  return [...conditions.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }];
}

const isReady = (sandbox: AgentSandboxObject) =>
  conditionsOf(sandbox).some((c) => c.type === 'Ready' && c.status === 'True');
const podTemplateOf = (object: AgentSandboxObject) =>
  (object.spec.podTemplate ?? {}) as {
    metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: unknown;
  };

export class AgentSandboxController {
  private scheduled = false;
  private running: Promise<void> | undefined;
  private readonly unsubscribes: Array<() => void> = [];
  /** Pod refusals by sandbox uid, reported in its Ready condition. */
  private readonly refusals = new Map<string, string>();

  constructor(
    private readonly options: {
      stores: AgentSandboxStores;
      pods: ResourceStore<Pod>;
      cluster: Cluster;
      gate: CreateGate;
      runtime: PodRuntime;
    },
  ) {}

  start(): void {
    const { stores, pods } = this.options;
    for (const store of [stores.sandboxes, stores.claims, stores.templates, stores.warmPools]) {
      this.unsubscribes.push(store.subscribe(() => this.schedule()));
    }
    this.unsubscribes.push(pods.subscribe(() => this.schedule()));
  }

  async stop(): Promise<void> {
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    await this.running;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      // One pass at a time; changes made meanwhile schedule the next.
      this.running = (this.running ?? Promise.resolve()).then(() => this.reconcile()).catch(() => undefined);
    });
  }

  private async reconcile(): Promise<void> {
    await this.collectGarbage();
    for (const pool of this.options.stores.warmPools.list()) this.reconcilePool(pool);
    for (const claim of this.options.stores.claims.list()) this.reconcileClaim(claim);
    for (const sandbox of this.options.stores.sandboxes.list()) this.reconcileSandbox(sandbox);
  }

  private async collectGarbage(): Promise<void> {
    const { stores, pods } = this.options;
    const owners: Record<string, ResourceStore<AgentSandboxObject>> = {
      [WARM_POOLS.kind]: stores.warmPools,
      [CLAIMS.kind]: stores.claims,
      [SANDBOXES.kind]: stores.sandboxes,
    };
    const ownerGone = (object: { metadata: StoredMeta }) => {
      const owner = ownerOf(object);
      const store = owner === undefined ? undefined : owners[owner.kind];
      if (owner === undefined || store === undefined) return false;
      return store.get(object.metadata.namespace, owner.name)?.metadata.uid !== owner.uid;
    };
    for (const sandbox of stores.sandboxes.list(ownerGone)) {
      stores.sandboxes.remove(sandbox.metadata.namespace, sandbox.metadata.name, sandbox.metadata.uid);
    }
    for (const pod of pods.list((pod) => ownerGone(pod) && pod.metadata.deletionTimestamp === undefined)) {
      await deletePod(this.options, pod, gracePeriodFor(pod, {}));
    }
  }

  private reconcilePool(pool: AgentSandboxObject): void {
    const { sandboxes, templates, warmPools } = this.options.stores;
    const namespace = pool.metadata.namespace;
    const members = sandboxes.list((sandbox) => isOwnedBy(sandbox, pool));
    const desired = typeof pool.spec.replicas === 'number' ? pool.spec.replicas : 1;
    const templateName = (pool.spec.sandboxTemplateRef as { name?: string } | undefined)?.name ?? '';
    const template = templates.get(namespace, templateName);
    if (template !== undefined) {
      for (let count = members.length; count < desired; count++) {
        const name = generateName(`${pool.metadata.name}-`);
        sandboxes.create(
          this.sandboxFrom(template, name, namespace, ownerRef(WARM_POOLS, pool), {
            [WARM_POOL_LABEL]: hashOf(pool.metadata.name),
            [LAUNCH_TYPE_LABEL]: 'warm',
          }),
        );
      }
    }
    // The surplus goes, unready ones first.
    const surplus = [...members]
      .sort((a, b) => Number(isReady(a)) - Number(isReady(b)))
      .slice(0, Math.max(0, members.length - desired));
    for (const sandbox of surplus) sandboxes.remove(namespace, sandbox.metadata.name, sandbox.metadata.uid);
    const kept = members.filter((m) => !surplus.includes(m));
    warmPools.update(namespace, pool.metadata.name, (draft) => {
      draft.status = {
        replicas: kept.length,
        readyReplicas: kept.filter(isReady).length,
        selector: `${WARM_POOL_LABEL}=${hashOf(pool.metadata.name)}`,
      };
    });
  }

  private reconcileClaim(claim: AgentSandboxObject): void {
    const { sandboxes, templates, warmPools, claims } = this.options.stores;
    const namespace = claim.metadata.namespace;
    const boundName = (claim.status?.sandbox as { name?: string } | undefined)?.name;
    let sandbox = boundName === undefined ? undefined : sandboxes.get(namespace, boundName);
    if (sandbox !== undefined && !isOwnedBy(sandbox, claim)) sandbox = undefined;
    let failure: { reason: string; message: string } | undefined;
    if (sandbox === undefined && boundName === undefined) {
      const poolName = (claim.spec.warmPoolRef as { name?: string } | undefined)?.name ?? '';
      const pool = warmPools.get(namespace, poolName);
      const candidates =
        pool === undefined
          ? []
          : sandboxes.list((s) => isOwnedBy(s, pool) && s.metadata.labels?.[WARM_POOL_LABEL] !== undefined);
      const candidate = candidates.find(isReady) ?? candidates[0];
      const templateName = (pool?.spec.sandboxTemplateRef as { name?: string } | undefined)?.name ?? '';
      const template = templates.get(namespace, templateName);
      if (pool === undefined)
        failure = { reason: 'WarmPoolNotFound', message: `SandboxWarmPool "${poolName}" not found` };
      else if (candidate !== undefined) sandbox = this.adopt(candidate, claim);
      else if (template === undefined)
        failure = { reason: 'TemplateNotFound', message: `SandboxTemplate "${templateName}" not found` };
      else
        sandbox = sandboxes.create(
          this.sandboxFrom(template, claim.metadata.name, namespace, ownerRef(CLAIMS, claim), {
            [CLAIM_UID_LABEL]: claim.metadata.uid,
            [LAUNCH_TYPE_LABEL]: 'cold',
          }),
        );
    }
    const ready = sandbox === undefined ? undefined : conditionsOf(sandbox).find((c) => c.type === 'Ready');
    const finished =
      sandbox === undefined ? undefined : conditionsOf(sandbox).find((c) => c.type === 'Finished');
    claims.update(
      namespace,
      claim.metadata.name,
      (draft) => {
        let conditions = setCondition(conditionsOf(draft), {
          type: 'Ready',
          status: ready?.status ?? 'False',
          ...(failure ?? {
            reason: ready?.reason ?? (sandbox === undefined ? 'SandboxMissing' : 'SandboxNotReady'),
            message:
              ready?.message ?? (sandbox === undefined ? 'Sandbox does not exist' : 'Sandbox is not ready'),
          }),
        });
        conditions =
          finished === undefined
            ? conditions.filter((c) => c.type !== 'Finished')
            : setCondition(conditions, finished);
        draft.status = {
          conditions,
          sandbox:
            sandbox === undefined
              ? {}
              : {
                  name: sandbox.metadata.name,
                  ...(Array.isArray(sandbox.status?.podIPs) ? { podIPs: sandbox.status.podIPs } : {}),
                },
        };
      },
      claim.metadata.uid,
    );
  }

  /** Moves a pool's sandbox to the claim, as completeAdoption does. */
  private adopt(candidate: AgentSandboxObject, claim: AgentSandboxObject): AgentSandboxObject | undefined {
    return this.options.stores.sandboxes.update(
      candidate.metadata.namespace,
      candidate.metadata.name,
      (draft) => {
        const labels: Record<string, string> = { ...draft.metadata.labels, [LAUNCH_TYPE_LABEL]: 'warm' };
        delete labels[WARM_POOL_LABEL];
        draft.metadata.labels = labels;
        draft.metadata.ownerReferences = [ownerRef(CLAIMS, claim)];
        const template = podTemplateOf(draft);
        draft.spec.podTemplate = {
          ...template,
          metadata: {
            ...template.metadata,
            labels: { ...template.metadata?.labels, [CLAIM_UID_LABEL]: claim.metadata.uid },
          },
        };
      },
      candidate.metadata.uid,
    );
  }

  private reconcileSandbox(sandbox: AgentSandboxObject): void {
    const { pods, cluster, gate } = this.options;
    const namespace = sandbox.metadata.namespace ?? '';
    const name = sandbox.metadata.name;
    const template = podTemplateOf(sandbox);
    const labels = { ...template.metadata?.labels, [NAME_HASH_LABEL]: hashOf(name) };
    let pod = pods.get(namespace, name);
    if (pod === undefined && !this.refusals.has(sandbox.metadata.uid)) {
      try {
        const admitted = admitPod(
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              name,
              labels,
              annotations: template.metadata?.annotations,
              ownerReferences: [ownerRef(SANDBOXES, sandbox)],
            },
            spec: template.spec,
          },
          namespace,
          cluster,
          gate,
        );
        pod = pods.create(admitted);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        this.refusals.set(sandbox.metadata.uid, error.status.message ?? error.status.reason ?? 'refused');
      }
    } else if (
      pod !== undefined &&
      Object.entries(labels).some(([key, value]) => pod?.metadata.labels?.[key] !== value)
    ) {
      pod = pods.update(namespace, name, (draft) => {
        draft.metadata.labels = { ...draft.metadata.labels, ...labels };
      });
    }
    const refusal = this.refusals.get(sandbox.metadata.uid);
    const podReady =
      pod?.status.phase === 'Running' &&
      pod.status.podIP !== undefined &&
      (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    const state = pod?.status.containerStatuses?.[0]?.state;
    const waiting = state !== undefined && 'waiting' in state ? state.waiting : undefined;
    const phase = pod?.status.phase;
    this.options.stores.sandboxes.update(
      namespace,
      name,
      (draft) => {
        let conditions = setCondition(conditionsOf(draft), {
          type: 'Ready',
          status: podReady ? 'True' : 'False',
          ...(podReady
            ? { reason: 'DependenciesReady', message: 'Pod is Ready' }
            : refusal !== undefined
              ? { reason: 'ReconcilerError', message: `Error seen: ${refusal}` }
              : {
                  reason: 'DependenciesNotReady',
                  message: `Pod exists with phase: ${phase ?? 'none'}${waiting?.reason ? ` (${waiting.reason}: ${waiting.message ?? ''})` : ''}`,
                }),
        });
        conditions =
          phase === 'Failed' || phase === 'Succeeded'
            ? setCondition(conditions, {
                type: 'Finished',
                status: 'True',
                reason: `Pod${phase}`,
                message: `Pod ${phase}`,
              })
            : conditions.filter((c) => c.type !== 'Finished');
        draft.status = {
          conditions,
          selector: `${NAME_HASH_LABEL}=${hashOf(name)}`,
          ...(pod?.status.podIP ? { podIPs: [pod.status.podIP], nodeName: pod.spec.nodeName ?? '' } : {}),
        };
      },
      sandbox.metadata.uid,
    );
  }

  private sandboxFrom(
    template: AgentSandboxObject,
    name: string,
    namespace: string | undefined,
    owner: OwnerReference,
    labels: Record<string, string>,
  ): AgentSandboxObject {
    return {
      apiVersion: `${SANDBOXES.group}/${VERSION}`,
      kind: SANDBOXES.kind,
      metadata: {
        name,
        namespace,
        ...createdMeta(),
        labels,
        annotations: { 'agents.x-k8s.io/sandbox-template-ref': template.metadata.name },
        ownerReferences: [owner],
      },
      spec: { podTemplate: structuredClone(template.spec.podTemplate) },
    };
  }
}
