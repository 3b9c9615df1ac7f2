/**
 * Every kind of bad input gets its 4xx and its stable code, never a 500, on each backend (Docker
 * containers, pods on the fake Kubernetes API server): auth, malformed and oversized bodies,
 * invalid fields, unknown ids, types and routes, paths climbing out of the workspace. Every error
 * answered at a route is one its operation declares in /v1/openapi.json. And the CLI refuses bad
 * settings with one line and exit code 2.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { eventually, runServerCli } from '../../support/server-process.js';
import { BACKENDS, withBackend } from '../support/backends.js';
import { withServer } from '../support/fixture.js';

const TOKEN = 'bad-input-test-token-abcdef0123';
const MAX_JSON_BYTES = 2048;
const MAX_UPLOAD_BYTES = 8192;

interface ErrorAnswer {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

interface OpenApiPaths {
  paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
}

/** Every error answered in this file, to be found declared at its operation. */
const answered: Array<{ method: string; path: string; status: number; code: string }> = [];
const methodOf = new WeakMap<Response, string>();

describe.each(BACKENDS)('bad input over HTTP on %s', (name) => {
  let sandboxId: string;
  const backend = withBackend(name);
  const server = withServer(`h5-test-bad-input-${name}`, {
    env: () => ({
      ...backend.settings(),
      POOL_SIZE: '1',
      BEARER_TOKEN: TOKEN,
      MAX_JSON_BYTES: String(MAX_JSON_BYTES),
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
    }),
    warm: 1,
  });

  beforeAll(async () => {
    const plainFetch = server.fetch.bind(server);
    server.fetch = async (path, init) => {
      const response = await plainFetch(path, init);
      methodOf.set(response, init?.method ?? 'GET');
      return response;
    };
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    sandboxId = acquired.body.id;
  });

  async function expectError(response: Response, status: number, code: string): Promise<ErrorAnswer> {
    const body = (await response.json()) as ErrorAnswer;
    expect({ status: response.status, code: body.error?.code }).toEqual({ status, code });
    expect(typeof body.error.message).toBe('string');
    const method = methodOf.get(response) ?? 'GET';
    answered.push({ method, path: new URL(response.url).pathname, status, code });
    return body;
  }

  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    server.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

  it('answers 401 without a token or with a wrong one, and keeps the probes open', async () => {
    for (const path of [
      '/v1/sandboxes',
      '/v1/pools',
      '/metrics',
      '/v1/openapi.json',
      `/v1/sandboxes/${sandboxId}`,
    ]) {
      await expectError(await server.fetch(path, { token: null }), 401, 'UNAUTHORIZED');
      await expectError(await server.fetch(path, { token: 'not-the-token' }), 401, 'UNAUTHORIZED');
      await expectError(await server.fetch(path, { token: `${TOKEN}x` }), 401, 'UNAUTHORIZED');
    }
    const basic = await server.fetch('/v1/pools', {
      token: null,
      headers: { authorization: `Basic ${TOKEN}` },
    });
    await expectError(basic, 401, 'UNAUTHORIZED');
    expect((await server.fetch('/healthz', { token: null })).status).toBe(200);
    expect((await server.fetch('/readyz', { token: null })).status).toBe(200);
    expect((await server.fetch('/v1/pools')).status).toBe(200);
  });

  it('refuses malformed, mistyped and oversized JSON bodies', async () => {
    await expectError(await post('/v1/sandboxes', '{"type": "base",'), 400, 'MALFORMED_JSON');
    await expectError(
      await post('/v1/sandboxes', '{}', { 'content-type': 'text/plain' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const big = JSON.stringify({ metadata: { blob: 'x'.repeat(MAX_JSON_BYTES) } });
    await expectError(await post('/v1/sandboxes', big), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(
      await post(
        `/v1/sandboxes/${sandboxId}/exec`,
        JSON.stringify({ command: 'true', stdin: 'y'.repeat(4 * MAX_JSON_BYTES) }),
      ),
      413,
      'PAYLOAD_TOO_LARGE',
    );
  });

  it('validates acquire fields', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ type: 'no-such-type' }, 404, 'SANDBOX_TYPE_NOT_FOUND'],
      [{ type: '../base' }, 400, 'VALIDATION_ERROR'],
      [{ env: { '1BAD': 'x' } }, 400, 'VALIDATION_ERROR'],
      [{ env: { 'WITH-DASH': 'x' } }, 400, 'VALIDATION_ERROR'],
      [{ env: { GOOD: 42 } }, 400, 'VALIDATION_ERROR'],
      [{ idleTimeoutSeconds: -1 }, 400, 'VALIDATION_ERROR'],
      [{ idleTimeoutSeconds: 0 }, 400, 'VALIDATION_ERROR'],
      [{ idleTimeoutSeconds: 1.5 }, 400, 'VALIDATION_ERROR'],
      [{ ttlSeconds: -5 }, 400, 'VALIDATION_ERROR'],
      [{ metadata: { k: 1 } }, 400, 'VALIDATION_ERROR'],
      [{ sessionId: '' }, 400, 'VALIDATION_ERROR'],
      [{ unexpected: true }, 400, 'VALIDATION_ERROR'],
      [[1, 2], 400, 'VALIDATION_ERROR'],
    ];
    for (const [body, status, code] of cases) {
      const answer = await expectError(await post('/v1/sandboxes', JSON.stringify(body)), status, code);
      if (code === 'VALIDATION_ERROR') expect(Array.isArray(answer.error.details?.issues)).toBe(true);
    }
    await expectError(
      await post(`/v1/sandboxes/${sandboxId}/keepalive`, JSON.stringify({ idleTimeoutSeconds: -3 })),
      400,
      'VALIDATION_ERROR',
    );
  });

  it('validates exec, file and pool requests before they reach the sandbox', async () => {
    const exec = (body: unknown) => post(`/v1/sandboxes/${sandboxId}/exec`, JSON.stringify(body));
    await expectError(await exec({}), 400, 'VALIDATION_ERROR');
    await expectError(await exec({ command: '' }), 400, 'VALIDATION_ERROR');
    await expectError(await exec({ command: 'true', timeoutMs: -1 }), 400, 'VALIDATION_ERROR');
    await expectError(await exec({ command: 'true', env: { 'A=B': 'c' } }), 400, 'VALIDATION_ERROR');
    await expectError(await server.fetch(`/v1/sandboxes/${sandboxId}/files`), 400, 'VALIDATION_ERROR');
    await expectError(
      await server.fetch(`/v1/sandboxes/${sandboxId}/files/list?path=.&depth=0`),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(
      await server.fetch(`/v1/sandboxes/${sandboxId}/files?path=a&mode=999`, { method: 'PUT', body: 'x' }),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(
      await post(`/v1/sandboxes/${sandboxId}/files/move`, JSON.stringify({ from: 'a' })),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(await server.fetch('/v1/sandboxes?status=sleeping'), 400, 'VALIDATION_ERROR');
    const resize = (type: string, body: unknown) =>
      server.fetch(`/v1/pools/${type}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    await expectError(await resize('base', { size: -1 }), 400, 'VALIDATION_ERROR');
    await expectError(await resize('base', {}), 400, 'VALIDATION_ERROR');
    await expectError(await resize('nope', { size: 1 }), 404, 'SANDBOX_TYPE_NOT_FOUND');
  });

  it('answers SANDBOX_NOT_FOUND for unknown ids on every sandbox route', async () => {
    for (const id of ['0123456789abcdef', 'not..an-id', 'x'.repeat(65)]) {
      const base = `/v1/sandboxes/${id}`;
      await expectError(await server.fetch(base), 404, 'SANDBOX_NOT_FOUND');
      await expectError(await server.fetch(base, { method: 'DELETE' }), 404, 'SANDBOX_NOT_FOUND');
      await expectError(await post(`${base}/keepalive`, '{}'), 404, 'SANDBOX_NOT_FOUND');
      await expectError(await post(`${base}/exec`, '{"command":"id"}'), 404, 'SANDBOX_NOT_FOUND');
      await expectError(await server.fetch(`${base}/files?path=a`), 404, 'SANDBOX_NOT_FOUND');
      await expectError(
        await server.fetch(`${base}/files?path=a`, { method: 'PUT', body: 'x' }),
        404,
        'SANDBOX_NOT_FOUND',
      );
      await expectError(await server.fetch(`${base}/archive?path=.`), 404, 'SANDBOX_NOT_FOUND');
    }
  });

  it('keeps every path inside the workspace', async () => {
    const base = `/v1/sandboxes/${sandboxId}`;
    for (const path of ['../../etc/passwd', '/etc/passwd', 'a/../../..']) {
      const query = `path=${encodeURIComponent(path)}`;
      await expectError(await server.fetch(`${base}/files?${query}`), 403, 'PATH_OUTSIDE_WORKSPACE');
      await expectError(
        await server.fetch(`${base}/files?${query}`, { method: 'PUT', body: 'pwned' }),
        403,
        'PATH_OUTSIDE_WORKSPACE',
      );
    }
    await post(`${base}/exec`, JSON.stringify({ command: 'ln -s /etc escape' }));
    await expectError(await server.fetch(`${base}/files?path=escape/passwd`), 403, 'PATH_OUTSIDE_WORKSPACE');
    await expectError(await server.fetch(`${base}/archive?path=..`), 403, 'PATH_OUTSIDE_WORKSPACE');
  });

  it('refuses uploads over MAX_UPLOAD_BYTES, declared or streamed', async () => {
    const base = `/v1/sandboxes/${sandboxId}`;
    const oversized = Buffer.alloc(MAX_UPLOAD_BYTES + 1, 1);
    await expectError(
      await server.fetch(`${base}/files?path=big.bin`, { method: 'PUT', body: oversized }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    // No Content-Length: the limit is enforced while the body streams through.
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(MAX_UPLOAD_BYTES / 2));
        controller.close();
      },
    });
    await expectError(
      await server.fetch(`${base}/files?path=big.bin`, {
        method: 'PUT',
        body: streamed,
        duplex: 'half',
      } as RequestInit),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    const missing = await server.fetch(`${base}/files/stat?path=big.bin`);
    await expectError(missing, 404, 'FILE_NOT_FOUND');
    const fits = await server.fetch(`${base}/files?path=small.bin`, {
      method: 'PUT',
      body: Buffer.alloc(MAX_UPLOAD_BYTES),
    });
    expect(fits.status).toBe(200);
  });

  it('answers unknown routes and methods with ROUTE_NOT_FOUND and METHOD_NOT_ALLOWED', async () => {
    await expectError(await server.fetch('/v2/sandboxes'), 404, 'ROUTE_NOT_FOUND');
    await expectError(await server.fetch('/v1/sandboxes/x/y/z'), 404, 'ROUTE_NOT_FOUND');
    const patch = await server.fetch('/v1/sandboxes', { method: 'PATCH' });
    await expectError(patch, 405, 'METHOD_NOT_ALLOWED');
    expect(patch.headers.get('allow')).toBe('POST, GET');
  });

  it('echoes a request id, or makes one', async () => {
    const given = await server.fetch('/v1/pools', { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-abc-123');
    const made = await server.fetch('/v1/pools', { headers: { 'x-request-id': 'bad id with spaces' } });
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    // The access log line is written once the answer is out, so it may reach us just after it.
    const logged = await eventually('the request in the access log', async () =>
      server.logs().find((line) => line.reqId === 'trace-abc-123' && line.msg === 'request'),
    );
    expect(logged).toMatchObject({ method: 'GET', path: '/v1/pools', status: 200 });
  });

  it('declared every error it answered at that operation in /v1/openapi.json', async () => {
    const document = (await (await server.fetch('/v1/openapi.json')).json()) as OpenApiPaths;
    const operations = Object.entries(document.paths).map(([template, methods]) => ({
      pattern: new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`),
      methods,
    }));
    const undeclared = answered.filter(({ method, path, status, code }) => {
      const operation = operations.find((o) => o.pattern.test(path))?.methods[method.toLowerCase()];
      // No such route, or not with this method: ROUTE_NOT_FOUND and METHOD_NOT_ALLOWED are no operation's.
      if (operation === undefined) return !['ROUTE_NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(code);
      return !operation.responses[status]?.description.includes(`\`${code}\``);
    });
    expect(answered.length).toBeGreaterThan(50);
    expect(undeclared).toEqual([]);
  });
});

describe('bad settings at start', () => {
  const env = { CONTAINER_PREFIX_KEY: 'h5-test-bad-cli', PORT: '0' };

  it('exits 2 with one line naming the setting', async () => {
    for (const [extra, needle] of [
      [{ PORT: 'eighty' }, 'PORT'],
      [{ HOST: '0.0.0.0' }, 'BEARER_TOKEN'],
      [{ PORT_RANGE: '[9,1]' }, 'PORT_RANGE'],
      [{ DEFAULT_SANDBOX_TYPE: 'no-such-type' }, 'no-such-type'],
    ] as const) {
      const run = await runServerCli([], { ...env, ...extra });
      expect(run.code).toBe(2);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^runtime-sandbox-server: /);
      expect(lines[0]).toContain(needle);
    }
  });

  it('exits 2 on a bad command line or a missing config file, 0 on --help', async () => {
    expect((await runServerCli(['--no-such-flag'], env)).code).toBe(2);
    expect((await runServerCli(['--config', '/nonexistent/settings.env'], env)).code).toBe(2);
    expect((await runServerCli(['--extension', '/nonexistent/ext.ts'], env)).code).toBe(2);
    const help = await runServerCli(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--extension MODULE');
  });
});
