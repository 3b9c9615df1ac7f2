/**
 * networking.k8s.io/v1 NetworkPolicies: create, get, list (label and field selectors), watch,
 * replace (PUT: unconditional without a resourceVersion, 409 Conflict when one is given and is
 * not the current one) and delete, validated for names, labels, policy types, ports and CIDRs.
 * Stored only: nothing enforces them (that takes a CNI plugin).
 */

import type { ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { Handler, Route } from './api-server.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  deletedStatus,
  type FieldError,
  fieldError,
  invalid,
  NAMESPACES,
  NETWORK_POLICIES,
  notFound,
} from './api-status.js';
import type { Cluster } from './cluster.js';
import { collectionHandler } from './collection.js';
import type { SelectableFields } from './field-selector.js';
import {
  dns1123SubdomainProblems,
  labelValueProblems,
  portNameProblems,
  qualifiedNameProblems,
} from './name-rules.js';
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

const labelSelectorSchema = z.looseObject({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(z.looseObject({ key: z.string(), operator: z.string(), values: z.array(z.string()).optional() }))
    .optional(),
});
const peerSchema = z.looseObject({
  podSelector: labelSelectorSchema.optional(),
  namespaceSelector: labelSelectorSchema.optional(),
  ipBlock: z.looseObject({ cidr: z.string(), except: z.array(z.string()).optional() }).optional(),
});
const portSchema = z.looseObject({
  protocol: z.string().optional(),
  port: z.union([z.number().int(), z.string()]).optional(),
  endPort: z.number().int().optional(),
});
const ruleSchema = (peers: 'from' | 'to') =>
  z.looseObject({ [peers]: z.array(peerSchema).optional(), ports: z.array(portSchema).optional() });
const networkPolicySchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: objectMetaSchema.optional(),
  spec: z
    .looseObject({
      podSelector: labelSelectorSchema.optional(),
      policyTypes: z.array(z.string()).optional(),
      ingress: z.array(ruleSchema('from')).optional(),
      egress: z.array(ruleSchema('to')).optional(),
    })
    .optional(),
});

type LabelSelector = z.infer<typeof labelSelectorSchema>;
type Peer = z.infer<typeof peerSchema>;
type PolicyPort = z.infer<typeof portSchema>;
type Spec = NonNullable<z.infer<typeof networkPolicySchema>['spec']>;

export interface NetworkPolicy extends KubeObject {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  spec: Spec;
}

const KIND = 'NetworkPolicy.networking.k8s.io';

function isCidr(value: string): boolean {
  const [address = '', bits, ...rest] = value.split('/');
  if (bits === undefined || rest.length > 0 || !/^[0-9]+$/.test(bits)) return false;
  const family = isIP(address);
  return family !== 0 && Number(bits) <= (family === 4 ? 32 : 128);
}

function checkSelector(errors: FieldError[], field: string, selector: LabelSelector | undefined): void {
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    for (const p of qualifiedNameProblems(key))
      errors.push(fieldError.invalid(`${field}.matchLabels`, key, p));
    for (const p of labelValueProblems(value))
      errors.push(fieldError.invalid(`${field}.matchLabels`, value, p));
  }
  selector?.matchExpressions?.forEach((expression, index) => {
    const operators = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
    if (!operators.includes(expression.operator)) {
      errors.push(
        fieldError.notSupported(
          `${field}.matchExpressions[${index}].operator`,
          expression.operator,
          operators,
        ),
      );
    }
  });
}

function checkPeer(errors: FieldError[], field: string, peer: Peer): void {
  const set = (['podSelector', 'namespaceSelector', 'ipBlock'] as const).filter(
    (key) => peer[key] !== undefined,
  );
  if (set.length === 0) errors.push(fieldError.required(field, 'must specify a peer'));
  if (peer.ipBlock !== undefined && set.length > 1)
    errors.push(fieldError.forbidden(field, 'may not specify both ipBlock and another peer'));
  checkSelector(errors, `${field}.podSelector`, peer.podSelector);
  checkSelector(errors, `${field}.namespaceSelector`, peer.namespaceSelector);
  const block = peer.ipBlock;
  if (block === undefined) return;
  if (!isCidr(block.cidr)) {
    errors.push(
      fieldError.invalid(
        `${field}.ipBlock.cidr`,
        block.cidr,
        'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      ),
    );
  }
  block.except?.forEach((except, index) => {
    if (!isCidr(except)) {
      errors.push(
        fieldError.invalid(
          `${field}.ipBlock.except[${index}]`,
          except,
          'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        ),
      );
    }
  });
}

function checkPort(errors: FieldError[], field: string, port: PolicyPort): void {
  const protocols = ['TCP', 'UDP', 'SCTP'];
  if (port.protocol !== undefined && !protocols.includes(port.protocol)) {
    errors.push(fieldError.notSupported(`${field}.protocol`, port.protocol, protocols));
  }
  if (typeof port.port === 'number' && (port.port < 1 || port.port > 65535)) {
    errors.push(fieldError.invalid(`${field}.port`, port.port, 'must be between 1 and 65535, inclusive'));
  }
  if (typeof port.port === 'string') {
    for (const p of portNameProblems(port.port))
      errors.push(fieldError.invalid(`${field}.port`, port.port, p));
  }
}

function validate(policy: NetworkPolicy): FieldError[] {
  const errors: FieldError[] = [];
  const { metadata, spec } = policy;
  if (metadata.name === '')
    errors.push(fieldError.required('metadata.name', 'name or generateName is required'));
  else
    for (const p of dns1123SubdomainProblems(metadata.name))
      errors.push(fieldError.invalid('metadata.name', metadata.name, p));
  for (const [key, value] of Object.entries(metadata.labels ?? {})) {
    for (const p of qualifiedNameProblems(key)) errors.push(fieldError.invalid('metadata.labels', key, p));
    for (const p of labelValueProblems(value)) errors.push(fieldError.invalid('metadata.labels', value, p));
  }
  checkSelector(errors, 'spec.podSelector', spec.podSelector);
  spec.policyTypes?.forEach((type, index) => {
    if (type !== 'Ingress' && type !== 'Egress')
      errors.push(fieldError.notSupported(`spec.policyTypes[${index}]`, type, ['Ingress', 'Egress']));
  });
  for (const [direction, peers] of [
    ['ingress', 'from'],
    ['egress', 'to'],
  ] as const) {
    spec[direction]?.forEach((rule, index) => {
      const field = `spec.${direction}[${index}]`;
      const list = (rule[peers] ?? []) as Peer[];
      for (const [at, peer] of list.entries()) checkPeer(errors, `${field}.${peers}[${at}]`, peer);
      for (const [at, port] of (rule.ports ?? []).entries()) checkPort(errors, `${field}.ports[${at}]`, port);
    });
  }
  return errors;
}

function decode(raw: unknown, namespace: string): NetworkPolicy {
  const parsed = networkPolicySchema.safeParse(dropNulls(raw));
  const cannot = (why: string) =>
    badRequest(`NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: ${why}`);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw cannot(`json: ${issue?.message ?? 'invalid'} at ${issue?.path.join('.') ?? ''}`);
  }
  const input = parsed.data;
  if (input.kind !== undefined && input.kind !== 'NetworkPolicy')
    throw cannot(`kind "${input.kind}" is not a NetworkPolicy`);
  const metadata = input.metadata ?? {};
  const name = createdName(metadata, namespace);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      ...metadata,
      name,
      namespace,
      ...createdMeta(),
    } as StoredMeta,
    spec: { podSelector: {}, policyTypes: defaultPolicyTypes(input.spec ?? {}), ...input.spec },
  };
}

/** policyTypes default: Ingress, plus Egress when egress rules are given. */
function defaultPolicyTypes(spec: Spec): string[] {
  return spec.egress !== undefined && spec.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

const NETWORK_POLICY_FIELDS: SelectableFields<NetworkPolicy> = {
  'metadata.name': (policy) => policy.metadata.name,
  'metadata.namespace': (policy) => policy.metadata.namespace ?? '',
};

export interface NetworkPolicyApiContext {
  policies: ResourceStore<NetworkPolicy>;
  clock: ResourceVersionClock;
  cluster: Cluster;
  bookmarkIntervalMs: number;
  openWatches: Set<ServerResponse>;
}

export function networkPolicyRoutes(ctx: NetworkPolicyApiContext): Route[] {
  const base = '/apis/networking.k8s.io/v1/namespaces/:namespace/networkpolicies';
  const collection = {
    store: ctx.policies,
    clock: ctx.clock,
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    fields: NETWORK_POLICY_FIELDS,
    bookmarkIntervalMs: ctx.bookmarkIntervalMs,
    openWatches: ctx.openWatches,
  };
  const list = collectionHandler(collection);
  const create: Handler = async (request) => {
    const namespace = request.params.namespace ?? '';
    if (!ctx.cluster.namespaces.has(namespace)) throw notFound(NAMESPACES, namespace);
    const policy = decode(parseJsonBody(await request.body()), namespace);
    const errors = validate(policy);
    if (errors.length > 0) throw invalid(KIND, policy.metadata.name, errors);
    if (ctx.policies.has(namespace, policy.metadata.name))
      throw alreadyExists(NETWORK_POLICIES, policy.metadata.name);
    return { status: 201, json: ctx.policies.create(policy) };
  };
  const get: Handler = (request) => {
    const policy = ctx.policies.get(request.params.namespace, request.params.name ?? '');
    if (policy === undefined) throw notFound(NETWORK_POLICIES, request.params.name ?? '');
    return { status: 200, json: policy };
  };
  const replace: Handler = async (request) => {
    const namespace = request.params.namespace ?? '';
    const name = request.params.name ?? '';
    const raw = parseJsonBody(await request.body());
    const policy = decode(raw, namespace);
    if (policy.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${policy.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    const errors = validate(policy);
    if (errors.length > 0) throw invalid(KIND, name, errors);
    const current = ctx.policies.get(namespace, name);
    if (current === undefined) throw notFound(NETWORK_POLICIES, name);
    const sentVersion = networkPolicySchema.safeParse(raw).data?.metadata?.resourceVersion;
    if (sentVersion !== undefined && sentVersion !== '' && sentVersion !== current.metadata.resourceVersion) {
      throw conflict(
        NETWORK_POLICIES,
        name,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    const updated = ctx.policies.update(namespace, name, (draft) => replaceContent(draft, policy));
    if (updated === undefined) throw notFound(NETWORK_POLICIES, name);
    return { status: 200, json: updated };
  };
  const remove: Handler = async (request) => {
    await request.body();
    const name = request.params.name ?? '';
    const gone = ctx.policies.remove(request.params.namespace, name);
    if (gone === undefined) throw notFound(NETWORK_POLICIES, name);
    return { status: 200, json: deletedStatus(NETWORK_POLICIES, name, gone.metadata.uid) };
  };
  return [
    { method: 'GET', pattern: base, handler: list },
    { method: 'POST', pattern: base, handler: create },
    { method: 'GET', pattern: '/apis/networking.k8s.io/v1/networkpolicies', handler: list },
    {
      method: 'GET',
      pattern: '/apis/networking.k8s.io/v1/watch/namespaces/:namespace/networkpolicies',
      handler: collectionHandler(collection, true),
    },
    { method: 'GET', pattern: `${base}/:name`, handler: get },
    { method: 'PUT', pattern: `${base}/:name`, handler: replace },
    { method: 'DELETE', pattern: `${base}/:name`, handler: remove },
  ];
}
