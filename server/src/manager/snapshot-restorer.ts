/**
 * Restores on acquire, a step of SandboxManager.acquire: the snapshot a `restore` names is found
 * first (an unknown id or key costs no sandbox), and once a sandbox is bound, streamed into
 * sandboxd's `PUT /archive`, which stages it whole before touching the workspace. Success is
 * sandboxd's 200 and a clean end of the snapshot's bytes, which the store checks against their
 * sha256 as they go by: a mismatch errors the stream, the upload breaks off, and nothing changes.
 * A key with no snapshot fails with SNAPSHOT_NOT_FOUND unless the caller allowed an empty start.
 */
import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream/promises';
import { ServiceError } from '../errors.js';
import { type SnapshotRecord, type SnapshotStore, tenantKey } from '../snapshots/snapshot-store.js';
import type { SandboxRecord } from '../state/state-store.js';
import { type Caller, tenantIdOf } from '../tenants/caller.js';
import { discard, type UpstreamRequest } from './sandboxd-client.js';
import { ownedSnapshot, type SnapshotOutcomes, workspaceArchive } from './snapshot-outcomes.js';

/** What an acquire restores: one snapshot, or the head of a key. */
export type RestoreRequest = { snapshotId: string } | { key: string; allowEmpty?: boolean };

/** A found snapshot, ready to go into a sandbox through `send` (a call to its sandboxd). */
export interface PendingRestore {
  into(sandbox: SandboxRecord, send: (request: UpstreamRequest) => Promise<IncomingMessage>): Promise<void>;
}

/** The acquire's view of restores (a port, so the manager's unit tier can script it). */
export interface WorkspaceRestorer {
  /** The restore `request` names, for `caller`; null when there is nothing to restore (an allowed empty start). */
  find(request: RestoreRequest, caller: Caller): Promise<PendingRestore | null>;
}

export class SnapshotRestorer implements WorkspaceRestorer {
  constructor(private readonly deps: { store: SnapshotStore; outcomes: SnapshotOutcomes }) {}

  async find(request: RestoreRequest, caller: Caller): Promise<PendingRestore | null> {
    const started = performance.now();
    let snapshot: SnapshotRecord | null;
    try {
      snapshot = await this.snapshotOf(request, caller);
    } catch (err) {
      throw this.deps.outcomes.failed('restore', started, err, request);
    }
    if (snapshot === null) return null;
    const found = snapshot;
    return { into: (sandbox, send) => this.restore(found, sandbox, send) };
  }

  private async snapshotOf(request: RestoreRequest, caller: Caller): Promise<SnapshotRecord | null> {
    const { store } = this.deps;
    if ('snapshotId' in request) return ownedSnapshot(store, request.snapshotId, caller);
    const head = await store.latest(tenantKey(tenantIdOf(caller), request.key));
    if (head !== null || request.allowEmpty === true) return head;
    throw new ServiceError(
      'SNAPSHOT_NOT_FOUND',
      `snapshot key "${request.key}" has no snapshot; pass allowEmpty: true to start empty instead`,
      { key: request.key },
    );
  }

  private async restore(
    snapshot: SnapshotRecord,
    sandbox: SandboxRecord,
    send: (request: UpstreamRequest) => Promise<IncomingMessage>,
  ): Promise<void> {
    const started = performance.now();
    try {
      const { stream } = await this.deps.store.open(snapshot.id);
      const consumed = finished(stream);
      consumed.catch(() => undefined);
      try {
        const answer = await send({
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
    } catch (err) {
      throw this.deps.outcomes.failed('restore', started, err, {
        sandboxId: sandbox.id,
        snapshotId: snapshot.id,
      });
    }
    this.deps.outcomes.succeeded('restore', started, snapshot, sandbox.id);
  }
}
