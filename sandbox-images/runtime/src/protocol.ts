/**
 * The wire contract of sandboxd. The server validates its own v1 requests with these same schemas
 * before forwarding them, so a request that passes the server never fails sandboxd's validation.
 */
import { z } from 'zod';

/** The fixed port sandboxd listens on inside every sandbox. */
export const SANDBOXD_PORT = 49983;

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
   * 1000:1000. sandboxd started as root switches to it; started as anyone else, it must be that user.
   */
  runAs: 'SANDBOXD_RUN_AS',
} as const;

/** The run-as identity when SANDBOXD_RUN_AS is unset: the images' `sandbox` user. */
export const DEFAULT_RUN_AS = '1000:1000';

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

export const DEFAULT_LIMITS = {
  /** JSON request bodies (exec with stdin included). */
  maxJsonBytes: 16 * 1024 * 1024,
  /** Raw file writes and archive uploads. */
  maxUploadBytes: 4 * 1024 * 1024 * 1024,
  /** Per stream (stdout, stderr) in a non-streaming exec answer; the rest is cut and flagged. */
  maxOutputBytes: 16 * 1024 * 1024,
} as const;

const envMap = z.record(
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are letters, digits and _, not starting with a digit'),
  z.string(),
);

export const initRequestSchema = z.strictObject({
  /** The token that replaces the boot token; every later call must carry it. */
  token: z.string().min(16).max(512),
  /** Env given to every process this sandbox runs from now on (merged over the image's env). */
  env: envMap.optional(),
  /** Workspace root; defaults to the one given at boot. Must be an existing directory. */
  workspaceRoot: z.string().startsWith('/').optional(),
});
export type InitRequest = z.infer<typeof initRequestSchema>;

export const execRequestSchema = z.strictObject({
  /** A string is run by `sh -c`; an array is an argv run without a shell. */
  command: z.union([z.string().min(1), z.array(z.string()).min(1)]),
  /** Working directory, resolved inside the workspace; default the workspace root. */
  cwd: z.string().optional(),
  env: envMap.optional(),
  /** Written to the process's stdin, which is then closed. */
  stdin: z.string().optional(),
  /** Kill the whole process group after this many milliseconds; default no limit. */
  timeoutMs: z
    .number()
    .int()
    .positive()
    .max(24 * 60 * 60 * 1000)
    .optional(),
});
export type ExecRequest = z.infer<typeof execRequestSchema>;

export interface ExecResult {
  exitCode: number | null;
  /** Set when the process was ended by a signal (timeout kills report SIGKILL). */
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

/** NDJSON events of a streamed exec, one JSON object per line. */
export type ExecEvent =
  | { type: 'start'; pid: number }
  | { type: 'stdout'; data: string }
  | { type: 'stderr'; data: string }
  | {
      type: 'exit';
      exitCode: number | null;
      signal: string | null;
      timedOut: boolean;
      durationMs: number;
    }
  | { type: 'error'; code: string; message: string };

export const NDJSON = 'application/x-ndjson';

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileEntry {
  /** Base name. */
  name: string;
  /** Path relative to the workspace root, with `/` separators. */
  path: string;
  type: FileType;
  size: number;
  /** Permission bits, e.g. 0o755 as 493. */
  mode: number;
  /** ISO 8601 modification time. */
  modifiedAt: string;
  /** Present on symlinks: the link text as stored. */
  symlinkTarget?: string;
}

export const pathQuerySchema = z.object({ path: z.string().min(1) });

export const listQuerySchema = z.object({
  path: z.string().min(1).default('.'),
  /** 1 lists the directory's children; larger values descend. */
  depth: z.coerce.number().int().min(1).max(32).default(1),
});

export const writeQuerySchema = z.object({
  path: z.string().min(1),
  /** Octal permission bits as a string, e.g. "755". */
  mode: z
    .string()
    .regex(/^[0-7]{3,4}$/, 'mode is octal, e.g. 644')
    .optional(),
});

export const deleteQuerySchema = z.object({
  path: z.string().min(1),
  recursive: z.enum(['true', 'false']).default('false'),
});

export const mkdirRequestSchema = z.strictObject({
  path: z.string().min(1),
  /** Create missing parents and succeed if it exists (like `mkdir -p`). Default true. */
  parents: z.boolean().default(true),
});

export const moveRequestSchema = z.strictObject({
  from: z.string().min(1),
  to: z.string().min(1),
  /** Replace an existing destination. Default false. */
  overwrite: z.boolean().default(false),
});

export const archiveQuerySchema = z.object({
  path: z.string().min(1).default('.'),
  /** gzip the tar (GET) or expect a gzipped tar (PUT). */
  gzip: z.enum(['true', 'false']).default('false'),
});

/** `GET /healthz` (no auth) and the answer to `POST /init`. */
export interface HealthResponse {
  status: 'ok';
  /** Whether `/init` has bound the sandbox to a caller. */
  initialized: boolean;
}

/** `GET /files/list`. */
export interface FileListResponse {
  entries: FileEntry[];
}

/** `PUT /archive`: how many archive entries were written into the directory. */
export interface ArchiveExtractResponse {
  entries: number;
}

/*
 * Answers of the other routes: `POST /exec` -> ExecResult, or with `Accept: application/x-ndjson` a
 * stream of ExecEvent lines, where `start` comes only if the process started (a program that cannot
 * be started exits 127 if missing, else 126, with the reason on stderr, in both forms);
 * `GET /files` -> the raw bytes; `PUT /files`, `GET /files/stat`, `POST /files/mkdir` and
 * `POST /files/move` -> FileEntry (stat and list describe a symlink itself, never its target);
 * `DELETE /files` -> 204; `GET /archive` -> application/x-tar (or application/gzip).
 */
