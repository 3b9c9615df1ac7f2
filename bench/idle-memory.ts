/**
 * What an idle sandbox costs in memory: `npx tsx bench/idle-memory.ts [--settle S] [--samples N]`.
 *
 * A server started for this benchmark hands out one base sandbox, which runs one `true` and is
 * then left alone; next to it runs a plain container of the same image whose command is
 * `sleep infinity` (tini and sleep, no sandboxd), locked down the same way. After `settle` seconds,
 * `samples` readings one second apart of:
 *
 * - sandboxd's resident set (VmRSS) and its anonymous part (RssAnon, without the mapped node
 *   binary and libraries), from /proc inside the sandbox through the Docker exec API (sandboxd
 *   is tini's child, not PID 1, so `ps` finds it by its command line);
 * - each container's memory usage as the engine reports it (`docker stats`: usage less the
 *   inactive page cache).
 *
 * Reports the median of each in MiB. `run()` returns the rows; the suite (bench/run-all.ts)
 * collects them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { BASE_IMAGE, docker, dockerExec } from '../support/sandboxd-container.js';
import { BENCH_LABEL, containerOfSandbox, removeBenchContainers, withBenchServer } from './bench-server.js';
import { type BenchRow, isMain, median, numberFlag, round3, runAlone } from './report.js';

const DEPLOYMENT = 'rsbx-bench-idle-memory';
const PORT_RANGE = '53150-53159';
const BENCHMARK = 'idle-memory';
const SANDBOXD_COMMAND = 'node /opt/sandboxd/sandboxd.mjs';
const MiB = 1024 * 1024;

export interface IdleMemoryOptions {
  /** Seconds both containers sit idle before the first reading. Default 5. */
  settleSeconds?: number;
  /** Readings, one second apart. Default 5. */
  samples?: number;
}

export async function run(options: IdleMemoryOptions = {}): Promise<BenchRow[]> {
  const settleSeconds = options.settleSeconds ?? 5;
  const samples = options.samples ?? 5;
  await removeBenchContainers(BENCHMARK);
  return withBenchServer(
    { deploymentId: DEPLOYMENT, portRange: PORT_RANGE, env: { POOL_SIZE: '0' } },
    async (_server, client) => {
      const sandbox = await client.create({ type: 'base' });
      try {
        const result = await sandbox.commands.run(['true']);
        if (result.exitCode !== 0) throw new Error(`true exited ${result.exitCode}`);
        const container = await containerOfSandbox(DEPLOYMENT, sandbox.id);
        const plain = await startSleepingContainer(container);
        try {
          await sleep(settleSeconds * 1000);
          const rss: number[] = [];
          const anon: number[] = [];
          const sandboxUsage: number[] = [];
          const plainUsage: number[] = [];
          for (let i = 0; i < samples; i++) {
            if (i > 0) await sleep(1000);
            const [sandboxd, sandboxBytes, plainBytes] = await Promise.all([
              sandboxdMemory(container),
              engineMemoryBytes(container),
              engineMemoryBytes(plain),
            ]);
            rss.push(sandboxd.rss);
            anon.push(sandboxd.anon);
            sandboxUsage.push(sandboxBytes);
            plainUsage.push(plainBytes);
          }
          return [
            {
              benchmark: 'idle sandbox: sandboxd resident set (VmRSS)',
              stat: 'median',
              unit: 'MiB',
              better: 'lower',
              ours: medianMiB(rss),
              baseline: null,
              n: samples,
            },
            {
              benchmark: 'idle sandbox: sandboxd resident anonymous memory (RssAnon)',
              stat: 'median',
              unit: 'MiB',
              better: 'lower',
              ours: medianMiB(anon),
              baseline: null,
              n: samples,
            },
            {
              benchmark:
                'idle container memory (engine stats): sandbox vs `sleep infinity` container, same image',
              stat: 'median',
              unit: 'MiB',
              better: 'lower',
              ours: medianMiB(sandboxUsage),
              baseline: medianMiB(plainUsage),
              n: samples,
            },
          ];
        } finally {
          await plain.remove({ force: true });
        }
      } finally {
        await sandbox.close();
      }
    },
  );
}

/** A container of the same image and limits as `like`, running `sleep infinity` under tini. */
async function startSleepingContainer(like: Docker.Container): Promise<Docker.Container> {
  const { HostConfig, Config } = await like.inspect();
  const container = await docker.createContainer({
    Image: BASE_IMAGE,
    Cmd: ['sleep', 'infinity'],
    User: Config.User,
    Labels: { [BENCH_LABEL]: BENCHMARK },
    HostConfig: {
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      Memory: HostConfig.Memory,
      MemorySwap: HostConfig.MemorySwap,
      NanoCpus: HostConfig.NanoCpus,
      PidsLimit: HostConfig.PidsLimit,
      Tmpfs: HostConfig.Tmpfs,
      NetworkMode: 'none',
    },
  });
  try {
    await container.start();
    return container;
  } catch (error) {
    await container.remove({ force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * sandboxd's resident memory from /proc/<pid>/status inside the sandbox (Docker exec sees every
 * process there): VmRSS, and RssAnon, the part that is its own rather than mapped files.
 */
async function sandboxdMemory(container: Docker.Container): Promise<{ rss: number; anon: number }> {
  const ps = await dockerExec(container, ['ps', '-eo', 'pid=,args=']);
  if (ps.exitCode !== 0) throw new Error(`ps exited ${ps.exitCode}: ${ps.output}`);
  // tini's own command line ends with sandboxd's, so match the whole of it.
  const pid = ps.output
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .find((match) => match?.[2]?.trim() === SANDBOXD_COMMAND)?.[1];
  if (pid === undefined) throw new Error(`no sandboxd process in ps output:\n${ps.output}`);
  const status = await dockerExec(container, ['cat', `/proc/${pid}/status`]);
  if (status.exitCode !== 0) throw new Error(`reading /proc/${pid}/status failed: ${status.output}`);
  const kib = (field: string) => {
    const value = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status.output)?.[1];
    if (value === undefined) throw new Error(`no ${field} in /proc/${pid}/status:\n${status.output}`);
    return Number(value) * 1024;
  };
  return { rss: kib('VmRSS'), anon: kib('RssAnon') };
}

/** Memory usage as `docker stats` shows it: usage less the inactive page cache (cgroup v1 or v2). */
async function engineMemoryBytes(container: Docker.Container): Promise<number> {
  const { memory_stats: memory } = await container.stats({ stream: false, 'one-shot': true });
  const stats = memory.stats as Partial<Record<string, number>> | undefined;
  const inactiveFile = stats?.total_inactive_file ?? stats?.inactive_file ?? 0;
  if (!Number.isFinite(memory.usage)) throw new Error(`no memory usage in the stats of ${container.id}`);
  return inactiveFile < memory.usage ? memory.usage - inactiveFile : memory.usage;
}

function medianMiB(bytes: readonly number[]): number {
  return round3(median(bytes) / MiB);
}

if (isMain(import.meta.url)) {
  runAlone(() => run({ settleSeconds: numberFlag('settle'), samples: numberFlag('samples') }));
}
