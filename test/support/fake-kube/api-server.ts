/**
 * The HTTP side: plain HTTP or HTTPS on 127.0.0.1, bearer-token auth on every request, a route table of
 * path patterns, JSON answers, every error a Status, and a log of what was asked. It can go away
 * and come back on the same port (an apiserver restart as clients see it) with the state kept.
 * No upgrades (WebSocket): Node drops such connections.
 */
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  ApiError,
  methodNotAllowed,
  requestTooLarge,
  resourceNotFound,
  type Status,
  unauthorized,
} from './api-status.js';
import { type Authorization, authorize, requestAttributes } from './authorization.js';

/** The apiserver's request body limit (3 MiB). */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The `:name` parts of the matched pattern, and `*` for the rest of the path after a trailing `/*`. */
  params: Readonly<Record<string, string>>;
  /** The body, or undefined when there is none. */
  body(): Promise<Buffer | undefined>;
  raw: IncomingMessage;
  res: ServerResponse;
}

/** What a handler answers: a JSON object, plain text, or "handled" when it wrote the response itself. */
export type ApiAnswer = { status: number; json: unknown } | { status: number; text: string } | 'handled';

export type Handler = (request: ApiRequest) => Promise<ApiAnswer> | ApiAnswer;

export interface Route {
  method: string;
  /** `/api/v1/namespaces/:namespace/pods/:name`; a trailing `/*` matches the rest of the path. */
  pattern: string;
  handler: Handler;
}

/** A path segment decoded; a malformed escape is matched as written. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function matchPattern(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/').filter(Boolean);
  const got = path.split('/').filter(Boolean);
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i += 1) {
    const part = want[i] ?? '';
    if (part === '*') {
      params['*'] = got.slice(i).join('/') + (path.endsWith('/') && got.length > i ? '/' : '');
      return params;
    }
    const value = got[i];
    if (value === undefined) return undefined;
    if (part.startsWith(':')) params[part.slice(1)] = decodeSegment(value);
    else if (part !== value) return undefined;
  }
  return got.length === want.length ? params : undefined;
}

export function writeStatus(res: ServerResponse, status: Status): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status.code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(status));
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(requestTooLarge(MAX_BODY_BYTES));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(size === 0 ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export class ApiServer {
  readonly requests: RecordedRequest[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private boundPort = 0;

  constructor(
    private readonly routes: readonly Route[],
    private readonly token: string,
    /** Open watch responses (the watch handlers add theirs), ended by dropWatches() and close(). */
    readonly openWatches: Set<ServerResponse>,
    /** The server's certificate and key (PEM), for HTTPS; none: plain HTTP. */
    private readonly tls?: { cert: string; key: string },
    /** RBAC for the token's user; undefined: it may do everything. */
    private readonly authorization?: Authorization,
  ) {}

  get port(): number {
    return this.boundPort;
  }

  /** Listens on 127.0.0.1, on a free port the first time and on the same one after goDown(). */
  async listen(): Promise<void> {
    if (this.server !== undefined) return;
    const listener: RequestListener = (req, res) => {
      this.serve(req, res).catch((error: unknown) => {
        writeStatus(res, internalError(error));
      });
    };
    const server: Server =
      this.tls === undefined ? createServer(listener) : createHttpsServer(this.tls, listener);
    // Raw TCP connections (under TLS too), so that close() can cut every one.
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every connection, open watches included. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.openWatches.clear();
    await closed;
  }

  /** Ends every open watch cleanly (the end of the chunked response), as an apiserver shutting down does. */
  dropWatches(): void {
    for (const res of [...this.openWatches]) res.end();
    this.openWatches.clear();
  }

  private record(method: string, url: URL): void {
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^bearer\s+(.+)$/i.exec(header.trim());
    return match?.[1] === this.token;
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-kube');
    const method = req.method ?? 'GET';
    this.record(method, url);
    if (!this.authorized(req)) {
      req.resume();
      writeStatus(res, unauthorized().status);
      return;
    }
    const attributes = requestAttributes(method, url.pathname, url.searchParams);
    if (this.authorization !== undefined && attributes !== undefined) {
      try {
        authorize(this.authorization, attributes);
      } catch (error) {
        req.resume();
        writeStatus(res, error instanceof ApiError ? error.status : internalError(error));
        return;
      }
    }
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchPattern(route.pattern, url.pathname);
      if (params === undefined) continue;
      pathMatched = true;
      if (route.method !== '*' && route.method !== method) continue;
      try {
        const answer = await route.handler({
          method,
          path: url.pathname,
          query: url.searchParams,
          params,
          body: () => readBody(req),
          raw: req,
          res,
        });
        if (answer === 'handled') return;
        if ('json' in answer) {
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(answer.json));
        } else {
          res.writeHead(answer.status, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(answer.text);
        }
      } catch (error) {
        req.resume();
        writeStatus(res, error instanceof ApiError ? error.status : internalError(error));
      }
      return;
    }
    req.resume();
    writeStatus(res, (pathMatched ? methodNotAllowed() : resourceNotFound()).status);
  }
}

function internalError(error: unknown): Status {
  const message = error instanceof Error ? error.message : String(error);
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ reason: '', message, field: '' }] },
    code: 500,
  };
}
