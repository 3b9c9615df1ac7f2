/** `read_file`: a window of lines of a UTF-8 text file. */
import { objectSchema } from '../tool-schema.js';
import { type AgentTool, clip, decodeText, type ToolContext } from './context.js';

export interface ReadFileResult {
  path: string;
  /** The lines asked for, joined by `\n`. */
  content: string;
  /** 1-based numbers of the first and last line given. */
  startLine: number;
  endLine: number;
  totalLines: number;
  truncated: boolean;
}

const MAX_READ_LINES = 2_000;

export function readFileTool(context: ToolContext): AgentTool<ReadFileResult> {
  return context.defineTool(
    'read_file',
    `Reads a UTF-8 text file of the workspace, up to ${MAX_READ_LINES} lines at a time.`,
    objectSchema(
      {
        path: { type: 'string', description: 'File path, relative to the workspace.', minLength: 1 },
        offset: { type: 'integer', description: 'First line to read, 1-based. Default 1.', minimum: 1 },
        limit: {
          type: 'integer',
          description: `How many lines to read. Default and most ${MAX_READ_LINES}.`,
          minimum: 1,
          maximum: MAX_READ_LINES,
        },
      },
      ['path'],
    ),
    async (args, call) => {
      const path = context.path(args.path);
      const text = decodeText(path, await context.sandbox.files.read(path, { as: 'bytes', ...call }));
      const lines = text.split('\n');
      if (text.endsWith('\n')) lines.pop();
      const startLine = args.offset ?? 1;
      const selected = lines.slice(startLine - 1, startLine - 1 + (args.limit ?? MAX_READ_LINES));
      const content = clip(selected.join('\n'), context.maxOutputChars);
      return {
        path,
        content: content.text,
        startLine,
        endLine: startLine + selected.length - 1,
        totalLines: lines.length,
        truncated: content.cut || startLine - 1 + selected.length < lines.length,
      };
    },
  );
}
