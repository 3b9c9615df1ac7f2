/**
 * sandboxd's answer as ours: status and content headers kept, the body streamed through untouched.
 * When the caller hangs up, Hono cancels the stream, which destroys the upstream response and its
 * socket, so sandboxd sees the close (and kills a running exec).
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { discard, passableHeaders } from '../manager/sandboxd-client.js';

export function relay(upstream: IncomingMessage): Response {
  const status = upstream.statusCode ?? 200;
  const headers = passableHeaders(upstream.headers);
  if (status === 204 || status === 304) {
    discard(upstream);
    return new Response(null, { status, headers });
  }
  // Node's web stream type and the DOM lib's are the same object under two declarations.
  const body = Readable.toWeb(upstream) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}
