/**
 * sha256 and size computed on the fly, chunk by chunk, so no snapshot is ever held whole in memory:
 * `measured` while writing a blob, `verified` while reading one back.
 */
import { createHash } from 'node:crypto';
import { asBuffer, type BlobDigest, type ByteSource } from './blob-store.js';

export interface MeasuredSource {
  /** The source's bytes, to be consumed once. */
  chunks: AsyncIterable<Buffer>;
  /** Size and sha256 of everything `chunks` yielded; final once it ended. */
  digest(): BlobDigest;
}

export function measured(source: ByteSource): MeasuredSource {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  let sha256: string | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      const buffer = asBuffer(chunk);
      hash.update(buffer);
      sizeBytes += buffer.length;
      yield buffer;
    }
    sha256 = hash.digest('hex');
  }
  return {
    chunks: chunks(),
    digest() {
      if (sha256 === undefined) throw new Error('digest() asked before the source ended');
      return { sizeBytes, sha256 };
    },
  };
}

/**
 * Passes `source` through and, once it has ended, throws `mismatch(actual)` when its size or
 * sha256 differ from `expected`: a reader sees an error instead of a clean end, so a corrupted
 * blob never passes for a good one. Read errors are handed to `failed` to be reworded.
 */
export async function* verified(
  source: AsyncIterable<Buffer>,
  expected: BlobDigest,
  errors: { mismatch: (actual: BlobDigest) => Error; failed: (cause: unknown) => Error },
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  try {
    for await (const chunk of source) {
      hash.update(chunk);
      sizeBytes += chunk.length;
      yield chunk;
    }
  } catch (err) {
    throw errors.failed(err);
  }
  const actual = { sizeBytes, sha256: hash.digest('hex') };
  if (actual.sizeBytes !== expected.sizeBytes || actual.sha256 !== expected.sha256) {
    throw errors.mismatch(actual);
  }
}
