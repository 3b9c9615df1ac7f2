/**
 * Confinement: every caller path is resolved against the workspace root with symlinks followed the
 * way the kernel would follow them (dangling links included), and refused if it lands outside.
 */
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isErrno, SandboxdError } from './errors.js';

/** As many links as Linux follows in one lookup before ELOOP. */
const MAX_SYMLINKS = 40;

export class Workspace {
  private constructor(readonly root: string) {}

  /** The workspace at `dir`, which must be an existing directory; its real path becomes the root. */
  static async open(dir: string): Promise<Workspace> {
    const root = await realpath(dir);
    if (!(await stat(root)).isDirectory()) {
      throw new SandboxdError('NOT_A_DIRECTORY', 'The workspace root is not a directory', { path: dir });
    }
    return new Workspace(root);
  }

  /** The physical path `userPath` names, every symlink followed. For reading and writing contents. */
  async resolve(userPath: string): Promise<string> {
    return this.confine(userPath, await this.physical(this.lexical(userPath)));
  }

  /**
   * The path of the entry `userPath` names: its parent resolved, its last component itself (not
   * followed if it is a symlink). For stat, delete and move, which act on links, not their targets.
   */
  async resolveEntry(userPath: string): Promise<string> {
    const lexical = this.lexical(userPath);
    if (lexical === this.root) return this.root;
    const parent = await this.physical(dirname(lexical));
    return this.confine(userPath, join(parent, basename(lexical)));
  }

  isRoot(absolute: string): boolean {
    return absolute === this.root;
  }

  /** `absolute` relative to the root, with `/` separators; `.` for the root. */
  relative(absolute: string): string {
    return absolute === this.root ? '.' : absolute.slice(this.prefix().length);
  }

  contains(absolute: string): boolean {
    return absolute === this.root || absolute.startsWith(this.prefix());
  }

  private prefix(): string {
    return this.root === '/' ? '/' : `${this.root}/`;
  }

  private lexical(userPath: string): string {
    if (userPath.includes('\0'))
      throw new SandboxdError('VALIDATION_ERROR', 'Paths may not contain NUL bytes');
    return resolve(this.root, userPath);
  }

  private confine(userPath: string, physical: string): string {
    if (!this.contains(physical)) {
      throw new SandboxdError('PATH_OUTSIDE_WORKSPACE', 'The path resolves outside the workspace root', {
        path: userPath,
      });
    }
    return physical;
  }

  /**
   * Follows `absolute` component by component: symlinks are replaced by their targets, and the
   * first missing component ends the walk (the rest is appended as is, so a path may not exist yet).
   */
  private async physical(absolute: string): Promise<string> {
    const insideRoot = absolute.startsWith(this.prefix());
    // The root is already physical; start there when the path lies under it.
    let current = insideRoot ? this.root : '/';
    const pending = (insideRoot ? absolute.slice(this.prefix().length) : absolute).split('/').filter(Boolean);
    let links = 0;
    for (let part = pending.shift(); part !== undefined; part = pending.shift()) {
      if (part === '.') continue;
      if (part === '..') {
        current = dirname(current);
        continue;
      }
      const next = join(current, part);
      let isLink: boolean;
      try {
        isLink = (await lstat(next)).isSymbolicLink();
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) return join(next, ...pending);
        throw err;
      }
      if (!isLink) {
        current = next;
        continue;
      }
      links += 1;
      if (links > MAX_SYMLINKS)
        throw new SandboxdError('VALIDATION_ERROR', 'Too many levels of symbolic links');
      const target = await readlink(next);
      pending.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) current = '/';
    }
    return current;
  }
}
