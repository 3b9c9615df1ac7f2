/**
 * What the snapshot API must do whatever FILE_SYSTEM is, run by local.test.ts and s3.test.ts
 * against the real server CLI and real Docker sandboxes: a 100 MiB workspace round trip, keyed
 * versions by compare-and-swap, retention, restores that fail loudly (and leak nothing) or start
 * empty only when asked, snapshot-then-release, and the list/get/delete routes. Each test uses keys
 * of its own, so none depends on another.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../../server/src/snapshots/blob-store.js';
import type { SnapshotRecord } from '../../server/src/snapshots/snapshot-store.js';
import { eventually, type ServerProcess } from '../../support/server-process.js';
import { blobNameOf } from '../snapshots/snapshot-store-contract.js';
import type { SandboxBackend } from '../support/backends.js';
import {
  acquire,
  claimedIds,
  type ErrorAnswer,
  expectMadeWorkspace,
  fingerprint,
  MiB,
  makeWorkspace,
  sh,
  snapshot,
  straySandboxes,
} from './workspace.js';

export interface SnapshotApiBackend {
  server: ServerProcess;
  /** Where the server's sandboxes run. */
  compute: SandboxBackend;
  /** The snapshot records' `backend`. */
  kind: 'local' | 'oss';
  /** The backend's blobs as the server stores them, seen without its catalog. */
  blobs: BlobStore;
  /** The server's SNAPSHOT_KEEP_VERSIONS. */
  keepVersions: number;
}

const BIG_MIB = 100;
/** The round trip moves 100 MiB six times over (made, packed, stored, restored twice, hashed): minutes on a busy 2-core machine. */
const BIG_TIMEOUT_MS = 600_000;

export function describeSnapshotApi(name: string, backendOf: () => SnapshotApiBackend): void {
  describe(`snapshot API: ${name}`, () => {
    const keyFor = (what: string) => `${what}/${randomUUID()}`;
    const path = (key: string) => encodeURIComponent(key);

    async function release(server: ServerProcess, sandboxId: string): Promise<void> {
      expect((await server.call('DELETE', `/v1/sandboxes/${sandboxId}`)).status).toBe(204);
    }

    async function noStraySandboxes(server: ServerProcess, compute: SandboxBackend): Promise<void> {
      await eventually('every container or pod of the deployment owned by a live sandbox', async () =>
        (await straySandboxes(server, compute)).length === 0 ? true : undefined,
      );
    }

    it(
      'round-trips a 100 MiB workspace: every byte, modes, symlinks, empty and nested directories',
      async () => {
        const { server, blobs, kind } = backendOf();
        const key = keyFor('round-trip');
        const source = await acquire(server);
        await makeWorkspace(server, source, BIG_MIB);
        expect(await sh(server, source, 'stat -c %s big.bin')).toBe(`${BIG_MIB * MiB}\n`);
        const before = await fingerprint(server, source);
        expectMadeWorkspace(before);

        const taken = await snapshot(server, source, { key });
        expect(taken).toMatchObject({ key, version: 1, sandboxId: source, type: 'base', backend: kind });
        // Random bytes do not compress: the archive holds at least every byte of the data.
        expect(taken.sizeBytes).toBeGreaterThan(BIG_MIB * MiB);
        expect(await blobs.exists(blobNameOf(taken))).toBe(true);
        await release(server, source);
        expect((await server.call('GET', `/v1/sandboxes/${source}`)).status).toBe(404);

        const byId = await acquire(server, { restore: { snapshotId: taken.id } });
        expect(await fingerprint(server, byId)).toEqual(before);
        const byKey = await acquire(server, { restore: { key } });
        expect(await fingerprint(server, byKey)).toEqual(before);
        await release(server, byId);
        await release(server, byKey);
      },
      BIG_TIMEOUT_MS,
    );

    it("moves a key's head only by compare-and-swap: of two writers from one head, one gets 409", async () => {
      const { server } = backendOf();
      const key = keyFor('cas');
      const sandbox = await acquire(server);
      await sh(server, sandbox, 'head -c 2M /dev/urandom > state.bin');
      const first = await snapshot(server, sandbox, { key, expectedHead: null });
      expect(first.version).toBe(1);

      // null: the key must have no snapshot yet, and now it has one.
      const late = await server.call<ErrorAnswer>('POST', `/v1/sandboxes/${sandbox}/snapshots`, {
        key,
        expectedHead: null,
      });
      expect({ status: late.status, error: late.body.error }).toEqual({
        status: 409,
        error: {
          code: 'SNAPSHOT_CONFLICT',
          message: expect.any(String),
          details: { key, expectedHead: null, head: first.id },
        },
      });

      // Two writers that both read `first` as the head, at once: exactly one moves it.
      await sh(server, sandbox, 'echo two > state.txt');
      const [a, b] = await Promise.all(
        [0, 1].map(() =>
          server.call<SnapshotRecord & ErrorAnswer>('POST', `/v1/sandboxes/${sandbox}/snapshots`, {
            key,
            expectedHead: first.id,
          }),
        ),
      );
      const outcomes = [a, b].map((r) => r?.status).sort();
      expect(outcomes).toEqual([201, 409]);
      const winner = [a, b].find((r) => r?.status === 201)?.body;
      const loser = [a, b].find((r) => r?.status === 409)?.body;
      expect(winner?.version).toBe(2);
      expect(loser?.error).toMatchObject({
        code: 'SNAPSHOT_CONFLICT',
        details: { key, expectedHead: first.id, head: winner?.id },
      });

      // The loser changed nothing: the key's line is the winner over `first`.
      const listed = await server.call<{ snapshots: SnapshotRecord[] }>(
        'GET',
        `/v1/snapshots?key=${path(key)}`,
      );
      expect(listed.body.snapshots.map((s) => s.id)).toEqual([winner?.id, first.id]);

      // Omitted expectedHead: compare-and-swap against the head read when the snapshot starts.
      expect((await snapshot(server, sandbox, { key })).version).toBe(3);
      await release(server, sandbox);
    });

    it('keeps the last SNAPSHOT_KEEP_VERSIONS versions of a key and collects the older ones', async () => {
      const { server, blobs, keepVersions } = backendOf();
      const key = keyFor('retention');
      const sandbox = await acquire(server);
      const saved: SnapshotRecord[] = [];
      for (let version = 1; version <= keepVersions + 2; version++) {
        await sh(server, sandbox, `echo ${version} > version.txt`);
        saved.push(await snapshot(server, sandbox, { key }));
      }
      expect(saved.map((s) => s.version)).toEqual(Array.from(saved, (_, index) => index + 1));

      const kept = saved.slice(-keepVersions).reverse();
      const listed = await server.call<{ snapshots: SnapshotRecord[] }>(
        'GET',
        `/v1/snapshots?key=${path(key)}`,
      );
      expect(listed.body.snapshots).toEqual(kept);
      for (const gone of saved.slice(0, -keepVersions)) {
        const answer = await server.call<ErrorAnswer>('GET', `/v1/snapshots/${gone.id}`);
        expect({ status: answer.status, code: answer.body.error?.code }).toEqual({
          status: 404,
          code: 'SNAPSHOT_NOT_FOUND',
        });
        expect(await blobs.exists(blobNameOf(gone))).toBe(false);
      }
      for (const snap of kept) expect(await blobs.exists(blobNameOf(snap))).toBe(true);

      const restored = await acquire(server, { restore: { key } });
      expect(await sh(server, restored, 'cat version.txt')).toBe(`${keepVersions + 2}\n`);
      await release(server, sandbox);
      await release(server, restored);
    });

    it('refuses a restore of an unknown snapshot or key with 404 SNAPSHOT_NOT_FOUND, costing no sandbox', async () => {
      const { server, compute } = backendOf();
      const claimed = await claimedIds(server);
      const key = keyFor('never-saved');
      for (const restore of [{ key }, { key, allowEmpty: false }, { snapshotId: randomUUID() }]) {
        const answer = await server.call<ErrorAnswer>('POST', '/v1/sandboxes', { restore });
        expect({ restore, status: answer.status, code: answer.body.error?.code }).toEqual({
          restore,
          status: 404,
          code: 'SNAPSHOT_NOT_FOUND',
        });
      }
      for (const restore of [{ snapshotId: 'not-a-uuid' }, { key: 'has a space' }, { key, extra: 1 }]) {
        const answer = await server.call<ErrorAnswer>('POST', '/v1/sandboxes', { restore });
        expect({ restore, status: answer.status, code: answer.body.error?.code }).toEqual({
          restore,
          status: 400,
          code: 'VALIDATION_ERROR',
        });
      }
      expect(await claimedIds(server)).toEqual(claimed);
      await noStraySandboxes(server, compute);
    });

    it('starts empty for a key without a snapshot only when allowEmpty is set', async () => {
      const { server } = backendOf();
      const key = keyFor('allow-empty');
      const empty = await acquire(server, { restore: { key, allowEmpty: true } });
      expect(await sh(server, empty, 'find . -mindepth 1 | wc -l')).toBe('0\n');

      await sh(server, empty, 'echo hello > greeting.txt');
      await snapshot(server, empty, { key });
      // Once the key has a snapshot, allowEmpty restores it like any restore.
      const restored = await acquire(server, { restore: { key, allowEmpty: true } });
      expect(await sh(server, restored, 'cat greeting.txt')).toBe('hello\n');
      await release(server, empty);
      await release(server, restored);
    });

    it('fails an acquire whose snapshot bytes do not match their sha256 with 502 RESTORE_FAILED, destroying that sandbox', async () => {
      const { server, blobs, compute } = backendOf();
      const sandbox = await acquire(server);
      await sh(server, sandbox, 'echo other > other.txt');
      const other = await snapshot(server, sandbox, { key: keyFor('other') });
      await sh(server, sandbox, 'head -c 3M /dev/urandom > data.bin');
      const victim = await snapshot(server, sandbox, { key: keyFor('victim') });
      await release(server, sandbox);
      // Behind the server's back, the victim's bytes become another snapshot's: a valid archive,
      // so only the sha256 check, at the end of the stream, can tell.
      const otherBytes = await blobs.get(blobNameOf(other));
      if (otherBytes === null) throw new Error('the other snapshot has no bytes');
      await blobs.put(blobNameOf(victim), otherBytes);

      const claimed = await claimedIds(server);
      const answer = await server.call<ErrorAnswer>('POST', '/v1/sandboxes', {
        restore: { snapshotId: victim.id },
      });
      expect({ status: answer.status, code: answer.body.error?.code }).toEqual({
        status: 502,
        code: 'RESTORE_FAILED',
      });
      expect(answer.body.error.details).toMatchObject({ id: victim.id, expectedSha256: victim.sha256 });
      // The sandbox acquired for it is gone, with its container.
      expect(await claimedIds(server)).toEqual(claimed);
      await noStraySandboxes(server, compute);
    });

    it('snapshots, then releases, on DELETE ?snapshot=true; a snapshot that fails keeps the sandbox', async () => {
      const { server } = backendOf();
      const key = keyFor('release');
      const sandbox = await acquire(server);
      await sh(server, sandbox, 'echo kept > work.txt');
      const first = await snapshot(server, sandbox, { key });
      await sh(server, sandbox, 'echo more >> work.txt');

      // An empty expectedHead says the key has no snapshot yet: wrong, so nothing is released.
      const refused = await server.call<ErrorAnswer>(
        'DELETE',
        `/v1/sandboxes/${sandbox}?snapshot=true&key=${path(key)}&expectedHead=`,
      );
      expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
        status: 409,
        code: 'SNAPSHOT_CONFLICT',
      });
      expect(await sh(server, sandbox, 'cat work.txt')).toBe('kept\nmore\n');

      const bad = await server.call<ErrorAnswer>('DELETE', `/v1/sandboxes/${sandbox}?key=${path(key)}`);
      expect({ status: bad.status, code: bad.body.error?.code }).toEqual({
        status: 400,
        code: 'VALIDATION_ERROR',
      });

      const released = await server.call<SnapshotRecord>(
        'DELETE',
        `/v1/sandboxes/${sandbox}?snapshot=true&key=${path(key)}&expectedHead=${first.id}`,
      );
      expect(released.status).toBe(200);
      expect(released.body).toMatchObject({ key, version: 2, sandboxId: sandbox });
      expect((await server.call('GET', `/v1/sandboxes/${sandbox}`)).status).toBe(404);

      const restored = await acquire(server, { restore: { key } });
      expect(await sh(server, restored, 'cat work.txt')).toBe('kept\nmore\n');
      // A one-off snapshot on release: no key.
      const oneOff = await server.call<SnapshotRecord>('DELETE', `/v1/sandboxes/${restored}?snapshot=true`);
      expect(oneOff.status).toBe(200);
      expect(oneOff.body).toMatchObject({ key: null, version: null, sandboxId: restored });
    });

    it("lists, gets and deletes snapshots; deleting a key's head moves the head back", async () => {
      const { server, blobs } = backendOf();
      const key = keyFor('catalog');
      const sandbox = await acquire(server);
      const oneOff = await snapshot(server, sandbox);
      expect(oneOff).toMatchObject({ key: null, version: null });
      await sh(server, sandbox, 'echo 1 > n.txt');
      const v1 = await snapshot(server, sandbox, { key });
      await sh(server, sandbox, 'echo 2 > n.txt');
      const v2 = await snapshot(server, sandbox, { key });

      const all = await server.call<{ snapshots: SnapshotRecord[] }>('GET', '/v1/snapshots');
      expect(all.body.snapshots.map((s) => s.id)).toEqual(expect.arrayContaining([oneOff.id, v1.id, v2.id]));
      expect((await server.call('GET', `/v1/snapshots/${v1.id}`)).body).toEqual(v1);

      expect((await server.call('DELETE', `/v1/snapshots/${v2.id}`)).status).toBe(204);
      expect(await blobs.exists(blobNameOf(v2))).toBe(false);
      const line = await server.call<{ snapshots: SnapshotRecord[] }>(
        'GET',
        `/v1/snapshots?key=${path(key)}`,
      );
      expect(line.body.snapshots).toEqual([v1]);
      const restored = await acquire(server, { restore: { key } });
      expect(await sh(server, restored, 'cat n.txt')).toBe('1\n');

      for (const id of [v2.id, 'not-a-uuid']) {
        for (const method of ['GET', 'DELETE']) {
          const answer = await server.call<ErrorAnswer>(method, `/v1/snapshots/${id}`);
          expect({ method, status: answer.status, code: answer.body.error?.code }).toEqual({
            method,
            status: 404,
            code: 'SNAPSHOT_NOT_FOUND',
          });
        }
      }
      const badKey = await server.call<ErrorAnswer>('GET', `/v1/snapshots?key=${path('a key')}`);
      expect(badKey.status).toBe(400);
      const noKey = await server.call<ErrorAnswer>('POST', `/v1/sandboxes/${sandbox}/snapshots`, {
        expectedHead: v1.id,
      });
      expect({ status: noKey.status, code: noKey.body.error?.code }).toEqual({
        status: 400,
        code: 'VALIDATION_ERROR',
      });
      const noSandbox = await server.call<ErrorAnswer>(
        'POST',
        '/v1/sandboxes/0000000000000000/snapshots',
        {},
      );
      expect({ status: noSandbox.status, code: noSandbox.body.error?.code }).toEqual({
        status: 404,
        code: 'SANDBOX_NOT_FOUND',
      });
      await release(server, sandbox);
      await release(server, restored);
    });

    it('counts snapshots and restores, with their bytes and durations, in /metrics', async () => {
      const { server } = backendOf();
      const key = keyFor('metrics');
      const sandbox = await acquire(server);
      await sh(server, sandbox, 'head -c 1M /dev/urandom > m.bin');
      const taken = await snapshot(server, sandbox, { key });
      const restored = await acquire(server, { restore: { key } });
      await server.call('POST', '/v1/sandboxes', { restore: { key: keyFor('metrics-none') } });

      const text = await (await server.fetch('/metrics')).text();
      const value = (series: string): number => {
        const match = text.match(new RegExp(`^runtime_sandbox_${series} (\\S+)$`, 'm'));
        return match?.[1] === undefined ? Number.NaN : Number(match[1]);
      };
      expect(value('snapshot_operations_total{operation="snapshot",outcome="ok"}')).toBeGreaterThanOrEqual(1);
      expect(value('snapshot_operations_total{operation="restore",outcome="ok"}')).toBeGreaterThanOrEqual(1);
      expect(
        value('snapshot_operations_total{operation="restore",outcome="SNAPSHOT_NOT_FOUND"}'),
      ).toBeGreaterThanOrEqual(1);
      expect(value('snapshot_bytes_total{operation="snapshot"}')).toBeGreaterThanOrEqual(taken.sizeBytes);
      expect(value('snapshot_bytes_total{operation="restore"}')).toBeGreaterThanOrEqual(taken.sizeBytes);
      expect(
        value('snapshot_duration_seconds_count{operation="snapshot",outcome="ok"}'),
      ).toBeGreaterThanOrEqual(1);
      await release(server, sandbox);
      await release(server, restored);
    });
  });
}
