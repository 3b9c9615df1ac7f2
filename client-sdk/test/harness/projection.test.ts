/**
 * Workspace projection into a real sandbox behind the real server: one archive per call with only
 * new and changed files, deletions reaching the sandbox, exec bits surviving, the manifest kept in
 * the workspace, and the Node directory source.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../../src/harness/node-source.js';
import {
  DEFAULT_MANIFEST_PATH,
  type MemoryFile,
  memorySource,
  projectWorkspace,
  type Sandbox,
  SandboxClient,
  ValidationError,
} from '../../src/index.js';
import { type HarnessServer, recordingFetch, startHarnessServer } from './support.js';

let server: HarnessServer;
let client: SandboxClient;
let uploads: string[][];

beforeAll(async () => {
  server = await startHarnessServer('harness-projection-test');
  const recorder = recordingFetch();
  uploads = recorder.uploads;
  client = new SandboxClient({ baseUrl: server.url, fetch: recorder.fetch });
});

afterAll(async () => {
  await server?.shutdown();
});

async function modeOf(sandbox: Sandbox, path: string): Promise<number> {
  return (await sandbox.files.stat(path)).mode & 0o777;
}

describe('projection from a memory source', () => {
  let sandbox: Sandbox;
  const files: Record<string, MemoryFile> = {
    'AGENTS.md': '# Agent\nBe brief.\n',
    'skills/hello/SKILL.md': 'Say hello.\n',
    'skills/hello/run.sh': { content: '#!/bin/sh\necho "hello from $0"\n', mode: 0o755 },
    'knowledge/facts/a.md': 'fact a\n',
    'knowledge/facts/b.md': 'fact b\n',
    'subagents/critic.md': 'Critique.\n',
  };
  const source = memorySource(files);

  beforeAll(async () => {
    sandbox = await client.create();
  });

  afterAll(async () => {
    await sandbox?.close();
  });

  it('sends every file in one archive the first time, exec bits included', async () => {
    uploads.length = 0;
    const result = await projectWorkspace(sandbox, source);
    expect(uploads).toEqual([Object.keys(files).sort()]);
    expect(result).toMatchObject({ uploaded: Object.keys(files).sort(), removed: [], unchanged: 0 });
    expect(result.archiveBytes).toBeGreaterThan(0);
    expect(await sandbox.files.read('skills/hello/SKILL.md')).toBe('Say hello.\n');
    expect(await modeOf(sandbox, 'skills/hello/run.sh')).toBe(0o755);
    expect(await modeOf(sandbox, 'AGENTS.md')).toBe(0o644);
    const run = await sandbox.commands.run(['./skills/hello/run.sh']);
    expect(run).toMatchObject({ exitCode: 0, stdout: 'hello from ./skills/hello/run.sh\n' });
    const manifest = JSON.parse(await sandbox.files.read(DEFAULT_MANIFEST_PATH));
    expect(manifest.files['skills/hello/run.sh']).toEqual({
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      mode: 0o755,
    });
  });

  it('sends nothing when nothing changed', async () => {
    uploads.length = 0;
    const result = await projectWorkspace(sandbox, source);
    expect(uploads).toEqual([]);
    expect(result).toEqual({ uploaded: [], removed: [], unchanged: 6, archiveBytes: 0 });
  });

  it('sends only the new and changed files (a mode change included), and removes the dropped ones', async () => {
    files['AGENTS.md'] = '# Agent\nBe very brief.\n';
    files['skills/hello/SKILL.md'] = { content: 'Say hello.\n', mode: 0o755 };
    files['skills/new/SKILL.md'] = 'New skill.\n';
    delete files['knowledge/facts/a.md'];
    delete files['knowledge/facts/b.md'];
    delete files['subagents/critic.md'];
    uploads.length = 0;
    const result = await projectWorkspace(sandbox, source);
    expect(uploads).toEqual([['AGENTS.md', 'skills/hello/SKILL.md', 'skills/new/SKILL.md']]);
    expect(result).toMatchObject({
      uploaded: ['AGENTS.md', 'skills/hello/SKILL.md', 'skills/new/SKILL.md'],
      removed: ['knowledge/facts/a.md', 'knowledge/facts/b.md', 'subagents/critic.md'],
      unchanged: 1,
    });
    expect(await sandbox.files.read('AGENTS.md')).toBe('# Agent\nBe very brief.\n');
    expect(await modeOf(sandbox, 'skills/hello/SKILL.md')).toBe(0o755);
    for (const gone of ['knowledge/facts/a.md', 'subagents/critic.md', 'knowledge', 'subagents']) {
      expect(await sandbox.files.exists(gone)).toBe(false);
    }
    expect(await modeOf(sandbox, 'skills/hello/run.sh')).toBe(0o755);
  });

  it('leaves files of the agent alone, and keeps a folder the agent still uses', async () => {
    await sandbox.files.write('skills/new/notes.txt', 'mine\n');
    await sandbox.files.write('agent-output.txt', 'result\n');
    delete files['skills/new/SKILL.md'];
    const result = await projectWorkspace(sandbox, source);
    expect(result.removed).toEqual(['skills/new/SKILL.md']);
    expect(await sandbox.files.read('skills/new/notes.txt')).toBe('mine\n');
    expect(await sandbox.files.read('agent-output.txt')).toBe('result\n');
  });

  it('sends everything again when the manifest is gone, and removes nothing it does not know', async () => {
    await sandbox.files.remove(DEFAULT_MANIFEST_PATH);
    uploads.length = 0;
    const result = await projectWorkspace(sandbox, source);
    expect(uploads).toEqual([Object.keys(files).sort()]);
    expect(result.removed).toEqual([]);
  });

  it('refuses a source that would overwrite the manifest', async () => {
    const bad = memorySource({ [DEFAULT_MANIFEST_PATH]: '{}' });
    await expect(projectWorkspace(sandbox, bad)).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('projection from a local directory into a target folder', () => {
  let sandbox: Sandbox;
  let dir: string;

  beforeAll(async () => {
    sandbox = await client.create();
    dir = mkdtempSync(join(tmpdir(), 'harness-source-'));
    writeFileSync(join(dir, 'AGENTS.md'), '# From disk\n');
    mkdirSync(join(dir, 'skills', 'tool'), { recursive: true });
    writeFileSync(join(dir, 'skills', 'tool', 'go.sh'), '#!/bin/sh\necho go\n');
    chmodSync(join(dir, 'skills', 'tool', 'go.sh'), 0o755);
    writeFileSync(join(dir, 'not-projected.txt'), 'outside the roots\n');
    mkdirSync(join(dir, 'shared-knowledge'));
    writeFileSync(join(dir, 'shared-knowledge', 'k.md'), 'linked knowledge\n');
    symlinkSync('shared-knowledge', join(dir, 'knowledge'));
  });

  afterAll(async () => {
    await sandbox?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('projects the default roots with their modes, following links, under the target', async () => {
    uploads.length = 0;
    const source = directorySource(dir);
    const options = { target: 'agent', manifestPath: 'agent/.manifest.json' };
    const result = await projectWorkspace(sandbox, source, options);
    expect(uploads).toEqual([['AGENTS.md', 'knowledge/k.md', 'skills/tool/go.sh']]);
    expect(result.uploaded).toEqual(['agent/AGENTS.md', 'agent/knowledge/k.md', 'agent/skills/tool/go.sh']);
    expect(await sandbox.commands.run(['./agent/skills/tool/go.sh'])).toMatchObject({
      exitCode: 0,
      stdout: 'go\n',
    });
    expect(await sandbox.files.read('agent/knowledge/k.md')).toBe('linked knowledge\n');
    expect(await sandbox.files.exists('agent/not-projected.txt')).toBe(false);
    expect(await sandbox.files.exists('agent/.manifest.json')).toBe(true);

    chmodSync(join(dir, 'skills', 'tool', 'go.sh'), 0o700);
    rmSync(join(dir, 'AGENTS.md'));
    uploads.length = 0;
    const second = await projectWorkspace(sandbox, source, options);
    expect(uploads).toEqual([['skills/tool/go.sh']]);
    expect(second.removed).toEqual(['agent/AGENTS.md']);
    expect(await modeOf(sandbox, 'agent/skills/tool/go.sh')).toBe(0o700);
    expect(await sandbox.files.exists('agent/AGENTS.md')).toBe(false);
  });

  it('takes configured roots', async () => {
    const files = await directorySource(dir, { roots: ['not-projected.txt', 'missing'] }).files();
    expect(files.map((file) => [file.path, file.mode])).toEqual([['not-projected.txt', 0o644]]);
    expect(() => directorySource(dir, { roots: ['../etc'] })).toThrow(ValidationError);
  });
});
