/**
 * The server image against the real Docker engine: `runtime-sandbox-builder server` builds it (and
 * skips the second build), the README's "Run it as a container" block runs it as written (host
 * network, read-only root, tmpfs /tmp, the socket, the shared workspace folder), the README's curl
 * walkthrough passes against it, and `docker stop` leaves nothing behind: no container, network,
 * workspace, mount or sandbox filter rule of its deployment. Prints the image's size, the build
 * times and the time from `docker run` to /readyz.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { IMAGE_LABELS } from '../../server/src/images/image-builder.js';
import { parseMountTable } from '../../server/src/mount-table.js';
import { packageRoot } from '../../server/src/package-root.js';
import { eventually } from '../../support/eventually.js';
import { freeLoopbackPort } from '../../support/free-port.js';
import { IMAGE_ENV } from '../../support/images.js';
import { containersOf, docker, removeContainersOf, removeMountDir } from '../../support/server-process.js';
import { testDeploymentId } from '../support/fixture.js';
import { allocatePortRange } from '../support/port-ranges.js';
import { expectCurlWalkthrough, runCommand, runReadmeShell } from '../support/readme.js';
import { buildServerImage, SERVER_IMAGE } from '../support/server-image.js';

const root = packageRoot();
const IMAGE = SERVER_IMAGE;
const DEPLOYMENT = testDeploymentId('srvimg');
const NAME = testDeploymentId('rsbx-server-image');
const scratch = mkdtempSync(join(tmpdir(), 'rsbx-server-image-'));
const MOUNTS = join(scratch, 'mounts');
const ports = allocatePortRange(20);
/** The addresses our sandboxes had, to look for filter rules left in their name. */
const sandboxAddresses = new Set<string>();
const figures: string[] = [];

afterAll(async () => {
  await docker
    .getContainer(NAME)
    .remove({ force: true })
    .catch(() => undefined);
  await removeContainersOf(DEPLOYMENT);
  for (const network of await networksOf(DEPLOYMENT)) {
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
  }
  removeMountDir(scratch);
  ports.release();
  process.stdout.write(`[server-image] ${figures.join('; ')}\n`);
});

async function networksOf(deploymentId: string): Promise<string[]> {
  const networks = await docker.listNetworks({ filters: { name: [deploymentId] } });
  return networks.map((network) => network.Name).filter((name) => name.startsWith(`${deploymentId}-`));
}

function iptablesChains(): string[] {
  return execFileSync('iptables', ['-w', '-S'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.startsWith('-N '))
    .map((line) => line.slice(3).trim());
}

/** Mount points on this host (not in the server's container) below `dir`. */
function hostMountsBelow(dir: string): Array<{ mountPoint: string; options: string[]; fsType: string }> {
  return parseMountTable(readFileSync('/proc/self/mountinfo', 'utf8')).filter((entry) =>
    entry.mountPoint.startsWith(`${dir}/`),
  );
}

const execAnswerSchema = z.object({ exitCode: z.number(), stdout: z.string() });

describe('the server image', () => {
  let url: string;

  it('is built by runtime-sandbox-builder server, and a second build is skipped', {
    timeout: 600_000,
  }, async () => {
    const first = await buildServerImage();
    const second = await buildServerImage();
    expect(second.status).toBe('up to date');
    const info = await docker.getImage(IMAGE).inspect();
    const version = z
      .object({ version: z.string() })
      .parse(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')));
    expect(info.Config.Labels?.['org.opencontainers.image.version']).toBe(version.version);
    expect(info.Config.Labels?.[IMAGE_LABELS.type]).toBe('server');
    expect(info.Config.User).toBe('10001:10001');
    expect(Object.keys(info.Config.ExposedPorts ?? {})).toEqual(['8000/tcp']);
    expect(info.Config.Entrypoint?.[0]).toBe('/usr/bin/tini');
    figures.push(
      `image ${IMAGE} ${(info.Size / 1e6).toFixed(0)} MB`,
      `first build ${first.status} in ${(first.ms / 1000).toFixed(1)} s`,
      `second build ${second.status} in ${(second.ms / 1000).toFixed(1)} s`,
    );
  });

  it('runs unprivileged on a read-only root (the default user, as on Kubernetes)', async () => {
    const run = await runCommand(
      'docker',
      ['run', '--rm', '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', IMAGE, 'hash-key'],
      {},
    );
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/"hash":\s*"sha256:[0-9a-f]{64}"/);
  });

  it('refuses to start in a network namespace of its own, saying why', async () => {
    const deploymentId = testDeploymentId('srvimg-netns');
    const run = await runCommand(
      'docker',
      [
        'run',
        '--rm',
        '--user',
        '0:0',
        '--cap-drop',
        'ALL',
        '-v',
        '/var/run/docker.sock:/var/run/docker.sock',
        '-e',
        `DEPLOYMENT_ID=${deploymentId}`,
        '-e',
        'WORKSPACE_QUOTA=false',
        '-e',
        'SANDBOX_FIREWALL=false',
        IMAGE,
      ],
      {},
    );
    expect(run.code).not.toBe(0);
    expect(run.out).toContain("this server does not share the Docker engine's network namespace");
    expect(run.out).toContain('--network host');
    expect(await containersOf(deploymentId)).toEqual([]);
    expect(await networksOf(deploymentId)).toEqual([]);
  });

  it('runs as the README says and is ready within 5 s', async () => {
    const port = await freeLoopbackPort();
    url = `http://127.0.0.1:${port}`;
    mkdirSync(MOUNTS, { recursive: true });
    const started = Date.now();
    const run = await runReadmeShell('container', {
      ...IMAGE_ENV,
      IMAGE,
      NAME,
      MOUNTS,
      PORT: String(port),
      PORT_RANGE: ports.range,
      DEPLOYMENT_ID: DEPLOYMENT,
    });
    expect(run.code, run.out).toBe(0);
    await eventually(
      '/readyz of the server container',
      async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      30_000,
      50,
    );
    const readyMs = Date.now() - started;
    figures.push(`docker run to /readyz ${readyMs} ms`);
    expect(readyMs).toBeLessThan(5000);

    // The packet filter went into the host's tables, and the image's HEALTHCHECK passes.
    expect(iptablesChains()).toContain('RSBX-INPUT');
    const health = (await docker.getImage(IMAGE).inspect()).Config.Healthcheck?.Test ?? [];
    expect(health[0]).toBe('CMD');
    const check = await runCommand('docker', ['exec', NAME, ...health.slice(1)], {});
    expect(check.code, check.out).toBe(0);
  });

  it('serves the README curl walkthrough', async () => {
    await expectCurlWalkthrough(url);
  });

  it("gives sandboxes their size-limited nosuid,nodev workspace, seen by the host's engine", async () => {
    const acquired = await fetch(`${url}/v1/sandboxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'base' }),
    });
    expect(acquired.status).toBe(201);
    const { id } = z.object({ id: z.string() }).parse(await acquired.json());
    for (const container of await containersOf(DEPLOYMENT)) {
      const networks = (await docker.getContainer(container.Id).inspect()).NetworkSettings.Networks;
      for (const network of Object.values(networks)) sandboxAddresses.add(network.IPAddress);
    }
    const exec = await fetch(`${url}/v1/sandboxes/${id}/exec`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'awk \'$2 == "/workspace" { print $3, $4 }\' /proc/mounts' }),
    });
    const answer = execAnswerSchema.parse(await exec.json());
    expect(answer.exitCode).toBe(0);
    const [fsType, options] = answer.stdout.trim().split(' ');
    expect(fsType).toBe('ext4');
    expect(options?.split(',')).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    const onHost = hostMountsBelow(join(MOUNTS, DEPLOYMENT)).filter((entry) =>
      entry.mountPoint.endsWith(`/${id}`),
    );
    expect(onHost.length).toBeGreaterThan(0);
    for (const entry of onHost) {
      expect(entry.fsType).toBe('ext4');
      expect(entry.options).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    }
    const released = await fetch(`${url}/v1/sandboxes/${id}`, { method: 'DELETE' });
    expect(released.status).toBe(204);
  });

  it('stops on SIGTERM with exit code 0 within seconds and leaves nothing behind', async () => {
    const started = Date.now();
    await docker.getContainer(NAME).stop();
    const stopMs = Date.now() - started;
    figures.push(`docker stop ${stopMs} ms`);
    const state = (await docker.getContainer(NAME).inspect()).State;
    expect(state.ExitCode).toBe(0);
    expect(stopMs).toBeLessThan(15_000);
    expect(await containersOf(DEPLOYMENT)).toEqual([]);
    expect(await networksOf(DEPLOYMENT)).toEqual([]);
    expect(existsSync(join(MOUNTS, DEPLOYMENT))).toBe(false);
    expect(hostMountsBelow(MOUNTS)).toEqual([]);
    expect(sandboxAddresses.size).toBeGreaterThan(0);
    const left = iptablesChains().filter((chain) =>
      [...sandboxAddresses].some((a) => chain === `RSBX-S-${a}`),
    );
    expect(left).toEqual([]);
  });
});
