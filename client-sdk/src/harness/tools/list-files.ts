/** `list_files`: a workspace folder's entries, to a few levels down. */
import { objectSchema } from '../tool-schema.js';
import type { AgentTool, ToolContext } from './context.js';

export interface ListEntry {
  path: string;
  type: string;
  size: number;
  /** Octal permission bits, e.g. `755`. */
  mode: string;
}

export interface ListResult {
  entries: ListEntry[];
  truncated: boolean;
}

const MAX_LIST_DEPTH = 5;

export function listFilesTool(context: ToolContext): AgentTool<ListResult> {
  return context.defineTool(
    'list_files',
    'Lists a workspace folder: path, type, size and mode of each entry.',
    objectSchema(
      {
        path: { type: 'string', description: 'Folder, relative to the workspace. Default: its root.' },
        depth: {
          type: 'integer',
          description: `1 lists the folder's entries; more descends that many levels (most ${MAX_LIST_DEPTH}). Default 1.`,
          minimum: 1,
          maximum: MAX_LIST_DEPTH,
        },
      },
      [],
    ),
    async (args, call) => {
      const listed = await context.sandbox.files.list(context.path(args.path), {
        depth: args.depth ?? 1,
        ...call,
      });
      const entries = listed
        .filter((entry) => !context.isHidden(entry.path))
        .map((entry) => ({
          path: entry.path,
          type: entry.type,
          size: entry.size,
          mode: entry.mode.toString(8),
        }));
      return {
        entries: entries.slice(0, context.maxResults),
        truncated: entries.length > context.maxResults,
      };
    },
  );
}
