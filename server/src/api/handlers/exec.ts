/**
 * Exec: validated with sandboxd's own schema, run, and answered as sandboxd answers: one JSON
 * result, or (Accept: application/x-ndjson) the event stream passed on as it comes.
 */
import { NDJSON } from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { callScope, relay } from '../upstream-response.js';
import type { Handlers } from './types.js';

export function execHandlers({ dataPlane }: ApiDeps): Pick<Handlers, 'execInSandbox'> {
  return {
    execInSandbox: async (c, { params, body }) => {
      const streamed = (c.req.header('accept') ?? '').includes(NDJSON);
      return relay(await dataPlane.exec(params.id, callScope(c), body, streamed));
    },
  };
}
