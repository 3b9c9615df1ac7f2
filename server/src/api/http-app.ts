/**
 * The Hono app: middleware, one handler per route of the table (given the route's validated
 * input), 405 for a known path with another
 * method, 404 ROUTE_NOT_FOUND for the rest, and every thrown error turned into an ErrorBody.
 */
import { Hono } from 'hono';
import type { ApiDeps, AppContext, AppEnv } from './context.js';
import { errorResponse, handleError } from './error-response.js';
import { archiveHandlers } from './handlers/archive.js';
import { execHandlers } from './handlers/exec.js';
import { fileHandlers } from './handlers/files.js';
import { poolHandlers } from './handlers/pools.js';
import { sandboxHandlers } from './handlers/sandboxes.js';
import { snapshotHandlers } from './handlers/snapshots.js';
import { systemHandlers } from './handlers/system.js';
import { toolHandlers } from './handlers/tools.js';
import type { Handlers } from './handlers/types.js';
import { bearerAuth, requestScope, shutdownGate } from './middleware.js';
import { type RawRouteInput, readRouteInput } from './request-input.js';
import { ROUTES } from './routes.js';

export function createHttpApp(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', requestScope(deps), shutdownGate(deps), bearerAuth(deps));

  const handlers: Handlers = {
    ...systemHandlers(deps),
    ...sandboxHandlers(deps),
    ...execHandlers(deps),
    ...fileHandlers(deps),
    ...archiveHandlers(deps),
    ...toolHandlers(deps),
    ...snapshotHandlers(deps),
    ...poolHandlers(deps),
  };
  const methodsByPath = new Map<string, string[]>();
  for (const route of ROUTES) {
    // Each handler's input type comes from its own route; here, at the one place that pairs them
    // for every route at once, the pairing is by operationId.
    const handler = handlers[route.operationId] as (
      c: AppContext,
      input: RawRouteInput,
    ) => Response | Promise<Response>;
    app.on(route.method.toUpperCase(), route.path, async (c) =>
      handler(c, await readRouteInput(c, route, deps.bodies)),
    );
    methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method.toUpperCase()]);
  }
  for (const [path, methods] of methodsByPath) {
    app.all(path, (c) => {
      c.header('allow', methods.join(', '));
      return errorResponse(c, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${path}`, {
        allowed: methods,
      });
    });
  }

  app.notFound((c) => errorResponse(c, 'ROUTE_NOT_FOUND', `no route ${c.req.method} ${c.req.path}`));
  app.onError((err, c) => handleError(err, c, deps));
  return app;
}
