/**
 * The deployment's folder of workspace dirs on the host (`<DEFAULT_MOUNT_DIR>/<deployment id>`).
 * Code in a sandbox owns its workspace and may put anything there, a setuid binary or a device
 * node included, so the folder opens no door to the host:
 * - it is mode 0700 and owned by the server's user: no other host user reaches a workspace;
 * - it is bound onto itself with nosuid,nodev (when the server may mount, i.e. runs as root), and
 *   every workspace bind-mounted into a container inherits those flags, so even root on the host
 *   running a file from there gets no setuid and opens no device.
 * The mount survives a crash (the next start of the deployment finds it and keeps it) and goes when
 * the deployment's last replica removes the folder.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { messageOf } from '../errors.js';
import { mountOptionsAt } from '../mount-table.js';
import type { Logger } from '../observability/logger.js';

const run = promisify(execFile);

/** Sandbox ids as they may name a workspace dir (ids from container labels are not trusted to). */
const PLAIN_ID = /^[A-Za-z0-9_-]+$/;

export class WorkspaceRoot {
  private ensured: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** The workspace dir of sandbox `sandboxId`; undefined for an id that cannot name one. */
  dirOf(sandboxId: string): string | undefined {
    return PLAIN_ID.test(sandboxId) ? join(this.path, sandboxId) : undefined;
  }

  /** The sandbox ids that have a workspace dir here. */
  async ids(): Promise<string[]> {
    const entries = await readdir(this.path, { withFileTypes: true }).catch((err: unknown) => {
      if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return [];
      throw err;
    });
    return entries.filter((entry) => entry.isDirectory() && PLAIN_ID.test(entry.name)).map((e) => e.name);
  }

  /** Makes the folder and hardens it once per process; later calls wait for the first. */
  ensure(): Promise<void> {
    this.ensured ??= this.prepare().catch((err: unknown) => {
      this.ensured = undefined;
      throw err;
    });
    return this.ensured;
  }

  /** Unmounts and removes the folder if it is empty (anything still in it stays, and is reported). */
  async remove(): Promise<void> {
    this.ensured = undefined;
    if ((await mountOptionsAt(this.path)) !== undefined) {
      await run('umount', [this.path]).catch((err: unknown) =>
        this.logger.warn({ dir: this.path, err: messageOf(err) }, 'cannot unmount the workspace root'),
      );
    }
    await rmdir(this.path).catch((err: unknown) => {
      const gone = err instanceof Error && 'code' in err && err.code === 'ENOENT';
      if (!gone) this.logger.warn({ dir: this.path, err: messageOf(err) }, 'workspace root left behind');
    });
  }

  private async prepare(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    await chmod(this.path, 0o700);
    const options = await mountOptionsAt(this.path);
    if (options?.includes('nosuid') && options.includes('nodev')) return;
    try {
      if (options === undefined) await run('mount', ['--bind', this.path, this.path]);
      await run('mount', ['-o', 'remount,bind,nosuid,nodev', this.path]);
    } catch (err) {
      // Not root, or no mount rights (a server in a container): the 0700 folder still keeps other
      // host users out, which is the door that matters; say what is missing.
      this.logger.warn(
        { dir: this.path, err: messageOf(err).trim() },
        'cannot mount the workspace root nosuid,nodev; relying on its 0700 mode alone',
      );
    }
  }
}
