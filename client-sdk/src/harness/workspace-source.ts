/**
 * Where an agent's workspace definition comes from: a `WorkspaceSource` lists its files with their
 * bytes and permission bits. The core holds only the interface and an in-memory source, so it runs
 * anywhere; `directorySource` (./node-source.ts, a separate entry) reads a local directory with node:fs.
 */
import { ValidationError } from '../errors.js';

/** What a projection carries by default: the agent's instructions, skills, subagents and knowledge. */
export const DEFAULT_WORKSPACE_ROOTS: readonly string[] = ['AGENTS.md', 'skills', 'subagents', 'knowledge'];

export interface SourceFile {
  /** Path relative to the source, `/`-separated, without `.` or `..` segments. */
  path: string;
  bytes: Uint8Array;
  /** Permission bits, e.g. 0o755 for an executable script. */
  mode: number;
}

export interface WorkspaceSource {
  /** Every file to project, now. Called once per turn. */
  files(): Promise<SourceFile[]>;
}

/** What `memorySource` takes per path: text or bytes (mode 0644), or those with a mode. */
export type MemoryFile = string | Uint8Array | { content: string | Uint8Array; mode?: number };

/**
 * A source held in memory, e.g. an agent definition kept in a database: a record of path -> file,
 * or a function giving one. Read again at every `files()` call, so changes to it reach the next turn.
 */
export function memorySource(
  files:
    | Record<string, MemoryFile>
    | (() => Record<string, MemoryFile> | Promise<Record<string, MemoryFile>>),
): WorkspaceSource {
  return {
    async files(): Promise<SourceFile[]> {
      const record = typeof files === 'function' ? await files() : files;
      return Object.entries(record).map(([path, file]) => {
        const { content, mode } =
          typeof file === 'string' || file instanceof Uint8Array ? { content: file } : file;
        return {
          path: checkSourcePath(path),
          bytes: typeof content === 'string' ? new TextEncoder().encode(content) : content,
          mode: mode ?? 0o644,
        };
      });
    },
  };
}

/** A source path as the projection stores it; refuses absolute paths and `..` (they would leave the target). */
export function checkSourcePath(path: string): string {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (path.startsWith('/') || parts.length === 0 || parts.includes('..') || path.includes('\0')) {
    throw new ValidationError({
      code: 'VALIDATION_ERROR',
      message: `workspace source path ${JSON.stringify(path)} must be relative and stay inside the source`,
      details: { path },
    });
  }
  return parts.join('/');
}
