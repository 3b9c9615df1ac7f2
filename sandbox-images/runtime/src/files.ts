/**
 * The /files routes: raw reads and atomic writes, delete, stat, list, mkdir and move, every path
 * confined to the workspace. Reads and writes stream; nothing is held in memory whole.
 */
import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Context } from './context.js';
import { fileEntry, lstatIfExists, SETTABLE_MODE_BITS, UPLOAD_PREFIX } from './entries.js';
import { SandboxdError, withFsErrors } from './errors.js';
import { type Route, readJson, readQuery, requestBody, sendJson } from './http.js';
import type { Workspace } from './paths.js';
import {
  deleteQuerySchema,
  type FileEntry,
  type FileListResponse,
  listQuerySchema,
  mkdirRequestSchema,
  moveRequestSchema,
  pathQuerySchema,
  writeQuerySchema,
} from './protocol.js';

/** Mode of a new file written without `mode`: what `umask 022` gives. */
const DEFAULT_FILE_MODE = 0o644;

function refuseRoot(workspace: Workspace, absolute: string, action: string): void {
  if (workspace.isRoot(absolute)) {
    throw new SandboxdError('PERMISSION_DENIED', `The workspace root itself cannot be ${action}`);
  }
}

async function readFile(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path } = readQuery(url, pathQuerySchema);
  const handle = await withFsErrors({ path }, async () => {
    // O_NONBLOCK: opening a FIFO must not hang; on regular files it changes nothing.
    const opened = await open(await ctx.workspace.resolve(path), constants.O_RDONLY | constants.O_NONBLOCK);
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
 * a refused or broken upload leaves nothing behind.
 */
async function writeFile(ctx: Context, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { path, mode } = readQuery(url, writeQuerySchema);
  const body = requestBody(req, ctx.limits.maxUploadBytes);
  const entry = await withFsErrors({ path }, async () => {
    const target = await ctx.workspace.resolve(path);
    const existing = await lstatIfExists(target);
    if (ctx.workspace.isRoot(target) || existing?.isDirectory()) {
      throw new SandboxdError('IS_A_DIRECTORY', 'The path is a directory', { path });
    }
    const temp = join(
      await nearestExistingDirectory(target),
      `${UPLOAD_PREFIX}${randomBytes(8).toString('hex')}`,
    );
    try {
      await pipeline(body, createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
      // An overwrite keeps the file's mode unless a new one is given.
      const kept = existing?.isFile() ? existing.mode : DEFAULT_FILE_MODE;
      const newMode = mode === undefined ? kept : Number.parseInt(mode, 8);
      await chmod(temp, newMode & SETTABLE_MODE_BITS);
      await mkdir(dirname(target), { recursive: true });
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return fileEntry(ctx.workspace, target);
  });
  sendJson(res, 200, entry);
}

async function deletePath(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path, recursive } = readQuery(url, deleteQuerySchema);
  await withFsErrors({ path }, async () => {
    const target = await ctx.workspace.resolveEntry(path);
    refuseRoot(ctx.workspace, target, 'deleted');
    // A symlink is removed itself; rm does not follow links inside a tree either.
    if (!(await lstat(target)).isDirectory()) await unlink(target);
    else if (recursive === 'true') await rm(target, { recursive: true });
    else await rmdir(target);
  });
  res.writeHead(204);
  res.end();
}

async function statPath(ctx: Context, res: ServerResponse, url: URL): Promise<void> {
  const { path } = readQuery(url, pathQuerySchema);
  const entry = await withFsErrors({ path }, async () =>
    fileEntry(ctx.workspace, await ctx.workspace.resolveEntry(path)),
  );
  sendJson(res, 200, entry);
}

/** Entries under `directory`, depth-first, sorted by name; symlinks are listed, never entered. */
async function walk(
  workspace: Workspace,
  directory: string,
  depth: number,
  into: FileEntry[],
): Promise<void> {
  const names = (await readdir(directory)).sort();
  const found = await Promise.all(
    names.map(async (name) => {
      const absolute = join(directory, name);
      const stats = await lstatIfExists(absolute);
      // Gone between readdir and lstat: a concurrent delete, not an error.
      return stats && { absolute, stats, entry: await fileEntry(workspace, absolute, stats) };
    }),
  );
  for (const item of found) {
    if (!item) continue;
    into.push(item.entry);
    if (depth > 1 && item.stats.isDirectory()) await walk(workspace, item.absolute, depth - 1, into);
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
    await walk(ctx.workspace, directory, depth, entries);
  });
  const body: FileListResponse = { entries };
  sendJson(res, 200, body);
}

async function makeDirectory(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, parents } = await readJson(req, ctx.limits.maxJsonBytes, mkdirRequestSchema);
  const entry = await withFsErrors({ path }, async () => {
    const directory = await ctx.workspace.resolve(path);
    await mkdir(directory, { recursive: parents });
    const stats = await lstat(directory);
    // `mkdir -p` succeeds on an existing directory, not on a file.
    if (!stats.isDirectory())
      throw new SandboxdError('ALREADY_EXISTS', 'A file exists at that path', { path });
    return fileEntry(ctx.workspace, directory, stats);
  });
  sendJson(res, 200, entry);
}

async function movePath(ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { from, to, overwrite } = await readJson(req, ctx.limits.maxJsonBytes, moveRequestSchema);
  const entry = await withFsErrors({ from, to }, async () => {
    // Both ends are entries: moving a symlink moves the link, and a link at `to` is replaced, not entered.
    const source = await ctx.workspace.resolveEntry(from);
    const destination = await ctx.workspace.resolveEntry(to);
    refuseRoot(ctx.workspace, source, 'moved');
    refuseRoot(ctx.workspace, destination, 'replaced');
    await lstat(source);
    if (destination.startsWith(`${source}/`)) {
      throw new SandboxdError('VALIDATION_ERROR', 'A directory cannot be moved into itself', { from, to });
    }
    if (!overwrite && (await lstatIfExists(destination))) {
      throw new SandboxdError('ALREADY_EXISTS', 'The destination exists; set overwrite to replace it', {
        to,
      });
    }
    await mkdir(dirname(destination), { recursive: true });
    await rename(source, destination);
    return fileEntry(ctx.workspace, destination);
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
