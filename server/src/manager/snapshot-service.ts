/**
 * Snapshots of sandbox workspaces, and restores into sandboxes being acquired. The rules:
 *
 * - a snapshot streams sandboxd's `GET /archive?path=.&gzip=true` straight into the snapshot store,
 *   never holding it whole; the store records it only once every byte is stored, moves a key's
 *   head by compare-and-swap and collects old versions, so a failed snapshot never replaces the
 *   last good one;
 * - snapshot-then-release releases only once the snapshot is stored: when the snapshot fails the
 *   sandbox keeps running and the caller gets the error, so no work is lost;
 * - an acquire with `restore` finds the snapshot first (an unknown id or key costs no sandbox),
 *   then acquires and streams the snapshot into sandboxd's `PUT /archive` (staged there,
 *   all-or-nothing) before handing the sandbox out. A restore that fails destroys that sandbox and
 *   fails the acquire with RESTORE_FAILED or SNAPSHOT_NOT_FOUND; it never quietly starts empty,
 *   unless the caller allowed that for a key that has no snapshot yet;
 * - a tenant's snapshots are its own: its keys live in its namespace of the store (tenantKey), so
 *   tenants A and B both have a key "k" without meeting, and another's snapshot id answers
 *   SNAPSHOT_NOT_FOUND exactly as an unknown one; the bytes it keeps stay under its snapshotBytes,
 *   checked before the sandbox is read and enforced on the bytes as they stream (concurrent
 *   snapshots of one tenant may each pass the check, so the limit may be passed by at most what
 *   they add together).
 */
import { type Readable, Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { ErrorCode } from '@runtime-sandbox/contract';
import { describeCodedError, messageOf, ServiceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import {
  callerKeyOf,
  type SnapshotRecord,
  type SnapshotStore,
  tenantKey,
} from '../snapshots/snapshot-store.js';
import type { SandboxRecord } from '../state/state-store.js';
import { type Caller, mayAccess, tenantIdOf } from '../tenants/caller.js';
import type { AcquireRequest, SandboxManager } from './sandbox-manager.js';
import { discard } from './sandboxd-client.js';
import { snapshotBytesExceeded } from './tenant-limits.js';

/** A snapshot as its caller sees it: its own key, and no owner (a caller sees only its own). */
export type SnapshotView = Omit<SnapshotRecord, 'tenantId'>;

export interface SnapshotOptions {
  /** Puts the snapshot on the key's line of versions; omitted: a one-off snapshot. */
  key?: string;
  /**
   * Compare-and-swap: the key's head must still be this snapshot id (null: the key has no
   * snapshot yet) when the new one lands. Omitted: the head read when the snapshot starts.
   */
  expectedHead?: string | null;
}

/** What an acquire restores: one snapshot, or the head of a key. */
export type RestoreRequest = { snapshotId: string } | { key: string; allowEmpty?: boolean };

export interface SnapshotServiceDeps {
  manager: Pick<SandboxManager, 'acquire' | 'get' | 'call' | 'release'>;
  store: SnapshotStore;
  metrics: ServerMetrics;
  logger: Logger;
}

type Operation = 'snapshot' | 'restore';

/**
 * Codes that already say what went wrong (a missing or busy sandbox, a lost CAS, a full store, a
 * full workspace, the server going down); any other failure becomes SNAPSHOT_FAILED, or RESTORE_FAILED for a restore.
 */
const PASSED_ON: Record<Operation, ReadonlySet<ErrorCode>> = {
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

export class SnapshotService {
  constructor(private readonly deps: SnapshotServiceDeps) {}

  /** Snapshots the sandbox's whole workspace into the store, as the caller's. */
  async snapshot(sandboxId: string, caller: Caller, options: SnapshotOptions = {}): Promise<SnapshotView> {
    const { manager, store } = this.deps;
    const started = performance.now();
    const tenantId = tenantIdOf(caller);
    try {
      const sandbox = await manager.get(sandboxId, caller);
      const budget = await this.bytesLeft(caller);
      const archive = await manager.call(sandboxId, caller, {
        method: 'GET',
        path: '/archive',
        query: workspaceArchive(),
      });
      const record = await store.save({
        key: options.key === undefined ? undefined : tenantKey(tenantId, options.key),
        expectedHead: options.expectedHead,
        stream: budget === undefined ? archive : withinBudget(archive, budget.bytes, budget.exceeded),
        sandboxId,
        type: sandbox.type,
        tenantId,
      });
      this.observe('snapshot', started, record);
      return view(record);
    } catch (err) {
      throw this.failed('snapshot', started, err, { sandboxId, key: options.key ?? null });
    }
  }

  /** Snapshots, then releases; when the snapshot fails the sandbox is left running. */
  async snapshotAndRelease(
    sandboxId: string,
    caller: Caller,
    options: SnapshotOptions = {},
  ): Promise<SnapshotView> {
    const record = await this.snapshot(sandboxId, caller, options);
    try {
      await this.deps.manager.release(sandboxId, caller);
    } catch (err) {
      // Gone meanwhile (reaped, released by another call): released all the same.
      if (describeCodedError(err)?.code !== 'SANDBOX_NOT_FOUND') throw err;
    }
    return record;
  }

  /** Acquires a sandbox and, with `restore`, hydrates its workspace before handing it out. */
  async acquire(request: AcquireRequest, caller: Caller, restore?: RestoreRequest): Promise<SandboxRecord> {
    const { manager, logger } = this.deps;
    if (restore === undefined) return manager.acquire(request, caller);
    let started = performance.now();
    let snapshot: SnapshotRecord | null;
    try {
      snapshot = await this.snapshotToRestore(restore, caller);
    } catch (err) {
      throw this.failed('restore', started, err, restore);
    }
    const sandbox = await manager.acquire(request, caller);
    if (snapshot === null) return sandbox;
    started = performance.now();
    try {
      await this.restoreInto(sandbox, snapshot, caller);
    } catch (err) {
      await manager
        .release(sandbox.id, caller)
        .catch((releaseErr: unknown) =>
          logger.error(
            { sandboxId: sandbox.id, err: messageOf(releaseErr) },
            'releasing a sandbox whose restore failed failed too; the reaper will collect it',
          ),
        );
      throw this.failed('restore', started, err, { sandboxId: sandbox.id, snapshotId: snapshot.id });
    }
    this.observe('restore', started, snapshot, sandbox.id);
    return sandbox;
  }

  /** The caller's snapshots (every one for the admin), newest first: by version within a key, by creation time otherwise. */
  async list(caller: Caller, filter: { key?: string } = {}): Promise<SnapshotView[]> {
    const tenantId = tenantIdOf(caller);
    const key = filter.key === undefined ? undefined : tenantKey(tenantId, filter.key);
    const records = await this.deps.store.list(key === undefined ? {} : { key });
    return records.filter((record) => mayAccess(caller, record.tenantId)).map(view);
  }

  /** SNAPSHOT_NOT_FOUND for an unknown (or malformed) id, and for another tenant's. */
  async get(id: string, caller: Caller): Promise<SnapshotView> {
    return view(await this.owned(id, caller));
  }

  /** Deleting a key's head moves the head back to the key's previous version. */
  async delete(id: string, caller: Caller): Promise<SnapshotView> {
    await this.owned(id, caller);
    const record = await this.deps.store.delete(id);
    this.deps.logger.info({ snapshotId: id, key: record.key }, 'snapshot deleted');
    return view(record);
  }

  /** The caller's snapshot; another tenant's answers exactly as a missing one. */
  private async owned(id: string, caller: Caller): Promise<SnapshotRecord> {
    const record = await this.deps.store.get(id);
    if (!mayAccess(caller, record.tenantId)) {
      throw new ServiceError('SNAPSHOT_NOT_FOUND', `no snapshot with id "${id}"`, { id });
    }
    return record;
  }

  /**
   * What a tenant with snapshotBytes may still store, and the error for passing it; undefined
   * without such a limit. Refuses at once when nothing is left.
   */
  private async bytesLeft(caller: Caller): Promise<{ bytes: number; exceeded: () => Error } | undefined> {
    if (caller.kind === 'admin') return undefined;
    const { id, limits } = caller.tenant;
    const max = limits.snapshotBytes;
    if (max === undefined) return undefined;
    const records = await this.deps.store.list();
    const used = records.filter((r) => r.tenantId === id).reduce((sum, r) => sum + r.sizeBytes, 0);
    const exceeded = () => snapshotBytesExceeded(id, max, used);
    if (used >= max) throw exceeded();
    return { bytes: max - used, exceeded };
  }

  /** The snapshot a restore names; null for a key with none when the caller allowed an empty start. */
  private async snapshotToRestore(restore: RestoreRequest, caller: Caller): Promise<SnapshotRecord | null> {
    const { store } = this.deps;
    if ('snapshotId' in restore) return this.owned(restore.snapshotId, caller);
    const head = await store.latest(tenantKey(tenantIdOf(caller), restore.key));
    if (head !== null || restore.allowEmpty === true) return head;
    throw new ServiceError(
      'SNAPSHOT_NOT_FOUND',
      `snapshot key "${restore.key}" has no snapshot; pass allowEmpty: true to start empty instead`,
      { key: restore.key },
    );
  }

  /**
   * Streams the snapshot into the workspace. Success is sandboxd's 200 and a clean end of the
   * snapshot's bytes, which the store checks against their sha256 as they go by: a mismatch errors
   * the stream, the upload breaks off, and sandboxd, which stages the whole archive before
   * touching the workspace, changes nothing.
   */
  private async restoreInto(sandbox: SandboxRecord, snapshot: SnapshotRecord, caller: Caller): Promise<void> {
    const { stream } = await this.deps.store.open(snapshot.id);
    const consumed = finished(stream);
    consumed.catch(() => undefined);
    try {
      const answer = await this.deps.manager.call(sandbox.id, caller, {
        method: 'PUT',
        path: '/archive',
        query: workspaceArchive(),
        headers: { 'content-type': 'application/gzip' },
        body: stream,
      });
      discard(answer);
      await consumed;
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  private observe(operation: Operation, started: number, record: SnapshotRecord, sandboxId?: string): void {
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

  /** Counts and logs a failure, and gives the error to throw: the cause's own code, or the operation's. */
  private failed(
    operation: Operation,
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

function view({ tenantId, ...record }: SnapshotRecord): SnapshotView {
  return { ...record, key: record.key === null ? null : callerKeyOf(tenantId, record.key) };
}

/** The bytes of `source`, failing with `exceeded()` (and stopping the source) once past `budget`. */
function withinBudget(source: Readable, budget: number, exceeded: () => Error): Readable {
  let passed = 0;
  const gate = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      passed += chunk.length;
      if (passed > budget) done(exceeded());
      else done(null, chunk);
    },
  });
  // The error reaches the store through `gate`; pipeline only ties the two streams' ends together.
  pipeline(source, gate).catch(() => undefined);
  return gate;
}

function workspaceArchive(): URLSearchParams {
  return new URLSearchParams({ path: '.', gzip: 'true' });
}

function asOperationError(
  operation: Operation,
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
