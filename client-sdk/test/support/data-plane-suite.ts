/**
 * The data-plane tests (commands, files, archive, tools, Python), written once against `SandboxDataPlane` and run
 * against a pooled sandbox through the server and against a direct sandboxd connection: the same
 * agent code must behave the same on either.
 */
import { Readable } from 'node:stream';
import { createGunzip, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  CapacityError,
  ConflictError,
  NotFoundError,
  type SandboxDataPlane,
  SandboxError,
  ValidationError,
} from '../../src/index.js';

/** Command lines of every process in the sandbox, argv joined by spaces. */
async function processes(sandbox: SandboxDataPlane): Promise<string[]> {
  const listing = await sandbox.commands.run(
    'for f in /proc/[0-9]*/cmdline; do tr "\\000" " " < "$f" 2>/dev/null; echo; done',
  );
  return listing.stdout.split('\n').map((line) => line.trim());
}

/** Polls until `check` holds; fails with `what` after `timeoutMs`. Not a timing assertion: a bound. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not true within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, it succeeded');
}

function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name }, content);
  pack.finalize();
  return streamToBuffer(pack);
}

/** Everything a Node stream yields, as one Buffer. */
async function streamToBuffer(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    if (!(chunk instanceof Uint8Array)) throw new Error(`the stream yielded ${typeof chunk}, not bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** File names and contents of a tar stream. */
async function untar(stream: ReadableStream<Uint8Array>, gzip = false): Promise<Map<string, string>> {
  const extract = tar.extract();
  const source = Readable.fromWeb(stream as import('node:stream/web').ReadableStream<Uint8Array>);
  (gzip ? source.pipe(createGunzip()) : source).pipe(extract);
  const files = new Map<string, string>();
  for await (const entry of extract) {
    const content = await streamToBuffer(entry);
    if (entry.header.type === 'file') files.set(entry.header.name.replace(/^\.\//, ''), content.toString());
  }
  return files;
}

export function describeDataPlane(mode: string, sandboxOf: () => SandboxDataPlane): void {
  describe(`${mode}: commands`, () => {
    it('runs a shell string and reports exit code, stdout and stderr', async () => {
      const result = await sandboxOf().commands.run('echo hello; echo oops >&2; exit 3');
      expect(result).toMatchObject({
        exitCode: 3,
        signal: null,
        stdout: 'hello\n',
        stderr: 'oops\n',
        timedOut: false,
        killed: false,
        stdoutTruncated: false,
      });
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
    });

    it('runs an argv with cwd, env and stdin', async () => {
      const sandbox = sandboxOf();
      await sandbox.files.mkdir('work/sub');
      const result = await sandbox.commands.run(['sh', '-c', 'pwd; echo "$GREETING"; cat'], {
        cwd: 'work/sub',
        env: { GREETING: 'hi there' },
        stdin: 'from stdin',
      });
      expect(result.exitCode).toBe(0);
      const [pwd, greeting, input] = result.stdout.split('\n');
      expect(pwd).toMatch(/\/work\/sub$/);
      expect(greeting).toBe('hi there');
      expect(input).toBe('from stdin');
    });

    it('kills a command past its timeout and says so', async () => {
      const result = await sandboxOf().commands.run('sleep 30', { timeoutMs: 500 });
      expect(result.timedOut).toBe(true);
      expect(result.exitCode).toBeNull();
      expect(result.signal).toBe('SIGKILL');
    });

    it('streams output to callbacks when given them', async () => {
      const stdout: string[] = [];
      const stderr: string[] = [];
      const result = await sandboxOf().commands.run(
        'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.05; done',
        { onStdout: (data) => void stdout.push(data), onStderr: (data) => void stderr.push(data) },
      );
      expect(result.exitCode).toBe(0);
      expect(stdout.join('')).toBe('out1\nout2\nout3\n');
      expect(stderr.join('')).toBe('err1\nerr2\nerr3\n');
      expect(result.stdout).toBe(stdout.join(''));
      expect(result.stderr).toBe(stderr.join(''));
    });

    it('starts a command whose output can be iterated, then waited for', async () => {
      const handle = await sandboxOf().commands.start('echo one; sleep 0.1; echo two >&2; exit 7');
      const seen: string[] = [];
      for await (const chunk of handle) seen.push(`${chunk.type}:${chunk.data}`);
      expect(seen.join('')).toBe('stdout:one\nstderr:two\n');
      expect(handle.pid).toBeGreaterThan(0);
      const result = await handle.wait();
      expect(result).toMatchObject({ exitCode: 7, stdout: 'one\n', stderr: 'two\n', killed: false });
    });

    it('kill() ends a `sleep 100` stream and the process is gone', async () => {
      const sandbox = sandboxOf();
      const handle = await sandbox.commands.start(['sleep', '100']);
      await eventually('sleep 100 runs', async () => (await processes(sandbox)).includes('sleep 100'));
      await handle.kill();
      const result = await handle.wait();
      expect(result.killed).toBe(true);
      expect(result.exitCode).toBeNull();
      await eventually('sleep 100 is gone', async () => !(await processes(sandbox)).includes('sleep 100'));
    });

    it('an aborted signal kills a started command', async () => {
      const sandbox = sandboxOf();
      const controller = new AbortController();
      const handle = await sandbox.commands.start(['sleep', '101'], { signal: controller.signal });
      await eventually('sleep 101 runs', async () => (await processes(sandbox)).includes('sleep 101'));
      controller.abort();
      expect((await handle.wait()).killed).toBe(true);
      await eventually('sleep 101 is gone', async () => !(await processes(sandbox)).includes('sleep 101'));
    });

    it('`await using` a handle kills the command at scope exit', async () => {
      const sandbox = sandboxOf();
      {
        await using _handle = await sandbox.commands.start(['sleep', '102']);
        await eventually('sleep 102 runs', async () => (await processes(sandbox)).includes('sleep 102'));
      }
      await eventually('sleep 102 is gone', async () => !(await processes(sandbox)).includes('sleep 102'));
    });

    it('reports a streamed command that hit its timeout', async () => {
      const handle = await sandboxOf().commands.start('echo started; sleep 30', { timeoutMs: 500 });
      const result = await handle.wait();
      expect(result).toMatchObject({ timedOut: true, killed: false, exitCode: null, stdout: 'started\n' });
    });

    it('an aborted `run` rejects with the reason and the command is gone', async () => {
      const sandbox = sandboxOf();
      const controller = new AbortController();
      const running = sandbox.commands.run(['sleep', '103'], { signal: controller.signal });
      await eventually('sleep 103 runs', async () => (await processes(sandbox)).includes('sleep 103'));
      controller.abort(new Error('enough'));
      await expect(running).rejects.toThrow('enough');
      await eventually('sleep 103 is gone', async () => !(await processes(sandbox)).includes('sleep 103'));
    });

    it('a throwing output callback fails the run and kills the command', async () => {
      const sandbox = sandboxOf();
      const running = sandbox.commands.run('echo first; exec sleep 104', {
        onStdout: () => {
          throw new Error('callback failed');
        },
      });
      await expect(running).rejects.toThrow('callback failed');
      await eventually('sleep 104 is gone', async () => !(await processes(sandbox)).includes('sleep 104'));
    });

    it('refuses an empty command with ValidationError', async () => {
      const error = await caught(sandboxOf().commands.run(''));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'VALIDATION_ERROR', status: 400 });
    });
  });

  describe(`${mode}: files`, () => {
    it('writes text (parents created) and reads it back as text, bytes and stream', async () => {
      const { files } = sandboxOf();
      const entry = await files.write('notes/deep/hello.txt', 'h\u00e9llo');
      expect(entry).toMatchObject({ name: 'hello.txt', path: 'notes/deep/hello.txt', type: 'file', size: 6 });
      expect(await files.read('notes/deep/hello.txt')).toBe('h\u00e9llo');
      expect(await files.read('notes/deep/hello.txt', { as: 'bytes' })).toEqual(
        new TextEncoder().encode('h\u00e9llo'),
      );
      const stream = await files.read('notes/deep/hello.txt', { as: 'stream' });
      expect(stream).toBeInstanceOf(ReadableStream);
      expect(await new Response(stream).text()).toBe('h\u00e9llo');
    });

    it('round-trips every byte value, and takes a Blob', async () => {
      const { files } = sandboxOf();
      const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      await files.write('bin/all.bytes', bytes);
      expect(await files.read('bin/all.bytes', { as: 'bytes' })).toEqual(bytes);
      await files.write('bin/blob.bytes', new Blob([bytes, bytes]));
      expect((await files.stat('bin/blob.bytes')).size).toBe(512);
    });

    it('uploads a stream without knowing its length, and streams a large file back', async () => {
      const { files } = sandboxOf();
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      const chunks = 64; // 4 MiB
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === chunks) controller.close();
          else {
            sent++;
            controller.enqueue(chunk);
          }
        },
      });
      const entry = await files.write('big/stream.bin', body);
      expect(entry.size).toBe(chunks * chunk.length);
      let received = 0;
      const reader = (await files.read('big/stream.bin', { as: 'stream' })).getReader();
      for (let step = await reader.read(); !step.done; step = await reader.read())
        received += step.value.length;
      expect(received).toBe(chunks * chunk.length);
    });

    it('sets the mode given as a number or an octal string', async () => {
      const { files } = sandboxOf();
      expect((await files.write('modes/run.sh', '#!/bin/sh\n', { mode: 0o755 })).mode).toBe(0o755);
      expect((await files.write('modes/secret', 'x', { mode: '600' })).mode).toBe(0o600);
    });

    it('lists, stats, checks existence and makes directories', async () => {
      const { files } = sandboxOf();
      await files.write('tree/a.txt', 'a');
      await files.write('tree/sub/b.txt', 'b');
      const shallow = await files.list('tree');
      expect(shallow.map((e) => `${e.path}:${e.type}`)).toEqual(['tree/a.txt:file', 'tree/sub:directory']);
      const deep = await files.list('tree', { depth: 2 });
      expect(deep.map((e) => e.path)).toEqual(['tree/a.txt', 'tree/sub', 'tree/sub/b.txt']);
      expect(await files.stat('tree/sub')).toMatchObject({ type: 'directory', name: 'sub' });
      expect(await files.exists('tree/a.txt')).toBe(true);
      expect(await files.exists('tree/nope.txt')).toBe(false);
      expect(await files.exists('tree/a.txt/below-a-file')).toBe(false);
      expect(await files.mkdir('made/one/two')).toMatchObject({ type: 'directory', path: 'made/one/two' });
      await expect(files.mkdir('made/one/two')).resolves.toMatchObject({ type: 'directory' });
      expect(await caught(files.mkdir('tree/a.txt'))).toBeInstanceOf(ConflictError);
    });

    it('moves, refusing to replace unless told to', async () => {
      const { files } = sandboxOf();
      await files.write('mv/from.txt', 'from');
      await files.write('mv/to.txt', 'to');
      const refused = await caught(files.move('mv/from.txt', 'mv/to.txt'));
      expect(refused).toBeInstanceOf(ConflictError);
      expect(refused).toMatchObject({ code: 'ALREADY_EXISTS', status: 409 });
      expect(await files.move('mv/from.txt', 'mv/to.txt', { overwrite: true })).toMatchObject({
        path: 'mv/to.txt',
      });
      expect(await files.read('mv/to.txt')).toBe('from');
      expect(await files.exists('mv/from.txt')).toBe(false);
    });

    it('removes files, and directories only when recursive', async () => {
      const { files } = sandboxOf();
      await files.write('rm/dir/file.txt', 'x');
      const refused = await caught(files.remove('rm/dir'));
      expect(refused).toBeInstanceOf(ConflictError);
      expect(refused).toMatchObject({ code: 'DIRECTORY_NOT_EMPTY' });
      await files.remove('rm/dir/file.txt');
      expect(await files.exists('rm/dir/file.txt')).toBe(false);
      await files.write('rm/dir/again.txt', 'x');
      await files.remove('rm', { recursive: true });
      expect(await files.exists('rm')).toBe(false);
    });

    it('maps missing files and escapes to NotFoundError and ValidationError', async () => {
      const sandbox = sandboxOf();
      const missing = await caught(sandbox.files.read('does/not/exist.txt'));
      expect(missing).toBeInstanceOf(NotFoundError);
      expect(missing).toMatchObject({ code: 'FILE_NOT_FOUND', status: 404 });

      const climbing = await caught(sandbox.files.read('../../etc/passwd'));
      expect(climbing).toBeInstanceOf(ValidationError);
      expect(climbing).toMatchObject({ code: 'PATH_OUTSIDE_WORKSPACE', status: 403 });

      await sandbox.commands.run('ln -sfn /etc escape-link');
      const viaLink = await caught(sandbox.files.read('escape-link/passwd'));
      expect(viaLink).toBeInstanceOf(ValidationError);
      expect(viaLink).toMatchObject({ code: 'PATH_OUTSIDE_WORKSPACE' });

      const directory = await caught(sandbox.files.read('.'));
      expect(directory).toBeInstanceOf(SandboxError);
      expect(directory).toMatchObject({ code: 'IS_A_DIRECTORY' });
    });
  });

  describe(`${mode}: archive`, () => {
    it('uploads a tar stream into a directory and downloads it again', async () => {
      const sandbox = sandboxOf();
      const tarball = await tarOf({ 'one.txt': 'first', 'nested/two.txt': 'second' });
      const body = Readable.toWeb(Readable.from([tarball])) as unknown as ReadableStream<Uint8Array>;
      const upload = await sandbox.archive.upload('unpacked', body);
      expect(upload.entries).toBeGreaterThanOrEqual(2);
      expect(await sandbox.files.read('unpacked/nested/two.txt')).toBe('second');

      const files = await untar(await sandbox.archive.download('unpacked'));
      expect(Object.fromEntries(files)).toEqual({ 'one.txt': 'first', 'nested/two.txt': 'second' });
    });

    it('speaks gzip both ways', async () => {
      const sandbox = sandboxOf();
      const gz = gzipSync(await tarOf({ 'z.txt': 'zipped' }));
      await sandbox.archive.upload('gz', new Uint8Array(gz), { gzip: true });
      expect(await sandbox.files.read('gz/z.txt')).toBe('zipped');
      const files = await untar(await sandbox.archive.download('gz', { gzip: true }), true);
      expect(files.get('z.txt')).toBe('zipped');
    });

    it('refuses an entry that climbs out of the directory', async () => {
      const error = await caught(sandboxOf().archive.upload('evil', await tarOf({ '../escaped.txt': 'x' })));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ code: 'UNSAFE_ARCHIVE_ENTRY' });
    });
  });

  describe(`${mode}: tools`, () => {
    it('lists the built-in tools with JSON schemas of their arguments', async () => {
      const tools = await sandboxOf().tools.list();
      expect(tools.map((tool) => tool.name)).toEqual(['run_shell_command', 'run_ipython_cell']);
      expect(tools[0]?.inputSchema).toMatchObject({
        type: 'object',
        properties: { command: { type: 'string' } },
        required: ['command'],
      });
      expect(tools[1]?.inputSchema).toMatchObject({ required: ['code'] });
    });

    it('runs a shell command; isError follows the exit code, not stderr', async () => {
      const tools = sandboxOf().tools;
      const failed = await tools.call('run_shell_command', { command: 'echo out; echo err >&2; exit 3' });
      expect(failed.isError).toBe(true);
      expect(failed.content).toEqual([
        { type: 'text', text: 'out\n', description: 'stdout' },
        { type: 'text', text: 'err\n', description: 'stderr' },
        { type: 'text', text: '3', description: 'exitCode' },
      ]);
      expect(failed.structuredContent).toMatchObject({ exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
      const warned = await tools.call('run_shell_command', { command: 'echo warning >&2' });
      expect(warned.isError).toBe(false);
      const killed = await tools.call('run_shell_command', { command: 'sleep 30' }, { timeoutMs: 200 });
      expect(killed).toMatchObject({ isError: true, structuredContent: { timedOut: true, exitCode: null } });
    });

    it('runs Python cells that share state, an exception being an error result', async () => {
      const tools = sandboxOf().tools;
      await tools.call('run_ipython_cell', { code: 'shared = 20', context: 'tools' });
      const doubled = await tools.call('run_ipython_cell', {
        code: 'print("hi")\nshared * 2',
        context: 'tools',
      });
      expect(doubled.isError).toBe(false);
      expect(doubled.content).toEqual([
        { type: 'text', text: 'hi\n', description: 'stdout' },
        { type: 'text', text: '40', description: 'value' },
      ]);
      const failed = await tools.call('run_ipython_cell', { code: 'missing_name', context: 'tools' });
      expect(failed.isError).toBe(true);
      expect(failed.content.at(-1)?.text).toContain("NameError: name 'missing_name' is not defined");
    });

    it('refuses an unknown tool and bad arguments with typed errors', async () => {
      const tools = sandboxOf().tools;
      const unknown = await caught(tools.call('no_such_tool', {}));
      expect(unknown).toBeInstanceOf(NotFoundError);
      expect(unknown).toMatchObject({ code: 'TOOL_NOT_FOUND', status: 404 });
      const bad = await caught(tools.call('run_shell_command', { command: '' }));
      expect(bad).toBeInstanceOf(ValidationError);
      expect(bad).toMatchObject({ code: 'INVALID_TOOL_ARGUMENTS', status: 400 });
      const extra = await caught(tools.call<string>('run_ipython_cell', { code: '1', unexpected: true }));
      expect(extra).toMatchObject({ code: 'INVALID_TOOL_ARGUMENTS' });
    });
  });

  describe(`${mode}: python`, () => {
    it('keeps state per context and returns value, output and errors apart', async () => {
      const python = sandboxOf().python;
      await python.run('import json\nrecord = {"n": 1}');
      const result = await python.run(
        'import sys\nprint("o")\nprint("e", file=sys.stderr)\njson.dumps(record)',
      );
      expect(result).toMatchObject({
        context: 'default',
        value: `'{"n": 1}'`,
        stdout: 'o\n',
        stderr: 'e\n',
        error: null,
        timedOut: false,
        restarted: false,
      });
      const other = await python.run('"record" in globals()', { context: 'other' });
      expect(other.value).toBe('False');
      const failed = await python.run('raise ValueError("bad value")');
      expect(failed.error).toMatchObject({ name: 'ValueError', message: 'bad value' });
      expect((await python.run('record["n"]')).value).toBe('1');
    });

    it('interrupts a cell past its timeout and keeps the context', async () => {
      const python = sandboxOf().python;
      await python.run('kept = "yes"', { context: 'slow' });
      const result = await python.run('while True: pass', { context: 'slow', timeoutMs: 300 });
      expect(result).toMatchObject({
        timedOut: true,
        restarted: false,
        error: { name: 'KeyboardInterrupt' },
      });
      expect((await python.run('kept', { context: 'slow' })).value).toBe("'yes'");
    });

    it('refuses a malformed context name and too many contexts with typed errors', async () => {
      const python = sandboxOf().python;
      const bad = await caught(python.run('1', { context: 'no/slashes' }));
      expect(bad).toBeInstanceOf(ValidationError);
      expect(bad).toMatchObject({ code: 'VALIDATION_ERROR' });
      let limit: unknown;
      for (let i = 0; i < 16 && limit === undefined; i++) {
        limit = await python.run('1', { context: `many-${i}` }).then(
          () => undefined,
          (error: unknown) => error,
        );
      }
      expect(limit).toBeInstanceOf(CapacityError);
      expect(limit).toMatchObject({ code: 'PYTHON_CONTEXT_LIMIT' });
    });
  });
}
