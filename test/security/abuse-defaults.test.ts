/**
 * The defaults refuse the abuse a server left on its defaults used to take: a client that stalls
 * its headers or its body holds a connection for seconds, not an hour; many large JSON bodies at
 * once are turned away (SERVER_BUSY, Retry-After) instead of growing the heap; a claimed sandbox has
 * a hard TTL and an acquire cannot ask for a longer one; pools cannot be resized past the instance
 * limit, which exists without MAX_SANDBOX_INSTANCES; and no route answers with a wildcard CORS
 * header. Raw sockets where the point is what the client does not send.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { containersOf, eventually } from '../../support/server-process.js';
import { testDeploymentId, withServer } from '../support/fixture.js';
import { bodyTextOf, RawClient, statusOf } from '../support/raw-http.js';

const DEPLOYMENT = testDeploymentId('rsbx-sec-defaults');
const TOKEN = 'abuse-defaults-token';
const IDLE_MS = 1000;
const MAX_JSON_BYTES = 1024 * 1024;
const JSON_BYTES_IN_FLIGHT = 2 * MAX_JSON_BYTES;
const DAY_SECONDS = 24 * 60 * 60;

describe('safe defaults against abusive clients', () => {
  const server = withServer('rsbx-sec-defaults', {
    env: {
      POOL_SIZE: '0',
      BEARER_TOKEN: TOKEN,
      HEADERS_TIMEOUT_MS: String(IDLE_MS),
      BODY_IDLE_TIMEOUT_MS: String(IDLE_MS),
      MAX_JSON_BYTES: String(MAX_JSON_BYTES),
      JSON_BYTES_IN_FLIGHT: String(JSON_BYTES_IN_FLIGHT),
    },
  });
  let port: number;

  beforeAll(() => {
    port = Number(new URL(server.url).port);
  });

  it('cuts off a client that never finishes its headers', async () => {
    const client = await RawClient.open(port);
    client.write(`POST /v1/sandboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n`);
    const answer = await client.closed();
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('cuts off a JSON body that stops arriving with 408 REQUEST_TIMEOUT, and creates nothing', async () => {
    const client = await RawClient.open(port);
    client.write(head('POST', '/v1/sandboxes', 1000));
    client.write('{"metadata":');
    const answer = await client.closed();
    expect(statusOf(answer)).toBe(408);
    expect(bodyOf(answer)).toMatchObject({ error: { code: 'REQUEST_TIMEOUT' } });
    expect(await containersOf(DEPLOYMENT)).toEqual([]);
  });

  it('cuts off an upload into a sandbox that stops arriving, and the sandbox keeps working', async () => {
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    const id = acquired.body.id;
    try {
      const client = await RawClient.open(port);
      client.write(
        head('PUT', `/v1/sandboxes/${id}/files?path=stalled.bin`, 1_000_000, 'application/octet-stream'),
      );
      client.write(Buffer.alloc(64 * 1024, 7));
      const answer = await client.closed();
      expect(statusOf(answer)).toBe(408);
      expect(bodyOf(answer)).toMatchObject({ error: { code: 'REQUEST_TIMEOUT' } });

      const exec = await server.call<{ exitCode: number; stdout: string }>(
        'POST',
        `/v1/sandboxes/${id}/exec`,
        {
          command: 'echo still here',
        },
      );
      expect(exec.body).toMatchObject({ exitCode: 0, stdout: 'still here\n' });
    } finally {
      await server.fetch(`/v1/sandboxes/${id}`, { method: 'DELETE' });
    }
  });

  it('answers SERVER_BUSY with Retry-After while the JSON bodies held would pass JSON_BYTES_IN_FLIGHT', async () => {
    // Two bodies of almost MAX_JSON_BYTES each, kept alive by a trickle, fill the budget.
    const size = MAX_JSON_BYTES - 1024;
    const held = await Promise.all([RawClient.open(port), RawClient.open(port)]);
    const firstPart = size - 16 * 1024;
    for (const client of held) {
      client.write(head('POST', '/v1/sandboxes/0123456789abcdef/exec', size));
      client.write(`{"command":"true","stdin":"${'a'.repeat(firstPart - 30)}`);
    }
    const trickle = setInterval(() => {
      for (const client of held) client.write('a');
    }, IDLE_MS / 4);
    try {
      await eventually('both held bodies to be in the budget', async () =>
        (await jsonBytesInFlight()) > 2 * (firstPart - 1024) ? true : undefined,
      );
      const third = await server.fetch('/v1/sandboxes/0123456789abcdef/exec', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command: 'true', stdin: 'b'.repeat(size - 64) }),
      });
      expect(third.status).toBe(503);
      expect(third.headers.get('retry-after')).toBe('1');
      expect(await third.json()).toMatchObject({ error: { code: 'SERVER_BUSY' } });
    } finally {
      clearInterval(trickle);
      for (const client of held) client.destroy();
    }
    // The held bytes go back once those requests end, and a large body is served again.
    await eventually('the held bytes to be given back', async () =>
      (await jsonBytesInFlight()) === 0 ? true : undefined,
    );
    const retried = await server.call('POST', '/v1/sandboxes/0123456789abcdef/exec', {
      command: 'true',
      stdin: 'c'.repeat(size - 64),
    });
    expect(retried.body).toMatchObject({ error: { code: 'SANDBOX_NOT_FOUND' } });
  });

  it('gives every claimed sandbox a hard TTL by default, and refuses an acquire asking for more', async () => {
    const acquired = await server.call<{ id: string; createdAt: string; expiresAt: string | null }>(
      'POST',
      '/v1/sandboxes',
      {},
    );
    expect(acquired.status).toBe(201);
    try {
      const { expiresAt } = acquired.body;
      expect(expiresAt).not.toBeNull();
      const lifetime = (Date.parse(expiresAt ?? '') - Date.now()) / 1000;
      expect(lifetime).toBeGreaterThan(DAY_SECONDS - 120);
      expect(lifetime).toBeLessThanOrEqual(DAY_SECONDS);
    } finally {
      await server.fetch(`/v1/sandboxes/${acquired.body.id}`, { method: 'DELETE' });
    }
    const tooLong = await server.call('POST', '/v1/sandboxes', { ttlSeconds: DAY_SECONDS + 1 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body).toMatchObject({
      error: { code: 'VALIDATION_ERROR', details: { maxTtlSeconds: DAY_SECONDS } },
    });
    expect(await containersOf(DEPLOYMENT)).toEqual([]);
  });

  it('has an instance limit without MAX_SANDBOX_INSTANCES, and no pool may be resized past it', async () => {
    const started = server.logs().find((line) => line.msg === 'sandbox manager started');
    const maxInstances = started?.maxInstances;
    expect(maxInstances).toBeTypeOf('number');
    expect(maxInstances).toBeGreaterThan(0);

    const resized = await server.call('PUT', '/v1/pools/base', { size: Number(maxInstances) + 1 });
    expect(resized.status).toBe(400);
    expect(resized.body).toMatchObject({
      error: { code: 'VALIDATION_ERROR', details: { maxPoolSize: maxInstances, maxInstances } },
    });
    const pools = await server.call<{ pools: Array<{ type: string; target: number }> }>('GET', '/v1/pools');
    expect(pools.body.pools.find((pool) => pool.type === 'base')?.target).toBe(0);
  });

  it('answers no route with a CORS grant, preflight included', async () => {
    const origin = 'https://agent-ui.example';
    const preflight = await server.fetch('/v1/sandboxes', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST' },
    });
    const listed = await server.fetch('/v1/sandboxes', { headers: { origin } });
    expect(listed.status).toBe(200);
    for (const answer of [preflight, listed]) {
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
      expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  async function jsonBytesInFlight(): Promise<number> {
    const text = await (await server.fetch('/metrics')).text();
    const line = text.split('\n').find((l) => l.startsWith('runtime_sandbox_json_bytes_in_flight '));
    return Number(line?.split(' ')[1]);
  }

  function head(method: string, path: string, length: number, type = 'application/json'): string {
    return [
      `${method} ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      `Authorization: Bearer ${TOKEN}`,
      `Content-Type: ${type}`,
      `Content-Length: ${length}`,
      '',
      '',
    ].join('\r\n');
  }
});

function bodyOf(answer: string): unknown {
  return JSON.parse(bodyTextOf(answer));
}
