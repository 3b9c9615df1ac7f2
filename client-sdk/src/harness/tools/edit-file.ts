/** `edit_file`: replaces an exact piece of text, once unless asked for every occurrence. */
import { objectSchema } from '../tool-schema.js';
import { type AgentTool, decodeText, type ToolContext, toolError } from './context.js';

export interface EditFileResult {
  path: string;
  replacements: number;
}

export function editFileTool(context: ToolContext): AgentTool<EditFileResult> {
  return context.defineTool(
    'edit_file',
    'Replaces an exact piece of text in a workspace file. old_string must occur exactly once unless replace_all is true.',
    objectSchema(
      {
        path: { type: 'string', description: 'File path, relative to the workspace.', minLength: 1 },
        old_string: { type: 'string', description: 'The exact text to replace.', minLength: 1 },
        new_string: { type: 'string', description: 'The text to put in its place.' },
        replace_all: { type: 'boolean', description: 'Replace every occurrence. Default false.' },
      },
      ['path', 'old_string', 'new_string'],
    ),
    async (args, call) => {
      const path = context.path(args.path);
      const text = decodeText(path, await context.sandbox.files.read(path, { as: 'bytes', ...call }));
      const pieces = text.split(args.old_string);
      const occurrences = pieces.length - 1;
      if (occurrences === 0) throw toolError('edit_file', `old_string does not occur in ${path}`);
      if (occurrences > 1 && !args.replace_all) {
        throw toolError(
          'edit_file',
          `old_string occurs ${occurrences} times in ${path}; give more surrounding text or set replace_all`,
        );
      }
      // Joined by hand, not String.replace, whose `$&`-style patterns would rewrite new_string.
      await context.sandbox.files.write(path, pieces.join(args.new_string), call);
      return { path, replacements: occurrences };
    },
  );
}
