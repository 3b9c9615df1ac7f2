/** `execute`: a shell command line in the workspace, its output clipped to the toolkit's limit. */
import { objectSchema } from '../tool-schema.js';
import { type AgentTool, clip, type ToolContext } from './context.js';

export interface ExecuteResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Output was cut to the tool's limit (the middle is left out). */
  truncated: boolean;
}

export function executeTool(context: ToolContext): AgentTool<ExecuteResult> {
  return context.defineTool(
    'execute',
    'Runs a shell command (sh -c) in the workspace and returns its exit code, stdout and stderr.',
    objectSchema(
      {
        command: { type: 'string', description: 'The shell command line.', minLength: 1 },
        cwd: {
          type: 'string',
          description: 'Working directory, relative to the workspace. Default: its root.',
        },
        timeout_ms: {
          type: 'integer',
          description: 'Kill the command after this many milliseconds.',
          minimum: 1,
          maximum: context.maxExecTimeoutMs,
        },
      },
      ['command'],
    ),
    async (args, call) => {
      const result = await context.sandbox.commands.run(args.command, {
        cwd: context.path(args.cwd),
        timeoutMs: args.timeout_ms ?? context.execTimeoutMs,
        ...call,
      });
      const stdout = clip(result.stdout, context.maxOutputChars);
      const stderr = clip(result.stderr, context.maxOutputChars);
      return {
        exitCode: result.exitCode,
        stdout: stdout.text,
        stderr: stderr.text,
        timedOut: result.timedOut,
        truncated: stdout.cut || stderr.cut || result.stdoutTruncated || result.stderrTruncated,
      };
    },
  );
}
