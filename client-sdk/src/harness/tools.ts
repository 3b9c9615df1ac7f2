/**
 * The agent's tools: execute, read_file, write_file, edit_file, grep_files, glob_files and
 * list_files, each with a JSON schema for function calling, over the SDK's files and commands
 * APIs. File contents travel as request bodies, never on a command line; search patterns go as
 * argv elements, never through a shell. Every path is confined to the workspace (workspace-path.ts).
 */
import type { SandboxDataPlane } from '../direct-sandbox.js';
import { SandboxError, ValidationError } from '../errors.js';
import { globToRegExp } from './glob.js';
import { HARNESS_DIR } from './projection.js';
import {
  type ArgsOf,
  objectSchema,
  type Properties,
  type ToolParameters,
  validateArgs,
} from './tool-schema.js';
import { confinePath, isWithin } from './workspace-path.js';

export interface ToolCallOptions {
  signal?: AbortSignal;
}

export interface AgentTool<Result = unknown> {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments, for the model; `run` checks arguments against it. */
  readonly parameters: ToolParameters;
  /** Runs the tool. `args` is an object or its JSON text. Throws ValidationError for bad arguments. */
  run(args: unknown, options?: ToolCallOptions): Promise<Result>;
}

/** A tool as function-calling APIs list it. */
export interface ToolDefinition {
  name: string;
  description: string;
  parameters: ToolParameters;
}

/** A tool call's outcome as data for the model: a result, or the error it should see. */
export type ToolCallOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string } };

export interface ExecuteResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Output was cut to the tool's limit (the middle is left out). */
  truncated: boolean;
}

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

export interface WriteFileResult {
  path: string;
  bytes: number;
}

export interface EditFileResult {
  path: string;
  replacements: number;
}

export interface GrepMatch {
  path: string;
  line: number;
  text: string;
}

export interface GrepResult {
  matches: GrepMatch[];
  truncated: boolean;
}

export interface GlobResult {
  paths: string[];
  truncated: boolean;
}

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

export interface AgentToolsOptions {
  /**
   * Absolute path of the workspace root in the sandbox (e.g. `/workspace`): absolute tool paths
   * must lie under it. Unknown: only relative paths are taken.
   */
  workspaceRoot?: string;
  /** `execute`'s timeout when the model gives none, and grep_files' timeout, milliseconds. Default 120000. */
  execTimeoutMs?: number;
  /** The longest timeout the model may ask `execute` for, milliseconds. Default 600000. */
  maxExecTimeoutMs?: number;
  /** Longest text a tool returns (output, file content), characters; more is cut and flagged. Default 100000. */
  maxOutputChars?: number;
  /** Most matches, paths or entries a search or listing returns. Default 500. */
  maxResults?: number;
  /** Applies to every call, e.g. the turn's lease signal. */
  signal?: AbortSignal;
  /** Workspace folders left out of listings and searches. Default the harness's own `.harness`. */
  hidden?: readonly string[];
}

const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
/** Longest matched line grep_files gives back, characters. */
const MAX_MATCH_CHARS = 500;
const MAX_READ_LINES = 2_000;
const MAX_LIST_DEPTH = 5;
const GLOB_LIST_DEPTH = 32;

export class AgentTools {
  readonly execute: AgentTool<ExecuteResult>;
  readonly readFile: AgentTool<ReadFileResult>;
  readonly writeFile: AgentTool<WriteFileResult>;
  readonly editFile: AgentTool<EditFileResult>;
  readonly grepFiles: AgentTool<GrepResult>;
  readonly globFiles: AgentTool<GlobResult>;
  readonly listFiles: AgentTool<ListResult>;
  /** Every tool, in the order above. */
  readonly all: readonly AgentTool[];
  private readonly byName: ReadonlyMap<string, AgentTool>;

  constructor(
    private readonly sandbox: SandboxDataPlane,
    private readonly options: AgentToolsOptions = {},
  ) {
    const maxExecTimeoutMs = options.maxExecTimeoutMs ?? 600_000;
    this.execute = this.tool(
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
            maximum: maxExecTimeoutMs,
          },
        },
        ['command'],
      ),
      (args, call) => this.runCommand(args, call),
    );
    this.readFile = this.tool(
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
      (args, call) => this.read(args, call),
    );
    this.writeFile = this.tool(
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
        const path = this.path(args.path);
        const entry = await this.sandbox.files.write(path, args.content, call);
        return { path, bytes: entry.size };
      },
    );
    this.editFile = this.tool(
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
      (args, call) => this.edit(args, call),
    );
    this.grepFiles = this.tool(
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
      (args, call) => this.grep(args, call),
    );
    this.globFiles = this.tool(
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
      (args, call) => this.glob(args, call),
    );
    this.listFiles = this.tool(
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
      (args, call) => this.list(args, call),
    );
    this.all = [
      this.execute,
      this.readFile,
      this.writeFile,
      this.editFile,
      this.grepFiles,
      this.globFiles,
      this.listFiles,
    ];
    this.byName = new Map(this.all.map((tool) => [tool.name, tool]));
  }

  /** The tools as function-calling APIs take them. */
  definitions(): ToolDefinition[] {
    return this.all.map(({ name, description, parameters }) => ({ name, description, parameters }));
  }

  get(name: string): AgentTool | undefined {
    return this.byName.get(name);
  }

  /**
   * Runs the named tool the way a model asks for it (arguments as an object or JSON text) and
   * gives the outcome as data: the SDK's errors (bad arguments, a missing file, a path outside the
   * workspace) become `{ ok: false, error }` for the model to read; other failures are thrown.
   */
  async call(name: string, args: unknown, options: ToolCallOptions = {}): Promise<ToolCallOutcome> {
    const tool = this.byName.get(name);
    if (!tool) {
      return {
        ok: false,
        error: { code: 'VALIDATION_ERROR', message: `there is no tool named ${JSON.stringify(name)}` },
      };
    }
    try {
      return { ok: true, result: await tool.run(args, options) };
    } catch (error) {
      if (error instanceof SandboxError)
        return { ok: false, error: { code: error.code, message: error.message } };
      throw error;
    }
  }

  private tool<P extends Properties, R extends keyof P & string, Result>(
    name: string,
    description: string,
    parameters: ToolParameters<P, R>,
    run: (args: ArgsOf<P, R>, call: ToolCallOptions) => Promise<Result>,
  ): AgentTool<Result> {
    return {
      name,
      description,
      parameters,
      run: (args, options = {}) => run(validateArgs(name, parameters, args), this.callOptions(options)),
    };
  }

  /** The per-call signal and the toolkit's, whichever aborts first. */
  private callOptions(options: ToolCallOptions): ToolCallOptions {
    const signals = [options.signal, this.options.signal].filter((signal) => signal !== undefined);
    if (signals.length === 0) return {};
    return { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) };
  }

  private path(path: string | undefined): string {
    return confinePath(path ?? '.', this.options.workspaceRoot);
  }

  private isHidden(path: string): boolean {
    return (this.options.hidden ?? [HARNESS_DIR]).some((hidden) => isWithin(path, hidden));
  }

  private get maxOutputChars(): number {
    return this.options.maxOutputChars ?? 100_000;
  }

  private get maxResults(): number {
    return this.options.maxResults ?? 500;
  }

  private async runCommand(
    args: { command: string; cwd?: string; timeout_ms?: number },
    call: ToolCallOptions,
  ): Promise<ExecuteResult> {
    const result = await this.sandbox.commands.run(args.command, {
      cwd: this.path(args.cwd),
      timeoutMs: args.timeout_ms ?? this.options.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
      ...call,
    });
    const stdout = clip(result.stdout, this.maxOutputChars);
    const stderr = clip(result.stderr, this.maxOutputChars);
    return {
      exitCode: result.exitCode,
      stdout: stdout.text,
      stderr: stderr.text,
      timedOut: result.timedOut,
      truncated: stdout.cut || stderr.cut || result.stdoutTruncated || result.stderrTruncated,
    };
  }

  private async read(
    args: { path: string; offset?: number; limit?: number },
    call: ToolCallOptions,
  ): Promise<ReadFileResult> {
    const path = this.path(args.path);
    const text = decodeText(path, await this.sandbox.files.read(path, { as: 'bytes', ...call }));
    const lines = text.split('\n');
    if (text.endsWith('\n')) lines.pop();
    const startLine = args.offset ?? 1;
    const selected = lines.slice(startLine - 1, startLine - 1 + (args.limit ?? MAX_READ_LINES));
    const content = clip(selected.join('\n'), this.maxOutputChars);
    return {
      path,
      content: content.text,
      startLine,
      endLine: startLine + selected.length - 1,
      totalLines: lines.length,
      truncated: content.cut || startLine - 1 + selected.length < lines.length,
    };
  }

  private async edit(
    args: { path: string; old_string: string; new_string: string; replace_all?: boolean },
    call: ToolCallOptions,
  ): Promise<EditFileResult> {
    const path = this.path(args.path);
    const text = decodeText(path, await this.sandbox.files.read(path, { as: 'bytes', ...call }));
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
    await this.sandbox.files.write(path, pieces.join(args.new_string), call);
    return { path, replacements: occurrences };
  }

  private async grep(
    args: { pattern: string; path?: string; glob?: string; ignore_case?: boolean },
    call: ToolCallOptions,
  ): Promise<GrepResult> {
    const path = this.path(args.path);
    const argv = ['grep', '-rnHIZE', ...(args.ignore_case ? ['-i'] : [])];
    for (const hidden of this.options.hidden ?? [HARNESS_DIR]) argv.push(`--exclude-dir=${hidden}`);
    if (args.glob !== undefined) argv.push(`--include=${args.glob}`);
    argv.push('-e', args.pattern, '--', path);

    // Streamed, so a search that matches everything stops at the limit instead of filling memory.
    const handle = await this.sandbox.commands.start(argv, {
      timeoutMs: this.options.execTimeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
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
        if (match && !this.isHidden(match.path)) matches.push(match);
      }
      if (matches.length > this.maxResults) {
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
    return { matches: matches.slice(0, this.maxResults), truncated };
  }

  private async glob(args: { pattern: string; path?: string }, call: ToolCallOptions): Promise<GlobResult> {
    const base = this.path(args.path);
    const pattern = globToRegExp(args.pattern);
    const entries = await this.sandbox.files.list(base, { depth: GLOB_LIST_DEPTH, ...call });
    const paths = entries
      .filter((entry) => entry.type !== 'directory' && !this.isHidden(entry.path))
      .filter((entry) => pattern.test(base === '.' ? entry.path : entry.path.slice(base.length + 1)))
      .map((entry) => entry.path)
      .sort();
    return { paths: paths.slice(0, this.maxResults), truncated: paths.length > this.maxResults };
  }

  private async list(args: { path?: string; depth?: number }, call: ToolCallOptions): Promise<ListResult> {
    const entries = (await this.sandbox.files.list(this.path(args.path), { depth: args.depth ?? 1, ...call }))
      .filter((entry) => !this.isHidden(entry.path))
      .map((entry) => ({
        path: entry.path,
        type: entry.type,
        size: entry.size,
        mode: entry.mode.toString(8),
      }));
    return { entries: entries.slice(0, this.maxResults), truncated: entries.length > this.maxResults };
  }
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

/** UTF-8 text, or a ValidationError for a binary file (tools show text to a model). */
function decodeText(path: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ValidationError({
      code: 'VALIDATION_ERROR',
      message: `${path} is not UTF-8 text; use execute to inspect binary files`,
      details: { path },
    });
  }
}

/** At most `max` characters: the start and the end, with a marker where the middle was cut. */
function clip(text: string, max: number): { text: string; cut: boolean } {
  if (text.length <= max) return { text, cut: false };
  const half = Math.floor(max / 2);
  return {
    text: `${text.slice(0, half)}\n[... ${text.length - 2 * half} characters cut ...]\n${text.slice(-half)}`,
    cut: true,
  };
}

function toolError(tool: string, message: string): ValidationError {
  return new ValidationError({ code: 'VALIDATION_ERROR', message: `${tool}: ${message}`, details: { tool } });
}
