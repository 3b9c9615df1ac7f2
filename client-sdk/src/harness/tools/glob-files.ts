/** `glob_files`: workspace files whose path, relative to the folder searched, matches a glob. */
import { globToRegExp } from '../glob.js';
import { objectSchema } from '../tool-schema.js';
import type { AgentTool, ToolContext } from './context.js';

export interface GlobResult {
  paths: string[];
  truncated: boolean;
}

const GLOB_LIST_DEPTH = 32;

export function globFilesTool(context: ToolContext): AgentTool<GlobResult> {
  return context.defineTool(
    'glob_files',
    'Finds workspace files whose path matches a glob (*, ?, **, [abc], {a,b}), relative to the folder searched.',
    objectSchema(
      {
        pattern: {
          type: 'string',
          description: 'The glob, e.g. **/*.md or skills/*/SKILL.md.',
          minLength: 1,
        },
        path: {
          type: 'string',
          description: 'Folder to search, relative to the workspace. Default: its root.',
        },
      },
      ['pattern'],
    ),
    async (args, call) => {
      const base = context.path(args.path);
      const pattern = globToRegExp(args.pattern);
      const entries = await context.sandbox.files.list(base, { depth: GLOB_LIST_DEPTH, ...call });
      const paths = entries
        .filter((entry) => entry.type !== 'directory' && !context.isHidden(entry.path))
        .filter((entry) => pattern.test(base === '.' ? entry.path : entry.path.slice(base.length + 1)))
        .map((entry) => entry.path)
        .sort();
      return { paths: paths.slice(0, context.maxResults), truncated: paths.length > context.maxResults };
    },
  );
}
