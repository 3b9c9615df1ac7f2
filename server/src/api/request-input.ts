/**
 * Reading what a request carries: JSON bodies under MAX_JSON_BYTES and within the worker's
 * JSON_BYTES_IN_FLIGHT, raw upload bodies streamed under MAX_UPLOAD_BYTES, query strings and path
 * parameters, all validated with zod. A body that stops arriving for BODY_IDLE_TIMEOUT_MS is cut
 * off. Failures are typed: MALFORMED_JSON, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE,
 * VALIDATION_ERROR, SERVER_BUSY, REQUEST_TIMEOUT.
 */
import type { IncomingMessage } from 'node:http';
import { Transform } from 'node:stream';
import type { z } from 'zod';
import { messageOf, ServiceError } from '../errors.js';
import type { BodyLimits, ByteBudget, JsonBodyLimits } from './body-limits.js';
import type { AppContext } from './context.js';
import type { RouteSpec } from './routes.js';

/** How long a busy worker asks a client to wait before it tries again, seconds. */
const BUSY_RETRY_AFTER_SECONDS = 1;

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

function payloadTooLarge(limit: number): ServiceError {
  return new ServiceError('PAYLOAD_TOO_LARGE', `the request body is over the limit of ${limit} bytes`, {
    limitBytes: limit,
  });
}

/** The body as JSON, validated; an empty body counts as `{}`. */
async function readJsonBody<S extends z.ZodType>(
  c: AppContext,
  schema: S,
  limits: JsonBodyLimits,
): Promise<z.output<S>> {
  const contentType = c.req.header('content-type');
  if (contentType !== undefined && contentType !== '' && !JSON_TYPE.test(contentType)) {
    throw new ServiceError('UNSUPPORTED_MEDIA_TYPE', `expected application/json, got ${contentType}`);
  }
  const chunks: Buffer[] = [];
  // Held until the handler has answered: the body's text, its parsed value and what is forwarded
  // of it live that long, not just the read.
  const hold = limits.budget.hold();
  c.get('afterHandler').push(hold.release);
  for await (const chunk of uploadBody(c, limits)) {
    if (!hold.grow((chunk as Buffer).length)) throw serverBusy(limits.budget);
    chunks.push(chunk as Buffer);
  }
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

function serverBusy(budget: ByteBudget): ServiceError {
  return new ServiceError(
    'SERVER_BUSY',
    `this worker already holds ${budget.inUse} bytes of request bodies (JSON_BYTES_IN_FLIGHT ${budget.capacity}); retry shortly`,
    { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS },
  );
}

/**
 * The raw body as a stream that fails with PAYLOAD_TOO_LARGE once past `maxBytes` (at once when
 * Content-Length already says so), and with REQUEST_TIMEOUT when the client sends nothing for
 * `idleTimeoutMs` while the stream waits for it; the connection is then closed once the 408 is out,
 * so a stalled client holds nothing. The Node request is piped, not pipelined, so an error does
 * not tear down the connection before its answer is written.
 */
function uploadBody(c: AppContext, limits: BodyLimits): Transform {
  const { maxBytes, idleTimeoutMs } = limits;
  const incoming: IncomingMessage = c.env.incoming;
  const declared = Number(incoming.headers['content-length']);
  if (declared > maxBytes) throw payloadTooLarge(maxBytes);
  let received = 0;
  let idle: NodeJS.Timeout | undefined;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      idle?.refresh();
      received += chunk.length;
      if (received > maxBytes) done(payloadTooLarge(maxBytes));
      else done(null, chunk);
    },
  });
  const stalled = () => {
    // Bytes waiting on our side mean the reader (sandboxd, say) is slow, not the client.
    if (limiter.readableLength > 0 || limiter.writableLength > 0) {
      idle?.refresh();
      return;
    }
    c.env.outgoing.once('finish', () => incoming.socket.destroy());
    limiter.destroy(
      new ServiceError('REQUEST_TIMEOUT', `the request body sent nothing for ${idleTimeoutMs} ms`, {
        idleTimeoutMs,
        receivedBytes: received,
      }),
    );
  };
  if (!incoming.complete) idle = setTimeout(stalled, idleTimeoutMs);
  incoming.on('end', () => clearTimeout(idle));
  incoming.on('error', (err) => limiter.destroy(err));
  incoming.on('close', () => {
    if (!incoming.complete) limiter.destroy(new Error('the client closed the request before its end'));
  });
  // Once the limiter is done with (refused, or the call failed first), the rest of the body is the
  // HTTP server's to drain, not stuck behind a stream nobody reads.
  limiter.once('close', () => {
    clearTimeout(idle);
    incoming.unpipe(limiter);
  });
  incoming.pipe(limiter);
  return limiter;
}

/**
 * What a route of the table takes, validated in order (path, query, body) before its handler runs:
 * a JSON body parsed with its schema, a raw body as a bounded stream (api/handlers/types.ts types
 * each route's input from the table).
 */
export async function readRouteInput(
  c: AppContext,
  route: RouteSpec,
  bodies: { json: JsonBodyLimits; upload: BodyLimits },
): Promise<RawRouteInput> {
  const params = route.params ? readParams(c, route.params, route.unknownParams) : {};
  const query = route.query ? validate(route.query, c.req.query(), 'query') : {};
  let body: unknown;
  if (route.body?.schema) body = await readJsonBody(c, route.body.schema, bodies.json);
  else if (route.body) body = uploadBody(c, bodies.upload);
  return { params, query, body };
}

/** A route's input before its own types are known. */
export interface RawRouteInput {
  params: unknown;
  query: unknown;
  body: unknown;
}

function readParams(c: AppContext, schema: z.ZodObject, unknown: RouteSpec['unknownParams']): unknown {
  const params = c.req.param();
  if (unknown === undefined) return validate(schema, params, 'path');
  const parsed = schema.safeParse(params);
  if (!parsed.success) throw unknown(params);
  return parsed.data;
}

function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
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
