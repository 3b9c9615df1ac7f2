/**
 * Reading what a request carries: JSON bodies under MAX_JSON_BYTES, raw upload bodies streamed
 * under MAX_UPLOAD_BYTES, query strings and path parameters, all validated with zod. Failures are
 * typed: MALFORMED_JSON, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, VALIDATION_ERROR.
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { z } from 'zod';
import { messageOf, ServiceError } from '../manager/errors.js';
import type { AppContext } from './context.js';
import { sandboxIdParamsSchema } from './schemas.js';

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

export function payloadTooLarge(limit: number): ServiceError {
  return new ServiceError('PAYLOAD_TOO_LARGE', `the request body is over the limit of ${limit} bytes`, {
    limitBytes: limit,
  });
}

/** The body as JSON, validated; an empty body counts as `{}`. */
export async function readJsonBody<S extends z.ZodType>(
  c: AppContext,
  schema: S,
  limit: number,
): Promise<z.output<S>> {
  const contentType = c.req.header('content-type');
  if (contentType !== undefined && contentType !== '' && !JSON_TYPE.test(contentType)) {
    throw new ServiceError('UNSUPPORTED_MEDIA_TYPE', `expected application/json, got ${contentType}`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of uploadBody(c, limit)) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  // A body must say it is JSON: browsers send untyped bodies across sites without asking first.
  if (text.trim() !== '' && (contentType === undefined || contentType === '')) {
    throw new ServiceError('UNSUPPORTED_MEDIA_TYPE', 'a JSON body needs Content-Type: application/json');
  }
  let parsed: unknown = {};
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ServiceError('MALFORMED_JSON', `the request body is not valid JSON: ${messageOf(err)}`);
    }
  }
  return validate(schema, parsed, 'body');
}

/**
 * The raw body as a stream that fails with PAYLOAD_TOO_LARGE once past `limit` bytes (at once when
 * Content-Length already says so). The Node request is piped, not pipelined, so the error does not
 * tear down the connection before the 413 is answered.
 */
export function uploadBody(c: AppContext, limit: number): Transform {
  const incoming: IncomingMessage = c.env.incoming;
  const declared = Number(incoming.headers['content-length']);
  if (declared > limit) throw payloadTooLarge(limit);
  let received = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      if (received > limit) done(payloadTooLarge(limit));
      else done(null, chunk);
    },
  });
  incoming.on('error', (err) => limiter.destroy(err));
  incoming.on('close', () => {
    if (!incoming.complete) limiter.destroy(new Error('the client closed the request before its end'));
  });
  // Once the limiter is done with (refused, or the call failed first), the rest of the body is the
  // HTTP server's to drain, not stuck behind a stream nobody reads.
  limiter.once('close', () => incoming.unpipe(limiter));
  incoming.pipe(limiter);
  return limiter;
}

export function readQuery<S extends z.ZodType>(c: AppContext, schema: S): z.output<S> {
  return validate(schema, c.req.query(), 'query');
}

export function readParams<S extends z.ZodType>(c: AppContext, schema: S): z.output<S> {
  return validate(schema, c.req.param(), 'path');
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ServiceError('VALIDATION_ERROR', `the request ${where} is not valid`, {
    issues: result.error.issues.map((issue) => ({
      path: issue.path.map(String),
      message: issue.message,
      code: issue.code,
    })),
  });
}

/** A validated query object as a query string, dropping absent values. */
export function toSearchParams(
  query: Record<string, string | number | boolean | undefined>,
): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  return params;
}

/** The `:id` of a sandbox route; a malformed id names no sandbox, so it is a 404 like an unknown one. */
export function sandboxIdOf(c: AppContext): string {
  const id = c.req.param('id') ?? '';
  if (!sandboxIdParamsSchema.shape.id.safeParse(id).success) {
    throw new ServiceError('SANDBOX_NOT_FOUND', `no live sandbox with id ${JSON.stringify(id)}`, { id });
  }
  return id;
}
