/**
 * The Hono app: middleware, one handler per route of the table, 405 for a known path with another
 * method, 404 ROUTE_NOT_FOUND for the rest, and every thrown error turned into an ErrorBody.
 */
import { Hono } from 'hono';
import type { ApiDeps, AppEnv } from './context.js';
import { errorResponse, handleError } from './error-response.js';
import { archiveHandlers } from './handlers/archive.js';
import { execHandlers } from './handlers/exec.js';
import { fileHandlers } from './handlers/files.js';
import { poolHandlers } from './handlers/pools.js';
import { sandboxHandlers } from './handlers/sandboxes.js';
import { snapshotHandlers } from './handlers/snapshots.js';
import { systemHandlers } from './handlers/system.js';
import type { Handlers } from './handlers/types.js';
import { bearerAuth, requestScope, shutdownGate } from './middleware.js';
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
    ...snapshotHandlers(deps),
    ...poolHandlers(deps),
  };
  const methodsByPath = new Map<string, string[]>();
  for (const route of ROUTES) {
    app.on(route.method.toUpperCase(), route.path, handlers[route.operationId]);
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
