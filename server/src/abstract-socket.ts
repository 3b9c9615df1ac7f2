/**
 * Host-wide names, each held by a listening unix socket in Linux's abstract namespace: one process
 * holds a name at a time, and the kernel drops it when that process dies, however it dies, so a
 * crash never leaves a stale hold. As wide as the network namespace (a server in a container of
 * its own sees only its own). /proc/net/unix lists the names held.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';

/** A unix socket path's limit, counting the leading NUL; longer names would be cut short silently. */
export const MAX_NAME_BYTES = 107;

export interface HeldName {
  readonly name: string;
  release(): Promise<void>;
}

/** Holds `name`, or answers null when another socket (this process's or another's) holds it. */
export async function holdName(name: string): Promise<HeldName | null> {
  if (Buffer.byteLength(name) + 1 > MAX_NAME_BYTES) throw new Error(`abstract socket name too long: ${name}`);
  // Nobody has anything to say to a held name; a process that connects is hung up on.
  const server = createServer((socket) => socket.destroy());
  const listening = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' ? resolve(false) : reject(err),
    );
    server.listen(`\0${name}`, () => resolve(true));
  });
  if (!listening) return null;
  // The hold lasts as long as the process, but must not be what keeps it running.
  server.unref();
  return { name, release: () => close(server) };
}

/** The held names that start with `prefix`, whoever holds them (a name ending in `@` would lose it). */
export async function heldNames(prefix: string): Promise<string[]> {
  const table = await readFile('/proc/net/unix', 'utf8');
  // The table shows NUL bytes as `@`, and Node binds the whole sun_path, NUL-padded.
  return table
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/)[7] ?? '')
    .filter((path) => path.startsWith(`@${prefix}`))
    .map((path) => path.slice(1).replace(/@+$/, ''));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
