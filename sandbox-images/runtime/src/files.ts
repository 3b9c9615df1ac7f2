/**
 * The /files routes: raw reads and atomic writes, delete, stat, list, mkdir and move, every path
 * confined to the workspace. Reads and writes stream; nothing is held in memory whole.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rmdir, unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  deleteQuerySchema,
  type FileEntry,
  type FileListResponse,
  listQuerySchema,
  mkdirRequestSchema,
  moveRequestSchema,
  pathQuerySchema,
  writeQuerySchema,
} from '@runtime-sandbox/contract';
import type { Context } from './context.js';
import { fileEntry, lstatIfExists, SETTABLE_MODE_BITS, UPLOAD_PREFIX } from './entries.js';
import { isErrno, SandboxdError, withFsErrors } from './errors.js';
import {
  CREATE_FLAGS,
  Dir,
  ensureDirectory,
  openConfined,
  own,
  READ_FLAGS,
  removeEntry,
  using,
} from './handles.js';
import { type Route, readJson, readQuery, requestBody, sendJson } from './http.js';
import type { Workspace } from './paths.js';

/** Mode of a new file written without `mode`: what `umask 022` gives. */
const DEFAULT_FILE_MODE = 0o644;

function refuseRoot(workspace: Workspace, absolute: string, action: string): void {
  if (workspace.isRoot(absolute)) {
    throw new SandboxdError('PERMISSION_DENIED', `The workspace root itself cannot be ${action}`);
  }
}

/** Runs `work` on the entry `absolute` (not the root) through its parent directory, opened and checked. */
async function inParent<T>(
  workspace: Workspace,
  absolute: string,
  userPath: string,
  work: (parent: Dir, name: string) => Promise<T>,
): Promise<T> {
  return using(await Dir.open(workspace, dirname(absolute), userPath), (parent) =>
    work(parent, basename(absolute)),
  );
}

async function readFile(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path } = readQuery(url, pathQuerySchema);
  const handle = await withFsErrors({ path }, async () => {
    const opened = await openConfined(ctx.workspace, await ctx.workspace.resolve(path), READ_FLAGS, path);
    const stats = await opened.stat();
    if (stats.isFile()) return { file: opened, size: stats.size };
    await opened.close();
    if (stats.isDirectory()) throw new SandboxdError('IS_A_DIRECTORY', 'The path is a directory', { path });
    throw new SandboxdError('VALIDATION_ERROR', 'The path is not a regular file', { path });
  });
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': handle.size });
  if (handle.size === 0) {
    await handle.file.close();
    res.end();
    return;
  }
  // Exactly the announced length, even if the file grows meanwhile.
  await pipeline(handle.file.createReadStream({ start: 0, end: handle.size - 1 }), res);
}

/** The deepest directory of `absolute`'s ancestors that exists already. */
async function nearestExistingDirectory(absolute: string): Promise<string> {
  let candidate = dirname(absolute);
  while (!(await lstatIfExists(candidate)) && dirname(candidate) !== candidate)
    candidate = dirname(candidate);
  return candidate;
}

/**
 * Streams the body to a temp file, then renames it over the target, so that readers see the old
 * content or the new, never a part. The temp file lives in the nearest existing ancestor (same file
 * system, so the rename is atomic) and missing parents are made only once the body is complete, so
 * a refused or broken upload leaves nothing behind. The temp file belongs to the run-as user from
 * its creation on; a symlink at the target is replaced, never followed.
 */
async function writeFile(ctx: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { path, mode } = readQuery(url, writeQuerySchema);
  const body = requestBody(req, ctx.limits.maxUploadBytes);
  const { workspace, runAs } = ctx;
  const entry = await withFsErrors({ path }, async () => {
    const target = await workspace.resolve(path);
    const existing = await lstatIfExists(target);
    if (workspace.isRoot(target) || existing?.isDirectory()) {
      throw new SandboxdError('IS_A_DIRECTORY', 'The path is a directory', { path });
    }
    // An overwrite keeps the file's mode unless a new one is given.
    const kept = existing?.isFile() ? existing.mode : DEFAULT_FILE_MODE;
    const newMode = (mode === undefined ? kept : Number.parseInt(mode, 8)) & SETTABLE_MODE_BITS;
    const ancestor = await Dir.open(workspace, await nearestExistingDirectory(target), path);
    return using(ancestor, async () => {
      const temp = ancestor.child(`${UPLOAD_PREFIX}${randomBytes(8).toString('hex')}`);
      try {
        const file = await open(temp, CREATE_FLAGS, 0o600);
        try {
          await own(file, runAs);
          await file.chmod(newMode);
          await pipeline(body, file.createWriteStream());
        } finally {
          await file.close();
        }
        return await using(await ensureDirectory(workspace, runAs, dirname(target), path), async (parent) => {
          const placed = parent.child(basename(target));
          await rename(temp, placed);
          return fileEntry(workspace, target, placed);
        });
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
    });
  });
  sendJson(res, 200, entry);
}

async function deletePath(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path, recursive } = readQuery(url, deleteQuerySchema);
  await withFsErrors({ path }, async () => {
    const target = await ctx.workspace.resolveEntry(path);
    refuseRoot(ctx.workspace, target, 'deleted');
    await inParent(ctx.workspace, target, path, async (parent, name) => {
      const entry = parent.child(name);
      // A symlink is removed itself; removeEntry does not follow links inside a tree either.
      if (!(await lstat(entry)).isDirectory()) await unlink(entry);
      else if (recursive === 'true') await removeEntry(parent, name);
      else await rmdir(entry);
    });
  });
  res.writeHead(204);
  res.end();
}

async function statPath(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path } = readQuery(url, pathQuerySchema);
  const { workspace } = ctx;
  const entry = await withFsErrors({ path }, async () => {
    const target = await workspace.resolveEntry(path);
    if (workspace.isRoot(target)) {
      return using(await Dir.open(workspace, target, path), async (root) =>
        fileEntry(workspace, target, root.path, await root.file.stat()),
      );
    }
    return inParent(workspace, target, path, (parent, name) =>
      fileEntry(workspace, target, parent.child(name)),
    );
  });
  sendJson(res, 200, entry);
}

/** Entries under `dir` (at `absolute`), depth-first, sorted by name; symlinks are listed, never entered. */
async function walk(
  workspace: Workspace,
  dir: Dir,
  absolute: string,
  depth: number,
  into: FileEntry[],
): Promise<void> {
  const names = (await readdir(dir.path)).sort();
  const found = await Promise.all(
    names.map(async (name) => {
      const reach = dir.child(name);
      const stats = await lstatIfExists(reach);
      // Gone between readdir and lstat: a concurrent delete, not an error.
      return stats && { name, stats, entry: await fileEntry(workspace, join(absolute, name), reach, stats) };
    }),
  );
  for (const item of found) {
    if (!item) continue;
    into.push(item.entry);
    if (depth <= 1 || !item.stats.isDirectory()) continue;
    const child = await dir.openDir(item.name).catch((err: unknown) => {
      // Removed or replaced by a link since the lstat: nothing to descend into.
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined;
      throw err;
    });
    if (child) await using(child, () => walk(workspace, child, join(absolute, item.name), depth - 1, into));
  }
}

async function listDirectory(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path, depth } = readQuery(url, listQuerySchema);
  const entries: FileEntry[] = [];
  await withFsErrors({ path }, async () => {
    const directory = await ctx.workspace.resolve(path);
    if (!(await lstat(directory)).isDirectory()) {
      throw new SandboxdError('NOT_A_DIRECTORY', 'The path is not a directory', { path });
    }
    await using(await Dir.open(ctx.workspace, directory, path), (dir) =>
      walk(ctx.workspace, dir, directory, depth, entries),
    );
  });
  const body: FileListResponse = { entries };
  sendJson(res, 200, body);
}

async function makeDirectory(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, parents } = await readJson(req, ctx.limits.maxJsonBytes, mkdirRequestSchema);
  const { workspace, runAs } = ctx;
  const entry = await withFsErrors({ path }, async () => {
    const directory = await workspace.resolve(path);
    const existing = await lstatIfExists(directory);
    // `mkdir -p` succeeds on an existing directory, not on a file; plain mkdir on neither.
    if (existing && (!existing.isDirectory() || !parents)) {
      throw new SandboxdError('ALREADY_EXISTS', 'Something already exists at that path', { path });
    }
    const made = parents
      ? await ensureDirectory(workspace, runAs, directory, path)
      : await inParent(workspace, directory, path, async (parent, name) => {
          await mkdir(parent.child(name), 0o755);
          const dir = await parent.openDir(name, path);
          await own(dir.file, runAs);
          return dir;
        });
    return using(made, async (dir) => fileEntry(workspace, directory, dir.path, await dir.file.stat()));
  });
  sendJson(res, 200, entry);
}

async function movePath(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { from, to, overwrite } = await readJson(req, ctx.limits.maxJsonBytes, moveRequestSchema);
  const { workspace, runAs } = ctx;
  const entry = await withFsErrors({ from, to }, async () => {
    // Both ends are entries: moving a symlink moves the link, and a link at `to` is replaced, not entered.
    const source = await workspace.resolveEntry(from);
    const destination = await workspace.resolveEntry(to);
    refuseRoot(workspace, source, 'moved');
    refuseRoot(workspace, destination, 'replaced');
    return inParent(workspace, source, from, async (sourceParent, sourceName) => {
      const moved = sourceParent.child(sourceName);
      await lstat(moved);
      if (destination.startsWith(`${source}/`)) {
        throw new SandboxdError('VALIDATION_ERROR', 'A directory cannot be moved into itself', { from, to });
      }
      if (!overwrite && (await lstatIfExists(destination))) {
        throw new SandboxdError('ALREADY_EXISTS', 'The destination exists; set overwrite to replace it', {
          to,
        });
      }
      const parent = await ensureDirectory(workspace, runAs, dirname(destination), to);
      return using(parent, async () => {
        const placed = parent.child(basename(destination));
        await rename(moved, placed);
        return fileEntry(workspace, destination, placed);
      });
    });
  });
  sendJson(res, 200, entry);
}

export function fileRoutes(ctx: Context): Array<[string, Route]> {
  return [
    [
      '/files',
      {
        auth: true,
        methods: {
          GET: (_req, res, url) => readFile(ctx, res, url),
          PUT: (req, res, url) => writeFile(ctx, req, res, url),
          DELETE: (_req, res, url) => deletePath(ctx, res, url),
        },
      },
    ],
    ['/files/stat', { auth: true, methods: { GET: (_req, res, url) => statPath(ctx, res, url) } }],
    ['/files/list', { auth: true, methods: { GET: (_req, res, url) => listDirectory(ctx, res, url) } }],
    ['/files/mkdir', { auth: true, methods: { POST: (req, res) => makeDirectory(ctx, req, res) } }],
    ['/files/move', { auth: true, methods: { POST: (req, res) => movePath(ctx, req, res) } }],
  ];
}
