/**
 * The SDK against the real server CLI (a child process) driving real Docker: every control-plane
 * method, typed errors, `await using`, and the whole data-plane suite through the server's forwarding.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_IMAGE } from '../../support/images.js';
import { containersOf } from '../../support/server-process.js';
import { testDeploymentId, withServer } from '../../test/support/fixture.js';
import {
  AuthError,
  CapacityError,
  NotFoundError,
  type Sandbox,
  SandboxClient,
  ValidationError,
} from '../src/index.js';
import { describeDataPlane } from './support/data-plane-suite.js';

const DEPLOYMENT_ID = testDeploymentId('sdk-client-test');
const TOKEN = randomBytes(24).toString('hex');
/** Small, so that the capacity test reaches it: the shared sandbox, the refilled warm one, and one more. */
const MAX_INSTANCES = 4;

const server = withServer('sdk-client-test', {
  env: { BEARER_TOKEN: TOKEN, POOL_SIZE: '1', MAX_SANDBOX_INSTANCES: String(MAX_INSTANCES) },
  warm: 1,
});
let client: SandboxClient;
let shared: Sandbox;

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/** Containers of this deployment that carry the sandbox's id label. */
async function containersFor(id: string): Promise<number> {
  return (await containersOf(DEPLOYMENT_ID)).filter((c) => Object.values(c.Labels).includes(id)).length;
}

beforeAll(async () => {
  client = new SandboxClient({ baseUrl: server.url, token: TOKEN });
  shared = await client.create({ sessionId: 'sdk-data-plane' });
});

afterAll(async () => {
  await shared?.close();
});

describe('server mode: control plane', () => {
  it('lists sandbox types and pools', async () => {
    const types = await client.types();
    const base = types.find((t) => t.name === 'base');
    expect(base).toMatchObject({
      name: 'base',
      image: BASE_IMAGE,
      pool: { type: 'base', target: 1 },
      storage: { readOnlyRootfs: true, writable: { '/tmp': 64, '/var/tmp': 64, '/home/sandbox': 64 } },
    });
    expect(base?.resources).toMatchObject({ workspaceMiB: 1024 });
    expect(base?.resources.memoryMiB).toBeGreaterThan(0);
    const pools = await client.pools();
    expect(pools).toContainEqual(expect.objectContaining({ type: 'base', target: 1 }));
  });

  it('creates, inspects, finds, connects to, keeps alive and releases a sandbox', async () => {
    const sessionId = `session-${randomBytes(4).toString('hex')}`;
    const sandbox = await client.create({
      type: 'base',
      sessionId,
      env: { FOO: 'bar' },
      metadata: { owner: 'sdk-test' },
      idleTimeoutSeconds: 120,
    });
    expect(sandbox.type).toBe('base');
    const info = await sandbox.info();
    expect(info).toMatchObject({
      id: sandbox.id,
      type: 'base',
      status: 'claimed',
      sessionId,
      metadata: { owner: 'sdk-test' },
      idleTimeoutSeconds: 120,
    });
    // The server's default hard TTL, a day, ends it whatever the keep-alives.
    expect(info.expiresAt).not.toBeNull();
    expect(Object.keys(info)).not.toContain('token');
    expect((await sandbox.commands.run('echo $FOO')).stdout).toBe('bar\n');

    expect((await client.list({ sessionId })).map((s) => s.id)).toEqual([sandbox.id]);
    expect(await client.list({ sessionId: 'no-such-session' })).toEqual([]);

    const again = await client.connect(sandbox.id);
    expect(again.id).toBe(sandbox.id);
    expect((await again.commands.run('echo $FOO')).stdout).toBe('bar\n');

    expect((await sandbox.keepAlive({ idleTimeoutSeconds: 600 })).idleTimeoutSeconds).toBe(600);
    expect((await sandbox.keepAlive()).idleTimeoutSeconds).toBe(600);

    expect(await containersFor(sandbox.id)).toBe(1);
    await sandbox.close();
    const gone = await caught(sandbox.info());
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone).toMatchObject({ code: 'SANDBOX_NOT_FOUND', status: 404 });
    expect(await containersFor(sandbox.id)).toBe(0);
    // Idempotent: on this handle, and on another handle of the same, now released, sandbox.
    await sandbox.close();
    await again.close();
  });

  it('releases the sandbox when an `await using` scope ends', async () => {
    let id = '';
    {
      await using sandbox = await client.create();
      id = sandbox.id;
      expect((await sandbox.commands.run('true')).exitCode).toBe(0);
    }
    const error = await caught(client.connect(id));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ code: 'SANDBOX_NOT_FOUND' });
  });

  it('resizes a pool', async () => {
    expect(await client.resizePool('base', 2)).toMatchObject({ type: 'base', target: 2 });
    expect(await client.resizePool('base', 1)).toMatchObject({ type: 'base', target: 1 });
  });
});

describe('server mode: errors', () => {
  it('maps unknown ids and types to NotFoundError, with the request id', async () => {
    const sandbox = await caught(client.connect('no-such-sandbox'));
    expect(sandbox).toBeInstanceOf(NotFoundError);
    expect(sandbox).toMatchObject({ code: 'SANDBOX_NOT_FOUND', status: 404 });
    expect((sandbox as NotFoundError).requestId).toEqual(expect.any(String));

    const type = await caught(client.create({ type: 'no-such-type' }));
    expect(type).toBeInstanceOf(NotFoundError);
    expect(type).toMatchObject({ code: 'SANDBOX_TYPE_NOT_FOUND' });
  });

  it('maps bad input to ValidationError', async () => {
    const error = await caught(client.create({ idleTimeoutSeconds: -1 }));
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ code: 'VALIDATION_ERROR', status: 400 });
  });

  it('maps a wrong token to AuthError', async () => {
    const intruder = new SandboxClient({ baseUrl: server.url, token: 'wrong-token' });
    const error = await caught(intruder.list());
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect(await caught(new SandboxClient({ baseUrl: server.url }).types())).toBeInstanceOf(AuthError);
  });

  it('maps the instance limit to CapacityError', async () => {
    const made: Sandbox[] = [];
    try {
      let refused: unknown;
      for (let i = 0; i <= MAX_INSTANCES && refused === undefined; i++) {
        try {
          made.push(await client.create());
        } catch (error) {
          refused = error;
        }
      }
      expect(refused).toBeInstanceOf(CapacityError);
      expect(refused).toMatchObject({ code: 'CAPACITY_EXCEEDED', status: 429 });
    } finally {
      await Promise.all(made.map((sandbox) => sandbox.close()));
    }
  });
});

describeDataPlane('server mode', () => shared);
