/**
 * The objects of kubernetes-sigs/agent-sandbox (https://github.com/kubernetes-sigs/agent-sandbox,
 * API v1beta1, the storage version since its v1alpha1 -> v1beta1 move) that K8S_MODE=agent-sandbox
 * makes, as plain data, and what a SandboxClaim's status says about its sandbox:
 *
 * - per sandbox type a SandboxTemplate (`spec.podTemplate`: the same locked-down pod as a bare
 *   pod, sandboxPodSpec) and a SandboxWarmPool (`spec.replicas` ready Sandboxes made from
 *   `spec.sandboxTemplateRef`), both named like the type's NetworkPolicy;
 * - per sandbox a SandboxClaim (`spec.warmPoolRef`), which the controller binds to a Ready warm
 *   Sandbox (or to a new one from the pool's template), reporting it in `status.sandbox.name`
 *   (also the pod's name) and `status.sandbox.podIPs`, its Ready condition mirroring the Sandbox's.
 *
 * The template is shared by every sandbox of the type, so its pods cannot each boot with their own
 * token: they get the type's shared boot token (SharedBootTokens), which the server's /init
 * replaces with the sandbox's own when it binds a caller. The template's network policy is left
 * Unmanaged: the server applies its own per type, which selects the template's pod labels.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import { type CreateSpec, MANAGED_BY_VALUE, sandboxEnv } from './deployer.js';
import { labelled, objectName, reaperGraceMs, sandboxLabels, sandboxPodSpec } from './kubernetes-objects.js';

/** A custom resource as CustomObjectsApi addresses it. */
export interface CustomResource {
  group: string;
  version: string;
  plural: string;
}

export const SANDBOX_CLAIMS: CustomResource = {
  group: 'extensions.agents.x-k8s.io',
  version: 'v1beta1',
  plural: 'sandboxclaims',
};
export const SANDBOX_TEMPLATES: CustomResource = {
  group: 'extensions.agents.x-k8s.io',
  version: 'v1beta1',
  plural: 'sandboxtemplates',
};
export const SANDBOX_WARM_POOLS: CustomResource = {
  group: 'extensions.agents.x-k8s.io',
  version: 'v1beta1',
  plural: 'sandboxwarmpools',
};

/** The collection path of `resource` in `namespace`, as the API server serves it. */
export function resourcePath(resource: CustomResource, namespace: string): string {
  return `/apis/${resource.group}/${resource.version}/namespaces/${namespace}/${resource.plural}`;
}

/** The name of a type's SandboxTemplate and SandboxWarmPool. */
export function typeObjectName(deploymentId: string, type: SandboxType): string {
  return objectName(`${deploymentId}-${type.name}`);
}

/** Labels of a type's objects and of its pods (which the type's NetworkPolicy selects). */
function typeLabels(deploymentId: string, type: SandboxType) {
  return labelled({ managedBy: MANAGED_BY_VALUE, deployment: deploymentId, type: type.name });
}

/**
 * The type's SandboxTemplate. Its pods are deleted at once (no grace), as bare pods are; the
 * controller's own secure defaults (no service account token, public DNS) apply only to a
 * managed network policy, and the pod spec has the first already.
 */
export function sandboxTemplate(
  type: SandboxType,
  options: { deploymentId: string; image: string; bootToken: string },
  config: Config,
) {
  const { labels, annotations } = typeLabels(options.deploymentId, type);
  const env = sandboxEnv({ type, bootToken: options.bootToken }, config);
  return {
    apiVersion: `${SANDBOX_TEMPLATES.group}/${SANDBOX_TEMPLATES.version}`,
    kind: 'SandboxTemplate',
    metadata: { name: typeObjectName(options.deploymentId, type), labels, annotations },
    spec: {
      podTemplate: {
        metadata: { labels, annotations },
        spec: { ...sandboxPodSpec(type, options.image, env, config), terminationGracePeriodSeconds: 0 },
      },
      networkPolicyManagement: 'Unmanaged',
      envVarsInjectionPolicy: 'Disallowed',
    },
  };
}

/** The type's SandboxWarmPool: `replicas` ready sandboxes from its template. */
export function sandboxWarmPool(type: SandboxType, deploymentId: string, replicas: number) {
  const { labels, annotations } = typeLabels(deploymentId, type);
  const name = typeObjectName(deploymentId, type);
  return {
    apiVersion: `${SANDBOX_WARM_POOLS.group}/${SANDBOX_WARM_POOLS.version}`,
    kind: 'SandboxWarmPool',
    metadata: { name, labels, annotations },
    spec: { replicas, sandboxTemplateRef: { name } },
  };
}

/** The SandboxClaim of one sandbox, labelled as a bare pod would be, against its type's pool. */
export function sandboxClaim(spec: CreateSpec, name: string) {
  const { labels, annotations } = sandboxLabels(spec);
  return {
    apiVersion: `${SANDBOX_CLAIMS.group}/${SANDBOX_CLAIMS.version}`,
    kind: 'SandboxClaim',
    metadata: { name, labels, annotations },
    spec: { warmPoolRef: { name: typeObjectName(spec.deploymentId, spec.type) } },
  };
}

/** The shared boot token's scope of a type's template: one per deployment and type. */
export function bootTokenScope(deploymentId: string, type: SandboxType): string {
  return `agent-sandbox:${deploymentId}:${type.name}`;
}

const conditionSchema = z.looseObject({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
});

/** A SandboxClaim as the API (or a watch event) hands it over; its status is read by claimStart. */
export interface SandboxClaim extends KubernetesObject {
  status?: unknown;
}

/** The parts of a claim's status this deployer reads. */
const claimStatusSchema = z.looseObject({
  conditions: z.array(conditionSchema).optional(),
  sandbox: z.looseObject({ name: z.string().optional(), podIPs: z.array(z.string()).optional() }).optional(),
});

/** A claim is any object here: claimStart reads its status defensively, as watch events are unparsed. */
export const sandboxClaimSchema = z.custom<SandboxClaim>(
  (value) => typeof value === 'object' && value !== null,
);
export const sandboxClaimListSchema = z.looseObject({
  metadata: z.looseObject({ resourceVersion: z.string().optional() }).optional(),
  items: z.array(sandboxClaimSchema),
});

/**
 * Ready=False reasons of a claim that the controller does not get out of by itself: the pool or
 * template is missing, the claim is invalid for it, or it expired.
 */
const HOPELESS_REASONS = new Set([
  'TemplateNotFound',
  'WarmPoolNotFound',
  'InvalidMetadata',
  'EnvVarsInjectionRejected',
  'VolumeClaimTemplatesError',
  'ClaimExpired',
  'SandboxExpired',
]);

export type ClaimStart =
  | { kind: 'ready'; sandbox: string; podIP: string }
  | { kind: 'pending'; reason: string }
  | { kind: 'failed'; reason: string; message: string };

/** Where a claim's sandbox stands, from the claim's status as the controller reports it. */
export function claimStart(claim: SandboxClaim): ClaimStart {
  if (claim.metadata?.deletionTimestamp) {
    return { kind: 'failed', reason: 'Deleted', message: 'the claim is being deleted' };
  }
  // Watch events hand the object over unparsed: a status of another shape reads as none yet.
  const status = claimStatusSchema.safeParse(claim.status ?? {}).data;
  const conditions = status?.conditions ?? [];
  const condition = (type: string) => conditions.find((c) => c.type === type);
  const finished = condition('Finished');
  if (finished?.status === 'True') {
    const reason = finished.reason ?? 'Finished';
    return { kind: 'failed', reason, message: finished.message ?? 'the sandbox pod ended' };
  }
  const ready = condition('Ready');
  const sandbox = status?.sandbox;
  const podIP = sandbox?.podIPs?.[0];
  if (ready?.status === 'True' && sandbox?.name && podIP)
    return { kind: 'ready', sandbox: sandbox.name, podIP };
  if (ready?.status === 'False' && ready.reason !== undefined && HOPELESS_REASONS.has(ready.reason)) {
    return { kind: 'failed', reason: ready.reason, message: ready.message ?? ready.reason };
  }
  const reason = ready?.reason ?? 'Pending';
  return { kind: 'pending', reason: ready?.message ? `${reason}: ${ready.message}` : reason };
}

/**
 * The claim's `spec.lifecycle.shutdownTime` (RFC 3339) for a hard expiry at `expiresAt` (ms): the
 * controller deletes the claim, and so its sandbox, then, if no reaper did within the grace.
 */
export function claimShutdownTime(
  expiresAt: number,
  config: Pick<Config, 'MAINTENANCE_INTERVAL_MS' | 'LEADER_LEASE_MS'>,
): string {
  return `${new Date(expiresAt + reaperGraceMs(config)).toISOString().slice(0, 19)}Z`;
}
