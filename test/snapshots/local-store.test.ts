/**
 * FILE_SYSTEM=local: blobs and the catalog's JSON documents in a real SNAPSHOT_DIR on local disk.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConfigInput, configSchema } from '../../server/src/config/schema.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { createSnapshotStore } from '../../server/src/snapshots/create-snapshot-store.js';
import { LocalBlobStore } from '../../server/src/snapshots/local-blob-store.js';
import { MiB, randomish } from './payload.js';
import { blobNameOf, describeSnapshotStoreContract, type OpenedBackend } from './snapshot-store-contract.js';

const logger = createLogger('silent');

async function openLocal(settings: Partial<ConfigInput> = {}): Promise<OpenedBackend & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'rsbx-test-snapshots-'));
  const config = configSchema.parse({ FILE_SYSTEM: 'local', SNAPSHOT_DIR: dir, ...settings });
  const store = await createSnapshotStore(config, { logger });
  const blobs = new LocalBlobStore(dir);
  return {
    dir,
    store,
    blobs,
    leftovers: async () => (await readdir(join(dir, '.tmp')).catch(() => [])).map((f) => `.tmp/${f}`),
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describeSnapshotStoreContract('local', openLocal);

describe('local snapshot store', () => {
  let opened: (OpenedBackend & { dir: string }) | undefined;

  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });

  it('writes blobs and catalog documents readable by the server user only', async () => {
    opened = await openLocal();
    const record = await opened.store.save({
      key: 'private',
      stream: randomish(MiB).chunks(),
      sandboxId: 'sbx-1',
      type: 'base',
    });
    const blob = await stat(join(opened.dir, blobNameOf(record)));
    expect(blob.mode & 0o777).toBe(0o600);
    expect((await stat(join(opened.dir, 'records', `${record.id}.json`))).mode & 0o777).toBe(0o600);
    expect((await stat(join(opened.dir, 'blobs'))).mode & 0o777).toBe(0o700);
  });

  it('keeps snapshots and heads across a restart of the store', async () => {
    opened = await openLocal();
    const first = await opened.store.save({
      key: 'durable',
      stream: randomish(MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    await opened.store.close();
    const again = await createSnapshotStore(
      configSchema.parse({ FILE_SYSTEM: 'local', SNAPSHOT_DIR: opened.dir }),
      {
        logger,
      },
    );
    opened.store = again;
    expect(await again.latest('durable')).toEqual(first);
    const second = await again.save({
      key: 'durable',
      expectedHead: first.id,
      stream: randomish(MiB).chunks(),
      sandboxId: 's',
      type: 'base',
    });
    expect(second.version).toBe(2);
  });
});
