/**
 * What runs around every request, outermost first: the request id (taken from `x-request-id` when
 * sane, else made; echoed back; in every log line through the request context), the access log line
 * and HTTP metrics, in-flight counting for shutdown, the shutdown gate, and bearer auth.
 *
 * Auth: with BEARER_TOKEN or API_KEYS_FILE set, everything but `/healthz` and `/readyz` needs a
 * key, `/metrics` included (Prometheus sends bearer tokens): BEARER_TOKEN makes the caller the
 * admin, a tenant's key (tenants/api-keys.ts) that tenant; both compared in constant time. Probes
 * stay open because they reveal nothing and orchestrators probe without credentials. With neither
 * (the config allows that only on loopback) auth is off, every caller is the admin, and only
 * loopback clients are served: a web page the user opens
 * could otherwise drive the API through DNS rebinding (a foreign `Host`) or a cross-site request
 * (a foreign `Origin`).
 */
import { randomUUID } from 'node:crypto';
import { TokenGate } from '@runtime-sandbox/contract/token-gate';
import type { MiddlewareHandler } from 'hono';
import { isLoopback } from '../config/schema.js';
import { requestContext } from '../observability/logger.js';
import { ADMIN, type Caller } from '../tenants/caller.js';
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
    const afterHandler: Array<() => void> = [];
    c.set('afterHandler', afterHandler);
    const done = deps.inFlight.begin();
    // Ends when the answer's last byte is written or the connection drops, streams included.
    c.env.outgoing.once('close', done);
    await requestContext.run({ requestId }, async () => {
      try {
        await next();
      } finally {
        for (const release of afterHandler.splice(0)) release();
      }
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

/** Sets the request's `caller`, on every path but the open ones, or answers 401. */
export function bearerAuth(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  const { tenantKeys } = deps;
  const token = deps.config.BEARER_TOKEN;
  if (token === undefined && tenantKeys === undefined) return loopbackOnly;
  // The same constant-time gate sandboxd uses, so neither the token nor its length leaks by timing.
  const admin = token === undefined ? undefined : new TokenGate(token);
  const callerOf = (authorization: string | undefined): Caller | null => {
    if (admin?.admits(authorization)) return ADMIN;
    const key = bearerTokenOf(authorization);
    const tenant = key === undefined ? null : (tenantKeys?.tenantOf(key) ?? null);
    return tenant === null ? null : { kind: 'tenant', tenant };
  };
  return async (c, next) => {
    if (OPEN_PATHS.has(c.req.path)) return next();
    const authorization = c.req.header('authorization');
    const caller = callerOf(authorization);
    if (caller === null) {
      const wellFormed = bearerTokenOf(authorization) !== undefined;
      c.header('www-authenticate', 'Bearer');
      return errorResponse(
        c,
        'UNAUTHORIZED',
        wellFormed ? 'wrong bearer token' : 'missing bearer token (Authorization: Bearer <token>)',
      );
    }
    c.set('caller', caller);
    await next();
  };
}

/** The token of an `Authorization: Bearer <token>` header, as TokenGate reads it; undefined when absent or malformed. */
function bearerTokenOf(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
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
  c.set('caller', ADMIN);
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
