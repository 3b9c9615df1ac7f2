/**
 * FILE_SYSTEM=oss against a real S3 protocol server (s3rver on loopback): blobs stream in by
 * multipart upload, the catalog's JSON documents sit beside them in the bucket. Each test gets its
 * own key prefix in one bucket. Beyond the contract: the server going away mid-upload.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigInput, configSchema } from '../../server/src/config/schema.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { createSnapshotStore } from '../../server/src/snapshots/create-snapshot-store.js';
import { S3BlobStore } from '../../server/src/snapshots/s3-blob-store.js';
import { type S3Server, snapshotSettingsFor, startS3Server } from '../../support/s3-server.js';
import { digestOf, MiB, randomish } from './payload.js';
import {
  blobNameOf,
  codeOf,
  describeSnapshotStoreContract,
  type OpenedBackend,
} from './snapshot-store-contract.js';

const logger = createLogger('silent');
let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3Server();
});

afterAll(async () => {
  await s3?.stop();
});

async function openS3(settings: Partial<ConfigInput> = {}): Promise<OpenedBackend> {
  const keyPrefix = `test-${randomUUID()}/`;
  const config = configSchema.parse({
    ...snapshotSettingsFor(s3, keyPrefix),
    OSS_FORCE_PATH_STYLE: 'true',
    ...settings,
  });
  const store = await createSnapshotStore(config, { logger });
  const blobs = new S3BlobStore({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
    keyPrefix,
  });
  return {
    store,
    blobs,
    // A failed multipart upload never becomes an object; list('blobs') in the contract covers it.
    leftovers: async () => [],
    async close() {
      await store.close();
      await blobs.close();
    },
  };
}

describeSnapshotStoreContract('s3 (s3rver)', openS3);

describe('s3 snapshot store', () => {
  let opened: OpenedBackend | undefined;

  afterEach(async () => {
    s3.recover();
    await opened?.close();
    opened = undefined;
  });

  it('a server going away mid-upload leaves the previous head in place and intact, and no object', async () => {
    opened = await openS3();
    const { store, blobs } = opened;
    const good = await store.save({
      key: 'outage',
      stream: randomish(3 * MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });

    // 100 MiB in 8 MiB parts: the connection is cut after about 20 MiB went out, parts in flight.
    const failed = store.save({
      key: 'outage',
      stream: randomish(100 * MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    s3.failAfter(20 * MiB);
    expect(await codeOf(failed)).toBe('SNAPSHOT_FAILED');

    s3.recover();
    expect(await store.latest('outage')).toEqual(good);
    expect(await store.list({ key: 'outage' })).toEqual([good]);
    expect(await digestOf((await store.open(good.id)).stream)).toEqual({
      sizeBytes: good.sizeBytes,
      sha256: good.sha256,
    });
    expect(await blobs.list('blobs')).toEqual([blobNameOf(good)]);
  });
});
