/**
 * The one place that speaks HTTP. A `Transport` is a base URL, a path prefix and a bearer token;
 * the server client uses `<server>/v1` style paths, a sandbox served through the server uses the
 * prefix `/v1/sandboxes/<id>`, and a direct connection to sandboxd uses no prefix at all, so the
 * data-plane modules (commands, files, archive) never know which one they talk to.
 *
 * Deadlines: every request has one (`timeoutMs`, default the transport's) unless it passes `null`.
 * For buffered answers it covers the whole exchange, retries included; for streamed answers
 * (`stream()`) it covers getting the response headers, and the caller's `signal` governs the body.
 *
 * Retries: only requests marked safe to repeat (by default GET and DELETE), only after a 503 or a
 * failed connection, with exponential backoff, and only while the deadline leaves time for it.
 */
import { errorFromResponse, SandboxError, TimeoutError, UpstreamError } from './errors.js';

/** `fetch` as the SDK calls it; pass your own to add proxies, tracing or a custom agent. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

/** Bodies the SDK sends as they are (files, archives). Streams are sent without buffering. */
export type RawBody = string | Uint8Array | Blob | ReadableStream<Uint8Array>;

export interface TransportConfig {
  /** Absolute URL the paths are appended to, e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>` when set. */
  token?: string | undefined;
  /** Default deadline of one call, retries included, milliseconds. */
  timeoutMs: number;
  /** How many times a retryable call is sent again after a 503 or connection failure. */
  retries: number;
  fetch?: FetchFunction | undefined;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
export type QueryValue = string | number | boolean | undefined;

export interface RequestSpec {
  method: HttpMethod;
  /** Path below the transport's prefix, starting with `/`. */
  path: string;
  query?: Record<string, QueryValue>;
  /** Sent as `application/json`. */
  json?: unknown;
  /** Sent as it is (`application/octet-stream` unless `contentType` says otherwise). */
  body?: RawBody;
  contentType?: string;
  accept?: string;
  /** Safe to send again after a 503 or a connection failure. Default: true for GET and DELETE. */
  retry?: boolean;
  /** Deadline in milliseconds; `null` for none. Default: the transport's `timeoutMs`. */
  timeoutMs?: number | null;
  /** Aborts the request, or a streamed body later on. */
  signal?: AbortSignal | undefined;
}

const FIRST_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 2_000;

/** Options every data-plane and control call takes. */
export interface CallOptions {
  /** Aborts the call (and a streamed body later on). */
  signal?: AbortSignal;
  /** Deadline in milliseconds, retries included; `null` for none. Default: the client's `timeoutMs`. */
  timeoutMs?: number | null;
}

/** The per-call fields of a request spec; `defaultTimeoutMs` overrides the transport's default. */
export function callSpec(
  options: CallOptions,
  defaultTimeoutMs?: number | null,
): { signal?: AbortSignal; timeoutMs?: number | null } {
  const timeoutMs = options.timeoutMs === undefined ? defaultTimeoutMs : options.timeoutMs;
  return {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

/** How to reach a server or a sandboxd; shared by `SandboxClient` and `Sandbox.connectDirect`. */
export interface ConnectionOptions {
  /** Bearer token (the server's `BEARER_TOKEN`, or the sandbox's token in direct mode). */
  token?: string;
  /** Deadline of one call in milliseconds, retries included. Default 60000. Exec and streams differ: see their docs. */
  timeoutMs?: number;
  /** Extra attempts for idempotent calls (GET, DELETE, keepalive) after a 503 or a failed connection. Default 3. */
  retries?: number;
  /** A `fetch` to use instead of the global one. */
  fetch?: FetchFunction;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_RETRIES = 3;

export function transportConfig(baseUrl: string, options: ConnectionOptions): TransportConfig {
  return {
    baseUrl,
    token: options.token,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    retries: options.retries ?? DEFAULT_RETRIES,
    fetch: options.fetch,
  };
}

export class Transport {
  private readonly fetchFn: FetchFunction;
  private readonly baseUrl: string;

  constructor(
    private readonly config: TransportConfig,
    /** Path prefix put before every request path, e.g. `/v1/sandboxes/sbx_1`. */
    readonly prefix = '',
  ) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, '');
    this.fetchFn = config.fetch ?? ((input, init) => fetch(input, init));
  }

  /** Same server and token, with `prefix` appended to this transport's prefix. */
  withPrefix(prefix: string): Transport {
    return new Transport(this.config, `${this.prefix}${prefix}`);
  }

  /** The full URL of a path, for messages and tests. */
  url(path: string, query?: Record<string, QueryValue>): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) search.set(key, String(value));
    }
    const qs = search.toString();
    return `${this.baseUrl}${this.prefix}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends the request and parses a JSON answer. */
  async json<T>(spec: RequestSpec): Promise<T> {
    const { response, settle } = await this.send({ accept: 'application/json', ...spec });
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw this.failure(spec, error);
    } finally {
      settle();
    }
  }

  /** Sends the request and waits for the whole answer, ignoring its body. */
  async empty(spec: RequestSpec): Promise<void> {
    const { response, settle } = await this.send(spec);
    try {
      await response.arrayBuffer();
    } catch (error) {
      throw this.failure(spec, error);
    } finally {
      settle();
    }
  }

  /** Sends the request and reads the whole body as bytes. */
  async bytes(spec: RequestSpec): Promise<Uint8Array> {
    const { response, settle } = await this.send(spec);
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw this.failure(spec, error);
    } finally {
      settle();
    }
  }

  /**
   * Sends the request and resolves with the body once the answer's headers arrived; the body is
   * the caller's to read (or cancel). The deadline stops at the headers; `spec.signal` still aborts the body.
   */
  async stream(spec: RequestSpec): Promise<ReadableStream<Uint8Array>> {
    const { response, settle } = await this.send(spec);
    settle();
    if (!response.body) {
      throw new UpstreamError({
        code: 'UPSTREAM_ERROR',
        message: `${spec.method} ${this.prefix}${spec.path} answered without a body`,
      });
    }
    return response.body;
  }

  /** Sends with retries; resolves with a 2xx response whose deadline keeps running until `settle()`. */
  private async send(spec: RequestSpec): Promise<{ response: Response; settle: () => void }> {
    const timeoutMs = spec.timeoutMs === undefined ? this.config.timeoutMs : spec.timeoutMs;
    const deadline = timeoutMs === null ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    const retryable = spec.retry ?? (spec.method === 'GET' || spec.method === 'DELETE');
    const url = this.url(spec.path, spec.query);

    for (let attempt = 0; ; attempt++) {
      const attemptSignal = new DeadlineSignal(deadline, spec.signal, () =>
        this.timeoutError(spec, timeoutMs),
      );
      let response: Response;
      try {
        response = await this.fetchFn(url, this.init(spec, attemptSignal.signal));
      } catch (error) {
        attemptSignal.dispose();
        const failure = this.failure(spec, error, attemptSignal.signal);
        if (
          failure instanceof UpstreamError &&
          (await this.mayRetry(retryable, attempt, deadline, spec.signal))
        ) {
          continue;
        }
        throw failure;
      }
      if (response.ok) {
        return { response, settle: () => attemptSignal.stopDeadline() };
      }
      if (
        response.status === 503 &&
        (await this.mayRetry(retryable, attempt, deadline, spec.signal, response))
      ) {
        attemptSignal.dispose();
        continue;
      }
      try {
        throw await errorFromResponse(response, `${spec.method} ${this.prefix}${spec.path}`);
      } finally {
        attemptSignal.dispose();
      }
    }
  }

  private init(spec: RequestSpec, signal: AbortSignal): RequestInit & { duplex?: 'half' } {
    const headers = new Headers();
    if (this.config.token) headers.set('authorization', `Bearer ${this.config.token}`);
    if (spec.accept) headers.set('accept', spec.accept);
    const init: RequestInit & { duplex?: 'half' } = { method: spec.method, headers, signal };
    if (spec.json !== undefined) {
      headers.set('content-type', 'application/json');
      init.body = JSON.stringify(spec.json);
    } else if (spec.body !== undefined) {
      headers.set('content-type', spec.contentType ?? 'application/octet-stream');
      init.body = toBodyInit(spec.body);
      // Node's fetch refuses a stream body unless told the request is sent half-duplex.
      if (spec.body instanceof ReadableStream) init.duplex = 'half';
    }
    return init;
  }

  /** Waits out the backoff if one more attempt is allowed and fits the deadline; false otherwise. */
  private async mayRetry(
    retryable: boolean,
    attempt: number,
    deadline: number,
    signal: AbortSignal | undefined,
    discard?: Response,
  ): Promise<boolean> {
    const backoffMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    if (
      !retryable ||
      attempt >= this.config.retries ||
      Date.now() + backoffMs >= deadline ||
      signal?.aborted
    ) {
      return false;
    }
    await discard?.body?.cancel().catch(() => undefined);
    await sleep(backoffMs, signal);
    return !signal?.aborted;
  }

  /** Maps a thrown fetch or body error to a SandboxError; the caller's own abort reason passes through. */
  private failure(spec: RequestSpec, error: unknown, signal?: AbortSignal): unknown {
    if (spec.signal?.aborted) return spec.signal.reason;
    if (signal?.aborted && signal.reason instanceof TimeoutError) return signal.reason;
    if (error instanceof SandboxError) return error;
    return new UpstreamError({
      code: 'UPSTREAM_ERROR',
      message: `${spec.method} ${this.url(spec.path)} failed: ${describe(error)}`,
      cause: error,
    });
  }

  private timeoutError(spec: RequestSpec, timeoutMs: number | null): TimeoutError {
    return new TimeoutError({
      code: 'TIMEOUT',
      message: `${spec.method} ${this.prefix}${spec.path} got no answer within ${timeoutMs} ms`,
      details: { timeoutMs },
    });
  }
}

/**
 * One attempt's abort signal: fires when the caller's signal fires, or with a TimeoutError at the
 * deadline. `stopDeadline` keeps the caller's link (for streamed bodies); `dispose` drops both.
 */
class DeadlineSignal {
  private readonly controller = new AbortController();
  private readonly timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onCallerAbort: () => void;

  constructor(
    deadline: number,
    private readonly callerSignal: AbortSignal | undefined,
    timeoutError: () => TimeoutError,
  ) {
    this.onCallerAbort = () => this.controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) this.onCallerAbort();
    else callerSignal?.addEventListener('abort', this.onCallerAbort, { once: true });
    if (Number.isFinite(deadline)) {
      this.timer = setTimeout(
        () => this.controller.abort(timeoutError()),
        Math.max(0, deadline - Date.now()),
      );
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stopDeadline(): void {
    clearTimeout(this.timer);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onCallerAbort);
  }
}

function toBodyInit(body: RawBody): BodyInit {
  if (body instanceof Uint8Array) {
    // fetch's types want an ArrayBuffer-backed view; copy the rare SharedArrayBuffer-backed one.
    return body.buffer instanceof ArrayBuffer ? (body as Uint8Array<ArrayBuffer>) : new Uint8Array(body);
  }
  return body;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A readable reason out of fetch's nested errors (`fetch failed` hides `ECONNREFUSED` in `cause`). */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = 'code' in cause && typeof cause.code === 'string' ? `${cause.code} ` : '';
    return `${error.message} (${code}${cause.message})`;
  }
  return error.message;
}
