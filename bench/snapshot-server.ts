/**
 * Snapshots end to end, through the server: the second half of bench/snapshot.ts.
 *
 * A server CLI of its own (FILE_SYSTEM=local, SNAPSHOT_DIR in a temp folder, a warm pool of one)
 * and a base sandbox whose workspace holds 100 MiB of incompressible files in `data/`, made inside
 * the sandbox. Each round, through the client SDK:
 *
 * - `server snapshot`: `sandbox.snapshots.create()`: sandboxd packs and gzips the workspace, the
 *   server streams it into the store (sha256 on the fly, fsync, rename) and records it;
 * - `server restore`: `client.create({ restore })`: a warm sandbox is claimed and the snapshot
 *   streamed, sha256-checked, into its sandboxd, which unpacks it (staged, then merged);
 * - `tar -cz in the sandbox`: GNU tar packs the same `data/` to /dev/null in the same sandbox (same
 *   CPU limit, same disk), timed by sandboxd around the process alone;
 * - `tar -xz in the sandbox`: that archive, stored beforehand, unpacked into an empty folder there.
 *
 * MiB/s are of each scenario's own archive bytes (the snapshot's, or tar's); each figure is the
 * median of the rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandResult, Sandbox } from '../client-sdk/src/index.js';
import { waitForWarm } from '../support/server-process.js';
import { withBenchServer } from './bench-server.js';
import { median, round3 } from './report.js';
import type { Figure } from './snapshot.js';

const DEPLOYMENT = 'rsbx-bench-snapshot';
const PORT_RANGE = '53680-53689';
const MiB = 1024 * 1024;
const WORKSPACE_MIB = 100;
const FILE_KIB = 512;
const FOLDERS = 8;

export interface ServerSnapshotBenchResult {
  workspaceBytes: number;
  rounds: number;
  figures: Figure[];
}

interface Sample {
  seconds: number;
  archiveBytes: number;
}

export async function runThroughServer(
  options: { rounds?: number } = {},
): Promise<ServerSnapshotBenchResult> {
  const rounds = options.rounds ?? 3;
  const snapshotDir = mkdtempSync(join(tmpdir(), `${DEPLOYMENT}-`));
  const samples = new Map<string, Sample[]>();
  const record = (scenario: string, sample: Sample) =>
    samples.set(scenario, [...(samples.get(scenario) ?? []), sample]);
  try {
    await withBenchServer(
      {
        deploymentId: DEPLOYMENT,
        portRange: PORT_RANGE,
        env: { POOL_SIZE: '1', FILE_SYSTEM: 'local', SNAPSHOT_DIR: snapshotDir },
      },
      async (server, client) => {
        await waitForWarm(server, 'base', 1);
        const source = await client.create();
        const files = (WORKSPACE_MIB * 1024) / FILE_KIB;
        await run(
          source,
          `for i in $(seq 0 ${files - 1}); do d=data/dir-$((i % ${FOLDERS})); mkdir -p $d; ` +
            `head -c ${FILE_KIB}K /dev/urandom > $d/file-$i.bin; done`,
        );
        const expected = await run(source, 'du -sb data | cut -f1');

        for (let round = 0; round < rounds; round++) {
          let started = performance.now();
          const snapshot = await source.snapshots.create();
          record('server snapshot', { seconds: since(started), archiveBytes: snapshot.sizeBytes });

          await waitForWarm(server, 'base', 1);
          started = performance.now();
          const restored = await client.create({ restore: { snapshotId: snapshot.id } });
          record('server restore', { seconds: since(started), archiveBytes: snapshot.sizeBytes });
          if ((await run(restored, 'du -sb data | cut -f1')) !== expected) {
            throw new Error('the restored workspace differs from the snapshotted one');
          }
          await restored.close();
          await client.snapshots.delete(snapshot.id);

          const archiveBytes = Number(
            await run(source, 'tar -cz -C data -f archive.tar.gz . && stat -c %s archive.tar.gz'),
          );
          record('tar -cz in the sandbox', {
            seconds: await processSeconds(source, 'tar -cz -C data . > /dev/null'),
            archiveBytes,
          });
          record('tar -xz in the sandbox', {
            seconds: await processSeconds(source, 'mkdir out && tar -xz -C out -f archive.tar.gz'),
            archiveBytes,
          });
          await run(source, 'rm -rf out archive.tar.gz');
        }
        await source.close();
      },
    );
  } finally {
    rmSync(snapshotDir, { recursive: true, force: true });
  }

  const figures = [...samples].map(([scenario, taken]) => {
    const seconds = median(taken.map((s) => s.seconds));
    const mibPerSecond = median(taken.map((s) => s.archiveBytes / MiB / s.seconds));
    return { scenario, seconds: round3(seconds), mibPerSecond: round3(mibPerSecond) };
  });
  return { workspaceBytes: WORKSPACE_MIB * MiB, rounds, figures };
}

/** Runs a shell command in the workspace; an error on a non-zero exit. */
async function exec(sandbox: Sandbox, command: string): Promise<CommandResult> {
  const result = await sandbox.commands.run(command);
  if (result.exitCode !== 0)
    throw new Error(`\`${command}\` exited with ${result.exitCode}: ${result.stderr}`);
  return result;
}

async function run(sandbox: Sandbox, command: string): Promise<string> {
  return (await exec(sandbox, command)).stdout.trim();
}

/** The process's own run time, as sandboxd measured it (no HTTP in it). */
async function processSeconds(sandbox: Sandbox, command: string): Promise<number> {
  return (await exec(sandbox, command)).durationMs / 1000;
}

function since(started: number): number {
  return (performance.now() - started) / 1000;
}
