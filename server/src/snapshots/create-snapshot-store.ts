/**
 * Picks the snapshot store's parts from the config:
 *
 * | FILE_SYSTEM | blobs                          | metadata (records, key heads)                     |
 * |-------------|--------------------------------|---------------------------------------------------|
 * | local       | files in SNAPSHOT_DIR          | Redis if REDIS_ENABLED, else JSON in SNAPSHOT_DIR |
 * | oss         | objects in OSS_BUCKET_NAME     | Redis if REDIS_ENABLED, else JSON in the bucket   |
 * | redis       | chunk lists in Redis (capped)  | Redis                                             |
 *
 * Only the Redis catalog makes key heads compare-and-swap safe across replicas; without Redis the
 * CAS holds within the one server process (document-metadata-store.ts says why).
 */
import type { Redis } from 'ioredis';
import { type Config, deploymentIdOf } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { connectRedis } from '../state/redis-connection.js';
import type { BlobStore } from './blob-store.js';
import { SnapshotCatalog } from './catalog.js';
import { DocumentMetadataStore } from './document-metadata-store.js';
import { LocalBlobStore } from './local-blob-store.js';
import { RedisBlobStore } from './redis-blob-store.js';
import { RedisMetadataStore } from './redis-metadata-store.js';
import { S3BlobStore } from './s3-blob-store.js';
import type { SnapshotStore } from './snapshot-store.js';

export interface SnapshotStoreDeps {
  logger: Logger;
  /**
   * A Redis client to share (e.g. the state store's); the store does not close it. Without one,
   * a connection is opened from the REDIS_* settings when needed and closed by `close()`.
   */
  redis?: Redis;
}

export async function createSnapshotStore(config: Config, deps: SnapshotStoreDeps): Promise<SnapshotStore> {
  const { logger } = deps;
  const needsRedis = config.REDIS_ENABLED || config.FILE_SYSTEM === 'redis';
  let redis = deps.redis;
  let onClose: (() => Promise<void>) | undefined;
  if (needsRedis && redis === undefined) {
    const opened = await connectRedis(config, {
      connectionName: `${deploymentIdOf(config)}:snapshots`,
      onError: (err) => logger.warn({ err: messageOf(err) }, 'snapshot store: Redis connection error'),
    });
    redis = opened;
    onClose = async () => {
      await opened.quit().catch(() => opened.disconnect());
    };
  }
  const redisPrefix = `${config.REDIS_KEY_PREFIX}:${deploymentIdOf(config)}:snap:`;
  const blobs = blobStoreFor(config, { logger, redis, redisPrefix });
  const metadata =
    redis !== undefined ? new RedisMetadataStore(redis, redisPrefix) : new DocumentMetadataStore(blobs);
  return new SnapshotCatalog({
    blobs,
    metadata,
    keepVersions: config.SNAPSHOT_KEEP_VERSIONS,
    logger,
    onClose,
  });
}

function blobStoreFor(
  config: Config,
  parts: { logger: Logger; redis: Redis | undefined; redisPrefix: string },
): BlobStore {
  switch (config.FILE_SYSTEM) {
    case 'local':
      return new LocalBlobStore(config.SNAPSHOT_DIR);
    case 'oss': {
      if (config.OSS_BUCKET_NAME === undefined) throw new Error('FILE_SYSTEM=oss needs OSS_BUCKET_NAME');
      const { OSS_ACCESS_KEY_ID: accessKeyId, OSS_ACCESS_KEY_SECRET: secretAccessKey } = config;
      return new S3BlobStore({
        endpoint: config.OSS_ENDPOINT,
        region: config.OSS_REGION,
        bucket: config.OSS_BUCKET_NAME,
        credentials:
          accessKeyId !== undefined && secretAccessKey !== undefined
            ? { accessKeyId, secretAccessKey }
            : undefined,
        forcePathStyle: config.OSS_FORCE_PATH_STYLE,
        keyPrefix: config.OSS_KEY_PREFIX,
        onCleanupError: (err) =>
          parts.logger.warn(
            { err: messageOf(err) },
            'could not abort a failed multipart upload; its parts remain',
          ),
      });
    }
    case 'redis':
      if (parts.redis === undefined) throw new Error('FILE_SYSTEM=redis needs a Redis connection');
      return new RedisBlobStore({
        redis: parts.redis,
        keyPrefix: parts.redisPrefix,
        maxBytes: config.SNAPSHOT_REDIS_MAX_BYTES,
        ttlSeconds: config.SNAPSHOT_REDIS_TTL_SECONDS,
      });
  }
}
