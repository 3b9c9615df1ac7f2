/**
 * The benchmark suite: `npm run bench` (which readies the machine first), or `npx tsx bench/run-all.ts`.
 *
 * Runs every benchmark one after another, each with ours and its baseline measured side by side in
 * this run, prints one table and writes it, with the machine it ran on and the load on it, to
 * bench/results.json. A benchmark that fails shows as FAILED in the table, the others still run,
 * and the suite exits non-zero at the end. Each benchmark removes its own containers, failure or not.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { docker } from '../support/server-process.js';
import { run as runAcquire } from './acquire.js';
import { run as runExecRtt } from './exec-rtt.js';
import { run as runExecThroughput } from './exec-throughput.js';
import { run as runFiles } from './files.js';
import { run as runIdleMemory } from './idle-memory.js';
import { type BenchRow, failedRow, formatTable, latencyRows, RATIO_LEGEND, round3 } from './report.js';
import { type BenchmarkResult, type Machine, RESULTS_FILE, writeResults } from './results.js';
import { run as runSnapshot, snapshotRows } from './snapshot.js';

/** Chosen so the whole suite stays under ~10 minutes on a 2-core machine. */
const ITERATIONS = {
  execRtt: { samplesPerSide: 200, warmUp: 20, note: 'fixed in bench/exec-rtt.ts' },
  acquire: { warmRounds: 30, coldRounds: 10, rawRounds: 10, burstRounds: 3 },
  files: { smallRounds: 30, largeRounds: 3 },
  execThroughput: { sandboxes: 20, execsPerSandbox: 50 },
  idleMemory: { settleSeconds: 5, samples: 5 },
  snapshot: { rounds: 3 },
};

interface Benchmark {
  name: string;
  iterations: Record<string, unknown>;
  run: () => Promise<BenchRow[]>;
}

const BENCHMARKS: Benchmark[] = [
  { name: 'exec round trip', iterations: ITERATIONS.execRtt, run: execRttRows },
  { name: 'acquire', iterations: ITERATIONS.acquire, run: acquireRows },
  { name: 'files', iterations: ITERATIONS.files, run: () => runFiles(ITERATIONS.files) },
  {
    name: 'exec throughput',
    iterations: ITERATIONS.execThroughput,
    run: () => runExecThroughput(ITERATIONS.execThroughput),
  },
  { name: 'idle memory', iterations: ITERATIONS.idleMemory, run: () => runIdleMemory(ITERATIONS.idleMemory) },
  {
    name: 'snapshot',
    iterations: ITERATIONS.snapshot,
    run: async () => snapshotRows(await runSnapshot(ITERATIONS.snapshot)),
  },
];

async function execRttRows(): Promise<BenchRow[]> {
  const [sandboxd, dockerApi] = await runExecRtt();
  if (!sandboxd || !dockerApi) throw new Error('bench/exec-rtt.ts returned fewer than two rows');
  return latencyRows('exec `true` round trip: sandboxd HTTP vs Docker exec API', sandboxd, dockerApi);
}

/**
 * Every acquire figure against the raw engine's create + start + ready, the server-side time, and
 * the warm bursts per state store (no baseline: they compare with each other).
 */
async function acquireRows(): Promise<BenchRow[]> {
  const result = await runAcquire(ITERATIONS.acquire);
  const raw = result.figures.find((f) => f.scenario.startsWith('raw engine'));
  const rows = result.figures
    .filter((f) => f !== raw)
    .flatMap((f) => latencyRows(raw ? `${f.scenario} vs ${raw.scenario}` : f.scenario, f, raw));
  rows.push({
    benchmark: 'warm acquire inside the server (claim, /init, record; from /metrics)',
    stat: 'mean',
    unit: 'ms',
    better: 'lower',
    ours: result.warmServerSideMeanMs,
    baseline: null,
    n: ITERATIONS.acquire.warmRounds,
  });
  for (const burst of result.throughput) {
    rows.push(
      {
        benchmark: burst.scenario,
        stat: 'rate',
        unit: 'acquires/s',
        better: 'higher',
        ours: burst.acquiresPerSecond,
        baseline: null,
        n: burst.n,
      },
      ...latencyRows(burst.scenario, burst),
    );
  }
  return rows;
}

async function runBenchmark(benchmark: Benchmark): Promise<BenchmarkResult> {
  const loadAverageAtStart = loadAverage();
  console.error(
    `[bench] ${benchmark.name} ${JSON.stringify(benchmark.iterations)}, load ${loadAverageAtStart}`,
  );
  const started = performance.now();
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  const base = { name: benchmark.name, iterations: benchmark.iterations, loadAverageAtStart };
  try {
    const rows = await benchmark.run();
    console.error(`[bench] ${benchmark.name} done in ${seconds()} s, load ${loadAverage()}`);
    return { ...base, status: 'ok', seconds: seconds(), loadAverageAtEnd: loadAverage(), rows };
  } catch (error) {
    console.error(`[bench] ${benchmark.name} FAILED after ${seconds()} s:`, error);
    const row = failedRow(benchmark.name, error);
    return {
      ...base,
      status: 'failed',
      seconds: seconds(),
      loadAverageAtEnd: loadAverage(),
      rows: [row],
      error: row.error,
    };
  }
}

function loadAverage(): number[] {
  return os.loadavg().map((load) => Math.round(load * 100) / 100);
}

async function describeMachine(date: Date): Promise<Machine> {
  const cpus = os.cpus();
  const [version, info] = await Promise.all([
    docker.version(),
    docker.info() as Promise<Record<string, unknown>>,
  ]);
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: round3(os.totalmem() / 1024 ** 3),
    kernel: `${os.type()} ${os.release()}`,
    os: osName(),
    docker: {
      version: version.Version,
      apiVersion: version.ApiVersion,
      storageDriver: String(info.Driver),
      cgroupVersion: String(info.CgroupVersion),
    },
    node: process.version,
    date: date.toISOString(),
  };
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os.platform();
  } catch {
    return os.platform();
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const machine = await describeMachine(startedAt);
  const loadAtStart = loadAverage();
  // The suite's own containers are all gone by its end, so both counts are others' load.
  const containersRunningAtStart = (await docker.listContainers()).length;
  console.error(`[bench] iterations: ${JSON.stringify(ITERATIONS)}`);
  const results: BenchmarkResult[] = [];
  for (const benchmark of BENCHMARKS) results.push(await runBenchmark(benchmark));
  const loadAtEnd = loadAverage();
  const containersRunningAtEnd = (await docker.listContainers()).length;
  const finishedAt = new Date();
  const rows = results.flatMap((r) => r.rows);

  const machineLine =
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB.toFixed(1)} GiB RAM; ${machine.os}, ` +
    `${machine.kernel}; Docker ${machine.docker.version} (${machine.docker.storageDriver}, cgroup v${machine.docker.cgroupVersion}); ` +
    `Node ${machine.node}; ${machine.date}; load average ${loadAtStart.join(' ')} at start, ${loadAtEnd.join(' ')} at end; ` +
    `${containersRunningAtStart} other containers running at start, ${containersRunningAtEnd} at end`;
  console.log(`Machine: ${machineLine}\n`);
  console.log(formatTable(rows));
  console.log(`\n${RATIO_LEGEND}`);

  writeResults({
    machine,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    loadAverage: { atStart: loadAtStart, atEnd: loadAtEnd },
    containersRunning: { atStart: containersRunningAtStart, atEnd: containersRunningAtEnd },
    iterations: ITERATIONS,
    ratioLegend: RATIO_LEGEND,
    benchmarks: results,
  });
  console.log(
    `\nwritten to ${RESULTS_FILE}; \`node --import tsx scripts/bench-table.ts\` puts it in the README`,
  );

  const failed = results.filter((r) => r.status === 'failed').map((r) => r.name);
  if (failed.length > 0) {
    console.error(`[bench] failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
