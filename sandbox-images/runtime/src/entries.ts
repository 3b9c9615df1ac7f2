/**
 * FileEntry values (the wire shape of stat and list answers), the mode bits sandboxd sets, lstat.
 */
import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FileEntry, FileType } from '@runtime-sandbox/contract';
import { isErrno } from './errors.js';
import type { Workspace } from './paths.js';

/**
 * Permission bits sandboxd will set on files it writes: everything but setuid and setgid, which are
 * powerless in the sandbox (no-new-privileges) but not on a host that sees the workspace.
 */
export const SETTABLE_MODE_BITS = 0o1777;

/** sandboxd's own transient names: an upload in flight, an archive being staged. */
export const UPLOAD_PREFIX = '.sandboxd-upload-';
export const STAGING_PREFIX = '.sandboxd-staging-';

/** Whether `name` is one of sandboxd's transient files, which archives of a directory leave out. */
export function isTransient(name: string): boolean {
  return name.startsWith(UPLOAD_PREFIX) || name.startsWith(STAGING_PREFIX);
}

/** lstat, or undefined when nothing is there. */
export async function lstatIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export function fileTypeOf(stats: Stats): FileType {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'other';
}

/**
 * The entry at `absolute` (inside the workspace), a symlink described as itself; `reach` is the
 * path it is read through (a descriptor's, see handles.ts), `absolute` only names it.
 */
export async function fileEntry(
  workspace: Workspace,
  absolute: string,
  reach: string,
  stats?: Stats,
): Promise<FileEntry> {
  const info = stats ?? (await lstat(reach));
  const type = fileTypeOf(info);
  return {
    name: basename(absolute),
    path: workspace.relative(absolute),
    type,
    size: info.size,
    mode: info.mode & 0o7777,
    modifiedAt: info.mtime.toISOString(),
    ...(type === 'symlink' ? { symlinkTarget: await readlink(reach) } : {}),
  };
}
