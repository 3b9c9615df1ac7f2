/**
 * Blobs as objects in an S3-compatible bucket (FILE_SYSTEM=oss: AWS S3, Alibaba OSS, MinIO,
 * s3rver...). Uploads stream through lib-storage's multipart `Upload`, holding at most
 * PART_SIZE x QUEUE_SIZE bytes; an object only exists once CompleteMultipartUpload succeeded, so a
 * failed upload leaves no object, and its parts are aborted (best effort: a bucket lifecycle rule
 * for incomplete multipart uploads catches the rest when the server went away before the abort).
 */
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { assertBlobName, type BlobDigest, type BlobStore, type ByteSource } from './blob-store.js';
import { measured } from './digest.js';

const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

export interface S3BlobStoreOptions {
  /** Unset means AWS S3 itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Unset means the SDK's default credential chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
  /** Prepended to every blob name, e.g. `runtime-sandbox/snapshots/`. */
  keyPrefix: string;
  /** Told when aborting a failed multipart upload failed too. */
  onCleanupError?: (err: unknown) => void;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 'oss' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      credentials: options.credentials,
      forcePathStyle: options.forcePathStyle,
      // Checksums only where S3 demands them: many S3-compatible servers do not understand the
      // SDK's default aws-chunked trailing checksums, and every blob carries its own sha256 anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // A server that stops answering fails the call instead of hanging it (socket idle timeout).
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 },
    });
    this.bucket = options.bucket;
    this.prefix =
      options.keyPrefix === '' || options.keyPrefix.endsWith('/')
        ? options.keyPrefix
        : `${options.keyPrefix}/`;
  }

  async put(name: string, source: ByteSource): Promise<BlobDigest> {
    const key = this.keyOf(name);
    const bytes = measured(source);
    const body = Readable.from(bytes.chunks, { objectMode: false });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      // Aborted below, so the error thrown is the upload's own and not a failed abort's.
      leavePartsOnError: true,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      await this.abandon(key, upload.uploadId);
      throw err;
    }
    return bytes.digest();
  }

  async get(name: string): Promise<AsyncIterable<Buffer> | null> {
    try {
      const answer = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(name) }),
      );
      if (!(answer.Body instanceof Readable)) throw new Error('S3 GetObject gave no Node stream body');
      return answer.Body;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async delete(name: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(name) }));
  }

  async exists(name: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(name) }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(folder: string): Promise<string[]> {
    const prefix = `${this.keyOf(folder)}/`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) names.push(object.Key.slice(this.prefix.length));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return names;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private keyOf(name: string): string {
    assertBlobName(name);
    return `${this.prefix}${name}`;
  }

  /** Drops the parts of a failed multipart upload; a failure here is reported, not thrown. */
  private async abandon(key: string, uploadId: string | undefined): Promise<void> {
    if (uploadId === undefined) return;
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (err) {
      this.options.onCleanupError?.(err);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404)
  );
}
