/**
 * Snapshot throughput, at the store and through the server: `npx tsx bench/snapshot.ts [--rounds N]`.
 *
 * A 100 MiB workspace of incompressible files (so its gzip tar stream is ~100 MiB too) is
 * snapshotted into each backend (local disk, S3 via s3rver on loopback, Redis) and read back:
 *
 * - `tar -cz > /dev/null`: the baseline, what making the archive costs by itself;
 * - `<backend> save`: `tar -cz` streamed into `store.save` (sha256 and size computed on the fly),
 *   i.e. a snapshot at the store level, without sandboxd and HTTP;
 * - `<backend> open`: `store.open` streamed out and sha256-verified, to nowhere;
 * - `<backend> restore`: `store.open` piped into `tar -xz` in an empty folder;
 * - `tar -xz < file`: the restore baseline, from a local file.
 *
 * MiB/s are of the archive's bytes; each figure is the median of the rounds. Then the same
 * workspace end to end, through the server and its sandboxes, against GNU tar in the sandbox
 * (bench/snapshot-server.ts). Prints two tables; `run()` returns the figures, `snapshotRows()` the
 * rows of the suite (bench/run-all.ts).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ConfigInput, configSchema } from '../server/src/config/schema.js';
import { createLogger } from '../server/src/observability/logger.js';
import { createSnapshotStore } from '../server/src/snapshots/create-snapshot-store.js';
import type { SnapshotStore } from '../server/src/snapshots/snapshot-store.js';
import { startRedisServer } from '../support/redis-server.js';
import { snapshotSettingsFor, startS3Server } from '../support/s3-server.js';
import { type BenchRow, isMain, median, numberFlag, round3 } from './report.js';
import { runThroughServer, type ServerSnapshotBenchResult } from './snapshot-server.js';

const MiB = 1024 * 1024;
const WORKSPACE_BYTES = 100 * MiB;
const FILE_BYTES = 512 * 1024;

export interface Figure {
  scenario: string;
  seconds: number;
  mibPerSecond: number;
}

export interface SnapshotBenchResult {
  workspaceBytes: number;
  archiveBytes: number;
  rounds: number;
  figures: Figure[];
  /** The end-to-end half: through the server, against tar in the sandbox. */
  throughServer: ServerSnapshotBenchResult;
}

export async function run(options: { rounds?: number } = {}): Promise<SnapshotBenchResult> {
  const stores = await runStores(options);
  return { ...stores, throughServer: await runThroughServer(options) };
}

async function runStores(options: { rounds?: number }): Promise<Omit<SnapshotBenchResult, 'throughServer'>> {
  const rounds = options.rounds ?? 3;
  const root = mkdtempSync(join(tmpdir(), 'rsbx-bench-snapshot-'));
  const logger = createLogger('silent');
  const s3 = await startS3Server();
  const redis = await startRedisServer();
  try {
    const workspace = join(root, 'workspace');
    makeWorkspace(workspace);
    const archive = join(root, 'workspace.tar.gz');
    await pipeline(tarCreate(workspace), createWriteStream(archive));
    const archiveBytes = (await stat(archive)).size;

    const backends: Array<[string, Partial<ConfigInput>]> = [
      ['local', { FILE_SYSTEM: 'local', SNAPSHOT_DIR: join(root, 'snapshots') }],
      ['s3rver', snapshotSettingsFor(s3, 'rsbx-bench')],
      [
        'redis',
        {
          FILE_SYSTEM: 'redis',
          REDIS_SERVER: '127.0.0.1',
          REDIS_PORT: String(redis.port),
          REDIS_KEY_PREFIX: 'rsbx-bench',
          SNAPSHOT_REDIS_MAX_BYTES: String(4 * archiveBytes),
        },
      ],
    ];

    const samples = new Map<string, number[]>();
    const time = async (scenario: string, work: () => Promise<unknown>) => {
      const started = performance.now();
      await work();
      const seconds = (performance.now() - started) / 1000;
      samples.set(scenario, [...(samples.get(scenario) ?? []), seconds]);
    };
    const restoreDir = join(root, 'restore');

    for (let round = 0; round < rounds; round++) {
      await time('tar -cz > /dev/null', () => pipeline(tarCreate(workspace), createWriteStream('/dev/null')));
      for (const [name, settings] of backends) {
        const store = await createSnapshotStore(configSchema.parse(settings), { logger });
        try {
          let saved: Awaited<ReturnType<SnapshotStore['save']>> | undefined;
          await time(`${name} save`, async () => {
            saved = await store.save({
              key: 'bench',
              stream: tarCreate(workspace),
              sandboxId: 'bench',
              type: 'base',
            });
          });
          if (saved === undefined) throw new Error('save gave no record');
          const id = saved.id;
          await time(`${name} open`, async () => {
            for await (const _ of (await store.open(id)).stream) {
              // Drained: open verifies sha256 as the bytes go by.
            }
          });
          await time(`${name} restore`, async () => {
            rmSync(restoreDir, { recursive: true, force: true });
            mkdirSync(restoreDir);
            await tarExtract((await store.open(id)).stream, restoreDir);
          });
          await store.delete(id);
        } finally {
          await store.close();
        }
      }
      await time('tar -xz < file', async () => {
        rmSync(restoreDir, { recursive: true, force: true });
        mkdirSync(restoreDir);
        await tarExtract(createReadStream(archive), restoreDir);
      });
    }

    const figures = [...samples].map(([scenario, seconds]) => {
      const middle = median(seconds);
      return { scenario, seconds: round3(middle), mibPerSecond: round3(archiveBytes / MiB / middle) };
    });
    return { workspaceBytes: WORKSPACE_BYTES, archiveBytes, rounds, figures };
  } finally {
    await s3.stop();
    await redis.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Snapshot and restore in MiB/s of the archive: at each store against tar alone on the host, and
 * through the server against tar in the sandbox. Reading a snapshot back (sha256-checked, to
 * nowhere) has no baseline.
 */
export function snapshotRows(result: SnapshotBenchResult): BenchRow[] {
  const size = `${Math.round(result.workspaceBytes / MiB)} MiB`;
  const server = result.throughServer;
  // [benchmark, its figures, our scenario, the baseline's scenario]
  type Spec = [string, Figure[], string, string | undefined];
  const rows: Spec[] = [
    ...['local', 's3rver', 'redis'].flatMap((store): Spec[] => [
      [
        `snapshot ${size} into the ${store} store vs \`tar -cz\` alone`,
        result.figures,
        `${store} save`,
        'tar -cz > /dev/null',
      ],
      [
        `read ${size} back from the ${store} store, sha256-checked`,
        result.figures,
        `${store} open`,
        undefined,
      ],
      [
        `restore ${size} from the ${store} store vs \`tar -xz\` of a file`,
        result.figures,
        `${store} restore`,
        'tar -xz < file',
      ],
    ]),
    [
      `snapshot ${size} through the server vs \`tar -cz\` in the sandbox`,
      server.figures,
      'server snapshot',
      'tar -cz in the sandbox',
    ],
    [
      `restore ${size} through the server vs \`tar -xz\` in the sandbox`,
      server.figures,
      'server restore',
      'tar -xz in the sandbox',
    ],
  ];
  const mibOf = (figures: Figure[], scenario: string) => {
    const found = figures.find((f) => f.scenario === scenario);
    if (!found) throw new Error(`bench/snapshot.ts measured no "${scenario}"`);
    return found.mibPerSecond;
  };
  return rows.map(([benchmark, figures, ours, baseline]) => ({
    benchmark,
    stat: 'median',
    unit: 'MiB/s',
    better: 'higher',
    ours: mibOf(figures, ours),
    baseline: baseline === undefined ? null : mibOf(figures, baseline),
    n: result.rounds,
  }));
}

/** Incompressible files in a few folders, so the archive is about as big as the workspace. */
function makeWorkspace(dir: string): void {
  for (let written = 0, index = 0; written < WORKSPACE_BYTES; written += FILE_BYTES, index++) {
    const folder = join(dir, `dir-${index % 8}`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `file-${index}.bin`), randomBytes(FILE_BYTES));
  }
}

/** `tar -cz -C dir .` as a stream; errors if tar fails. */
function tarCreate(dir: string): Readable {
  const tar = spawn('tar', ['-cz', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  tar.once('exit', (code) => {
    if (code !== 0) tar.stdout.destroy(new Error(`tar -cz exited with ${code}`));
  });
  return tar.stdout;
}

async function tarExtract(source: AsyncIterable<Uint8Array>, dir: string): Promise<void> {
  const tar = spawn('tar', ['-xz', '-C', dir], { stdio: ['pipe', 'ignore', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => tar.once('exit', resolve));
  await pipeline(source, tar.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`tar -xz exited with ${code}`);
}

function printTable(result: SnapshotBenchResult): void {
  const header = ['scenario', 'seconds', 'MiB/s'];
  const cellsOf = (figures: Figure[]) =>
    figures.map((f) => [f.scenario, f.seconds.toFixed(3), f.mibPerSecond.toFixed(1)]);
  const storeRows = cellsOf(result.figures);
  const server = result.throughServer;
  const serverRows = cellsOf(server.figures);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...[...storeRows, ...serverRows].map((r) => r[i]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const table = (rows: string[][]) => {
    console.log(line(header));
    for (const row of rows) console.log(line(row));
  };
  console.log(
    `workspace ${(result.workspaceBytes / MiB).toFixed(0)} MiB, archive ${(result.archiveBytes / MiB).toFixed(1)} MiB, ` +
      `median of ${result.rounds} round(s)\n`,
  );
  table(storeRows);
  console.log(
    `\nthrough the server: workspace ${(server.workspaceBytes / MiB).toFixed(0)} MiB in a sandbox, ` +
      `median of ${server.rounds} round(s)\n`,
  );
  table(serverRows);
}

if (isMain(import.meta.url)) {
  run({ rounds: numberFlag('rounds') }).then(printTable, (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
