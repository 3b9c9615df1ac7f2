/**
 * PATCH of a pod, as the apiserver's patch handler and the pod strategy's update do it, for the
 * patch types and fields the fake models. The patch is a JSON merge patch (RFC 7386), or a
 * strategic merge patch, which merges the fields modelled here (maps and scalars) the same way;
 * it is applied to the stored pod, and the result must pass ValidatePodUpdate: the name and
 * namespace are the URL's (400), uid and creationTimestamp are immutable, a resourceVersion in the
 * patch must be the current one (409), labels and annotations may change, and the spec may change
 * only in activeDeadlineSeconds, which may be set where there is none or lowered, never raised or
 * removed (422 Invalid). Status and the other server-owned metadata stay as stored.
 *
 * Not modelled: JSON patches and apply patches (415), the other mutable pod fields (container
 * images, added tolerations: refused as any other spec change), strategic merge's list merging by
 * key and its `$patch` directives.
 */
import {
  badRequest,
  conflict,
  type FieldError,
  fieldError,
  invalid,
  PODS,
  unsupportedMediaType,
} from './api-status.js';
import { type Pod, podSchema } from './pod-schema.js';
import { validatePod } from './pod-validation.js';
import { parseJsonBody } from './request-input.js';

const MERGE_PATCH_TYPES = ['application/merge-patch+json', 'application/strategic-merge-patch+json'];
const MAX_INT32 = 2147483647;
/** ValidatePodUpdate's words for a spec change it does not allow. */
const SPEC_IMMUTABLE =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** What a patch changes in a stored pod. */
export interface PodPatch {
  labels: Record<string, string> | undefined;
  annotations: Record<string, string> | undefined;
  activeDeadlineSeconds: number | undefined;
}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** RFC 7386: objects merge key by key, null removes a key, anything else replaces. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const merged: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = mergePatch(merged[key], value);
  }
  return merged;
}

/** JSON with object keys sorted, so that two objects compare equal whatever their key order. */
function canonical(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (!isObject(v)) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((key) => [key, sorted(v[key])]),
    );
  };
  return JSON.stringify(sorted(value)) ?? 'undefined';
}

function withoutDeadline(spec: unknown): unknown {
  if (!isObject(spec)) return spec;
  const { activeDeadlineSeconds, ...rest } = spec;
  return activeDeadlineSeconds === undefined ? spec : rest;
}

/** 415 unless the Content-Type is a patch type the fake applies. */
export function checkPatchType(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!MERGE_PATCH_TYPES.includes(type)) throw unsupportedMediaType(MERGE_PATCH_TYPES);
}

/** ValidatePodUpdate on activeDeadlineSeconds: set when there is none, or lowered. */
function deadlineErrors(previous: number | undefined, next: number | undefined): FieldError[] {
  const field = 'spec.activeDeadlineSeconds';
  if (next === undefined) {
    return previous === undefined
      ? []
      : [fieldError.invalid(field, null, 'must not update from a positive integer to nil value')];
  }
  if (next < 0 || next > MAX_INT32) {
    return [fieldError.invalid(field, next, `must be between 0 and ${MAX_INT32}, inclusive`)];
  }
  if (previous !== undefined && next > previous) {
    return [fieldError.invalid(field, next, 'must be less than or equal to previous value')];
  }
  return [];
}

/** The change `body` makes to `current`, or the ApiError the apiserver answers. */
export function podPatchOf(current: Pod, body: Buffer | undefined): PodPatch {
  const patch = parseJsonBody(body);
  if (!isObject(patch)) {
    throw badRequest('json: cannot unmarshal the patch into Go value of type map[string]interface {}');
  }
  const merged = mergePatch(current, patch) as JsonObject;
  const decoded = podSchema.safeParse(merged);
  if (!decoded.success) {
    const issue = decoded.error.issues[0];
    throw badRequest(
      `Pod in version "v1" cannot be handled as a Pod: json: ${issue?.message ?? 'invalid'} at ${issue?.path.join('.') ?? ''}`,
    );
  }
  const { metadata = {}, spec } = decoded.data;
  const { name } = current.metadata;
  if (metadata.name !== name) {
    throw badRequest(
      `the name of the object (${metadata.name ?? ''}) does not match the name on the URL (${name})`,
    );
  }
  if (metadata.namespace !== current.metadata.namespace) {
    throw badRequest(
      `the namespace of the object (${metadata.namespace ?? ''}) does not match the namespace on the URL (${current.metadata.namespace ?? ''})`,
    );
  }
  if (metadata.resourceVersion !== current.metadata.resourceVersion) {
    throw conflict(
      PODS,
      name,
      'the object has been modified; please apply your changes to the latest version and try again',
    );
  }

  const errors: FieldError[] = [];
  for (const field of ['uid', 'creationTimestamp'] as const) {
    if (metadata[field] !== current.metadata[field]) {
      errors.push(fieldError.invalid(`metadata.${field}`, metadata[field], 'field is immutable'));
    }
  }
  if (canonical(withoutDeadline(merged.spec)) !== canonical(withoutDeadline(current.spec))) {
    errors.push(fieldError.forbidden('spec', SPEC_IMMUTABLE));
  }
  const change: PodPatch = {
    labels: metadata.labels,
    annotations: metadata.annotations,
    activeDeadlineSeconds: spec?.activeDeadlineSeconds,
  };
  errors.push(...deadlineErrors(current.spec.activeDeadlineSeconds, change.activeDeadlineSeconds));
  // The rest of ValidatePodUpdate is pod validation of the new object (labels, the deadline's range).
  errors.push(...validatePod(applyPodPatch(structuredClone(current), change)));
  if (errors.length > 0) throw invalid('Pod', name, errors);
  return change;
}

/** Writes a checked patch into `pod` (a draft); a spec change moves the generation on. */
export function applyPodPatch(pod: Pod, change: PodPatch): Pod {
  for (const key of ['labels', 'annotations'] as const) {
    const value = change[key];
    if (value === undefined) delete pod.metadata[key];
    else pod.metadata[key] = value;
  }
  if (change.activeDeadlineSeconds !== pod.spec.activeDeadlineSeconds) {
    pod.metadata.generation = (pod.metadata.generation ?? 1) + 1;
    if (change.activeDeadlineSeconds === undefined) delete pod.spec.activeDeadlineSeconds;
    else pod.spec.activeDeadlineSeconds = change.activeDeadlineSeconds;
  }
  return pod;
}
