/**
 * sandboxd's answer as ours: status and the passable headers kept, the body streamed through
 * untouched. When the caller hangs up, Hono cancels the stream, which destroys the upstream
 * response and its socket, so sandboxd sees the close (and kills a running exec).
 */
import { Readable } from 'node:stream';
import type { CallScope, SandboxdAnswer } from '../manager/data-plane.js';
import type { AppContext } from './context.js';

export function relay({ status, headers, body }: SandboxdAnswer): Response {
  // Node's web stream type and the DOM lib's are the same object under two declarations.
  const stream = body === null ? null : (Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>);
  return new Response(stream, { status, headers });
}

/** The caller, and the connection's signal: a caller hanging up ends the sandboxd call. */
export function callScope(c: AppContext): CallScope {
  return { caller: c.get('caller'), signal: c.req.raw.signal };
}
