/**
 * Newline-delimited JSON framing: one JSON value per line. sandboxd writes exec events with it, the
 * server passes them on, the SDK reads them.
 */

export const NDJSON = 'application/x-ndjson';

/** One value as one NDJSON line. */
export function encodeNdjson(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** A line of the stream that is not JSON. */
export class NdjsonLineError extends Error {
  constructor(
    readonly line: string,
    options?: ErrorOptions,
  ) {
    super(`the stream carried a line that is not JSON: ${line.slice(0, 200)}`, options);
    this.name = 'NdjsonLineError';
  }
}

/**
 * The values of a byte stream, decoded as they arrive; blank lines are skipped. Stopping the
 * iteration early cancels the stream, which closes the connection.
 */
export async function* decodeNdjson(
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
    throw new NdjsonLineError(line, { cause: error });
  }
}
