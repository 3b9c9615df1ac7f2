/**
 * The create path of a pod, in the apiserver's order: decode (400), the namespace exists
 * (NamespaceLifecycle, 404), RuntimeClass admission (403), name generation, defaulting and
 * validation (422), Pod Security admission (403), the quota refusal hook (403), then the caller
 * stores it (409 if the name is taken).
 */
import { badRequest, forbidden, invalid, NAMESPACES, notFound, PODS } from './api-status.js';
import type { Cluster } from './cluster.js';
import { dropNulls, generateName, newUid, type StoredMeta, timestamp } from './object-meta.js';
import { defaultPodSpec, qosClassOf } from './pod-defaults.js';
import { type Pod, podSchema } from './pod-schema.js';
import { podSecurityViolation } from './pod-security.js';
import { badQuantityOf, validatePod } from './pod-validation.js';
import { QUANTITY_SYNTAX_ERROR } from './quantity.js';

export interface CreateGate {
  /** The ResourceQuota-like refusal tests switch on: its message, or undefined to admit. */
  quotaRefusal: string | undefined;
}

function decode(raw: unknown, namespace: string): Pod {
  const cannot = (why: string) => badRequest(`Pod in version "v1" cannot be handled as a Pod: ${why}`);
  const parsed = podSchema.safeParse(dropNulls(raw));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw cannot(`json: ${issue?.message ?? 'invalid'} at ${issue?.path.join('.') ?? ''}`);
  }
  const input = parsed.data;
  if (input.kind !== undefined && input.kind !== 'Pod') throw cannot(`kind "${input.kind}" is not a Pod`);
  if (input.apiVersion !== undefined && input.apiVersion !== 'v1') {
    throw cannot(
      `the API version in the data (${input.apiVersion}) does not match the expected API version (v1)`,
    );
  }
  const metadata = input.metadata ?? {};
  if (metadata.namespace !== undefined && metadata.namespace !== '' && metadata.namespace !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
  const spec = { ...input.spec, containers: input.spec?.containers ?? [] };
  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    // Server-owned fields a client sent are replaced on create.
    metadata: {
      ...metadata,
      name: metadata.name ?? '',
      namespace,
      uid: '',
      resourceVersion: '',
      creationTimestamp: '',
    } as StoredMeta,
    spec,
    status: { phase: 'Pending' },
  };
  delete pod.metadata.deletionTimestamp;
  delete pod.metadata.deletionGracePeriodSeconds;
  const badQuantity = badQuantityOf(pod);
  if (badQuantity !== undefined) throw cannot(QUANTITY_SYNTAX_ERROR);
  return pod;
}

/** The pod to store (everything but resourceVersion set), or the ApiError the apiserver would answer. */
export function admitPod(rawBody: unknown, namespace: string, cluster: Cluster, gate: CreateGate): Pod {
  if (!cluster.namespaces.has(namespace)) throw notFound(NAMESPACES, namespace);
  const pod = decode(rawBody, namespace);

  const runtimeClass = pod.spec.runtimeClassName;
  if (runtimeClass !== undefined && runtimeClass !== '' && !cluster.runtimeClasses.has(runtimeClass)) {
    throw forbidden(PODS, pod.metadata.name, `pod rejected: RuntimeClass "${runtimeClass}" not found`);
  }

  if (pod.metadata.name === '' && pod.metadata.generateName)
    pod.metadata.name = generateName(pod.metadata.generateName);
  pod.metadata.uid = newUid();
  pod.metadata.creationTimestamp = timestamp();
  pod.metadata.generation = 1;
  defaultPodSpec(pod.spec);
  const errors = validatePod(pod);
  if (errors.length > 0) throw invalid('Pod', pod.metadata.name, errors);
  pod.status = { phase: 'Pending', qosClass: qosClassOf(pod.spec.containers) };

  const violation = podSecurityViolation(cluster.podSecurityOf(namespace), pod);
  if (violation !== undefined) throw forbidden(PODS, pod.metadata.name, violation);
  if (gate.quotaRefusal !== undefined) throw forbidden(PODS, pod.metadata.name, gate.quotaRefusal);
  return pod;
}
