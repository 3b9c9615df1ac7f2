/**
 * The projection manifest kept inside the sandbox: what the harness last put there, per file its
 * sha256 and mode, so the next projection sends only what changed and removes what went away.
 * It lives in the workspace, so snapshots carry it along with the files it describes.
 */
import { isRecord } from '../errors.js';

/** Workspace-relative path -> what was projected there. */
export type ManifestFiles = Record<string, { sha256: string; mode: number }>;

export interface Manifest {
  version: 1;
  files: ManifestFiles;
}

export interface ManifestDiff {
  /** New files, and files whose bytes or mode changed. */
  changed: string[];
  /** Files in the old manifest that the source no longer has. */
  removed: string[];
  unchanged: number;
}

/** The manifest in `text`, or an empty one when it is missing or unreadable (everything is then sent again). */
export function parseManifest(text: string | undefined): Manifest {
  const empty: Manifest = { version: 1, files: {} };
  if (text === undefined) return empty;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return empty;
  }
  if (!isRecord(parsed) || parsed.version !== 1 || !isRecord(parsed.files)) return empty;
  const files: ManifestFiles = {};
  for (const [path, entry] of Object.entries(parsed.files)) {
    if (isRecord(entry) && typeof entry.sha256 === 'string' && typeof entry.mode === 'number') {
      files[path] = { sha256: entry.sha256, mode: entry.mode };
    }
  }
  return { version: 1, files };
}

export function diffManifests(previous: ManifestFiles, next: ManifestFiles): ManifestDiff {
  const changed: string[] = [];
  let unchanged = 0;
  for (const [path, entry] of Object.entries(next)) {
    const old = previous[path];
    if (old?.sha256 === entry.sha256 && old.mode === entry.mode) unchanged++;
    else changed.push(path);
  }
  const removed = Object.keys(previous).filter((path) => !Object.hasOwn(next, path));
  return { changed: changed.sort(), removed: removed.sort(), unchanged };
}
