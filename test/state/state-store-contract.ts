/**
 * What every StateStore must do, run against each implementation (memory-store.test.ts,
 * redis-store.test.ts). Each test gets a fresh, empty store from `makeStore` and hands it to
 * `teardown` afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SandboxRecord, StateStore } from '../../server/src/state/state-store.js';
import { eventually } from '../../support/server-process.js';
import { sandboxRecord } from './record-fixture.js';

const idsOf = (records: SandboxRecord[]): string[] => records.map((r) => r.id).sort();

export function describeStateStoreContract(
  name: string,
  makeStore: () => Promise<StateStore>,
  teardown: (store: StateStore) => Promise<void>,
): void {
  describe(`StateStore contract: ${name}`, () => {
    let store: StateStore;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await teardown(store);
    });

    async function stored(overrides: Partial<SandboxRecord> = {}): Promise<SandboxRecord> {
      const record = sandboxRecord(overrides);
      await store.put(record);
      return record;
    }

    async function pooled(overrides: Partial<SandboxRecord> = {}): Promise<SandboxRecord> {
      const record = await stored({ status: 'warm', ...overrides });
      await store.pushWarm(record.type, record.id);
      return record;
    }

    describe('records', () => {
      it('gives back what was put, field for field', async () => {
        const record = await stored({
          sessionId: 's-1',
          expiresAt: 1_732_199_999_999,
          claimedAt: 1_732_190_001_000,
        });
        expect(await store.get(record.id)).toEqual(record);
        const bare = await stored({
          endpoint: null,
          hostPort: null,
          metadata: {},
          handle: '',
        });
        expect(await store.get(bare.id)).toEqual(bare);
      });

      it('answers null for an unknown id', async () => {
        expect(await store.get('no-such-sandbox')).toBeNull();
      });

      it('hands out copies: changing a result does not change the store', async () => {
        const record = await stored();
        const copy = await store.get(record.id);
        if (!copy) throw new Error('record missing');
        copy.metadata.owner = 'mallory';
        copy.status = 'releasing';
        expect(await store.get(record.id)).toEqual(record);
      });

      it('put replaces a record whole, and its place in the indexes with it', async () => {
        const record = await stored({ status: 'warm', sessionId: null });
        const replaced = { ...record, status: 'claimed' as const, sessionId: 's-2', metadata: { a: 'b' } };
        await store.put(replaced);
        expect(await store.get(record.id)).toEqual(replaced);
        expect(idsOf(await store.list({ status: 'warm' }))).toEqual([]);
        expect(idsOf(await store.list({ status: 'claimed' }))).toEqual([record.id]);
        expect(idsOf(await store.list({ sessionId: 's-2' }))).toEqual([record.id]);
        expect(idsOf(await store.list())).toEqual([record.id]);
      });

      it('update merges a patch, returns the result and moves the record between indexes', async () => {
        const record = await stored({ status: 'creating', sessionId: 's-old' });
        const patch = {
          status: 'claimed' as const,
          sessionId: 's-new',
          tokenNonce: 'bound',
          claimedAt: 1_732_190_005_555,
        };
        const updated = await store.update(record.id, patch);
        expect(updated).toEqual({ ...record, ...patch });
        expect(await store.get(record.id)).toEqual(updated);
        expect(idsOf(await store.list({ status: 'creating' }))).toEqual([]);
        expect(idsOf(await store.list({ sessionId: 's-old' }))).toEqual([]);
        expect(idsOf(await store.list({ status: 'claimed', sessionId: 's-new' }))).toEqual([record.id]);

        const cleared = await store.update(record.id, { sessionId: null, endpoint: null });
        expect(cleared).toEqual({ ...record, ...patch, sessionId: null, endpoint: null });
        expect(idsOf(await store.list({ sessionId: 's-new' }))).toEqual([]);
      });

      it('update of an unknown id answers null and creates nothing', async () => {
        expect(await store.update('no-such-sandbox', { status: 'claimed' })).toBeNull();
        expect(await store.get('no-such-sandbox')).toBeNull();
        expect(await store.list()).toEqual([]);
      });

      it('update keeps the id: a patch cannot move a record', async () => {
        const record = await stored();
        const updated = await store.update(record.id, { id: 'elsewhere', handle: 'h-2' });
        expect(updated).toEqual({ ...record, handle: 'h-2' });
        expect(await store.get('elsewhere')).toBeNull();
      });

      it('delete removes the record from get and from every listing; deleting twice is harmless', async () => {
        const record = await stored({ status: 'claimed', sessionId: 's-1' });
        const other = await stored({ status: 'claimed', sessionId: 's-1' });
        await store.delete(record.id);
        await store.delete(record.id);
        await store.delete('no-such-sandbox');
        expect(await store.get(record.id)).toBeNull();
        expect(idsOf(await store.list())).toEqual([other.id]);
        expect(idsOf(await store.list({ sessionId: 's-1', status: 'claimed', type: 'base' }))).toEqual([
          other.id,
        ]);
      });

      it('list filters by session, type and status, alone or together', async () => {
        const a = await stored({ type: 'base', sessionId: 's-1', status: 'warm' });
        const b = await stored({ type: 'base', sessionId: 's-2', status: 'claimed' });
        const c = await stored({ type: 'browser', sessionId: 's-1', status: 'claimed' });
        const d = await stored({ type: 'browser', sessionId: null, status: 'creating' });
        expect(idsOf(await store.list())).toEqual(idsOf([a, b, c, d]));
        expect(idsOf(await store.list({}))).toEqual(idsOf([a, b, c, d]));
        expect(idsOf(await store.list({ type: 'base' }))).toEqual(idsOf([a, b]));
        expect(idsOf(await store.list({ sessionId: 's-1' }))).toEqual(idsOf([a, c]));
        expect(idsOf(await store.list({ status: 'claimed' }))).toEqual(idsOf([b, c]));
        expect(idsOf(await store.list({ sessionId: 's-1', status: 'claimed' }))).toEqual([c.id]);
        expect(idsOf(await store.list({ type: 'browser', status: 'creating' }))).toEqual([d.id]);
        expect(await store.list({ type: 'base', status: 'creating' })).toEqual([]);
        expect(await store.list({ sessionId: 'nobody' })).toEqual([]);
        const [listed] = await store.list({ sessionId: 's-2' });
        expect(listed).toEqual(b);
      });
    });

    describe('warm pool', () => {
      it('claims the oldest warm sandbox, marks it claimed and counts it out of the pool', async () => {
        const first = await pooled();
        const second = await pooled();
        expect(await store.warmCount('base')).toBe(2);

        const now = 1_732_190_077_001;
        const claimed = await store.claimWarm('base', now);
        expect(claimed).toEqual({ ...first, status: 'claimed', claimedAt: now, lastActiveAt: now });
        expect(await store.get(first.id)).toEqual(claimed);
        expect(idsOf(await store.list({ status: 'claimed' }))).toEqual([first.id]);
        expect(idsOf(await store.list({ status: 'warm' }))).toEqual([second.id]);
        expect(await store.warmCount('base')).toBe(1);

        expect((await store.claimWarm('base', now + 1))?.id).toBe(second.id);
        expect(await store.claimWarm('base', now + 2)).toBeNull();
        expect(await store.warmCount('base')).toBe(0);
      });

      it('keeps one pool per type', async () => {
        const browser = await pooled({ type: 'browser' });
        expect(await store.warmCount('base')).toBe(0);
        expect(await store.claimWarm('base', 1)).toBeNull();
        expect(await store.warmCount('browser')).toBe(1);
        expect((await store.claimWarm('browser', 1))?.id).toBe(browser.id);
      });

      it('pools an id once however often it is pushed', async () => {
        const record = await pooled();
        await store.pushWarm('base', record.id);
        expect(await store.warmCount('base')).toBe(1);
        expect((await store.claimWarm('base', 5))?.id).toBe(record.id);
        expect(await store.claimWarm('base', 6)).toBeNull();
      });

      it('refuses to pool an id whose record is gone, not warm or of another type', async () => {
        const claimed = await stored({ status: 'claimed' });
        const browser = await stored({ status: 'warm', type: 'browser' });
        await store.pushWarm('base', claimed.id);
        await store.pushWarm('base', browser.id);
        await store.pushWarm('base', 'no-such-sandbox');
        expect(await store.warmCount('base')).toBe(0);
        expect(await store.claimWarm('base', 7)).toBeNull();
      });

      it('removeWarm takes an id out of the pool without claiming or deleting it', async () => {
        const dead = await pooled();
        const alive = await pooled();
        await store.removeWarm('base', dead.id);
        await store.removeWarm('base', 'no-such-sandbox');
        expect(await store.warmCount('base')).toBe(1);
        expect((await store.claimWarm('base', 9))?.id).toBe(alive.id);
        expect(await store.claimWarm('base', 10)).toBeNull();
        expect(await store.get(dead.id)).toEqual(dead);
      });

      it('never claims a pooled id whose record is gone or no longer warm', async () => {
        const released = await pooled();
        const deleted = await pooled();
        const good = await pooled();
        await store.update(released.id, { status: 'releasing' });
        await store.delete(deleted.id);
        expect((await store.claimWarm('base', 11))?.id).toBe(good.id);
        expect(await store.claimWarm('base', 12)).toBeNull();
        expect((await store.get(released.id))?.status).toBe('releasing');
      });
    });

    describe('pool targets', () => {
      it('are null until set, then read back per type', async () => {
        expect(await store.getPoolTarget('base')).toBeNull();
        await store.setPoolTarget('base', 3);
        await store.setPoolTarget('browser', 0);
        expect(await store.getPoolTarget('base')).toBe(3);
        expect(await store.getPoolTarget('browser')).toBe(0);
        await store.setPoolTarget('base', 1);
        expect(await store.getPoolTarget('base')).toBe(1);
        expect(await store.getPoolTarget('other')).toBeNull();
      });
    });

    describe('instance slots', () => {
      it('grants at most `max` slots; a holder asking again keeps its slot; release frees one', async () => {
        expect(await store.reserveInstance('a', 2)).toBe(true);
        expect(await store.reserveInstance('b', 2)).toBe(true);
        expect(await store.reserveInstance('c', 2)).toBe(false);
        expect(await store.reserveInstance('a', 2)).toBe(true);
        expect(await store.instanceCount()).toBe(2);
        await store.releaseInstance('a');
        await store.releaseInstance('no-such-sandbox');
        expect(await store.instanceCount()).toBe(1);
        expect(await store.reserveInstance('c', 2)).toBe(true);
        expect(await store.reserveInstance('d', 2)).toBe(false);
        expect(await store.instanceCount()).toBe(2);
      });

      it('max 0 means no limit', async () => {
        for (let i = 0; i < 25; i++) expect(await store.reserveInstance(`s-${i}`, 0)).toBe(true);
        expect(await store.instanceCount()).toBe(25);
      });
    });

    describe('tenant slots', () => {
      const acme = { tenantId: 'acme', maxSandboxes: 2 };

      it('a tenant claims warm sandboxes up to its limit; each is its own in the same step', async () => {
        const [first, second, third] = [await pooled(), await pooled(), await pooled()];
        const claimed = await store.claimWarm('base', 21, acme);
        expect(claimed).toEqual({
          ...first,
          status: 'claimed',
          claimedAt: 21,
          lastActiveAt: 21,
          tenantId: 'acme',
        });
        expect((await store.claimWarm('base', 22, acme))?.id).toBe(second.id);
        // Full: nothing is claimed, and the pool keeps its sandbox for others.
        expect(await store.claimWarm('base', 23, acme)).toBeNull();
        expect(await store.warmCount('base')).toBe(1);
        expect(idsOf(await store.list({ tenantId: 'acme' }))).toEqual([first.id, second.id].sort());
        expect((await store.claimWarm('base', 24, { tenantId: 'other', maxSandboxes: 1 }))?.id).toBe(
          third.id,
        );
      });

      it('assignTenant counts against the same limit; deleting a record frees its slot', async () => {
        const [a, b, c] = [
          await stored({ status: 'creating' }),
          await stored({ status: 'creating' }),
          await stored({ status: 'creating' }),
        ];
        expect(await store.assignTenant(a.id, acme)).toBe(true);
        expect(await store.assignTenant(a.id, acme)).toBe(true);
        expect(await store.assignTenant(b.id, acme)).toBe(true);
        expect(await store.assignTenant(c.id, acme)).toBe(false);
        expect((await store.get(c.id))?.tenantId).toBeNull();
        expect((await store.get(a.id))?.tenantId).toBe('acme');
        expect(await store.assignTenant('no-such-sandbox', acme)).toBe(false);

        await store.delete(a.id);
        expect(await store.assignTenant(c.id, acme)).toBe(true);
        expect(idsOf(await store.list({ tenantId: 'acme' }))).toEqual([b.id, c.id].sort());
        expect(await store.list({ tenantId: 'acme', status: 'warm' })).toEqual([]);
      });

      it('maxSandboxes 0 means no limit', async () => {
        for (let i = 0; i < 5; i++) {
          const record = await stored({ status: 'creating' });
          expect(await store.assignTenant(record.id, { tenantId: 'acme', maxSandboxes: 0 })).toBe(true);
        }
      });

      it('concurrent claims and creates of one tenant never pass its limit', async () => {
        for (let i = 0; i < 6; i++) await pooled();
        const creating = await Promise.all(Array.from({ length: 6 }, () => stored({ status: 'creating' })));
        const outcomes = await Promise.all([
          ...Array.from({ length: 6 }, (_, i) => store.claimWarm('base', 30 + i, acme)),
          ...creating.map((record) => store.assignTenant(record.id, acme)),
        ]);
        const taken = outcomes.filter((outcome) => outcome !== null && outcome !== false);
        expect(taken).toHaveLength(2);
        expect(await store.list({ tenantId: 'acme' })).toHaveLength(2);
      });
    });

    describe('rate windows', () => {
      it('allows `limit` events per window, says when it closes, and starts over after', async () => {
        const windowMs = 400;
        const counts = [];
        for (let i = 0; i < 4; i++) counts.push(await store.countInWindow('acquires:acme', 3, windowMs));
        expect(counts.map((c) => c.allowed)).toEqual([true, true, true, false]);
        for (const { resetInMs } of counts) {
          expect(resetInMs).toBeGreaterThan(0);
          expect(resetInMs).toBeLessThanOrEqual(windowMs);
        }
        // Windows are per name.
        expect((await store.countInWindow('acquires:other', 3, windowMs)).allowed).toBe(true);
        // Refused until the window closes; the first event of the next one is allowed again...
        await eventually('the next window', async () =>
          (await store.countInWindow('acquires:acme', 3, windowMs)).allowed ? true : undefined,
        );
        // ...and counted in it.
        expect((await store.countInWindow('acquires:acme', 1, windowMs)).allowed).toBe(false);
      });
    });

    describe('host ports', () => {
      const range = { start: 41_000, end: 41_002 };

      it('hands out each port of the range once, then null', async () => {
        const ports = [
          await store.allocatePort(range, 'a'),
          await store.allocatePort(range, 'b'),
          await store.allocatePort(range, 'c'),
        ];
        expect([...ports].sort()).toEqual([41_000, 41_001, 41_002]);
        expect(await store.allocatePort(range, 'd')).toBeNull();
      });

      it('frees a port only for its owner, and hands a freed port out again', async () => {
        const a = await store.allocatePort(range, 'a');
        await store.allocatePort(range, 'b');
        await store.allocatePort(range, 'c');
        if (a === null) throw new Error('no port for a');
        await store.releasePort(a, 'b');
        expect(await store.allocatePort(range, 'd')).toBeNull();
        await store.releasePort(a, 'a');
        expect(await store.allocatePort(range, 'd')).toBe(a);
        expect(await store.allocatePort(range, 'e')).toBeNull();
      });

      it('does not hand a just-freed port straight back while others are free', async () => {
        const first = await store.allocatePort(range, 'a');
        if (first === null) throw new Error('no port for a');
        await store.releasePort(first, 'a');
        const next = await store.allocatePort(range, 'b');
        expect(next).not.toBeNull();
        expect(next).not.toBe(first);
      });

      it('finds the few free ports of a nearly full range wherever they lie', async () => {
        const wide = { start: 42_000, end: 42_599 };
        for (let i = 0; i < 600; i++) expect(await store.allocatePort(wide, `o-${i}`)).not.toBeNull();
        expect(await store.allocatePort(wide, 'late')).toBeNull();
        const freed = [42_000, 42_257, 42_599];
        for (const port of freed) await store.releasePort(port, `o-${port - wide.start}`);
        const again = [
          await store.allocatePort(wide, 'x'),
          await store.allocatePort(wide, 'y'),
          await store.allocatePort(wide, 'z'),
        ];
        expect([...again].sort()).toEqual(freed);
        expect(await store.allocatePort(wide, 'late')).toBeNull();
      });

      it("records the port in its owner's record in the same step, when the owner is a record", async () => {
        const record = await stored({ status: 'creating', hostPort: null });
        const port = await store.allocatePort(range, record.id);
        expect(port).not.toBeNull();
        expect(await store.get(record.id)).toEqual({ ...record, hostPort: port });
        expect(await store.allocatePort(range, 'no-such-record')).not.toBeNull();
        expect(await store.get('no-such-record')).toBeNull();
      });

      it('serves a one-port range', async () => {
        const one = { start: 41_010, end: 41_010 };
        expect(await store.allocatePort(one, 'a')).toBe(41_010);
        expect(await store.allocatePort(one, 'b')).toBeNull();
        await store.releasePort(41_010, 'a');
        expect(await store.allocatePort(one, 'b')).toBe(41_010);
      });
    });

    describe('touch', () => {
      it('refreshes lastActiveAt and nothing else; an unknown id stays unknown', async () => {
        const record = await stored({ status: 'claimed' });
        await store.touch(record.id, 1_732_190_099_999);
        expect(await store.get(record.id)).toEqual({ ...record, lastActiveAt: 1_732_190_099_999 });
        await store.touch('no-such-sandbox', 5);
        expect(await store.get('no-such-sandbox')).toBeNull();
        expect(idsOf(await store.list())).toEqual([record.id]);
      });
    });

    describe('leases', () => {
      it('are held by one holder at a time, renewed by it, released only by it', async () => {
        expect(await store.acquireLease('leader', 'worker-a', 30_000)).toBe(true);
        expect(await store.acquireLease('leader', 'worker-a', 30_000)).toBe(true);
        expect(await store.acquireLease('leader', 'worker-b', 30_000)).toBe(false);
        expect(await store.acquireLease('reaper', 'worker-b', 30_000)).toBe(true);

        await store.releaseLease('leader', 'worker-b');
        expect(await store.acquireLease('leader', 'worker-b', 30_000)).toBe(false);
        await store.releaseLease('leader', 'worker-a');
        expect(await store.acquireLease('leader', 'worker-b', 30_000)).toBe(true);
        expect(await store.acquireLease('leader', 'worker-a', 30_000)).toBe(false);
      });

      it('pass to another holder once they expire unrenewed', async () => {
        expect(await store.acquireLease('leader', 'worker-a', 400)).toBe(true);
        expect(await store.acquireLease('leader', 'worker-b', 400)).toBe(false);
        const deadline = Date.now() + 10_000;
        let taken = false;
        while (!taken && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          taken = await store.acquireLease('leader', 'worker-b', 30_000);
        }
        expect(taken).toBe(true);
        expect(await store.acquireLease('leader', 'worker-a', 30_000)).toBe(false);
      });
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
