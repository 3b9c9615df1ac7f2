/**
 * sandboxd's one error type, and the one place where file system errors become wire error codes.
 */
import { type ErrorBody, type ErrorCode, statusOf } from '@runtime-sandbox/contract';

export class SandboxdError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'SandboxdError';
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return statusOf(this.code);
  }

  toBody(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}

/** errno codes a caller can cause with a path, and what they mean on the wire. */
const FS_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  ENOENT: { code: 'FILE_NOT_FOUND', message: 'No file or directory at that path' },
  ENOTDIR: { code: 'NOT_A_DIRECTORY', message: 'A path component is not a directory' },
  EISDIR: { code: 'IS_A_DIRECTORY', message: 'A file was expected, found a directory' },
  EEXIST: { code: 'ALREADY_EXISTS', message: 'Something already exists at that path' },
  ENOTEMPTY: { code: 'DIRECTORY_NOT_EMPTY', message: 'The directory is not empty' },
  EACCES: { code: 'PERMISSION_DENIED', message: 'The sandbox user may not touch that path' },
  EPERM: { code: 'PERMISSION_DENIED', message: 'The sandbox user may not touch that path' },
  EROFS: { code: 'PERMISSION_DENIED', message: 'The file system is read-only' },
  ENOSPC: {
    code: 'QUOTA_EXCEEDED',
    message: "The workspace is full: the write would pass the sandbox's disk quota",
  },
  EDQUOT: { code: 'QUOTA_EXCEEDED', message: "The write would pass the sandbox's disk quota" },
  ELOOP: { code: 'VALIDATION_ERROR', message: 'Too many levels of symbolic links' },
  ENAMETOOLONG: { code: 'VALIDATION_ERROR', message: 'The path is too long' },
  EINVAL: { code: 'VALIDATION_ERROR', message: 'The operation is not valid for that path' },
};

function errnoCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoCode(err);
  return code !== undefined && codes.includes(code);
}

/**
 * The SandboxdError for anything thrown while serving a request: SandboxdErrors pass through, known
 * errno codes are mapped (with the caller's paths as details, never the container's absolute ones);
 * undefined for anything else, which the caller answers with a 500 and logs.
 */
export function toSandboxdError(err: unknown, details?: Record<string, unknown>): SandboxdError | undefined {
  if (err instanceof SandboxdError) return err;
  const code = errnoCode(err);
  const known = code === undefined ? undefined : FS_ERRORS[code];
  return known && new SandboxdError(known.code, known.message, details);
}

/** Runs file system work on the caller's paths (`details`), turning errno errors into wire errors. */
export async function withFsErrors<T>(details: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toSandboxdError(err, details) ?? err;
  }
}
