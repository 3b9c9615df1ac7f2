/**
 * Workspace projection: brings a sandbox's copy of the agent's workspace definition in line with
 * its source. Per call: hash the source, read the manifest the last projection left in the
 * sandbox, upload new and changed files in one tar (modes included, so scripts stay executable),
 * remove files the source dropped, and write the new manifest. Unchanged files do not travel.
 */
import type { SandboxDataPlane } from '../direct-sandbox.js';
import { SandboxError, ValidationError } from '../errors.js';
import { sha256Hex } from './digest.js';
import { diffManifests, type Manifest, type ManifestFiles, parseManifest } from './manifest.js';
import { tarArchive } from './tar.js';
import { checkSourcePath, type SourceFile, type WorkspaceSource } from './workspace-source.js';

/** Where the harness keeps its own state in the workspace; tools leave it out of listings. */
export const HARNESS_DIR = '.harness';
export const DEFAULT_MANIFEST_PATH = `${HARNESS_DIR}/manifest.json`;

/** Removals sent at once. */
const REMOVE_CONCURRENCY = 8;

export interface ProjectionOptions {
  /** Folder of the workspace the source lands in, created if missing. Default `.`, the workspace root. */
  target?: string;
  /** Where the manifest is kept, relative to the workspace root. Default `.harness/manifest.json`. */
  manifestPath?: string;
  signal?: AbortSignal;
}

export interface ProjectionResult {
  /** Workspace-relative paths sent in this call's archive (new and changed files). */
  uploaded: string[];
  /** Workspace-relative paths removed because the source no longer has them. */
  removed: string[];
  /** Files already in place. */
  unchanged: number;
  /** Size of the uploaded archive; 0 when nothing was sent. */
  archiveBytes: number;
}

type DataPlane = Pick<SandboxDataPlane, 'files' | 'archive'>;

export async function projectWorkspace(
  sandbox: DataPlane,
  source: WorkspaceSource,
  options: ProjectionOptions = {},
): Promise<ProjectionResult> {
  const target =
    options.target === undefined || options.target === '.' ? '' : checkSourcePath(options.target);
  const manifestPath = checkSourcePath(options.manifestPath ?? DEFAULT_MANIFEST_PATH);
  const call = options.signal ? { signal: options.signal } : {};
  const inWorkspace = (path: string) => (target === '' ? path : `${target}/${path}`);

  const byPath = new Map<string, SourceFile>();
  for (const file of await source.files()) {
    const path = inWorkspace(checkSourcePath(file.path));
    if (byPath.has(path)) throw invalid(`the workspace source lists ${path} twice`, { path });
    if (path === manifestPath)
      throw invalid(`the workspace source may not write ${path}, the manifest`, { path });
    byPath.set(path, file);
  }
  const next: ManifestFiles = {};
  for (const [path, file] of byPath) {
    next[path] = { sha256: await sha256Hex(file.bytes), mode: file.mode & 0o777 };
  }

  const previousText = await readIfPresent(sandbox, manifestPath, call);
  const diff = diffManifests(parseManifest(previousText).files, next);

  let archiveBytes = 0;
  if (diff.changed.length > 0) {
    const tar = tarArchive(
      diff.changed.map((path) => {
        const file = byPath.get(path) as SourceFile;
        return {
          path: path.slice(target === '' ? 0 : target.length + 1),
          bytes: file.bytes,
          mode: file.mode & 0o777,
        };
      }),
    );
    archiveBytes = tar.length;
    await sandbox.archive.upload(target === '' ? '.' : target, tar, call);
  }
  for (let i = 0; i < diff.removed.length; i += REMOVE_CONCURRENCY) {
    await Promise.all(
      diff.removed.slice(i, i + REMOVE_CONCURRENCY).map((path) => removeIfPresent(sandbox, path, call)),
    );
  }
  await pruneEmptyParents(sandbox, diff.removed, target, call);

  const manifest: Manifest = { version: 1, files: next };
  const manifestText = `${JSON.stringify(manifest, null, 1)}\n`;
  if (manifestText !== previousText) await sandbox.files.write(manifestPath, manifestText, call);
  return { uploaded: diff.changed, removed: diff.removed, unchanged: diff.unchanged, archiveBytes };
}

async function readIfPresent(sandbox: DataPlane, path: string, call: { signal?: AbortSignal }) {
  try {
    return await sandbox.files.read(path, call);
  } catch (error) {
    if (isGone(error)) return undefined;
    throw error;
  }
}

/** Someone (the agent, say) may have removed it already; that is the wanted outcome. */
async function removeIfPresent(sandbox: DataPlane, path: string, call: { signal?: AbortSignal }) {
  try {
    await sandbox.files.remove(path, call);
  } catch (error) {
    if (!isGone(error)) throw error;
  }
}

/** Removes directories the removals left empty, deepest first, up to (not including) the target. */
async function pruneEmptyParents(
  sandbox: DataPlane,
  removed: readonly string[],
  target: string,
  call: { signal?: AbortSignal },
): Promise<void> {
  const parents = new Set<string>();
  for (const path of removed) {
    for (let slash = path.lastIndexOf('/'); slash > target.length; slash = path.lastIndexOf('/', slash - 1)) {
      parents.add(path.slice(0, slash));
    }
  }
  const deepestFirst = [...parents].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const directory of deepestFirst) {
    try {
      // Whatever the agent put in its place is not ours to remove.
      if ((await sandbox.files.stat(directory, call)).type !== 'directory') continue;
      await sandbox.files.remove(directory, call);
    } catch (error) {
      // Not empty (more projected files, or the agent's own), or already gone: left as it is.
      if (!(error instanceof SandboxError && (error.code === 'DIRECTORY_NOT_EMPTY' || isGone(error)))) {
        throw error;
      }
    }
  }
}

function isGone(error: unknown): boolean {
  return (
    error instanceof SandboxError && (error.code === 'FILE_NOT_FOUND' || error.code === 'NOT_A_DIRECTORY')
  );
}

function invalid(message: string, details: Record<string, unknown>): ValidationError {
  return new ValidationError({ code: 'VALIDATION_ERROR', message, details });
}
