/**
 * The HTTP layer on its own, over real sockets: a loopback HTTP server in this file answers what
 * each case needs (errors of every code, 503s, silence, refused connections), which a real
 * runtime-sandbox server cannot be made to do on demand.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuthError,
  CapacityError,
  ERROR_CLASS_BY_CODE,
  ERROR_CODES,
  type ErrorCode,
  NotFoundError,
  parseNdjson,
  SandboxClient,
  SandboxError,
  TimeoutError,
  UpstreamError,
  ValidationError,
} from '../src/index.js';

type Responder = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

let server: Server;
let baseUrl: string;
let responders: Responder[] = [];
let seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const respond = responders.shift();
      if (respond) respond(req, res, body);
      else json(res, 500, { error: { code: 'INTERNAL_ERROR', message: 'the test gave no answer' } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  responders = [];
  seen = [];
});

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function client(options: { retries?: number; timeoutMs?: number } = {}): SandboxClient {
  return new SandboxClient({ baseUrl, token: 'secret-token', ...options });
}

describe('error mapping', () => {
  it('throws the class of the code list for every code, with status, details and request id', async () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    for (const code of codes) {
      responders.push((_req, res) =>
        json(
          res,
          ERROR_CODES[code].status,
          { error: { code, message: `about ${code}`, details: { code } } },
          { 'x-request-id': `req-${code}` },
        ),
      );
      const error = await client({ retries: 0 })
        .connect('sbx-1')
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ERROR_CLASS_BY_CODE[code]);
      expect(error).toMatchObject({
        code,
        status: ERROR_CODES[code].status,
        message: `about ${code}`,
        details: { code },
        requestId: `req-${code}`,
      });
    }
  });

  it("carries a 429's Retry-After as retryAfterSeconds (null without one)", async () => {
    const limited = { error: { code: 'TENANT_LIMIT_EXCEEDED', message: 'slow down' } };
    responders.push((_req, res) => json(res, 429, limited, { 'retry-after': '17' }));
    const error = await client({ retries: 0 })
      .types()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CapacityError);
    expect(error).toMatchObject({ code: 'TENANT_LIMIT_EXCEEDED', status: 429, retryAfterSeconds: 17 });

    responders.push((_req, res) => json(res, 429, limited));
    const bare = await client({ retries: 0 })
      .types()
      .catch((e: unknown) => e);
    expect(bare).toMatchObject({ code: 'TENANT_LIMIT_EXCEEDED', retryAfterSeconds: null });
  });

  it('sends the bearer token, and maps a 401 to AuthError', async () => {
    responders.push((_req, res) => json(res, 401, { error: { code: 'UNAUTHORIZED', message: 'no' } }));
    await expect(client().types()).rejects.toBeInstanceOf(AuthError);
    expect(seen[0]?.headers.authorization).toBe('Bearer secret-token');
  });

  it('derives a class from the status when the body is not an error body', async () => {
    responders.push((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    const upstream = await client({ retries: 0 })
      .types()
      .catch((e: unknown) => e);
    expect(upstream).toBeInstanceOf(UpstreamError);
    expect(upstream).toMatchObject({ code: 'UPSTREAM_ERROR', status: 502 });

    responders.push((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    const missing = await client()
      .types()
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ code: 'ROUTE_NOT_FOUND', status: 404 });

    responders.push((_req, res) => json(res, 400, { error: { code: 'NOT_A_REAL_CODE', message: 'x' } }));
    const odd = await client()
      .types()
      .catch((e: unknown) => e);
    expect(odd).toBeInstanceOf(ValidationError);
  });
});

describe('retries', () => {
  it('repeats a GET after 503s and returns the answer that finally came', async () => {
    const unavailable: Responder = (_req, res) =>
      json(res, 503, { error: { code: 'SHUTTING_DOWN', message: 'busy' } });
    responders.push(unavailable, unavailable, (_req, res) => json(res, 200, { types: [] }));
    await expect(client({ retries: 3 }).types()).resolves.toEqual([]);
    expect(seen).toHaveLength(3);
  });

  it('gives up after `retries` extra attempts with the last error', async () => {
    const unavailable: Responder = (_req, res) =>
      json(res, 503, { error: { code: 'STATE_STORE_UNAVAILABLE', message: 'redis down' } });
    responders.push(unavailable, unavailable, unavailable);
    const error = await client({ retries: 1 })
      .types()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'STATE_STORE_UNAVAILABLE', status: 503 });
    expect(seen).toHaveLength(2);
  });

  it('never repeats a create', async () => {
    responders.push((_req, res) => json(res, 503, { error: { code: 'SHUTTING_DOWN', message: 'busy' } }));
    await expect(client({ retries: 5 }).create({ type: 'base' })).rejects.toBeInstanceOf(UpstreamError);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.method).toBe('POST');
    expect(JSON.parse(seen[0]?.body.toString() ?? '')).toEqual({ type: 'base' });
  });

  it('does not repeat a 502', async () => {
    responders.push((_req, res) =>
      json(res, 502, { error: { code: 'UPSTREAM_ERROR', message: 'sandboxd gone' } }),
    );
    await expect(client({ retries: 5 }).types()).rejects.toBeInstanceOf(UpstreamError);
    expect(seen).toHaveLength(1);
  });

  it('reports a refused connection as UpstreamError with no status', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await new SandboxClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 2 })
      .types()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR', status: null });
    expect((error as Error).message).toContain('ECONNREFUSED');
  });
});

describe('deadlines', () => {
  it('throws TimeoutError when the answer does not come in time', async () => {
    responders.push(() => {
      // Never answers.
    });
    const error = await client({ timeoutMs: 300 })
      .types()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', status: null });
  });

  it('passes the caller abort reason through unchanged', async () => {
    responders.push(() => {
      // Never answers.
    });
    const controller = new AbortController();
    const pending = client().types({ signal: controller.signal });
    controller.abort(new Error('caller changed its mind'));
    await expect(pending).rejects.toThrow('caller changed its mind');
  });
});

describe('parseNdjson', () => {
  it('splits lines across chunk boundaries, multi-byte characters included', async () => {
    const text = '{"type":"stdout","data":"h\u00e9llo \u2603"}\n\n{"type":"exit","exitCode":0}';
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        // One byte per chunk: every character and line boundary is split.
        for (const byte of bytes) controller.enqueue(Uint8Array.of(byte));
        controller.close();
      },
    });
    const values: unknown[] = [];
    for await (const value of parseNdjson(stream)) values.push(value);
    expect(values).toEqual([
      { type: 'stdout', data: 'h\u00e9llo \u2603' },
      { type: 'exit', exitCode: 0 },
    ]);
  });

  it('fails with UpstreamError on a line that is not JSON', async () => {
    const stream = new Blob(['{"ok":1}\nnot json\n']).stream();
    const values: unknown[] = [];
    const error = await (async () => {
      for await (const value of parseNdjson(stream)) values.push(value);
    })().catch((e: unknown) => e);
    expect(values).toEqual([{ ok: 1 }]);
    expect(error).toBeInstanceOf(SandboxError);
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR' });
  });
});
