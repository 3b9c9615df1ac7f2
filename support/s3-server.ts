/**
 * A real S3 protocol server for tests and benchmarks: s3rver in this process, on a free loopback
 * port, storing in its own temp dir, with one bucket made. Clients reach it through a small TCP
 * relay, so a test can make the server go away in the middle of an upload: `failAfter(bytes)` cuts
 * every connection once that many more request bytes went through, and resets every new one, until
 * `recover()`. s3rver's own data stays as it was, so what a failed upload left behind can be
 * inspected after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface S3Server {
  /** `http://127.0.0.1:<port>` (the relay). */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** After `bytes` more request bytes, every connection is cut and new ones reset, until recover(). */
  failAfter(bytes: number): void;
  /** Serves again (and disarms failAfter). */
  recover(): void;
  /** Stops the relay and s3rver and removes the temp dir. */
  stop(): Promise<void>;
}

interface S3rverOptions {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: Array<{ name: string }>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}

// s3rver ships no type declarations; this is the part of its API used here.
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: S3rverOptions) => S3rverInstance;

/** s3rver's fixed credentials. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';

/** The server's settings that put its snapshots in `s3` under `keyPrefix`. */
export function snapshotSettingsFor(s3: S3Server, keyPrefix: string): Record<string, string> {
  return {
    FILE_SYSTEM: 'oss',
    OSS_ENDPOINT: s3.endpoint,
    OSS_BUCKET_NAME: s3.bucket,
    OSS_REGION: s3.region,
    OSS_ACCESS_KEY_ID: s3.accessKeyId,
    OSS_ACCESS_KEY_SECRET: s3.secretAccessKey,
    OSS_KEY_PREFIX: keyPrefix,
  };
}

export async function startS3Server(bucket = 'snapshots'): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), 'rsbx-test-s3-'));
  const s3rver = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: [{ name: bucket }],
  });
  let upstream: AddressInfo;
  try {
    upstream = await s3rver.run();
  } catch (err) {
    rmSync(directory, { recursive: true, force: true });
    throw err;
  }

  const sockets = new Set<Socket>();
  let down = false;
  let bytesLeft: number | undefined;
  const cutAll = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  const relay = createServer((client) => {
    if (down) {
      client.resetAndDestroy();
      return;
    }
    const server = connect(upstream.port, '127.0.0.1');
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      // A cut connection errors on both ends; that is the point, not a test failure.
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      if (bytesLeft === undefined) return;
      bytesLeft -= chunk.length;
      if (bytesLeft <= 0) cutAll();
    });
    client.pipe(server);
    server.pipe(client);
  });
  const port = await listen(relay);

  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    failAfter(bytes) {
      bytesLeft = bytes;
    },
    recover() {
      bytesLeft = undefined;
      down = false;
    },
    async stop() {
      cutAll();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
      await s3rver.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
