/** Acquire, list, inspect, keep alive and release sandboxes. */
import {
  acquireRequestSchema,
  keepaliveRequestSchema,
  type SandboxInfo,
  sandboxListQuerySchema,
} from '@runtime-sandbox/contract';
import type { SandboxRecord } from '../../state/state-store.js';
import type { ApiDeps } from '../context.js';
import { readJsonBody, readQuery, sandboxIdOf } from '../request-input.js';
import { releaseQuerySchema } from '../schemas.js';
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

export function sandboxHandlers({ manager, snapshots, bodies }: ApiDeps): SandboxHandlers {
  return {
    acquireSandbox: async (c) => {
      const { restore, ...request } = await readJsonBody(c, acquireRequestSchema, bodies.json);
      return c.json(toSandboxInfo(await snapshots.acquire(request, c.get('caller'), restore)), 201);
    },
    listSandboxes: async (c) => {
      const records = await manager.list(readQuery(c, sandboxListQuerySchema), c.get('caller'));
      return c.json({ sandboxes: records.map(toSandboxInfo) });
    },
    getSandbox: async (c) => c.json(toSandboxInfo(await manager.get(sandboxIdOf(c), c.get('caller')))),
    releaseSandbox: async (c) => {
      const id = sandboxIdOf(c);
      const { snapshot, key, expectedHead } = readQuery(c, releaseQuerySchema);
      if (snapshot === 'true') {
        // An empty expectedHead stands for null in a query string: the key must have no snapshot yet.
        const head = expectedHead === '' ? null : expectedHead;
        const options = { key, expectedHead: head };
        return c.json(await snapshots.snapshotAndRelease(id, c.get('caller'), options), 200);
      }
      await manager.release(id, c.get('caller'));
      return c.body(null, 204);
    },
    keepaliveSandbox: async (c) => {
      const id = sandboxIdOf(c);
      const { idleTimeoutSeconds } = await readJsonBody(c, keepaliveRequestSchema, bodies.json);
      return c.json(toSandboxInfo(await manager.keepalive(id, c.get('caller'), idleTimeoutSeconds)));
    },
  };
}
