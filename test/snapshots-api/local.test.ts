/**
 * The snapshot API with FILE_SYSTEM=local (snapshots as files in SNAPSHOT_DIR, the catalog as JSON
 * documents beside them), through the real server CLI, with sandboxes on each backend (Docker
 * containers, pods on the fake Kubernetes API server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { LocalBlobStore } from '../../server/src/snapshots/local-blob-store.js';
import { BACKENDS, withBackend } from '../support/backends.js';
import { withServer } from '../support/fixture.js';
import { describeSnapshotApi } from './snapshot-api-suite.js';

const KEEP_VERSIONS = 2;

describe.each(BACKENDS)('sandboxes on %s', (name) => {
  const snapshotDir = mkdtempSync(join(tmpdir(), `h9-test-snapshots-local-${name}-`));
  afterAll(() => rmSync(snapshotDir, { recursive: true, force: true }));
  const compute = withBackend(name);
  const server = withServer(`h9-test-snapshots-local-${name}`, {
    env: () => ({
      ...compute.settings(),
      POOL_SIZE: '2',
      FILE_SYSTEM: 'local',
      SNAPSHOT_DIR: snapshotDir,
      SNAPSHOT_KEEP_VERSIONS: String(KEEP_VERSIONS),
    }),
    warm: 2,
  });

  describeSnapshotApi(`FILE_SYSTEM=local on ${name}`, () => ({
    server,
    compute,
    kind: 'local',
    blobs: new LocalBlobStore(snapshotDir),
    keepVersions: KEEP_VERSIONS,
  }));
});
