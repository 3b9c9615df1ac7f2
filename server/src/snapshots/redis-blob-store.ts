/**
 * Blobs in Redis, for small workspaces (FILE_SYSTEM=redis). A blob is a Redis list of chunks of at
 * most CHUNK_BYTES, never one giant string: it is pushed chunk by chunk to a staging key that
 * expires on its own if the writer dies, then renamed to its final key in one MULTI, so a reader
 * sees the whole blob or none. Blobs are capped at `maxBytes` (PAYLOAD_TOO_LARGE past it) and, when
 * `ttlSeconds` > 0, expire that long after their last write or read (each read renews it).
 *
 * Keys, under the given prefix (`<REDIS_KEY_PREFIX>:<deploymentId>:snap:`):
 *   blob:<name>        list of chunks
 *   staging:<uuid>     list of chunks being written
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ServiceError } from '../errors.js';
import { assertBlobName, type BlobDigest, type BlobStore, type ByteSource } from './blob-store.js';
import { measured } from './digest.js';
import { execAll } from './redis-multi.js';

const CHUNK_BYTES = 1024 * 1024;
/** A staging list untouched this long belongs to a writer that died. */
const STAGING_TTL_MS = 10 * 60 * 1000;

export interface RedisBlobStoreOptions {
  /** Not owned: the caller closes it. */
  redis: Redis;
  keyPrefix: string;
  maxBytes: number;
  /** 0 means blobs never expire. */
  ttlSeconds: number;
}

export class RedisBlobStore implements BlobStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;

  constructor(private readonly options: RedisBlobStoreOptions) {
    this.redis = options.redis;
  }

  async put(name: string, source: ByteSource): Promise<BlobDigest> {
    const target = this.keyOf(name);
    const staging = `${this.options.keyPrefix}staging:${randomUUID()}`;
    const bytes = measured(source);
    try {
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let total = 0;
      for await (const chunk of bytes.chunks) {
        total += chunk.length;
        if (total > this.options.maxBytes) {
          throw new ServiceError(
            'PAYLOAD_TOO_LARGE',
            `the snapshot is over the Redis snapshot store's limit of ${this.options.maxBytes} bytes ` +
              '(SNAPSHOT_REDIS_MAX_BYTES); use FILE_SYSTEM=local or oss for larger workspaces',
            { limitBytes: this.options.maxBytes },
          );
        }
        pending.push(chunk);
        pendingBytes += chunk.length;
        while (pendingBytes >= CHUNK_BYTES) {
          const joined = Buffer.concat(pending, pendingBytes);
          await this.append(staging, joined.subarray(0, CHUNK_BYTES));
          const rest = joined.subarray(CHUNK_BYTES);
          pending = rest.length > 0 ? [rest] : [];
          pendingBytes = rest.length;
        }
      }
      // An empty blob is one empty chunk: Redis has no empty lists.
      if (pendingBytes > 0 || total === 0) await this.append(staging, Buffer.concat(pending, pendingBytes));
      const commit = this.redis.multi().rename(staging, target);
      if (this.options.ttlSeconds > 0) commit.expire(target, this.options.ttlSeconds);
      else commit.persist(target);
      await execAll(commit);
    } catch (err) {
      await this.redis.del(staging).catch(() => undefined);
      throw err;
    }
    return bytes.digest();
  }

  async get(name: string): Promise<AsyncIterable<Buffer> | null> {
    const key = this.keyOf(name);
    const found =
      this.options.ttlSeconds > 0
        ? await this.redis.expire(key, this.options.ttlSeconds)
        : await this.redis.exists(key);
    if (found === 0) return null;
    const chunkCount = await this.redis.llen(key);
    return this.chunksOf(key, chunkCount);
  }

  async delete(name: string): Promise<void> {
    await this.redis.del(this.keyOf(name));
  }

  async exists(name: string): Promise<boolean> {
    return (await this.redis.exists(this.keyOf(name))) === 1;
  }

  async list(folder: string): Promise<string[]> {
    const start = `${this.keyOf(folder)}/`;
    const names: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${globEscape(start)}*`, 'COUNT', 1000);
      for (const key of keys) {
        const name = key.slice(this.blobKeyPrefix().length);
        // MATCH `folder/*` also matches deeper names; list() is one level.
        if (!name.slice(folder.length + 1).includes('/')) names.push(name);
      }
      cursor = next;
    } while (cursor !== '0');
    return names;
  }

  async close(): Promise<void> {}

  private async append(staging: string, chunk: Buffer): Promise<void> {
    await execAll(this.redis.multi().rpush(staging, chunk).pexpire(staging, STAGING_TTL_MS));
  }

  private async *chunksOf(key: string, chunkCount: number): AsyncGenerator<Buffer> {
    for (let index = 0; index < chunkCount; index++) {
      const [chunk] = await this.redis.lrangeBuffer(key, index, index);
      if (chunk === undefined) throw new Error(`blob ${key} expired or was deleted while being read`);
      yield chunk;
    }
  }

  private blobKeyPrefix(): string {
    return `${this.options.keyPrefix}blob:`;
  }

  private keyOf(name: string): string {
    assertBlobName(name);
    return `${this.blobKeyPrefix()}${name}`;
  }
}

/** A literal for SCAN's MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
