/**
 * Tar archives for sandboxd tests, built and read in memory with tar-stream (hostile ones included:
 * the builder writes whatever names, types and link targets it is given).
 */
import { extract, type Header, pack } from 'tar-stream';

export type TarEntryInput = Partial<Header> & { name: string; data?: string | Buffer };

export async function tarOf(entries: TarEntryInput[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk) => {
    chunks.push(chunk as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    archive.on('end', resolve);
    archive.on('error', reject);
  });
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) =>
      archive.entry(header, data ?? '', (err) => (err ? reject(err) : resolve())),
    );
  }
  archive.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export interface TarListing {
  header: Header;
  data: Buffer;
}

export async function readTar(archive: Uint8Array): Promise<TarListing[]> {
  const reader = extract();
  const listing: TarListing[] = [];
  const done = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      listing.push({ header: entry.header, data: Buffer.concat(chunks) });
    }
  })();
  reader.end(Buffer.from(archive));
  await done;
  return listing;
}
