/**
 * Snapshots of sandbox workspaces, kept by the server in its snapshot store: `sandbox.snapshots`
 * takes them, `client.snapshots` finds and deletes them, `client.create({ restore })` restores one
 * and `sandbox.close({ snapshot })` takes one before releasing.
 *
 * A key (e.g. an agent session) gives snapshots a line of versions whose head moves only by
 * compare-and-swap: pass the head you started from as `expectedHead`, and a writer that moved it
 * first makes your snapshot fail with ConflictError (SNAPSHOT_CONFLICT) instead of overwriting.
 */
import { type CallOptions, callSpec, type Transport } from './transport.js';
import type { CreateSnapshotOptions, ListSnapshotsFilter, SnapshotInfo } from './types.js';

/** Default deadline of calls that move a whole workspace: snapshot, close with snapshot, create with restore. */
export const SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

/** `sandbox.snapshots`: snapshots of this sandbox's workspace. */
export class SandboxSnapshots {
  /** @internal Made by `Sandbox`, with its `/v1/sandboxes/<id>` transport. */
  constructor(private readonly transport: Transport) {}

  /**
   * Snapshots the whole workspace; with `key`, as the key's new head. Never retried (a repeat
   * would be a second version). Throws ConflictError (SNAPSHOT_CONFLICT) when the key's head moved,
   * UpstreamError (SNAPSHOT_FAILED) when the store failed; either way the key's head is unchanged.
   */
  async create(options: CreateSnapshotOptions & CallOptions = {}): Promise<SnapshotInfo> {
    return this.transport.json<SnapshotInfo>({
      method: 'POST',
      path: '/snapshots',
      json: snapshotRequest(options),
      ...callSpec(options, SNAPSHOT_TIMEOUT_MS),
    });
  }
}

/** `client.snapshots`: every snapshot the server keeps. */
export class Snapshots {
  /** @internal Made by `SandboxClient`. */
  constructor(private readonly api: Transport) {}

  /** Newest first; with `key`, that key's versions (head first). */
  async list(filter: ListSnapshotsFilter = {}, call: CallOptions = {}): Promise<SnapshotInfo[]> {
    const answer = await this.api.json<{ snapshots: SnapshotInfo[] }>({
      method: 'GET',
      path: '/v1/snapshots',
      query: { key: filter.key },
      ...callSpec(call),
    });
    return answer.snapshots;
  }

  /** The key's head (its latest snapshot), or null when the key has none. */
  async latest(key: string, call: CallOptions = {}): Promise<SnapshotInfo | null> {
    const [head] = await this.list({ key }, call);
    return head ?? null;
  }

  /** One snapshot; throws NotFoundError (SNAPSHOT_NOT_FOUND) for an unknown id. */
  async get(id: string, call: CallOptions = {}): Promise<SnapshotInfo> {
    return this.api.json<SnapshotInfo>({
      method: 'GET',
      path: `/v1/snapshots/${encodeURIComponent(id)}`,
      ...callSpec(call),
    });
  }

  /**
   * Deletes a snapshot; deleting a key's head moves the head back to the key's previous version.
   * Throws NotFoundError (SNAPSHOT_NOT_FOUND) for an unknown id.
   */
  async delete(id: string, call: CallOptions = {}): Promise<void> {
    await this.api.empty({
      method: 'DELETE',
      path: `/v1/snapshots/${encodeURIComponent(id)}`,
      ...callSpec(call),
    });
  }
}

/** The request body out of options that may carry call options too. */
function snapshotRequest(options: CreateSnapshotOptions): CreateSnapshotOptions {
  return {
    ...(options.key === undefined ? {} : { key: options.key }),
    ...(options.expectedHead === undefined ? {} : { expectedHead: options.expectedHead }),
  };
}
