/** Acquire, list, inspect, keep alive and release sandboxes. */
import type { SandboxInfo } from '@runtime-sandbox/contract';
import type { SandboxRecord } from '../../state/state-store.js';
import type { ApiDeps } from '../context.js';
import type { Handlers } from './types.js';

/** What callers see of a record: ISO times, and never the token, handle or host details. */
export function toSandboxInfo(record: SandboxRecord): SandboxInfo {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: record.id,
    type: record.type,
    status: record.status,
    sessionId: record.sessionId,
    metadata: record.metadata,
    fromPool: record.fromPool,
    createdAt: iso(record.createdAt),
    claimedAt: record.claimedAt === null ? null : iso(record.claimedAt),
    lastActiveAt: iso(record.lastActiveAt),
    idleTimeoutSeconds: record.idleTimeoutSeconds,
    expiresAt: record.expiresAt === null ? null : iso(record.expiresAt),
  };
}

type SandboxHandlers = Pick<
  Handlers,
  'acquireSandbox' | 'listSandboxes' | 'getSandbox' | 'releaseSandbox' | 'keepaliveSandbox'
>;

export function sandboxHandlers({ manager, snapshots }: ApiDeps): SandboxHandlers {
  return {
    acquireSandbox: async (c, { body }) =>
      c.json(toSandboxInfo(await manager.acquire(body, c.get('caller'))), 201),
    listSandboxes: async (c, { query }) => {
      const records = await manager.list(query, c.get('caller'));
      return c.json({ sandboxes: records.map(toSandboxInfo) });
    },
    getSandbox: async (c, { params }) => c.json(toSandboxInfo(await manager.get(params.id, c.get('caller')))),
    releaseSandbox: async (c, { params: { id }, query: { snapshot, key, expectedHead } }) => {
      if (snapshot === 'true') {
        // An empty expectedHead stands for null in a query string: the key must have no snapshot yet.
        const head = expectedHead === '' ? null : expectedHead;
        const options = { key, expectedHead: head };
        return c.json(await snapshots.snapshotAndRelease(id, c.get('caller'), options), 200);
      }
      await manager.release(id, c.get('caller'));
      return c.body(null, 204);
    },
    keepaliveSandbox: async (c, { params, body }) =>
      c.json(toSandboxInfo(await manager.keepalive(params.id, c.get('caller'), body.idleTimeoutSeconds))),
  };
}
