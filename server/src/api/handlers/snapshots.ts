/** Take, list, inspect and delete workspace snapshots; restores ride on acquire (handlers/sandboxes.ts). */
import { snapshotListQuerySchema, snapshotRequestSchema } from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { readJsonBody, readQuery, sandboxIdOf } from '../request-input.js';
import type { Handlers } from './types.js';

type SnapshotHandlers = Pick<Handlers, 'createSnapshot' | 'listSnapshots' | 'getSnapshot' | 'deleteSnapshot'>;

export function snapshotHandlers({ snapshots, bodies }: ApiDeps): SnapshotHandlers {
  return {
    createSnapshot: async (c) => {
      const id = sandboxIdOf(c);
      const request = await readJsonBody(c, snapshotRequestSchema, bodies.json);
      return c.json(await snapshots.snapshot(id, c.get('caller'), request), 201);
    },
    listSnapshots: async (c) =>
      c.json({ snapshots: await snapshots.list(c.get('caller'), readQuery(c, snapshotListQuerySchema)) }),
    // A malformed id names no snapshot: the store answers SNAPSHOT_NOT_FOUND, as for an unknown one.
    getSnapshot: async (c) => c.json(await snapshots.get(c.req.param('id') ?? '', c.get('caller'))),
    deleteSnapshot: async (c) => {
      await snapshots.delete(c.req.param('id') ?? '', c.get('caller'));
      return c.body(null, 204);
    },
  };
}
