/**
 * A sandbox's /workspace on the host, made before its container and removed after it.
 *
 * With quotas (WORKSPACE_QUOTA, the default) each workspace is a file system of its own, so the
 * kernel stops writes at the type's `workspaceMiB` with ENOSPC: a sparse ext4 image, loop-mounted
 * nosuid,nodev on the workspace dir. The image file sits inside that very dir, hidden under the
 * mount: the dir stays the one thing a record names, and removing it once unmounted removes the
 * image too. The loop device is set up with autoclear, so it goes with the last unmount.
 *
 * Without quotas it is a plain directory on the host's disk, with nothing but the disk's size to
 * stop what the code writes there.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm, rmdir, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { messageOf } from '../errors.js';
import { mountOptionsAt } from '../mount-table.js';
import type { Logger } from '../observability/logger.js';

const run = promisify(execFile);

/** The image file's name inside the workspace dir it is mounted on. */
const IMAGE_NAME = '.workspace.ext4';
/** Small enough to make in a few ms, for the start-up check. */
const PROBE_MIB = 8;
const MIB = 1024 * 1024;

export interface WorkspaceOwner {
  uid: number;
  gid: number;
}

export interface WorkspaceStorage {
  /** Makes `dir` (which must not exist) as a workspace of `sizeMiB`, mode 0700 and `owner`'s. */
  provide(dir: string, sizeMiB: number, owner: WorkspaceOwner): Promise<void>;
  /** Removes the workspace at `dir` and everything in it; succeeds if it is gone already. */
  release(dir: string): Promise<void>;
}

/** Workspaces whose size the kernel enforces (loop-mounted ext4 images). */
export class QuotaWorkspaces implements WorkspaceStorage {
  /** Throws, saying why, when this process cannot make and mount a workspace file system. */
  static async check(): Promise<void> {
    const dir = join(await mkdtemp(join(tmpdir(), 'rsbx-quota-check-')), 'workspace');
    const storage = new QuotaWorkspaces();
    try {
      await storage.provide(dir, PROBE_MIB, { uid: 0, gid: 0 });
    } finally {
      await storage.release(dir);
      await rmdir(join(dir, '..'));
    }
  }

  async provide(dir: string, sizeMiB: number, owner: WorkspaceOwner): Promise<void> {
    await mkdir(dir, { mode: 0o700 });
    const image = join(dir, IMAGE_NAME);
    try {
      // Sparse: the host's disk holds only what the sandbox wrote. No journal and no reserved
      // blocks (nothing to recover after a crash; all of it is the sandbox's), and the root made
      // the owner's by mkfs itself.
      await writeFile(image, '', { mode: 0o600 });
      await truncate(image, sizeMiB * MIB);
      await run('mkfs.ext4', [
        '-q',
        '-F',
        '-m',
        '0',
        '-O',
        '^has_journal',
        '-E',
        `nodiscard,lazy_itable_init=1,root_owner=${owner.uid}:${owner.gid}`,
        image,
      ]);
      await run('mount', ['-o', 'loop,nosuid,nodev,noatime', image, dir]);
      // mkfs's lost+found would show in /workspace; fsck is never run on these.
      await rmdir(join(dir, 'lost+found'));
      await chmod(dir, 0o700);
    } catch (err) {
      await this.release(dir).catch(() => undefined);
      throw new Error(`cannot make a ${sizeMiB} MiB workspace file system at ${dir}: ${stderrOf(err)}`, {
        cause: err,
      });
    }
  }

  async release(dir: string): Promise<void> {
    if ((await mountOptionsAt(dir)) !== undefined) {
      // A process still inside it (a host shell, say) makes it busy: detach it lazily then; the
      // loop device and the (by then removed) image go when that last user does.
      await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
    }
    await rm(dir, { recursive: true, force: true });
  }
}

/** Workspaces as plain host directories, bounded by nothing but the host's disk. */
export class PlainWorkspaces implements WorkspaceStorage {
  private warnedChown = false;

  constructor(private readonly logger: Logger) {}

  async provide(dir: string, _sizeMiB: number, owner: WorkspaceOwner): Promise<void> {
    await mkdir(dir, { mode: 0o700 });
    try {
      await chown(dir, owner.uid, owner.gid);
    } catch (err) {
      // A server that is not root cannot hand the directory over; the sandbox user must still write,
      // and the 0700 workspace root keeps everyone else out.
      if (!this.warnedChown) {
        this.logger.warn(
          { err: messageOf(err), dir },
          `cannot chown workspace dirs to ${owner.uid}:${owner.gid} (not root?); making them world-writable instead`,
        );
        this.warnedChown = true;
      }
      await chmod(dir, 0o777);
    }
  }

  async release(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What a failed command said on stderr, else the error's message. */
function stderrOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'stderr' in err && typeof err.stderr === 'string') {
    const text = err.stderr.trim();
    if (text !== '') return text;
  }
  return messageOf(err);
}
