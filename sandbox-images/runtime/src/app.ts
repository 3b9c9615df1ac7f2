/**
 * Wires sandboxd together: the shared context, /healthz and /init, and the route table of every
 * module. main.ts only reads the environment and listens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { initRequestSchema, type SandboxdHealth } from '@runtime-sandbox/contract';
import { TokenGate } from '@runtime-sandbox/contract/token-gate';
import { archiveRoutes } from './archive.js';
import type { Context, Limits } from './context.js';
import { SandboxdError, withFsErrors } from './errors.js';
import { execRoutes, ProcessGroups } from './exec.js';
import { fileRoutes } from './files.js';
import type { RunAs } from './handles.js';
import { createRequestListener, type Route, readJson, sendJson } from './http.js';
import { Workspace } from './paths.js';
import { PythonContexts, pythonRoutes } from './python.js';
import { toolRoutes } from './tools.js';

export interface SandboxdOptions {
  bootToken: string;
  workspaceRoot: string;
  limits: Limits;
  runAs: RunAs;
  /** Env every process starts from (the caller's env from /init and the request go over it). */
  processEnv: Record<string, string>;
}

export interface Sandboxd {
  server: Server;
  /** Stops listening and kills every running process group and Python interpreter. */
  shutdown(): void;
}

function health(ctx: Context): SandboxdHealth {
  return { status: 'ok', initialized: ctx.initialized };
}

/** Binds the sandbox to its caller, once: new token, the caller's env, maybe another workspace root. */
async function init(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const request = await readJson(req, ctx.limits.maxJsonBytes, initRequestSchema);
  const alreadyInitialized = () =>
    new SandboxdError('ALREADY_INITIALIZED', 'This sandbox was already bound to a caller');
  if (ctx.initialized) throw alreadyInitialized();
  const root = request.workspaceRoot;
  const workspace =
    root === undefined ? ctx.workspace : await withFsErrors({ path: root }, () => Workspace.open(root));
  // Another /init may have won while the root was being checked.
  if (ctx.initialized) throw alreadyInitialized();
  ctx.gate.rotate(request.token);
  ctx.workspace = workspace;
  ctx.processEnv = { ...ctx.processEnv, ...request.env };
  ctx.initialized = true;
  sendJson(res, 200, health(ctx));
}

export async function createSandboxd(options: SandboxdOptions): Promise<Sandboxd> {
  const ctx: Context = {
    limits: options.limits,
    gate: new TokenGate(options.bootToken),
    processes: new ProcessGroups(),
    python: new PythonContexts(),
    runAs: options.runAs,
    workspace: await Workspace.open(options.workspaceRoot),
    processEnv: options.processEnv,
    initialized: false,
  };
  const routes = new Map<string, Route>([
    ['/healthz', { auth: false, methods: { GET: async (_req, res) => sendJson(res, 200, health(ctx)) } }],
    ['/init', { auth: true, methods: { POST: (req, res) => init(ctx, req, res) } }],
    ...execRoutes(ctx),
    ...fileRoutes(ctx),
    ...archiveRoutes(ctx),
    ...pythonRoutes(ctx),
    ...toolRoutes(ctx),
  ]);
  // No request timeout: uploads and exec streams may rightly take long; idle keep-alive sockets
  // stay longer than a client's own idle limit, so the client is the one that closes them.
  const server = createServer({ noDelay: true, requestTimeout: 0 }, createRequestListener(routes, ctx.gate));
  server.keepAliveTimeout = 60_000;
  return {
    server,
    shutdown() {
      server.close();
      server.closeIdleConnections();
      ctx.processes.killAll();
      ctx.python.killAll();
    },
  };
}
