/**
 * Errors as answers: `{"error": {"code", "message", "details?"}}` with the code's status. Typed
 * errors say what went wrong; anything else is an internal fault, logged in full and answered with
 * the request id only, so no stack or internal message reaches a caller.
 */
import { type ErrorCode, type errorBodySchema, statusOf } from '@runtime-sandbox/contract';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { describeCodedError, messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { AppContext } from './context.js';

export function errorResponse(
  c: AppContext,
  code: ErrorCode,
  message: string,
  details?: Record<string, unknown>,
): Response {
  c.set('errorCode', code);
  // A refusal that will pass (a busy worker, a limit) says when to come back.
  const retryAfter = details?.retryAfterSeconds;
  if (typeof retryAfter === 'number') c.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  const body: z.infer<typeof errorBodySchema> = { error: { code, message, ...(details ? { details } : {}) } };
  // Every status in the code table carries a body.
  return c.json(body, statusOf(code) as ContentfulStatusCode);
}

export function handleError(err: unknown, c: AppContext, deps: { logger: Logger }): Response {
  const known = describeCodedError(err);
  if (known) {
    if (statusOf(known.code) >= 500)
      deps.logger.warn({ code: known.code, err: known.message }, 'request failed');
    return errorResponse(c, known.code, known.message, known.details);
  }
  if (c.req.raw.signal.aborted) {
    // The caller hung up; whatever we answer goes nowhere.
    deps.logger.debug({ err: messageOf(err) }, 'request aborted by the client');
    return errorResponse(c, 'UPSTREAM_ERROR', 'the request was aborted');
  }
  deps.logger.error({ err }, 'unexpected fault while serving a request');
  const requestId = c.get('requestId');
  return errorResponse(c, 'INTERNAL_ERROR', `internal error; the server log has request ${requestId}`, {
    requestId,
  });
}
