/**
 * /archive: a directory out as a tar stream, and a tar stream into a directory. Extraction goes to
 * a hidden staging directory first and is merged into the destination only when every entry was
 * read and found safe, so a refused or broken archive changes nothing.
 */
import type { Stats } from 'node:fs';
import { constants, createWriteStream } from 'node:fs';
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
  stat,
  symlink,
  utimes,
} from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
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
import { byteLimit, type Route, readQuery, requestBody, sendJson } from './http.js';
import { Workspace } from './paths.js';
import { type ArchiveExtractResponse, archiveQuerySchema } from './protocol.js';

async function directoryAt(ctx: Context, path: string): Promise<string> {
  return withFsErrors({ path }, async () => {
    const directory = await ctx.workspace.resolve(path);
    if (!(await stat(directory)).isDirectory()) {
      throw new SandboxdError('NOT_A_DIRECTORY', 'The path is not a directory', { path });
    }
    return directory;
  });
}

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

async function addFile(pack: TarPack, absolute: string, header: Partial<TarHeader> & { name: string }) {
  const file = await open(absolute, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    // The size is taken from the open file and exactly that much is read, so a file that changes
    // while it is packed cannot break the tar's framing.
    const { size } = await file.stat();
    const content =
      size === 0 ? undefined : file.createReadStream({ start: 0, end: size - 1, autoClose: false });
    await addEntry(pack, { ...header, type: 'file', size }, content);
  } finally {
    await file.close();
  }
}

/** Every entry under `directory`, parents before children; symlinks are stored as links. */
async function packTree(pack: TarPack, directory: string, prefix: string): Promise<void> {
  for (const name of (await readdir(directory)).sort()) {
    if (isTransient(name)) continue;
    const absolute = join(directory, name);
    const stats = await lstatIfExists(absolute);
    if (!stats) continue;
    const header = { name: `${prefix}${name}`, mode: stats.mode & 0o7777, mtime: stats.mtime };
    if (stats.isDirectory()) {
      await addEntry(pack, { ...header, name: `${header.name}/`, type: 'directory' });
      await packTree(pack, absolute, `${header.name}/`);
    } else if (stats.isSymbolicLink()) {
      await addEntry(pack, { ...header, type: 'symlink', linkname: await readlink(absolute) });
    } else if (stats.isFile()) {
      await addFile(pack, absolute, header);
    }
    // Sockets, FIFOs and devices have no content to carry; they are left out.
  }
}

async function sendArchive(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path, gzip } = readQuery(url, archiveQuerySchema);
  const directory = await directoryAt(ctx, path);
  res.writeHead(200, { 'content-type': gzip === 'true' ? 'application/gzip' : 'application/x-tar' });
  const pack = tarPack();
  const sending = gzip === 'true' ? pipeline(pack, createGzip(), res) : pipeline(pack, res);
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
 * symlink (which could carry a write outside); with `create`, missing parents are made.
 */
async function checkParents(staging: string, entry: string, name: string, create: boolean): Promise<void> {
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
    if (!create) throw unsafe(entry, 'is a hard link to something other than an earlier file of the archive');
    await mkdir(current, { mode: 0o755 });
  }
}

/** Makes way for a new entry at `name`: parents made, whatever was there removed (later entries win). */
async function prepare(staging: string, entry: string, name: string): Promise<string> {
  await checkParents(staging, entry, name, true);
  const target = join(staging, name);
  await rm(target, { recursive: true, force: true });
  return target;
}

async function stageEntry(staging: string, entry: TarEntry, staged: Staged): Promise<void> {
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
      await checkParents(staging, header.name, name, true);
      const target = join(staging, name);
      if (!(await lstatIfExists(target))?.isDirectory()) {
        await rm(target, { force: true });
        // Owner-writable while staged; the archive's mode is applied after the merge.
        await mkdir(target, { mode: 0o700 });
      }
      staged.directories.set(name, { mode, mtime: header.mtime });
      entry.resume();
      break;
    }
    case 'file':
    case 'contiguous-file': {
      const target = await prepare(staging, header.name, name);
      // The parser destroys the entry when the archive ends early, maybe while we prepared; a
      // pipeline from an already destroyed (streamx) stream would never settle.
      if (entry.destroyed) throw new Error(`the archive ends inside ${JSON.stringify(header.name)}`);
      await pipeline(entry, createWriteStream(target, { flags: 'wx', mode: 0o600 }));
      await chmod(target, mode);
      await utimes(target, header.mtime, header.mtime);
      break;
    }
    case 'symlink': {
      if (!header.linkname) throw unsafe(header.name, 'is a symlink without a target');
      const target = await prepare(staging, header.name, name);
      // Where it leads is checked once every entry is in place (later entries can change that).
      await symlink(header.linkname, target);
      await lutimes(target, header.mtime, header.mtime);
      entry.resume();
      break;
    }
    case 'link': {
      const source = archivePath(header.name, header.linkname, 'hard link target');
      if (source === null) throw unsafe(header.name, 'is a hard link to the destination itself');
      await checkParents(staging, header.name, source, false);
      if (!(await lstatIfExists(join(staging, source)))?.isFile()) {
        throw unsafe(header.name, 'is a hard link to something other than an earlier file of the archive');
      }
      const target = await prepare(staging, header.name, name);
      await link(join(staging, source), target);
      entry.resume();
      break;
    }
    default:
      throw unsafe(header.name, `is a ${header.type}, which sandboxd does not create`);
  }
  staged.entries += 1;
}

/** Refuses any staged symlink that, followed the way the kernel will, leads out of the destination. */
async function checkSymlinks(staging: string, destination: string): Promise<void> {
  const jail = await Workspace.open(staging);
  const visit = async (directory: string): Promise<void> => {
    for (const name of await readdir(directory)) {
      const absolute = join(directory, name);
      const stats = await lstat(absolute);
      if (stats.isDirectory()) await visit(absolute);
      if (!stats.isSymbolicLink()) continue;
      const target = await readlink(absolute);
      // An absolute target is judged where it will point once merged: into the destination.
      const staged =
        target === destination || target.startsWith(`${destination}/`)
          ? `${staging}${target.slice(destination.length)}`
          : target;
      try {
        await jail.resolveLinkTarget(absolute, staged);
      } catch (err) {
        if (err instanceof SandboxdError && err.code === 'PATH_OUTSIDE_WORKSPACE') {
          throw unsafe(
            jail.relative(absolute),
            `is a symlink to ${JSON.stringify(target)}, outside the destination`,
          );
        }
        throw unsafe(jail.relative(absolute), `is a symlink that cannot be followed (${String(err)})`);
      }
    }
  };
  await visit(staging);
}

/** Reads the whole archive into `staging`, checking every entry; throws on the first bad one. */
async function stage(staging: string, destination: string, body: Readable, gzip: boolean, limit: number) {
  const extract = tarExtract();
  // The inflated size counts against the same limit: a small gzip must not fill the disk.
  const feeding = gzip ? pipeline(body, createGunzip(), byteLimit(limit), extract) : pipeline(body, extract);
  const staged: Staged = { entries: 0, directories: new Map() };
  const unpacking = (async () => {
    for await (const entry of extract) await stageEntry(staging, entry, staged);
  })();
  // The feeding side first: when both failed, its error (a parse or gzip error) is the cause.
  const outcomes = await Promise.allSettled([feeding, unpacking]);
  const reasons = outcomes.flatMap((outcome) =>
    outcome.status === 'rejected' ? [outcome.reason as unknown] : [],
  );
  if (reasons.length === 0) {
    await checkSymlinks(staging, destination);
    return staged;
  }
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

/** Moves the staged tree into `to`, never following a symlink found there (it is replaced instead). */
async function merge(from: string, to: string): Promise<void> {
  for (const name of await readdir(from)) {
    const source = join(from, name);
    const target = join(to, name);
    const [sourceStats, targetStats]: [Stats, Stats | undefined] = await Promise.all([
      lstat(source),
      lstatIfExists(target),
    ]);
    if (sourceStats.isDirectory() && targetStats?.isDirectory()) {
      await merge(source, target);
      continue;
    }
    if (targetStats && (sourceStats.isDirectory() || targetStats.isDirectory())) {
      await rm(target, { recursive: true });
    }
    await rename(source, target);
  }
}

/** Gives the archive's directories their modes and mtimes, children first (a parent may be read-only). */
async function applyDirectoryAttributes(destination: string, staged: Staged): Promise<void> {
  const deepestFirst = [...staged.directories].sort(([a], [b]) => b.length - a.length);
  for (const [name, { mode, mtime }] of deepestFirst) {
    const directory = join(destination, name);
    if (!(await lstatIfExists(directory))?.isDirectory()) continue;
    await chmod(directory, mode);
    await utimes(directory, mtime, mtime);
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
  const { workspace } = ctx;
  const destination = await withFsErrors({ path }, async () => {
    const resolved = await workspace.resolve(path);
    if ((await lstatIfExists(resolved))?.isDirectory() === false) {
      throw new SandboxdError('NOT_A_DIRECTORY', 'The path is not a directory', { path });
    }
    return resolved;
  });
  // In the workspace root: on the destination's file system, so merging is renaming.
  const staging = await withFsErrors({ path }, () => mkdtemp(join(workspace.root, STAGING_PREFIX)));
  try {
    const staged = await stage(staging, destination, body, gzip === 'true', ctx.limits.maxUploadBytes);
    await withFsErrors({ path }, async () => {
      await mkdir(destination, { recursive: true });
      await merge(staging, destination);
      await applyDirectoryAttributes(destination, staged);
    });
    const answer: ArchiveExtractResponse = { entries: staged.entries };
    sendJson(res, 200, answer);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
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
