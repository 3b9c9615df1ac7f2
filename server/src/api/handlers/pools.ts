/** Pool targets and live counts; resizing sets the target every worker's refiller works toward. */
import type { ApiDeps } from '../context.js';
import type { Handlers } from './types.js';

export function poolHandlers({ manager }: ApiDeps): Pick<Handlers, 'listPools' | 'resizePool'> {
  return {
    listPools: async (c) => c.json({ pools: await manager.pools() }),
    resizePool: async (c, { params, body }) =>
      c.json(await manager.resizePool(params.type, body.size, c.get('caller'))),
  };
}
