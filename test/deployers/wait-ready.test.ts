import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxdNotReadyError, waitForSandboxd } from '../../server/src/deployers/wait-ready.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** Listens on a free loopback port; afterEach closes the server and drops its connections. */
async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (socket: Socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  return address.port;
}

/** A port that refuses connections: bound once, then closed. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  servers.splice(servers.indexOf(server), 1);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('waitForSandboxd', () => {
  it('keeps polling /healthz until it answers 2xx', async () => {
    const paths: string[] = [];
    const server = createHttpServer((req, res) => {
      paths.push(req.url ?? '');
      res.statusCode = paths.length < 4 ? 503 : 200;
      res.end();
    });
    const port = await listen(server);
    await waitForSandboxd({ host: '127.0.0.1', port }, { timeoutMs: 10_000 });
    expect(paths).toEqual(['/healthz', '/healthz', '/healthz', '/healthz']);
  });

  it('gives up with a typed timeout error saying what it last saw', async () => {
    const port = await closedPort();
    const error = await waitForSandboxd({ host: '127.0.0.1', port }, { timeoutMs: 200 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(SandboxdNotReadyError);
    expect(error).toMatchObject({ code: 'TIMEOUT', endpoint: { host: '127.0.0.1', port } });
    expect((error as Error).message).toMatch(
      new RegExp(`^sandboxd at 127.0.0.1:${port} was not ready within 200 ms \\(last: .*ECONNREFUSED`),
    );
  });

  it('does not let a connection that never answers eat the budget', async () => {
    const port = await listen(createTcpServer(() => undefined));
    const error = await waitForSandboxd({ host: '127.0.0.1', port }, { timeoutMs: 300 }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(SandboxdNotReadyError);
    expect((error as Error).message).toMatch(/\(last: no answer within \d+ ms\)$/);
  });

  it('stops when its signal aborts', async () => {
    const port = await closedPort();
    const controller = new AbortController();
    const waiting = waitForSandboxd(
      { host: '127.0.0.1', port },
      { timeoutMs: 60_000, signal: controller.signal },
    );
    controller.abort(new Error('caller gave up'));
    await expect(waiting).rejects.toThrow('caller gave up');
  });
});
