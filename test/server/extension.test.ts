/**
 * An extension module adds a sandbox type: its image is built with the builder CLI, the server is
 * started with `--extension`, and a sandbox of the new type is acquired and runs its tools with the
 * type's env.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../server/src/package-root.js';
import { BASE_IMAGE, IMAGE_ENV, testImage } from '../../support/images.js';
import { containersOf } from '../../support/server-process.js';
import { TSX_ARGS } from '../../support/tsx.js';
import { testDeploymentId, withServer } from '../support/fixture.js';

const DEPLOYMENT = testDeploymentId('h5-test-extension');
const EXTENSION = 'extensions/python-data/index.ts';
const IMAGE = testImage('python-data');

describe('a sandbox type from an extension', () => {
  beforeAll(async () => {
    const root = packageRoot();
    // Up to date in a second when nothing changed; a first build installs Python packages.
    await promisify(execFile)(
      process.execPath,
      [...TSX_ARGS, join(root, 'server/src/cli/builder.ts'), 'python-data', '--extension', EXTENSION],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...IMAGE_ENV },
      },
    );
  });
  // Registered after the build above, so its image check and start run once the image exists.
  const server = withServer('h5-test-extension', {
    images: [BASE_IMAGE, IMAGE],
    env: { POOL_SIZE: '0' },
    args: ['--extension', EXTENSION],
  });

  it('lists the type and acquires a working sandbox of it', async () => {
    const types = await server.call<{ types: Array<{ name: string; source: string; image: string }> }>(
      'GET',
      '/v1/sandbox-types',
    );
    expect(types.body.types.find((t) => t.name === 'python-data')).toMatchObject({
      image: IMAGE,
      source: `extension ${EXTENSION}`,
    });

    const acquired = await server.call<{ id: string; type: string; idleTimeoutSeconds: number }>(
      'POST',
      '/v1/sandboxes',
      { type: 'python-data', env: { ANSWER: '42' } },
    );
    expect(acquired.status).toBe(201);
    expect(acquired.body).toMatchObject({ type: 'python-data', idleTimeoutSeconds: 900 });

    const run = await server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
      command: [
        'python3',
        '-c',
        'import os; print(int(os.environ["ANSWER"]) + 1, os.environ["PYTHONIOENCODING"])',
      ],
    });
    expect(run.body).toMatchObject({ exitCode: 0, stdout: '43 utf-8\n' });
    const jq = await server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, {
      command: `echo '{"a":[1,2]}' | jq -c '.a | add'`,
    });
    expect(jq.body).toMatchObject({ exitCode: 0, stdout: '3\n' });

    const [container] = await containersOf(DEPLOYMENT);
    expect(container?.Image).toBe(IMAGE);
    expect((await server.fetch(`/v1/sandboxes/${acquired.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await containersOf(DEPLOYMENT)).toHaveLength(0);
  });
});
