/**
 * File write and read: `npx tsx bench/files.ts [--small-rounds N] [--large-rounds N]`.
 *
 * A 1 MiB and a 100 MiB file of random bytes are written and read back, all on ONE container, a
 * base sandbox of a server started for this benchmark:
 *
 * - phase 1, while the sandbox is still warm in the pool: directly through its sandboxd (the client
 *   SDK's `Sandbox.connectDirect` with the boot token the container was started with), round by
 *   round in turn with the Docker engine's archive API (putArchive of a one-file tar, getArchive
 *   parsed back out of its tar);
 * - phase 2, once the server handed that sandbox out: through the server's v1 files API (the
 *   client SDK, bodies streamed both ways), again in turn with the archive API.
 *
 * Every read is checked for its length. 1 MiB reports p50/p99 milliseconds, 100 MiB the MiB/s of
 * the median round. `run()` returns the rows; the suite (bench/run-all.ts) collects them.
 */
import { randomFillSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { SANDBOXD_ENV, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { Sandbox, type SandboxDataPlane } from '../client-sdk/src/index.js';
import { LABELS } from '../server/src/deployers/deployer.js';
import { containersOf, docker, waitForWarm } from '../support/server-process.js';
import { containerOfSandbox, withBenchServer } from './bench-server.js';
import {
  type BenchRow,
  elapsedMs,
  isMain,
  latencyRows,
  median,
  numberFlag,
  round3,
  runAlone,
  summarize,
} from './report.js';

const DEPLOYMENT = 'rsbx-bench-files';
const PORT_RANGE = '53100-53109';
const WORKSPACE = '/workspace';
/** The image's unprivileged user, who owns what it writes. */
const SANDBOX_UID = 1000;
const MiB = 1024 * 1024;

export interface FilesBenchOptions {
  /** Rounds of the 1 MiB file, per path and direction. Default 30. */
  smallRounds?: number;
  /** Rounds of the 100 MiB file, per path and direction. Default 3. */
  largeRounds?: number;
}

/** A file's content, and the same as a Blob (made once, so streaming it costs no copy per write). */
interface Payload {
  bytes: Uint8Array<ArrayBuffer>;
  blob: Blob;
}

/** One way in and out of the sandbox's workspace. */
interface FilePath {
  write(name: string, payload: Payload): Promise<unknown>;
  /** Reads the whole file and returns its length. */
  read(name: string): Promise<number>;
}

interface Samples {
  write: number[];
  read: number[];
}

export async function run(options: FilesBenchOptions = {}): Promise<BenchRow[]> {
  const sizes = [
    { label: '1 MiB', bytes: MiB, rounds: options.smallRounds ?? 30 },
    { label: '100 MiB', bytes: 100 * MiB, rounds: options.largeRounds ?? 3 },
  ];
  return withBenchServer(
    { deploymentId: DEPLOYMENT, portRange: PORT_RANGE, env: { POOL_SIZE: '1' } },
    async (server, client) => {
      await waitForWarm(server, 'base', 1);
      const warm = await warmContainer();
      const archive = archivePath(warm.container);
      const direct = sdkPath(await Sandbox.connectDirect({ url: warm.url, token: warm.bootToken }));

      const phase1 = [];
      for (const size of sizes) phase1.push(await measure(size, direct, archive));

      const sandbox = await client.create({ type: 'base' });
      try {
        const claimed = await containerOfSandbox(DEPLOYMENT, sandbox.id);
        if (claimed.id !== warm.container.id)
          throw new Error(`the server handed out ${claimed.id}, not the warm container ${warm.container.id}`);
        // The refiller replaces the claimed sandbox; let it finish before measuring.
        await waitForWarm(server, 'base', 1);
        const rows: BenchRow[] = [];
        for (const [i, size] of sizes.entries()) {
          const phase2 = await measure(size, sdkPath(sandbox), archive);
          rows.push(...sizeRows(size, 'server v1 files API', phase2));
          const first = phase1[i];
          if (first) rows.push(...sizeRows(size, 'sandboxd direct', first));
        }
        return rows;
      } finally {
        await sandbox.close();
      }
    },
  );
}

/** The only container of the deployment: the warm one, with its boot token and sandboxd URL. */
async function warmContainer(): Promise<{ container: Docker.Container; url: string; bootToken: string }> {
  const all = await containersOf(DEPLOYMENT);
  const [only] = all;
  if (all.length !== 1 || !only) throw new Error(`expected one warm container, found ${all.length}`);
  if (only.Labels[LABELS.pool] !== 'true') throw new Error(`container ${only.Id} is not a pooled one`);
  const container = docker.getContainer(only.Id);
  const info = await container.inspect();
  const prefix = `${SANDBOXD_ENV.bootToken}=`;
  const bootToken = info.Config.Env.find((e) => e.startsWith(prefix))?.slice(prefix.length);
  const hostPort = info.NetworkSettings.Ports[`${SANDBOXD_PORT}/tcp`]?.[0]?.HostPort;
  if (!bootToken || !hostPort) throw new Error(`container ${only.Id} has no boot token or published port`);
  return { container, url: `http://127.0.0.1:${hostPort}`, bootToken };
}

/** The client SDK's files API, bodies streamed both ways. */
function sdkPath(sandbox: SandboxDataPlane): FilePath {
  return {
    write: (name, payload) => sandbox.files.write(name, payload.blob.stream()),
    async read(name) {
      const reader = (await sandbox.files.read(name, { as: 'stream' })).getReader();
      let length = 0;
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        length += chunk.value.length;
      }
      return length;
    },
  };
}

/** Docker's archive API on the container: a one-file tar in, the file's tar out. */
function archivePath(container: Docker.Container): FilePath {
  return {
    async write(name, payload) {
      const pack = tar.pack();
      const content = Buffer.from(payload.bytes.buffer);
      pack.entry({ name, size: content.length, mode: 0o644, uid: SANDBOX_UID, gid: SANDBOX_UID }, content);
      pack.finalize();
      await container.putArchive(Readable.from(pack), { path: WORKSPACE });
    },
    async read(name) {
      const extract = tar.extract();
      (await container.getArchive({ path: `${WORKSPACE}/${name}` })).pipe(extract);
      let length = 0;
      for await (const entry of extract) {
        for await (const chunk of entry) length += (chunk as Buffer).length;
      }
      return length;
    },
  };
}

/** Writes and reads the file `rounds` times through `ours` and `baseline`, one after the other in each round. */
async function measure(
  size: { bytes: number; rounds: number },
  ours: FilePath,
  baseline: FilePath,
): Promise<{ ours: Samples; baseline: Samples }> {
  const bytes = randomFillSync(new Uint8Array(size.bytes));
  const payload: Payload = { bytes, blob: new Blob([bytes]) };
  const name = `bench-${size.bytes}.bin`;
  const result: { ours: Samples; baseline: Samples } = {
    ours: { write: [], read: [] },
    baseline: { write: [], read: [] },
  };
  for (let round = 0; round < size.rounds; round++) {
    for (const [path, samples] of [
      [ours, result.ours],
      [baseline, result.baseline],
    ] as const) {
      samples.write.push(await elapsedMs(() => path.write(name, payload)));
      let length = 0;
      samples.read.push(
        await elapsedMs(async () => {
          length = await path.read(name);
        }),
      );
      if (length !== size.bytes) throw new Error(`read ${length} bytes of ${name}, wrote ${size.bytes}`);
    }
  }
  return result;
}

function sizeRows(
  size: { label: string; bytes: number },
  oursName: string,
  samples: { ours: Samples; baseline: Samples },
): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const [direction, archiveCall] of [
    ['write', 'putArchive'],
    ['read', 'getArchive'],
  ] as const) {
    const benchmark = `${direction} ${size.label} file: ${oursName} vs Docker ${archiveCall}`;
    const ours = samples.ours[direction];
    const baseline = samples.baseline[direction];
    if (size.bytes < 10 * MiB) {
      rows.push(...latencyRows(benchmark, summarize(ours), summarize(baseline)));
    } else {
      rows.push({
        benchmark,
        stat: 'median',
        unit: 'MiB/s',
        better: 'higher',
        ours: mibPerSecond(size.bytes, ours),
        baseline: mibPerSecond(size.bytes, baseline),
        n: ours.length,
      });
    }
  }
  return rows;
}

/** MiB/s of the median round. */
function mibPerSecond(bytes: number, samplesMs: readonly number[]): number {
  return round3(bytes / MiB / (median(samplesMs) / 1000));
}

if (isMain(import.meta.url)) {
  runAlone(() => run({ smallRounds: numberFlag('small-rounds'), largeRounds: numberFlag('large-rounds') }));
}
