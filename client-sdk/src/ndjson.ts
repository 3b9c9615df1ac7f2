/**
 * Newline-delimited JSON out of a byte stream, one value per line, decoded as it arrives.
 * Stopping the iteration early cancels the stream, which closes the connection.
 */
import { UpstreamError } from './errors.js';

export async function* parseNdjson(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<unknown, void, undefined> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline = buffer.indexOf('\n');
      while (newline !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim() !== '') yield parseLine(line);
        newline = buffer.indexOf('\n');
      }
    }
    finished = true;
    buffer += decoder.decode();
    if (buffer.trim() !== '') yield parseLine(buffer);
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

function parseLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (error) {
    throw new UpstreamError({
      code: 'UPSTREAM_ERROR',
      message: `the stream carried a line that is not JSON: ${line.slice(0, 200)}`,
      cause: error,
    });
  }
}
