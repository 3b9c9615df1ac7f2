/**
 * kubernetes-sigs/agent-sandbox's custom resources, served as kube-apiserver serves CRDs (with the
 * `agentSandbox` option; without it their paths answer 404, as on a cluster without the CRDs):
 * `agents.x-k8s.io/v1beta1` sandboxes and `extensions.agents.x-k8s.io/v1beta1` sandboxclaims,
 * sandboxtemplates and sandboxwarmpools, each at `/apis/<group>/v1beta1/namespaces/{ns}/<plural>`:
 * create (name or generateName; 409 AlreadyExists; the status a client sends is dropped, as the
 * status subresource is enabled), get, list and watch (label and field selectors), replace (PUT:
 * metadata.resourceVersion required, 422 without it, 409 when stale; spec, labels and annotations
 * change, status stays), merge patch (application/merge-patch+json only, else 415; status is not
 * patched) and delete (the object goes at once; owned objects follow by garbage collection, in
 * agent-sandbox-controller.ts). The objects are kept as sent: no OpenAPI schema validation.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Handler, Route } from './api-server.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  deletedStatus,
  fieldError,
  type GroupResource,
  invalid,
  NAMESPACES,
  notFound,
  unsupportedMediaType,
} from './api-status.js';
import type { Cluster } from './cluster.js';
import { collectionHandler } from './collection.js';
import { dns1123SubdomainProblems } from './name-rules.js';
import {
  createdMeta,
  createdName,
  dropNulls,
  type KubeObject,
  objectMetaSchema,
  replaceContent,
  type StoredMeta,
} from './object-meta.js';
import { parseJsonBody } from './request-input.js';
import type { ResourceStore, ResourceVersionClock } from './resource-store.js';

/** One of agent-sandbox's objects: spec as sent, status as its controller writes it. */
export interface AgentSandboxObject extends KubeObject {
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface CustomKind {
  group: string;
  plural: string;
  kind: string;
}

export const VERSION = 'v1beta1';
export const SANDBOXES: CustomKind = { group: 'agents.x-k8s.io', plural: 'sandboxes', kind: 'Sandbox' };
export const CLAIMS: CustomKind = {
  group: 'extensions.agents.x-k8s.io',
  plural: 'sandboxclaims',
  kind: 'SandboxClaim',
};
export const TEMPLATES: CustomKind = {
  group: 'extensions.agents.x-k8s.io',
  plural: 'sandboxtemplates',
  kind: 'SandboxTemplate',
};
export const WARM_POOLS: CustomKind = {
  group: 'extensions.agents.x-k8s.io',
  plural: 'sandboxwarmpools',
  kind: 'SandboxWarmPool',
};

export type AgentSandboxStores = Record<
  'sandboxes' | 'claims' | 'templates' | 'warmPools',
  ResourceStore<AgentSandboxObject>
>;

const bodySchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: objectMetaSchema.optional(),
  spec: z.record(z.string(), z.unknown()).optional(),
});

const MERGE_PATCH = 'application/merge-patch+json';

const resourceOf = (kind: CustomKind): GroupResource => ({ group: kind.group, resource: kind.plural });

/** A new object of `kind` from a create's body, with what the apiserver sets. */
function decode(kind: CustomKind, raw: unknown, namespace: string): AgentSandboxObject {
  const parsed = bodySchema.safeParse(dropNulls(raw));
  if (!parsed.success)
    throw badRequest(`${kind.kind} cannot be decoded: ${parsed.error.issues[0]?.message ?? ''}`);
  const input = parsed.data;
  if (input.kind !== undefined && input.kind !== kind.kind)
    throw badRequest(`kind "${input.kind}" is not a ${kind.kind}`);
  const metadata = input.metadata ?? {};
  const name = createdName(metadata, namespace);
  const problems = name === '' ? ['name or generateName is required'] : dns1123SubdomainProblems(name);
  if (problems.length > 0) {
    throw invalid(
      `${kind.kind}.${kind.group}`,
      name,
      problems.map((p) => fieldError.invalid('metadata.name', name, p)),
    );
  }
  return {
    apiVersion: `${kind.group}/${VERSION}`,
    kind: kind.kind,
    metadata: {
      ...metadata,
      name,
      namespace,
      ...createdMeta(),
    } as StoredMeta,
    spec: input.spec ?? {},
  };
}

/** RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete base[key];
    else base[key] = mergePatch(base[key], value);
  }
  return base;
}

const patchSchema = z.looseObject({
  metadata: z
    .looseObject({
      labels: z.record(z.string(), z.string().nullable()).optional(),
      annotations: z.record(z.string(), z.string().nullable()).optional(),
    })
    .optional(),
  spec: z.record(z.string(), z.unknown()).optional(),
});

export function agentSandboxRoutes(ctx: {
  stores: AgentSandboxStores;
  clock: ResourceVersionClock;
  cluster: Cluster;
  bookmarkIntervalMs: number;
  openWatches: Set<ServerResponse>;
}): Route[] {
  const served: Array<[CustomKind, ResourceStore<AgentSandboxObject>]> = [
    [SANDBOXES, ctx.stores.sandboxes],
    [CLAIMS, ctx.stores.claims],
    [TEMPLATES, ctx.stores.templates],
    [WARM_POOLS, ctx.stores.warmPools],
  ];
  return served.flatMap(([kind, store]) => {
    const resource = resourceOf(kind);
    const require = (namespace: string, name: string) => {
      const object = store.get(namespace, name);
      if (object === undefined) throw notFound(resource, name);
      return object;
    };
    const list = collectionHandler({
      store,
      clock: ctx.clock,
      kind: kind.kind,
      apiVersion: `${kind.group}/${VERSION}`,
      fields: {
        'metadata.name': (object) => object.metadata.name,
        'metadata.namespace': (object) => object.metadata.namespace ?? '',
      },
      bookmarkIntervalMs: ctx.bookmarkIntervalMs,
      openWatches: ctx.openWatches,
    });
    const create: Handler = async (request) => {
      const namespace = request.params.namespace ?? '';
      if (!ctx.cluster.namespaces.has(namespace)) throw notFound(NAMESPACES, namespace);
      const object = decode(kind, parseJsonBody(await request.body()), namespace);
      if (store.has(namespace, object.metadata.name)) throw alreadyExists(resource, object.metadata.name);
      return { status: 201, json: store.create(object) };
    };
    const replace: Handler = async (request) => {
      const namespace = request.params.namespace ?? '';
      const name = request.params.name ?? '';
      const raw = parseJsonBody(await request.body());
      const object = decode(kind, raw, namespace);
      if (object.metadata.name !== name) {
        throw badRequest(
          `the name of the object (${object.metadata.name}) does not match the name on the URL (${name})`,
        );
      }
      const current = require(namespace, name);
      const sent = bodySchema.safeParse(raw).data?.metadata?.resourceVersion;
      if (typeof sent !== 'string' || sent === '') {
        throw invalid(`${kind.kind}.${kind.group}`, name, [
          fieldError.invalid('metadata.resourceVersion', '0x0', 'must be specified for an update'),
        ]);
      }
      if (sent !== current.metadata.resourceVersion) {
        throw conflict(
          resource,
          name,
          'the object has been modified; please apply your changes to the latest version and try again',
        );
      }
      const updated = store.update(namespace, name, (draft) => replaceContent(draft, object));
      if (updated === undefined) throw notFound(resource, name);
      return { status: 200, json: updated };
    };
    const patch: Handler = async (request) => {
      const type = (request.raw.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== MERGE_PATCH) throw unsupportedMediaType([MERGE_PATCH]);
      const namespace = request.params.namespace ?? '';
      const name = request.params.name ?? '';
      const parsed = patchSchema.safeParse(parseJsonBody(await request.body()));
      if (!parsed.success)
        throw badRequest(`the patch cannot be decoded: ${parsed.error.issues[0]?.message ?? ''}`);
      const current = require(namespace, name);
      const updated = store.update(
        namespace,
        name,
        (draft) => {
          const { metadata, spec } = parsed.data;
          if (metadata?.labels)
            draft.metadata.labels = mergePatch(draft.metadata.labels, metadata.labels) as Record<
              string,
              string
            >;
          if (metadata?.annotations)
            draft.metadata.annotations = mergePatch(
              draft.metadata.annotations,
              metadata.annotations,
            ) as Record<string, string>;
          if (spec !== undefined) {
            const next = mergePatch(draft.spec, spec) as Record<string, unknown>;
            if (JSON.stringify(next) !== JSON.stringify(draft.spec)) {
              draft.spec = next;
              draft.metadata.generation = (draft.metadata.generation ?? 1) + 1;
            }
          }
        },
        current.metadata.uid,
      );
      if (updated === undefined) throw notFound(resource, name);
      return { status: 200, json: updated };
    };
    const remove: Handler = async (request) => {
      await request.body();
      const name = request.params.name ?? '';
      const gone = store.remove(request.params.namespace, name);
      if (gone === undefined) throw notFound(resource, name);
      return { status: 200, json: deletedStatus(resource, name, gone.metadata.uid) };
    };
    const base = `/apis/${kind.group}/${VERSION}/namespaces/:namespace/${kind.plural}`;
    return [
      { method: 'GET', pattern: base, handler: list },
      { method: 'POST', pattern: base, handler: create },
      {
        method: 'GET',
        pattern: `${base}/:name`,
        handler: (r) => ({ status: 200, json: require(r.params.namespace ?? '', r.params.name ?? '') }),
      },
      { method: 'PUT', pattern: `${base}/:name`, handler: replace },
      { method: 'PATCH', pattern: `${base}/:name`, handler: patch },
      { method: 'DELETE', pattern: `${base}/:name`, handler: remove },
    ];
  });
}
