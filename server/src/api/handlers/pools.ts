/** Pool targets and live counts; resizing sets the target every worker's refiller works toward. */
import { poolResizeRequestSchema } from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { readJsonBody, readParams } from '../request-input.js';
import { poolTypeParamsSchema } from '../schemas.js';
import type { Handlers } from './types.js';

export function poolHandlers({ manager, bodies }: ApiDeps): Pick<Handlers, 'listPools' | 'resizePool'> {
  return {
    listPools: async (c) => c.json({ pools: await manager.pools() }),
    resizePool: async (c) => {
      const { type } = readParams(c, poolTypeParamsSchema);
      const { size } = await readJsonBody(c, poolResizeRequestSchema, bodies.json);
      return c.json(await manager.resizePool(type, size, c.get('caller')));
    },
  };
}
