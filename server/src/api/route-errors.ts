/**
 * Every error code a route can answer with: its own (the route table's `errors`) and those that
 * follow from its shape, added here so that no route can forget them: the server's own faults and
 * shutdown, the loopback rule with auth off, a bearer token on protected routes, validation of
 * what it takes, and the limits on request bodies.
 */
import type { ErrorCode } from '@runtime-sandbox/contract';
import type { RouteSpec } from './routes.js';

const EVERY_ROUTE: readonly ErrorCode[] = ['INTERNAL_ERROR', 'CROSS_ORIGIN_REFUSED'];
const PROTECTED: readonly ErrorCode[] = ['UNAUTHORIZED'];
const JSON_BODY: readonly ErrorCode[] = [
  'VALIDATION_ERROR',
  'MALFORMED_JSON',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'SERVER_BUSY',
];
const RAW_BODY: readonly ErrorCode[] = ['PAYLOAD_TOO_LARGE', 'REQUEST_TIMEOUT'];

export function errorCodesOf(route: RouteSpec): ErrorCode[] {
  const codes = new Set<ErrorCode>(EVERY_ROUTE);
  // Liveness answers while draining; everything else refuses.
  if (route.operationId !== 'health') codes.add('SHUTTING_DOWN');
  if (route.auth) for (const code of PROTECTED) codes.add(code);
  const validatedParams = route.params !== undefined && route.unknownParams === undefined;
  if (validatedParams || route.query !== undefined) codes.add('VALIDATION_ERROR');
  if (route.body !== undefined) for (const code of route.body.schema ? JSON_BODY : RAW_BODY) codes.add(code);
  for (const code of route.errors) codes.add(code);
  return [...codes];
}
