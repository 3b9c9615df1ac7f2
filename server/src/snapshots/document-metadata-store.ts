/**
 * Snapshot records and key heads as small JSON documents in a blob store, beside the blobs: in
 * SNAPSHOT_DIR for FILE_SYSTEM=local, in the bucket for FILE_SYSTEM=oss when there is no Redis.
 * They survive restarts with the blobs they describe, and need nothing else running.
 *
 *   records/<id>.json          the record
 *   heads/<sha256(key)>.json   {"key", "id"}: the key's head (hashed: keys may hold any character)
 *
 * Heads move under a per-key lock held in this process, so the CAS is exact for one server
 * process, which is every deployment without Redis (WORKERS > 1 requires Redis). Two replicas
 * sharing one bucket without Redis could both win a race: S3 conditional writes (If-Match /
 * If-None-Match on PUT) would close that, but s3rver, the S3 server the tests run, does not
 * implement them, so this store does not rely on them. Replicas that share a bucket must enable
 * Redis, which puts the catalog in Redis (RedisMetadataStore).
 *
 * Listing reads every record document: fine for the hundreds of snapshots retention keeps; a
 * catalog that grows past that belongs in Redis.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { BlobStore } from './blob-store.js';
import type { SnapshotMetadataStore } from './metadata-store.js';
import { type SnapshotRecord, snapshotRecordSchema } from './snapshot-store.js';

const RECORDS = 'records';
const HEADS = 'heads';
/** Record documents read at once while listing. */
const READ_CONCURRENCY = 16;

const headSchema = z.object({ key: z.string(), id: z.string() });

export class DocumentMetadataStore implements SnapshotMetadataStore {
  /** Per key, the tail of the chain of head changes waiting their turn. */
  private readonly headLocks = new Map<string, Promise<unknown>>();

  constructor(private readonly documents: BlobStore) {}

  putRecord(record: SnapshotRecord): Promise<void> {
    return this.write(recordName(record.id), record);
  }

  async getRecord(id: string): Promise<SnapshotRecord | null> {
    const raw = await this.read(recordName(id));
    return raw === null ? null : snapshotRecordSchema.parse(raw);
  }

  async listRecords(filter: { key?: string }): Promise<SnapshotRecord[]> {
    const names = (await this.documents.list(RECORDS)).filter((name) => name.endsWith('.json'));
    const records: SnapshotRecord[] = [];
    for (let start = 0; start < names.length; start += READ_CONCURRENCY) {
      const batch = names.slice(start, start + READ_CONCURRENCY);
      const raws = await Promise.all(batch.map((name) => this.read(name)));
      for (const raw of raws) {
        // A record deleted between list and read is simply gone.
        if (raw === null) continue;
        const record = snapshotRecordSchema.parse(raw);
        if (filter.key === undefined || record.key === filter.key) records.push(record);
      }
    }
    return records;
  }

  deleteRecord(record: SnapshotRecord): Promise<void> {
    return this.documents.delete(recordName(record.id));
  }

  async getHead(key: string): Promise<string | null> {
    const raw = await this.read(headName(key));
    return raw === null ? null : headSchema.parse(raw).id;
  }

  commitHead(record: SnapshotRecord & { key: string }, expectedHead: string | null): Promise<boolean> {
    return this.underHeadLock(record.key, async () => {
      if ((await this.getHead(record.key)) !== expectedHead) return false;
      // Record first: a crash between the two leaves a record no head points to, never the reverse.
      await this.putRecord(record);
      await this.write(headName(record.key), { key: record.key, id: record.id });
      return true;
    });
  }

  moveHead(key: string, expected: string, next: string | null): Promise<boolean> {
    return this.underHeadLock(key, async () => {
      if ((await this.getHead(key)) !== expected) return false;
      if (next === null) await this.documents.delete(headName(key));
      else await this.write(headName(key), { key, id: next });
      return true;
    });
  }

  /** The blob store is the catalog's, which closes it. */
  async close(): Promise<void> {}

  private underHeadLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.headLocks.get(key) ?? Promise.resolve();
    const mine = previous.then(work, work);
    const tail = mine.catch(() => undefined);
    this.headLocks.set(key, tail);
    // Forget the key once nobody is queued behind this change.
    void tail.then(() => {
      if (this.headLocks.get(key) === tail) this.headLocks.delete(key);
    });
    return mine;
  }

  private async read(name: string): Promise<unknown> {
    const stream = await this.documents.get(name);
    if (stream === null) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  private async write(name: string, value: unknown): Promise<void> {
    await this.documents.put(name, [Buffer.from(JSON.stringify(value))]);
  }
}

function recordName(id: string): string {
  return `${RECORDS}/${id}.json`;
}

function headName(key: string): string {
  return `${HEADS}/${createHash('sha256').update(key).digest('hex')}.json`;
}
