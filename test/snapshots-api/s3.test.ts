/**
 * The snapshot API with FILE_SYSTEM=oss against a real S3 protocol server (s3rver on loopback,
 * reached through a relay that can cut connections), through the real server CLI and real Docker
 * sandboxes; the catalog is JSON documents in the bucket. Beyond the shared suite: the store going
 * away in the middle of an upload leaves the key's previous version its head, intact.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../server/src/snapshots/s3-blob-store.js';
import type { SnapshotRecord } from '../../server/src/snapshots/snapshot-store.js';
import { type S3Server, snapshotSettingsFor, startS3Server } from '../../support/s3-server.js';
import { blobNameOf } from '../snapshots/snapshot-store-contract.js';
import { withBackend } from '../support/backends.js';
import { testDeploymentId, withServer } from '../support/fixture.js';
import { describeSnapshotApi } from './snapshot-api-suite.js';
import { acquire, type ErrorAnswer, MiB, sh, snapshot } from './workspace.js';

const DEPLOYMENT = testDeploymentId('h9-test-snapshots-s3');
const KEEP_VERSIONS = 2;
const KEY_PREFIX = `${DEPLOYMENT}/`;

let s3: S3Server;
let blobs: S3BlobStore;

beforeAll(async () => {
  s3 = await startS3Server();
  blobs = new S3BlobStore({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    forcePathStyle: true,
    keyPrefix: KEY_PREFIX,
  });
});

afterAll(async () => {
  await blobs?.close();
  await s3?.stop();
});

const dockerSandboxes = withBackend('docker');
const server = withServer('h9-test-snapshots-s3', {
  env: () => ({
    POOL_SIZE: '2',
    ...snapshotSettingsFor(s3, KEY_PREFIX),
    SNAPSHOT_KEEP_VERSIONS: String(KEEP_VERSIONS),
  }),
  warm: 2,
});

// Runs before the server's own stop: a store left failing would stall its clean-up.
afterAll(() => s3?.recover());

describeSnapshotApi('FILE_SYSTEM=oss (s3rver)', () => ({
  server,
  compute: dockerSandboxes,
  kind: 'oss',
  blobs,
  keepVersions: KEEP_VERSIONS,
}));

describe('snapshot API: the S3 store failing', () => {
  afterEach(() => s3.recover());

  it('a store going away mid-upload answers 502 SNAPSHOT_FAILED and leaves the previous version the head, restorable', async () => {
    const key = 'outage/session-1';
    const sandbox = await acquire(server);
    await sh(server, sandbox, 'head -c 4M /dev/urandom > data.bin');
    const good = await snapshot(server, sandbox, { key });
    const goodData = await sh(server, sandbox, 'sha256sum data.bin');

    // 40 MiB goes up in 8 MiB parts; the connection is cut after about 12 MiB of it.
    await sh(server, sandbox, 'head -c 40M /dev/urandom > data.bin');
    s3.failAfter(12 * MiB);
    const failed = await server.call<ErrorAnswer>('POST', `/v1/sandboxes/${sandbox}/snapshots`, { key });
    expect({ status: failed.status, code: failed.body.error?.code }).toEqual({
      status: 502,
      code: 'SNAPSHOT_FAILED',
    });
    s3.recover();

    // The sandbox is untouched and the key's line is as it was.
    expect((await server.call('GET', `/v1/sandboxes/${sandbox}`)).status).toBe(200);
    const line = await server.call<{ snapshots: SnapshotRecord[] }>(
      'GET',
      `/v1/snapshots?key=${encodeURIComponent(key)}`,
    );
    expect(line.body.snapshots).toEqual([good]);
    expect(await blobs.list('blobs')).toContain(blobNameOf(good));
    const restored = await acquire(server, { restore: { key } });
    expect(await sh(server, restored, 'sha256sum data.bin')).toBe(goodData);

    // Once the store is back, the same snapshot goes through as the next version.
    expect((await snapshot(server, sandbox, { key, expectedHead: good.id })).version).toBe(2);

    // DELETE ?snapshot=true while the store is down: the snapshot fails, so the sandbox stays.
    s3.failAfter(1 * MiB);
    const release = await server.call<ErrorAnswer>('DELETE', `/v1/sandboxes/${sandbox}?snapshot=true`);
    expect({ status: release.status, code: release.body.error?.code }).toEqual({
      status: 502,
      code: 'SNAPSHOT_FAILED',
    });
    s3.recover();
    expect(await sh(server, sandbox, 'ls data.bin')).toBe('data.bin\n');
  });
});
