/**
 * Whole directories as tar streams: `download` packs a directory of the workspace, `upload`
 * unpacks one into it. Both stream; nothing is buffered whole on either side.
 */
import { type CallOptions, callSpec, type RawBody, type Transport } from './transport.js';
import type { ArchiveUploadResult } from './types.js';

export interface ArchiveOptions extends CallOptions {
  /** The tar is gzip-compressed (download: compress it; upload: it is compressed). Default false. */
  gzip?: boolean;
}

export class Archive {
  /** @internal Made by `Sandbox` and `DirectSandbox`. */
  constructor(private readonly transport: Transport) {}

  /**
   * A tar of the directory at `path` (default the workspace root), paths inside it relative to it.
   * The deadline covers the start of the answer; the stream is yours to read or cancel.
   */
  async download(path = '.', options: ArchiveOptions = {}): Promise<ReadableStream<Uint8Array>> {
    return this.transport.stream({
      method: 'GET',
      path: '/archive',
      query: { path, gzip: options.gzip ?? false },
      ...callSpec(options),
    });
  }

  /**
   * Unpacks a tar into the directory at `path` (created if missing), over what is there. Entries
   * that are absolute, climb out, link outside or are devices are refused (ValidationError,
   * UNSAFE_ARCHIVE_ENTRY). A stream body has no deadline by default; others have the client's.
   */
  async upload(path: string, tar: RawBody, options: ArchiveOptions = {}): Promise<ArchiveUploadResult> {
    return this.transport.json<ArchiveUploadResult>({
      method: 'PUT',
      path: '/archive',
      query: { path, gzip: options.gzip ?? false },
      body: tar,
      contentType: options.gzip ? 'application/gzip' : 'application/x-tar',
      ...callSpec(options, tar instanceof ReadableStream ? null : undefined),
    });
  }
}
