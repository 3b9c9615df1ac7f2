/** Data-plane handlers share this: the call goes to the sandbox's sandboxd, tied to the caller's connection. */
import type { IncomingMessage } from 'node:http';
import type { SandboxManager } from '../../manager/sandbox-manager.js';
import type { UpstreamRequest } from '../../manager/sandboxd-client.js';
import type { AppContext } from '../context.js';

/** Forwards; a streamed body not taken because the call failed first is destroyed, not left hanging. */
export async function forward(
  c: AppContext,
  manager: SandboxManager,
  id: string,
  request: Omit<UpstreamRequest, 'signal'>,
): Promise<IncomingMessage> {
  try {
    return await manager.call(id, c.get('caller'), { ...request, signal: c.req.raw.signal });
  } catch (err) {
    if (request.body !== undefined && !Buffer.isBuffer(request.body)) request.body.destroy();
    throw err;
  }
}

export function jsonRequestBody(value: unknown): Pick<UpstreamRequest, 'headers' | 'body'> {
  return { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(value)) };
}
