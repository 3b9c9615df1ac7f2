/**
 * Test bytes for snapshots: a large, incompressible-ish payload generated chunk by chunk (never held
 * whole), sources that fail halfway or wait at a barrier, and draining a stream to its digest.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BlobDigest } from '../../server/src/snapshots/blob-store.js';

export const MiB = 1024 * 1024;

export interface Payload {
  sizeBytes: number;
  /** A fresh pass over the same bytes each call. */
  chunks(): AsyncGenerator<Buffer>;
  digest(): Promise<BlobDigest>;
}

/** `sizeBytes` of random-looking data: one random MiB, stamped with the chunk number each time. */
export function randomish(sizeBytes: number, chunkBytes = MiB): Payload {
  const base = randomBytes(chunkBytes);
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let offset = 0, index = 0; offset < sizeBytes; offset += chunkBytes, index++) {
      const chunk = Buffer.from(base.subarray(0, Math.min(chunkBytes, sizeBytes - offset)));
      if (chunk.length >= 4) chunk.writeUInt32BE(index, 0);
      yield chunk;
    }
  }
  return { sizeBytes, chunks, digest: () => digestOf(chunks()) };
}

export async function digestOf(source: AsyncIterable<Uint8Array>): Promise<BlobDigest> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    sizeBytes += chunk.length;
  }
  return { sizeBytes, sha256: hash.digest('hex') };
}

/** Yields `payload` up to `failAt` bytes, then errors like a sandbox dying mid-archive. */
export async function* failingAfter(payload: Payload, failAt: number): AsyncGenerator<Buffer> {
  let sent = 0;
  for await (const chunk of payload.chunks()) {
    if (sent + chunk.length > failAt) throw new Error('the archive stream broke off');
    sent += chunk.length;
    yield chunk;
  }
}

/** A meeting point: each call waits until `parties` calls were made. */
export function barrier(parties: number): () => Promise<void> {
  let arrived = 0;
  let release = () => {};
  const everyone = new Promise<void>((resolve) => {
    release = resolve;
  });
  return () => {
    arrived += 1;
    if (arrived === parties) release();
    return everyone;
  };
}

/** Yields the first chunk, meets the others at `meet`, then yields the rest: saves that surely overlap. */
export async function* meetingAfterFirstChunk(
  payload: Payload,
  meet: () => Promise<void>,
): AsyncGenerator<Buffer> {
  let first = true;
  for await (const chunk of payload.chunks()) {
    yield chunk;
    if (first) {
      first = false;
      await meet();
    }
  }
}
