/**
 * Talks HTTP to the sandboxd inside each sandbox: the /init that binds a claimed sandbox to its
 * caller, and the streaming forward of data-plane calls (exec, files, archive). Each sandbox gets
 * its own keep-alive agent, dropped when the sandbox goes, so a socket to a destroyed sandbox is
 * never reused for a new one that got the same host port. A sandbox another worker destroys is not
 * forgotten here, so agents left unused for a while are swept as well. A sandbox behind the
 * deployer's proxy (an endpoint with `proxyPath`) gets an HTTPS agent with the proxy's TLS
 * settings, taken when the agent is made; the proxy's credentials are asked for on every request.
 */
import type { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { type InitRequest, parseErrorBody } from '@runtime-sandbox/contract';
import type { Endpoint, ProxyTransport, ProxyTransportSource } from '../deployers/deployer.js';
import { agentFor, requestEndpoint, transportFor } from '../deployers/endpoint-request.js';
import { describeCodedError, messageOf, ServiceError } from '../errors.js';

export interface SandboxdTarget {
  sandboxId: string;
  endpoint: Endpoint;
  token: string;
}

export interface UpstreamRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** sandboxd path, e.g. `/files/list`. */
  path: string;
  query?: URLSearchParams;
  headers?: Record<string, string>;
  /** A buffered body can be sent again if a reused keep-alive socket turns out dead; a stream cannot. */
  body?: Buffer | Readable;
  /** Aborting destroys the upstream request, which tells sandboxd to stop (an exec is killed). */
  signal?: AbortSignal;
}

/** sandboxd closes idle connections after 5 s (Node's default); ours let go sooner to avoid that race. */
const FREE_SOCKET_TIMEOUT_MS = 4000;
/** Binding must not hang on a frozen container: the acquire moves on to another sandbox. */
const INIT_TIMEOUT_MS = 10_000;
/** Error bodies from sandboxd are small JSON; anything bigger is not one. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export class SandboxdClient {
  private readonly agents = new Map<string, { agent: Agent; lastUsed: number }>();
  private readonly proxyTransport: ProxyTransportSource | undefined;

  /** `proxyTransport`: the deployer's, for endpoints behind its proxy. */
  constructor(options: { proxyTransport?: ProxyTransportSource } = {}) {
    this.proxyTransport = options.proxyTransport;
  }

  /** Replaces the boot token with the caller's and sets the caller's env (POST /init). */
  async init(target: SandboxdTarget, body: InitRequest): Promise<void> {
    const response = await this.forward(target, {
      method: 'POST',
      path: '/init',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
      signal: AbortSignal.timeout(INIT_TIMEOUT_MS),
    });
    discard(response);
  }

  /**
   * Runs `true` once, so the sandbox's first real exec after a claim does not pay for sandboxd's
   * cold code paths (about half of a first exec's time). Only for pool sandboxes, before /init.
   */
  async warmUp(target: SandboxdTarget): Promise<void> {
    const response = await this.forward(target, {
      method: 'POST',
      path: '/exec',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ command: ['true'] })),
      signal: AbortSignal.timeout(INIT_TIMEOUT_MS),
    });
    discard(response);
  }

  /**
   * Sends a request and resolves with sandboxd's answer once its headers arrive, the body still
   * streaming. Error answers become ServiceErrors: sandboxd's 4xx keep their code (a caller's bad
   * path stays a 4xx); a 401 (our token is stale), a 5xx or an unreadable answer is UPSTREAM_ERROR.
   */
  async forward(target: SandboxdTarget, upstream: UpstreamRequest): Promise<IncomingMessage> {
    let response: IncomingMessage;
    try {
      response = await this.send(target, upstream);
    } catch (err) {
      throw asUpstreamError(err, target);
    }
    if (response.statusCode !== undefined && response.statusCode < 400) return response;
    throw await errorFromResponse(response, target);
  }

  /** Closes the sandbox's connections; call when the sandbox is destroyed. */
  forget(sandboxId: string): void {
    this.agents.get(sandboxId)?.agent.destroy();
    this.agents.delete(sandboxId);
  }

  /** Drops the agents of sandboxes not called for `idleMs` and with no request under way. */
  sweepIdle(idleMs: number, now = Date.now()): void {
    for (const [sandboxId, { agent, lastUsed }] of this.agents) {
      const busy = Object.keys(agent.sockets).length > 0 || Object.keys(agent.requests).length > 0;
      if (!busy && now - lastUsed >= idleMs) this.forget(sandboxId);
    }
  }

  /** Closes every connection (shutdown). */
  close(): void {
    for (const { agent } of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private async send(target: SandboxdTarget, upstream: UpstreamRequest): Promise<IncomingMessage> {
    const transport = await transportFor(target.endpoint, this.proxyTransport);
    try {
      return await this.sendOnce(target, transport, upstream);
    } catch (err) {
      // A keep-alive socket the other side closed just as we picked it: safe to resend a buffered body.
      if (err instanceof StaleSocketError && !isStream(upstream.body)) {
        return this.sendOnce(target, transport, upstream);
      }
      throw err instanceof StaleSocketError ? err.cause : err;
    }
  }

  private sendOnce(
    target: SandboxdTarget,
    transport: ProxyTransport | undefined,
    upstream: UpstreamRequest,
  ): Promise<IncomingMessage> {
    const query = upstream.query?.toString();
    return new Promise((resolve, reject) => {
      const request = requestEndpoint(target.endpoint, transport, {
        method: upstream.method,
        path: query ? `${upstream.path}?${query}` : upstream.path,
        headers: upstream.headers,
        token: target.token,
        agent: this.agentFor(target.sandboxId, transport),
        signal: upstream.signal,
      });
      request.once('response', resolve);
      // `on`, not `once`: a second error (a reset after a refused body) must not go unhandled.
      request.on('error', (err) => {
        const stale = request.reusedSocket && 'code' in err && err.code === 'ECONNRESET';
        reject(stale ? new StaleSocketError(err) : err);
      });
      const body = upstream.body;
      if (isStream(body)) {
        // Not pipeline(): it would abort the request with a generic "socket hang up", hiding why the
        // body failed (PAYLOAD_TOO_LARGE); destroying it with the body's error keeps the reason.
        body.on('error', (err) => request.destroy(err));
        body.pipe(request);
      } else {
        request.end(body);
      }
    });
  }

  private agentFor(sandboxId: string, transport: ProxyTransport | undefined): Agent {
    const entry = this.agents.get(sandboxId);
    if (entry) {
      entry.lastUsed = Date.now();
      return entry.agent;
    }
    const agent = agentFor(transport, { keepAlive: true, timeout: FREE_SOCKET_TIMEOUT_MS });
    this.agents.set(sandboxId, { agent, lastUsed: Date.now() });
    return agent;
  }
}

class StaleSocketError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message);
  }
}

function isStream(body: UpstreamRequest['body']): body is Readable {
  return body !== undefined && !Buffer.isBuffer(body);
}

/** Typed errors (an upload over the limit, an abort) pass; connection faults become UPSTREAM_ERROR. */
function asUpstreamError(err: unknown, target: SandboxdTarget): Error {
  if (describeCodedError(err)) return err as Error;
  if (err instanceof Error && err.name === 'AbortError') return err;
  if (err instanceof Error && err.name === 'TimeoutError') {
    return new ServiceError('TIMEOUT', `sandbox ${target.sandboxId} did not answer in time`, undefined, {
      cause: err,
    });
  }
  return new ServiceError(
    'UPSTREAM_ERROR',
    `sandbox ${target.sandboxId} cannot be reached: ${messageOf(err)}`,
    { sandboxId: target.sandboxId },
    { cause: err },
  );
}

async function errorFromResponse(response: IncomingMessage, target: SandboxdTarget): Promise<ServiceError> {
  const status = response.statusCode ?? 0;
  const text = await readBoundedText(response, MAX_ERROR_BODY_BYTES).catch(() => undefined);
  const parsed = parseErrorBody(text ?? '');
  if (parsed && status >= 400 && status < 500 && status !== 401) {
    return new ServiceError(parsed.code, parsed.message, parsed.details);
  }
  return new ServiceError('UPSTREAM_ERROR', `sandbox ${target.sandboxId} answered ${status}`, {
    sandboxId: target.sandboxId,
    upstreamStatus: status,
    ...(parsed ? { upstreamCode: parsed.code, upstreamMessage: parsed.message } : {}),
  });
}

/** An answer's body as text; undefined (and the body destroyed) once it passes `maxBytes`. */
export async function readBoundedText(response: Readable, maxBytes: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    size += buffer.length;
    if (size > maxBytes) {
      response.destroy();
      return undefined;
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and drops an answer's body; a connection dying meanwhile is no longer anyone's concern. */
export function discard(response: IncomingMessage): void {
  response.on('error', () => undefined);
  response.resume();
}

/** Response headers worth passing on to the API caller (hop-by-hop ones are the server's own). */
export function passableHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const name of ['content-type', 'content-length', 'content-disposition', 'last-modified', 'etag']) {
    const value = headers[name];
    if (typeof value === 'string') passed[name] = value;
  }
  return passed;
}
