/**
 * The contract's NDJSON decoding, with a line that is not JSON reported as the SDK's UpstreamError.
 * Stopping the iteration early cancels the stream, which closes the connection.
 */
import { decodeNdjson, NdjsonLineError } from '@runtime-sandbox/contract';
import { UpstreamError } from './errors.js';

export async function* parseNdjson(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  try {
    yield* decodeNdjson(stream);
  } catch (error) {
    if (!(error instanceof NdjsonLineError)) throw error;
    throw new UpstreamError({ code: 'UPSTREAM_ERROR', message: error.message, cause: error });
  }
}
