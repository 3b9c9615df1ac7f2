/** A directory out as a tar stream, or a tar stream into a directory; neither is buffered here. */
import { archiveQuerySchema } from '@runtime-sandbox/contract';
import type { ApiDeps } from '../context.js';
import { readQuery, sandboxIdOf, toSearchParams, uploadBody } from '../request-input.js';
import { relay } from '../upstream-response.js';
import { forward } from './forward.js';
import type { Handlers } from './types.js';

export function archiveHandlers({
  manager,
  bodies,
}: ApiDeps): Pick<Handlers, 'downloadArchive' | 'uploadArchive'> {
  return {
    downloadArchive: async (c) => {
      const query = toSearchParams(readQuery(c, archiveQuerySchema));
      return relay(await forward(c, manager, sandboxIdOf(c), { method: 'GET', path: '/archive', query }));
    },
    uploadArchive: async (c) => {
      const id = sandboxIdOf(c);
      const query = toSearchParams(readQuery(c, archiveQuerySchema));
      const body = uploadBody(c, bodies.upload);
      const headers = { 'content-type': 'application/x-tar' };
      return relay(await forward(c, manager, id, { method: 'PUT', path: '/archive', query, headers, body }));
    },
  };
}
