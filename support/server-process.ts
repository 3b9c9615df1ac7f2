/**
 * Starts the real server CLI as a child process and talks to it over HTTP, as an operator would.
 *
 * How it runs: `dist/server.mjs` when that bundle is newer than every source file it is built from
 * (scripts/test.sh builds first), else the TypeScript entry through tsx (TSX_ARGS: the contract
 * from its source too), which starts in well under a second. Each server gets PORT=0 (the kernel
 * picks a free port, read back from the "listening" log line), its own temp dir for workspaces and an empty `--config` file so a
 * developer's `.env` never leaks in. Callers give the deployment id (or leave the server on its
 * default one), port range slice and the rest.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { LABELS } from '../server/src/deployers/deployer.js';
import { parseMountTable } from '../server/src/mount-table.js';
import { packageRoot } from '../server/src/package-root.js';
import { eventually } from './eventually.js';
import { BASE_IMAGE, IMAGE_ENV } from './images.js';
import { TSX_ARGS } from './tsx.js';

// Most callers take it from here with the rest of the server helpers.
export { eventually };

export const docker = new Docker();
const root = packageRoot();
const STARTUP_TIMEOUT_MS = 60_000;

export interface ServerProcessOptions {
  /**
   * Names the deployment (CONTAINER_PREFIX_KEY and DEPLOYMENT_ID); unique per test file. Absent:
   * neither is set, so the server runs on its default id or the next free one, as `npm start` does.
   */
  deploymentId?: string;
  /** A PORT_RANGE slice no other test file uses, e.g. "51100-51149". */
  portRange: string;
  /** More settings (POOL_SIZE, BEARER_TOKEN, ...). */
  env?: Record<string, string>;
  /** More command-line arguments (`--extension ...`). */
  args?: string[];
  /** DEFAULT_MOUNT_DIR to use (and keep) instead of a fresh temp one, e.g. shared with an earlier run. */
  mountDir?: string;
}

export interface ServerProcess {
  readonly url: string;
  /** The deployment id the server runs under, as it logged it. */
  readonly deploymentId: string;
  /** DEFAULT_MOUNT_DIR: the deployment's workspace root (one dir per sandbox) is inside it. */
  readonly mountDir: string;
  /** The host dir of sandbox `id`'s /workspace. */
  workspaceDir(id: string): string;
  /** The sandbox ids that have a workspace dir now. */
  workspaceDirs(): string[];
  readonly token: string | undefined;
  readonly child: ChildProcess;
  /** Every stdout JSON log line so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** fetch against the server with the bearer token (override with `token`, or null for none). */
  fetch(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** A JSON call: the status and the parsed body. */
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }>;
  /** Sends a signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process ends. */
  readonly exited: Promise<number | null>;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The command that runs the server CLI, per the rule above. */
export function serverCommand(): string[] {
  const bundle = join(root, 'dist', 'server.mjs');
  if (existsSync(bundle) && statSync(bundle).mtimeMs > newestSource()) return [bundle];
  return [...TSX_ARGS, join(root, 'server', 'src', 'cli', 'server.ts')];
}

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), `${options.deploymentId ?? 'default-deployment'}-`));
  const mountDir = options.mountDir ?? join(dir, 'mounts');
  const configFile = join(dir, 'empty.env');
  writeFileSync(configFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    PORT: '0',
    ...(options.deploymentId === undefined
      ? {}
      : { CONTAINER_PREFIX_KEY: options.deploymentId, DEPLOYMENT_ID: options.deploymentId }),
    PORT_RANGE: options.portRange,
    DEFAULT_MOUNT_DIR: mountDir,
    // Sandbox DNS must not leave the machine: a loopback port nothing answers on, unless a test
    // brings its own resolver (a stand-in in a network namespace).
    SANDBOX_DNS_UPSTREAM: '127.0.0.1:9',
    // The images this run built and tests (see images.ts).
    ...IMAGE_ENV,
    ...options.env,
  };
  const child = spawn(
    process.execPath,
    [...serverCommand(), '--config', configFile, ...(options.args ?? [])],
    {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const listening = new Promise<{ url: string; deploymentId: string }>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`server did not log "listening" within ${STARTUP_TIMEOUT_MS} ms; stderr: ${stderr}`),
        ),
      STARTUP_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { msg: line };
      }
      lines.push(parsed);
      if (parsed.msg === 'listening' && typeof parsed.url === 'string') {
        clearTimeout(timer);
        resolve({ url: parsed.url, deploymentId: String(parsed.deploymentId) });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; stderr: ${stderr.trim()}`));
    });
  });

  let url: string;
  let deploymentId: string;
  try {
    ({ url, deploymentId } = await listening);
  } catch (err) {
    // Never leave a half-started server behind: it would fight the next one over the deployment.
    child.kill('SIGKILL');
    removeMountDir(dir);
    throw err;
  }
  const token = env.BEARER_TOKEN;
  const fetchServer = (
    path: string,
    init: RequestInit & { token?: string | null } = {},
  ): Promise<Response> => {
    const { token: given, ...rest } = init;
    const headers = new Headers(rest.headers);
    const bearer = given === undefined ? token : given;
    if (bearer) headers.set('authorization', `Bearer ${bearer}`);
    return fetch(`${url}${path}`, { ...rest, headers });
  };
  const server: ServerProcess = {
    url,
    deploymentId,
    mountDir,
    workspaceDir: (id) => join(mountDir, deploymentId, id),
    workspaceDirs: () => workspaceDirsIn(mountDir, deploymentId),
    token,
    child,
    exited,
    logs: () => lines,
    fetch: fetchServer,
    async call<T>(method: string, path: string, body?: unknown) {
      const response = await fetchServer(path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as T };
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      removeMountDir(dir);
      return code;
    },
  };
  await waitForReady(server).catch(async (err: unknown) => {
    await server.stop('SIGKILL');
    throw err;
  });
  return server;
}

/**
 * Removes a folder that held DEFAULT_MOUNT_DIR: a server killed before its clean-up leaves its
 * workspace root mounted (nosuid,nodev) inside, which is unmounted first.
 */
export function removeMountDir(dir: string): void {
  const points = parseMountTable(readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((entry) => entry.mountPoint)
    .filter((point) => point.startsWith(`${dir}/`));
  for (const point of points.sort((a, b) => b.length - a.length)) execFileSync('umount', ['-l', point]);
  rmSync(dir, { recursive: true, force: true });
}

/** The sandbox ids with a workspace dir in `mountDir` (DEFAULT_MOUNT_DIR) for the deployment. */
export function workspaceDirsIn(mountDir: string, deploymentId: string): string[] {
  const root = join(mountDir, deploymentId);
  return existsSync(root) ? readdirSync(root) : [];
}

/** Runs the CLI to completion (for --help and start-up failures). */
export function runServerCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...serverCommand(), ...args], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        ...IMAGE_ENV,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitForReady(server: ServerProcess): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const response = await server.fetch('/readyz').catch(() => undefined);
    if (response?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${server.url}/readyz did not answer 200 in time`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Until the type's pool holds `warm` ready sandboxes. */
export function waitForWarm(server: ServerProcess, type: string, warm: number): Promise<true> {
  return eventually(`${warm} warm ${type} sandboxes`, async () => {
    const { body } = await server.call<{ pools: Array<{ type: string; warm: number }> }>('GET', '/v1/pools');
    return body.pools.find((p) => p.type === type && p.warm >= warm) ? true : undefined;
  });
}

/** Containers (running or not) carrying the deployment's label. */
export async function containersOf(deploymentId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.deployment}=${deploymentId}`] } });
}

/** Test cleanup: removes whatever a failed test left with this deployment's label. */
export async function removeContainersOf(deploymentId: string): Promise<void> {
  for (const container of await containersOf(deploymentId)) {
    await docker
      .getContainer(container.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
}

/** Fails loudly when Docker or the base image is missing (no silent skips). */
export async function requireImage(image = BASE_IMAGE): Promise<void> {
  await docker.ping().catch((err: unknown) => {
    throw new Error(`Docker is not reachable (${String(err)}); these tests need a running Docker engine`);
  });
  await docker
    .getImage(image)
    .inspect()
    .catch(() => {
      throw new Error(`${image} is missing; build it with: node dist/builder.mjs base`);
    });
}

function newestSource(): number {
  let newest = 0;
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of ['server/src', 'packages/contract/src', 'sandbox-images/runtime/src'])
    visit(join(root, dir));
  return newest;
}
