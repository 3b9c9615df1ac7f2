/**
 * HTTP over a bare socket, for tests whose point is exactly what the client sends (or does not
 * send): no header is added that the test did not write, and nothing is retried or pooled.
 */
import { connect, type Socket } from 'node:net';

/** Longer than any server timeout under test: a wait past it means the server never closed. */
const CLOSE_WITHIN_MS = 15_000;

/** A client on a bare socket: it sends exactly what it is told, and collects what comes back. */
export class RawClient {
  private received = '';
  private readonly ended: Promise<string>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('utf8');
    });
    this.ended = new Promise((resolve) => socket.once('close', () => resolve(this.received)));
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Everything the server sent, once it closed the connection; fails if it never does. */
  async closed(): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const never = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the server kept the connection open; it sent: ${this.received}`)),
        CLOSE_WITHIN_MS,
      );
    });
    try {
      return await Promise.race([this.ended, never]);
    } finally {
      clearTimeout(timer);
      this.socket.destroy();
    }
  }
}

/** The status code of a raw answer. */
export function statusOf(answer: string): number {
  return Number(answer.match(/^HTTP\/1\.1 (\d{3}) /)?.[1]);
}

/** The body of a raw answer, de-chunked when the server sent it chunked. */
export function bodyTextOf(answer: string): string {
  const split = answer.indexOf('\r\n\r\n');
  const head = answer.slice(0, split);
  let body = answer.slice(split + 4);
  if (!/^transfer-encoding:\s*chunked/im.test(head)) return body;
  let text = '';
  for (;;) {
    const lineEnd = body.indexOf('\r\n');
    const size = Number.parseInt(body.slice(0, lineEnd), 16);
    if (!(size > 0)) return text;
    text += body.slice(lineEnd + 2, lineEnd + 2 + size);
    body = body.slice(lineEnd + 2 + size + 2);
  }
}

/**
 * One request with exactly `headers` (plus Content-Length for a body, and Connection: close so
 * the answer ends with the connection), read to the end.
 */
export async function rawRequest(
  port: number,
  request: { method: string; path: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  const client = await RawClient.open(port);
  const lines = [`${request.method} ${request.path} HTTP/1.1`];
  for (const [name, value] of Object.entries(request.headers)) lines.push(`${name}: ${value}`);
  if (request.body !== undefined) lines.push(`content-length: ${Buffer.byteLength(request.body)}`);
  lines.push('connection: close', '', request.body ?? '');
  client.write(lines.join('\r\n'));
  const answer = await client.closed();
  return { status: statusOf(answer), body: bodyTextOf(answer) };
}
