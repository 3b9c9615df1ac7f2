import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { AppContext } from '../context.js';
import type { OperationId, ROUTES } from '../routes.js';

type RouteOf<Id extends OperationId> = Extract<(typeof ROUTES)[number], { operationId: Id }>;
type Parsed<T> = T extends z.ZodType ? z.output<T> : never;
type Nothing = Record<string, never>;

/** What the route table says a route takes, already validated when its handler runs. */
export interface RouteInput<Route> {
  params: Route extends { params: infer P } ? Parsed<P> : Nothing;
  query: Route extends { query: infer Q } ? Parsed<Q> : Nothing;
  /** A JSON body as its schema parsed it; a raw body as a stream bounded by MAX_UPLOAD_BYTES. */
  body: Route extends { body: { schema: infer B } }
    ? Parsed<B>
    : Route extends { body: object }
      ? Readable
      : undefined;
}

/** One handler per operation of the route table, given that route's input. */
export type Handlers = {
  [Id in OperationId]: (c: AppContext, input: RouteInput<RouteOf<Id>>) => Response | Promise<Response>;
};
