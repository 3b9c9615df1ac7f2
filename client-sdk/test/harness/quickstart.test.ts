/**
 * examples/harness-quickstart.ts as a user runs it: two turns of one session in two separate
 * processes, the second seeing the files the first made. Once with the local snapshot store, once
 * with FILE_SYSTEM=oss on an s3rver and the Redis guard.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../server/src/package-root.js';
import { type RedisServer, startRedisServer } from '../../../support/redis-server.js';
import { type S3Server, startS3Server } from '../../../support/s3-server.js';
import { TSX_ARGS } from '../../../support/tsx.js';
import { SandboxClient } from '../../src/index.js';
import { type HarnessServer, startHarnessServer } from './support.js';

const root = packageRoot();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function quickstart(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...TSX_ARGS, join(root, 'examples', 'harness-quickstart.ts'), ...args],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function turn(args: string[]): Promise<Record<string, unknown>> {
  const run = await quickstart([...args, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** Two processes, one session: the second sees the first's note and projects nothing again. */
async function twoTurns(server: HarnessServer, session: string, extra: string[] = []): Promise<void> {
  const args = ['--server', server.url, '--session', session, ...extra];
  const first = await turn([...args, '--note', 'first note']);
  expect(first).toMatchObject({
    key: `harness/session/${session}`,
    version: 1,
    restoredFrom: null,
    earlierNotes: [],
    skillOutput: '1 notes',
    projected: ['AGENTS.md', 'skills/count-notes/SKILL.md', 'skills/count-notes/count.sh'],
  });
  const second = await turn([...args, '--note', 'second note']);
  expect(second).toMatchObject({
    version: 2,
    restoredFrom: first.snapshotId,
    earlierNotes: ['first note'],
    skillOutput: '2 notes',
    projected: [],
  });
  expect(second.files).toEqual(expect.arrayContaining(['notes.md', 'skills/count-notes/count.sh']));
  expect(second.fencingToken).toBeGreaterThan(0);
  // Neither process left a sandbox behind.
  expect(await new SandboxClient({ baseUrl: server.url }).list({ sessionId: session })).toEqual([]);
}

it('documents itself with --help', async () => {
  const run = await quickstart(['--help']);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('Usage: npx tsx examples/harness-quickstart.ts');
  for (const option of ['--server', '--token', '--session', '--note', '--agent-dir', '--redis']) {
    expect(run.stdout).toContain(option);
  }
});

describe('with the local snapshot store', () => {
  let server: HarnessServer;

  beforeAll(async () => {
    server = await startHarnessServer('harness-quickstart-test', { POOL_SIZE: '0' });
  });

  afterAll(async () => {
    await server?.shutdown();
  });

  it('runs two turns of one session in two processes', async () => {
    await twoTurns(server, 'local-demo');
  });

  it('says why a turn failed, and exits non-zero', async () => {
    const run = await quickstart(['--server', server.url, '--type', 'no-such-type']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the turn failed');
  });
});

describe('with snapshots on S3 (s3rver) and the Redis guard', () => {
  let s3: S3Server;
  let redis: RedisServer;
  let server: HarnessServer;

  beforeAll(async () => {
    s3 = await startS3Server('harness-snapshots');
    redis = await startRedisServer();
    server = await startHarnessServer('harness-quickstart-s3-test', {
      POOL_SIZE: '0',
      FILE_SYSTEM: 'oss',
      OSS_ENDPOINT: s3.endpoint,
      OSS_ACCESS_KEY_ID: s3.accessKeyId,
      OSS_ACCESS_KEY_SECRET: s3.secretAccessKey,
      OSS_BUCKET_NAME: s3.bucket,
      OSS_REGION: s3.region,
    });
  });

  afterAll(async () => {
    await server?.shutdown();
    await redis?.stop();
    await s3?.stop();
  });

  it('runs two turns of one session in two processes', async () => {
    await twoTurns(server, 's3-demo', ['--redis', `redis://127.0.0.1:${redis.port}`]);
    const [head] = await new SandboxClient({ baseUrl: server.url }).snapshots.list({
      key: 'harness/session/s3-demo',
    });
    expect(head).toMatchObject({ backend: 'oss', version: 2 });
  });
});
