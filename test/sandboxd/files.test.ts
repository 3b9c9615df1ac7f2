/**
 * sandboxd's /files and /archive routes against the real base image in Docker: byte-exact round
 * trips, metadata, and archives that keep modes, mtimes, empty directories and symlinks.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FileEntry, FileListResponse } from '@runtime-sandbox/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxdContainer, startSandboxdContainer } from '../../support/sandboxd-container.js';
import { readTar } from './tar.js';

let sandbox: SandboxdContainer;

beforeAll(async () => {
  sandbox = await startSandboxdContainer({ purpose: 'sandboxd-files' });
});

afterAll(async () => {
  await sandbox?.remove();
});

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

function put(path: string, body: Uint8Array | string, extra: Record<string, string> = {}): Promise<Response> {
  return sandbox.request(`/files?${q({ path, ...extra })}`, { method: 'PUT', body });
}

function postJson(route: string, body: object): Promise<Response> {
  return sandbox.request(route, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function expectOk<T>(res: Response, status = 200): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return (text ? JSON.parse(text) : undefined) as T;
}

async function expectError(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect((await res.json()).error.code).toBe(code);
}

async function shell(command: string): Promise<string> {
  const result = await sandbox.exec({ command: `set -e; ${command}` });
  expect(result.exitCode, result.stderr).toBe(0);
  return result.stdout;
}

/** Everything under `dir` as `path type mode size link-target mtime` lines, and the file checksums. */
function describeTree(dir: string): Promise<string> {
  return shell(
    `cd ${dir} && find . -mindepth 1 -printf '%P %y %m %s %l %T@\\n' | sed 's/\\.[0-9]*$//' | sort` +
      ' && find . -type f -exec sha256sum {} + | sort -k2',
  );
}

describe('GET and PUT /files', () => {
  it('round-trips binary content byte for byte', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    const entry = await expectOk<FileEntry>(await put('bin/random.bin', bytes));
    expect(entry).toMatchObject({
      name: 'random.bin',
      path: 'bin/random.bin',
      type: 'file',
      size: bytes.length,
    });

    const res = await sandbox.request(`/files?${q({ path: 'bin/random.bin' })}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    // The same bytes as the sandbox itself sees them.
    const digest = (await shell('sha256sum bin/random.bin')).split(' ')[0];
    expect(digest).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('writes empty files, creates parents, and accepts absolute paths inside the workspace', async () => {
    await expectOk(await put('put/a/b/empty.txt', ''));
    const res = await sandbox.request(`/files?${q({ path: '/workspace/put/a/b/empty.txt' })}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect(await shell('ls -A put/a/b')).toBe('empty.txt\n');
  });

  it('sets the mode given, and keeps a file mode on overwrite', async () => {
    const entry = await expectOk<FileEntry>(
      await put('modes/run.sh', '#!/bin/sh\necho ran\n', { mode: '755' }),
    );
    expect(entry.mode).toBe(0o755);
    expect((await sandbox.exec({ command: ['./modes/run.sh'] })).stdout).toBe('ran\n');

    const rewritten = await expectOk<FileEntry>(await put('modes/run.sh', '#!/bin/sh\necho again\n'));
    expect(rewritten.mode).toBe(0o755);
    expect((await sandbox.exec({ command: ['./modes/run.sh'] })).stdout).toBe('again\n');
    // The write went to a temp file renamed over the target: no temp file is left.
    expect(await shell('ls -A modes')).toBe('run.sh\n');
  });

  it('answers 404 for a missing file and 409 for a directory', async () => {
    await expectError(
      await sandbox.request(`/files?${q({ path: 'nope/missing.txt' })}`),
      404,
      'FILE_NOT_FOUND',
    );
    await shell('mkdir -p some-dir');
    await expectError(await sandbox.request(`/files?${q({ path: 'some-dir' })}`), 409, 'IS_A_DIRECTORY');
    await expectError(await put('some-dir', 'x'), 409, 'IS_A_DIRECTORY');
  });
});

describe('stat, list, mkdir, move, delete', () => {
  it('stats files, directories and symlinks (the link itself)', async () => {
    await shell('mkdir -p st/dir && printf 12345 > st/file && ln -s file st/link && chmod 640 st/file');
    const file = await expectOk<FileEntry>(await sandbox.request(`/files/stat?${q({ path: 'st/file' })}`));
    expect(file).toMatchObject({ name: 'file', path: 'st/file', type: 'file', size: 5, mode: 0o640 });
    expect(new Date(file.modifiedAt).getTime()).toBeGreaterThan(0);
    const dir = await expectOk<FileEntry>(await sandbox.request(`/files/stat?${q({ path: 'st/dir' })}`));
    expect(dir.type).toBe('directory');
    const link = await expectOk<FileEntry>(await sandbox.request(`/files/stat?${q({ path: 'st/link' })}`));
    expect(link).toMatchObject({ type: 'symlink', symlinkTarget: 'file' });
    await expectError(await sandbox.request(`/files/stat?${q({ path: 'st/none' })}`), 404, 'FILE_NOT_FOUND');
  });

  it('lists to the depth asked, without entering symlinks', async () => {
    await shell('mkdir -p ls/a/b/c ls/z && touch ls/a/one ls/a/b/two ls/a/b/c/three && ln -s a ls/link-to-a');
    const shallow = await expectOk<FileListResponse>(
      await sandbox.request(`/files/list?${q({ path: 'ls' })}`),
    );
    expect(shallow.entries.map((entry) => `${entry.path}:${entry.type}`)).toEqual([
      'ls/a:directory',
      'ls/link-to-a:symlink',
      'ls/z:directory',
    ]);
    const deep = await expectOk<FileListResponse>(
      await sandbox.request(`/files/list?${q({ path: 'ls', depth: '3' })}`),
    );
    expect(deep.entries.map((entry) => entry.path)).toEqual([
      'ls/a',
      'ls/a/b',
      'ls/a/b/c',
      'ls/a/b/two',
      'ls/a/one',
      'ls/link-to-a',
      'ls/z',
    ]);
    await expectError(
      await sandbox.request(`/files/list?${q({ path: 'ls/a/one' })}`),
      409,
      'NOT_A_DIRECTORY',
    );
  });

  it('makes directories, with and without parents', async () => {
    const made = await expectOk<FileEntry>(await postJson('/files/mkdir', { path: 'mk/x/y' }));
    expect(made).toMatchObject({ path: 'mk/x/y', type: 'directory' });
    await expectOk(await postJson('/files/mkdir', { path: 'mk/x/y' }));
    await expectError(
      await postJson('/files/mkdir', { path: 'mk/x/y', parents: false }),
      409,
      'ALREADY_EXISTS',
    );
    await expectError(
      await postJson('/files/mkdir', { path: 'mk/q/r', parents: false }),
      404,
      'FILE_NOT_FOUND',
    );
    await shell('test -d mk/x/y && ! test -e mk/q');
  });

  it('moves files and directories, replacing the destination only when asked', async () => {
    await shell('mkdir -p mv/dir && echo a > mv/a && echo b > mv/b && echo inner > mv/dir/inner');
    const moved = await expectOk<FileEntry>(await postJson('/files/move', { from: 'mv/a', to: 'mv/new/a2' }));
    expect(moved.path).toBe('mv/new/a2');
    await expectError(
      await postJson('/files/move', { from: 'mv/new/a2', to: 'mv/b' }),
      409,
      'ALREADY_EXISTS',
    );
    await expectOk(await postJson('/files/move', { from: 'mv/new/a2', to: 'mv/b', overwrite: true }));
    await expectOk(await postJson('/files/move', { from: 'mv/dir', to: 'mv/dir2' }));
    await expectError(await postJson('/files/move', { from: 'mv/none', to: 'mv/x' }), 404, 'FILE_NOT_FOUND');
    await expectError(
      await postJson('/files/move', { from: 'mv/dir2', to: 'mv/dir2/in' }),
      400,
      'VALIDATION_ERROR',
    );
    expect(await shell('cd mv && cat b dir2/inner && ls -A')).toBe('a\ninner\nb\ndir2\nnew\n');
  });

  it('deletes files, links (not their targets) and directories (recursively only when asked)', async () => {
    await shell(
      'mkdir -p rm/full/sub && echo x > rm/full/sub/f && echo t > rm/target && ln -s target rm/link',
    );
    await expectOk(await sandbox.request(`/files?${q({ path: 'rm/link' })}`, { method: 'DELETE' }), 204);
    await expectError(
      await sandbox.request(`/files?${q({ path: 'rm/full' })}`, { method: 'DELETE' }),
      409,
      'DIRECTORY_NOT_EMPTY',
    );
    await expectOk(
      await sandbox.request(`/files?${q({ path: 'rm/full', recursive: 'true' })}`, { method: 'DELETE' }),
      204,
    );
    await expectError(
      await sandbox.request(`/files?${q({ path: 'rm/full' })}`, { method: 'DELETE' }),
      404,
      'FILE_NOT_FOUND',
    );
    expect(await shell('ls -A rm && cat rm/target')).toBe('target\nt\n');
  });

  it('refuses to delete or move the workspace root', async () => {
    for (const path of ['.', '/workspace', 'x/..']) {
      await expectError(
        await sandbox.request(`/files?${q({ path, recursive: 'true' })}`, { method: 'DELETE' }),
        403,
        'PERMISSION_DENIED',
      );
    }
    await expectError(
      await postJson('/files/move', { from: '.', to: 'elsewhere' }),
      403,
      'PERMISSION_DENIED',
    );
    await expectError(
      await postJson('/files/move', { from: 'mk', to: '/workspace' }),
      403,
      'PERMISSION_DENIED',
    );
    await shell('test -d /workspace/mk');
  });
});

describe('GET and PUT /archive', () => {
  const buildTree = (dir: string) =>
    shell(
      [
        `mkdir -p ${dir}/bin ${dir}/empty ${dir}/nested/deeper`,
        `printf '#!/bin/sh\\necho run\\n' > ${dir}/bin/run.sh && chmod 755 ${dir}/bin/run.sh`,
        `printf secret > ${dir}/private.txt && chmod 600 ${dir}/private.txt`,
        `printf hello > ${dir}/nested/deeper/hello.txt && head -c 100000 /dev/urandom > ${dir}/nested/blob`,
        `ln -s ../nested/deeper/hello.txt ${dir}/bin/hello-link && ln -s nested ${dir}/nested-link`,
        `touch -h -d '2001-02-03 04:05:06' ${dir}/private.txt ${dir}/bin/hello-link ${dir}/empty`,
        `chmod 750 ${dir}/nested/deeper && chmod 555 ${dir}/empty`,
      ].join(' && '),
    );

  it('streams a directory as a tar with relative names, modes, empty dirs and symlinks', async () => {
    await buildTree('arc-src');
    const res = await sandbox.request(`/archive?${q({ path: 'arc-src' })}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const entries = await readTar(new Uint8Array(await res.arrayBuffer()));
    const byName = new Map(entries.map((entry) => [entry.header.name, entry]));
    expect([...byName.keys()].sort()).toEqual([
      'bin/',
      'bin/hello-link',
      'bin/run.sh',
      'empty/',
      'nested-link',
      'nested/',
      'nested/blob',
      'nested/deeper/',
      'nested/deeper/hello.txt',
      'private.txt',
    ]);
    expect(byName.get('empty/')?.header).toMatchObject({ type: 'directory', mode: 0o555 });
    expect(byName.get('bin/run.sh')?.header).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byName.get('bin/hello-link')?.header).toMatchObject({
      type: 'symlink',
      linkname: '../nested/deeper/hello.txt',
    });
    expect(byName.get('private.txt')?.data.toString()).toBe('secret');
    expect(byName.get('private.txt')?.header.mtime.toISOString()).toBe('2001-02-03T04:05:06.000Z');
  });

  it('round-trips a tree exactly: contents, modes, mtimes, empty dirs, symlinks (plain and gzip)', async () => {
    await buildTree('rt-src');
    const original = await describeTree('rt-src');
    for (const gzip of ['false', 'true']) {
      const download = await sandbox.request(`/archive?${q({ path: 'rt-src', gzip })}`);
      expect(download.status).toBe(200);
      const archive = new Uint8Array(await download.arrayBuffer());
      const upload = await sandbox.request(`/archive?${q({ path: `rt-dest-${gzip}`, gzip })}`, {
        method: 'PUT',
        body: archive,
      });
      expect(await expectOk(upload)).toEqual({ entries: 10 });
      expect(await describeTree(`rt-dest-${gzip}`)).toBe(original);
    }
    expect((await sandbox.exec({ command: ['./rt-dest-true/bin/run.sh'] })).stdout).toBe('run\n');
    expect(await shell('cat rt-dest-true/bin/hello-link')).toBe('hello');
  });

  it('extracts a GNU tar (with ./ names) and merges into an existing directory', async () => {
    await shell(
      'mkdir -p gnu-src/d gnu-dest/d && echo new > gnu-src/d/f && echo top > gnu-src/t' +
        ' && echo old > gnu-dest/d/f && echo keep > gnu-dest/keep && tar -C gnu-src -cf gnu.tar .',
    );
    const tarball = await sandbox.request(`/files?${q({ path: 'gnu.tar' })}`);
    const res = await sandbox.request(`/archive?${q({ path: 'gnu-dest' })}`, {
      method: 'PUT',
      body: new Uint8Array(await tarball.arrayBuffer()),
    });
    await expectOk(res);
    expect(await shell('cd gnu-dest && cat d/f t keep && ls -A')).toBe('new\ntop\nkeep\nd\nkeep\nt\n');
  });

  it('answers 404 for a missing directory and 409 for a file', async () => {
    await expectError(await sandbox.request(`/archive?${q({ path: 'no-such-dir' })}`), 404, 'FILE_NOT_FOUND');
    await shell('echo x > arc-file');
    await expectError(await sandbox.request(`/archive?${q({ path: 'arc-file' })}`), 409, 'NOT_A_DIRECTORY');
  });
});
