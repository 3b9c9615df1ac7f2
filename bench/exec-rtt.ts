/**
 * Exec round trip: `npx tsx bench/exec-rtt.ts [--json]`.
 *
 * One container of the base image, locked down as in production. After a warm-up, `true` runs 200
 * times through sandboxd (POST /exec over one keep-alive HTTP connection) and 200 times through the
 * Docker engine's own exec API (create, start, read to the end, inspect for the exit code), one
 * call after another. Prints p50 and p99 of each and their ratio (the aim: sandboxd >= 10x faster);
 * `run()` returns the figures for a suite that collects them. The container is removed at the end.
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import type { ExecResult } from '@runtime-sandbox/contract';
import type Docker from 'dockerode';
import {
  docker,
  dockerExec,
  type SandboxdContainer,
  startSandboxdContainer,
} from '../support/sandboxd-container.js';
import { type LatencySummary, summarize } from './report.js';

const SAMPLES = 200;
const WARM_UP = 20;

export interface ResultRow extends LatencySummary {
  scenario: string;
}

/** The sandboxd row first, then the Docker exec row. */
export type ResultRows = ResultRow[];

/** Runs `true` once through sandboxd over `agent`'s kept-alive connection. */
function sandboxdExec(sandbox: SandboxdContainer, agent: http.Agent): Promise<void> {
  const body = JSON.stringify({ command: ['true'] });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${sandbox.url}/exec`,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${sandbox.bootToken}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const result = JSON.parse(Buffer.concat(chunks).toString()) as ExecResult;
          if (res.statusCode === 200 && result.exitCode === 0) resolve();
          else reject(new Error(`sandboxd exec answered ${res.statusCode}: ${Buffer.concat(chunks)}`));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Runs `true` once through the Docker engine's exec API; throws unless it exits 0. */
export async function dockerApiExec(container: Docker.Container): Promise<void> {
  const { exitCode, output } = await dockerExec(container, ['true']);
  if (exitCode !== 0) throw new Error(`docker exec of true exited ${exitCode}: ${output}`);
}

async function timed(times: number, once: () => Promise<void>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await once();
    samples.push(performance.now() - started);
  }
  return samples;
}

function row(scenario: string, samples: number[]): ResultRow {
  return { scenario, ...summarize(samples) };
}

export async function run(): Promise<ResultRows> {
  const sandbox = await startSandboxdContainer({ purpose: 'bench-exec-rtt' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const container = docker.getContainer(sandbox.id);
    await timed(WARM_UP, () => sandboxdExec(sandbox, agent));
    await timed(WARM_UP, () => dockerApiExec(container));
    const viaSandboxd = await timed(SAMPLES, () => sandboxdExec(sandbox, agent));
    const viaDocker = await timed(SAMPLES, () => dockerApiExec(container));
    return [row('sandboxd HTTP exec', viaSandboxd), row('Docker exec API', viaDocker)];
  } finally {
    agent.destroy();
    await sandbox.remove();
  }
}

function ratios(rows: ResultRows): { p50: number; p99: number } {
  const [sandboxd, dockerApi] = rows;
  if (!sandboxd || !dockerApi) throw new Error('expected two rows');
  return {
    p50: Math.round((dockerApi.p50Ms / sandboxd.p50Ms) * 10) / 10,
    p99: Math.round((dockerApi.p99Ms / sandboxd.p99Ms) * 10) / 10,
  };
}

function printTable(rows: ResultRows): void {
  const line = (cells: string[]) =>
    `| ${cells[0]?.padEnd(28)} | ${cells
      .slice(1)
      .map((c) => c.padStart(9))
      .join(' | ')} |`;
  console.log(line(['exec of `true`', 'n', 'p50 ms', 'p99 ms', 'mean ms']));
  for (const r of rows)
    console.log(line([r.scenario, String(r.n), r.p50Ms.toFixed(3), r.p99Ms.toFixed(3), r.meanMs.toFixed(3)]));
  const ratio = ratios(rows);
  console.log(line(['Docker exec / sandboxd', '', `${ratio.p50}x`, `${ratio.p99}x`, '']));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    (rows) => {
      printTable(rows);
      if (process.argv.includes('--json'))
        console.log(JSON.stringify({ rows, ratio: ratios(rows) }, null, 2));
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
