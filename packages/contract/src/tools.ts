/**
 * The tools a sandbox offers, MCP-style: `GET /tools` lists them with a JSON schema of their
 * arguments, `POST /tools/:name` calls one (on sandboxd and under `/v1/sandboxes/:id`). A result is
 * text content items plus `isError` and, for the built-ins, `structuredContent` with the whole
 * exec or Python result.
 */
import { z } from 'zod';
import { timeoutMsSchema } from './exec.js';
import { pythonContextNameSchema } from './python.js';

/** The tools every sandbox has. */
export const BUILTIN_TOOLS = {
  shell: 'run_shell_command',
  python: 'run_ipython_cell',
} as const;

export const shellToolArgumentsSchema = z.strictObject({
  command: z.string().min(1).describe('A shell command line, run by `sh -c` in the workspace root'),
});

/** `run_shell_command`'s arguments. */
export type ShellToolArguments = z.input<typeof shellToolArgumentsSchema>;

export const pythonToolArgumentsSchema = z.strictObject({
  code: z.string().describe('Python statements; the value of a last expression is returned'),
  context: pythonContextNameSchema
    .optional()
    .describe('The interpreter to run it in (each keeps its own variables); default `default`'),
});
/** `run_ipython_cell`'s arguments. */
export type PythonToolArguments = z.input<typeof pythonToolArgumentsSchema>;

/** The built-ins' descriptions and argument schemas, the one source of their listed JSON schemas. */
export const BUILTIN_TOOL_SPECS = [
  {
    name: BUILTIN_TOOLS.shell,
    description:
      'Run a shell command in the sandbox and return its stdout, stderr and exit code; an error when it exits non-zero',
    arguments: shellToolArgumentsSchema,
  },
  {
    name: BUILTIN_TOOLS.python,
    description:
      'Run Python code in a stateful interpreter (variables and imports persist between calls); returns stdout, stderr, the value of the last expression and any traceback',
    arguments: pythonToolArgumentsSchema,
  },
] as const;

export const toolNameSchema = z.string().min(1).max(128);

export const toolSchema = z.object({
  name: toolNameSchema,
  description: z.string(),
  /** JSON Schema of the `arguments` object. */
  inputSchema: z.record(z.string(), z.unknown()),
});
export type Tool = z.output<typeof toolSchema>;

export const toolListSchema = z.object({ tools: z.array(toolSchema) });
/** `GET .../tools` answer. */
export type ToolList = z.output<typeof toolListSchema>;

export const toolCallRequestSchema = z.strictObject({
  /** The tool's arguments, checked against its input schema. Default `{}`. */
  arguments: z.record(z.string(), z.unknown()).default({}),
  /**
   * Milliseconds the call may run: a shell command is then killed, a Python cell interrupted.
   * Default: the tool's own (none for the shell, 60 000 for Python).
   */
  timeoutMs: timeoutMsSchema.optional(),
});
/** `POST .../tools/:name` body. */
export type ToolCallRequest = z.input<typeof toolCallRequestSchema>;

export const toolContentSchema = z.object({
  type: z.literal('text'),
  text: z.string(),
  /** What the text is: `stdout`, `stderr`, `exitCode`, `value`, `traceback`, ... */
  description: z.string().optional(),
});
export type ToolContent = z.output<typeof toolContentSchema>;

export const toolCallResultSchema = z.object({
  content: z.array(toolContentSchema),
  /** The call failed: a non-zero exit code (not merely stderr output), an exception, a timeout. */
  isError: z.boolean(),
  /** The whole result of a built-in: an exec result for the shell, a Python result for Python. */
  structuredContent: z.record(z.string(), z.unknown()).optional(),
});
/** `POST .../tools/:name` answer. */
export type ToolCallResult = z.output<typeof toolCallResultSchema>;
