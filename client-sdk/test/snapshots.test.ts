/**
 * The SDK's snapshot methods against the real server CLI driving real Docker, with FILE_SYSTEM=local:
 * `sandbox.snapshots.create`, `sandbox.close({ snapshot })`, `client.create({ restore })` and
 * `client.snapshots.list/latest/get/delete`, with their typed errors.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withServer } from '../../test/support/fixture.js';
import { ConflictError, NotFoundError, type Sandbox, SandboxClient, ValidationError } from '../src/index.js';

const TOKEN = randomBytes(24).toString('hex');

const snapshotDir = mkdtempSync(join(tmpdir(), 'sdk-snapshots-test-'));
afterAll(() => rmSync(snapshotDir, { recursive: true, force: true }));
const server = withServer('sdk-snapshots-test', {
  env: {
    BEARER_TOKEN: TOKEN,
    POOL_SIZE: '1',
    FILE_SYSTEM: 'local',
    SNAPSHOT_DIR: snapshotDir,
    SNAPSHOT_KEEP_VERSIONS: '3',
  },
  warm: 1,
});
let client: SandboxClient;

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

async function stdoutOf(sandbox: Sandbox, command: string): Promise<string> {
  const result = await sandbox.commands.run(command);
  expect({ exitCode: result.exitCode, stderr: result.stderr }).toEqual({ exitCode: 0, stderr: '' });
  return result.stdout;
}

const keyFor = (what: string) => `sdk-${what}-${randomUUID()}`;

beforeAll(() => {
  client = new SandboxClient({ baseUrl: server.url, token: TOKEN });
});

describe('snapshots through the SDK', () => {
  it('takes keyed snapshots, finds them, and restores them into new sandboxes', async () => {
    const key = keyFor('session');
    await using sandbox = await client.create();
    await sandbox.files.write('notes/todo.txt', 'first');
    const first = await sandbox.snapshots.create({ key, expectedHead: null });
    expect(first).toMatchObject({ key, version: 1, sandboxId: sandbox.id, type: 'base', backend: 'local' });
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
    await sandbox.files.write('notes/todo.txt', 'second');
    const second = await sandbox.snapshots.create({ key, expectedHead: first.id });
    expect(second.version).toBe(2);

    expect(await client.snapshots.latest(key)).toEqual(second);
    expect(await client.snapshots.list({ key })).toEqual([second, first]);
    expect((await client.snapshots.list()).map((s) => s.id)).toEqual(
      expect.arrayContaining([first.id, second.id]),
    );
    expect(await client.snapshots.get(first.id)).toEqual(first);
    expect(await client.snapshots.latest(keyFor('never-saved'))).toBeNull();

    await using byKey = await client.create({ restore: { key } });
    expect(await byKey.files.read('notes/todo.txt')).toBe('second');
    await using byId = await client.create({ restore: { snapshotId: first.id } });
    expect(await byId.files.read('notes/todo.txt')).toBe('first');
  });

  it('throws ConflictError when the head moved, NotFoundError for unknown snapshots, ValidationError for bad input', async () => {
    const key = keyFor('conflict');
    await using sandbox = await client.create();
    const head = await sandbox.snapshots.create({ key });
    const conflict = await caught(sandbox.snapshots.create({ key, expectedHead: null }));
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({
      code: 'SNAPSHOT_CONFLICT',
      status: 409,
      details: { key, expectedHead: null, head: head.id },
    });

    const unknownKey = await caught(client.create({ restore: { key: keyFor('missing') } }));
    expect(unknownKey).toBeInstanceOf(NotFoundError);
    expect(unknownKey).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND', status: 404 });
    const unknownId = await caught(client.create({ restore: { snapshotId: randomUUID() } }));
    expect(unknownId).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    expect(await caught(client.snapshots.get(randomUUID()))).toBeInstanceOf(NotFoundError);
    expect(await caught(client.snapshots.delete(randomUUID()))).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });

    const badKey = await caught(sandbox.snapshots.create({ key: 'no spaces allowed' }));
    expect(badKey).toBeInstanceOf(ValidationError);
    expect(await caught(sandbox.snapshots.create({ expectedHead: head.id }))).toBeInstanceOf(ValidationError);
  });

  it('starts empty with allowEmpty when the key has no snapshot', async () => {
    await using sandbox = await client.create({ restore: { key: keyFor('fresh'), allowEmpty: true } });
    expect(await sandbox.files.list('.')).toEqual([]);
  });

  it('snapshots on close, and keeps the sandbox when that snapshot fails', async () => {
    const key = keyFor('close');
    const sandbox = await client.create();
    await sandbox.files.write('work.txt', 'v1');
    const first = await sandbox.snapshots.create({ key });
    await sandbox.files.write('work.txt', 'v2');

    const refused = await caught(sandbox.close({ snapshot: { key, expectedHead: null } }));
    expect(refused).toBeInstanceOf(ConflictError);
    expect(await stdoutOf(sandbox, 'cat work.txt')).toBe('v2');

    const saved = await sandbox.close({ snapshot: { key, expectedHead: first.id } });
    expect(saved).toMatchObject({ key, version: 2, sandboxId: sandbox.id });
    expect(await caught(sandbox.info())).toBeInstanceOf(NotFoundError);
    // Idempotent: a later close resolves as the first did.
    expect(await sandbox.close()).toEqual(saved);

    const restored = await client.create({ restore: { key } });
    expect(await restored.files.read('work.txt')).toBe('v2');
    const oneOff = await restored.close({ snapshot: true });
    if (oneOff === null) throw new Error('close({ snapshot: true }) gave no snapshot');
    expect(oneOff).toMatchObject({ key: null, version: null, sandboxId: restored.id });
    await client.snapshots.delete(oneOff.id);
    expect(await caught(client.snapshots.get(oneOff.id))).toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });

    const plain = await client.create();
    const otherHandle = await client.connect(plain.id);
    expect(await plain.close()).toBeNull();
    // A snapshot asked of a sandbox that is already gone: nothing could be saved, so it throws...
    const gone = await caught(otherHandle.close({ snapshot: true }));
    expect(gone).toBeInstanceOf(NotFoundError);
    expect(gone).toMatchObject({ code: 'SANDBOX_NOT_FOUND' });
    // ...while a plain close of it is a no-op.
    expect(await otherHandle.close()).toBeNull();
  });

  it("moves a key's head back when its head is deleted", async () => {
    const key = keyFor('delete-head');
    await using sandbox = await client.create();
    const v1 = await sandbox.snapshots.create({ key });
    const v2 = await sandbox.snapshots.create({ key });
    await client.snapshots.delete(v2.id);
    expect(await client.snapshots.latest(key)).toEqual(v1);
  });
});
