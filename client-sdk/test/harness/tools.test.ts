/**
 * The agent tools against a real sandbox behind the real server: each tool, its schema, its
 * argument checks, and confinement of every path to the workspace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentTools,
  HARNESS_DIR,
  NotFoundError,
  type Sandbox,
  SandboxClient,
  ValidationError,
} from '../../src/index.js';
import { type HarnessServer, startHarnessServer } from './support.js';

let server: HarnessServer;
let sandbox: Sandbox;
let tools: AgentTools;
let root: string;

beforeAll(async () => {
  server = await startHarnessServer('harness-tools-test');
  sandbox = await new SandboxClient({ baseUrl: server.url }).create();
  root = (await sandbox.commands.run(['pwd'])).stdout.trim();
  tools = new AgentTools(sandbox, { workspaceRoot: root, maxResults: 5 });
  await sandbox.files.write('docs/guide.md', 'Intro\nInstall with npm\nUsage\n-v prints the version\n');
  await sandbox.files.write('docs/api/ref.md', 'install() sets things up\n');
  await sandbox.files.write('src/main.ts', 'export const install = 1;\n');
  await sandbox.files.write(`${HARNESS_DIR}/manifest.json`, '{"install": "hidden"}\n');
});

afterAll(async () => {
  await sandbox?.close();
  await server?.shutdown();
});

async function failure(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe('schemas', () => {
  it('describes all seven tools for function calling', () => {
    const definitions = tools.definitions();
    expect(definitions.map((d) => d.name)).toEqual([
      'execute',
      'read_file',
      'write_file',
      'edit_file',
      'grep_files',
      'glob_files',
      'list_files',
    ]);
    for (const definition of definitions) {
      expect(definition.description.length).toBeGreaterThan(10);
      expect(definition.parameters).toMatchObject({ type: 'object', additionalProperties: false });
      for (const required of definition.parameters.required) {
        expect(Object.keys(definition.parameters.properties)).toContain(required);
      }
      // Plain JSON: what a model API is sent.
      expect(JSON.parse(JSON.stringify(definition))).toEqual(definition);
    }
  });

  it('gives a model its errors as data, and takes JSON text arguments', async () => {
    expect(await tools.call('read_file', '{"path": "docs/api/ref.md"}')).toMatchObject({
      ok: true,
      result: { content: 'install() sets things up' },
    });
    expect(await tools.call('read_file', { path: 'nope.md' })).toEqual({
      ok: false,
      error: { code: 'FILE_NOT_FOUND', message: expect.any(String) },
    });
    expect(await tools.call('read_file', { file: 'x' })).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_ERROR' },
    });
    expect(await tools.call('rm_rf', {})).toMatchObject({ ok: false, error: { code: 'VALIDATION_ERROR' } });
  });
});

describe('execute', () => {
  it('runs a shell command in the workspace or a folder of it', async () => {
    expect(await tools.execute.run({ command: 'echo out; echo err >&2; exit 3' })).toEqual({
      exitCode: 3,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
      truncated: false,
    });
    expect((await tools.execute.run({ command: 'pwd', cwd: 'docs' })).stdout).toBe(`${root}/docs\n`);
  });

  it('kills a command at its timeout', async () => {
    expect(await tools.execute.run({ command: 'sleep 30', timeout_ms: 300 })).toMatchObject({
      timedOut: true,
    });
  });

  it('cuts long output to its limit, keeping both ends', async () => {
    const small = new AgentTools(sandbox, { maxOutputChars: 100 });
    const result = await small.execute.run({ command: 'seq 1 1000' });
    expect(result.truncated).toBe(true);
    expect(result.stdout.startsWith('1\n2\n')).toBe(true);
    expect(result.stdout.endsWith('999\n1000\n')).toBe(true);
    expect(result.stdout.length).toBeLessThan(200);
  });
});

describe('read_file, write_file, edit_file', () => {
  it('writes content verbatim (never through a shell) and reads it back by lines', async () => {
    const tricky = `$(touch /tmp/pwned) \`id\` "quoted" 'single' \\ \n${'line\n'.repeat(3)}`;
    expect(await tools.writeFile.run({ path: 'deep/new/file.txt', content: tricky })).toEqual({
      path: 'deep/new/file.txt',
      bytes: new TextEncoder().encode(tricky).length,
    });
    expect(await sandbox.files.read('deep/new/file.txt')).toBe(tricky);
    expect((await tools.execute.run({ command: 'test -e /tmp/pwned; echo $?' })).stdout).toBe('1\n');
    expect(await tools.readFile.run({ path: 'docs/guide.md', offset: 2, limit: 2 })).toEqual({
      path: 'docs/guide.md',
      content: 'Install with npm\nUsage',
      startLine: 2,
      endLine: 3,
      totalLines: 4,
      truncated: true,
    });
    expect(await tools.readFile.run({ path: `${root}/docs/guide.md` })).toMatchObject({
      totalLines: 4,
      truncated: false,
    });
  });

  it('refuses to read a binary file as text', async () => {
    await sandbox.files.write('blob.bin', new Uint8Array([0xff, 0xfe, 0x00, 0x80]));
    await failure(tools.readFile.run({ path: 'blob.bin' }));
  });

  it('edits exactly one occurrence, or all with replace_all, keeping the mode', async () => {
    await sandbox.files.write('tool.sh', '#!/bin/sh\necho one\necho two\necho two\n', { mode: 0o755 });
    expect(
      await tools.editFile.run({ path: 'tool.sh', old_string: 'echo one', new_string: 'echo $& 1' }),
    ).toEqual({
      path: 'tool.sh',
      replacements: 1,
    });
    const ambiguous = await failure(
      tools.editFile.run({ path: 'tool.sh', old_string: 'echo two', new_string: 'x' }),
    );
    expect(ambiguous.message).toContain('2 times');
    await failure(tools.editFile.run({ path: 'tool.sh', old_string: 'absent', new_string: 'x' }));
    expect(
      await tools.editFile.run({
        path: 'tool.sh',
        old_string: 'echo two',
        new_string: 'echo 2',
        replace_all: true,
      }),
    ).toEqual({ path: 'tool.sh', replacements: 2 });
    expect(await sandbox.files.read('tool.sh')).toBe('#!/bin/sh\necho $& 1\necho 2\necho 2\n');
    expect((await sandbox.files.stat('tool.sh')).mode & 0o777).toBe(0o755);
    await expect(
      tools.editFile.run({ path: 'missing.txt', old_string: 'a', new_string: 'b' }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('grep_files, glob_files, list_files', () => {
  it('finds matching lines with path and line number, leaving the harness folder out', async () => {
    const result = await tools.grepFiles.run({ pattern: 'install', ignore_case: true });
    expect(result.truncated).toBe(false);
    expect(result.matches.sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'docs/api/ref.md', line: 1, text: 'install() sets things up' },
      { path: 'docs/guide.md', line: 2, text: 'Install with npm' },
      { path: 'src/main.ts', line: 1, text: 'export const install = 1;' },
    ]);
    expect((await tools.grepFiles.run({ pattern: 'install', path: 'docs', glob: '*.md' })).matches).toEqual([
      { path: 'docs/api/ref.md', line: 1, text: 'install() sets things up' },
    ]);
    // A pattern that looks like an option is still a pattern.
    expect((await tools.grepFiles.run({ pattern: '-v', path: 'docs' })).matches).toEqual([
      { path: 'docs/guide.md', line: 4, text: '-v prints the version' },
    ]);
    expect(await tools.grepFiles.run({ pattern: 'no such text anywhere' })).toEqual({
      matches: [],
      truncated: false,
    });
  });

  it('stops at the result limit, and reports a bad pattern', async () => {
    await sandbox.files.write('many.txt', 'hit\n'.repeat(50));
    const result = await tools.grepFiles.run({ pattern: 'hit', path: 'many.txt' });
    expect(result).toMatchObject({ truncated: true });
    expect(result.matches).toHaveLength(5);
    await failure(tools.grepFiles.run({ pattern: 'a(b' }));
  });

  it('finds files by glob', async () => {
    expect(await tools.globFiles.run({ pattern: '**/*.md' })).toEqual({
      paths: ['docs/api/ref.md', 'docs/guide.md'],
      truncated: false,
    });
    expect(await tools.globFiles.run({ pattern: '*.md', path: 'docs' })).toEqual({
      paths: ['docs/guide.md'],
      truncated: false,
    });
    expect((await tools.globFiles.run({ pattern: '**/manifest.json' })).paths).toEqual([]);
  });

  it('lists folders to a depth', async () => {
    const top = await tools.listFiles.run({ path: 'docs' });
    expect(top.entries.map((e) => [e.path, e.type])).toEqual([
      ['docs/api', 'directory'],
      ['docs/guide.md', 'file'],
    ]);
    const deep = await tools.listFiles.run({ path: 'docs', depth: 2 });
    expect(deep.entries.map((e) => e.path)).toContain('docs/api/ref.md');
    const all = await new AgentTools(sandbox).listFiles.run({});
    expect(all.entries.map((e) => e.path)).not.toContain(HARNESS_DIR);
    expect(all.entries.find((e) => e.path === 'tool.sh')?.mode).toBe('755');
  });
});

describe('confinement', () => {
  const escapes = ['../etc/passwd', 'docs/../../x', '/etc/passwd', '/workspace-not/x'];
  const calls: Array<[string, (path: string) => Promise<unknown>]> = [
    ['execute', (path) => tools.execute.run({ command: 'true', cwd: path })],
    ['read_file', (path) => tools.readFile.run({ path })],
    ['write_file', (path) => tools.writeFile.run({ path, content: 'x' })],
    ['edit_file', (path) => tools.editFile.run({ path, old_string: 'a', new_string: 'b' })],
    ['grep_files', (path) => tools.grepFiles.run({ pattern: 'root', path })],
    ['glob_files', (path) => tools.globFiles.run({ pattern: '*', path })],
    ['list_files', (path) => tools.listFiles.run({ path })],
  ];

  it.each(calls)('%s refuses paths outside the workspace', async (_name, call) => {
    for (const path of escapes) {
      expect((await failure(call(path))).code).toBe('PATH_OUTSIDE_WORKSPACE');
    }
  });

  it('is enforced by sandboxd for symlinks that lead out', async () => {
    await sandbox.commands.run(['ln', '-s', '/etc', 'etc-link']);
    expect((await failure(tools.readFile.run({ path: 'etc-link/passwd' }))).code).toBe(
      'PATH_OUTSIDE_WORKSPACE',
    );
    expect((await failure(tools.writeFile.run({ path: 'etc-link/x', content: 'x' }))).code).toBe(
      'PATH_OUTSIDE_WORKSPACE',
    );
  });

  it('refuses absolute paths when the workspace root is not known', async () => {
    const unrooted = new AgentTools(sandbox);
    expect((await failure(unrooted.readFile.run({ path: `${root}/docs/guide.md` }))).code).toBe(
      'PATH_OUTSIDE_WORKSPACE',
    );
    expect((await unrooted.readFile.run({ path: 'docs/guide.md' })).totalLines).toBe(4);
  });
});
