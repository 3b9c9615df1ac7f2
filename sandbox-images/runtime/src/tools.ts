/**
 * GET /tools and POST /tools/<name>: the built-in tools, `run_shell_command` (an exec under
 * `sh -c` in the workspace root) and `run_ipython_cell` (a cell in a Python context), listed with
 * JSON schemas made from their argument schemas and answered MCP-style. `isError` follows the exit
 * code, not whether anything was written to stderr.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BUILTIN_TOOL_SPECS,
  BUILTIN_TOOLS,
  type ExecResult,
  PYTHON_DEFAULT_CONTEXT,
  PYTHON_DEFAULT_TIMEOUT_MS,
  type PythonRunResult,
  pythonToolArgumentsSchema,
  shellToolArgumentsSchema,
  type ToolCallResult,
  type ToolContent,
  type ToolList,
  toolCallRequestSchema,
} from '@runtime-sandbox/contract';
import { z } from 'zod';
import type { Context } from './context.js';
import { SandboxdError } from './errors.js';
import { launchSpecFor, runCollected } from './exec.js';
import { hangUpSignal, lastComponent, type Route, readJson, sendJson } from './http.js';

const TOOL_LIST: ToolList = {
  tools: BUILTIN_TOOL_SPECS.map((spec) => {
    const { $schema: _dialect, ...inputSchema } = z.toJSONSchema(spec.arguments);
    return { name: spec.name, description: spec.description, inputSchema };
  }),
};

function parseArguments<S extends z.ZodType>(schema: S, name: string, args: unknown): z.output<S> {
  const parsed = schema.safeParse(args);
  if (parsed.success) return parsed.data;
  throw new SandboxdError('INVALID_TOOL_ARGUMENTS', `The arguments of ${name} are not valid`, {
    tool: name,
    issues: parsed.error.issues,
  });
}

const text = (body: string, description: string): ToolContent => ({ type: 'text', text: body, description });

function shellResult(result: ExecResult): ToolCallResult {
  const content = [text(result.stdout, 'stdout')];
  if (result.stderr !== '') content.push(text(result.stderr, 'stderr'));
  content.push(
    text(result.exitCode === null ? `killed by ${result.signal}` : `${result.exitCode}`, 'exitCode'),
  );
  return { content, isError: result.exitCode !== 0, structuredContent: result };
}

function pythonResult(result: PythonRunResult): ToolCallResult {
  const content = [text(result.stdout, 'stdout')];
  if (result.stderr !== '') content.push(text(result.stderr, 'stderr'));
  if (result.value !== null) content.push(text(result.value, 'value'));
  if (result.error !== null) content.push(text(result.error.traceback || result.error.message, 'traceback'));
  return { content, isError: result.error !== null || result.timedOut, structuredContent: result };
}

async function callTool(ctx: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const name = lastComponent(url);
  if (!BUILTIN_TOOL_SPECS.some((spec) => spec.name === name)) {
    throw new SandboxdError('TOOL_NOT_FOUND', `This sandbox has no tool ${name}`, {
      tool: name,
      tools: TOOL_LIST.tools.map((tool) => tool.name),
    });
  }
  const request = await readJson(req, ctx.limits.maxJsonBytes, toolCallRequestSchema);
  if (name === BUILTIN_TOOLS.shell) {
    const { command } = parseArguments(shellToolArgumentsSchema, name, request.arguments);
    const spec = await launchSpecFor(ctx, { command, timeoutMs: request.timeoutMs });
    sendJson(res, 200, shellResult(await runCollected(ctx, res, spec)));
    return;
  }
  const { code, context } = parseArguments(pythonToolArgumentsSchema, name, request.arguments);
  const run = {
    code,
    context: context ?? PYTHON_DEFAULT_CONTEXT,
    timeoutMs: request.timeoutMs ?? PYTHON_DEFAULT_TIMEOUT_MS,
  };
  sendJson(res, 200, pythonResult(await ctx.python.run(ctx, run, hangUpSignal(res))));
}

export function toolRoutes(ctx: Context): Array<[string, Route]> {
  return [
    ['/tools', { auth: true, methods: { GET: async (_req, res) => sendJson(res, 200, TOOL_LIST) } }],
    ['/tools/*', { auth: true, methods: { POST: (req, res, url) => callTool(ctx, req, res, url) } }],
  ];
}
