/**
 * What runs around every request, outermost first: the request id (taken from `x-request-id` when
 * sane, else made; echoed back; in every log line through the request context), the access log line
 * and HTTP metrics, in-flight counting for shutdown, the shutdown gate, and bearer auth.
 *
 * Auth: with BEARER_TOKEN set, everything but `/healthz` and `/readyz` needs it, `/metrics`
 * included (Prometheus sends bearer tokens). Probes stay open because they reveal nothing and
 * orchestrators probe without credentials. Without BEARER_TOKEN (the config allows that only on
 * loopback) auth is off, and then only loopback clients are served: a web page the user opens
 * could otherwise drive the API through DNS rebinding (a foreign `Host`) or a cross-site request
 * (a foreign `Origin`).
 */
import { randomUUID } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { TokenGate } from '../../../sandbox-images/runtime/src/auth.js';
import { isLoopback } from '../config/schema.js';
import { requestContext } from '../observability/logger.js';
import type { ApiDeps, AppEnv } from './context.js';
import { errorResponse } from './error-response.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const OPEN_PATHS = new Set(['/healthz', '/readyz']);
/** Probes and scrapes are logged at debug, so a busy orchestrator does not flood the log. */
const QUIET_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export function requestScope(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const given = c.req.header('x-request-id');
    const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID();
    c.set('requestId', requestId);
    c.set('errorCode', undefined);
    const done = deps.inFlight.begin();
    // Ends when the answer's last byte is written or the connection drops, streams included.
    c.env.outgoing.once('close', done);
    await requestContext.run({ requestId }, async () => {
      await next();
      c.res.headers.set('x-request-id', requestId);
      const status = c.res.status;
      const route = c.req.routePath;
      const durationMs = Math.round((performance.now() - started) * 100) / 100;
      deps.metrics.httpDuration.observe(
        { method: c.req.method, route, status: String(status) },
        durationMs / 1000,
      );
      const code = c.get('errorCode');
      if (code !== undefined) deps.metrics.countError(code);
      const line = { method: c.req.method, path: c.req.path, route, status, durationMs, code };
      if (QUIET_PATHS.has(c.req.path)) deps.logger.debug(line, 'request');
      else deps.logger.info(line, 'request');
    });
  };
}

/** While shutting down, only liveness answers; everything else (readiness too) gets 503. */
export function shutdownGate(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (deps.inFlight.draining && c.req.path !== '/healthz') {
      c.header('connection', 'close');
      return errorResponse(c, 'SHUTTING_DOWN', 'the server is shutting down');
    }
    await next();
  };
}

export function bearerAuth(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  const token = deps.config.BEARER_TOKEN;
  if (token === undefined) return loopbackOnly;
  // The same constant-time gate sandboxd uses, so neither the token nor its length leaks by timing.
  const gate = token === undefined ? undefined : new TokenGate(token);
  return async (c, next) => {
    if (gate === undefined || OPEN_PATHS.has(c.req.path)) return next();
    const authorization = c.req.header('authorization');
    if (!gate.admits(authorization)) {
      const wellFormed = /^Bearer\s+\S+\s*$/i.test(authorization ?? '');
      c.header('www-authenticate', 'Bearer');
      return errorResponse(
        c,
        'UNAUTHORIZED',
        wellFormed ? 'wrong bearer token' : 'missing bearer token (Authorization: Bearer <token>)',
      );
    }
    await next();
  };
}

/** Auth off: a request whose Host or Origin names anything but loopback is refused. */
const loopbackOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  const host = c.req.header('host');
  const origin = c.req.header('origin');
  if (host === undefined || !isLoopback(hostnameOf(`http://${host}`))) {
    return errorResponse(
      c,
      'CROSS_ORIGIN_REFUSED',
      `auth is off, so only loopback hosts are served, not ${host}`,
    );
  }
  if (origin !== undefined && !isLoopback(hostnameOf(origin))) {
    return errorResponse(c, 'CROSS_ORIGIN_REFUSED', `auth is off, so requests from ${origin} are refused`);
  }
  await next();
};

/** The hostname of a URL, brackets of an IPv6 literal removed; '' when it does not parse. */
function hostnameOf(url: string): string {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return '';
  }
}
