/**
 * Where snapshot bytes live: one BlobStore per backend (local disk, S3, Redis). A blob store knows
 * nothing of keys, versions or heads; the catalog (catalog.ts) keeps those rules once for all.
 *
 * Every backend gives the same guarantee on `put`: the blob appears under its name complete, or
 * not at all. A source that errors, a size cap hit, or the backend going away mid-upload leaves no
 * partial blob readable under the name.
 */

export type BlobBackend = 'local' | 'oss' | 'redis';

/** Bytes to store: a Node Readable, a fetch body, a generator, or an array of buffers. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** What `put` measured while the bytes went by. */
export interface BlobDigest {
  sizeBytes: number;
  /** Lowercase hex. */
  sha256: string;
}

export interface BlobStore {
  readonly kind: BlobBackend;
  /** Streams `source` into the blob `name` (replacing nothing: names are never reused). */
  put(name: string, source: ByteSource): Promise<BlobDigest>;
  /** The blob's bytes, or null when there is no such blob. */
  get(name: string): Promise<AsyncIterable<Buffer> | null>;
  /** Removes the blob; removing a missing one is not an error. */
  delete(name: string): Promise<void>;
  exists(name: string): Promise<boolean>;
  /** Names of the blobs in `folder` (one level: `folder/<leaf>`), in no particular order. */
  list(folder: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Blob names are chosen by this code, never by callers, but every backend still checks them: a
 * name is `/`-separated segments of letters, digits, `.`, `_`, `-`, each starting with a letter or
 * digit, so none can climb out of SNAPSHOT_DIR or a key prefix.
 */
const BLOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*(?:\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

export function assertBlobName(name: string): void {
  if (!BLOB_NAME.test(name)) throw new Error(`invalid blob name "${name}"`);
}

/** One Buffer per chunk whatever the source yields (Readable gives Buffers, fetch bodies Uint8Arrays). */
export function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
