/**
 * The agent's tools: execute, read_file, write_file, edit_file, grep_files, glob_files and
 * list_files, each with a JSON schema for function calling, over the SDK's files and commands
 * APIs, one module each. File contents travel as request bodies, never on a command line; search
 * patterns go as argv elements, never through a shell. Every path is confined to the workspace.
 */
import type { SandboxDataPlane } from '../../direct-sandbox.js';
import { SandboxError } from '../../errors.js';
import type { ToolParameters } from '../tool-schema.js';
import { type AgentTool, type AgentToolsOptions, type ToolCallOptions, ToolContext } from './context.js';
import { type EditFileResult, editFileTool } from './edit-file.js';
import { type ExecuteResult, executeTool } from './execute.js';
import { type GlobResult, globFilesTool } from './glob-files.js';
import { type GrepResult, grepFilesTool } from './grep-files.js';
import { type ListResult, listFilesTool } from './list-files.js';
import { type ReadFileResult, readFileTool } from './read-file.js';
import { type WriteFileResult, writeFileTool } from './write-file.js';

export type { AgentTool, AgentToolsOptions, ToolCallOptions } from './context.js';
export type { EditFileResult } from './edit-file.js';
export type { ExecuteResult } from './execute.js';
export type { GlobResult } from './glob-files.js';
export type { GrepMatch, GrepResult } from './grep-files.js';
export type { ListEntry, ListResult } from './list-files.js';
export type { ReadFileResult } from './read-file.js';
export type { WriteFileResult } from './write-file.js';

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

  constructor(sandbox: SandboxDataPlane, options: AgentToolsOptions = {}) {
    const context = new ToolContext(sandbox, options);
    this.execute = executeTool(context);
    this.readFile = readFileTool(context);
    this.writeFile = writeFileTool(context);
    this.editFile = editFileTool(context);
    this.grepFiles = grepFilesTool(context);
    this.globFiles = globFilesTool(context);
    this.listFiles = listFilesTool(context);
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
}
