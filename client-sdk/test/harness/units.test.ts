/**
 * The harness's pure parts, without a server: scope keys, the tar writer (read back by tar-stream
 * and by GNU tar), manifests, globs, path confinement and tool argument checks.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/harness/digest.js';
import { globToRegExp } from '../../src/harness/glob.js';
import { diffManifests, parseManifest } from '../../src/harness/manifest.js';
import { tarArchive } from '../../src/harness/tar.js';
import { objectSchema, validateArgs } from '../../src/harness/tool-schema.js';
import { confinePath } from '../../src/harness/workspace-path.js';
import { IsolationScope, memorySource, scopeKey, ValidationError } from '../../src/index.js';

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('scope keys', () => {
  const context = { sessionId: 's 1', userId: 'u/2', agentId: 'a3' };

  it('names each scope by its own id, percent-encoded', () => {
    expect(scopeKey(IsolationScope.SESSION, context)).toBe('harness/session/s%201');
    expect(scopeKey(IsolationScope.USER, context)).toBe('harness/user/u%2F2');
    expect(scopeKey(IsolationScope.AGENT, context, 'app')).toBe('app/agent/a3');
    expect(scopeKey(IsolationScope.GLOBAL, {})).toBe('harness/global');
  });

  it('refuses a scope whose id is missing or empty, naming it, instead of widening the scope', () => {
    for (const [scope, missing] of [
      [IsolationScope.SESSION, 'sessionId'],
      [IsolationScope.USER, 'userId'],
      [IsolationScope.AGENT, 'agentId'],
    ] as const) {
      const error = thrown(() => scopeKey(scope, { ...context, [missing]: undefined }));
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).details).toMatchObject({ scope, missing });
      expect(thrown(() => scopeKey(scope, { ...context, [missing]: '' }))).toBeInstanceOf(ValidationError);
    }
    expect(thrown(() => scopeKey('team' as IsolationScope, context))).toBeInstanceOf(ValidationError);
    expect(thrown(() => scopeKey(IsolationScope.SESSION, { sessionId: 'x'.repeat(300) }))).toBeInstanceOf(
      ValidationError,
    );
  });
});

describe('tar writer', () => {
  const longDir = `${'d'.repeat(120)}/${'e'.repeat(60)}`;
  const files = [
    { path: 'AGENTS.md', bytes: new TextEncoder().encode('# agent\n'), mode: 0o644 },
    { path: 'skills/run.sh', bytes: new TextEncoder().encode('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { path: `${longDir}/file.txt`, bytes: new Uint8Array(1000).fill(7), mode: 0o600 },
    { path: `${'x'.repeat(150)}.md`, bytes: new Uint8Array(0), mode: 0o644 },
    { path: 'ünï/çødé.md', bytes: new TextEncoder().encode('utf8'), mode: 0o644 },
  ];

  it('writes entries tar-stream reads back with their names, bytes and modes', async () => {
    const seen: Array<{ name: string; mode: number | undefined; bytes: Buffer }> = [];
    const reader = extract();
    const done = (async () => {
      for await (const entry of reader) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        seen.push({ name: entry.header.name, mode: entry.header.mode, bytes: Buffer.concat(chunks) });
      }
    })();
    Readable.from([Buffer.from(tarArchive(files))]).pipe(reader);
    await done;
    expect(seen.map((entry) => [entry.name, entry.mode, entry.bytes.length])).toEqual(
      files.map((file) => [file.path, file.mode, file.bytes.length]),
    );
    expect(seen[2]?.bytes.equals(Buffer.from(files[2]?.bytes ?? []))).toBe(true);
  });

  it('is read by GNU tar with modes intact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'harness-tar-'));
    try {
      writeFileSync(join(dir, 'a.tar'), tarArchive(files));
      execFileSync('tar', ['-xf', 'a.tar', '-C', dir], { cwd: dir });
      expect(statSync(join(dir, 'skills/run.sh')).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(dir, 'skills/run.sh'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
      expect(statSync(join(dir, longDir, 'file.txt')).size).toBe(1000);
      expect(statSync(join(dir, `${'x'.repeat(150)}.md`)).size).toBe(0);
      expect(readFileSync(join(dir, 'ünï/çødé.md'), 'utf8')).toBe('utf8');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('manifests', () => {
  it('diffs by content and by mode, and lists removals', () => {
    const previous = {
      'a.md': { sha256: '1', mode: 0o644 },
      'b.sh': { sha256: '2', mode: 0o644 },
      'gone.md': { sha256: '3', mode: 0o644 },
    };
    const next = {
      'a.md': { sha256: '1', mode: 0o644 },
      'b.sh': { sha256: '2', mode: 0o755 },
      'new.md': { sha256: '4', mode: 0o644 },
    };
    expect(diffManifests(previous, next)).toEqual({
      changed: ['b.sh', 'new.md'],
      removed: ['gone.md'],
      unchanged: 1,
    });
  });

  it('reads a missing or corrupt manifest as empty, so everything is sent again', () => {
    expect(parseManifest(undefined).files).toEqual({});
    expect(parseManifest('{not json').files).toEqual({});
    expect(parseManifest('{"version":2,"files":{}}').files).toEqual({});
    expect(parseManifest('{"version":1,"files":{"a":{"sha256":"x","mode":420},"b":7}}').files).toEqual({
      a: { sha256: 'x', mode: 420 },
    });
  });

  it('hashes with Web Crypto', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('memory sources refuse paths that climb out', async () => {
    await expect(memorySource({ '../x': 'no' }).files()).rejects.toBeInstanceOf(ValidationError);
    await expect(memorySource({ '/etc/x': 'no' }).files()).rejects.toBeInstanceOf(ValidationError);
    expect(await memorySource(() => ({ './a//b': { content: 'x', mode: 0o755 } })).files()).toEqual([
      { path: 'a/b', bytes: new TextEncoder().encode('x'), mode: 0o755 },
    ]);
  });
});

describe('globs', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*.md', 'a.md', true],
    ['*.md', 'dir/a.md', false],
    ['**/*.md', 'a.md', true],
    ['**/*.md', 'x/y/a.md', true],
    ['skills/**', 'skills/a/b', true],
    ['skills/*/SKILL.md', 'skills/pdf/SKILL.md', true],
    ['skills/*/SKILL.md', 'skills/pdf/x/SKILL.md', false],
    ['a/**/b.txt', 'a/b.txt', true],
    ['a/**/b.txt', 'a/x/y/b.txt', true],
    ['*.{ts,js}', 'x.js', true],
    ['*.{ts,js}', 'x.py', false],
    ['file?.txt', 'file1.txt', true],
    ['[ab].txt', 'b.txt', true],
    ['[!ab].txt', 'b.txt', false],
    ['a+b(c).txt', 'a+b(c).txt', true],
    ['{unclosed', '{unclosed', true],
  ];
  it.each(cases)('%s against %s', (glob, path, expected) => {
    expect(globToRegExp(glob).test(path)).toBe(expected);
  });
});

describe('path confinement', () => {
  it('cleans relative paths and takes absolute ones under the workspace root', () => {
    expect(confinePath('a/./b//c', '/workspace')).toBe('a/b/c');
    expect(confinePath('a/../b', '/workspace')).toBe('b');
    expect(confinePath('.', '/workspace')).toBe('.');
    expect(confinePath('/workspace', '/workspace')).toBe('.');
    expect(confinePath('/workspace/x/y', '/workspace/')).toBe('x/y');
  });

  it.each([
    ['../etc/passwd', '/workspace'],
    ['a/../../x', '/workspace'],
    ['/etc/passwd', '/workspace'],
    ['/workspace-other/x', '/workspace'],
    ['/workspace/x', undefined],
    ['a\0b', '/workspace'],
  ])('refuses %s (root %s)', (path, root) => {
    const error = thrown(() => confinePath(path, root));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('PATH_OUTSIDE_WORKSPACE');
  });
});

describe('tool argument checks', () => {
  const schema = objectSchema(
    {
      path: { type: 'string', description: 'p', minLength: 1 },
      limit: { type: 'integer', description: 'l', minimum: 1, maximum: 10 },
      all: { type: 'boolean', description: 'a' },
    },
    ['path'],
  );

  it('takes objects and JSON text that fit the schema', () => {
    expect(validateArgs('t', schema, { path: 'x', limit: 3 })).toEqual({ path: 'x', limit: 3 });
    expect(validateArgs('t', schema, '{"path":"x","all":true}')).toEqual({ path: 'x', all: true });
  });

  it.each([
    [{}, 'path'],
    [{ path: '' }, 'path'],
    [{ path: 3 }, 'path'],
    [{ path: 'x', limit: 1.5 }, 'limit'],
    [{ path: 'x', limit: 11 }, 'limit'],
    [{ path: 'x', all: 'yes' }, 'all'],
    [{ path: 'x', extra: 1 }, 'extra'],
  ])('refuses %j, naming %s', (args, argument) => {
    const error = thrown(() => validateArgs('t', schema, args));
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).details).toMatchObject({ tool: 't', argument });
  });

  it('refuses arguments that are not an object', () => {
    for (const args of ['not json', '[1]', null, 5]) {
      expect(thrown(() => validateArgs('t', schema, args))).toBeInstanceOf(ValidationError);
    }
  });
});

describe('the SDK core', () => {
  it('imports no node: modules (only the separate harness/node entry does)', () => {
    const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
    const offenders = (readdirSync(src, { recursive: true }) as string[])
      .filter((file) => file.endsWith('.ts') && file !== join('harness', 'node-source.ts'))
      .filter((file) => /from ['"]node:|import\(['"]node:/.test(readFileSync(join(src, file), 'utf8')));
    expect(offenders).toEqual([]);
    expect(readFileSync(join(src, 'harness', 'node-source.ts'), 'utf8')).toContain("from 'node:fs/promises'");
  });
});
