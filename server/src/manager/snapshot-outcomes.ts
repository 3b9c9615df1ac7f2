/**
 * What snapshots and restores share: the caller's own snapshot (another tenant's answers exactly
 * as a missing one), and how an outcome is counted, logged and, on failure, named. A failure keeps
 * a code that already says what went wrong; any other becomes SNAPSHOT_FAILED or RESTORE_FAILED.
 */
import type { ErrorCode } from '@runtime-sandbox/contract';
import { describeCodedError, messageOf, ServiceError, snapshotNotFound } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SnapshotRecord, SnapshotStore } from '../snapshots/snapshot-store.js';
import { type Caller, mayAccess } from '../tenants/caller.js';

export type SnapshotOperation = 'snapshot' | 'restore';

/**
 * Codes that already say what went wrong (a missing or busy sandbox, a lost CAS, a full store, a
 * full workspace, the server going down).
 */
const PASSED_ON: Record<SnapshotOperation, ReadonlySet<ErrorCode>> = {
  snapshot: new Set<ErrorCode>([
    'SANDBOX_NOT_FOUND',
    'SANDBOX_NOT_READY',
    'SNAPSHOT_CONFLICT',
    'SNAPSHOT_FAILED',
    'PAYLOAD_TOO_LARGE',
    'QUOTA_EXCEEDED',
    'VALIDATION_ERROR',
    'SHUTTING_DOWN',
    'STATE_STORE_UNAVAILABLE',
    'TENANT_LIMIT_EXCEEDED',
  ]),
  restore: new Set<ErrorCode>([
    'SNAPSHOT_NOT_FOUND',
    'RESTORE_FAILED',
    // The snapshot is larger than the new sandbox's workspace quota.
    'QUOTA_EXCEEDED',
    'SHUTTING_DOWN',
    'STATE_STORE_UNAVAILABLE',
  ]),
};

/** The caller's snapshot; another tenant's answers exactly as a missing one. */
export async function ownedSnapshot(
  store: SnapshotStore,
  id: string,
  caller: Caller,
): Promise<SnapshotRecord> {
  const record = await store.get(id);
  if (!mayAccess(caller, record.tenantId)) throw snapshotNotFound(id);
  return record;
}

export class SnapshotOutcomes {
  constructor(private readonly deps: { metrics: ServerMetrics; logger: Logger }) {}

  succeeded(operation: SnapshotOperation, started: number, record: SnapshotRecord, sandboxId?: string): void {
    const { metrics, logger } = this.deps;
    const seconds = (performance.now() - started) / 1000;
    metrics.snapshotsTotal.inc({ operation, outcome: 'ok' });
    metrics.snapshotDuration.observe({ operation, outcome: 'ok' }, seconds);
    metrics.snapshotBytes.inc({ operation }, record.sizeBytes);
    logger.info(
      {
        sandboxId: sandboxId ?? record.sandboxId,
        snapshotId: record.id,
        key: record.key,
        version: record.version,
        sizeBytes: record.sizeBytes,
        ms: Math.round(seconds * 1000),
      },
      operation === 'snapshot' ? 'snapshot taken' : 'snapshot restored',
    );
  }

  deleted(record: SnapshotRecord): void {
    this.deps.logger.info({ snapshotId: record.id, key: record.key }, 'snapshot deleted');
  }

  /** Counts and logs a failure, and gives the error to throw: the cause's own code, or the operation's. */
  failed(
    operation: SnapshotOperation,
    started: number,
    err: unknown,
    context: Record<string, unknown>,
  ): Error {
    const { metrics, logger } = this.deps;
    const error = asOperationError(operation, err, context);
    metrics.snapshotsTotal.inc({ operation, outcome: error.code });
    metrics.snapshotDuration.observe(
      { operation, outcome: error.code },
      (performance.now() - started) / 1000,
    );
    logger.warn({ ...context, code: error.code, err: error.message }, `${operation} failed`);
    return error;
  }
}

function asOperationError(
  operation: SnapshotOperation,
  err: unknown,
  context: Record<string, unknown>,
): Error & { code: ErrorCode } {
  const known = describeCodedError(err);
  if (known && PASSED_ON[operation].has(known.code)) {
    return err instanceof ServiceError ? err : new ServiceError(known.code, known.message, known.details);
  }
  const code = operation === 'snapshot' ? 'SNAPSHOT_FAILED' : 'RESTORE_FAILED';
  const what = operation === 'snapshot' ? 'the snapshot could not be taken' : 'the restore failed';
  return new ServiceError(
    code,
    `${what}: ${messageOf(err)}`,
    { ...context, ...(known ? { cause: known.code } : {}) },
    { cause: err },
  );
}

/** sandboxd's query for the whole workspace as a gzipped tar, both ways. */
export function workspaceArchive(): URLSearchParams {
  return new URLSearchParams({ path: '.', gzip: 'true' });
}
