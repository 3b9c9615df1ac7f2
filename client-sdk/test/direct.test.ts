/**
 * Direct mode: the SDK against one sandboxd in a real container of the locally built base image,
 * started by the server's own Docker deployer (the same locked-down container options as production),
 * with no server in between.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, imageNameFor } from '../../server/src/config/schema.js';
import type { DeployedSandbox } from '../../server/src/deployers/deployer.js';
import { DockerDeployer } from '../../server/src/deployers/docker.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';
import { freeLoopbackPort as freePort } from '../../support/free-port.js';
import { AuthError, type DirectSandbox, Sandbox, UpstreamError } from '../src/index.js';
import { describeDataPlane } from './support/data-plane-suite.js';

const DEPLOYMENT_ID = 'sdk-direct-test';
const mountDir = mkdtempSync(join(tmpdir(), 'rsbx-sdk-direct-'));
// The image naming settings come from the environment, as for the server.
const config = configSchema.parse({
  CONTAINER_PREFIX_KEY: DEPLOYMENT_ID,
  DEFAULT_MOUNT_DIR: mountDir,
  RUNTIME_SANDBOX_REGISTRY: process.env.RUNTIME_SANDBOX_REGISTRY,
  RUNTIME_SANDBOX_IMAGE_NAMESPACE: process.env.RUNTIME_SANDBOX_IMAGE_NAMESPACE,
  RUNTIME_SANDBOX_IMAGE_TAG: process.env.RUNTIME_SANDBOX_IMAGE_TAG,
});
const deployer = new DockerDeployer({ config, logger: createLogger('silent') });
const token = randomBytes(24).toString('hex');

let deployed: DeployedSandbox | undefined;
let sandboxId: string | undefined;
let url: string;
let sandbox: DirectSandbox;

beforeAll(async () => {
  const image = imageNameFor('base', config);
  if (!(await deployer.hasImage(image))) {
    throw new Error(`image ${image} is missing: build it first (node dist/builder.mjs base)`);
  }
  sandboxId = `sdk-direct-${randomBytes(4).toString('hex')}`;
  const type = sandboxTypeSchema.parse({ name: 'base' });
  // The workspace first, as the server's provisioner makes it.
  await deployer.provideWorkspace(sandboxId, type);
  deployed = await deployer.create({
    sandboxId,
    deploymentId: DEPLOYMENT_ID,
    replicaId: 'sdk-direct-test',
    type,
    image,
    name: `${DEPLOYMENT_ID}-${sandboxId}`,
    bootToken: token,
    hostPort: await freePort(),
    readonlyMounts: [],
    pooled: false,
  });
  url = `http://${deployed.endpoint.host}:${deployed.endpoint.port}`;
  // sandboxd needs a moment to listen; connectDirect checks /healthz once, so wait for it here.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      // timeoutMs is every later request's too: generous, for a loaded machine.
      sandbox = await Sandbox.connectDirect({ url, token, retries: 0, timeoutMs: 10_000 });
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});

afterAll(async () => {
  if (deployed) await deployer.destroy(deployed.handle);
  if (sandboxId) await deployer.releaseWorkspace(sandboxId);
  // The deployment's network and workspace root go with its last sandbox, as at the server's shutdown.
  await deployer.teardown();
  rmSync(mountDir, { recursive: true, force: true });
});

describe('direct mode: connection', () => {
  it('reports sandboxd health', async () => {
    await expect(sandbox.health()).resolves.toMatchObject({ status: 'ok' });
  });

  it('refuses a wrong token with AuthError', async () => {
    const intruder = await Sandbox.connectDirect({ url, token: 'not-the-token-at-all' });
    const error = await intruder.commands.run('id').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
  });

  it('fails with UpstreamError when nothing listens', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const error = await Sandbox.connectDirect({ url: nowhere, token, retries: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ status: null });
  });
});

describeDataPlane('direct mode', () => sandbox);
