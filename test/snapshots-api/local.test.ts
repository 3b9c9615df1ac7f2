/**
 * The snapshot API with FILE_SYSTEM=local (snapshots as files in SNAPSHOT_DIR, the catalog as JSON
 * documents beside them), through the real server CLI and real Docker sandboxes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { LocalBlobStore } from '../../server/src/snapshots/local-blob-store.js';
import {
  removeContainersOf,
  requireImage,
  type ServerProcess,
  startServerProcess,
  waitForWarm,
} from '../support/server-process.js';
import { describeSnapshotApi } from './snapshot-api-suite.js';

const DEPLOYMENT = 'h9-test-snapshots-local';
const KEEP_VERSIONS = 2;

let server: ServerProcess;
let snapshotDir: string;

beforeAll(async () => {
  await requireImage();
  await removeContainersOf(DEPLOYMENT);
  snapshotDir = mkdtempSync(join(tmpdir(), `${DEPLOYMENT}-snapshots-`));
  server = await startServerProcess({
    deploymentId: DEPLOYMENT,
    portRange: '53600-53629',
    env: {
      POOL_SIZE: '2',
      FILE_SYSTEM: 'local',
      SNAPSHOT_DIR: snapshotDir,
      SNAPSHOT_KEEP_VERSIONS: String(KEEP_VERSIONS),
    },
  });
  await waitForWarm(server, 'base', 2);
});

afterAll(async () => {
  await server?.stop();
  await removeContainersOf(DEPLOYMENT);
  if (snapshotDir) rmSync(snapshotDir, { recursive: true, force: true });
});

describeSnapshotApi('FILE_SYSTEM=local', () => ({
  server,
  kind: 'local',
  blobs: new LocalBlobStore(snapshotDir),
  keepVersions: KEEP_VERSIONS,
}));
