/**
 * How fast an agent gets a working sandbox:
 * `npx tsx bench/acquire.ts [--warm N] [--k8s N] [--cold N] [--raw N] [--burst N]`.
 *
 * - warm: the server CLI with a pool of 10; each round waits for a full pool (so no create competes
 *   for the CPU), then times POST /v1/sandboxes until a first exec of `true` answers, then releases.
 * - warm on the Kubernetes deployer: the same rounds with the sandboxes as pods on the fake API
 *   server (the tests' fake-kube; its node agent runs each pod as a container), dialled at the pod
 *   IP, then again with K8S_ACCESS=proxy through the fake's pods/proxy over TLS.
 * - cold: the server with POOL_SIZE=0, the same round: every acquire creates its sandbox.
 * - raw engine: what Docker itself costs: dockerode create + start, then polling sandboxd's /healthz
 *   until it answers. Cold acquires should stay within 1.5x of this.
 * - warm bursts, per state store: a pool of 16; each round waits for a full pool, then fires 16
 *   acquires at once (all served from the pool) and times each POST; throughput is acquires per
 *   second of burst. Three servers in turn: one worker on the in-memory store, one worker on Redis,
 *   two workers (WORKERS=2) on Redis, each against a fresh redis-server of the run's own.
 *
 * Prints a table; `run()` returns the figures for a suite that collects them.
 */
import { randomBytes } from 'node:crypto';
import { SANDBOXD_ENV, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { waitForSandboxd } from '../server/src/deployers/wait-ready.js';
import { BASE_IMAGE } from '../support/images.js';
import { startRedisServer } from '../support/redis-server.js';
import { docker, eventually, type ServerProcess, waitForWarm } from '../support/server-process.js';
// The one import from the tests: their fake Kubernetes API server (fakes live with the tests).
import { type FakeKubeOptions, startFakeKube } from '../test/support/fake-kube/index.js';
import { BENCH_LABEL, withBenchServer } from './bench-server.js';
import { isMain, type LatencySummary, numberFlag, round3, summarize } from './report.js';

const IMAGE = BASE_IMAGE;
const DEPLOYMENT = 'rsbx-bench-acquire';
const WARM_POOL = 10;
/**
 * Below the kernel's ephemeral range (32768-60999 by default): a client socket of the run's own
 * can hold a port in that range as its local end, and the raw round, unlike the server, does not
 * move on to another port.
 */
const RAW_PORTS = { start: 29980, end: 29999 };
const BURST_POOL = 16;
const BURST_SETUPS = [
  { scenario: 'warm burst: 1 worker, in-memory store', workers: 1, redis: false },
  { scenario: 'warm burst: 1 worker, Redis store', workers: 1, redis: true },
  { scenario: 'warm burst: 2 workers, Redis store', workers: 2, redis: true },
] as const;

export interface Figure extends LatencySummary {
  scenario: string;
}

/** A latency figure of acquires fired together, with the rate they were served at. */
export interface ThroughputFigure extends Figure {
  acquiresPerSecond: number;
}

export interface AcquireBenchResult {
  figures: Figure[];
  /** Warm bursts per state store and worker count (see the header). */
  throughput: ThroughputFigure[];
  /** Cold acquire p50 over raw engine p50; the aim is <= 1.5. */
  coldOverRaw: number;
  /** The aim is <= 10 ms. */
  warmP50Ms: number;
  /** Mean time the server itself spent in warm acquires (claim, /init, record), from /metrics. */
  warmServerSideMeanMs: number;
}

export interface AcquireBenchOptions {
  warmRounds?: number;
  /** Warm rounds with the Kubernetes deployer, on the fake API server. */
  kubernetesRounds?: number;
  coldRounds?: number;
  rawRounds?: number;
  /** Bursts of BURST_POOL acquires per state-store setup. */
  burstRounds?: number;
}

export async function run(options: AcquireBenchOptions = {}): Promise<AcquireBenchResult> {
  const {
    warmRounds = 50,
    kubernetesRounds = 30,
    coldRounds = 10,
    rawRounds = 10,
    burstRounds = 6,
  } = options;

  const warm = await withServer(WARM_POOL, async (server) => {
    const rounds = await warmAcquires(server, warmRounds);
    return { ...rounds, serverMeanMs: await serverSideAcquireMeanMs(server) };
  });
  // The same rounds with the sandboxes as pods. No cluster can be had here, so the pods are the
  // fake API server's (the tests' fake-kube, whose node agent runs them as containers): this is the
  // deployer's and the server's own cost on top of what a cluster adds.
  const onKubernetes = async (fakeOptions: FakeKubeOptions, env: Record<string, string>) => {
    const fake = await startFakeKube(fakeOptions);
    return withServer(WARM_POOL, (server) => warmAcquires(server, kubernetesRounds), {
      CONTAINER_DEPLOYMENT: 'k8s',
      KUBECONFIG_PATH: fake.kubeconfigPath,
      ...env,
    }).finally(() => fake.stop());
  };
  const podIP = await onKubernetes({}, {});
  // K8S_ACCESS=proxy: every sandboxd call through the fake's pods/proxy over TLS (its pod IPs unreachable).
  const proxied = await onKubernetes({ tls: true, unroutablePodIPs: true }, { K8S_ACCESS: 'proxy' });

  const cold = await withServer(0, async (server) => {
    const total: number[] = [];
    for (let i = 0; i < coldRounds; i++) total.push((await acquireAndExec(server)).totalMs);
    return total;
  });

  const raw: number[] = [];
  for (let i = 0; i < rawRounds; i++)
    raw.push(await rawEngineStart(RAW_PORTS.start + (i % (RAW_PORTS.end - RAW_PORTS.start + 1))));

  const throughput: ThroughputFigure[] = [];
  for (const setup of BURST_SETUPS) throughput.push(await warmBursts(setup, burstRounds));

  const figures = [
    figure('warm acquire + first exec', warm.total),
    figure('warm acquire (POST only)', warm.acquireOnly),
    figure('warm acquire + first exec, k8s deployer (fake API server)', podIP.total),
    figure('warm acquire + first exec, k8s through the API server proxy (fake, TLS)', proxied.total),
    figure('cold acquire + first exec', cold),
    figure('raw engine create+start+ready', raw),
  ];
  const p50 = (scenario: string) => figures.find((f) => f.scenario === scenario)?.p50Ms ?? Number.NaN;
  return {
    figures,
    throughput,
    warmP50Ms: p50('warm acquire + first exec'),
    warmServerSideMeanMs: round3(warm.serverMeanMs),
    coldOverRaw: p50('cold acquire + first exec') / p50('raw engine create+start+ready'),
  };
}

async function withServer<T>(
  poolSize: number,
  work: (server: ServerProcess) => Promise<T>,
  env: Record<string, string> = {},
): Promise<T> {
  return withBenchServer(
    { deploymentId: DEPLOYMENT, portRange: '52900-52979', env: { POOL_SIZE: String(poolSize), ...env } },
    (server) => work(server),
  );
}

/** `rounds` warm acquires, each waiting for a full pool first (so no create competes for the CPU). */
async function warmAcquires(
  server: ServerProcess,
  rounds: number,
): Promise<{ total: number[]; acquireOnly: number[] }> {
  const total: number[] = [];
  const acquireOnly: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await waitForWarm(server, 'base', WARM_POOL);
    const timing = await acquireAndExec(server);
    if (!timing.fromPool) throw new Error('a warm round missed the pool');
    total.push(timing.totalMs);
    acquireOnly.push(timing.acquireMs);
  }
  return { total, acquireOnly };
}

async function acquireAndExec(
  server: ServerProcess,
): Promise<{ totalMs: number; acquireMs: number; fromPool: boolean }> {
  const started = performance.now();
  const acquired = await server.call<{ id: string; fromPool: boolean }>('POST', '/v1/sandboxes', {});
  const acquireMs = performance.now() - started;
  if (acquired.status !== 201)
    throw new Error(`acquire answered ${acquired.status}: ${JSON.stringify(acquired.body)}`);
  const exec = await server.call<{ exitCode: number }>('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
    command: ['true'],
  });
  const totalMs = performance.now() - started;
  if (exec.status !== 200 || exec.body.exitCode !== 0) throw new Error(`exec answered ${exec.status}`);
  const released = await server.fetch(`/v1/sandboxes/${acquired.body.id}`, { method: 'DELETE' });
  if (released.status !== 204) throw new Error(`release answered ${released.status}`);
  return { totalMs, acquireMs, fromPool: acquired.body.fromPool };
}

/** `rounds` bursts of BURST_POOL simultaneous warm acquires against one server setup. */
async function warmBursts(setup: (typeof BURST_SETUPS)[number], rounds: number): Promise<ThroughputFigure> {
  const redis = setup.redis ? await startRedisServer() : undefined;
  const env: Record<string, string> = redis
    ? {
        REDIS_ENABLED: 'true',
        REDIS_SERVER: '127.0.0.1',
        REDIS_PORT: String(redis.port),
        SANDBOX_TOKEN_SECRET: randomBytes(32).toString('hex'),
        WORKERS: String(setup.workers),
      }
    : {};
  try {
    return await withServer(
      BURST_POOL,
      async (server) => {
        if (setup.workers > 1) {
          await eventually('every worker to listen', async () =>
            server.logs().some((line) => line.msg === 'workers listening') ? true : undefined,
          );
        }
        const samples: number[] = [];
        let burstMs = 0;
        for (let i = 0; i < rounds; i++) {
          await waitForWarm(server, 'base', BURST_POOL);
          const started = performance.now();
          const ids = await Promise.all(
            Array.from({ length: BURST_POOL }, async () => {
              const sent = performance.now();
              const acquired = await server.call<{ id: string; fromPool: boolean }>(
                'POST',
                '/v1/sandboxes',
                {},
              );
              samples.push(performance.now() - sent);
              if (acquired.status !== 201 || !acquired.body.fromPool) {
                throw new Error(
                  `a burst acquire missed the pool: ${acquired.status} ${JSON.stringify(acquired.body)}`,
                );
              }
              return acquired.body.id;
            }),
          );
          burstMs += performance.now() - started;
          await Promise.all(ids.map((id) => server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' })));
        }
        return {
          ...figure(setup.scenario, samples),
          acquiresPerSecond: round3(samples.length / (burstMs / 1000)),
        };
      },
      env,
    );
  } finally {
    await redis?.stop();
  }
}

async function serverSideAcquireMeanMs(server: ServerProcess): Promise<number> {
  const text = await (await server.fetch('/metrics')).text();
  const series = (name: string) =>
    Number(
      new RegExp(
        `^runtime_sandbox_acquire_duration_seconds_${name}\\{type="base",fromPool="true"\\} (\\S+)$`,
        'm',
      ).exec(text)?.[1],
    );
  return (series('sum') / series('count')) * 1000;
}

/** Docker alone: create + start a container of the image, then sandboxd answers /healthz. */
async function rawEngineStart(hostPort: number): Promise<number> {
  const started = performance.now();
  const container = await docker.createContainer({
    Image: IMAGE,
    Env: [`${SANDBOXD_ENV.bootToken}=${randomBytes(24).toString('hex')}`],
    Labels: { [BENCH_LABEL]: 'acquire' },
    ExposedPorts: { [`${SANDBOXD_PORT}/tcp`]: {} },
    HostConfig: {
      PortBindings: { [`${SANDBOXD_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] },
    },
  });
  try {
    await container.start();
    await waitForSandboxd({ host: '127.0.0.1', port: hostPort }, { timeoutMs: 30_000 });
    return performance.now() - started;
  } finally {
    await container.remove({ force: true });
  }
}

function figure(scenario: string, samples: number[]): Figure {
  return { scenario, ...summarize(samples) };
}

function printTable(result: AcquireBenchResult): void {
  printRows(
    ['scenario', 'n', 'p50 ms', 'p99 ms', 'mean ms'],
    result.figures.map((f) => [
      f.scenario,
      String(f.n),
      f.p50Ms.toFixed(2),
      f.p99Ms.toFixed(2),
      f.meanMs.toFixed(2),
    ]),
  );
  console.log('');
  printRows(
    ['scenario', 'n', 'acquires/s', 'p50 ms', 'p99 ms'],
    result.throughput.map((f) => [
      f.scenario,
      String(f.n),
      f.acquiresPerSecond.toFixed(1),
      f.p50Ms.toFixed(2),
      f.p99Ms.toFixed(2),
    ]),
  );
  console.log(`\nwarm p50 ${result.warmP50Ms.toFixed(2)} ms (aim <= 10 ms)`);
  console.log(`warm acquire inside the server: mean ${result.warmServerSideMeanMs.toFixed(2)} ms`);
  console.log(`cold / raw engine p50 ${result.coldOverRaw.toFixed(2)}x (aim <= 1.5x)`);
}

/** Columns padded to their widest cell: the first left-aligned, the figures right-aligned. */
function printRows(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

if (isMain(import.meta.url)) {
  run({
    warmRounds: numberFlag('warm'),
    kubernetesRounds: numberFlag('k8s'),
    coldRounds: numberFlag('cold'),
    rawRounds: numberFlag('raw'),
    burstRounds: numberFlag('burst'),
  }).then(printTable, (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
