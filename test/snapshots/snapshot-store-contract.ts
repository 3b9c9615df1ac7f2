/**
 * What every snapshot backend must do, run against each (local-store, s3-store, redis-store
 * .test.ts) through `createSnapshotStore` with that backend's config. Each test gets a fresh, empty
 * store plus a raw view of its blobs, to check what is (and is not) left in the backend.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../server/src/config/schema.js';
import type { BlobStore } from '../../server/src/snapshots/blob-store.js';
import {
  type SnapshotRecord,
  type SnapshotStore,
  tenantKey,
} from '../../server/src/snapshots/snapshot-store.js';
import { barrier, digestOf, failingAfter, MiB, meetingAfterFirstChunk, randomish } from './payload.js';

export interface OpenedBackend {
  store: SnapshotStore;
  /** The same blobs, seen without the catalog. */
  blobs: BlobStore;
  /** Partial uploads left anywhere in the backend (temp files, staging keys...); [] when clean. */
  leftovers(): Promise<string[]>;
  close(): Promise<void>;
}

/** Opens a fresh, empty store; `settings` override the backend's config (e.g. SNAPSHOT_KEEP_VERSIONS). */
export type OpenBackend = (settings?: Partial<ConfigInput>) => Promise<OpenedBackend>;

const BIG = 100 * MiB;

export function blobNameOf(record: SnapshotRecord): string {
  return `blobs/${record.id}.tar.gz`;
}

export async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected a rejection, got a success');
  return 'code' in err ? String(err.code) : `uncoded: ${err.message}`;
}

export function describeSnapshotStoreContract(name: string, openBackend: OpenBackend): void {
  describe(`snapshot store contract: ${name}`, () => {
    let backend: OpenedBackend;
    let store: SnapshotStore;

    beforeEach(async () => {
      backend = await openBackend({ SNAPSHOT_KEEP_VERSIONS: 3 });
      store = backend.store;
    });

    afterEach(async () => {
      await backend.close();
    });

    const small = (sizeBytes = 2 * MiB) => randomish(sizeBytes);

    function saveKeyed(
      key: string,
      expectedHead?: string | null,
      sizeBytes?: number,
    ): Promise<SnapshotRecord> {
      return store.save({
        key,
        expectedHead,
        stream: small(sizeBytes).chunks(),
        sandboxId: 'sbx-1',
        type: 'base',
      });
    }

    it('round-trips 100 MiB streamed in and out, with matching size and sha256', async () => {
      const payload = randomish(BIG);
      const expected = await payload.digest();
      const record = await store.save({
        key: null,
        stream: payload.chunks(),
        sandboxId: 'sbx-big',
        type: 'base',
      });
      expect(record).toMatchObject({
        key: null,
        version: null,
        sandboxId: 'sbx-big',
        type: 'base',
        sizeBytes: BIG,
        sha256: expected.sha256,
        backend: store.backend,
      });
      expect(await store.get(record.id)).toEqual(record);
      const opened = await store.open(record.id);
      expect(opened.record).toEqual(record);
      expect(await digestOf(opened.stream)).toEqual(expected);
    });

    it('numbers a key’s versions, moves its head, and keeps only the newest SNAPSHOT_KEEP_VERSIONS', async () => {
      const saved: SnapshotRecord[] = [];
      for (let i = 0; i < 5; i++) saved.push(await saveKeyed('session-a'));
      expect(saved.map((r) => r.version)).toEqual([1, 2, 3, 4, 5]);
      expect(await store.latest('session-a')).toEqual(saved[4]);

      const kept = await store.list({ key: 'session-a' });
      expect(kept.map((r) => r.version)).toEqual([5, 4, 3]);
      for (const collected of saved.slice(0, 2)) {
        expect(await codeOf(store.get(collected.id))).toBe('SNAPSHOT_NOT_FOUND');
        expect(await backend.blobs.exists(blobNameOf(collected))).toBe(false);
      }
      for (const record of kept) expect(await backend.blobs.exists(blobNameOf(record))).toBe(true);
      expect((await backend.blobs.list('blobs')).sort()).toEqual(kept.map(blobNameOf).sort());
    });

    it('lists by key, newest first, and everything newest first without one', async () => {
      const a1 = await saveKeyed('key-a');
      const b1 = await saveKeyed('key-b');
      const a2 = await saveKeyed('key-a');
      const loose = await store.save({ stream: small().chunks(), sandboxId: 'sbx-2', type: 'browser' });

      expect((await store.list({ key: 'key-a' })).map((r) => r.id)).toEqual([a2.id, a1.id]);
      expect((await store.list({ key: 'key-b' })).map((r) => r.id)).toEqual([b1.id]);
      expect(await store.list({ key: 'key-none' })).toEqual([]);
      const all = await store.list();
      expect(all.map((r) => r.id).sort()).toEqual([a1.id, b1.id, a2.id, loose.id].sort());
      const times = all.map((r) => r.createdAt);
      expect(times).toEqual([...times].sort().reverse());
      expect(await store.latest('key-none')).toBeNull();
      expect(loose).toMatchObject({ key: null, version: null, type: 'browser' });
    });

    it('lets exactly one of two saves from the same head win; the loser gets SNAPSHOT_CONFLICT and leaves no blob', async () => {
      const base = await saveKeyed('contended');
      const meet = barrier(2);
      const attempt = () =>
        store.save({
          key: 'contended',
          expectedHead: base.id,
          stream: meetingAfterFirstChunk(small(), meet),
          sandboxId: 'sbx-race',
          type: 'base',
        });
      const results = await Promise.allSettled([attempt(), attempt()]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<SnapshotRecord>).value;
      const failure = (lost[0] as PromiseRejectedResult).reason;
      expect(failure).toMatchObject({
        code: 'SNAPSHOT_CONFLICT',
        details: { key: 'contended', head: winner.id },
      });

      expect(winner.version).toBe(2);
      expect(await store.latest('contended')).toEqual(winner);
      expect((await store.list({ key: 'contended' })).map((r) => r.id)).toEqual([winner.id, base.id]);
      expect((await backend.blobs.list('blobs')).sort()).toEqual(
        [blobNameOf(base), blobNameOf(winner)].sort(),
      );
    });

    it('refuses a save whose expected head is stale, or null for a key that has one', async () => {
      const first = await saveKeyed('cas');
      const second = await saveKeyed('cas', first.id);
      expect(await codeOf(saveKeyed('cas', first.id))).toBe('SNAPSHOT_CONFLICT');
      expect(await codeOf(saveKeyed('cas', null))).toBe('SNAPSHOT_CONFLICT');
      expect(await codeOf(saveKeyed('cas', '../../not-an-id'))).toBe('SNAPSHOT_CONFLICT');
      expect(await store.latest('cas')).toEqual(second);
      expect(await saveKeyed('fresh', null)).toMatchObject({ key: 'fresh', version: 1 });
      expect((await backend.blobs.list('blobs')).length).toBe(3);
    });

    it('a source failing halfway leaves the previous head in place and intact, and no partial blob', async () => {
      const good = await saveKeyed('fragile', undefined, 3 * MiB);
      const goodDigest = await digestOf((await store.open(good.id)).stream);

      const doomed = randomish(24 * MiB);
      const failing = store.save({
        key: 'fragile',
        stream: failingAfter(doomed, 12 * MiB),
        sandboxId: 'sbx-3',
        type: 'base',
      });
      expect(await codeOf(failing)).toBe('SNAPSHOT_FAILED');

      expect(await store.latest('fragile')).toEqual(good);
      expect(await store.list({ key: 'fragile' })).toEqual([good]);
      expect(await digestOf((await store.open(good.id)).stream)).toEqual(goodDigest);
      expect(goodDigest).toEqual({ sizeBytes: good.sizeBytes, sha256: good.sha256 });
      expect(await backend.blobs.list('blobs')).toEqual([blobNameOf(good)]);
      expect(await backend.leftovers()).toEqual([]);
    });

    it('open() fails at the end of a corrupted blob with RESTORE_FAILED', async () => {
      const record = await saveKeyed('corruptible', undefined, 3 * MiB);
      const bytes: Buffer[] = [];
      const raw = await backend.blobs.get(blobNameOf(record));
      if (raw === null) throw new Error('the blob should exist');
      for await (const chunk of raw) bytes.push(chunk);
      const tampered = Buffer.concat(bytes);
      const middle = tampered.length >> 1;
      tampered.writeUInt8(tampered.readUInt8(middle) ^ 0xff, middle);
      await backend.blobs.put(blobNameOf(record), [tampered]);

      const opened = await store.open(record.id);
      const failure = await digestOf(opened.stream).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toMatchObject({
        code: 'RESTORE_FAILED',
        details: { id: record.id, expectedSha256: record.sha256, actualSizeBytes: record.sizeBytes },
      });
    });

    it('deleting the head moves it to the previous version, then clears it', async () => {
      const v1 = await saveKeyed('deletable');
      const v2 = await saveKeyed('deletable');
      expect(await store.delete(v2.id)).toEqual(v2);
      expect(await store.latest('deletable')).toEqual(v1);
      expect(await backend.blobs.exists(blobNameOf(v2))).toBe(false);
      // The head moved back, so a save expecting the deleted head loses.
      expect(await codeOf(saveKeyed('deletable', v2.id))).toBe('SNAPSHOT_CONFLICT');

      await store.delete(v1.id);
      expect(await store.latest('deletable')).toBeNull();
      expect(await store.list({ key: 'deletable' })).toEqual([]);
      expect(await saveKeyed('deletable', null)).toMatchObject({ version: 1 });
    });

    it('deleting an older version leaves the head alone', async () => {
      const v1 = await saveKeyed('history');
      const v2 = await saveKeyed('history');
      await store.delete(v1.id);
      expect(await store.latest('history')).toEqual(v2);
      expect(await store.list({ key: 'history' })).toEqual([v2]);
    });

    it('answers SNAPSHOT_NOT_FOUND for unknown and malformed ids', async () => {
      for (const id of ['00000000-0000-4000-8000-000000000000', '../../etc/passwd', '']) {
        expect(await codeOf(store.get(id))).toBe('SNAPSHOT_NOT_FOUND');
        expect(await codeOf(store.open(id))).toBe('SNAPSHOT_NOT_FOUND');
        expect(await codeOf(store.delete(id))).toBe('SNAPSHOT_NOT_FOUND');
      }
    });

    it('drops a snapshot whose bytes vanished when it is opened, moving the head back', async () => {
      const v1 = await saveKeyed('vanishing');
      const v2 = await saveKeyed('vanishing');
      await backend.blobs.delete(blobNameOf(v2));
      expect(await codeOf(store.open(v2.id))).toBe('SNAPSHOT_NOT_FOUND');
      expect(await codeOf(store.get(v2.id))).toBe('SNAPSHOT_NOT_FOUND');
      expect(await store.latest('vanishing')).toEqual(v1);
    });

    it("keeps a tenant's records with their owner, and its keys only in its namespace", async () => {
      const save = (key: string, tenantId: string | null) =>
        store.save({ key, stream: small(1024).chunks(), sandboxId: 'sbx-1', type: 'base', tenantId });
      const theirs = await save(tenantKey('acme', 'k'), 'acme');
      const admins = await save('k', null);
      expect(theirs).toMatchObject({ key: 'acme k', version: 1, tenantId: 'acme' });
      expect(admins).toMatchObject({ key: 'k', version: 1, tenantId: null });
      expect(await store.get(theirs.id)).toEqual(theirs);
      expect((await store.latest('acme k'))?.id).toBe(theirs.id);
      expect((await store.latest('k'))?.id).toBe(admins.id);
      // A tenant's key outside its namespace, or another tenant's, is refused.
      expect(await codeOf(save('k', 'acme'))).toBe('VALIDATION_ERROR');
      expect(await codeOf(save(tenantKey('other', 'k'), 'acme'))).toBe('VALIDATION_ERROR');
      expect((await store.list()).map((r) => r.id).sort()).toEqual([theirs.id, admins.id].sort());
    });

    it('refuses an invalid key with VALIDATION_ERROR before storing anything', async () => {
      expect(await codeOf(saveKeyed('has space'))).toBe('VALIDATION_ERROR');
      expect(await codeOf(saveKeyed('x'.repeat(257)))).toBe('VALIDATION_ERROR');
      expect(await backend.blobs.list('blobs')).toEqual([]);
    });
  });
}
