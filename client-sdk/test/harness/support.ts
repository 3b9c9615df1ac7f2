/**
 * Shared set-up of the harness tests: the real server CLI with a snapshot store in a temp dir (or
 * given by the caller), and a fetch that records the archive uploads the SDK sends, with the names
 * in each tar, so tests can see exactly which files travelled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import {
  removeContainersOf,
  requireImage,
  type ServerProcess,
  startServerProcess,
} from '../../../support/server-process.js';
import { testDeploymentId } from '../../../test/support/fixture.js';
import { allocatePortRange } from '../../../test/support/port-ranges.js';
import type { FetchFunction } from '../../src/index.js';

export interface HarnessServer extends ServerProcess {
  /** Stops the server and removes its containers, snapshot dir and port range lock. */
  shutdown(): Promise<void>;
}

/** A server for one test file; FILE_SYSTEM=local in a fresh temp SNAPSHOT_DIR unless `env` says otherwise. */
export async function startHarnessServer(
  name: string,
  env: Record<string, string> = {},
): Promise<HarnessServer> {
  await requireImage();
  const deploymentId = testDeploymentId(name);
  const ports = allocatePortRange();
  const snapshotDir = mkdtempSync(join(tmpdir(), `${deploymentId}-snapshots-`));
  const server = await startServerProcess({
    deploymentId,
    portRange: ports.range,
    env: { FILE_SYSTEM: 'local', SNAPSHOT_DIR: snapshotDir, POOL_SIZE: '1', ...env },
  });
  return Object.assign(server, {
    async shutdown() {
      await server.stop();
      await removeContainersOf(deploymentId);
      rmSync(snapshotDir, { recursive: true, force: true });
      ports.release();
    },
  });
}

/** A fetch that records every archive upload (`PUT .../archive`) and the entry names of its tar. */
export function recordingFetch(): { fetch: FetchFunction; uploads: string[][] } {
  const uploads: string[][] = [];
  const fetchFn: FetchFunction = async (input, init) => {
    if (init.method === 'PUT' && new URL(input).pathname.endsWith('/archive')) {
      const body = init.body;
      if (!(body instanceof Uint8Array)) throw new Error('expected the archive as one Uint8Array body');
      uploads.push(await tarNames(body));
    }
    return fetch(input, init);
  };
  return { fetch: fetchFn, uploads };
}

async function tarNames(tar: Uint8Array): Promise<string[]> {
  const names: string[] = [];
  const reader = extract();
  const reading = (async () => {
    for await (const entry of reader) {
      names.push(entry.header.name);
      entry.resume();
    }
  })();
  Readable.from([Buffer.from(tar)]).pipe(reader);
  await reading;
  return names.sort();
}
