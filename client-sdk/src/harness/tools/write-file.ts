/** `write_file`: a whole text file, sent as the request body. */
import { objectSchema } from '../tool-schema.js';
import type { AgentTool, ToolContext } from './context.js';

export interface WriteFileResult {
  path: string;
  bytes: number;
}

export function writeFileTool(context: ToolContext): AgentTool<WriteFileResult> {
  return context.defineTool(
    'write_file',
    'Writes a text file in the workspace, creating parent folders and replacing what was there (its mode is kept).',
    objectSchema(
      {
        path: { type: 'string', description: 'File path, relative to the workspace.', minLength: 1 },
        content: { type: 'string', description: 'The whole new content.' },
      },
      ['path', 'content'],
    ),
    async (args, call) => {
      const path = context.path(args.path);
      const entry = await context.sandbox.files.write(path, args.content, call);
      return { path, bytes: entry.size };
    },
  );
}
