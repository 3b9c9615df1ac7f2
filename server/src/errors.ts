/**
 * The server's typed error, in no layer of its own so every layer may throw it. Anything thrown
 * with a `code` from error-codes.ts (this class, the registry's SandboxTypeNotFoundError, the
 * store's StoreUnavailableError) becomes that code's HTTP answer; everything else is an internal
 * fault.
 */
import { type ErrorCode, isErrorCode } from '@runtime-sandbox/contract';

export class ServiceError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ServiceError';
    this.code = code;
    this.details = details;
  }
}

/** An unknown sandbox id; a malformed one names no sandbox either, and is answered the same. */
export function sandboxNotFound(id: string): ServiceError {
  return new ServiceError('SANDBOX_NOT_FOUND', `no live sandbox with id ${JSON.stringify(id)}`, { id });
}

/** A tool name no sandbox could have (too long); sandboxd answers the same for one it lacks. */
export function toolNotFound(name: string): ServiceError {
  return new ServiceError('TOOL_NOT_FOUND', `no tool named ${JSON.stringify(name)}`, { tool: name });
}

/** An unknown snapshot id, a malformed one, or another tenant's: all answered alike. */
export function snapshotNotFound(id: string): ServiceError {
  return new ServiceError('SNAPSHOT_NOT_FOUND', `no snapshot with id ${JSON.stringify(id)}`, { id });
}

/** The code, message and details of an error that carries a known code; undefined for anything else. */
export function describeCodedError(
  err: unknown,
): { code: ErrorCode; message: string; details?: Record<string, unknown> } | undefined {
  if (!(err instanceof Error) || !('code' in err) || !isErrorCode(err.code)) return undefined;
  const details = 'details' in err && isPlainObject(err.details) ? err.details : undefined;
  return { code: err.code, message: err.message, ...(details ? { details } : {}) };
}

/** The message of anything thrown, for error texts and logs. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
