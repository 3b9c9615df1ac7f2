/**
 * `Harness.runTurn` against the real server (local snapshot store) and a real redis-server: the
 * workspace carried across turns and harness instances, warm reuse, scopes, failed turns, and the
 * guards: in process and on Redis, with fencing checked when the snapshot is written.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from '../../../support/redis-server.js';
import {
  ConflictError,
  Harness,
  type HarnessOptions,
  IsolationScope,
  LeaseLostError,
  memorySource,
  RedisGuard,
  SandboxClient,
  ValidationError,
} from '../../src/index.js';
import { type HarnessServer, recordingFetch, startHarnessServer } from './support.js';

let server: HarnessServer;
let redisServer: RedisServer;
let client: SandboxClient;
let uploads: string[][];
const redisClients: Redis[] = [];

const source = memorySource({
  'AGENTS.md': '# Notes agent\n',
  'skills/count/run.sh': { content: '#!/bin/sh\nwc -l < notes.txt\n', mode: 0o755 },
});

function harness(options: Partial<HarnessOptions> = {}): Harness {
  return new Harness({ client, scope: IsolationScope.SESSION, source, ...options });
}

async function redis(): Promise<Redis> {
  const connection = new Redis({ host: '127.0.0.1', port: redisServer.port, maxRetriesPerRequest: 0 });
  connection.on('error', () => undefined);
  redisClients.push(connection);
  return connection;
}

/** The notes file as the turn's tools see it, or '' when it does not exist yet. */
async function notesOf(tools: Parameters<Parameters<Harness['runTurn']>[1]>[0]): Promise<string> {
  const outcome = await tools.call('read_file', { path: 'notes.txt' });
  return outcome.ok ? (outcome.result as { content: string }).content : '';
}

/** A turn that appends a line to notes.txt and returns what it found there first. */
async function appendNote(h: Harness, context: { sessionId?: string; userId?: string }, note: string) {
  return h.runTurn(context, async (tools) => {
    const before = await notesOf(tools);
    await tools.writeFile.run({ path: 'notes.txt', content: before ? `${before}\n${note}\n` : `${note}\n` });
    return before;
  });
}

beforeAll(async () => {
  server = await startHarnessServer('harness-session-test');
  redisServer = await startRedisServer();
  const recorder = recordingFetch();
  uploads = recorder.uploads;
  client = new SandboxClient({ baseUrl: server.url, fetch: recorder.fetch });
});

afterAll(async () => {
  for (const connection of redisClients) connection.disconnect();
  await redisServer?.stop();
  await server?.shutdown();
});

describe('turns', () => {
  it('carries the workspace from turn to turn through snapshots, projecting only what changed', async () => {
    const context = { sessionId: 'carry' };
    uploads.length = 0;
    const first = await appendNote(harness(), context, 'one');
    expect(first).toMatchObject({
      value: '',
      key: 'harness/session/carry',
      restoredFrom: null,
      reused: false,
      projection: { uploaded: ['AGENTS.md', 'skills/count/run.sh'] },
      snapshot: { key: 'harness/session/carry', version: 1 },
    });
    expect(uploads).toHaveLength(1);

    // A new harness, as in another process: only the snapshot carries the workspace.
    uploads.length = 0;
    const second = await harness().runTurn(context, async (tools, sandbox) => {
      const count = await tools.execute.run({ command: './skills/count/run.sh' });
      return { notes: await notesOf(tools), count: count.stdout.trim(), sandboxId: sandbox.id };
    });
    expect(second.value).toEqual({ notes: 'one', count: '1', sandboxId: second.sandboxId });
    expect(second).toMatchObject({
      restoredFrom: first.snapshot.id,
      reused: false,
      snapshot: { version: 2 },
    });
    // The manifest came back with the snapshot: nothing had to travel again.
    expect(second.projection).toMatchObject({ uploaded: [], removed: [], unchanged: 2 });
    expect(uploads).toEqual([]);
    // Without keepWarm, nothing is left running.
    expect(await client.list({ sessionId: 'carry' })).toEqual([]);
  });

  it('keeps a sandbox warm for the key and reuses it while it is healthy and at the head', async () => {
    const context = { sessionId: 'warm' };
    const h = harness({ keepWarm: true });
    try {
      const first = await appendNote(h, context, 'one');
      const second = await appendNote(h, context, 'two');
      expect(second).toMatchObject({ reused: true, sandboxId: first.sandboxId, value: 'one' });
      expect(second.restoredFrom).toBe(first.snapshot.id);

      // Gone behind the harness's back (reaped, say): the next turn restores into a new one.
      await (await client.connect(first.sandboxId)).close();
      const third = await appendNote(h, context, 'three');
      expect(third).toMatchObject({ reused: false, value: 'one\ntwo' });
      expect(third.sandboxId).not.toBe(first.sandboxId);

      // Another process moved the head: the warm sandbox is stale and is not used.
      await appendNote(harness(), context, 'elsewhere');
      const fourth = await appendNote(h, context, 'four');
      expect(fourth).toMatchObject({ reused: false, value: 'one\ntwo\nthree\nelsewhere' });
      expect(await client.list({ sessionId: 'warm' })).toHaveLength(1);
    } finally {
      await h.close();
    }
    expect(await client.list({ sessionId: 'warm' })).toEqual([]);
  });

  it('persists nothing from a turn that throws, and releases its sandbox', async () => {
    const context = { sessionId: 'failing' };
    const h = harness({ keepWarm: true });
    const good = await appendNote(h, context, 'kept');
    const failed = h.runTurn(context, async (tools) => {
      await tools.writeFile.run({ path: 'notes.txt', content: 'lost\n' });
      throw new Error('the model gave up');
    });
    await expect(failed).rejects.toThrow('the model gave up');
    expect((await client.snapshots.latest(h.keyOf(context)))?.id).toBe(good.snapshot.id);
    expect(await client.list({ sessionId: 'failing' })).toEqual([]);
    expect((await appendNote(h, context, 'next')).value).toBe('kept');
    await h.close();
  });

  it('refuses to overwrite a head another writer moved behind the guard (compare-and-swap)', async () => {
    const context = { sessionId: 'rogue' };
    const h = harness();
    await appendNote(h, context, 'one');
    const key = h.keyOf(context);
    const turn = h.runTurn(context, async () => {
      // A writer that ignores the guard moves the head in the middle of the turn.
      const rogue = await client.create({ restore: { key } });
      await rogue.close({ snapshot: { key } });
    });
    const error = await turn.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as ConflictError).code).toBe('SNAPSHOT_CONFLICT');
    expect((await client.snapshots.latest(key))?.version).toBe(2);
    // The refused turn's sandbox is released all the same.
    expect(await client.list({ sessionId: 'rogue' })).toEqual([]);
  });
});

describe('scopes', () => {
  it('fails a turn whose scope id is missing before it acquires anything', async () => {
    const h = harness({ scope: IsolationScope.USER });
    const before = (await client.list()).length;
    await expect(h.runTurn({ sessionId: 's' }, async () => 'never')).rejects.toBeInstanceOf(ValidationError);
    expect((await client.list()).length).toBe(before);
  });

  it('shares a USER workspace across sessions and keeps SESSION workspaces apart', async () => {
    const users = harness({ scope: IsolationScope.USER });
    await appendNote(users, { userId: 'ann', sessionId: 'ann-1' }, 'from session 1');
    expect((await appendNote(users, { userId: 'ann', sessionId: 'ann-2' }, 'from session 2')).value).toBe(
      'from session 1',
    );
    expect((await appendNote(users, { userId: 'bob', sessionId: 'ann-1' }, 'bob')).value).toBe('');
    const sessions = harness();
    expect((await appendNote(sessions, { sessionId: 'ann-1' }, 'x')).value).toBe('');
  });
});

describe('guards', () => {
  it('serialises concurrent turns on one key (in process), each seeing the one before', async () => {
    const h = harness();
    const context = { sessionId: 'in-process' };
    let inside = 0;
    let most = 0;
    const turn = (note: string) =>
      h.runTurn(context, async (tools) => {
        most = Math.max(most, ++inside);
        const before = await notesOf(tools);
        await tools.writeFile.run({ path: 'notes.txt', content: `${before}${note}\n` });
        inside--;
        return before;
      });
    const results = await Promise.all([turn('a'), turn('b'), turn('c')]);
    expect(most).toBe(1);
    expect(results.map((r) => r.snapshot.version)).toEqual([1, 2, 3]);
    expect(results.map((r) => r.fencingToken)).toEqual(
      [...results.map((r) => r.fencingToken)].sort((a, b) => a - b),
    );
  });

  it('serialises concurrent turns of two processes on Redis, with growing fencing tokens', async () => {
    // Two harnesses with their own guard and Redis connection stand for two processes.
    const one = harness({ guard: new RedisGuard({ redis: await redis() }) });
    const two = harness({ guard: new RedisGuard({ redis: await redis() }) });
    const context = { sessionId: 'redis-serial' };
    let inside = 0;
    let most = 0;
    const turn = (h: Harness, note: string) =>
      h.runTurn(context, async (tools) => {
        most = Math.max(most, ++inside);
        const before = await notesOf(tools);
        // Long enough for the other turn to be waiting on the lease by now.
        await tools.execute.run({ command: 'sleep 0.5' });
        await tools.writeFile.run({ path: 'notes.txt', content: `${before}${note}\n` });
        inside--;
        return before;
      });
    const [a, b] = await Promise.all([turn(one, 'one'), turn(two, 'two')]);
    expect(most).toBe(1);
    const [earlier, later] = a.fencingToken < b.fencingToken ? [a, b] : [b, a];
    expect(later.fencingToken).toBeGreaterThan(earlier.fencingToken);
    expect(earlier.snapshot.version).toBe(1);
    expect(later.snapshot.version).toBe(2);
    expect(later.restoredFrom).toBe(earlier.snapshot.id);
    expect(later.value).toBe(earlier === a ? 'one' : 'two');
  });

  it('refuses the snapshot of a turn whose lease was lost mid-turn', async () => {
    const connection = await redis();
    // No renewal during the turn: the loss is found by the check made right before the snapshot.
    const guard = new RedisGuard({ redis: connection, ttlMs: 120_000, renewEveryMs: 60_000 });
    const h = harness({ guard });
    const context = { sessionId: 'lease-lost' };
    const good = await appendNote(h, context, 'kept');
    const key = h.keyOf(context);
    const turn = h.runTurn(context, async (tools, _sandbox, info) => {
      await tools.writeFile.run({ path: 'notes.txt', content: 'must not persist\n' });
      // The lease expired and another process took the key with a newer fencing token.
      await connection.set(guard.keysOf(key).lease, `${info.fencingToken + 1}:other`, 'PX', 60_000);
    });
    const error = await turn.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect((await client.snapshots.latest(key))?.id).toBe(good.snapshot.id);
    expect(await client.list({ sessionId: 'lease-lost' })).toEqual([]);
    await connection.del(guard.keysOf(key).lease);
    expect((await appendNote(h, context, 'next')).value).toBe('kept');
  });

  it('aborts the tools of a turn once renewal finds the lease lost', async () => {
    const connection = await redis();
    const guard = new RedisGuard({ redis: connection, ttlMs: 30_000, renewEveryMs: 100 });
    const h = harness({ guard });
    const context = { sessionId: 'lease-aborts' };
    const key = h.keyOf(context);
    const turn = h.runTurn(context, async (tools, _sandbox, info) => {
      await connection.set(guard.keysOf(key).lease, `${info.fencingToken + 1}:other`, 'PX', 60_000);
      // Killed when the renewal notices, long before it would end.
      await tools.execute.run({ command: 'sleep 60' });
    });
    expect(await turn.catch((e: unknown) => e)).toBeInstanceOf(LeaseLostError);
    expect(await client.snapshots.latest(key)).toBeNull();
  });
});
