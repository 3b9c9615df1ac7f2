/**
 * core/v1 pods: create, get, list and watch (label and field selectors), patch (pod-update.ts),
 * delete with a grace period, the log subresource (no follow) and the proxy subresource.
 *
 * Delete follows the pod strategy: the grace period is DeleteOptions' (body, else query), else the
 * pod's terminationGracePeriodSeconds; 0 for a pod never scheduled or already finished; negative
 * means 1. Grace 0 removes the container, then the object (DELETED). Otherwise the object gets
 * deletionTimestamp (MODIFIED), the node agent stops the container within the grace period, and
 * the object goes (DELETED). A second delete can only shorten the grace period.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ApiRequest, Handler, Route } from './api-server.js';
import { alreadyExists, badRequest, conflict, notFound, PODS } from './api-status.js';
import type { Cluster } from './cluster.js';
import { collectionHandler } from './collection.js';
import type { SelectableFields } from './field-selector.js';
import { dropNulls, timestamp } from './object-meta.js';
import { admitPod, type CreateGate } from './pod-admission.js';
import { proxyToPod } from './pod-proxy.js';
import type { Pod } from './pod-schema.js';
import { applyPodPatch, checkPatchType, podPatchOf } from './pod-update.js';
import { parseJsonBody, queryFlag, queryInt } from './request-input.js';
import type { ResourceStore, ResourceVersionClock } from './resource-store.js';

/** What the API needs of the node agent. */
export interface PodRuntime {
  /** Kills and removes the pod's container (if any) now; resolves once it is gone. */
  removeNow(pod: Pod): Promise<void>;
  /** Stops the container within `graceSeconds`, then removes the pod object. */
  terminate(pod: Pod, graceSeconds: number): void;
  /** The container's output so far; throws a 400 ApiError when it has not started. */
  logs(pod: Pod, options: { container?: string; tailLines?: number; timestamps: boolean }): Promise<string>;
  /** Where the pod's ports answer (the proxy's way in), which status.podIP need not be. */
  addressOf(pod: Pod): string | undefined;
}

export interface PodApiContext {
  pods: ResourceStore<Pod>;
  clock: ResourceVersionClock;
  cluster: Cluster;
  runtime: PodRuntime;
  gate: CreateGate;
  bookmarkIntervalMs: number;
  openWatches: Set<ServerResponse>;
}

export const POD_FIELDS: SelectableFields<Pod> = {
  'metadata.name': (pod) => pod.metadata.name,
  'metadata.namespace': (pod) => pod.metadata.namespace ?? '',
  'spec.nodeName': (pod) => pod.spec.nodeName ?? '',
  'spec.restartPolicy': (pod) => pod.spec.restartPolicy ?? '',
  'spec.schedulerName': (pod) => pod.spec.schedulerName ?? '',
  'spec.serviceAccountName': (pod) => pod.spec.serviceAccountName ?? '',
  'spec.hostNetwork': (pod) => String(pod.spec.hostNetwork ?? false),
  'status.phase': (pod) => pod.status.phase,
  'status.podIP': (pod) => pod.status.podIP ?? '',
  'status.nominatedNodeName': () => '',
};

const deleteOptionsSchema = z.looseObject({
  gracePeriodSeconds: z.number().int().optional(),
  preconditions: z
    .looseObject({ uid: z.string().optional(), resourceVersion: z.string().optional() })
    .optional(),
});
type DeleteOptions = z.infer<typeof deleteOptionsSchema>;

async function deleteOptionsOf(request: ApiRequest): Promise<DeleteOptions> {
  const body = await request.body();
  if (body !== undefined) {
    const parsed = deleteOptionsSchema.safeParse(dropNulls(parseJsonBody(body)));
    if (!parsed.success)
      throw badRequest(`DeleteOptions cannot be decoded: ${parsed.error.issues[0]?.message ?? ''}`);
    return parsed.data;
  }
  const grace = queryInt(request.query, 'gracePeriodSeconds');
  return grace === undefined ? {} : { gracePeriodSeconds: grace };
}

export function gracePeriodFor(pod: Pod, options: DeleteOptions): number {
  let grace = options.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
  if (!pod.spec.nodeName) grace = 0;
  if (pod.status.phase === 'Failed' || pod.status.phase === 'Succeeded') grace = 0;
  return grace < 0 ? 1 : grace;
}

function checkPreconditions(pod: Pod, options: DeleteOptions): void {
  const { uid, resourceVersion } = options.preconditions ?? {};
  if (uid !== undefined && uid !== pod.metadata.uid) {
    throw conflict(
      PODS,
      pod.metadata.name,
      `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${pod.metadata.uid}`,
    );
  }
  if (resourceVersion !== undefined && resourceVersion !== pod.metadata.resourceVersion) {
    throw conflict(
      PODS,
      pod.metadata.name,
      `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${pod.metadata.resourceVersion}`,
    );
  }
}

/**
 * Deletes a pod with `grace` seconds (gracePeriodFor): 0 removes its container, then the object
 * (DELETED); otherwise the object gets its deletionTimestamp and the node agent stops the
 * container within the grace period. The pod as deleted, or undefined when it was already gone.
 */
export async function deletePod(
  ctx: Pick<PodApiContext, 'pods' | 'runtime'>,
  pod: Pod,
  grace: number,
): Promise<Pod | undefined> {
  const { namespace, name, uid } = pod.metadata;
  if (grace === 0) {
    await ctx.runtime.removeNow(pod);
    return ctx.pods.remove(namespace, name, uid) ?? pod;
  }
  const marked = ctx.pods.update(
    namespace,
    name,
    (draft) => {
      draft.metadata.deletionTimestamp = timestamp(new Date(Date.now() + grace * 1000));
      draft.metadata.deletionGracePeriodSeconds = grace;
    },
    uid,
  );
  if (marked !== undefined) ctx.runtime.terminate(marked, grace);
  return marked;
}

export function podRoutes(ctx: PodApiContext): Route[] {
  const requirePod = (namespace: string, name: string): Pod => {
    const pod = ctx.pods.get(namespace, name);
    if (pod === undefined) throw notFound(PODS, name);
    return pod;
  };

  const collection = {
    store: ctx.pods,
    clock: ctx.clock,
    kind: 'Pod',
    apiVersion: 'v1',
    fields: POD_FIELDS,
    bookmarkIntervalMs: ctx.bookmarkIntervalMs,
    openWatches: ctx.openWatches,
  };

  const create: Handler = async (request) => {
    const namespace = request.params.namespace ?? '';
    const pod = admitPod(parseJsonBody(await request.body()), namespace, ctx.cluster, ctx.gate);
    if (ctx.pods.has(namespace, pod.metadata.name)) throw alreadyExists(PODS, pod.metadata.name);
    return { status: 201, json: ctx.pods.create(pod) };
  };

  const remove: Handler = async (request) => {
    const namespace = request.params.namespace ?? '';
    const name = request.params.name ?? '';
    const options = await deleteOptionsOf(request);
    const pod = requirePod(namespace, name);
    checkPreconditions(pod, options);
    const grace = gracePeriodFor(pod, options);
    const terminating = pod.metadata.deletionTimestamp !== undefined;
    if (terminating && grace >= (pod.metadata.deletionGracePeriodSeconds ?? 0))
      return { status: 200, json: pod };
    const deleted = await deletePod(ctx, pod, grace);
    if (deleted === undefined) throw notFound(PODS, name);
    return { status: 200, json: deleted };
  };

  // The patch type is checked before the pod is looked up, as the patch handler does.
  const patch: Handler = async (request) => {
    checkPatchType(request.raw.headers['content-type']);
    const namespace = request.params.namespace ?? '';
    const name = request.params.name ?? '';
    const body = await request.body();
    const pod = requirePod(namespace, name);
    const change = podPatchOf(pod, body);
    const updated = ctx.pods.update(
      namespace,
      name,
      (draft) => applyPodPatch(draft, change),
      pod.metadata.uid,
    );
    if (updated === undefined) throw notFound(PODS, name);
    return { status: 200, json: updated };
  };

  const logs: Handler = async (request) => {
    const pod = requirePod(request.params.namespace ?? '', request.params.name ?? '');
    const container = request.query.get('container') ?? undefined;
    const tailLines = queryInt(request.query, 'tailLines');
    const text = await ctx.runtime.logs(pod, {
      ...(container === undefined ? {} : { container }),
      ...(tailLines === undefined ? {} : { tailLines }),
      timestamps: queryFlag(request.query, 'timestamps'),
    });
    return { status: 200, text };
  };

  const proxy: Handler = (request) => {
    const namespace = request.params.namespace ?? '';
    proxyToPod(
      request,
      (name) => requirePod(namespace, name),
      (pod) => ctx.runtime.addressOf(pod),
    );
    return 'handled';
  };

  const ns = '/api/v1/namespaces/:namespace';
  return [
    { method: 'GET', pattern: `${ns}/pods`, handler: collectionHandler(collection) },
    { method: 'POST', pattern: `${ns}/pods`, handler: create },
    { method: 'GET', pattern: '/api/v1/pods', handler: collectionHandler(collection) },
    {
      method: 'GET',
      pattern: '/api/v1/watch/namespaces/:namespace/pods',
      handler: collectionHandler(collection, true),
    },
    { method: 'GET', pattern: '/api/v1/watch/pods', handler: collectionHandler(collection, true) },
    {
      method: 'GET',
      pattern: `${ns}/pods/:name`,
      handler: (request) => ({
        status: 200,
        json: requirePod(request.params.namespace ?? '', request.params.name ?? ''),
      }),
    },
    { method: 'PATCH', pattern: `${ns}/pods/:name`, handler: patch },
    { method: 'DELETE', pattern: `${ns}/pods/:name`, handler: remove },
    { method: 'GET', pattern: `${ns}/pods/:name/log`, handler: logs },
    { method: '*', pattern: `${ns}/pods/:name/proxy`, handler: proxy },
    { method: '*', pattern: `${ns}/pods/:name/proxy/*`, handler: proxy },
  ];
}
