/**
 * One watch response, as kube-apiserver streams it: HTTP 200, chunked, one JSON event per line
 * (`{"type":"ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR","object":{...}}`).
 *
 * - no resourceVersion (or "0"): synthetic ADDED for every current match, then live changes;
 * - resourceVersion N: the changes after N from the history, then live; N older than the history:
 *   a single ERROR event with a 410 Expired Status, then the end of the response;
 * - with a selector, an object that starts matching arrives as ADDED and one that stops matching
 *   as DELETED (its previous content at the new resourceVersion), as the watch cache filters;
 * - allowWatchBookmarks: a BOOKMARK (an empty object of the kind with only the resourceVersion)
 *   every bookmark interval and just before timeoutSeconds ends the response.
 */
import type { ServerResponse } from 'node:http';
import { badRequest, expiredStatus } from './api-status.js';
import type { KubeObject } from './object-meta.js';
import type { Change, ResourceStore, ResourceVersionClock } from './resource-store.js';

export interface WatchOptions<T extends KubeObject> {
  store: ResourceStore<T>;
  clock: ResourceVersionClock;
  /** The namespace, label and field selection of the request. */
  selects: (object: T) => boolean;
  resourceVersion: string | undefined;
  allowBookmarks: boolean;
  timeoutSeconds: number | undefined;
  bookmarkIntervalMs: number;
  /** The kind and apiVersion of the objects, for bookmarks. */
  kind: string;
  apiVersion: string;
  /** Open watches, so that dropWatches() and goDown() can end them all. */
  open: Set<ServerResponse>;
}

type WireEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: unknown };

/** The version to replay from, "any" (none given, or "0"), or a 400 for a non-number. */
function startVersion(resourceVersion: string | undefined): number | 'any' {
  if (resourceVersion === undefined || resourceVersion === '' || resourceVersion === '0') return 'any';
  if (!/^[0-9]+$/.test(resourceVersion)) {
    throw badRequest(`invalid resource version: ${JSON.stringify(resourceVersion)}`);
  }
  return Number(resourceVersion);
}

/** What a watch with this selection sees of a change, if anything. */
function eventFor<T extends KubeObject>(
  change: Change<T>,
  selects: (object: T) => boolean,
): WireEvent | undefined {
  if (change.type === 'ADDED')
    return selects(change.object) ? { type: 'ADDED', object: change.object } : undefined;
  if (change.type === 'DELETED') {
    return selects(change.object) ? { type: 'DELETED', object: change.object } : undefined;
  }
  const now = selects(change.object);
  const before = change.previous !== undefined && selects(change.previous);
  if (now && before) return { type: 'MODIFIED', object: change.object };
  if (now) return { type: 'ADDED', object: change.object };
  if (before && change.previous !== undefined) {
    const gone = structuredClone(change.previous);
    gone.metadata.resourceVersion = String(change.resourceVersion);
    return { type: 'DELETED', object: gone };
  }
  return undefined;
}

/** Answers the request with a watch stream; throws an ApiError (before any byte is written) for bad input. */
export function streamWatch<T extends KubeObject>(res: ServerResponse, options: WatchOptions<T>): void {
  const from = startVersion(options.resourceVersion);
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  const send = (event: WireEvent) => {
    if (!res.writableEnded) res.write(`${JSON.stringify(event)}\n`);
  };

  if (from !== 'any') {
    const replay = options.store.changesSince(from);
    if (replay.kind === 'expired') {
      send({ type: 'ERROR', object: expiredStatus(from, replay.oldest) });
      res.end();
      return;
    }
    for (const change of replay.changes) {
      const event = eventFor(change, options.selects);
      if (event) send(event);
    }
  } else {
    for (const object of options.store.list(options.selects)) send({ type: 'ADDED', object });
  }

  // Subscribed in the same tick as the replay: no change can fall between the two.
  const unsubscribe = options.store.subscribe((change) => {
    const event = eventFor(change, options.selects);
    if (event) send(event);
  });
  const bookmark = () =>
    send({
      type: 'BOOKMARK',
      object: {
        kind: options.kind,
        apiVersion: options.apiVersion,
        metadata: { resourceVersion: String(options.clock.current), creationTimestamp: null },
      },
    });
  const timers: NodeJS.Timeout[] = [];
  if (options.allowBookmarks) timers.push(setInterval(bookmark, options.bookmarkIntervalMs));
  if (options.timeoutSeconds !== undefined && options.timeoutSeconds > 0) {
    timers.push(
      setTimeout(() => {
        if (options.allowBookmarks) bookmark();
        res.end();
      }, options.timeoutSeconds * 1000),
    );
  }
  options.open.add(res);
  const finish = () => {
    unsubscribe();
    for (const timer of timers) clearTimeout(timer);
    options.open.delete(res);
  };
  res.on('close', finish);
  res.on('finish', finish);
}
