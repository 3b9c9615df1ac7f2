/**
 * The one list of error codes spoken by sandboxd, the server and the client SDK.
 * Every error body is `{"error": {"code", "message", "details?"}}`; the code is stable,
 * the message is for humans. The HTTP status is the one given here.
 */
export const ERROR_CODES = {
  // Request shape
  VALIDATION_ERROR: { status: 400, description: 'The request body or query failed validation' },
  MALFORMED_JSON: { status: 400, description: 'The request body is not valid JSON' },
  PAYLOAD_TOO_LARGE: { status: 413, description: 'The request body is over the size limit' },
  QUOTA_EXCEEDED: {
    status: 413,
    description: "The data does not fit in the sandbox's disk quota (nothing of it is kept)",
  },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The request content type is not accepted here' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, description: 'The route does not accept this method' },
  REQUEST_TIMEOUT: {
    status: 408,
    description: 'The request body stopped arriving for longer than BODY_IDLE_TIMEOUT_MS',
  },

  // Auth
  UNAUTHORIZED: { status: 401, description: 'Missing or wrong bearer token' },
  CROSS_ORIGIN_REFUSED: {
    status: 403,
    description: 'Auth is off, so only loopback clients are served; the Host or Origin is not loopback',
  },
  FORBIDDEN: { status: 403, description: "The caller's key may not do this (it needs the admin token)" },

  // Paths and files (sandboxd)
  PATH_OUTSIDE_WORKSPACE: { status: 403, description: 'The path resolves outside the workspace root' },
  FILE_NOT_FOUND: { status: 404, description: 'No file or directory at that path' },
  NOT_A_DIRECTORY: { status: 409, description: 'A directory was expected' },
  IS_A_DIRECTORY: { status: 409, description: 'A file was expected, found a directory' },
  ALREADY_EXISTS: { status: 409, description: 'Something already exists at that path' },
  DIRECTORY_NOT_EMPTY: { status: 409, description: 'The directory is not empty' },
  PERMISSION_DENIED: { status: 403, description: 'The sandbox user may not touch that path' },
  INVALID_ARCHIVE: { status: 400, description: 'The body is not a readable tar archive' },
  UNSAFE_ARCHIVE_ENTRY: {
    status: 400,
    description: 'An archive entry is absolute, climbs out, writes through a symlink, or is a device',
  },

  // sandboxd lifecycle
  ALREADY_INITIALIZED: { status: 409, description: 'The sandbox was already bound to a caller' },
  NOT_INITIALIZED: { status: 409, description: 'The sandbox has not been bound to a caller yet' },

  // Sandboxes (server)
  SANDBOX_NOT_FOUND: { status: 404, description: 'No live sandbox with that id' },
  SANDBOX_TYPE_NOT_FOUND: { status: 404, description: 'No sandbox type with that name is registered' },
  SANDBOX_NOT_READY: { status: 409, description: 'The sandbox is not in a state that serves this call' },
  CAPACITY_EXCEEDED: {
    status: 429,
    description: 'MAX_SANDBOX_INSTANCES reached; release one or retry later',
  },
  TENANT_LIMIT_EXCEEDED: {
    status: 429,
    description:
      "A limit of the caller's tenant is reached (details.limit says which); retry after Retry-After",
  },
  SANDBOX_CREATE_FAILED: { status: 502, description: 'The deployer could not create a sandbox' },
  NETWORK_POLICY_DENIED: {
    status: 403,
    description: "The acquire asked for a looser network policy than the sandbox type's",
  },

  // Tools and the Python interpreter (sandboxd)
  TOOL_NOT_FOUND: { status: 404, description: 'The sandbox offers no tool with that name' },
  INVALID_TOOL_ARGUMENTS: {
    status: 400,
    description: "The tool's arguments do not match its input schema (details.issues says how)",
  },
  PYTHON_CONTEXT_LIMIT: {
    status: 409,
    description: 'The sandbox already runs as many Python contexts as it may; use an existing one',
  },
  PYTHON_UNAVAILABLE: { status: 409, description: "The sandbox's image has no python3 to run cells with" },

  // Snapshots
  SNAPSHOT_NOT_FOUND: { status: 404, description: 'No snapshot with that id or key' },
  SNAPSHOT_CONFLICT: { status: 409, description: 'Another writer moved the key head first' },
  SNAPSHOT_FAILED: { status: 502, description: 'The snapshot could not be written' },
  RESTORE_FAILED: { status: 502, description: 'The snapshot could not be restored' },

  // Upstreams and the server itself
  UPSTREAM_ERROR: { status: 502, description: 'sandboxd or the deployer answered badly or not at all' },
  TIMEOUT: { status: 504, description: 'The operation did not finish in time' },
  STATE_STORE_UNAVAILABLE: { status: 503, description: 'The state store (Redis) cannot be reached' },
  DEPLOYER_UNAVAILABLE: {
    status: 503,
    description: 'The compute backend (the Kubernetes API server) cannot be reached; retry after Retry-After',
  },
  SHUTTING_DOWN: { status: 503, description: 'The server is shutting down' },
  SERVER_BUSY: {
    status: 503,
    description:
      'The worker holds as many request bodies as it may (JSON_BYTES_IN_FLIGHT); retry after Retry-After',
  },
  INTERNAL_ERROR: { status: 500, description: 'An unexpected fault; the log has the request id' },
} as const satisfies Record<string, { status: number; description: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
