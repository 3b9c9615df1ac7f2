/**
 * The Docker deployer against the real engine and the real base image: what it creates, how it is
 * locked down, how it is reached, and that it leaves nothing behind.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { SANDBOXD_CAPABILITIES, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConfigInput,
  configSchema,
  imageNameFor,
  workspaceRootOf,
} from '../../server/src/config/schema.js';
import { createDeployer } from '../../server/src/deployers/create-deployer.js';
import {
  type CreateSpec,
  type DeployedSandbox,
  HostPortTakenError,
  LABELS,
} from '../../server/src/deployers/deployer.js';
import { DockerDeployer } from '../../server/src/deployers/docker.js';
import { waitForSandboxd } from '../../server/src/deployers/wait-ready.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { packageRoot } from '../../server/src/package-root.js';
import { type SandboxTypeInput, sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';
import { freeLoopbackPort as freePort } from '../../support/free-port.js';
import { IMAGE_SETTINGS } from '../../support/images.js';
import { TSX_ARGS } from '../../support/tsx.js';

const docker = new Dockerode();
const runId = randomBytes(4).toString('hex');
/** Everything this file creates carries this deployment id (and prefix), and only that is removed. */
const deploymentId = `test-docker-${runId}`;
const otherDeploymentId = `test-docker-other-${runId}`;
const prefix = `rsbx-test-${runId}`;
const scratch = mkdtempSync(join(tmpdir(), 'rsbx-docker-test-'));
const baseConfig: ConfigInput = {
  CONTAINER_PREFIX_KEY: prefix,
  DEPLOYMENT_ID: deploymentId,
  DEFAULT_MOUNT_DIR: join(scratch, 'mounts'),
  ...IMAGE_SETTINGS,
};
const config = configSchema.parse(baseConfig);
const image = imageNameFor('base', config);
const logger = createLogger('silent');
const deployer = new DockerDeployer({ config, docker, logger });
const otherDeployer = new DockerDeployer({
  config: configSchema.parse({ ...baseConfig, DEPLOYMENT_ID: otherDeploymentId }),
  docker,
  logger,
});
const READY_MS = 30_000;

beforeAll(async () => {
  await docker.ping();
  if (!(await deployer.hasImage(image))) {
    throw new Error(`${image} is missing: build it first with \`node dist/builder.mjs base\``);
  }
});

afterAll(async () => {
  for (const [id, owner] of [
    [deploymentId, deployer],
    [otherDeploymentId, otherDeployer],
  ] as const) {
    for (const c of await owner.list(id)) await owner.destroy(c.handle);
    for (const sandboxId of await owner.workspaceIds()) await owner.releaseWorkspace(sandboxId);
    await owner.teardown();
  }
  rmSync(scratch, { recursive: true, force: true });
});

async function specFor(
  options: {
    type?: Partial<SandboxTypeInput>;
    deployment?: string;
    pooled?: boolean;
    hostPort?: number;
  } = {},
): Promise<CreateSpec> {
  const sandboxId = randomBytes(6).toString('hex');
  const deployment = options.deployment ?? deploymentId;
  const type = sandboxTypeSchema.parse({ name: 'base', ...options.type });
  // The workspace comes first, as the provisioner makes it.
  await (deployment === otherDeploymentId ? otherDeployer : deployer).provideWorkspace(sandboxId, type);
  return {
    sandboxId,
    deploymentId: deployment,
    replicaId: 'docker-test-replica',
    type,
    image,
    name: `${prefix}-${sandboxId}`,
    bootToken: randomBytes(24).toString('hex'),
    hostPort: options.hostPort ?? (await freePort()),
    readonlyMounts: [],
    pooled: options.pooled ?? false,
  };
}

/** Runs a command in the container as the sandbox user, as its code runs; exit code and output. */
async function execIn(handle: string, cmd: string[]): Promise<{ exitCode: number | null; output: string }> {
  const exec = await docker
    .getContainer(handle)
    .exec({ Cmd: cmd, User: '1000:1000', AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise((resolve) => stream.on('end', resolve));
  const info = await exec.inspect();
  return { exitCode: info.ExitCode, output: Buffer.concat(chunks).toString('utf8').trim() };
}

async function sh(handle: string, script: string): Promise<{ exitCode: number | null; output: string }> {
  return execIn(handle, ['sh', '-c', script]);
}

async function createReady(deployerUsed: DockerDeployer, spec: CreateSpec): Promise<DeployedSandbox> {
  const deployed = await deployerUsed.create(spec);
  await waitForSandboxd(deployed.endpoint, { timeoutMs: READY_MS });
  return deployed;
}

async function containerExists(name: string): Promise<boolean> {
  return docker
    .getContainer(name)
    .inspect()
    .then(
      () => true,
      (error: { statusCode?: number }) => {
        if (error.statusCode === 404) return false;
        throw error;
      },
    );
}

describe('DockerDeployer', () => {
  it('answers ping and knows which images exist', async () => {
    await deployer.ping();
    expect(await deployer.hasImage(image)).toBe(true);
    expect(await deployer.hasImage(`runtime-sandbox/does-not-exist-${runId}:never`)).toBe(false);
    expect(
      await createDeployer(config, logger, {
        sharedBootTokens: () => ({ nonce: '', token: '' }),
        registry: { imageFor: () => '' },
      }),
    ).toBeInstanceOf(DockerDeployer);
  });

  it('creates a labelled, locked-down sandbox whose sandboxd answers on the published port', async () => {
    const roDir = mkdtempSync(join(scratch, 'readonly-'));
    chmodSync(roDir, 0o755);
    writeFileSync(join(roDir, 'notes.txt'), 'shared knowledge\n');
    const spec = {
      ...(await specFor({
        pooled: true,
        type: {
          resources: { cpus: 0.5, memoryMiB: 256, pidsLimit: 128 },
          storage: { writable: { '/tmp': 32, '/home/sandbox': 16 } },
          env: { TYPE_GREETING: 'hello' },
        },
      })),
      readonlyMounts: [{ hostPath: roDir, containerPath: '/mnt/knowledge' }],
    };
    const deployed = await createReady(deployer, spec);
    expect(deployed.endpoint).toEqual({ host: '127.0.0.1', port: spec.hostPort });

    const health = await fetch(`http://127.0.0.1:${spec.hostPort}/healthz`);
    expect(health.status).toBe(200);
    await health.body?.cancel();

    const info = await docker.getContainer(deployed.handle).inspect();
    expect(info.Name).toBe(`/${spec.name}`);
    expect(info.Config.Labels).toMatchObject({
      [LABELS.managedBy]: 'runtime-sandbox',
      [LABELS.deployment]: deploymentId,
      [LABELS.sandboxId]: spec.sandboxId,
      [LABELS.type]: 'base',
      [LABELS.pool]: 'true',
    });
    expect(info.Config.Env).toEqual(
      expect.arrayContaining([`SANDBOXD_TOKEN=${spec.bootToken}`, 'TYPE_GREETING=hello']),
    );
    const host = info.HostConfig;
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).toEqual([...SANDBOXD_CAPABILITIES]);
    expect(host.SecurityOpt).toEqual(['no-new-privileges:true']);
    expect(host.Privileged).toBe(false);
    expect(host.PidsLimit).toBe(128);
    expect(host.Memory).toBe(256 * 1024 * 1024);
    expect(host.MemorySwap).toBe(256 * 1024 * 1024);
    expect(host.NanoCpus).toBe(500_000_000);
    expect(host.Tmpfs).toEqual({
      '/tmp': 'rw,exec,nosuid,nodev,size=32m,mode=1777,uid=1000,gid=1000',
      '/home/sandbox': 'rw,exec,nosuid,nodev,size=16m,mode=0755,uid=1000,gid=1000',
    });
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.RestartPolicy?.Name).toBe('no');
    expect(host.AutoRemove).toBe(false);
    expect(host.PortBindings).toEqual({
      [`${SANDBOXD_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: `${spec.hostPort}` }],
    });
    const workspaceDir = join(workspaceRootOf(config), spec.sandboxId);
    expect(host.Binds).toEqual([`${workspaceDir}:/workspace:rw`, `${roDir}:/mnt/knowledge:ro`]);
    expect(info.Mounts.map((m) => m.Source)).not.toContain('/var/run/docker.sock');

    // sandboxd (under tini, pid 1) starts as root with its few capabilities; what it runs is uid
    // 1000 with no effective capabilities and no way to gain privileges.
    expect(info.Config.User).toBe('0:0');
    const identity = await sandboxdExec(
      deployed,
      spec.bootToken,
      "id -u; stat -c %u /proc/1; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '",
    );
    expect(identity).toEqual({ exitCode: 0, stdout: '1000\n0\nCapEff: 0000000000000000\nNoNewPrivs: 1\n' });

    // /workspace is the host folder, /tmp a size-capped tmpfs that may hold executables, and the
    // read-only mount is readable but not writable.
    const mounts = await sh(
      deployed.handle,
      "echo hi > /workspace/a && printf '#!/bin/sh\\necho ran\\n' > /tmp/s && chmod +x /tmp/s && /tmp/s && " +
        'cat /mnt/knowledge/notes.txt && ! touch /mnt/knowledge/x 2>/dev/null && findmnt -no OPTIONS /tmp',
    );
    expect(mounts.exitCode).toBe(0);
    const [ran, notes, tmpOptions] = mounts.output.split('\n');
    expect([ran, notes]).toEqual(['ran', 'shared knowledge']);
    expect(tmpOptions).toMatch(/^rw,nosuid,nodev,.*size=32768k/);
    expect(tmpOptions).not.toContain('noexec');
    expect(statSync(join(workspaceDir, 'a')).uid).toBe(1000);
  });

  it('makes / read-only by default, leaving /workspace and the writable paths writable', async () => {
    const deployed = await createReady(deployer, await specFor());
    expect((await docker.getContainer(deployed.handle).inspect()).HostConfig.ReadonlyRootfs).toBe(true);

    for (const path of ['/x', '/usr/x', '/etc/x', '/opt/sandboxd/x']) {
      const rootWrite = await sh(deployed.handle, `touch ${path}`);
      expect({ path, exitCode: rootWrite.exitCode }).toEqual({ path, exitCode: 1 });
      expect(rootWrite.output).toContain('Read-only file system');
    }
    expect(
      await sh(
        deployed.handle,
        'touch /workspace/x /tmp/x /var/tmp/x /home/sandbox/x && stat -c %U:%a /home/sandbox /tmp /var/tmp',
      ),
    ).toEqual({ exitCode: 0, output: 'sandbox:755\nsandbox:1777\nsandbox:1777' });
  });

  it('leaves the root writable for a type that turns readOnlyRootfs off', async () => {
    const spec = await specFor({ type: { security: { readOnlyRootfs: false } } });
    const deployed = await createReady(deployer, spec);
    expect((await docker.getContainer(deployed.handle).inspect()).HostConfig.ReadonlyRootfs).toBe(false);
    expect((await sh(deployed.handle, 'findmnt -no OPTIONS /')).output).toMatch(/^rw,/);
  });

  it("runs the code as the type's user when one is set", async () => {
    const spec = await specFor({ type: { security: { user: '2000:2000' } } });
    const deployed = await createReady(deployer, spec);
    const info = await docker.getContainer(deployed.handle).inspect();
    expect(info.Config.Env).toContain('SANDBOXD_RUN_AS=2000:2000');
    expect(await sandboxdExec(deployed, spec.bootToken, 'cd /tmp && id -u; id -g')).toEqual({
      exitCode: 0,
      stdout: '2000\n2000\n',
    });
  });

  it('lets a process with nothing else to do wait for readiness to the end', async () => {
    // Docker's port proxy can swallow a first probe without a trace; a waiter whose only timer
    // were unref'd (AbortSignal.timeout) would let such a process exit mid-wait.
    const spec = await specFor();
    const source = (path: string) => JSON.stringify(join(packageRoot(), path));
    const script = `
      import { configSchema } from ${source('server/src/config/schema.ts')};
      import { DockerDeployer } from ${source('server/src/deployers/docker.ts')};
      import { createLogger } from ${source('server/src/observability/logger.ts')};
      import { waitForSandboxd } from ${source('server/src/deployers/wait-ready.ts')};
      const deployer = new DockerDeployer({
        config: configSchema.parse(${JSON.stringify(baseConfig)}),
        logger: createLogger('silent'),
      });
      const deployed = await deployer.create(${JSON.stringify(spec)});
      await waitForSandboxd(deployed.endpoint, { timeoutMs: ${READY_MS} });
      console.log('ready');
      await deployer.destroy(deployed.handle);`;
    const child = await promisify(execFile)(process.execPath, [
      ...TSX_ARGS,
      '--input-type=module',
      '-e',
      script,
    ]);
    expect(child.stdout.trim()).toBe('ready');
    expect(await containerExists(spec.name)).toBe(false);
  });

  it('reports a host port another process holds as HostPortTakenError and leaves no container', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const address = holder.address();
    if (typeof address !== 'object' || address === null) throw new Error('no address');
    try {
      const spec = await specFor({ hostPort: address.port });
      const error = await deployer.create(spec).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(HostPortTakenError);
      expect(error).toMatchObject({ port: address.port });
      expect(await containerExists(spec.name)).toBe(false);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('reports a host port another sandbox holds as HostPortTakenError and leaves no container', async () => {
    const first = await specFor();
    await deployer.create(first);
    const second = await specFor({ hostPort: first.hostPort });
    const error = await deployer.create(second).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HostPortTakenError);
    expect(await containerExists(second.name)).toBe(false);
    expect(await containerExists(first.name)).toBe(true);
  });

  it('destroys idempotently', async () => {
    const spec = await specFor();
    const deployed = await deployer.create(spec);
    await deployer.destroy(deployed.handle);
    expect(await containerExists(spec.name)).toBe(false);
    await deployer.destroy(deployed.handle);
    await Promise.all([deployer.destroy(deployed.handle), deployer.destroy(`${prefix}-never-created`)]);
  });

  it("lists only this deployment's containers, stopped ones included", async () => {
    const other = otherDeployer;
    const before = new Set((await deployer.list(deploymentId)).map((c) => c.handle));
    const mine = await deployer.create(await specFor());
    const stopped = await deployer.create(await specFor({ pooled: true }));
    const theirs = await other.create(await specFor({ deployment: otherDeploymentId }));
    await docker.getContainer(stopped.handle).stop({ t: 0 });

    const listed = (await deployer.list(deploymentId)).filter((c) => !before.has(c.handle));
    const byHandle = new Map(listed.map((c) => [c.handle, c]));
    expect([...byHandle.keys()].sort()).toEqual([mine.handle, stopped.handle].sort());
    expect(byHandle.get(mine.handle)).toMatchObject({ deploymentId, running: true });
    expect(byHandle.get(stopped.handle)?.running).toBe(false);
    expect((await other.list(otherDeploymentId)).map((c) => c.handle)).toEqual([theirs.handle]);
  });

  it('puts public sandboxes on the deployment network with inter-container traffic off, ports published', async () => {
    const one = await createReady(deployer, await specFor());
    const two = await createReady(deployer, await specFor());
    const network = await docker.getNetwork(`${deploymentId}-sandboxes`).inspect();
    expect(network.Internal).toBe(false);
    expect(network.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
    expect(network.Options?.['com.docker.network.bridge.name']).toMatch(/^rsbxp[0-9a-f]{8}$/);
    const info = await docker.getContainer(one.handle).inspect();
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([`${deploymentId}-sandboxes`]);
    expect(one.endpoint.host).toBe('127.0.0.1');

    // The host reaches both (so the probe works); neither reaches the other.
    const twoAddress = await addressOf(two.handle);
    expect(await hostReaches(twoAddress)).toBe(true);
    expect((await probe(one.handle, twoAddress)).exitCode).not.toBe(0);
  });

  it('puts network none sandboxes on an internal network: reachable from the host, cut off otherwise', async () => {
    const isolated = await createReady(deployer, await specFor({ type: { security: { network: 'none' } } }));
    const isolatedPeer = await createReady(
      deployer,
      await specFor({ type: { security: { network: 'none' } } }),
    );
    const bridged = await createReady(deployer, await specFor());

    const network = await docker.getNetwork(`${deploymentId}-offline`).inspect();
    expect(network.Internal).toBe(true);
    expect(network.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
    expect(isolated.endpoint.port).toBe(SANDBOXD_PORT);
    expect(await hostReaches(isolatedPeer.endpoint.host)).toBe(true);

    expect((await probe(isolated.handle, await addressOf(bridged.handle))).exitCode).not.toBe(0);
    expect((await probe(isolated.handle, isolatedPeer.endpoint.host)).exitCode).not.toBe(0);
  });

  it('refuses a type whose runtime the engine does not have, and accepts one it has', async () => {
    const missing = sandboxTypeSchema.parse({ name: 'base', security: { runtime: 'no-such-runtime' } });
    await expect(deployer.prepare([missing])).rejects.toThrow(/runtime "no-such-runtime" is not installed/);
    const runc = sandboxTypeSchema.parse({ name: 'base', security: { runtime: 'runc' } });
    await deployer.prepare([runc]);
    const deployed = await createReady(deployer, await specFor({ type: { security: { runtime: 'runc' } } }));
    expect((await docker.getContainer(deployed.handle).inspect()).HostConfig.Runtime).toBe('runc');
  });

  it('removes its networks at teardown once its sandboxes are gone', async () => {
    for (const c of await deployer.list(deploymentId)) await deployer.destroy(c.handle);
    await deployer.teardown();
    for (const name of [`${deploymentId}-sandboxes`, `${deploymentId}-offline`]) {
      await expect(docker.getNetwork(name).inspect()).rejects.toMatchObject({ statusCode: 404 });
    }
  });
});

/** Runs a command through the sandbox's own sandboxd, as its code runs: exit code and stdout. */
async function sandboxdExec(
  deployed: DeployedSandbox,
  token: string,
  command: string,
): Promise<{ exitCode: number; stdout: string }> {
  const response = await fetch(`http://${deployed.endpoint.host}:${deployed.endpoint.port}/exec`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ command }),
  });
  const result = (await response.json()) as { exitCode: number; stdout: string };
  return { exitCode: result.exitCode, stdout: result.stdout };
}

async function addressOf(handle: string): Promise<string> {
  const networks = (await docker.getContainer(handle).inspect()).NetworkSettings.Networks;
  const address = Object.values(networks)[0]?.IPAddress;
  if (!address) throw new Error(`container ${handle} has no address`);
  return address;
}

/** From inside `from`, sandboxd's /healthz at `address`. */
function probe(from: string, address: string) {
  return sh(from, `curl -fsS --connect-timeout 1 -o /dev/null http://${address}:${SANDBOXD_PORT}/healthz`);
}

async function hostReaches(address: string): Promise<boolean> {
  const response = await fetch(`http://${address}:${SANDBOXD_PORT}/healthz`, {
    signal: AbortSignal.timeout(2000),
  }).catch(() => undefined);
  return response?.ok === true;
}
