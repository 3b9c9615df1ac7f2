/**
 * Files in the sandbox's workspace. Paths are relative to the workspace root (absolute paths are
 * taken as inside it); sandboxd refuses anything that resolves outside, symlinks included
 * (`ValidationError`, code PATH_OUTSIDE_WORKSPACE). Bodies stream in both directions.
 */
import { SandboxError } from './errors.js';
import { type CallOptions, callSpec, type RawBody, type Transport } from './transport.js';
import type { FileEntry, MkdirRequest, MoveRequest } from './types.js';

export type ReadFormat = 'text' | 'bytes' | 'stream';

export interface ReadOptions extends CallOptions {
  /**
   * `text` (default) decodes UTF-8; `bytes` gives the raw bytes; `stream` gives the body as it
   * arrives, unbuffered (the deadline then covers only the start of the answer).
   */
  as?: ReadFormat;
}

export interface WriteOptions extends CallOptions {
  /** Permission bits, as a number (`0o755`) or an octal string (`'755'`). Default: sandboxd's (0644). */
  mode?: number | string;
}

export interface ListOptions extends CallOptions {
  /** 1 lists the directory's children; larger values descend that many levels (max 32). Default 1. */
  depth?: number;
}

export interface MoveOptions extends CallOptions {
  /** Replace an existing destination. Default false (ConflictError ALREADY_EXISTS). */
  overwrite?: boolean;
}

export interface MkdirOptions extends CallOptions {
  /** Create missing parents, and succeed if the directory exists (like `mkdir -p`). Default true. */
  parents?: boolean;
}

export interface RemoveOptions extends CallOptions {
  /** Remove a directory with everything in it. Default false (ConflictError for a non-empty one). */
  recursive?: boolean;
}

export class Files {
  /** @internal Made by `Sandbox` and `DirectSandbox`. */
  constructor(private readonly transport: Transport) {}

  /** Reads a file. Throws NotFoundError (FILE_NOT_FOUND) when it is missing, ConflictError for a directory. */
  read(path: string, options?: ReadOptions & { as?: 'text' }): Promise<string>;
  read(path: string, options: ReadOptions & { as: 'bytes' }): Promise<Uint8Array>;
  read(path: string, options: ReadOptions & { as: 'stream' }): Promise<ReadableStream<Uint8Array>>;
  async read(
    path: string,
    options: ReadOptions = {},
  ): Promise<string | Uint8Array | ReadableStream<Uint8Array>> {
    const spec = { method: 'GET', path: '/files', query: { path }, ...callSpec(options) } as const;
    switch (options.as ?? 'text') {
      case 'stream':
        return this.transport.stream(spec);
      case 'bytes':
        return this.transport.bytes(spec);
      case 'text':
        return new TextDecoder().decode(await this.transport.bytes(spec));
    }
  }

  /**
   * Writes a file, creating missing parent directories and replacing what was there.
   * A stream is sent as it is read, never buffered whole; the default deadline then does not apply.
   */
  async write(path: string, data: RawBody, options: WriteOptions = {}): Promise<FileEntry> {
    const mode = typeof options.mode === 'number' ? options.mode.toString(8) : options.mode;
    return this.transport.json<FileEntry>({
      method: 'PUT',
      path: '/files',
      query: { path, mode },
      body: data,
      ...callSpec(options, data instanceof ReadableStream ? null : undefined),
    });
  }

  /** Lists a directory's entries (and their descendants down to `depth`). */
  async list(path = '.', options: ListOptions = {}): Promise<FileEntry[]> {
    const answer = await this.transport.json<{ entries: FileEntry[] }>({
      method: 'GET',
      path: '/files/list',
      query: { path, depth: options.depth },
      ...callSpec(options),
    });
    return answer.entries;
  }

  /** Describes one path without following a final symlink. Throws NotFoundError when it is missing. */
  async stat(path: string, options: CallOptions = {}): Promise<FileEntry> {
    return this.transport.json<FileEntry>({
      method: 'GET',
      path: '/files/stat',
      query: { path },
      ...callSpec(options),
    });
  }

  /** Whether anything (a dangling symlink included) exists at the path. */
  async exists(path: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (error) {
      // A path through a file (`file.txt/x`) names nothing either.
      if (
        error instanceof SandboxError &&
        (error.code === 'FILE_NOT_FOUND' || error.code === 'NOT_A_DIRECTORY')
      ) {
        return false;
      }
      throw error;
    }
  }

  /** Creates a directory. */
  async mkdir(path: string, options: MkdirOptions = {}): Promise<FileEntry> {
    const json: MkdirRequest = { path, parents: options.parents ?? true };
    return this.transport.json<FileEntry>({
      method: 'POST',
      path: '/files/mkdir',
      json,
      ...callSpec(options),
    });
  }

  /** Moves or renames a file or directory. */
  async move(from: string, to: string, options: MoveOptions = {}): Promise<FileEntry> {
    const json: MoveRequest = { from, to, overwrite: options.overwrite ?? false };
    return this.transport.json<FileEntry>({
      method: 'POST',
      path: '/files/move',
      json,
      ...callSpec(options),
    });
  }

  /** Deletes a file, or a directory (`recursive` for a non-empty one). Throws NotFoundError when it is missing. */
  async remove(path: string, options: RemoveOptions = {}): Promise<void> {
    await this.transport.empty({
      method: 'DELETE',
      path: '/files',
      query: { path, recursive: options.recursive ?? false },
      ...callSpec(options),
    });
  }
}
