/**
 * Every error answer is a meta/v1 Status with the HTTP code repeated in `code`, as kube-apiserver
 * writes it (apimachinery's api/errors constructors), so client-node's ApiException carries the
 * same `.code` and `.body` it would against a real cluster.
 */

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A resource as errors name it: `pods`, `networkpolicies.networking.k8s.io`. */
export interface GroupResource {
  group: string;
  resource: string;
}

export const PODS: GroupResource = { group: '', resource: 'pods' };
export const NAMESPACES: GroupResource = { group: '', resource: 'namespaces' };
export const NODES: GroupResource = { group: '', resource: 'nodes' };
export const NETWORK_POLICIES: GroupResource = { group: 'networking.k8s.io', resource: 'networkpolicies' };
export const RUNTIME_CLASSES: GroupResource = { group: 'node.k8s.io', resource: 'runtimeclasses' };

/** Thrown by handlers; the server writes its status as the answer. */
export class ApiError extends Error {
  constructor(readonly status: Status) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.name = 'ApiError';
  }
}

function qualified(resource: GroupResource): string {
  return resource.group === '' ? resource.resource : `${resource.resource}.${resource.group}`;
}

function details(resource: GroupResource, name: string): StatusDetails {
  return resource.group === ''
    ? { name, kind: resource.resource }
    : { name, group: resource.group, kind: resource.resource };
}

function failure(code: number, reason: string, message: string, statusDetails?: StatusDetails): ApiError {
  return new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(statusDetails === undefined ? {} : { details: statusDetails }),
    code,
  });
}

export function notFound(resource: GroupResource, name: string): ApiError {
  return failure(404, 'NotFound', `${qualified(resource)} "${name}" not found`, details(resource, name));
}

export function alreadyExists(resource: GroupResource, name: string): ApiError {
  return failure(
    409,
    'AlreadyExists',
    `${qualified(resource)} "${name}" already exists`,
    details(resource, name),
  );
}

/** What admission plugins answer (Pod Security, RuntimeClass, ResourceQuota): `pods "x" is forbidden: ...`. */
export function forbidden(resource: GroupResource, name: string, why: string): ApiError {
  return failure(
    403,
    'Forbidden',
    `${qualified(resource)} "${name}" is forbidden: ${why}`,
    details(resource, name),
  );
}

export function conflict(resource: GroupResource, name: string, why: string): ApiError {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(resource)} "${name}": ${why}`,
    details(resource, name),
  );
}

export function badRequest(message: string): ApiError {
  return failure(400, 'BadRequest', message);
}

export function unauthorized(): ApiError {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

export function resourceNotFound(): ApiError {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function methodNotAllowed(): ApiError {
  return failure(
    405,
    'MethodNotAllowed',
    'the server does not allow this method on the requested resource',
    {},
  );
}

/** The patch handler's answer to a Content-Type it has no patcher for. */
export function unsupportedMediaType(accepted: readonly string[]): ApiError {
  return failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function requestTooLarge(limit: number): ApiError {
  return failure(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);
}

export function serviceUnavailable(message: string): ApiError {
  return failure(503, 'ServiceUnavailable', message);
}

/** The object a watch sends as its one ERROR event when the resourceVersion asked for is compacted away. */
export function expiredStatus(requested: number, oldest: number): Status {
  return failure(410, 'Expired', `too old resource version: ${requested} (${oldest})`).status;
}

/** The Status a delete answers for resources that do not return the deleted object. */
export function deletedStatus(resource: GroupResource, name: string, uid: string): Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { ...details(resource, name), uid },
    code: 200,
  };
}

/** 422 Invalid with one cause per field error, its message aggregated as apimachinery does. */
export function invalid(kind: string, name: string, errors: readonly FieldError[]): ApiError {
  const messages = [...new Set(errors.map(fieldErrorMessage))];
  const aggregate = messages.length === 1 ? messages[0] : `[${messages.join(', ')}]`;
  const group = kind.includes('.') ? kind.slice(kind.indexOf('.') + 1) : '';
  const bareKind = kind.includes('.') ? kind.slice(0, kind.indexOf('.')) : kind;
  return failure(422, 'Invalid', `${kind} "${name}" is invalid: ${aggregate}`, {
    name,
    ...(group === '' ? {} : { group }),
    kind: bareKind,
    causes: errors.map((error) => ({
      reason: error.type,
      message: fieldErrorBody(error),
      field: error.field,
    })),
  });
}

/** apimachinery's field.Error: a type, the field path, the bad value and a detail. */
export interface FieldError {
  type:
    | 'FieldValueRequired'
    | 'FieldValueInvalid'
    | 'FieldValueNotSupported'
    | 'FieldValueDuplicate'
    | 'FieldValueNotFound'
    | 'FieldValueForbidden'
    | 'FieldValueTooLong';
  field: string;
  value?: unknown;
  detail?: string;
}

export const fieldError = {
  required: (field: string, detail?: string): FieldError => ({
    type: 'FieldValueRequired',
    field,
    ...(detail === undefined ? {} : { detail }),
  }),
  invalid: (field: string, value: unknown, detail: string): FieldError => ({
    type: 'FieldValueInvalid',
    field,
    value,
    detail,
  }),
  notSupported: (field: string, value: unknown, supported: readonly string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field,
    value,
    detail: `supported values: ${supported.map((s) => `"${s}"`).join(', ')}`,
  }),
  duplicate: (field: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field, value }),
  notFound: (field: string, value: unknown): FieldError => ({ type: 'FieldValueNotFound', field, value }),
  forbidden: (field: string, detail: string): FieldError => ({ type: 'FieldValueForbidden', field, detail }),
  tooLong: (field: string, value: unknown, max: number): FieldError => ({
    type: 'FieldValueTooLong',
    field,
    value,
    detail: `may not be more than ${max} bytes`,
  }),
};

/** Go's %#v-ish rendering of a bad value: strings quoted, numbers and booleans bare. */
function renderValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? 'null';
}

function fieldErrorBody(error: FieldError): string {
  const detail = error.detail === undefined ? '' : `: ${error.detail}`;
  switch (error.type) {
    case 'FieldValueRequired':
      return `Required value${detail}`;
    case 'FieldValueInvalid':
      return `Invalid value: ${renderValue(error.value)}${detail}`;
    case 'FieldValueNotSupported':
      return `Unsupported value: ${renderValue(error.value)}${detail}`;
    case 'FieldValueDuplicate':
      return `Duplicate value: ${renderValue(error.value)}`;
    case 'FieldValueNotFound':
      return `Not found: ${renderValue(error.value)}`;
    case 'FieldValueForbidden':
      return `Forbidden${detail}`;
    case 'FieldValueTooLong':
      return `Too long${detail}`;
  }
}

function fieldErrorMessage(error: FieldError): string {
  return `${error.field}: ${fieldErrorBody(error)}`;
}
