/**
 * With auth off (the quick start: loopback, no BEARER_TOKEN), a web page the user happens to open
 * must not drive the API: not through DNS rebinding (the browser sends the attacker's name as
 * Host), nor through a cross-site request (the browser sends the page's Origin, and may send an
 * untyped body without asking first). Raw HTTP over a socket, so the headers are exactly these.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { containersOf } from '../../support/server-process.js';
import { testDeploymentId, withServer } from '../support/fixture.js';
import { rawRequest } from '../support/raw-http.js';

const DEPLOYMENT = testDeploymentId('rsbx-sec-loopback');

describe('auth off serves loopback clients only', () => {
  const server = withServer('rsbx-sec-loopback', { env: { POOL_SIZE: '0' } });
  let port: number;

  beforeAll(() => {
    port = Number(new URL(server.url).port);
  });

  it.each<{ name: string; headers: Record<string, string> }>([
    { name: 'a rebound name as Host', headers: { host: 'attacker.example:8000' } },
    { name: 'a private address as Host', headers: { host: '192.168.1.10:8000' } },
    { name: 'a foreign Origin', headers: { host: '127.0.0.1', origin: 'http://attacker.example' } },
    { name: 'a null Origin (sandboxed iframe)', headers: { host: '127.0.0.1', origin: 'null' } },
  ])('refuses $name with 403 CROSS_ORIGIN_REFUSED and creates nothing', async ({ headers }) => {
    const answer = await post('/v1/sandboxes', '{}', { 'content-type': 'application/json', ...headers });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'CROSS_ORIGIN_REFUSED' } });
    expect(await containersOf(DEPLOYMENT)).toEqual([]);
  });

  it('refuses a JSON body that does not say it is JSON (what a cross-site form or fetch can send)', async () => {
    const answer = await post('/v1/sandboxes', '{}', { host: `127.0.0.1:${port}` });
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    expect(await containersOf(DEPLOYMENT)).toEqual([]);
  });

  it.each([`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`])(
    'serves Host %s with a loopback Origin',
    async (host) => {
      const answer = await get('/v1/sandbox-types', {
        host: host.replace('PORT', String(port)),
        origin: `http://localhost:${port}`,
      });
      expect(answer.status).toBe(200);
    },
  );

  function post(path: string, body: string, headers: Record<string, string>) {
    return send('POST', path, headers, body);
  }

  function get(path: string, headers: Record<string, string>) {
    return send('GET', path, headers);
  }

  function send(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; body: string }> {
    return rawRequest(port, { method, path, headers, body });
  }
});
