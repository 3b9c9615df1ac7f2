/**
 * The HTTP plumbing: a tiny exact-path router, bodies read with size limits, query and JSON
 * validation with zod, and JSON and error answers. Plain node:http because every exec goes through
 * here and a framework's per-request cost would show in the round trip.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { TokenGate } from '@runtime-sandbox/contract/token-gate';
import type { z } from 'zod';
import { isErrno, SandboxdError, toSandboxdError } from './errors.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export interface Route {
  /** Whether the current bearer token is required. */
  auth: boolean;
  methods: Partial<Record<string, Handler>>;
}

/** How much of a refused body is read and dropped so the client can read the answer; then the socket goes. */
const DISCARD_LIMIT_BYTES = 16 * 1024 * 1024;

export function createRequestListener(routes: ReadonlyMap<string, Route>, gate: TokenGate): RequestListener {
  const dispatch = (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://sandboxd');
    } catch {
      throw new SandboxdError('VALIDATION_ERROR', 'The request target is not a valid URL');
    }
    const route = routes.get(url.pathname) ?? routes.get(wildcardOf(url.pathname));
    if (!route) throw new SandboxdError('ROUTE_NOT_FOUND', `No route ${url.pathname}`);
    if (route.auth && !gate.admitsRequest(req.headers)) {
      throw new SandboxdError('UNAUTHORIZED', 'Missing or wrong bearer token');
    }
    const handle = route.methods[req.method ?? ''] ?? methodNotAllowed(route);
    return handle(req, res, url);
  };
  return (req, res) => {
    // A synchronous throw and a rejection end the same way: as an error answer, never a crash.
    new Promise<void>((resolve) => resolve(dispatch(req, res))).catch((err: unknown) =>
      sendError(req, res, err),
    );
  };
}

/**
 * The wildcard key a path falls back to, its last component replaced: `/tools/x` -> `/tools/*`.
 * The handler reads that component from the URL (lastComponent).
 */
function wildcardOf(pathname: string): string {
  return `${pathname.slice(0, pathname.lastIndexOf('/'))}/*`;
}

/** The decoded last component of the request path, for a wildcard route; VALIDATION_ERROR if it is badly encoded. */
export function lastComponent(url: URL): string {
  try {
    return decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  } catch {
    throw new SandboxdError('VALIDATION_ERROR', 'The request path is not valid percent-encoding');
  }
}

/** Aborted when the client hangs up before the answer is complete, so the work for it can stop. */
export function hangUpSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}

function methodNotAllowed(route: Route): Handler {
  const allowed = Object.keys(route.methods);
  return async (req, res) => {
    res.setHeader('allow', allowed.join(', '));
    throw new SandboxdError('METHOD_NOT_ALLOWED', `${req.method} is not allowed here`, { allowed });
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A client that hung up mid-answer: nothing to answer, nothing to log. */
const CLIENT_GONE = ['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE'];

/** Answers `err` as a JSON error body; unknown faults become a bare 500 and go to the log. */
export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const known = toSandboxdError(err);
  if (!known && !isErrno(err, ...CLIENT_GONE))
    console.error(`sandboxd: ${req.method} ${pathOf(req)} failed:`, err);
  if (res.headersSent) {
    // Too late for a status: cutting the stream short is how the client learns it is incomplete.
    res.destroy();
    return;
  }
  const error = known ?? new SandboxdError('INTERNAL_ERROR', 'sandboxd failed to serve the request');
  discardUnreadBody(req);
  sendJson(res, error.status, error.toBody());
}

/** The request path for the log, without its query (which may hold file names). */
function pathOf(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0] ?? '';
}

/** Lets the rest of a refused body drain (up to a limit) so that the error answer reaches the client. */
function discardUnreadBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  let dropped = 0;
  req.unpipe();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_LIMIT_BYTES) req.socket.destroy();
  });
  req.resume();
}

export function payloadTooLarge(limit: number): SandboxdError {
  return new SandboxdError('PAYLOAD_TOO_LARGE', `The body is over the limit of ${limit} bytes`, {
    limitBytes: limit,
  });
}

/** A pass-through that fails with PAYLOAD_TOO_LARGE once more than `limit` bytes went through. */
export function byteLimit(limit: number): Transform {
  let passed = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      passed += chunk.length;
      if (passed > limit) done(payloadTooLarge(limit));
      else done(null, chunk);
    },
  });
}

/**
 * The request body as a stream that fails with PAYLOAD_TOO_LARGE past `limit` bytes. Piped, not
 * pipelined, from the request: an error downstream must not destroy the socket before the answer.
 */
export function requestBody(req: IncomingMessage, limit: number): Transform {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw payloadTooLarge(limit);
  const limiter = byteLimit(limit);
  // Whoever reads the body sees its errors; a body nobody reads yet must not crash the daemon.
  limiter.on('error', () => {});
  req.on('error', (err) => limiter.destroy(err));
  req.on('close', () => {
    if (!req.complete) limiter.destroy(new Error('the client closed the request before its end'));
  });
  req.pipe(limiter);
  return limiter;
}

/** The JSON body, parsed and validated; MALFORMED_JSON or VALIDATION_ERROR otherwise. */
export async function readJson<S extends z.ZodType>(
  req: IncomingMessage,
  limit: number,
  schema: S,
): Promise<z.output<S>> {
  const chunks: Buffer[] = [];
  for await (const chunk of requestBody(req, limit)) chunks.push(chunk as Buffer);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new SandboxdError('MALFORMED_JSON', 'The request body is not valid JSON');
  }
  return validate(schema, parsed, 'body');
}

/** The query string, validated (the first value of each repeated key counts). */
export function readQuery<S extends z.ZodType>(url: URL, schema: S): z.output<S> {
  const query = new Map<string, string>();
  for (const [key, value] of url.searchParams) if (!query.has(key)) query.set(key, value);
  return validate(schema, Object.fromEntries(query), 'query');
}

function validate<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new SandboxdError('VALIDATION_ERROR', `The request ${where} is not valid`, {
    issues: result.error.issues,
  });
}
