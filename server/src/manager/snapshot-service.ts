/**
 * Snapshots of sandbox workspaces (restores are a step of acquire: snapshot-restorer.ts). The rules:
 *
 * - a snapshot streams sandboxd's `GET /archive?path=.&gzip=true` straight into the snapshot store,
 *   never holding it whole; the store records it only once every byte is stored, moves a key's
 *   head by compare-and-swap and collects old versions, so a failed snapshot never replaces the
 *   last good one;
 * - snapshot-then-release releases only once the snapshot is stored: when the snapshot fails the
 *   sandbox keeps running and the caller gets the error, so no work is lost;
 * - a tenant's snapshots are its own: its keys live in its namespace of the store (tenantKey), so
 *   tenants A and B both have a key "k" without meeting, and another's snapshot id answers
 *   SNAPSHOT_NOT_FOUND exactly as an unknown one; the bytes it keeps stay under its snapshotBytes,
 *   checked before the sandbox is read and enforced on the bytes as they stream (concurrent
 *   snapshots of one tenant may each pass the check, so the limit may be passed by at most what
 *   they add together).
 */
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeCodedError } from '../errors.js';
import {
  callerKeyOf,
  type SnapshotRecord,
  type SnapshotStore,
  tenantKey,
} from '../snapshots/snapshot-store.js';
import { type Caller, mayAccess, tenantIdOf } from '../tenants/caller.js';
import type { SandboxManager } from './sandbox-manager.js';
import { ownedSnapshot, type SnapshotOutcomes, workspaceArchive } from './snapshot-outcomes.js';
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

export interface SnapshotServiceDeps {
  manager: Pick<SandboxManager, 'get' | 'call' | 'release'>;
  store: SnapshotStore;
  outcomes: SnapshotOutcomes;
}

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
      this.deps.outcomes.succeeded('snapshot', started, record);
      return view(record);
    } catch (err) {
      throw this.deps.outcomes.failed('snapshot', started, err, { sandboxId, key: options.key ?? null });
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
    this.deps.outcomes.deleted(record);
    return view(record);
  }

  private owned(id: string, caller: Caller): Promise<SnapshotRecord> {
    return ownedSnapshot(this.deps.store, id, caller);
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
