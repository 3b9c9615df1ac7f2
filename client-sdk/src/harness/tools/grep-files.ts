/**
 * `grep_files`: `grep -E` over the workspace, the pattern as an argv element (never through a
 * shell), its output streamed so a search that matches everything stops at the limit.
 */
import { objectSchema } from '../tool-schema.js';
import { type AgentTool, type ToolContext, toolError } from './context.js';

export interface GrepMatch {
  path: string;
  line: number;
  text: string;
}

export interface GrepResult {
  matches: GrepMatch[];
  truncated: boolean;
}

/** Longest matched line grep_files gives back, characters. */
const MAX_MATCH_CHARS = 500;

export function grepFilesTool(context: ToolContext): AgentTool<GrepResult> {
  return context.defineTool(
    'grep_files',
    'Searches workspace files for lines matching a regular expression (POSIX extended) and returns path, line number and text of each.',
    objectSchema(
      {
        pattern: { type: 'string', description: 'Extended regular expression.', minLength: 1 },
        path: {
          type: 'string',
          description: 'File or folder to search, relative to the workspace. Default: all of it.',
        },
        glob: { type: 'string', description: 'Only search files whose name matches this glob, e.g. *.md.' },
        ignore_case: { type: 'boolean', description: 'Match case-insensitively. Default false.' },
      },
      ['pattern'],
    ),
    async (args, call) => {
      const path = context.path(args.path);
      const argv = ['grep', '-rnHIZE', ...(args.ignore_case ? ['-i'] : [])];
      for (const hidden of context.hidden) argv.push(`--exclude-dir=${hidden}`);
      if (args.glob !== undefined) argv.push(`--include=${args.glob}`);
      argv.push('-e', args.pattern, '--', path);

      const handle = await context.sandbox.commands.start(argv, {
        timeoutMs: context.execTimeoutMs,
        ...call,
      });
      const matches: GrepMatch[] = [];
      let pending = '';
      let stderr = '';
      let truncated = false;
      for await (const chunk of handle) {
        if (chunk.type === 'stderr') {
          stderr += chunk.data;
          continue;
        }
        const lines = (pending + chunk.data).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const match = parseGrepLine(line);
          if (match && !context.isHidden(match.path)) matches.push(match);
        }
        if (matches.length > context.maxResults) {
          truncated = true;
          await handle.kill();
          break;
        }
      }
      const result = await handle.wait();
      // 0: matches, 1: none; 2 is an error, unless some files were still searched (an unreadable one).
      if (!truncated && result.exitCode !== 0 && result.exitCode !== 1 && matches.length === 0) {
        throw toolError('grep_files', stderr.trim() || `grep exited with ${result.exitCode}`);
      }
      return { matches: matches.slice(0, context.maxResults), truncated };
    },
  );
}

/** `path\0line:text`, as `grep -nHZ` prints a match. */
function parseGrepLine(line: string): GrepMatch | undefined {
  const nul = line.indexOf('\0');
  const colon = line.indexOf(':', nul + 1);
  if (nul === -1 || colon === -1) return undefined;
  const text = line.slice(colon + 1);
  return {
    path: line.slice(0, nul).replace(/^(\.\/)+/, ''),
    line: Number(line.slice(nul + 1, colon)),
    text: text.length > MAX_MATCH_CHARS ? `${text.slice(0, MAX_MATCH_CHARS)}...` : text,
  };
}
