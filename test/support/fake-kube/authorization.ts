/**
 * RBAC for the fake's one user: when the fake is started with `authorization`, a request is
 * allowed only if a rule of the given Roles (in the request's namespace) or ClusterRoles grants
 * its verb on its resource, as kube-apiserver's RBAC authorizer decides; otherwise 403 Forbidden
 * with the apiserver's message. The request's attributes are read as apiserver's RequestInfo does:
 * verb from the method (GET a collection: list, or watch with `?watch=true` or under the legacy
 * /watch/ prefix; GET a name: get; POST create; PUT update; PATCH patch; DELETE a name: delete,
 * a collection: deletecollection), API group, namespace, resource, subresource and name.
 * Non-resource paths (/version, /api, /apis, /healthz, ...) are allowed: system:discovery and
 * system:public-info-viewer grant them to every authenticated user.
 *
 * Not modelled: aggregated ClusterRoles, nonResourceURLs rules, impersonation, and every
 * authorizer but RBAC; there are no Role objects in the API, only the rules given at start.
 */
import { z } from 'zod';
import { ApiError } from './api-status.js';

export const policyRuleSchema = z.object({
  apiGroups: z.array(z.string()).default([]),
  resources: z.array(z.string()).default([]),
  verbs: z.array(z.string()),
  resourceNames: z.array(z.string()).optional(),
});
export type PolicyRule = z.infer<typeof policyRuleSchema>;

export const authorizationSchema = z.object({
  /** The user the messages name, e.g. `system:serviceaccount:ns:name`. */
  user: z.string().default('fake-kube'),
  /** A Role's rules, bound in `namespace`; a ClusterRole's (bound cluster-wide) without one. */
  roles: z.array(z.object({ namespace: z.string().optional(), rules: z.array(policyRuleSchema) })),
});
export type Authorization = z.infer<typeof authorizationSchema>;

export interface RequestAttributes {
  verb: string;
  apiGroup: string;
  namespace: string | undefined;
  resource: string;
  subresource: string | undefined;
  name: string | undefined;
}

const VERB_OF_METHOD: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch' };

/** The resource attributes of a request, or undefined for a non-resource path. */
export function requestAttributes(
  method: string,
  path: string,
  query: URLSearchParams,
): RequestAttributes | undefined {
  let parts = path.split('/').filter(Boolean);
  let apiGroup: string;
  if (parts[0] === 'api' && parts.length >= 3) {
    apiGroup = '';
    parts = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    apiGroup = parts[1] ?? '';
    parts = parts.slice(3);
  } else {
    return undefined;
  }
  const legacyWatch = parts[0] === 'watch';
  if (legacyWatch) parts = parts.slice(1);
  let namespace: string | undefined;
  // `namespaces/x` alone is the namespace object; `namespaces/x/pods...` is inside it.
  if (parts[0] === 'namespaces' && parts.length >= 3) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  const [resource = '', name, subresource] = parts;
  let verb: string;
  if (
    legacyWatch ||
    (method === 'GET' && name === undefined && ['true', '1'].includes(query.get('watch') ?? ''))
  )
    verb = 'watch';
  else if (method === 'GET' || method === 'HEAD') verb = name === undefined ? 'list' : 'get';
  else if (method === 'DELETE') verb = name === undefined ? 'deletecollection' : 'delete';
  else verb = VERB_OF_METHOD[method] ?? method.toLowerCase();
  return { verb, apiGroup, namespace, resource, subresource, name };
}

function grants(rule: PolicyRule, request: RequestAttributes): boolean {
  const resource =
    request.subresource === undefined ? request.resource : `${request.resource}/${request.subresource}`;
  return (
    (rule.verbs.includes('*') || rule.verbs.includes(request.verb)) &&
    (rule.apiGroups.includes('*') || rule.apiGroups.includes(request.apiGroup)) &&
    (rule.resources.includes('*') || rule.resources.includes(resource)) &&
    (rule.resourceNames === undefined ||
      rule.resourceNames.length === 0 ||
      (request.name !== undefined && rule.resourceNames.includes(request.name)))
  );
}

/** Throws 403 Forbidden unless `authorization` allows the request. */
export function authorize(authorization: Authorization, request: RequestAttributes): void {
  const allowed = authorization.roles.some(
    (role) =>
      (role.namespace === undefined || role.namespace === request.namespace) &&
      role.rules.some((rule) => grants(rule, request)),
  );
  if (allowed) return;
  const resource =
    request.subresource === undefined ? request.resource : `${request.resource}/${request.subresource}`;
  const where =
    request.namespace === undefined ? 'at the cluster scope' : `in the namespace "${request.namespace}"`;
  const subject = request.name === undefined ? resource : `${resource} "${request.name}"`;
  throw new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `${subject} is forbidden: User "${authorization.user}" cannot ${request.verb} resource "${resource}" in API group "${request.apiGroup}" ${where}`,
    reason: 'Forbidden',
    details: {
      ...(request.name === undefined ? {} : { name: request.name }),
      ...(request.apiGroup === '' ? {} : { group: request.apiGroup }),
      kind: request.resource,
    },
    code: 403,
  });
}
