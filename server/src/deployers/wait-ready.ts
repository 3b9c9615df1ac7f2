/**
 * Waits until a new sandbox's sandboxd answers GET /healthz. Polls fast (5 ms, growing by half up
 * to 100 ms) because a warm start is a few tens of milliseconds and every one of them counts.
 * Probes go the way every other request to the endpoint goes (endpoint-request.ts), through the
 * deployer's proxy when it has one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorCode } from '@runtime-sandbox/contract';
import type { Endpoint, ProxyTransport, ProxyTransportSource } from './deployer.js';
import { describeEndpoint, requestEndpoint, transportFor } from './endpoint-request.js';

const FIRST_DELAY_MS = 5;
const MAX_DELAY_MS = 100;
const GROWTH = 1.5;
/**
 * A probe's own time limit starts short and doubles each time it runs out. Docker's port proxy
 * accepts a connection before the container's network is up and then holds it without answering,
 * so one long-waiting first probe would cost a second where a retry answers in a few milliseconds;
 * a sandboxd that is merely slow (a loaded host) still gets up to a second per probe.
 */
const FIRST_PROBE_TIMEOUT_MS = 50;
const MAX_PROBE_TIMEOUT_MS = 1000;

/** sandboxd did not answer in time; carries the last thing seen. */
export class SandboxdNotReadyError extends Error {
  readonly code = 'TIMEOUT' satisfies ErrorCode;

  constructor(
    readonly endpoint: Endpoint,
    timeoutMs: number,
    lastProblem: string,
  ) {
    super(
      `sandboxd at ${describeEndpoint(endpoint)} was not ready within ${timeoutMs} ms (last: ${lastProblem})`,
    );
    this.name = 'SandboxdNotReadyError';
  }
}

export async function waitForSandboxd(
  endpoint: Endpoint,
  options: { timeoutMs: number; signal?: AbortSignal; proxyTransport?: ProxyTransportSource },
): Promise<void> {
  const transport = await transportFor(endpoint, options.proxyTransport);
  const deadline = Date.now() + options.timeoutMs;
  let delay = FIRST_DELAY_MS;
  let probeLimitMs = FIRST_PROBE_TIMEOUT_MS;
  let lastProblem = 'no attempt finished';

  for (;;) {
    options.signal?.throwIfAborted();
    // The last probe before the deadline still gets the shortest fair limit.
    const probeTimeoutMs = Math.max(FIRST_PROBE_TIMEOUT_MS, Math.min(probeLimitMs, deadline - Date.now()));
    // A timer of our own rather than AbortSignal.timeout(), whose unref'd timer would let a
    // process with nothing else to do exit in the middle of a held connection.
    const probe = new AbortController();
    const probeTimer = setTimeout(() => probe.abort(), probeTimeoutMs);
    const probeSignal = options.signal ? AbortSignal.any([probe.signal, options.signal]) : probe.signal;
    try {
      const status = await probeOnce(endpoint, transport, probeSignal);
      if (status >= 200 && status < 300) return;
      lastProblem = `HTTP ${status}`;
    } catch (error) {
      options.signal?.throwIfAborted();
      if (probe.signal.aborted) {
        lastProblem = `no answer within ${probeTimeoutMs} ms`;
        probeLimitMs = Math.min(MAX_PROBE_TIMEOUT_MS, probeLimitMs * 2);
      } else {
        lastProblem = describe(error);
      }
    } finally {
      clearTimeout(probeTimer);
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new SandboxdNotReadyError(endpoint, options.timeoutMs, lastProblem);
    await sleep(Math.min(delay, left), undefined, { signal: options.signal }).catch((error: unknown) => {
      options.signal?.throwIfAborted(); // the caller's reason, as everywhere else here
      throw error;
    });
    delay = Math.min(MAX_DELAY_MS, delay * GROWTH);
  }
}

/** GET /healthz on a connection of its own; resolves with the status once the answer is read. */
function probeOnce(
  endpoint: Endpoint,
  transport: ProxyTransport | undefined,
  signal: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = requestEndpoint(endpoint, transport, { method: 'GET', path: '/healthz', signal });
    request.once('response', (response) => {
      response.on('error', reject);
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.resume();
    });
    request.on('error', reject);
    request.end();
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
