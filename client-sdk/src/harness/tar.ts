/**
 * A minimal tar writer (POSIX ustar, with a pax `path` record for names ustar cannot hold) for the
 * one archive a projection uploads. Regular files only: sandboxd creates missing parent
 * directories itself. Hand-written because the SDK carries no dependencies.
 */

export interface TarFile {
  /** Relative path with `/` separators. */
  path: string;
  bytes: Uint8Array;
  /** Permission bits, e.g. 0o755. */
  mode: number;
}

const BLOCK = 512;
/** ustar's size field holds 11 octal digits. */
const MAX_SIZE = 8 ** 11 - 1;
const encoder = new TextEncoder();

/** The archive's bytes: each file's header and padded content, then two zero blocks. */
export function tarArchive(files: readonly TarFile[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  for (const file of files) {
    if (file.bytes.length > MAX_SIZE) throw new RangeError(`${file.path} is too large for a ustar entry`);
    const split = splitName(file.path);
    if (split) {
      chunks.push(header({ ...split, size: file.bytes.length, mode: file.mode, type: '0' }));
    } else {
      // The name does not fit ustar's fields: a pax header carries it, the ustar name is a stand-in.
      const record = paxRecord('path', file.path);
      chunks.push(header({ name: 'PaxHeader', prefix: '', size: record.length, mode: 0o644, type: 'x' }));
      chunks.push(record, padding(record.length));
      const standIn = encoder.encode(file.path).slice(-100);
      chunks.push(
        header({ name: lastWhole(standIn), prefix: '', size: file.bytes.length, mode: file.mode, type: '0' }),
      );
    }
    chunks.push(file.bytes, padding(file.bytes.length));
  }
  chunks.push(new Uint8Array(2 * BLOCK));
  return concat(chunks);
}

/** ustar's name and prefix fields for a path, or undefined when it does not fit them. */
function splitName(path: string): { name: string; prefix: string } | undefined {
  if (encoder.encode(path).length <= 100) return { name: path, prefix: '' };
  for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
    const prefix = path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (encoder.encode(prefix).length <= 155 && encoder.encode(name).length <= 100 && name !== '') {
      return { name, prefix };
    }
  }
  return undefined;
}

/** The stand-in name's text, dropping a UTF-8 sequence cut at its start. */
function lastWhole(bytes: Uint8Array): string {
  let start = 0;
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
  return new TextDecoder().decode(bytes.subarray(start));
}

/** One pax record, `<length> <key>=<value>\n`, where the length counts itself. */
function paxRecord(key: string, value: string): Uint8Array {
  const body = encoder.encode(` ${key}=${value}\n`).length;
  let length = body + String(body).length;
  if (String(length).length !== String(body).length) length = body + String(length).length;
  return encoder.encode(`${length} ${key}=${value}\n`);
}

interface HeaderFields {
  name: string;
  prefix: string;
  size: number;
  mode: number;
  /** '0' a regular file, 'x' a pax extended header for the next entry. */
  type: '0' | 'x';
}

function header(fields: HeaderFields): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeText(block, 0, 100, fields.name);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, Math.floor(Date.now() / 1000));
  writeText(block, 156, 1, fields.type);
  writeText(block, 257, 6, 'ustar');
  writeText(block, 263, 2, '00');
  writeText(block, 345, 155, fields.prefix);
  // The checksum is summed with its own field read as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeOctal(block, 148, 7, sum);
  return block;
}

function writeText(block: Uint8Array, offset: number, length: number, text: string): void {
  const bytes = encoder.encode(text);
  if (bytes.length > length) throw new RangeError(`tar header field overflow: ${text}`);
  block.set(bytes, offset);
}

/** Zero-padded octal digits ending in NUL, filling `length` bytes. */
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  writeText(block, offset, length - 1, value.toString(8).padStart(length - 1, '0'));
}

function padding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
