/**
 * vitest globalSetup. The tests drive a real Docker engine running the locally built sandbox
 * images, and start their own redis-server: both must be there, or the run stops here with a
 * message saying what is missing. Then the sandboxd bundle is rebuilt from source and every
 * built-in type's image brought up to date, so the tests never run yesterday's sandboxd; when
 * nothing changed that costs an esbuild run and a content hash per type, about a second.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import Docker from 'dockerode';
import { loadConfig } from '../../server/src/config/load.js';
import { ALL_TYPES, buildSandboxImages } from '../../server/src/images/build-sandbox-images.js';
import { ensureDockerAnswers } from '../../server/src/images/local-images.js';
import { packageRoot } from '../../server/src/package-root.js';
import { createRegistry } from '../../server/src/sandbox-types/registry.js';

export default async function setup(): Promise<void> {
  const config = loadConfig();
  const docker = new Docker({ socketPath: config.DOCKER_SOCKET });
  await ensureDockerAnswers(docker, config.DOCKER_SOCKET);
  requireOnPath('redis-server', 'the Redis tests start their own; scripts/bootstrap.sh installs it');

  const root = packageRoot();
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'sandboxd'], {
    cwd: root,
    stdio: 'inherit',
  });
  await buildSandboxImages(
    { docker, registry: createRegistry(config), log: (line) => process.stderr.write(`${line}\n`) },
    { target: ALL_TYPES },
  );
}

function requireOnPath(command: string, why: string): void {
  const probe = spawnSync(command, ['--version'], { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(`${command} is not on PATH (${probe.error?.message ?? `exit ${probe.status}`}): ${why}`);
  }
}
