/**
 * The snapshot rules, written once over any blob backend and metadata store:
 *
 * - bytes first: a save streams the blob under a fresh id and only then touches metadata, so a
 *   failed upload (source error, size cap, backend gone) leaves the key's head and every earlier
 *   version exactly as they were; the partial blob is deleted;
 * - a key's head moves only by compare-and-swap, from the head the caller expected (or the one read
 *   before the upload) to the new version; the loser of a race gets SNAPSHOT_CONFLICT and its blob
 *   is deleted;
 * - after a head moved, versions beyond `keepVersions` are collected (record first, then blob, so
 *   no listed snapshot ever lacks its bytes);
 * - deleting a head moves the head back to the key's previous version, or clears it;
 * - reading verifies size and sha256 on the fly and fails at the end on a mismatch.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { snapshotIdSchema } from '@runtime-sandbox/contract';
import { describeCodedError, messageOf, ServiceError, snapshotNotFound } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { BlobStore } from './blob-store.js';
import { verified } from './digest.js';
import type { SnapshotMetadataStore } from './metadata-store.js';
import {
  type OpenedSnapshot,
  type SaveSnapshotInput,
  type SnapshotRecord,
  type SnapshotStore,
  storedKeyProblem,
} from './snapshot-store.js';

/** Head moves a delete retries while concurrent deletes of the same key keep moving the head. */
const MAX_HEAD_MOVES = 10;

export interface SnapshotCatalogOptions {
  blobs: BlobStore;
  metadata: SnapshotMetadataStore;
  /** Versions kept per key, the head included (SNAPSHOT_KEEP_VERSIONS). */
  keepVersions: number;
  logger: Logger;
  /** Run by close() after the stores are closed, e.g. to quit a Redis connection opened for them. */
  onClose?: () => Promise<void>;
}

export class SnapshotCatalog implements SnapshotStore {
  private readonly blobs: BlobStore;
  private readonly metadata: SnapshotMetadataStore;
  private readonly logger: Logger;

  constructor(private readonly options: SnapshotCatalogOptions) {
    if (!Number.isInteger(options.keepVersions) || options.keepVersions < 1) {
      throw new Error(`keepVersions must be a positive integer, got ${options.keepVersions}`);
    }
    this.blobs = options.blobs;
    this.metadata = options.metadata;
    this.logger = options.logger;
  }

  get backend(): SnapshotRecord['backend'] {
    return this.blobs.kind;
  }

  async save(input: SaveSnapshotInput): Promise<SnapshotRecord> {
    const key = input.key ?? null;
    let expectedHead: string | null;
    try {
      expectedHead = await this.headToReplace(key, input.tenantId ?? null, input.expectedHead);
    } catch (err) {
      release(input.stream);
      throw err;
    }

    const id = randomUUID();
    const digest = await this.upload(id, input.stream);
    const unversioned = {
      id,
      sandboxId: input.sandboxId,
      type: input.type,
      sizeBytes: digest.sizeBytes,
      sha256: digest.sha256,
      createdAt: new Date().toISOString(),
      backend: this.blobs.kind,
      tenantId: input.tenantId ?? null,
    };

    if (key === null) {
      const record: SnapshotRecord = { ...unversioned, key: null, version: null };
      await this.discardOnError(id, () => this.metadata.putRecord(record));
      return record;
    }

    // A malformed expected head names no record; the CAS below then fails as a conflict.
    const previous = await this.discardOnError(id, () =>
      expectedHead !== null && snapshotIdSchema.safeParse(expectedHead).success
        ? this.metadata.getRecord(expectedHead)
        : Promise.resolve(null),
    );
    const record = { ...unversioned, key, version: (previous?.version ?? 0) + 1 };
    // No cleanup if this throws: the script may have run before the connection dropped, and a head
    // must never point at deleted bytes. An orphan blob is the lesser harm.
    const won = await this.metadata.commitHead(record, expectedHead);
    if (!won) {
      await this.discard(id);
      const head = await this.metadata.getHead(key).catch(() => undefined);
      throw new ServiceError(
        'SNAPSHOT_CONFLICT',
        `the head of snapshot key "${key}" moved while this snapshot was taken; read the new head and retry`,
        { key, expectedHead, ...(head !== undefined ? { head } : {}) },
      );
    }
    await this.collect(key);
    return record;
  }

  /**
   * Checks the key (a tenant's must be in its namespace); the head a keyed save must find at commit
   * time (null: none, or no key).
   */
  private async headToReplace(
    key: string | null,
    tenantId: string | null,
    expectedHead: string | null | undefined,
  ): Promise<string | null> {
    if (key === null) return null;
    const problem = storedKeyProblem(tenantId, key);
    if (problem !== undefined) throw new ServiceError('VALIDATION_ERROR', `invalid snapshot key: ${problem}`);
    return expectedHead !== undefined ? expectedHead : await this.metadata.getHead(key);
  }

  async get(id: string): Promise<SnapshotRecord> {
    const record = snapshotIdSchema.safeParse(id).success ? await this.metadata.getRecord(id) : null;
    if (record === null) throw snapshotNotFound(id);
    return record;
  }

  async latest(key: string): Promise<SnapshotRecord | null> {
    const head = await this.metadata.getHead(key);
    return head === null ? null : await this.metadata.getRecord(head);
  }

  async list(filter: { key?: string } = {}): Promise<SnapshotRecord[]> {
    const records = await this.metadata.listRecords(filter);
    return filter.key === undefined ? records.sort(byCreation) : newestFirst(records);
  }

  async open(id: string): Promise<OpenedSnapshot> {
    const record = await this.get(id);
    let source: AsyncIterable<Buffer> | null;
    try {
      source = await this.blobs.get(blobName(id));
    } catch (err) {
      throw new ServiceError(
        'RESTORE_FAILED',
        `snapshot ${id} cannot be read: ${messageOf(err)}`,
        { id },
        { cause: err },
      );
    }
    if (source === null) {
      // Its bytes are gone (expired in Redis, or removed behind the store's back): so is the snapshot.
      await this.removeRecord(record);
      throw new ServiceError(
        'SNAPSHOT_NOT_FOUND',
        `snapshot ${id} no longer has its bytes (expired or deleted)`,
        {
          id,
        },
      );
    }
    const checked = verified(source, record, {
      mismatch: (actual) =>
        new ServiceError('RESTORE_FAILED', `snapshot ${id} is corrupted: its bytes do not match its sha256`, {
          id,
          expectedSha256: record.sha256,
          actualSha256: actual.sha256,
          expectedSizeBytes: record.sizeBytes,
          actualSizeBytes: actual.sizeBytes,
        }),
      failed: (cause) =>
        cause instanceof Error && describeCodedError(cause)
          ? cause
          : new ServiceError(
              'RESTORE_FAILED',
              `reading snapshot ${id} failed: ${messageOf(cause)}`,
              { id },
              { cause },
            ),
    });
    return { record, stream: Readable.from(checked, { objectMode: false }) };
  }

  async delete(id: string): Promise<SnapshotRecord> {
    const record = await this.get(id);
    await this.removeRecord(record);
    await this.discard(id);
    return record;
  }

  async close(): Promise<void> {
    await this.metadata.close();
    await this.blobs.close();
    await this.options.onClose?.();
  }

  /** Streams the bytes in; any failure leaves no blob and becomes SNAPSHOT_FAILED (coded errors pass). */
  private async upload(id: string, stream: SaveSnapshotInput['stream']) {
    try {
      return await this.blobs.put(blobName(id), stream);
    } catch (err) {
      release(stream);
      await this.discard(id);
      if (describeCodedError(err)) throw err;
      throw new ServiceError(
        'SNAPSHOT_FAILED',
        `the snapshot could not be stored: ${messageOf(err)}`,
        undefined,
        {
          cause: err,
        },
      );
    }
  }

  private async discardOnError<T>(id: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      await this.discard(id);
      throw err;
    }
  }

  /** Deletes a blob no record points to (any more); a failure leaves an orphan, logged. */
  private async discard(id: string): Promise<void> {
    try {
      await this.blobs.delete(blobName(id));
    } catch (err) {
      this.logger.warn(
        { snapshotId: id, err: messageOf(err) },
        'could not delete a snapshot blob (or what a failed upload left of it); it may stay orphaned',
      );
    }
  }

  /** Drops the record, first moving the key's head off it when it is the head. */
  private async removeRecord(record: SnapshotRecord): Promise<void> {
    if (record.key !== null) await this.moveHeadOff(record.key, record.id);
    await this.metadata.deleteRecord(record);
  }

  private async moveHeadOff(key: string, id: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_HEAD_MOVES; attempt++) {
      if ((await this.metadata.getHead(key)) !== id) return;
      const [previous] = newestFirst((await this.metadata.listRecords({ key })).filter((r) => r.id !== id));
      if (await this.metadata.moveHead(key, id, previous?.id ?? null)) return;
    }
    throw new ServiceError(
      'SNAPSHOT_CONFLICT',
      `the head of snapshot key "${key}" keeps moving; retry the delete`,
      {
        key,
      },
    );
  }

  /** Retention: drops a key's versions beyond keepVersions. Best effort; the save already succeeded. */
  private async collect(key: string): Promise<void> {
    try {
      const head = await this.metadata.getHead(key);
      const stale = newestFirst(await this.metadata.listRecords({ key })).slice(this.options.keepVersions);
      for (const record of stale) {
        if (record.id === head) continue;
        await this.metadata.deleteRecord(record);
        await this.discard(record.id);
      }
    } catch (err) {
      this.logger.warn(
        { key, err: messageOf(err) },
        'could not collect old snapshot versions; the next save retries',
      );
    }
  }
}

/**
 * Lets go of a source the save will not read (any more): a Readable (e.g. sandboxd's archive
 * response) is destroyed, a generator finished. Not awaited: a generator busy elsewhere would only
 * finish at its next yield.
 */
function release(stream: SaveSnapshotInput['stream']): void {
  stream[Symbol.asyncIterator]()
    .return?.()
    .catch(() => undefined);
}

function blobName(id: string): string {
  return `blobs/${id}.tar.gz`;
}

/** A key's line, highest version first. */
function newestFirst(versions: SnapshotRecord[]): SnapshotRecord[] {
  return versions.sort((a, b) => (b.version ?? 0) - (a.version ?? 0) || byCreation(a, b));
}

/** Newest first; ids break ties so the order is stable. */
function byCreation(a: SnapshotRecord, b: SnapshotRecord): number {
  return b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id);
}
