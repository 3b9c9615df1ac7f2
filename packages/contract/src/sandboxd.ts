/**
 * How sandboxd is started: its port, the environment variables it reads, and the capabilities it
 * keeps. The server's deployers start it with these; sandboxd reads them.
 */

/** The fixed port sandboxd listens on inside every sandbox. */
export const SANDBOXD_PORT = 49983;

/**
 * The header that carries `Bearer <token>` to sandboxd when `Authorization` cannot: through the
 * Kubernetes API server's pod proxy, which authenticates the server with `Authorization` and
 * removes it before forwarding. When present, sandboxd checks it alone (TokenGate.admitsRequest).
 */
export const SANDBOXD_AUTHORIZATION_HEADER = 'x-sandboxd-authorization';

/** Environment variable names read by sandboxd at start. */
export const SANDBOXD_ENV = {
  port: 'SANDBOXD_PORT',
  bootToken: 'SANDBOXD_TOKEN',
  workspaceRoot: 'SANDBOXD_WORKSPACE',
  maxJsonBytes: 'SANDBOXD_MAX_JSON_BYTES',
  maxUploadBytes: 'SANDBOXD_MAX_UPLOAD_BYTES',
  maxOutputBytes: 'SANDBOXD_MAX_OUTPUT_BYTES',
  /**
   * `uid:gid` (numbers) that every process runs as and every created file belongs to; default
   * DEFAULT_RUN_AS (run-as.ts). sandboxd started as root switches to it; started as anyone else, it
   * must be that user.
   */
  runAs: 'SANDBOXD_RUN_AS',
} as const;

/**
 * The only capabilities sandboxd (root in its container) keeps; every other one is dropped. The code
 * it runs has none: leaving root for the run-as user clears them all.
 */
export const SANDBOXD_CAPABILITIES = [
  // Start every process as the run-as user, supplementary groups cleared.
  'SETUID',
  'SETGID',
  // Kill the process groups of those processes (another user's) on timeout, hang-up and shutdown.
  'KILL',
  // Give every file and directory it creates to the run-as user.
  'CHOWN',
  // Read, write and enter what the user owns, whatever its mode (0600, 0000, a read-only directory).
  'DAC_OVERRIDE',
  // chmod and utimes on the user's files (archive modes and mtimes), rename and delete in its sticky directories.
  'FOWNER',
] as const;
