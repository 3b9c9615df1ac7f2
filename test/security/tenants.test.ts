/**
 * Tenants: one server (memory state, real Docker) with an admin token and an API_KEYS_FILE of five
 * tenants, whose keys come from the CLI's own `hash-key`. Tenant B cannot see, call, keep alive,
 * release, snapshot or restore tenant A's sandboxes and snapshots: each answers exactly as for an
 * id that does not exist. Keys and snapshot keys are per tenant; the admin sees everything. Every
 * limit answers 429 TENANT_LIMIT_EXCEEDED with Retry-After and leaves nothing half-made, and a keys
 * file holding a plain key stops the start. (That slots and rate windows are shared across workers
 * is the state store contract's, test/state.)
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapacityError, SandboxClient } from '../../client-sdk/src/index.js';
import { LABELS } from '../../server/src/deployers/deployer.js';
import { containersOf, eventually, runServerCli } from '../../support/server-process.js';
import { withDeployment, withServer } from '../support/fixture.js';

const ADMIN_TOKEN = `admin-${randomUUID()}`;
/** Between one small snapshot and one with a 256 KiB incompressible file in it. */
const SNAPSHOT_BYTES = 64 * 1024;

const TENANTS = {
  alpha: {},
  beta: {},
  capped: { maxSandboxes: 2 },
  rated: { acquiresPerMinute: 2 },
  thrifty: { snapshotBytes: SNAPSHOT_BYTES },
} as const;
type TenantName = keyof typeof TENANTS;

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}
type ErrorAnswer = Answer<{ error: { code: string; message: string; details?: Record<string, unknown> } }>;

const dir = mkdtempSync(join(tmpdir(), 'h10-test-tenants-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keys = {} as Record<TenantName, string>;
let cliMade: { key: string; hash: string };

// The keys file, before the server that reads it starts.
beforeAll(async () => {
  const tenants = [];
  cliMade = await hashKeyCli();
  for (const [id, limits] of Object.entries(TENANTS)) {
    // alpha's key is the CLI's: the server must take what `hash-key` prints.
    const { key, hash } = id === 'alpha' ? cliMade : hashKey();
    keys[id as TenantName] = key;
    tenants.push({ id, keys: [hash], limits });
  }
  writeFileSync(join(dir, 'api-keys.json'), JSON.stringify({ tenants }));
});

const server = withServer('h10-test-tenants', {
  ports: 50,
  env: {
    BEARER_TOKEN: ADMIN_TOKEN,
    API_KEYS_FILE: join(dir, 'api-keys.json'),
    POOL_SIZE: '1',
    FILE_SYSTEM: 'local',
    SNAPSHOT_DIR: join(dir, 'snapshots'),
  },
});
const DEPLOYMENT = server.deployment.id;
const tenantsOnlyDeployment = withDeployment('h10-test-tenants-only', { ports: 10 });

/** A new key and its hash, from the CLI an operator would use. */
async function hashKeyCli(): Promise<{ key: string; hash: string }> {
  const run = await runServerCli(['hash-key']);
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as { key: string; hash: string };
}

/** The same, made here: one CLI run is enough to show the CLI works, and each costs a second. */
function hashKey(): { key: string; hash: string } {
  const key = randomBytes(32).toString('base64url');
  return { key, hash: `sha256:${createHash('sha256').update(key).digest('hex')}` };
}

async function as<T = Record<string, unknown>>(
  who: TenantName | 'admin' | string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer<T>> {
  const token = who === 'admin' ? ADMIN_TOKEN : (keys[who as TenantName] ?? who);
  const raw = body instanceof Buffer;
  const response = await server.fetch(path, {
    method,
    token,
    headers:
      body === undefined ? {} : { 'content-type': raw ? 'application/octet-stream' : 'application/json' },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    body: (text === '' ? {} : JSON.parse(text)) as T,
    headers: response.headers,
  };
}

async function acquire(who: TenantName | 'admin', body: Record<string, unknown> = {}): Promise<string> {
  const answer = await as<{ id: string }>(who, 'POST', '/v1/sandboxes', body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return answer.body.id;
}

async function writeFile(who: TenantName, id: string, path: string, content: Buffer | string): Promise<void> {
  const answer = await as(who, 'PUT', `/v1/sandboxes/${id}/files?path=${path}`, Buffer.from(content));
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
}

async function readFile(who: TenantName | 'admin', id: string, path: string): Promise<string> {
  const token = who === 'admin' ? ADMIN_TOKEN : keys[who];
  const response = await server.fetch(`/v1/sandboxes/${id}/files?path=${path}`, { token });
  expect(response.status).toBe(200);
  return response.text();
}

async function snapshot(who: TenantName, id: string, key: string): Promise<string> {
  const answer = await as<{ id: string; key: string }>(who, 'POST', `/v1/sandboxes/${id}/snapshots`, { key });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  expect(answer.body.key).toBe(key);
  return answer.body.id;
}

const idsOf = (items: Array<{ id: string }>): string[] => items.map((item) => item.id).sort();

/** The 429 of a tenant limit: the code, which limit, and a Retry-After in whole seconds. */
function expectLimit(answer: ErrorAnswer, limit: string, maxRetrySeconds: number): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(429);
  expect(answer.body.error.code).toBe('TENANT_LIMIT_EXCEEDED');
  expect(answer.body.error.details?.limit).toBe(limit);
  const retryAfter = Number(answer.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxRetrySeconds);
}

/** Every container of the deployment has a live record, and vice versa (nothing half-made). */
async function expectNoLeftovers(): Promise<void> {
  await eventually('containers to match the records', async () => {
    const { body } = await as<{ sandboxes: Array<{ id: string }> }>('admin', 'GET', '/v1/sandboxes');
    const containers = (await containersOf(DEPLOYMENT)).map((c) => c.Labels[LABELS.sandboxId]);
    const records = idsOf(body.sandboxes);
    const dirs = server.workspaceDirs().sort();
    return JSON.stringify([...containers].sort()) === JSON.stringify(records) &&
      JSON.stringify(dirs) === JSON.stringify(records)
      ? true
      : undefined;
  });
}

describe('keys', () => {
  it('hash-key makes a long random key and its sha256, which the server takes', async () => {
    const { key, hash } = cliMade;
    expect(key.length).toBeGreaterThanOrEqual(40);
    expect(hash).toBe(`sha256:${createHash('sha256').update(key).digest('hex')}`);
    expect((await as('alpha', 'GET', '/v1/sandboxes')).status).toBe(200);
  });

  it.each([
    ['a wrong key', 'not-a-key-of-anyone'],
    ['a key hash used as the key', `sha256:${createHash('sha256').update('x').digest('hex')}`],
  ])('%s answers 401', async (_what, token) => {
    const answer = await as<ErrorAnswer['body']>(token, 'GET', '/v1/sandboxes');
    expect(answer.status).toBe(401);
    expect(answer.body.error.code).toBe('UNAUTHORIZED');
  });

  it('no key answers 401', async () => {
    const response = await server.fetch('/v1/sandboxes', { token: null });
    expect(response.status).toBe(401);
  });

  it('only the admin resizes pools (403 FORBIDDEN for a tenant)', async () => {
    const answer = await as<ErrorAnswer['body']>('alpha', 'PUT', '/v1/pools/base', { size: 5 });
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('FORBIDDEN');
    const { body } = await as<{ pools: Array<{ type: string; target: number }> }>(
      'admin',
      'GET',
      '/v1/pools',
    );
    expect(body.pools.find((pool) => pool.type === 'base')?.target).toBe(1);
  });

  it('with API_KEYS_FILE and no BEARER_TOKEN auth is on, for tenants only', async () => {
    const { key, hash } = hashKey();
    const file = join(dir, 'tenants-only.json');
    writeFileSync(file, JSON.stringify({ tenants: [{ id: 'solo', keys: [hash] }] }));
    const tenantsOnly = await tenantsOnlyDeployment.start({
      env: {
        API_KEYS_FILE: file,
        POOL_SIZE: '0',
        FILE_SYSTEM: 'local',
        SNAPSHOT_DIR: join(dir, 'snapshots-2'),
      },
    });
    try {
      expect((await tenantsOnly.fetch('/v1/sandboxes', { token: key })).status).toBe(200);
      expect((await tenantsOnly.fetch('/v1/sandboxes', { token: null })).status).toBe(401);
      expect((await tenantsOnly.fetch('/v1/sandboxes', { token: ADMIN_TOKEN })).status).toBe(401);
      // No admin: nobody resizes pools.
      const resize = await tenantsOnly.fetch('/v1/pools/base', {
        method: 'PUT',
        token: key,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ size: 1 }),
      });
      expect(resize.status).toBe(403);
    } finally {
      await tenantsOnly.stop();
    }
  });

  it.each([
    ['a plain key', (hash: string) => [hash, 'rsk_plain-key-pasted-by-mistake'], 'is not a key hash'],
    ['one hash in two tenants', (hash: string) => [hash], 'a key belongs to one tenant'],
  ])(
    'a keys file with %s stops the start (exit 2), naming the entry, echoing no key',
    async (_w, keysOf, problem) => {
      const { hash } = await hashKey();
      const file = join(dir, `bad-${randomUUID()}.json`);
      const second = keysOf(hash).length === 1 ? [{ id: 'other', keys: [hash] }] : [];
      writeFileSync(file, JSON.stringify({ tenants: [{ id: 'acme', keys: keysOf(hash) }, ...second] }));
      const config = join(dir, 'empty.env');
      writeFileSync(config, '');
      const run = await runServerCli(['--config', config], {
        API_KEYS_FILE: file,
        DEPLOYMENT_ID: `${DEPLOYMENT}-bad`,
        CONTAINER_PREFIX_KEY: `${DEPLOYMENT}-bad`,
        DEFAULT_MOUNT_DIR: join(dir, 'bad-mounts'),
      });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('API_KEYS_FILE');
      expect(run.stderr).toContain(problem);
      expect(run.stderr).not.toContain('rsk_plain-key-pasted-by-mistake');
      expect(run.stderr).not.toContain(hash);
    },
  );
});

describe('isolation', () => {
  let sandboxA: string;
  let sandboxB: string;
  let snapshotA: string;
  let snapshotB: string;

  beforeAll(async () => {
    sandboxA = await acquire('alpha');
    sandboxB = await acquire('beta');
    await writeFile('alpha', sandboxA, 'owner.txt', 'alpha');
    await writeFile('beta', sandboxB, 'owner.txt', 'beta');
    // The same key for both: two lines of versions, one per tenant.
    snapshotA = await snapshot('alpha', sandboxA, 'k');
    snapshotB = await snapshot('beta', sandboxB, 'k');
  }, 120_000);

  const missingSandbox = 'f00dfeedf00dfeed';
  const sandboxCalls: Array<[string, string, (id: string) => string, unknown?]> = [
    ['GET info', 'GET', (id) => `/v1/sandboxes/${id}`],
    ['exec', 'POST', (id) => `/v1/sandboxes/${id}/exec`, { command: 'cat owner.txt' }],
    ['read a file', 'GET', (id) => `/v1/sandboxes/${id}/files?path=owner.txt`],
    ['write a file', 'PUT', (id) => `/v1/sandboxes/${id}/files?path=owner.txt`, Buffer.from('beta was here')],
    ['list files', 'GET', (id) => `/v1/sandboxes/${id}/files/list?path=.`],
    ['download the archive', 'GET', (id) => `/v1/sandboxes/${id}/archive?path=.`],
    ['keep alive', 'POST', (id) => `/v1/sandboxes/${id}/keepalive`, { idleTimeoutSeconds: 5 }],
    ['snapshot', 'POST', (id) => `/v1/sandboxes/${id}/snapshots`, { key: 'stolen' }],
    ['release with a snapshot', 'DELETE', (id) => `/v1/sandboxes/${id}?snapshot=true`],
    ['release', 'DELETE', (id) => `/v1/sandboxes/${id}`],
  ];

  it.each(sandboxCalls)(
    "B's %s on A's sandbox answers exactly as for a missing one",
    async (_what, method, path, body) => {
      const theirs = await as<ErrorAnswer['body']>('beta', method, path(sandboxA), body);
      const missing = await as<ErrorAnswer['body']>('beta', method, path(missingSandbox), body);
      expect(theirs.status).toBe(404);
      expect(theirs.body.error.code).toBe('SANDBOX_NOT_FOUND');
      expect(JSON.stringify(theirs.body).replaceAll(sandboxA, missingSandbox)).toBe(
        JSON.stringify(missing.body),
      );
    },
  );

  const missingSnapshot = randomUUID();
  const snapshotCalls: Array<[string, string, (id: string) => string, (id: string) => unknown]> = [
    ['GET', 'GET', (id) => `/v1/snapshots/${id}`, () => undefined],
    ['delete', 'DELETE', (id) => `/v1/snapshots/${id}`, () => undefined],
    ['restore by id', 'POST', () => '/v1/sandboxes', (id) => ({ restore: { snapshotId: id } })],
  ];

  it.each(snapshotCalls)(
    "B's %s of A's snapshot answers exactly as for a missing one",
    async (_what, method, path, body) => {
      const theirs = await as<ErrorAnswer['body']>('beta', method, path(snapshotA), body(snapshotA));
      const missing = await as<ErrorAnswer['body']>(
        'beta',
        method,
        path(missingSnapshot),
        body(missingSnapshot),
      );
      expect(theirs.status).toBe(404);
      expect(theirs.body.error.code).toBe('SNAPSHOT_NOT_FOUND');
      expect(JSON.stringify(theirs.body).replaceAll(snapshotA, missingSnapshot)).toBe(
        JSON.stringify(missing.body),
      );
    },
  );

  it("A's sandbox and snapshot are untouched by all of that", async () => {
    expect(await readFile('alpha', sandboxA, 'owner.txt')).toBe('alpha');
    const { body } = await as<{ snapshots: Array<{ id: string }> }>('alpha', 'GET', '/v1/snapshots');
    expect(idsOf(body.snapshots)).toEqual([snapshotA]);
  });

  it('each tenant lists only its own sandboxes and snapshots; the admin lists all', async () => {
    type Sandboxes = { sandboxes: Array<{ id: string; status: string }> };
    type Snapshots = { snapshots: Array<{ id: string; key: string | null }> };
    const alpha = await as<Sandboxes>('alpha', 'GET', '/v1/sandboxes');
    const beta = await as<Sandboxes>('beta', 'GET', '/v1/sandboxes');
    const admin = await as<Sandboxes>('admin', 'GET', '/v1/sandboxes');
    expect(idsOf(alpha.body.sandboxes)).toEqual([sandboxA]);
    expect(idsOf(beta.body.sandboxes)).toEqual([sandboxB]);
    // The admin's view has both, and the warm pool, which is nobody's until claimed.
    expect(idsOf(admin.body.sandboxes)).toEqual(expect.arrayContaining([sandboxA, sandboxB]));
    expect(admin.body.sandboxes.some((s) => s.status === 'warm' || s.status === 'creating')).toBe(true);

    const betaKey = await as<Snapshots>('beta', 'GET', '/v1/snapshots?key=k');
    expect(betaKey.body.snapshots.map((s) => [s.id, s.key])).toEqual([[snapshotB, 'k']]);
    const adminAll = await as<Snapshots>('admin', 'GET', '/v1/snapshots');
    expect(idsOf(adminAll.body.snapshots)).toEqual(expect.arrayContaining([snapshotA, snapshotB]));
    // The admin's own key "k" is a third line: neither tenant's.
    const adminKey = await as<Snapshots>('admin', 'GET', '/v1/snapshots?key=k');
    expect(adminKey.body.snapshots).toEqual([]);
  });

  it("restoring key k gives each tenant its own k; the admin reaches both tenants' sandboxes", async () => {
    const restoredB = await acquire('beta', { restore: { key: 'k' } });
    expect(await readFile('beta', restoredB, 'owner.txt')).toBe('beta');
    expect(await readFile('admin', sandboxA, 'owner.txt')).toBe('alpha');
    expect(await readFile('admin', restoredB, 'owner.txt')).toBe('beta');
    const released = await as('admin', 'DELETE', `/v1/sandboxes/${restoredB}`);
    expect(released.status).toBe(204);
    expect((await as('beta', 'GET', `/v1/sandboxes/${restoredB}`)).status).toBe(404);
  });

  it('the owner releases its own sandboxes; the admin deletes any snapshot', async () => {
    expect((await as('alpha', 'DELETE', `/v1/sandboxes/${sandboxA}`)).status).toBe(204);
    expect((await as('beta', 'DELETE', `/v1/sandboxes/${sandboxB}`)).status).toBe(204);
    expect((await as('admin', 'DELETE', `/v1/snapshots/${snapshotA}`)).status).toBe(204);
    expect((await as('beta', 'DELETE', `/v1/snapshots/${snapshotB}`)).status).toBe(204);
    await expectNoLeftovers();
  });
});

describe('limits', () => {
  it('maxSandboxes 2 under 4 concurrent acquires: exactly 2 win, 2 get 429, nothing leaks', async () => {
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        as<ErrorAnswer['body'] & { id: string }>('capped', 'POST', '/v1/sandboxes', {}),
      ),
    );
    const won = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    expect(won).toHaveLength(2);
    expect(refused).toHaveLength(2);
    for (const answer of refused) expectLimit(answer, 'maxSandboxes', 60);
    await expectNoLeftovers();

    // A release frees a slot for the next acquire.
    const [first] = won;
    if (!first) throw new Error('no sandbox won');
    expect((await as('capped', 'DELETE', `/v1/sandboxes/${first.body.id}`)).status).toBe(204);
    const again = await acquire('capped');
    expectLimit(await as('capped', 'POST', '/v1/sandboxes', {}), 'maxSandboxes', 60);
    for (const id of [again, ...won.slice(1).map((a) => a.body.id)]) {
      expect((await as('capped', 'DELETE', `/v1/sandboxes/${id}`)).status).toBe(204);
    }
    await expectNoLeftovers();
  }, 120_000);

  it('acquiresPerMinute 2: the third acquire of the minute gets 429 with the seconds left', async () => {
    const ids = [await acquire('rated'), await acquire('rated')];
    const third = await as<ErrorAnswer['body']>('rated', 'POST', '/v1/sandboxes', {});
    expectLimit(third, 'acquiresPerMinute', 60);
    // Releasing does not give acquires back: the rate counts acquires, not live sandboxes.
    for (const id of ids) expect((await as('rated', 'DELETE', `/v1/sandboxes/${id}`)).status).toBe(204);
    expectLimit(await as('rated', 'POST', '/v1/sandboxes', {}), 'acquiresPerMinute', 60);
    // The SDK says so as a CapacityError carrying the wait.
    const sdk = new SandboxClient({ baseUrl: server.url, token: keys.rated, retries: 0 });
    const refused = await sdk.create().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(CapacityError);
    expect(refused).toMatchObject({ code: 'TENANT_LIMIT_EXCEEDED', status: 429 });
    expect((refused as CapacityError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // Other tenants are not affected.
    const other = await acquire('alpha');
    expect((await as('alpha', 'DELETE', `/v1/sandboxes/${other}`)).status).toBe(204);
    await expectNoLeftovers();
  }, 120_000);

  it('snapshotBytes refuses the snapshot that would pass it, storing nothing of it', async () => {
    const id = await acquire('thrifty');
    await writeFile('thrifty', id, 'small.txt', 'small');
    const kept = await snapshot('thrifty', id, 'line');
    await writeFile('thrifty', id, 'noise.bin', randomBytes(256 * 1024));
    const refused = await as<ErrorAnswer['body']>('thrifty', 'POST', `/v1/sandboxes/${id}/snapshots`, {
      key: 'line',
    });
    expectLimit(refused, 'snapshotBytes', 60);
    expect(refused.body.error.details?.max).toBe(SNAPSHOT_BYTES);
    const { body } = await as<{ snapshots: Array<{ id: string }> }>('thrifty', 'GET', '/v1/snapshots');
    expect(idsOf(body.snapshots)).toEqual([kept]);
    // The refused snapshot left the sandbox as it was, and released nothing.
    expect((await as('thrifty', 'GET', `/v1/sandboxes/${id}`)).status).toBe(200);
    // The admin has no such limit.
    const admins = await as<{ id: string }>('admin', 'POST', `/v1/sandboxes/${id}/snapshots`, {});
    expect(admins.status).toBe(201);
    for (const snapshotId of [kept, admins.body.id]) {
      expect((await as('admin', 'DELETE', `/v1/snapshots/${snapshotId}`)).status).toBe(204);
    }
    expect((await as('thrifty', 'DELETE', `/v1/sandboxes/${id}`)).status).toBe(204);
    await expectNoLeftovers();
  }, 120_000);
});
