/**
 * Typed errors. Every failure the SDK reports is a `SandboxError` carrying one of the shared codes
 * (@runtime-sandbox/contract); the subclass says what kind of failure it is, so callers can
 * `instanceof` the class and ignore the individual codes. `ERROR_CLASS_BY_CODE` is the one code -> class mapping.
 */
import { type ErrorCode, isErrorCode, parseErrorBody } from '@runtime-sandbox/contract';

export interface SandboxErrorInit {
  code: ErrorCode;
  message: string;
  /** HTTP status of the answer; `null` when no answer came (network error, client-side timeout). */
  status?: number | null;
  details?: Record<string, unknown>;
  /** The server's `x-request-id`, when it sent one; quote it when reading the server log. */
  requestId?: string | null;
  /** Seconds the server asked to wait before retrying (its `Retry-After`), when it said. */
  retryAfterSeconds?: number | null;
  cause?: unknown;
}

export class SandboxError extends Error {
  readonly code: ErrorCode;
  /** HTTP status of the answer; `null` when no answer came (network error, client-side timeout). */
  readonly status: number | null;
  readonly details: Record<string, unknown> | undefined;
  /** The server's `x-request-id`, when it sent one. */
  readonly requestId: string | null;
  /** Seconds the server asked to wait before retrying (`Retry-After` on a 429); null when it did not say. */
  readonly retryAfterSeconds: number | null;

  constructor(init: SandboxErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status ?? null;
    this.details = init.details;
    this.requestId = init.requestId ?? null;
    this.retryAfterSeconds = init.retryAfterSeconds ?? null;
  }
}

/** No such sandbox, file, sandbox type, snapshot, tool or route. */
export class NotFoundError extends SandboxError {}
/** The bearer token is missing or wrong, or its key may not do this (FORBIDDEN). */
export class AuthError extends SandboxError {}
/** The server, sandboxd or this client gave up waiting. */
export class TimeoutError extends SandboxError {}
/**
 * The server's instance limit, a limit of the caller's tenant or the sandbox's Python context limit is
 * reached; release a sandbox or retry later (or use an existing context).
 */
export class CapacityError extends SandboxError {}
/**
 * The request was refused as it stands: bad shape, too large (for the request limit or the sandbox's
 * disk quota), or a path or archive entry out of bounds.
 */
export class ValidationError extends SandboxError {}
/** The request does not fit the current state: something exists, is missing a directory, is not ready. */
export class ConflictError extends SandboxError {}
/** The server, sandboxd or the deployer failed or could not be reached; often worth retrying later. */
export class UpstreamError extends SandboxError {}

export type SandboxErrorClass = new (init: SandboxErrorInit) => SandboxError;

/** Which class each shared code is thrown as. `satisfies` makes a new code in the list a compile error here. */
export const ERROR_CLASS_BY_CODE = {
  VALIDATION_ERROR: ValidationError,
  MALFORMED_JSON: ValidationError,
  PAYLOAD_TOO_LARGE: ValidationError,
  QUOTA_EXCEEDED: ValidationError,
  UNSUPPORTED_MEDIA_TYPE: ValidationError,
  ROUTE_NOT_FOUND: NotFoundError,
  METHOD_NOT_ALLOWED: ValidationError,
  REQUEST_TIMEOUT: TimeoutError,
  UNAUTHORIZED: AuthError,
  CROSS_ORIGIN_REFUSED: AuthError,
  FORBIDDEN: AuthError,
  PATH_OUTSIDE_WORKSPACE: ValidationError,
  FILE_NOT_FOUND: NotFoundError,
  NOT_A_DIRECTORY: ConflictError,
  IS_A_DIRECTORY: ConflictError,
  ALREADY_EXISTS: ConflictError,
  DIRECTORY_NOT_EMPTY: ConflictError,
  PERMISSION_DENIED: ValidationError,
  INVALID_ARCHIVE: ValidationError,
  UNSAFE_ARCHIVE_ENTRY: ValidationError,
  ALREADY_INITIALIZED: ConflictError,
  NOT_INITIALIZED: ConflictError,
  TOOL_NOT_FOUND: NotFoundError,
  INVALID_TOOL_ARGUMENTS: ValidationError,
  PYTHON_CONTEXT_LIMIT: CapacityError,
  PYTHON_UNAVAILABLE: ConflictError,
  SANDBOX_NOT_FOUND: NotFoundError,
  SANDBOX_TYPE_NOT_FOUND: NotFoundError,
  SANDBOX_NOT_READY: ConflictError,
  CAPACITY_EXCEEDED: CapacityError,
  TENANT_LIMIT_EXCEEDED: CapacityError,
  SANDBOX_CREATE_FAILED: UpstreamError,
  NETWORK_POLICY_DENIED: ValidationError,
  SNAPSHOT_NOT_FOUND: NotFoundError,
  SNAPSHOT_CONFLICT: ConflictError,
  SNAPSHOT_FAILED: UpstreamError,
  RESTORE_FAILED: UpstreamError,
  UPSTREAM_ERROR: UpstreamError,
  TIMEOUT: TimeoutError,
  STATE_STORE_UNAVAILABLE: UpstreamError,
  DEPLOYER_UNAVAILABLE: UpstreamError,
  SHUTTING_DOWN: UpstreamError,
  SERVER_BUSY: UpstreamError,
  INTERNAL_ERROR: SandboxError,
} as const satisfies Record<ErrorCode, SandboxErrorClass>;

/** Builds the right subclass for a code. */
export function createSandboxError(init: SandboxErrorInit): SandboxError {
  const ErrorClass: SandboxErrorClass = ERROR_CLASS_BY_CODE[init.code];
  return new ErrorClass(init);
}

/** The code to assume when an answer carries no well-formed error body (e.g. a proxy's HTML page). */
const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  401: 'UNAUTHORIZED',
  404: 'ROUTE_NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'CAPACITY_EXCEEDED',
  500: 'INTERNAL_ERROR',
  504: 'TIMEOUT',
};

function codeForStatus(status: number): ErrorCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? 'UPSTREAM_ERROR' : 'VALIDATION_ERROR');
}

/**
 * Turns a non-2xx answer into a typed error, reading the `{"error": {code, message, details}}` body
 * when there is one. Consumes the body.
 */
export async function errorFromResponse(response: Response, what: string): Promise<SandboxError> {
  const requestId = response.headers.get('x-request-id');
  const retryAfterSeconds = retryAfterOf(response.headers.get('retry-after'));
  const text = await response.text().catch(() => '');
  const body = parseErrorBody(text);
  if (body) {
    return createSandboxError({ ...body, status: response.status, requestId, retryAfterSeconds });
  }
  return createSandboxError({
    code: codeForStatus(response.status),
    message: `${what} answered ${response.status} ${response.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`,
    status: response.status,
    requestId,
    retryAfterSeconds,
  });
}

/** `Retry-After` in its delay-seconds form (the only one the server sends); null otherwise. */
function retryAfterOf(header: string | null): number | null {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header.trim()) : null;
}

/** Errors reported inside a stream (an NDJSON `{"type":"error"}` event) get the same classes. */
export function errorFromEvent(code: unknown, message: unknown): SandboxError {
  return createSandboxError({
    code: isErrorCode(code) ? code : 'UPSTREAM_ERROR',
    message: typeof message === 'string' ? message : 'the stream reported an error',
    ...(isErrorCode(code) ? {} : { details: { code } }),
  });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
