/**
 * /archive: a directory out as a tar stream, and a tar stream into a directory. Extraction goes to
 * a hidden staging directory first and is merged into the destination only when every entry was
 * read and found safe, so a refused, broken or (for the disk quota) too large archive changes nothing.
 *
 * Symlinks go out and come back as links, whatever their target (a venv's `bin/python ->
 * /usr/bin/python3` included): nothing here or in any other route follows one out of the workspace
 * (every path is resolved and opened confined, see paths.ts and handles.ts), extraction never
 * writes through one (parents must be real directories; a link in the way is replaced), and the
 * code in the sandbox can make any link it likes anyway, so refusing them would protect nothing.
 */
import type { Stats } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  symlink,
  utimes,
} from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { type ArchiveUploadResult, archiveQuerySchema } from '@runtime-sandbox/contract';
import {
  type Extract as TarExtract,
  type Header as TarHeader,
  type Pack as TarPack,
  extract as tarExtract,
  pack as tarPack,
} from 'tar-stream';
import type { Context } from './context.js';
import { isTransient, lstatIfExists, SETTABLE_MODE_BITS, STAGING_PREFIX } from './entries.js';
import { isErrno, SandboxdError, withFsErrors } from './errors.js';
import {
  CREATE_FLAGS,
  Dir,
  ensureDirectory,
  own,
  ownPath,
  READ_FLAGS,
  type RunAs,
  removeEntry,
  using,
} from './handles.js';
import { type Route, readQuery, requestBody, sendJson } from './http.js';

async function directoryAt(ctx: Context, path: string): Promise<Dir> {
  return withFsErrors({ path }, async () => {
    try {
      return await Dir.open(ctx.workspace, await ctx.workspace.resolve(path), path);
    } catch (err) {
      if (!isErrno(err, 'ENOTDIR')) throw err;
      throw new SandboxdError('NOT_A_DIRECTORY', 'The path is not a directory', { path });
    }
  });
}

/** Whether an open failed because the entry is gone or was replaced (by a link, a file) meanwhile. */
const replacedMeanwhile = (err: unknown) => isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP');

// ---- GET /archive ------------------------------------------------------------------------------

/** Adds one entry; with `content`, streams it in. Resolves once the entry is fully in the tar. */
function addEntry(
  pack: TarPack,
  header: Partial<TarHeader> & { name: string },
  content?: Readable,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content) pipeline(content, pack.entry(header, done)).catch(reject);
    else pack.entry(header, '', done);
  });
}

async function addFile(pack: TarPack, path: string, header: Partial<TarHeader> & { name: string }) {
  const file = await open(path, READ_FLAGS).catch((err: unknown) => {
    if (replacedMeanwhile(err)) return undefined;
    throw err;
  });
  if (!file) return;
  try {
    // The size is taken from the open file and exactly that much is read, so a file that changes
    // while it is packed cannot break the tar's framing.
    const stats = await file.stat();
    if (!stats.isFile()) return;
    const { size } = stats;
    const content =
      size === 0 ? undefined : file.createReadStream({ start: 0, end: size - 1, autoClose: false });
    await addEntry(pack, { ...header, type: 'file', size }, content);
  } finally {
    await file.close();
  }
}

/**
 * Every entry under `dir`, parents before children; symlinks are stored as links. Each directory
 * is entered through a descriptor, so one swapped for a link mid-way is skipped, not followed.
 */
async function packTree(pack: TarPack, dir: Dir, prefix: string): Promise<void> {
  for (const name of (await readdir(dir.path)).sort()) {
    if (isTransient(name)) continue;
    const path = dir.child(name);
    const stats = await lstatIfExists(path);
    if (!stats) continue;
    const header = { name: `${prefix}${name}`, mode: stats.mode & 0o7777, mtime: stats.mtime };
    if (stats.isDirectory()) {
      const child = await dir.openDir(name).catch((err: unknown) => {
        if (replacedMeanwhile(err)) return undefined;
        throw err;
      });
      if (!child) continue;
      await using(child, async () => {
        await addEntry(pack, { ...header, name: `${header.name}/`, type: 'directory' });
        await packTree(pack, child, `${header.name}/`);
      });
    } else if (stats.isSymbolicLink()) {
      const linkname = await readlink(path).catch((err: unknown) => {
        if (replacedMeanwhile(err) || isErrno(err, 'EINVAL')) return undefined;
        throw err;
      });
      if (linkname !== undefined) await addEntry(pack, { ...header, type: 'symlink', linkname });
    } else if (stats.isFile()) {
      await addFile(pack, path, header);
    }
    // Sockets, FIFOs and devices have no content to carry; they are left out.
  }
}

async function sendArchive(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path, gzip } = readQuery(url, archiveQuerySchema);
  const directory = await directoryAt(ctx, path);
  await using(directory, () => streamArchive(res, directory, gzip === 'true'));
}

async function streamArchive(res: ServerResponse, directory: Dir, gzip: boolean): Promise<void> {
  res.writeHead(200, { 'content-type': gzip ? 'application/gzip' : 'application/x-tar' });
  const pack = tarPack();
  const sending = gzip ? pipeline(pack, createGzip(), res) : pipeline(pack, res);
  // The client may hang up while the tree is still being packed; until `await sending` below, that
  // rejection has no handler, and an unhandled rejection would end sandboxd.
  sending.catch(() => undefined);
  try {
    await packTree(pack, directory, '');
    pack.finalize();
  } catch (err) {
    // The answer is under way: breaking it off is how the client learns the tar is incomplete.
    pack.destroy(err instanceof Error ? err : new Error(String(err)));
  }
  await sending;
}

// ---- PUT /archive ------------------------------------------------------------------------------

type TarEntry = TarExtract extends AsyncIterable<infer Entry> ? Entry : never;

interface Staged {
  entries: number;
  /** Directories named by the archive, with the mode and mtime to give them once merged. */
  directories: Map<string, { mode: number; mtime: Date }>;
}

function unsafe(entry: string, reason: string): SandboxdError {
  return new SandboxdError('UNSAFE_ARCHIVE_ENTRY', `Archive entry ${JSON.stringify(entry)} ${reason}`, {
    entry,
    reason,
  });
}

/**
 * A path inside the archive (an entry's name, or a hard link's target: `what`) as a clean relative
 * path (`./a//b` -> `a/b`); null for the archive root itself.
 */
function archivePath(entry: string, path: string, what: 'name' | 'hard link target'): string | null {
  if (path.startsWith('/')) throw unsafe(entry, `has an absolute ${what}`);
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw unsafe(entry, `has a ${what} that climbs out with ..`);
  return parts.length === 0 ? null : parts.join('/');
}

/**
 * Checks that every parent of `name` inside the staging directory is a real directory, never a
 * symlink (which could carry a write outside); with `runAs`, missing parents are made, theirs.
 */
async function checkParents(
  staging: string,
  entry: string,
  name: string,
  runAs: RunAs | undefined,
): Promise<void> {
  let current = staging;
  for (const part of name.split('/').slice(0, -1)) {
    current = join(current, part);
    const stats = await lstatIfExists(current);
    if (stats?.isDirectory()) continue;
    if (stats?.isSymbolicLink()) throw unsafe(entry, 'has a symlink among its parents');
    if (stats) {
      throw new SandboxdError(
        'INVALID_ARCHIVE',
        `Archive entry ${JSON.stringify(entry)} has a parent that is a file`,
        {
          entry,
        },
      );
    }
    if (!runAs) throw unsafe(entry, 'is a hard link to something other than an earlier file of the archive');
    await mkdir(current, { mode: 0o755 });
    await ownPath(current, runAs);
  }
}

/** Makes way for a new entry at `name`: parents made, whatever was there removed (later entries win). */
async function prepare(staging: string, entry: string, name: string, runAs: RunAs): Promise<string> {
  await checkParents(staging, entry, name, runAs);
  const target = join(staging, name);
  await rm(target, { recursive: true, force: true });
  return target;
}

/**
 * Stages one entry. `staging` is reached through a descriptor and only sandboxd may enter it (a
 * root-owned 0700 directory), so plain paths inside it are safe; everything made there is given
 * to the run-as user at once, before the merge shows it under its final name.
 */
async function stageEntry(staging: string, entry: TarEntry, staged: Staged, runAs: RunAs): Promise<void> {
  const { header } = entry;
  const name = archivePath(header.name, header.name, 'name');
  const mode = header.mode & SETTABLE_MODE_BITS;
  if (name === null) {
    // `./` in archives made with `tar -C dir .`: the destination itself, whose mode stays the caller's.
    if (header.type !== 'directory')
      throw unsafe(header.name, 'is not a directory but names the destination');
    entry.resume();
    return;
  }
  switch (header.type) {
    case 'directory': {
      await checkParents(staging, header.name, name, runAs);
      const target = join(staging, name);
      if (!(await lstatIfExists(target))?.isDirectory()) {
        await rm(target, { force: true });
        // Owner-writable while staged; the archive's mode is applied after the merge.
        await mkdir(target, { mode: 0o700 });
        await ownPath(target, runAs);
      }
      staged.directories.set(name, { mode, mtime: header.mtime });
      entry.resume();
      break;
    }
    case 'file':
    case 'contiguous-file': {
      const target = await prepare(staging, header.name, name, runAs);
      // The parser destroys the entry when the archive ends early, maybe while we prepared; a
      // pipeline from an already destroyed (streamx) stream would never settle.
      if (entry.destroyed) throw new Error(`the archive ends inside ${JSON.stringify(header.name)}`);
      const file = await open(target, CREATE_FLAGS, 0o600);
      try {
        await own(file, runAs);
        await pipeline(entry, file.createWriteStream());
      } finally {
        await file.close();
      }
      await chmod(target, mode);
      await utimes(target, header.mtime, header.mtime);
      break;
    }
    case 'symlink': {
      if (!header.linkname) throw unsafe(header.name, 'is a symlink without a target');
      const target = await prepare(staging, header.name, name, runAs);
      // Stored as it is: a link is never followed by sandboxd, so where it leads does not matter.
      await symlink(header.linkname, target);
      await ownPath(target, runAs);
      await lutimes(target, header.mtime, header.mtime);
      entry.resume();
      break;
    }
    case 'link': {
      const source = archivePath(header.name, header.linkname, 'hard link target');
      if (source === null) throw unsafe(header.name, 'is a hard link to the destination itself');
      await checkParents(staging, header.name, source, undefined);
      if (!(await lstatIfExists(join(staging, source)))?.isFile()) {
        throw unsafe(header.name, 'is a hard link to something other than an earlier file of the archive');
      }
      const target = await prepare(staging, header.name, name, runAs);
      await link(join(staging, source), target);
      entry.resume();
      break;
    }
    default:
      throw unsafe(header.name, `is a ${header.type}, which sandboxd does not create`);
  }
  staged.entries += 1;
}

/** Reads the whole archive into `staging`, checking every entry; throws on the first bad one. */
async function stage(staging: string, body: Readable, gzip: boolean, runAs: RunAs) {
  const extract = tarExtract();
  // What a small gzip inflates to is bounded by the workspace's quota: the staging directory is on
  // the workspace's file system, so writes past it fail (ENOSPC: QUOTA_EXCEEDED) and it is removed.
  const feeding = gzip ? pipeline(body, createGunzip(), extract) : pipeline(body, extract);
  const staged: Staged = { entries: 0, directories: new Map() };
  const unpacking = (async () => {
    for await (const entry of extract) await stageEntry(staging, entry, staged, runAs);
  })();
  // The feeding side first: when both failed, its error (a parse or gzip error) is the cause.
  const outcomes = await Promise.allSettled([feeding, unpacking]);
  const reasons = outcomes.flatMap((outcome) =>
    outcome.status === 'rejected' ? [outcome.reason as unknown] : [],
  );
  if (reasons.length === 0) return staged;
  // Our own verdicts and file system failures speak for themselves; anything else is a bad archive.
  const decisive = reasons.find(
    (err) => err instanceof SandboxdError || (err instanceof Error && 'syscall' in err),
  );
  if (decisive) throw decisive;
  const cause = reasons.find((err) => !isErrno(err, 'ERR_STREAM_PREMATURE_CLOSE')) ?? reasons[0];
  throw new SandboxdError('INVALID_ARCHIVE', 'The body is not a readable tar archive', {
    reason: cause instanceof Error ? cause.message : String(cause),
  });
}

/**
 * Moves the staged tree into `to`, never following a symlink found there (it is replaced
 * instead): every directory on both sides is entered through a descriptor.
 */
async function merge(from: Dir, to: Dir): Promise<void> {
  for (const name of await readdir(from.path)) {
    const source = from.child(name);
    const target = to.child(name);
    const [sourceStats, targetStats]: [Stats, Stats | undefined] = await Promise.all([
      lstat(source),
      lstatIfExists(target),
    ]);
    if (sourceStats.isDirectory() && targetStats?.isDirectory()) {
      await using(await from.openDir(name), async (fromChild) =>
        using(await to.openDir(name), (toChild) => merge(fromChild, toChild)),
      );
      continue;
    }
    if (targetStats && (sourceStats.isDirectory() || targetStats.isDirectory())) {
      await removeEntry(to, name);
    }
    await rename(source, target);
  }
}

/** The directory at `relative` under `dir`, every component entered through a descriptor; undefined if there is none. */
async function openUnder(dir: Dir, relative: string): Promise<Dir | undefined> {
  let current: Dir | undefined;
  try {
    for (const name of relative.split('/')) {
      const next: Dir = await (current ?? dir).openDir(name);
      await current?.close();
      current = next;
    }
    return current;
  } catch (err) {
    await current?.close();
    if (replacedMeanwhile(err)) return undefined;
    throw err;
  }
}

/** Gives the archive's directories their modes and mtimes, children first (a parent may be read-only). */
async function applyDirectoryAttributes(destination: Dir, staged: Staged): Promise<void> {
  const deepestFirst = [...staged.directories].sort(([a], [b]) => b.length - a.length);
  for (const [name, { mode, mtime }] of deepestFirst) {
    const directory = await openUnder(destination, name);
    if (!directory) continue;
    await using(directory, async () => {
      await directory.file.chmod(mode);
      await directory.file.utimes(mtime, mtime);
    });
  }
}

/**
 * A fresh staging directory in the workspace root (on the destination's file system, so merging
 * is renaming), open, and checked to be the one sandboxd made: the sandbox may rename it or put
 * its own in its place, but it can make nothing that belongs to sandboxd's user.
 */
async function makeStaging(root: Dir): Promise<Staging> {
  const name = basename(await mkdtemp(root.child(STAGING_PREFIX)));
  const dir = await root.openDir(name);
  if ((await dir.file.stat()).uid !== process.geteuid?.()) {
    await dir.close();
    throw new SandboxdError('PERMISSION_DENIED', 'The staging directory was replaced while in use');
  }
  return { dir, name };
}

interface Staging {
  dir: Dir;
  name: string;
}

/** Empties and removes the staging directory; a failure is logged, not thrown over the request's own outcome. */
async function discardStaging(root: Dir, staging: Staging): Promise<void> {
  try {
    for (const name of await readdir(staging.dir.path)) await removeEntry(staging.dir, name);
    // By its name, all rmdir takes; if the sandbox renamed it, an empty directory is left there.
    await rmdir(root.child(staging.name));
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'ENOTDIR', 'ENOTEMPTY'))
      console.error('sandboxd: cannot remove staging:', err);
  } finally {
    await staging.dir.close();
  }
}

async function receiveArchive(
  ctx: Context,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const { path, gzip } = readQuery(url, archiveQuerySchema);
  const body = requestBody(req, ctx.limits.maxUploadBytes);
  const { workspace, runAs } = ctx;
  const destination = await withFsErrors({ path }, async () => {
    const resolved = await workspace.resolve(path);
    if ((await lstatIfExists(resolved))?.isDirectory() === false) {
      throw new SandboxdError('NOT_A_DIRECTORY', 'The path is not a directory', { path });
    }
    return resolved;
  });
  const root = await withFsErrors({ path }, () => Dir.open(workspace, workspace.root));
  await using(root, async () => {
    const staging = await withFsErrors({ path }, () => makeStaging(root));
    try {
      const staged = await stage(staging.dir.path, body, gzip === 'true', runAs);
      await withFsErrors({ path }, async () =>
        using(await ensureDirectory(workspace, runAs, destination, path), async (target) => {
          await merge(staging.dir, target);
          await applyDirectoryAttributes(target, staged);
        }),
      );
      const answer: ArchiveUploadResult = { entries: staged.entries };
      sendJson(res, 200, answer);
    } finally {
      await discardStaging(root, staging);
    }
  });
}

export function archiveRoutes(ctx: Context): Array<[string, Route]> {
  return [
    [
      '/archive',
      {
        auth: true,
        methods: {
          GET: (_req, res, url) => sendArchive(ctx, res, url),
          PUT: (req, res, url) => receiveArchive(ctx, req, res, url),
        },
      },
    ],
  ];
}
