/** Take, list, inspect and delete workspace snapshots; restores ride on acquire (handlers/sandboxes.ts). */
import type { ApiDeps } from '../context.js';
import type { Handlers } from './types.js';

type SnapshotHandlers = Pick<Handlers, 'createSnapshot' | 'listSnapshots' | 'getSnapshot' | 'deleteSnapshot'>;

export function snapshotHandlers({ snapshots }: ApiDeps): SnapshotHandlers {
  return {
    createSnapshot: async (c, { params, body }) =>
      c.json(await snapshots.snapshot(params.id, c.get('caller'), body), 201),
    listSnapshots: async (c, { query }) =>
      c.json({ snapshots: await snapshots.list(c.get('caller'), query) }),
    getSnapshot: async (c, { params }) => c.json(await snapshots.get(params.id, c.get('caller'))),
    deleteSnapshot: async (c, { params }) => {
      await snapshots.delete(params.id, c.get('caller'));
      return c.body(null, 204);
    },
  };
}
