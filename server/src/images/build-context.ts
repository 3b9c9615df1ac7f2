/**
 * Build contexts, read into entries. A sandbox type's: every file of its Dockerfile folder, plus the
 * sandboxd bundle as `sandboxd.mjs` at the root (so any type's Dockerfile, whatever it starts FROM,
 * can `COPY sandboxd.mjs ...`). The server image's: the repository root as its `.dockerignore`
 * admits it. The same entries feed both the content hash that decides whether a build is needed and
 * the tar stream sent to Docker, so the two cannot disagree.
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

/** A file the builder adds to a context (at its root), which must not be there already. */
export interface AddedFile {
  path: string;
  content: Buffer;
}

/** The folder's entries (paths with `/`, sorted) and the bundle; the folder must hold a Dockerfile. */
export function readBuildContext(dockerfileDir: string, sandboxdBundle: Buffer): ContextEntry[] {
  return contextOf(dockerfileDir, () => 'include', [
    { path: SANDBOXD_CONTEXT_FILE, content: sandboxdBundle },
  ]);
}

/**
 * The entries of `dir` its `.dockerignore` admits, plus `added`. Only the forms an allowlist needs
 * are understood (`*`, `!<path>`, `**\/<name>`, comments); anything else is refused rather than
 * read differently from Docker.
 */
export function readIgnoreFileContext(dir: string, added: readonly AddedFile[] = []): ContextEntry[] {
  const file = join(dir, '.dockerignore');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ImageBuildError(`cannot read ${file}: ${messageOf(error)}`);
  }
  return contextOf(dir, ignoreFilter(parseIgnoreRules(text, file)), added);
}

/** What to do with a path: take it, leave it out, or look inside for paths taken back in. */
type Verdict = 'include' | 'exclude' | 'descend';

type IgnoreRule = { kind: 'all' } | { kind: 'name'; name: string } | { kind: 'keep'; path: string };

function parseIgnoreRules(text: string, file: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line === '*') rules.push({ kind: 'all' });
    else if (/^\*\*\/[^/*?[\]!]+$/.test(line)) rules.push({ kind: 'name', name: line.slice(3) });
    else if (/^![^*?[\]!]+$/.test(line))
      rules.push({ kind: 'keep', path: line.slice(1).replace(/^\/+|\/+$/g, '') });
    else
      throw new ImageBuildError(`${file}: "${line}" is not a form the builder reads (*, !<path>, **/<name>)`);
  }
  return rules;
}

/** Docker's reading of those forms: the last rule that matches a path (or a folder above it) decides. */
function ignoreFilter(rules: readonly IgnoreRule[]): (path: string) => Verdict {
  const matches = (rule: IgnoreRule, path: string): boolean => {
    if (rule.kind === 'all') return true;
    if (rule.kind === 'name') return path.split('/').includes(rule.name);
    return path === rule.path || path.startsWith(`${rule.path}/`);
  };
  return (path) => {
    const last = rules.findLast((rule) => matches(rule, path));
    if (last === undefined || last.kind === 'keep') return 'include';
    const keptBelow = rules.some(
      (rule, index) =>
        rule.kind === 'keep' && rule.path.startsWith(`${path}/`) && index > rules.indexOf(last),
    );
    return keptBelow ? 'descend' : 'exclude';
  };
}

function contextOf(
  dir: string,
  verdict: (path: string) => Verdict,
  added: readonly AddedFile[],
): ContextEntry[] {
  let entries: ContextEntry[];
  try {
    entries = readFolder(dir, '', verdict);
  } catch (error) {
    throw new ImageBuildError(`cannot read the Dockerfile folder ${dir}: ${messageOf(error)}`);
  }
  if (!entries.some((entry) => entry.kind === 'file' && entry.path === 'Dockerfile')) {
    throw new ImageBuildError(`no Dockerfile in ${dir}`);
  }
  for (const file of added) {
    if (entries.some((entry) => entry.path === file.path)) {
      throw new ImageBuildError(
        `${join(dir, file.path)} is in the way: the builder puts its own ${file.path} there in the build context`,
      );
    }
    entries.push({ kind: 'file', path: file.path, executable: false, content: file.content });
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function readFolder(dir: string, prefix: string, verdict: (path: string) => Verdict): ContextEntry[] {
  const entries: ContextEntry[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const path = prefix + name;
    const stat = lstatSync(full);
    const taken = verdict(path);
    if (taken === 'exclude' || (taken === 'descend' && !stat.isDirectory())) continue;
    if (stat.isDirectory()) {
      if (taken === 'include') entries.push({ kind: 'directory', path });
      entries.push(...readFolder(full, `${path}/`, verdict));
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
