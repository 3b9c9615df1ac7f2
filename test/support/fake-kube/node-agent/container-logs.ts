/** A container's output so far, for the pods/log subresource (no follow, no previous instance). */
import type Dockerode from 'dockerode';

/** Docker's multiplexed log frames (8-byte header: stream, 0, 0, 0, big-endian size) to plain bytes. */
function demultiplex(buffer: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts);
}

export async function containerLogs(
  container: Dockerode.Container,
  options: { tty: boolean; tailLines?: number; timestamps: boolean },
): Promise<string> {
  const raw = await container.logs({
    stdout: true,
    stderr: true,
    follow: false,
    timestamps: options.timestamps,
    ...(options.tailLines === undefined ? {} : { tail: options.tailLines }),
  });
  const buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
  return (options.tty ? buffer : demultiplex(buffer)).toString('utf8');
}
