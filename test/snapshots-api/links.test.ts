/**
 * Snapshots restore what they saved, links included: a real venv (whose interpreter is a link out
 * of the workspace, to /usr/bin/python3), a node_modules with relative and absolute links, and a
 * git repository are snapshotted on release (`DELETE ?snapshot=true`) and restored into a new
 * sandbox byte for byte, every link as the same link, and they work there. A release whose
 * snapshot the store refuses keeps the sandbox, still claimed and usable. FILE_SYSTEM=redis, whose
 * size cap (SNAPSHOT_REDIS_MAX_BYTES) is the store refusing.
 */
import { describe, expect, it } from 'vitest';
import { withRedis, withServer } from '../support/fixture.js';
import { acquire, type ErrorAnswer, fingerprint, MiB, type SandboxInfo, sh } from './workspace.js';

const STORE_CAP_BYTES = 2 * MiB;

/** A venv, a node_modules with links of every kind, and a git repository with one commit. */
const PROJECT = [
  'set -e',
  'python3 -m venv --without-pip venv',
  'mkdir -p node_modules/x node_modules/.bin',
  'printf \'#!/usr/bin/env node\\nconsole.log("x ran")\\n\' > node_modules/x/bin.js',
  'chmod 755 node_modules/x/bin.js',
  'ln -s ../x/bin.js node_modules/.bin/x',
  'ln -s /workspace/node_modules/x node_modules/x-absolute',
  'ln -s /usr/lib/node_modules node_modules/outside',
  'git init -q repo',
  'echo hello > repo/README',
  'git -C repo add README',
  'git -C repo -c user.name=test -c user.email=test@example.invalid commit -qm first',
].join('\n');

describe('snapshots of links, venvs, node_modules and git repositories', () => {
  // The snapshot store's keys go with the redis-server, stopped after the server.
  const { redis } = withRedis();
  const server = withServer('rsbx-test-snapshot-links', {
    env: () => ({
      POOL_SIZE: '0',
      FILE_SYSTEM: 'redis',
      REDIS_PORT: String(redis.port),
      SNAPSHOT_REDIS_MAX_BYTES: String(STORE_CAP_BYTES),
    }),
  });

  it('round-trips them through DELETE ?snapshot=true: same bytes, modes and link targets, and they work', async () => {
    const source = await acquire(server);
    await sh(server, source, PROJECT);
    const before = await fingerprint(server, source);
    for (const line of [
      "777 symbolic link './venv/bin/python3' -> '/usr/bin/python3'",
      "777 symbolic link './node_modules/.bin/x' -> '../x/bin.js'",
      "777 symbolic link './node_modules/x-absolute' -> '/workspace/node_modules/x'",
      "777 symbolic link './node_modules/outside' -> '/usr/lib/node_modules'",
      "755 regular file './node_modules/x/bin.js'",
    ]) {
      expect(before.listing.split('\n')).toContain(line);
    }
    expect(before.hashes).toMatch(/ \.\/repo\/\.git\/HEAD$/m);

    const released = await server.call<{ id: string }>('DELETE', `/v1/sandboxes/${source}?snapshot=true`);
    expect(released.status).toBe(200);
    expect((await server.call('GET', `/v1/sandboxes/${source}`)).status).toBe(404);

    const restored = await acquire(server, { restore: { snapshotId: released.body.id } });
    expect(await fingerprint(server, restored)).toEqual(before);
    expect(await sh(server, restored, 'venv/bin/python -c "import sys; print(sys.prefix)"')).toBe(
      '/workspace/venv\n',
    );
    expect(
      await sh(server, restored, 'node_modules/.bin/x && cat node_modules/x-absolute/bin.js | wc -l'),
    ).toBe('x ran\n2\n');
    expect(await sh(server, restored, 'git -C repo status --porcelain && git -C repo log --format=%s')).toBe(
      'first\n',
    );
    // Reads through a link out of the workspace are still refused.
    const outside = await server.call<ErrorAnswer>(
      'GET',
      `/v1/sandboxes/${restored}/files?path=venv/bin/python3`,
    );
    expect({ status: outside.status, code: outside.body.error?.code }).toEqual({
      status: 403,
      code: 'PATH_OUTSIDE_WORKSPACE',
    });
    expect((await server.call('DELETE', `/v1/sandboxes/${restored}`)).status).toBe(204);
  });

  it('keeps the sandbox, claimed and usable, when the store refuses the snapshot of a release', async () => {
    const snapshotCount = async () =>
      (await server.call<{ snapshots: unknown[] }>('GET', '/v1/snapshots')).body.snapshots.length;
    const snapshotsBefore = await snapshotCount();
    const sandbox = await acquire(server);
    // Random bytes do not compress: the snapshot is over the store's cap.
    await sh(
      server,
      sandbox,
      `head -c ${2 * STORE_CAP_BYTES} /dev/urandom > big.bin && echo kept > work.txt`,
    );
    const refused = await server.call<ErrorAnswer>('DELETE', `/v1/sandboxes/${sandbox}?snapshot=true`);
    expect({ status: refused.status, code: refused.body.error?.code }).toEqual({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
    const info = await server.call<SandboxInfo>('GET', `/v1/sandboxes/${sandbox}`);
    expect({ status: info.status, state: info.body.status }).toEqual({ status: 200, state: 'claimed' });
    expect(await sh(server, sandbox, 'cat work.txt')).toBe('kept\n');
    expect(await snapshotCount()).toBe(snapshotsBefore);
    expect((await server.call('DELETE', `/v1/sandboxes/${sandbox}`)).status).toBe(204);
  });
});
