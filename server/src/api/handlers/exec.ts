/**
 * Exec: validated with sandboxd's own schema, forwarded, and answered as sandboxd answers: one JSON
 * result, or (Accept: application/x-ndjson) the event stream passed on as it comes.
 */
import { execRequestSchema, NDJSON } from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { readJsonBody, sandboxIdOf } from '../request-input.js';
import { relay } from '../upstream-response.js';
import { forward, jsonRequestBody } from './forward.js';
import type { Handlers } from './types.js';

export function execHandlers({ manager, bodies, metrics }: ApiDeps): Pick<Handlers, 'execInSandbox'> {
  return {
    execInSandbox: async (c) => {
      const started = performance.now();
      const id = sandboxIdOf(c);
      const request = await readJsonBody(c, execRequestSchema, bodies.json);
      const streamed = (c.req.header('accept') ?? '').includes(NDJSON);
      const mode = streamed ? 'stream' : 'json';
      metrics.execTotal.inc({ mode });
      const body = jsonRequestBody(request);
      const upstream = await forward(c, manager, id, {
        method: 'POST',
        path: '/exec',
        body: body.body,
        headers: { ...body.headers, ...(streamed ? { accept: NDJSON } : {}) },
      });
      upstream.once('close', () =>
        metrics.execDuration.observe({ mode }, (performance.now() - started) / 1000),
      );
      return relay(upstream);
    },
  };
}
