/**
 * A `WorkspaceSource` over a local directory, for Node.js (node:fs). Not exported by the SDK's main
 * entry, which stays free of node: imports: import it from `@runtime-sandbox/client/harness/node`.
 */
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkSourcePath,
  DEFAULT_WORKSPACE_ROOTS,
  type SourceFile,
  type WorkspaceSource,
} from './workspace-source.js';

export interface DirectorySourceOptions {
  /**
   * Files and folders, relative to the directory, that make up the workspace; missing ones are
   * skipped. Default `DEFAULT_WORKSPACE_ROOTS` (AGENTS.md, skills, subagents, knowledge).
   */
  roots?: readonly string[];
}

/**
 * The files under `roots` of `directory`, read at every `files()` call, with their permission bits
 * (so executable scripts stay executable). Symlinks are followed; a directory reached twice through
 * links is read once. Sockets, FIFOs and devices are left out.
 */
export function directorySource(directory: string, options: DirectorySourceOptions = {}): WorkspaceSource {
  const roots = (options.roots ?? DEFAULT_WORKSPACE_ROOTS).map(checkSourcePath);
  return {
    async files(): Promise<SourceFile[]> {
      const files: SourceFile[] = [];
      const seen = new Set<string>();
      const visit = async (relative: string): Promise<void> => {
        const absolute = join(directory, relative);
        const stats = await stat(absolute).catch((error: unknown) => {
          if (isMissing(error)) return undefined;
          throw error;
        });
        if (stats?.isFile()) {
          files.push({ path: relative, bytes: await readFile(absolute), mode: stats.mode & 0o7777 });
        } else if (stats?.isDirectory()) {
          const real = await realpath(absolute);
          if (seen.has(real)) return;
          seen.add(real);
          for (const name of (await readdir(absolute)).sort()) await visit(`${relative}/${name}`);
        }
      };
      for (const root of roots) await visit(root);
      return files;
    },
  };
}

function isMissing(error: unknown): boolean {
  return error instanceof Error && 'code' in error && (error.code === 'ENOENT' || error.code === 'ENOTDIR');
}
