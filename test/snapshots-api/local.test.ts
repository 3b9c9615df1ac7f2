/**
 * The snapshot API with FILE_SYSTEM=local (snapshots as files in SNAPSHOT_DIR, the catalog as JSON
 * documents beside them), through the real server CLI and real Docker sandboxes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { LocalBlobStore } from '../../server/src/snapshots/local-blob-store.js';
import { withServer } from '../support/fixture.js';
import { describeSnapshotApi } from './snapshot-api-suite.js';

const KEEP_VERSIONS = 2;

const snapshotDir = mkdtempSync(join(tmpdir(), 'h9-test-snapshots-local-snapshots-'));
afterAll(() => rmSync(snapshotDir, { recursive: true, force: true }));
const server = withServer('h9-test-snapshots-local', {
  env: {
    POOL_SIZE: '2',
    FILE_SYSTEM: 'local',
    SNAPSHOT_DIR: snapshotDir,
    SNAPSHOT_KEEP_VERSIONS: String(KEEP_VERSIONS),
  },
  warm: 2,
});

describeSnapshotApi('FILE_SYSTEM=local', () => ({
  server,
  kind: 'local',
  blobs: new LocalBlobStore(snapshotDir),
  keepVersions: KEEP_VERSIONS,
}));
