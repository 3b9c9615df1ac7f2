import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../server/src/config/schema.js';
import { packageRoot } from '../../server/src/package-root.js';
import { ExtensionLoadError, loadExtensions } from '../../server/src/sandbox-types/extensions.js';
import {
  createRegistry,
  SandboxTypeDefinitionError,
  SandboxTypeNotFoundError,
  type SandboxTypeRegistry,
} from '../../server/src/sandbox-types/registry.js';

const root = packageRoot();
const config = configSchema.parse({});
const scratch = mkdtempSync(join(tmpdir(), 'rsbx-extensions-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Writes an ES module into the scratch folder and gives its path. */
function writeModule(name: string, source: string): string {
  const path = join(scratch, name);
  writeFileSync(path, source);
  return path;
}

async function loadError(registry: SandboxTypeRegistry, modules: string[]): Promise<Error> {
  const error = await loadExtensions(registry, modules, root).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof Error)) throw new Error('expected loadExtensions to fail');
  return error;
}

let registry: SandboxTypeRegistry;
beforeEach(() => {
  registry = createRegistry(config);
});

describe('the registry', () => {
  it('holds the built-in base type with its Dockerfile folder and image name', () => {
    const base = registry.require('base');
    expect(base.dockerfileDir).toBe(join(root, 'sandbox-images', 'base'));
    expect(registry.imageFor(base)).toBe('runtime-sandbox/runtime-sandbox-base:latest');
    expect(registry.poolSizeFor(base)).toBe(config.POOL_SIZE);
    expect(registry.list().map((t) => t.name)).toEqual(['base']);
  });

  it('answers an unknown type with SANDBOX_TYPE_NOT_FOUND', () => {
    expect(registry.get('nope')).toBeUndefined();
    let error: unknown;
    try {
      registry.require('nope');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SandboxTypeNotFoundError);
    expect(error).toMatchObject({
      code: 'SANDBOX_TYPE_NOT_FOUND',
      details: { type: 'nope', available: ['base'] },
    });
  });

  it('keeps pools only for default types unless a type sets its own size', () => {
    const other = registry.register({ name: 'other' }, 'test');
    const sized = registry.register({ name: 'sized', poolSize: 3, image: 'example/sized:1' }, 'test');
    expect(registry.poolSizeFor(other)).toBe(0);
    expect(registry.poolSizeFor(sized)).toBe(3);
    expect(registry.imageFor(sized)).toBe('example/sized:1');
  });
});

describe('loadExtensions', () => {
  it('registers the python-data example with its Dockerfile folder resolved', async () => {
    await loadExtensions(registry, ['extensions/python-data/index.ts'], root);
    const type = registry.require('python-data');
    expect(type).toMatchObject({
      dockerfileDir: join(root, 'extensions', 'python-data'),
      resources: { memoryMiB: 1024, pidsLimit: 512, workspaceMiB: 2048 },
      storage: { writable: { '/tmp': 256, '/var/tmp': 64, '/home/sandbox': 256 } },
      security: { readOnlyRootfs: true },
      env: { PYTHONIOENCODING: 'utf-8' },
      timeouts: { idleSeconds: 900, readyMs: 30000 },
    });
    expect(registry.imageFor(type)).toBe('runtime-sandbox/runtime-sandbox-python-data:latest');
    expect(registry.sourceOf('python-data')).toBe('extension extensions/python-data/index.ts');
  });

  it('takes an array of definitions, or a function given the registering api', async () => {
    mkdirSync(join(scratch, 'images', 'two'), { recursive: true });
    const list = writeModule(
      'list.mjs',
      "export default [{ name: 'one' }, { name: 'two', dockerfileDir: 'images/two' }];",
    );
    const fn = writeModule(
      'fn.mjs',
      `export default async (api) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        api.registerSandboxType({ name: 'three', security: { readOnlyRootfs: false } });
      };`,
    );
    await loadExtensions(registry, [list, fn], root);
    expect(registry.list().map((t) => t.name)).toEqual(['base', 'one', 'two', 'three']);
    expect(registry.require('two').dockerfileDir).toBe(join(scratch, 'images', 'two'));
    expect(registry.require('three').security.readOnlyRootfs).toBe(false);
  });

  it("reads an older type's resources.tmpfsMiB as the size of /tmp among the default writable paths", async () => {
    const legacy = writeModule(
      'legacy.mjs',
      "export default { name: 'legacy', resources: { tmpfsMiB: 128 } };",
    );
    await loadExtensions(registry, [legacy], root);
    const type = registry.require('legacy');
    expect(type.storage.writable).toEqual({ '/tmp': 128, '/var/tmp': 64, '/home/sandbox': 64 });
    expect(type.resources).toEqual({ cpus: 1, memoryMiB: 512, pidsLimit: 256, workspaceMiB: 1024 });
    expect(type.security.readOnlyRootfs).toBe(true);
  });

  it('resolves a package name from the working directory', async () => {
    const project = join(scratch, 'project');
    const pkg = join(project, 'node_modules', 'rsbx-ext-demo');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({ name: 'rsbx-ext-demo', type: 'module', exports: './main.js' }),
    );
    writeFileSync(join(pkg, 'main.js'), "export default { name: 'demo', dockerfileDir: 'docker' };");
    await loadExtensions(registry, ['rsbx-ext-demo'], project);
    expect(registry.require('demo').dockerfileDir).toBe(join(pkg, 'docker'));
  });

  it('says which module failed to load and why', async () => {
    const broken = writeModule('broken.mjs', "throw new Error('boom at import');");
    const error = await loadError(registry, [broken]);
    expect(error).toBeInstanceOf(ExtensionLoadError);
    expect(error.message).toBe(`extension ${broken} failed to load: boom at import`);

    const syntax = writeModule('syntax.mjs', 'export default {');
    expect((await loadError(registry, [syntax])).message).toMatch(
      /^extension .*syntax\.mjs failed to load: /,
    );
  });

  it('names the module whose registering function throws', async () => {
    const file = writeModule('throws.mjs', "export default () => { throw new Error('no GPU here'); };");
    const error = await loadError(registry, [file]);
    expect(error).toBeInstanceOf(ExtensionLoadError);
    expect(error.message).toBe(`extension ${file} failed while registering: no GPU here`);
  });

  it('rejects a module that exports nothing usable', async () => {
    const sources = ['export const name = 1;', 'export default 42;', 'export default [];'];
    for (const [index, source] of sources.entries()) {
      const file = writeModule(`useless-${index}.mjs`, source);
      const error = await loadError(registry, [file]);
      expect(error).toBeInstanceOf(ExtensionLoadError);
      expect(error.message).toContain('exports nothing usable');
    }
  });

  it('names the module and the field of an invalid definition', async () => {
    const file = writeModule(
      'invalid.mjs',
      "export default { name: 'Bad Name', resources: { memoryMiB: 1 } };",
    );
    const error = await loadError(registry, [file]);
    expect(error).toBeInstanceOf(SandboxTypeDefinitionError);
    expect(error.message).toContain(`invalid sandbox type "Bad Name" from extension ${file}`);
    expect(error.message).toContain('name');
    expect(error.message).toContain('resources.memoryMiB');
  });

  it('refuses a second type of the same name, naming both sources', async () => {
    const file = writeModule('dup.mjs', "export default { name: 'base' };");
    const error = await loadError(registry, [file]);
    expect(error).toBeInstanceOf(SandboxTypeDefinitionError);
    expect(error.message).toBe(
      `sandbox type "base" from extension ${file} is already registered by built-in`,
    );
  });

  it('says so when the module is neither a file nor a package', async () => {
    const missingFile = await loadError(registry, ['extensions/nope/index.ts']);
    expect(missingFile.message).toBe(
      `extension extensions/nope/index.ts: no such file ${join(root, 'extensions/nope/index.ts')}`,
    );
    const missingPackage = await loadError(registry, ['rsbx-no-such-package']);
    expect(missingPackage.message).toMatch(
      /^extension rsbx-no-such-package: neither a file nor a package found/,
    );
  });

  it('loads a TypeScript extension from a bundled server under plain node (tsx registered on demand)', async () => {
    // The same bundling as dist/server.mjs (npm packages external), placed where they resolve.
    const outDir = mkdtempSync(join(root, 'node_modules', '.rsbx-test-'));
    try {
      const outfile = join(outDir, 'load-extension.mjs');
      await build({
        stdin: {
          contents: `
            import { configSchema } from '../../server/src/config/schema.js';
            import { createRegistry } from '../../server/src/sandbox-types/registry.js';
            import { loadExtensions } from '../../server/src/sandbox-types/extensions.js';
            const registry = createRegistry(configSchema.parse({}));
            await loadExtensions(registry, process.argv.slice(2));
            console.log(JSON.stringify(registry.list()));`,
          resolveDir: join(root, 'test', 'config'),
          loader: 'ts',
        },
        outfile,
        bundle: true,
        packages: 'external',
        platform: 'node',
        format: 'esm',
        logLevel: 'silent',
      });
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [outfile, 'extensions/python-data/index.ts'],
        {
          cwd: root,
        },
      );
      const types: Array<{ name: string; dockerfileDir?: string }> = JSON.parse(stdout);
      expect(types.map((t) => [t.name, t.dockerfileDir])).toEqual([
        ['base', join(root, 'sandbox-images', 'base')],
        ['python-data', join(root, 'extensions', 'python-data')],
      ]);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});
