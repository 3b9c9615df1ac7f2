/** The sandbox's tools and its Python interpreter: results validated by the data plane, answered as JSON. */
import type { ApiDeps } from '../context.js';
import { callScope } from '../upstream-response.js';
import type { Handlers } from './types.js';

export function toolHandlers({ dataPlane }: ApiDeps): Pick<Handlers, 'listTools' | 'callTool' | 'runPython'> {
  return {
    listTools: async (c, { params }) => c.json(await dataPlane.listTools(params.id, callScope(c))),
    callTool: async (c, { params, body }) =>
      c.json(await dataPlane.callTool(params.id, callScope(c), params.name, body)),
    runPython: async (c, { params, body }) =>
      c.json(await dataPlane.runPython(params.id, callScope(c), body)),
  };
}
