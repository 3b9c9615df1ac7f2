/** A directory out as a tar stream, or a tar stream into a directory; neither is buffered here. */
import type { ApiDeps } from '../context.js';
import { callScope, relay } from '../upstream-response.js';
import type { Handlers } from './types.js';

export function archiveHandlers({ dataPlane }: ApiDeps): Pick<Handlers, 'downloadArchive' | 'uploadArchive'> {
  return {
    downloadArchive: async (c, { params, query }) =>
      relay(await dataPlane.downloadArchive(params.id, callScope(c), query)),
    uploadArchive: async (c, { params, query, body }) =>
      relay(await dataPlane.uploadArchive(params.id, callScope(c), query, body)),
  };
}
