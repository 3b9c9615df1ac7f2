/** The /files routes, validated here with sandboxd's schemas and forwarded; bodies stream both ways. */
import {
  deleteQuerySchema,
  listQuerySchema,
  mkdirRequestSchema,
  moveRequestSchema,
  pathQuerySchema,
  writeQuerySchema,
} from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { readJsonBody, readQuery, sandboxIdOf, toSearchParams, uploadBody } from '../request-input.js';
import { relay } from '../upstream-response.js';
import { forward, jsonRequestBody } from './forward.js';
import type { Handlers } from './types.js';

type FileHandlers = Pick<
  Handlers,
  'readFile' | 'writeFile' | 'deleteFile' | 'listFiles' | 'statFile' | 'moveFile' | 'makeDirectory'
>;

export function fileHandlers({ manager, bodies }: ApiDeps): FileHandlers {
  return {
    readFile: async (c) => {
      const query = toSearchParams(readQuery(c, pathQuerySchema));
      return relay(await forward(c, manager, sandboxIdOf(c), { method: 'GET', path: '/files', query }));
    },
    writeFile: async (c) => {
      const id = sandboxIdOf(c);
      const query = toSearchParams(readQuery(c, writeQuerySchema));
      const body = uploadBody(c, bodies.upload);
      const headers = { 'content-type': 'application/octet-stream' };
      return relay(await forward(c, manager, id, { method: 'PUT', path: '/files', query, headers, body }));
    },
    deleteFile: async (c) => {
      const query = toSearchParams(readQuery(c, deleteQuerySchema));
      return relay(await forward(c, manager, sandboxIdOf(c), { method: 'DELETE', path: '/files', query }));
    },
    listFiles: async (c) => {
      const query = toSearchParams(readQuery(c, listQuerySchema));
      return relay(await forward(c, manager, sandboxIdOf(c), { method: 'GET', path: '/files/list', query }));
    },
    statFile: async (c) => {
      const query = toSearchParams(readQuery(c, pathQuerySchema));
      return relay(await forward(c, manager, sandboxIdOf(c), { method: 'GET', path: '/files/stat', query }));
    },
    moveFile: async (c) => {
      const id = sandboxIdOf(c);
      const request = await readJsonBody(c, moveRequestSchema, bodies.json);
      return relay(
        await forward(c, manager, id, { method: 'POST', path: '/files/move', ...jsonRequestBody(request) }),
      );
    },
    makeDirectory: async (c) => {
      const id = sandboxIdOf(c);
      const request = await readJsonBody(c, mkdirRequestSchema, bodies.json);
      return relay(
        await forward(c, manager, id, { method: 'POST', path: '/files/mkdir', ...jsonRequestBody(request) }),
      );
    },
  };
}
