/**
 * The build context of a sandbox type's image: every file of its Dockerfile folder, plus the
 * sandboxd bundle as `sandboxd.mjs` at the root (so any type's Dockerfile, whatever it starts
 * FROM, can `COPY sandboxd.mjs ...`). The same entries feed both the content hash that decides
 * whether a build is needed and the tar stream sent to Docker, so the two cannot disagree.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { ImageBuildError, messageOf } from './errors.js';

/** The name the sandboxd bundle has in every build context. */
export const SANDBOXD_CONTEXT_FILE = 'sandboxd.mjs';

export type ContextEntry =
  | { kind: 'directory'; path: string }
  | { kind: 'file'; path: string; executable: boolean; content: Buffer }
  | { kind: 'symlink'; path: string; target: string };

/** The folder's entries (paths with `/`, sorted) and the bundle; the folder must hold a Dockerfile. */
export function readBuildContext(dockerfileDir: string, sandboxdBundle: Buffer): ContextEntry[] {
  let entries: ContextEntry[];
  try {
    entries = readFolder(dockerfileDir, '');
  } catch (error) {
    throw new ImageBuildError(`cannot read the Dockerfile folder ${dockerfileDir}: ${messageOf(error)}`);
  }
  if (!entries.some((entry) => entry.kind === 'file' && entry.path === 'Dockerfile')) {
    throw new ImageBuildError(`no Dockerfile in ${dockerfileDir}`);
  }
  if (entries.some((entry) => entry.path === SANDBOXD_CONTEXT_FILE)) {
    throw new ImageBuildError(
      `${join(dockerfileDir, SANDBOXD_CONTEXT_FILE)} is in the way: the builder puts the sandboxd bundle ` +
        'there in the build context',
    );
  }
  entries.push({ kind: 'file', path: SANDBOXD_CONTEXT_FILE, executable: false, content: sandboxdBundle });
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function readFolder(dir: string, prefix: string): ContextEntry[] {
  const entries: ContextEntry[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const path = prefix + name;
    const stat = lstatSync(full);
    if (stat.isDirectory()) {
      entries.push({ kind: 'directory', path }, ...readFolder(full, `${path}/`));
    } else if (stat.isSymbolicLink()) {
      entries.push({ kind: 'symlink', path, target: readlinkSync(full) });
    } else if (stat.isFile()) {
      entries.push({
        kind: 'file',
        path,
        executable: (stat.mode & 0o111) !== 0,
        content: readFileSync(full),
      });
    }
  }
  return entries;
}

/**
 * `sha256:<hex>` over the entries, the build args and the local id of the parent image. Every
 * field is length-prefixed, so no two different inputs can run together into the same bytes.
 */
export function contentHashOf(
  entries: readonly ContextEntry[],
  buildArgs: Readonly<Record<string, string>>,
  parentImageId: string,
): string {
  const hash = createHash('sha256');
  const field = (value: string | Buffer): void => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    hash.update(`${bytes.length}:`);
    hash.update(bytes);
  };
  field('runtime-sandbox-image-context-v1');
  for (const entry of entries) {
    field(entry.kind);
    field(entry.path);
    if (entry.kind === 'file') {
      field(entry.executable ? 'x' : '-');
      field(entry.content);
    } else if (entry.kind === 'symlink') {
      field(entry.target);
    }
  }
  for (const name of Object.keys(buildArgs).sort()) {
    field(name);
    field(buildArgs[name] ?? '');
  }
  field(parentImageId);
  return `sha256:${hash.digest('hex')}`;
}

/** The entries as a tar stream; fixed owner and time, so equal entries give equal layers. */
export function packBuildContext(entries: readonly ContextEntry[]): Readable {
  const pack = tar.pack();
  const common = { uid: 0, gid: 0, mtime: new Date(0) };
  for (const entry of entries) {
    if (entry.kind === 'directory') {
      pack.entry({ ...common, name: entry.path, type: 'directory', mode: 0o755 });
    } else if (entry.kind === 'symlink') {
      pack.entry({ ...common, name: entry.path, type: 'symlink', linkname: entry.target, mode: 0o777 });
    } else {
      pack.entry({ ...common, name: entry.path, mode: entry.executable ? 0o755 : 0o644 }, entry.content);
    }
  }
  pack.finalize();
  return Readable.from(pack);
}
