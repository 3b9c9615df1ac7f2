/**
 * Blobs as files under SNAPSHOT_DIR. A blob is written to `.tmp/` on the same filesystem, fsynced,
 * then renamed into place and its folder fsynced, so a crash or failure leaves either the whole
 * blob or none under its name (at worst a stray file in `.tmp/`, which no name points to).
 * Files are private to the server's user: snapshots hold workspace contents.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { assertBlobName, type BlobDigest, type BlobStore, type ByteSource } from './blob-store.js';
import { measured } from './digest.js';

const TEMP_FOLDER = '.tmp';

export class LocalBlobStore implements BlobStore {
  readonly kind = 'local' as const;

  constructor(private readonly root: string) {}

  async put(name: string, source: ByteSource): Promise<BlobDigest> {
    const target = this.pathOf(name);
    const tempDir = join(this.root, TEMP_FOLDER);
    await mkdir(tempDir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const temp = join(tempDir, `${randomUUID()}.part`);
    const bytes = measured(source);
    try {
      const file = await open(temp, 'wx', 0o600);
      try {
        await writeFile(file, bytes.chunks);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await syncFolder(dirname(target));
    return bytes.digest();
  }

  async get(name: string): Promise<AsyncIterable<Buffer> | null> {
    try {
      // Opened here, so a missing blob is null rather than an error on the first read.
      const file = await open(this.pathOf(name), 'r');
      return file.createReadStream();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async delete(name: string): Promise<void> {
    await rm(this.pathOf(name), { force: true });
  }

  async exists(name: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(name))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(folder: string): Promise<string[]> {
    try {
      const entries = await readdir(this.pathOf(folder), { withFileTypes: true });
      return entries.filter((e) => e.isFile()).map((e) => `${folder}/${e.name}`);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  async close(): Promise<void> {}

  private pathOf(name: string): string {
    assertBlobName(name);
    return join(this.root, name);
  }
}

/** Makes a rename durable: the new directory entry reaches the disk, not only the file's data. */
async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}
