/**
 * Starts the real base image in Docker, locked down as in production (sandboxd as root with only its
 * own capabilities, the code as the unprivileged run-as user, no-new-privileges, pids and memory
 * limits), with sandboxd published
 * on a random 127.0.0.1 port, and talks to it over real HTTP. Also runs commands through Docker's
 * own exec API, which sees the container without going through sandboxd. Fails loudly when Docker
 * or the image is missing.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { PassThrough } from 'node:stream';
import type { ExecRequest, ExecResult } from '@runtime-sandbox/contract';
import { SANDBOXD_CAPABILITIES, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import Docker from 'dockerode';
import { BASE_IMAGE } from './images.js';

export { BASE_IMAGE };
/** Who the code runs as (SANDBOXD_RUN_AS's default), and who dockerExec runs as. */
export const SANDBOX_USER = '1000:1000';
/** Every container made here carries this label (value: who made it), and only those are removed. */
export const TEST_LABEL = 'io.runtime-sandbox.test';

const READY_TIMEOUT_MS = 20_000;

export interface SandboxdContainerOptions {
  /** Extra env for the container (e.g. small SANDBOXD_MAX_* limits). */
  env?: Record<string, string>;
  /** Label value naming the suite, for finding leftovers. */
  purpose?: string;
}

export interface DockerExecResult {
  exitCode: number | null;
  output: string;
}

/** fetch options, where the body may also be any Uint8Array (a Buffer, say). */
export type SandboxdRequestInit = Omit<RequestInit, 'body'> & {
  body?: BodyInit | Uint8Array | null;
  /** The bearer token to send: default the boot token; null sends no Authorization header. */
  token?: string | null;
};

export interface SandboxdContainer {
  readonly id: string;
  readonly url: string;
  readonly bootToken: string;
  /** fetch on sandboxd with `Authorization: Bearer <token>`. */
  request(path: string, init?: SandboxdRequestInit): Promise<Response>;
  /** POST /exec and the parsed ExecResult; throws on a non-200 answer. */
  exec(request: ExecRequest, token?: string): Promise<ExecResult>;
  /** Runs argv through Docker's exec API as the sandbox user: stdout and stderr together. */
  dockerExec(argv: string[]): Promise<DockerExecResult>;
  /** The same as root (with sandboxd's capabilities), to look where the sandbox user cannot. */
  dockerExecAsRoot(argv: string[]): Promise<DockerExecResult>;
  /** Whether `path` exists in the container, seen through Docker rather than sandboxd. */
  existsInContainer(path: string): Promise<boolean>;
  remove(): Promise<void>;
}

export const docker = new Docker();

export async function startSandboxdContainer(
  options: SandboxdContainerOptions = {},
): Promise<SandboxdContainer> {
  await docker.ping().catch((err: unknown) => {
    throw new Error(`Docker is not reachable (${String(err)}); these tests need a running Docker engine`);
  });
  await docker
    .getImage(BASE_IMAGE)
    .inspect()
    .catch(() => {
      throw new Error(
        `${BASE_IMAGE} is missing; build it: node scripts/build.mjs sandboxd && node dist/builder.mjs base`,
      );
    });

  const bootToken = randomBytes(24).toString('hex');
  const env = { SANDBOXD_TOKEN: bootToken, ...options.env };
  const container = await docker.createContainer({
    name: `rsbx-test-sandboxd-${randomBytes(4).toString('hex')}`,
    Image: BASE_IMAGE,
    Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
    Labels: { [TEST_LABEL]: options.purpose ?? 'sandboxd' },
    // As the Docker deployer starts it: sandboxd as root, keeping only its capabilities.
    User: '0:0',
    ExposedPorts: { [`${SANDBOXD_PORT}/tcp`]: {} },
    HostConfig: {
      PortBindings: { [`${SANDBOXD_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      CapDrop: ['ALL'],
      CapAdd: [...SANDBOXD_CAPABILITIES],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: 256,
      Memory: 1024 * 1024 * 1024,
      Tmpfs: { '/tmp': 'rw,nosuid,nodev,size=64m' },
    },
  });
  try {
    await container.start();
    const info = await container.inspect();
    const hostPort = info.NetworkSettings.Ports[`${SANDBOXD_PORT}/tcp`]?.[0]?.HostPort;
    if (!hostPort) throw new Error(`container ${container.id} has no published sandboxd port`);
    const url = `http://127.0.0.1:${hostPort}`;
    await waitHealthy(url, container);
    return handleFor(container, url, bootToken);
  } catch (err) {
    await container.remove({ force: true });
    throw err;
  }
}

async function waitHealthy(url: string, container: Docker.Container): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answersHealthz(url))) {
    if (Date.now() > deadline) {
      const logs = await container.logs({ stdout: true, stderr: true });
      throw new Error(
        `sandboxd did not answer /healthz within ${READY_TIMEOUT_MS} ms; logs:\n${logs.toString()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * One /healthz probe with node:http. Not fetch: until sandboxd listens, Docker's port proxy accepts
 * and drops connections, and fetch quietly retries such a GET instead of failing.
 */
function answersHealthz(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/healthz`, { timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Runs argv with Docker's exec API (create, start, read to the end, inspect), by default as the sandbox user. */
export async function dockerExec(
  container: Docker.Container,
  argv: string[],
  user = SANDBOX_USER,
): Promise<DockerExecResult> {
  const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, User: user });
  const stream = await exec.start({ hijack: true, stdin: false });
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode, output: Buffer.concat(chunks).toString('utf8') };
}

function handleFor(container: Docker.Container, url: string, bootToken: string): SandboxdContainer {
  const request = (path: string, init: SandboxdRequestInit = {}) => {
    const { token = bootToken, body, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    // fetch's types want an ArrayBuffer-backed view; a copy is cheap at test sizes.
    const sent = body instanceof Uint8Array ? new Uint8Array(body) : body;
    return fetch(`${url}${path}`, { ...rest, headers, ...(sent === undefined ? {} : { body: sent }) });
  };
  return {
    id: container.id,
    url,
    bootToken,
    request,
    async exec(body, token) {
      const res = await request('/exec', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        ...(token === undefined ? {} : { token }),
      });
      if (res.status !== 200) throw new Error(`exec answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as ExecResult;
    },
    dockerExec: (argv) => dockerExec(container, argv),
    dockerExecAsRoot: (argv) => dockerExec(container, argv, '0:0'),
    async existsInContainer(path) {
      // -L as well: a dangling symlink is something too.
      const { exitCode } = await dockerExec(container, [
        'sh',
        '-c',
        'test -e "$1" || test -L "$1"',
        'sh',
        path,
      ]);
      return exitCode === 0;
    },
    async remove() {
      await container.remove({ force: true });
    },
  };
}
