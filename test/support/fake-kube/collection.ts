/**
 * GET on a collection, the same for every resource: a list (`<Kind>List` with the current
 * resourceVersion, items without kind and apiVersion as the apiserver's JSON lists have them), or
 * with `watch=true` (or on the legacy /watch/ path) a watch stream, both narrowed by namespace,
 * labelSelector and fieldSelector.
 */
import type { ServerResponse } from 'node:http';
import type { Handler } from './api-server.js';
import { parseFieldSelector, type SelectableFields } from './field-selector.js';
import { parseLabelSelector } from './label-selector.js';
import type { KubeObject } from './object-meta.js';
import { queryFlag, queryInt } from './request-input.js';
import type { ResourceStore, ResourceVersionClock } from './resource-store.js';
import { streamWatch } from './watch-stream.js';

export interface CollectionOptions<T extends KubeObject> {
  store: ResourceStore<T>;
  clock: ResourceVersionClock;
  kind: string;
  apiVersion: string;
  fields: SelectableFields<T>;
  bookmarkIntervalMs: number;
  openWatches: Set<ServerResponse>;
}

/** The handler of a collection path; `:namespace` narrows it, without one it spans all namespaces. */
export function collectionHandler<T extends KubeObject>(
  options: CollectionOptions<T>,
  alwaysWatch = false,
): Handler {
  return (request) => {
    const namespace = request.params.namespace;
    const labels = parseLabelSelector(request.query.get('labelSelector') ?? undefined);
    const fields = parseFieldSelector(request.query.get('fieldSelector') ?? undefined, options.fields);
    const selects = (object: T) =>
      (namespace === undefined || object.metadata.namespace === namespace) &&
      labels(object.metadata.labels) &&
      fields(object);
    if (alwaysWatch || queryFlag(request.query, 'watch')) {
      streamWatch(request.res, {
        store: options.store,
        clock: options.clock,
        selects,
        resourceVersion: request.query.get('resourceVersion') ?? undefined,
        allowBookmarks: queryFlag(request.query, 'allowWatchBookmarks'),
        timeoutSeconds: queryInt(request.query, 'timeoutSeconds'),
        bookmarkIntervalMs: options.bookmarkIntervalMs,
        kind: options.kind,
        apiVersion: options.apiVersion,
        open: options.openWatches,
      });
      return 'handled';
    }
    const items = options.store
      .list(selects)
      .map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest);
    return {
      status: 200,
      json: {
        kind: `${options.kind}List`,
        apiVersion: options.apiVersion,
        metadata: { resourceVersion: String(options.clock.current) },
        items,
      },
    };
  };
}
