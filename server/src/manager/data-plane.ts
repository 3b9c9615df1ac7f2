/**
 * The data plane as named operations (exec, files, archives, tools, Python): each says which
 * sandboxd route it is and forwards there with the caller's validated input, answering as sandboxd
 * answers, its body still streaming; tool and Python results are read (bounded) and validated
 * instead, since what sandboxd answers is under the sandbox code's control. The API layer calls
 * these and never picks a sandboxd path or header.
 */
import type { Readable } from 'node:stream';
import {
  type archiveQuerySchema,
  type deleteQuerySchema,
  type ExecRequest,
  type listQuerySchema,
  type mkdirRequestSchema,
  type moveRequestSchema,
  NDJSON,
  type PythonRunResult,
  type pathQuerySchema,
  type pythonRunRequestSchema,
  pythonRunResultSchema,
  type ToolCallRequest,
  type ToolCallResult,
  type ToolList,
  toolCallResultSchema,
  toolListSchema,
  type writeQuerySchema,
} from '@runtime-sandbox/contract';
import type { z } from 'zod';
import { ServiceError } from '../errors.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { Caller } from '../tenants/caller.js';
import type { SandboxManager } from './sandbox-manager.js';
import { discard, passableHeaders, readBoundedText, type UpstreamRequest } from './sandboxd-client.js';

/**
 * The largest tool or Python result taken from sandboxd: its two output streams at sandboxd's
 * default limit (16 MiB each), JSON-escaped, with room to spare. A bigger one is UPSTREAM_ERROR.
 */
const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/** sandboxd's answer: its status, the headers worth passing on, and the body (none for 204/304). */
export interface SandboxdAnswer {
  status: number;
  headers: Record<string, string>;
  body: Readable | null;
}

/** Who calls, and the signal that ends the call when the caller hangs up (an exec is then killed). */
export interface CallScope {
  caller: Caller;
  signal: AbortSignal;
}

type PathQuery = z.output<typeof pathQuerySchema>;
type WriteQuery = z.output<typeof writeQuerySchema>;
type DeleteQuery = z.output<typeof deleteQuerySchema>;
type ListQuery = z.output<typeof listQuerySchema>;
type ArchiveQuery = z.output<typeof archiveQuerySchema>;
type MoveRequest = z.output<typeof moveRequestSchema>;
type MkdirRequest = z.output<typeof mkdirRequestSchema>;
type PythonRunRequest = z.output<typeof pythonRunRequestSchema>;
type Query = Record<string, string | number | boolean | undefined>;

export class DataPlane {
  constructor(private readonly deps: { manager: Pick<SandboxManager, 'call'>; metrics: ServerMetrics }) {}

  /** Runs a command: one JSON result, or with `stream` the NDJSON events as they come. */
  async exec(id: string, scope: CallScope, request: ExecRequest, stream: boolean): Promise<SandboxdAnswer> {
    const { metrics } = this.deps;
    const started = performance.now();
    const mode = stream ? 'stream' : 'json';
    metrics.execTotal.inc({ mode });
    const body = jsonBody(request);
    return this.send(
      id,
      scope,
      {
        method: 'POST',
        path: '/exec',
        ...body,
        headers: { ...body.headers, ...(stream ? { accept: NDJSON } : {}) },
      },
      () => metrics.execDuration.observe({ mode }, (performance.now() - started) / 1000),
    );
  }

  readFile(id: string, scope: CallScope, query: PathQuery): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'GET', path: '/files', query: searchParams(query) });
  }

  /** Writes `body` (streamed) to the file, atomically. */
  writeFile(id: string, scope: CallScope, query: WriteQuery, body: Readable): Promise<SandboxdAnswer> {
    const headers = { 'content-type': 'application/octet-stream' };
    return this.send(id, scope, { method: 'PUT', path: '/files', query: searchParams(query), headers, body });
  }

  deleteFile(id: string, scope: CallScope, query: DeleteQuery): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'DELETE', path: '/files', query: searchParams(query) });
  }

  listFiles(id: string, scope: CallScope, query: ListQuery): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'GET', path: '/files/list', query: searchParams(query) });
  }

  statFile(id: string, scope: CallScope, query: PathQuery): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'GET', path: '/files/stat', query: searchParams(query) });
  }

  moveFile(id: string, scope: CallScope, request: MoveRequest): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'POST', path: '/files/move', ...jsonBody(request) });
  }

  makeDirectory(id: string, scope: CallScope, request: MkdirRequest): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'POST', path: '/files/mkdir', ...jsonBody(request) });
  }

  downloadArchive(id: string, scope: CallScope, query: ArchiveQuery): Promise<SandboxdAnswer> {
    return this.send(id, scope, { method: 'GET', path: '/archive', query: searchParams(query) });
  }

  /** Unpacks the tar stream `body` into the directory. */
  uploadArchive(id: string, scope: CallScope, query: ArchiveQuery, body: Readable): Promise<SandboxdAnswer> {
    const headers = { 'content-type': 'application/x-tar' };
    return this.send(id, scope, {
      method: 'PUT',
      path: '/archive',
      query: searchParams(query),
      headers,
      body,
    });
  }

  listTools(id: string, scope: CallScope): Promise<ToolList> {
    return this.sendForResult(id, scope, { method: 'GET', path: '/tools' }, toolListSchema);
  }

  callTool(id: string, scope: CallScope, name: string, request: ToolCallRequest): Promise<ToolCallResult> {
    const path = `/tools/${encodeURIComponent(name)}`;
    return this.sendForResult(
      id,
      scope,
      { method: 'POST', path, ...jsonBody(request) },
      toolCallResultSchema,
    );
  }

  /** Runs a cell in one of the sandbox's Python contexts. */
  runPython(id: string, scope: CallScope, request: PythonRunRequest): Promise<PythonRunResult> {
    return this.sendForResult(
      id,
      scope,
      { method: 'POST', path: '/python', ...jsonBody(request) },
      pythonRunResultSchema,
    );
  }

  /** Forwards, and reads the answer as JSON of `schema`, under MAX_RESULT_BYTES; UPSTREAM_ERROR otherwise. */
  private async sendForResult<S extends z.ZodType>(
    id: string,
    scope: CallScope,
    request: Omit<UpstreamRequest, 'signal'>,
    schema: S,
  ): Promise<z.output<S>> {
    const answer = await this.send(id, scope, request);
    const text = answer.body === null ? undefined : await readBoundedText(answer.body, MAX_RESULT_BYTES);
    let parsed: z.ZodSafeParseResult<z.output<S>> | undefined;
    try {
      parsed = text === undefined ? undefined : schema.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) return parsed.data;
    throw new ServiceError('UPSTREAM_ERROR', `sandbox ${id} answered ${request.path} with no valid result`, {
      sandboxId: id,
      ...(text === undefined ? { limitBytes: MAX_RESULT_BYTES } : {}),
    });
  }

  /** Forwards; a streamed body not taken because the call failed first is destroyed, not left hanging. */
  private async send(
    id: string,
    { caller, signal }: CallScope,
    request: Omit<UpstreamRequest, 'signal'>,
    onClose?: () => void,
  ): Promise<SandboxdAnswer> {
    let upstream: Awaited<ReturnType<SandboxManager['call']>>;
    try {
      upstream = await this.deps.manager.call(id, caller, { ...request, signal });
    } catch (err) {
      if (request.body !== undefined && !Buffer.isBuffer(request.body)) request.body.destroy();
      throw err;
    }
    if (onClose) upstream.once('close', onClose);
    const status = upstream.statusCode ?? 200;
    const headers = passableHeaders(upstream.headers);
    if (status === 204 || status === 304) {
      discard(upstream);
      return { status, headers, body: null };
    }
    return { status, headers, body: upstream };
  }
}

function jsonBody(value: unknown): Pick<UpstreamRequest, 'headers' | 'body'> {
  return { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(value)) };
}

/** A validated query object as a query string, dropping absent values. */
function searchParams(query: Query): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  return params;
}
