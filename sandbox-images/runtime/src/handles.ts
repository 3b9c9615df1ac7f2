/**
 * Check and use as one operation. sandboxd runs as root while the code it runs owns the workspace
 * and may swap any directory in it for a symlink at any moment, so a path checked a moment ago
 * proves nothing. Every read and every change therefore goes through a descriptor: a directory is
 * opened (its last component never followed), the kernel's name for the open directory is checked
 * against the workspace root, and names in it are then reached through `/proc/self/fd/<fd>/<name>`,
 * which is that very directory whatever has happened to its path since (openat, in Node's terms).
 */
import { constants } from 'node:fs';
import {
  type FileHandle,
  lchown,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rmdir,
  unlink,
} from 'node:fs/promises';
import type { RunAsIds } from '@runtime-sandbox/contract';
import { isErrno, SandboxdError } from './errors.js';
import type { Workspace } from './paths.js';

/** The identity every process runs as and every created file belongs to. */
export interface RunAs extends RunAsIds {
  /** Whether sandboxd is root: it then switches to this identity for processes and chowns what it creates. */
  switchUser: boolean;
}

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** For reads: a FIFO must not hang the open, and a terminal must not become sandboxd's. */
export const READ_FLAGS =
  constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY;
/** For new files: never an existing one, never through a symlink. */
export const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

const outside = (path: string | undefined) =>
  new SandboxdError(
    'PATH_OUTSIDE_WORKSPACE',
    'The path resolves outside the workspace root',
    path === undefined ? undefined : { path },
  );

/**
 * Throws PATH_OUTSIDE_WORKSPACE unless the open `handle` is the root or inside it. readlink, not
 * realpath: the kernel's name of the open file, where realpath would look that name up again
 * (and the sandbox could redirect that lookup).
 */
async function confine(workspace: Workspace, handle: FileHandle, userPath?: string): Promise<void> {
  const real = await readlink(`/proc/self/fd/${handle.fd}`);
  if (!workspace.contains(real)) throw outside(userPath);
}

/** Opens `path` with `flags` (plus O_NOFOLLOW), closed again unless it is inside the workspace. */
export async function openConfined(
  workspace: Workspace,
  path: string,
  flags: number,
  userPath?: string,
  mode?: number,
): Promise<FileHandle> {
  const handle = await open(path, flags | constants.O_NOFOLLOW, mode);
  try {
    await confine(workspace, handle, userPath);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Gives a new file or directory to the run-as user (a no-op when sandboxd is that user already). */
export async function own(handle: FileHandle, runAs: RunAs): Promise<void> {
  if (runAs.switchUser) await handle.chown(runAs.uid, runAs.gid);
}

/**
 * Gives `path` (a symlink itself, if it is one) to the run-as user. Only for paths no one else can
 * reach, such as inside an archive's staging directory.
 */
export async function ownPath(path: string, runAs: RunAs): Promise<void> {
  if (runAs.switchUser) await lchown(path, runAs.uid, runAs.gid);
}

/** A directory open inside the workspace. */
export class Dir {
  private constructor(
    private readonly handle: FileHandle,
    private readonly workspace: Workspace,
  ) {}

  /** Opens the directory at `path` (its last component not followed) and checks it is in the workspace. */
  static async open(workspace: Workspace, path: string, userPath?: string): Promise<Dir> {
    return new Dir(await openConfined(workspace, path, DIRECTORY_FLAGS, userPath), workspace);
  }

  /** A path to this directory that cannot be redirected. */
  get path(): string {
    return `/proc/self/fd/${this.handle.fd}`;
  }

  /** A path to the entry `name` (one component) in this directory; the entry itself may be a link. */
  child(name: string): string {
    if (name.includes('/') || name === '..' || name === '.' || name === '') {
      throw new SandboxdError('VALIDATION_ERROR', 'Not a single path component', { name });
    }
    return `${this.path}/${name}`;
  }

  openDir(name: string, userPath?: string): Promise<Dir> {
    return Dir.open(this.workspace, this.child(name), userPath);
  }

  /** The open directory itself, e.g. for fstat, fchmod or futimes. */
  get file(): FileHandle {
    return this.handle;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Runs `work` with `dir`, then closes it. */
export async function using<T>(dir: Dir, work: (dir: Dir) => Promise<T>): Promise<T> {
  try {
    return await work(dir);
  } finally {
    await dir.close();
  }
}

/**
 * The directory at `absolute` (a physical path inside the workspace), made with its missing
 * parents like `mkdir -p`, each new one given to the run-as user before anything goes into it.
 */
export async function ensureDirectory(
  workspace: Workspace,
  runAs: RunAs,
  absolute: string,
  userPath?: string,
): Promise<Dir> {
  let existing = absolute;
  while (!(await lstatIfPresent(existing)) && !workspace.isRoot(existing)) {
    existing = existing.slice(0, existing.lastIndexOf('/')) || '/';
  }
  const missing = absolute.slice(existing.length).split('/').filter(Boolean);
  let dir = await Dir.open(workspace, existing, userPath);
  try {
    for (const name of missing) {
      let made = true;
      try {
        await mkdir(dir.child(name), 0o755);
      } catch (err) {
        // Made meanwhile by someone else: used as it is, and left to its owner.
        if (!isErrno(err, 'EEXIST')) throw err;
        made = false;
      }
      const next = await dir.openDir(name, userPath);
      await dir.close();
      dir = next;
      if (made) await own(dir.file, runAs);
    }
    return dir;
  } catch (err) {
    await dir.close();
    throw err;
  }
}

async function lstatIfPresent(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

/**
 * Removes the entry `name` in `parent`, a directory with everything in it. Unlike fs.rm, every
 * level is entered through a descriptor, so a subdirectory swapped for a link mid-way cannot make
 * it delete what the link points to.
 */
export async function removeEntry(parent: Dir, name: string): Promise<void> {
  const path = parent.child(name);
  if (!(await lstat(path)).isDirectory()) {
    await unlink(path);
    return;
  }
  await using(await parent.openDir(name), async (dir) => {
    for (const child of await readdir(dir.path)) await removeEntry(dir, child);
  });
  await rmdir(path);
}
