/**
 * The image builder against the real Docker engine: the base image global setup built (labels,
 * user, tools, a sandboxd that answers its health check), the CLI's up-to-date skip and its
 * failures, rebuilds on a content change, a push to a registry on loopback, and a type built FROM
 * the base image. Everything built here is tagged with a tag of this run's own and removed
 * afterwards; the real images are only read.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/src/config/load.js';
import { imageNameFor } from '../../server/src/config/schema.js';
import { buildSandboxImages } from '../../server/src/images/build-sandbox-images.js';
import { IMAGE_LABELS } from '../../server/src/images/image-builder.js';
import { inspectLocalImage } from '../../server/src/images/local-images.js';
import { packageRoot } from '../../server/src/package-root.js';
import { SandboxTypeRegistry } from '../../server/src/sandbox-types/registry.js';
import { docker, startSandboxdContainer, TEST_LABEL } from '../../support/sandboxd-container.js';
import { TSX_ARGS } from '../../support/tsx.js';
import { startRegistryServer } from '../support/registry-server.js';

const root = packageRoot();
const baseDockerfileDir = join(root, 'sandbox-images', 'base');
/** Images built here carry this tag, so the real `latest` images are never replaced. */
const testTag = `builder-test-${randomBytes(4).toString('hex')}`;
const testEnv = { RUNTIME_SANDBOX_IMAGE_TAG: testTag };
const realBaseImage = imageNameFor('base', loadConfig());

const scratch = mkdtempSync(join(tmpdir(), 'rsbx-builder-test-'));
const createdImages = new Set<string>();

afterAll(async () => {
  for (const image of createdImages) {
    await docker
      .getImage(image)
      .remove({ force: true })
      .catch(() => undefined);
  }
  rmSync(scratch, { recursive: true, force: true });
});

interface CliRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** `runtime-sandbox-builder ...args` from source, as a separate process. */
function runBuilderCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TSX_ARGS, join(root, 'server/src/cli/builder.ts'), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, stdout, stderr }));
  });
}

/** Runs argv in a fresh container of `image` (its own user and entrypoint) and returns its output. */
async function runInImage(image: string, argv: string[]): Promise<{ exitCode: number; output: string }> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      done();
    },
  });
  const [result, container] = (await docker.run(image, argv, [sink, sink], {
    Tty: false,
    Labels: { [TEST_LABEL]: 'images' },
  })) as [{ StatusCode: number }, Docker.Container];
  await container.remove({ force: true });
  return { exitCode: result.StatusCode, output: Buffer.concat(chunks).toString('utf8') };
}

async function labelsOf(image: string): Promise<Record<string, string>> {
  const info = await inspectLocalImage(docker, image);
  if (!info) throw new Error(`image ${image} is missing`);
  return info.Config.Labels ?? {};
}

/** A copy of the base Dockerfile folder at `dir`, told apart from the real one by a trailing comment. */
function copyBaseFolder(dir: string, comment: string): string {
  cpSync(baseDockerfileDir, dir, { recursive: true });
  appendFileSync(join(dir, 'Dockerfile'), `# ${comment}\n`);
  return dir;
}

describe('the base image', () => {
  it('carries the content hash and type labels and the sandbox runtime settings', async () => {
    const info = await inspectLocalImage(docker, realBaseImage);
    expect(info, `${realBaseImage} should have been built by global setup`).toBeDefined();
    expect(info?.Config.Labels?.[IMAGE_LABELS.contentHash]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(info?.Config.Labels?.[IMAGE_LABELS.type]).toBe('base');
    // sandboxd starts as root and runs the code as the sandbox user (SANDBOXD_RUN_AS).
    expect(info?.Config.User ?? '').toBe('');
    expect(info?.Config.WorkingDir).toBe('/workspace');
    expect(info?.Config.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(info?.Config.Cmd).toEqual(['node', '/opt/sandboxd/sandboxd.mjs']);
    expect(Object.keys(info?.Config.ExposedPorts ?? {})).toEqual(['49983/tcp']);
    expect(info?.Config.Env).toEqual(
      expect.arrayContaining(['SANDBOXD_PORT=49983', 'SANDBOXD_WORKSPACE=/workspace']),
    );
  });

  it('runs sandboxd locked down as the sandbox user (uid 1000), with the promised tools', async () => {
    const sandbox = await startSandboxdContainer({ purpose: 'images' });
    try {
      const who = await sandbox.dockerExec(['sh', '-c', 'id -u; id -g; id -un; echo "$HOME"; pwd']);
      expect(who.output.trim().split('\n')).toEqual([
        '1000',
        '1000',
        'sandbox',
        '/home/sandbox',
        '/workspace',
      ]);

      const tools = await sandbox.dockerExec([
        'sh',
        '-c',
        'node --version && python3 --version && git --version && bash --version | head -1 && curl --version | head -1 && tini --version && ps --version',
      ]);
      expect(tools.exitCode, tools.output).toBe(0);
      expect(tools.output).toMatch(/^v(\d+)\./);
      expect(Number(/^v(\d+)\./.exec(tools.output)?.[1])).toBeGreaterThanOrEqual(18);
      for (const tool of ['Python 3', 'git version', 'GNU bash', 'curl', 'tini version', 'procps']) {
        expect(tools.output).toContain(tool);
      }

      const workspace = await sandbox.dockerExec([
        'sh',
        '-c',
        'touch /workspace/probe && stat -c %U /workspace',
      ]);
      expect(workspace).toEqual({ exitCode: 0, output: 'sandbox\n' });

      // The image's own HEALTHCHECK command, run as Docker would run it.
      const info = await inspectLocalImage(docker, realBaseImage);
      const [kind, command] = info?.Config.Healthcheck?.Test ?? [];
      expect(kind).toBe('CMD-SHELL');
      expect(command).toContain('/healthz');
      const health = await sandbox.dockerExec(['sh', '-c', command ?? 'false']);
      expect(health.exitCode, health.output).toBe(0);
    } finally {
      await sandbox.remove();
    }
  });
});

describe('runtime-sandbox-builder', () => {
  it('leaves an unchanged type alone: "up to date", same image', async () => {
    const before = await inspectLocalImage(docker, realBaseImage);
    const run = await runBuilderCli(['base']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toContain(`[base] up to date: ${realBaseImage}`);
    expect(run.stderr).not.toContain('Step ');
    expect((await inspectLocalImage(docker, realBaseImage))?.Id).toBe(before?.Id);
  });

  it('rebuilds when the Dockerfile folder changes, and drops the image it replaced', async () => {
    const image = `runtime-sandbox/runtime-sandbox-base:${testTag}`;
    createdImages.add(image);
    const folder = copyBaseFolder(join(scratch, 'base-copy'), 'first version');

    const first = await runBuilderCli(['base', '--dockerfile-path', folder], testEnv);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toContain(`[base] built ${image}`);
    const firstInfo = await inspectLocalImage(docker, image);
    const firstHash = firstInfo?.Config.Labels?.[IMAGE_LABELS.contentHash];
    expect(firstHash).toBeDefined();
    expect(firstHash).not.toBe((await labelsOf(realBaseImage))[IMAGE_LABELS.contentHash]);

    const again = await runBuilderCli(['base', '--dockerfile-path', folder], testEnv);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toContain(`[base] up to date: ${image}`);

    appendFileSync(join(folder, 'Dockerfile'), '# second version\n');
    const changed = await runBuilderCli(['base', '--dockerfile-path', folder], testEnv);
    expect(changed.exitCode, changed.stderr).toBe(0);
    expect(changed.stderr).toContain(`[base] built ${image}`);
    const changedHash = (await labelsOf(image))[IMAGE_LABELS.contentHash];
    expect(changedHash).toMatch(/^sha256:/);
    expect(changedHash).not.toBe(firstHash);
    expect(await inspectLocalImage(docker, firstInfo?.Id ?? 'missing')).toBeUndefined();
  });

  it('fails with a clear message for an unknown type', async () => {
    const run = await runBuilderCli(['no-such-type'], testEnv);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('no sandbox type "no-such-type" is registered (available: base');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('fails with the failing step when a build breaks, and tags nothing', async () => {
    const folder = join(scratch, 'broken');
    mkdirSync(folder);
    writeFileSync(
      join(folder, 'Dockerfile'),
      'FROM debian:bookworm-slim\nRUN echo about to fail && exit 3\n',
    );
    const image = `runtime-sandbox/runtime-sandbox-base:${testTag}-broken`;
    createdImages.add(image);

    const run = await runBuilderCli(['base', '--dockerfile-path', folder], {
      RUNTIME_SANDBOX_IMAGE_TAG: `${testTag}-broken`,
    });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain('[base] about to fail');
    expect(run.stderr).toContain(`runtime-sandbox-builder: building ${image} failed:`);
    expect(run.stderr).toContain('returned a non-zero code: 3');
    expect(await inspectLocalImage(docker, image)).toBeUndefined();
  });

  it('fails with usage help for a bad command line, and prints help on --help', async () => {
    const both = await runBuilderCli(['all', '--dockerfile-path', scratch], testEnv);
    expect(both.exitCode).toBe(1);
    expect(both.stderr).toContain('applies to one type, not to "all"');

    const none = await runBuilderCli([], testEnv);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('Usage: runtime-sandbox-builder');

    const unknownFlag = await runBuilderCli(['base', '--no-such-flag'], testEnv);
    expect(unknownFlag.exitCode).toBe(1);
    expect(unknownFlag.stderr).toContain('--no-such-flag');

    const help = await runBuilderCli(['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('Usage: runtime-sandbox-builder <type|all|server>');
  });

  it('--push sends the built image to RUNTIME_SANDBOX_REGISTRY, and refuses to run without one', async () => {
    const refused = await runBuilderCli(['base', '--push'], testEnv);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('--push needs RUNTIME_SANDBOX_REGISTRY');

    const registry = await startRegistryServer();
    try {
      const env = { ...testEnv, RUNTIME_SANDBOX_REGISTRY: registry.address };
      const image = `${registry.address}/runtime-sandbox/runtime-sandbox-base:${testTag}`;
      createdImages.add(image);
      const run = await runBuilderCli(['base', '--push'], env);
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stderr).toContain(`[push] ${image} pushed`);
      expect(await registry.get('/v2/runtime-sandbox/runtime-sandbox-base/tags/list')).toEqual({
        name: 'runtime-sandbox/runtime-sandbox-base',
        tags: [testTag],
      });
      // The registry holds this very image: the engine recorded the digest the registry answered.
      const digests = (await inspectLocalImage(docker, image))?.RepoDigests ?? [];
      expect(
        digests.some((digest) =>
          digest.startsWith(`${registry.address}/runtime-sandbox/runtime-sandbox-base@sha256:`),
        ),
      ).toBe(true);
    } finally {
      await registry.stop();
    }
  });
});

describe('a type built FROM the base image', () => {
  const tag = `${testTag}-child`;
  const registry = new SandboxTypeRegistry(
    loadConfig({ env: { ...process.env, RUNTIME_SANDBOX_IMAGE_TAG: tag } }),
  );
  const baseFolder = join(scratch, 'parent-base');
  const childFolder = join(scratch, 'child');
  let results: Awaited<ReturnType<typeof buildSandboxImages>> = [];
  const build = async () => {
    results = await buildSandboxImages(
      { docker, registry, log: () => undefined },
      { target: 'builder-test-child' },
    );
    for (const result of results) createdImages.add(result.image);
    return results.map((result) => `${result.typeName}:${result.status}`);
  };

  beforeAll(() => {
    copyBaseFolder(baseFolder, 'parent of another type');
    mkdirSync(childFolder);
    writeFileSync(
      join(childFolder, 'Dockerfile'),
      'ARG BASE_IMAGE\nFROM $BASE_IMAGE\nRUN echo child-of-base > /home/sandbox/marker\n',
    );
    registry.register({ name: 'base', dockerfileDir: baseFolder });
    registry.register({ name: 'builder-test-child', dockerfileDir: childFolder });
  });

  it('builds the base first, then the child on top of it', async () => {
    expect(await build()).toEqual(['base:built', 'builder-test-child:built']);
    const child = results[1]?.image ?? 'missing';
    expect(child).toBe(`runtime-sandbox/runtime-sandbox-builder-test-child:${tag}`);
    expect((await labelsOf(child))[IMAGE_LABELS.type]).toBe('builder-test-child');
    const run = await runInImage(child, ['sh', '-c', 'cat /home/sandbox/marker; id -un; node --version']);
    expect(run.exitCode, run.output).toBe(0);
    // The image's own user is root: sandboxd starts as root and runs the code as SANDBOXD_RUN_AS.
    expect(run.output).toMatch(/^child-of-base\nroot\nv\d+\./);
  });

  it('rebuilds the child when its base changes, and neither when nothing did', async () => {
    appendFileSync(join(baseFolder, 'Dockerfile'), '# the base changed\n');
    expect(await build()).toEqual(['base:built', 'builder-test-child:built']);
    expect(await build()).toEqual(['base:up-to-date', 'builder-test-child:up-to-date']);
  });
});
