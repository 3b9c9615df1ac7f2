/** The /files routes; bodies stream both ways. */
import type { ApiDeps } from '../context.js';
import { callScope, relay } from '../upstream-response.js';
import type { Handlers } from './types.js';

type FileHandlers = Pick<
  Handlers,
  'readFile' | 'writeFile' | 'deleteFile' | 'listFiles' | 'statFile' | 'moveFile' | 'makeDirectory'
>;

export function fileHandlers({ dataPlane }: ApiDeps): FileHandlers {
  return {
    readFile: async (c, { params, query }) => relay(await dataPlane.readFile(params.id, callScope(c), query)),
    writeFile: async (c, { params, query, body }) =>
      relay(await dataPlane.writeFile(params.id, callScope(c), query, body)),
    deleteFile: async (c, { params, query }) =>
      relay(await dataPlane.deleteFile(params.id, callScope(c), query)),
    listFiles: async (c, { params, query }) =>
      relay(await dataPlane.listFiles(params.id, callScope(c), query)),
    statFile: async (c, { params, query }) => relay(await dataPlane.statFile(params.id, callScope(c), query)),
    moveFile: async (c, { params, body }) => relay(await dataPlane.moveFile(params.id, callScope(c), body)),
    makeDirectory: async (c, { params, body }) =>
      relay(await dataPlane.makeDirectory(params.id, callScope(c), body)),
  };
}
