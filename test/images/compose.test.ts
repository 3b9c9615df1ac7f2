/**
 * deploy/docker-compose.yml on the real engine. docker-compose validates it (and its socket-proxy
 * variant) with the settings of deploy/compose.env.example, which must name every variable the
 * files read. Then the topology it describes comes up with the local images: the `mounts` service
 * makes the workspace folder, two server replicas share Redis and the object store, HAProxy gives
 * them one port. s3rver stands in for MinIO, which cannot be pulled here
 * (test/support/compose/s3rver.override.yml). Through that port the README's curl walkthrough
 * passes with the bearer token; a sandbox that one replica acquired is used, snapshotted into the
 * store and released through the other, and restored; with one replica stopped the port still
 * serves. The socket-proxy variant serves the walkthrough through the proxy, which refuses
 * every call the deployer never makes. `down -v` leaves nothing: no container, network, volume,
 * workspace mount or sandbox filter rule.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseMountTable } from '../../server/src/mount-table.js';
import { packageRoot } from '../../server/src/package-root.js';
import { eventually } from '../../support/eventually.js';
import { freeLoopbackPort } from '../../support/free-port.js';
import { IMAGE_SETTINGS } from '../../support/images.js';
import { containersOf, docker, removeContainersOf, removeMountDir } from '../../support/server-process.js';
import { testDeploymentId } from '../support/fixture.js';
import { allocatePortRange } from '../support/port-ranges.js';
import { type CommandRun, expectCurlWalkthrough, runCommand } from '../support/readme.js';
import { buildServerImage, SERVER_IMAGE } from '../support/server-image.js';

const root = packageRoot();
const COMPOSE_FILE = join(root, 'deploy/docker-compose.yml');
const PROXY_FILE = join(root, 'deploy/docker-compose.socket-proxy.yml');
const S3RVER_FILE = join(root, 'test/support/compose/s3rver.override.yml');
const EXAMPLE_ENV = join(root, 'deploy/compose.env.example');
const PLAIN = [COMPOSE_FILE, S3RVER_FILE];
const WITH_PROXY = [COMPOSE_FILE, PROXY_FILE, S3RVER_FILE];

const PROJECT = testDeploymentId('rsbx-compose');
const DEPLOYMENT = testDeploymentId('compose');
const TOKEN = randomBytes(24).toString('hex');
const scratch = mkdtempSync(join(tmpdir(), 'rsbx-compose-'));
const MOUNTS = join(scratch, 'mounts');
const PROXY_DIR = join(scratch, 'docker-proxy');
const ENV_FILE = join(scratch, 'compose.env');
const ports = allocatePortRange(20);
/** The addresses our sandboxes had, to look for filter rules left in their name. */
const sandboxAddresses = new Set<string>();
const figures: string[] = [];

/** deploy/compose.env.example as KEY -> value, in its order. */
function exampleSettings(): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of readFileSync(EXAMPLE_ENV, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (match?.[1] !== undefined) settings.set(match[1], match[2] ?? '');
  }
  return settings;
}

function writeEnvFile(settings: Map<string, string>): void {
  writeFileSync(ENV_FILE, [...settings].map(([key, value]) => `${key}=${value}\n`).join(''));
}

function compose(files: readonly string[], args: readonly string[]): Promise<CommandRun> {
  const fileArgs = files.flatMap((file) => ['-f', file]);
  return runCommand('docker-compose', ['--env-file', ENV_FILE, '-p', PROJECT, ...fileArgs, ...args], {});
}

async function composeOk(files: readonly string[], args: readonly string[]): Promise<CommandRun> {
  const run = await compose(files, args);
  expect(run.code, run.out.slice(-4000)).toBe(0);
  return run;
}

interface Urls {
  api: string;
  replicas: [string, string];
}

let urls: Urls;

/** The example's settings with this run's secrets, ports, folders and images. */
async function testSettings(): Promise<Map<string, string>> {
  const [listen, replica1, replica2, redis, s3, s3Console] = await Promise.all(
    Array.from({ length: 6 }, () => freeLoopbackPort()),
  );
  const settings = exampleSettings();
  const overrides: Record<string, string> = {
    BEARER_TOKEN: TOKEN,
    REDIS_PASSWORD: randomBytes(16).toString('hex'),
    // s3rver's fixed keys.
    OSS_ACCESS_KEY_ID: 'S3RVER',
    OSS_ACCESS_KEY_SECRET: 'S3RVER',
    LISTEN_PORT: String(listen),
    REPLICA_1_PORT: String(replica1),
    REPLICA_2_PORT: String(replica2),
    REDIS_PORT: String(redis),
    S3_PORT: String(s3),
    S3_CONSOLE_PORT: String(s3Console),
    POOL_SIZE: '1',
    PORT_RANGE: ports.range,
    MOUNTS,
    DEPLOYMENT_ID: DEPLOYMENT,
    SERVER_IMAGE,
    RUNTIME_SANDBOX_IMAGE_TAG: IMAGE_SETTINGS.RUNTIME_SANDBOX_IMAGE_TAG,
    CHECKOUT: root,
  };
  for (const [key, value] of Object.entries(overrides)) settings.set(key, value);
  urls = {
    api: `http://127.0.0.1:${listen}`,
    replicas: [`http://127.0.0.1:${replica1}`, `http://127.0.0.1:${replica2}`],
  };
  return settings;
}

/** A curl config that sends the bearer token, so the README's walkthrough runs as written. */
function curlHome(): Record<string, string> {
  const home = join(scratch, 'curl');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.curlrc'), `header = "Authorization: Bearer ${TOKEN}"\n`);
  return { CURL_HOME: home };
}

function api(url: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${TOKEN}`);
  if (typeof init.body === 'string') headers.set('content-type', 'application/json');
  return fetch(`${url}${path}`, { ...init, headers });
}

const idSchema = z.object({ id: z.string() });

async function upAndReady(name: string, files: readonly string[]): Promise<void> {
  const started = Date.now();
  await composeOk(files, ['up', '-d', '--build']);
  await eventually(
    '/readyz through the API port',
    async () =>
      (await fetch(`${urls.api}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined,
    120_000,
    100,
  );
  figures.push(`${name}: up to /readyz ${Date.now() - started} ms`);
}

async function rememberSandboxAddresses(): Promise<void> {
  for (const container of await containersOf(DEPLOYMENT)) {
    const networks = (await docker.getContainer(container.Id).inspect()).NetworkSettings.Networks;
    for (const network of Object.values(networks)) sandboxAddresses.add(network.IPAddress);
  }
}

/** `down -v`, then no trace of the project, the deployment or its sandboxes. */
async function expectDownLeavesNothing(files: readonly string[]): Promise<void> {
  await rememberSandboxAddresses();
  await composeOk(files, ['down', '-v']);
  expect(await containersOf(DEPLOYMENT)).toEqual([]);
  const projectContainers = await docker.listContainers({
    all: true,
    filters: { label: [`com.docker.compose.project=${PROJECT}`] },
  });
  expect(projectContainers.map((c) => c.Names)).toEqual([]);
  const networks = await docker.listNetworks({ filters: { name: [DEPLOYMENT] } });
  expect(networks.map((n) => n.Name)).toEqual([]);
  const volumes = await docker.listVolumes({ filters: { label: [`com.docker.compose.project=${PROJECT}`] } });
  expect((volumes.Volumes ?? []).map((v) => v.Name)).toEqual([]);
  const mountsBelow = parseMountTable(readFileSync('/proc/self/mountinfo', 'utf8')).filter((entry) =>
    entry.mountPoint.startsWith(`${MOUNTS}/`),
  );
  expect(mountsBelow).toEqual([]);
  expect(sandboxAddresses.size).toBeGreaterThan(0);
  const chains = execFileSync('iptables', ['-w', '-S'], { encoding: 'utf8' });
  for (const address of sandboxAddresses) expect(chains).not.toContain(`RSBX-S-${address} `);
}

beforeAll(async () => {
  mkdirSync(MOUNTS, { recursive: true });
  mkdirSync(PROXY_DIR, { recursive: true });
  await buildServerImage();
}, 600_000);

afterAll(async () => {
  await compose(WITH_PROXY, ['down', '-v']).catch(() => undefined);
  await removeContainersOf(DEPLOYMENT);
  for (const network of await docker.listNetworks({ filters: { name: [DEPLOYMENT] } })) {
    await docker
      .getNetwork(network.Id)
      .remove()
      .catch(() => undefined);
  }
  removeMountDir(scratch);
  ports.release();
  process.stdout.write(`[compose] ${figures.join('; ')}\n`);
});

describe('deploy/docker-compose.yml', () => {
  it('validates with the example settings, which name every variable the files read', async () => {
    const settings = exampleSettings();
    for (const secret of ['BEARER_TOKEN', 'REDIS_PASSWORD', 'OSS_ACCESS_KEY_ID', 'OSS_ACCESS_KEY_SECRET']) {
      expect(settings.get(secret), `${secret} is a secret the user fills in`).toBe('');
      settings.set(secret, 'x'.repeat(32));
    }
    const read = new Set<string>();
    for (const file of [COMPOSE_FILE, PROXY_FILE]) {
      for (const match of readFileSync(file, 'utf8').matchAll(/\$\{([A-Z0-9_]+)/g)) read.add(match[1] ?? '');
    }
    expect([...read].filter((name) => !settings.has(name))).toEqual([]);
    writeEnvFile(settings);
    await composeOk([COMPOSE_FILE], ['config', '-q']);
    await composeOk([COMPOSE_FILE, PROXY_FILE], ['config', '-q']);

    settings.set('BEARER_TOKEN', '');
    writeEnvFile(settings);
    const unset = await compose([COMPOSE_FILE], ['config', '-q']);
    expect(unset.code).not.toBe(0);
    expect(unset.out).toContain('set BEARER_TOKEN in deploy/.env');
  });

  it('brings up two replicas behind one port, and the README walkthrough passes with the token', {
    timeout: 600_000,
  }, async () => {
    writeEnvFile(await testSettings());
    await upAndReady('plain', PLAIN);
    const unauthenticated = await fetch(`${urls.api}/v1/sandboxes`);
    expect(unauthenticated.status).toBe(401);
    await expectCurlWalkthrough(urls.api, curlHome());
  });

  it('serves one sandbox from either replica, with snapshots in the shared object store', {
    timeout: 120_000,
  }, async () => {
    const [one, two] = urls.replicas;
    const acquired = await api(one, '/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ type: 'base' }),
    });
    expect(acquired.status).toBe(201);
    const { id } = idSchema.parse(await acquired.json());
    const written = await api(two, `/v1/sandboxes/${id}/files?path=notes/replicas.txt`, {
      method: 'PUT',
      body: 'written through replica 2',
    });
    expect(written.status).toBeLessThan(300);
    const snapshot = await api(two, `/v1/sandboxes/${id}/snapshots`, { method: 'POST', body: '{}' });
    expect(snapshot.status).toBe(201);
    const { id: snapshotId } = idSchema.parse(await snapshot.json());
    expect((await api(one, `/v1/sandboxes/${id}`, { method: 'DELETE' })).status).toBe(204);

    const stored = await composeOk(PLAIN, ['exec', '-T', 's3', 'find', '/tmp/s3', '-type', 'f']);
    expect(stored.out).toContain('snapshots');

    const restored = await api(two, '/v1/sandboxes', {
      method: 'POST',
      body: JSON.stringify({ type: 'base', restore: { snapshotId } }),
    });
    expect(restored.status).toBe(201);
    const { id: restoredId } = idSchema.parse(await restored.json());
    await rememberSandboxAddresses();
    const read = await api(one, `/v1/sandboxes/${restoredId}/files?path=notes/replicas.txt`);
    expect(await read.text()).toBe('written through replica 2');
    expect((await api(two, `/v1/sandboxes/${restoredId}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('keeps serving on its port with one replica stopped', { timeout: 300_000 }, async () => {
    await composeOk(PLAIN, ['stop', 'server-1']);
    await expectCurlWalkthrough(urls.api, curlHome());
    await composeOk(PLAIN, ['start', 'server-1']);
  });

  it('leaves nothing behind after down -v', { timeout: 300_000 }, async () => {
    await expectDownLeavesNothing(PLAIN);
  });
});

/** A refused call in HAProxy's HTTP log: the status right after the five timers (Tq/Tw/Tc/Tr/Ta). */
const REFUSED_IN_LOG = /(-?\d+\/){4}-?\d+ 403 /;

describe('deploy/docker-compose.socket-proxy.yml', () => {
  const proxied = (path: string, method = 'GET') =>
    runCommand(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        method,
        '--unix-socket',
        join(PROXY_DIR, 'docker.sock'),
        `http://engine${path}`,
      ],
      {},
    );

  it('passes the calls of the walkthrough and refuses every other', { timeout: 600_000 }, async () => {
    const settings = await testSettings();
    settings.set('DOCKER_PROXY_DIR', PROXY_DIR);
    settings.set('DOCKER_SOCKET_PATH', join(PROXY_DIR, 'docker.sock'));
    writeEnvFile(settings);
    await upAndReady('socket proxy', WITH_PROXY);
    await expectCurlWalkthrough(urls.api, curlHome());
    const logs = async () => (await composeOk(WITH_PROXY, ['logs', '--no-color', 'docker-proxy'])).out;
    expect(await logs()).not.toMatch(REFUSED_IN_LOG);

    const redis = (await composeOk(WITH_PROXY, ['ps', '-q', 'redis'])).out.trim();
    for (const [path, method] of [
      [`/containers/${redis}/exec`, 'POST'],
      [`/containers/${redis}/archive?path=/data`, 'GET'],
      ['/images/create?fromImage=alpine', 'POST'],
      ['/volumes', 'GET'],
      ['/v1.41/build', 'POST'],
    ] as const) {
      const refused = await proxied(path, method);
      expect(refused.out, `${method} ${path}`).toBe('403');
    }
    expect((await proxied('/v1.41/_ping')).out).toBe('200');
    expect(await logs()).toMatch(REFUSED_IN_LOG);
    await expectDownLeavesNothing(WITH_PROXY);
  });
});
