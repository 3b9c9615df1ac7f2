/**
 * Exec throughput under load: `npx tsx bench/exec-throughput.ts [--sandboxes N] [--execs N]`.
 *
 * A server started for this benchmark hands out 20 base sandboxes. Then each sandbox runs `true`
 * N times in a row, all sandboxes at once, through the server's v1 exec API (the client SDK); then
 * the same through the Docker engine's exec API (create, start, read to the end, inspect) on the
 * same 20 containers. Reports execs per second over the whole burst and the p50/p99 latency of one
 * exec. `run()` returns the rows; the suite (bench/run-all.ts) collects them.
 */
import type { Sandbox, SandboxClient } from '../client-sdk/src/index.js';
import { containerOfSandbox, withBenchServer } from './bench-server.js';
import { dockerApiExec } from './exec-rtt.js';
import {
  type BenchRow,
  elapsedMs,
  isMain,
  latencyRows,
  numberFlag,
  round3,
  runAlone,
  summarize,
} from './report.js';

const DEPLOYMENT = 'rsbx-bench-exec-throughput';
const PORT_RANGE = '53110-53149';
/** Cold creates at once while acquiring the sandboxes, so the 2-core machine is not swamped. */
const ACQUIRE_CONCURRENCY = 4;
const WARM_UP_EXECS = 3;

export interface ExecThroughputOptions {
  /** Sandboxes running execs at once. Default 20. */
  sandboxes?: number;
  /** Execs of `true` each sandbox runs, per path. Default 50. */
  execsPerSandbox?: number;
}

interface Burst {
  latenciesMs: number[];
  wallMs: number;
}

export async function run(options: ExecThroughputOptions = {}): Promise<BenchRow[]> {
  const count = options.sandboxes ?? 20;
  const execs = options.execsPerSandbox ?? 50;
  return withBenchServer(
    {
      deploymentId: DEPLOYMENT,
      portRange: PORT_RANGE,
      env: { POOL_SIZE: '0', MAX_SANDBOX_INSTANCES: String(count) },
    },
    async (_server, client) => {
      const sandboxes = await acquire(client, count);
      try {
        const containers = await Promise.all(sandboxes.map((s) => containerOfSandbox(DEPLOYMENT, s.id)));
        const viaServer = sandboxes.map((sandbox) => () => serverExec(sandbox));
        const viaDocker = containers.map((container) => () => dockerApiExec(container));
        await burst(viaServer, WARM_UP_EXECS);
        await burst(viaDocker, WARM_UP_EXECS);
        const ours = await burst(viaServer, execs);
        const baseline = await burst(viaDocker, execs);
        const benchmark = `exec \`true\`, ${count} sandboxes in parallel: server v1 exec API vs Docker exec API`;
        return [
          {
            benchmark,
            stat: 'rate',
            unit: 'execs/s',
            better: 'higher',
            ours: rate(ours),
            baseline: rate(baseline),
            n: ours.latenciesMs.length,
          },
          ...latencyRows(benchmark, summarize(ours.latenciesMs), summarize(baseline.latenciesMs)),
        ];
      } finally {
        await Promise.all(sandboxes.map((s) => s.close().catch(() => undefined)));
      }
    },
  );
}

/** Acquires `count` sandboxes, a few at a time; releases them all when one acquire fails. */
async function acquire(client: SandboxClient, count: number): Promise<Sandbox[]> {
  const sandboxes: Sandbox[] = [];
  try {
    while (sandboxes.length < count) {
      const batch = Math.min(ACQUIRE_CONCURRENCY, count - sandboxes.length);
      const acquired = await Promise.allSettled(
        Array.from({ length: batch }, () => client.create({ type: 'base' })),
      );
      for (const result of acquired) if (result.status === 'fulfilled') sandboxes.push(result.value);
      const failed = acquired.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return sandboxes;
  } catch (error) {
    await Promise.all(sandboxes.map((s) => s.close().catch(() => undefined)));
    throw error;
  }
}

async function serverExec(sandbox: Sandbox): Promise<void> {
  const result = await sandbox.commands.run(['true']);
  if (result.exitCode !== 0) throw new Error(`true exited ${result.exitCode} in ${sandbox.id}`);
}

/** Every runner runs `times` execs one after another, all runners at once. */
async function burst(runners: ReadonlyArray<() => Promise<void>>, times: number): Promise<Burst> {
  const latenciesMs: number[] = [];
  const wallMs = await elapsedMs(() =>
    Promise.all(
      runners.map(async (once) => {
        for (let i = 0; i < times; i++) latenciesMs.push(await elapsedMs(once));
      }),
    ),
  );
  return { latenciesMs, wallMs };
}

function rate(burst: Burst): number {
  return round3(burst.latenciesMs.length / (burst.wallMs / 1000));
}

if (isMain(import.meta.url)) {
  runAlone(() => run({ sandboxes: numberFlag('sandboxes'), execsPerSandbox: numberFlag('execs') }));
}
