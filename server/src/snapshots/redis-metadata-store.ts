/**
 * Snapshot records and key heads in Redis, shared by every worker and replica. A head moves only
 * inside a Lua script that compares it first, so two replicas saving the same key at once cannot
 * both win.
 *
 * Keys, under the given prefix (`<REDIS_KEY_PREFIX>:<deploymentId>:snap:`):
 *   rec:<id>          string, the record as JSON (records never change once written)
 *   all               sorted set of ids, scored by creation time (ms)
 *   versions:<key>    sorted set of the key's ids, scored by version
 *   head:<key>        string, the id the key's head points at
 */
import type { Redis } from 'ioredis';
import { StoreUnavailableError } from '../state/errors.js';
import { LuaScript } from '../state/redis-scripts.js';
import type { SnapshotMetadataStore } from './metadata-store.js';
import { execAll } from './redis-multi.js';
import { type SnapshotRecord, snapshotRecordSchema } from './snapshot-store.js';

/** KEYS: head, versions, rec, all. ARGV: expected head ('' = none), id, record JSON, created ms, version. */
const COMMIT_HEAD = new LuaScript(`
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('SET', KEYS[1], ARGV[2])
return 1
`);

/** KEYS: head. ARGV: expected id, next id ('' = clear). */
const MOVE_HEAD = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`);

/** MGET batch size when listing. */
const BATCH = 500;

export class RedisMetadataStore implements SnapshotMetadataStore {
  constructor(
    private readonly redis: Redis,
    /** `<REDIS_KEY_PREFIX>:<deploymentId>:snap:` */
    private readonly prefix: string,
  ) {}

  putRecord(record: SnapshotRecord): Promise<void> {
    return this.call('putRecord', async () => {
      await execAll(
        this.redis
          .multi()
          .set(this.recordKey(record.id), JSON.stringify(record))
          .zadd(this.allKey(), Date.parse(record.createdAt), record.id),
      );
    });
  }

  async getRecord(id: string): Promise<SnapshotRecord | null> {
    const raw = await this.call('getRecord', () => this.redis.get(this.recordKey(id)));
    return raw === null ? null : decode(raw);
  }

  async listRecords(filter: { key?: string }): Promise<SnapshotRecord[]> {
    const index = filter.key === undefined ? this.allKey() : this.versionsKey(filter.key);
    const ids = await this.call('listRecords', () => this.redis.zrange(index, '0', '-1'));
    const records: SnapshotRecord[] = [];
    for (let start = 0; start < ids.length; start += BATCH) {
      const keys = ids.slice(start, start + BATCH).map((id) => this.recordKey(id));
      const raws = await this.call('listRecords', () => this.redis.mget(keys));
      // A record deleted between ZRANGE and MGET is simply gone.
      for (const raw of raws) if (raw !== null) records.push(decode(raw));
    }
    return records;
  }

  deleteRecord(record: SnapshotRecord): Promise<void> {
    return this.call('deleteRecord', async () => {
      const batch = this.redis.multi().del(this.recordKey(record.id)).zrem(this.allKey(), record.id);
      if (record.key !== null) batch.zrem(this.versionsKey(record.key), record.id);
      await execAll(batch);
    });
  }

  getHead(key: string): Promise<string | null> {
    return this.call('getHead', () => this.redis.get(this.headKey(key)));
  }

  async commitHead(record: SnapshotRecord & { key: string }, expectedHead: string | null): Promise<boolean> {
    const keys = [
      this.headKey(record.key),
      this.versionsKey(record.key),
      this.recordKey(record.id),
      this.allKey(),
    ];
    const args = [
      expectedHead ?? '',
      record.id,
      JSON.stringify(record),
      Date.parse(record.createdAt),
      record.version ?? 0,
    ];
    const won = await this.call('commitHead', () => COMMIT_HEAD.run(this.redis, keys, args));
    return won === 1;
  }

  async moveHead(key: string, expected: string, next: string | null): Promise<boolean> {
    const won = await this.call('moveHead', () =>
      MOVE_HEAD.run(this.redis, [this.headKey(key)], [expected, next ?? '']),
    );
    return won === 1;
  }

  /** The Redis client is the caller's (shared with the state store or the blob store). */
  async close(): Promise<void> {}

  private recordKey(id: string): string {
    return `${this.prefix}rec:${id}`;
  }

  private allKey(): string {
    return `${this.prefix}all`;
  }

  private versionsKey(key: string): string {
    return `${this.prefix}versions:${key}`;
  }

  private headKey(key: string): string {
    return `${this.prefix}head:${key}`;
  }

  /** One Redis exchange; any Redis or connection failure becomes StoreUnavailableError (503). */
  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new StoreUnavailableError(`snapshot catalog (Redis) failed on ${operation}: ${reason}`, {
        cause: err,
      });
    }
  }
}

function decode(raw: string): SnapshotRecord {
  return snapshotRecordSchema.parse(JSON.parse(raw));
}
