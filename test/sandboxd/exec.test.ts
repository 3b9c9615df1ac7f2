/**
 * sandboxd's /exec against the real base image in Docker: results, stdin, output limits, process
 * groups on timeout and on disconnect, and the NDJSON stream.
 */
import type { ExecEvent } from '@runtime-sandbox/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxdContainer, startSandboxdContainer } from '../../support/sandboxd-container.js';

const MiB = 1024 * 1024;

let sandbox: SandboxdContainer;

beforeAll(async () => {
  sandbox = await startSandboxdContainer({ purpose: 'sandboxd-exec' });
});

afterAll(async () => {
  await sandbox?.remove();
});

/** Command lines of the processes matching `pattern`, seen by Docker's exec (not through sandboxd). */
async function processesMatching(pattern: string): Promise<string> {
  const { output } = await sandbox.dockerExec(['pgrep', '-af', pattern]);
  return output.trim();
}

function streamExec(body: object, signal?: AbortSignal): Promise<Response> {
  return sandbox.request('/exec', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

/** The NDJSON events of a streamed exec, one by one as they arrive. */
async function* events(res: Response): AsyncGenerator<ExecEvent> {
  if (!res.body) throw new Error('no body');
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
      yield JSON.parse(buffered.slice(0, newline)) as ExecEvent;
      buffered = buffered.slice(newline + 1);
    }
  }
  expect(buffered).toBe('');
}

describe('POST /exec', () => {
  it('reports the exit code and keeps stdout and stderr apart', async () => {
    const result = await sandbox.exec({ command: 'echo out; echo err >&2; exit 7' });
    expect(result).toMatchObject({
      exitCode: 7,
      signal: null,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it('runs a string with sh -c and an array as argv, without a shell', async () => {
    const viaShell = await sandbox.exec({ command: 'printf "%s|" $HOME "a  b" | tr / :' });
    expect(viaShell.stdout).toBe(':home:sandbox|a  b|');
    const argv = await sandbox.exec({ command: ['echo', '$HOME', 'a  b', '|', 'tr'] });
    expect(argv.stdout).toBe('$HOME a  b | tr\n');
  });

  it('writes stdin and then closes it', async () => {
    expect((await sandbox.exec({ command: ['wc', '-c'], stdin: 'héllo' })).stdout.trim()).toBe('6');
    // Without stdin, stdin is closed at once: `cat` ends instead of waiting forever.
    expect(await sandbox.exec({ command: ['cat'] })).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('returns large output whole under the limit, and cuts and flags it over the limit', async () => {
    const under = await sandbox.exec({ command: `head -c ${10 * MiB} /dev/zero | tr '\\0' a` });
    expect(under.stdout.length).toBe(10 * MiB);
    expect(under.stdoutTruncated).toBe(false);

    // The default limit is 16 MiB per stream; stderr is counted on its own.
    const over = await sandbox.exec({
      command: `head -c ${20 * MiB} /dev/zero | tr '\\0' b; echo small >&2`,
    });
    expect(over.exitCode).toBe(0);
    expect(over.stdout.length).toBe(16 * MiB);
    expect(over.stdout.startsWith('bbbb')).toBe(true);
    expect(over.stdoutTruncated).toBe(true);
    expect(over.stderr).toBe('small\n');
    expect(over.stderrTruncated).toBe(false);
  });

  it('runs in the workspace root by default, and in a cwd inside it', async () => {
    expect((await sandbox.exec({ command: 'pwd' })).stdout).toBe('/workspace\n');
    await sandbox.exec({ command: 'mkdir -p cwd-test/sub' });
    expect((await sandbox.exec({ command: 'pwd', cwd: 'cwd-test/sub' })).stdout).toBe(
      '/workspace/cwd-test/sub\n',
    );
    expect((await sandbox.exec({ command: 'pwd', cwd: '/workspace/cwd-test' })).stdout).toBe(
      '/workspace/cwd-test\n',
    );

    const missing = await sandbox.request('/exec', {
      method: 'POST',
      body: JSON.stringify({ command: 'pwd', cwd: 'cwd-test/missing' }),
    });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('FILE_NOT_FOUND');
  });

  it('gives the request env over the image env, and never sandboxd settings', async () => {
    const result = await sandbox.exec({
      command: 'echo "$GREETING:$LANG"; env',
      env: { GREETING: 'hi', LANG: 'C' },
    });
    const [first, ...env] = result.stdout.split('\n');
    expect(first).toBe('hi:C');
    expect(env).toContain('HOME=/home/sandbox');
    expect(result.stdout).not.toContain('SANDBOXD_');
    expect(result.stdout).not.toContain(sandbox.bootToken);
  });

  it('answers like a shell for a program that cannot be started', async () => {
    const result = await sandbox.exec({ command: ['no-such-program', 'arg'] });
    expect(result.exitCode).toBe(127);
    expect(result.stderr).toContain('no-such-program');
  });

  it('kills the whole process group on timeout, grandchildren included', async () => {
    const result = await sandbox.exec({ command: 'sleep 1001 & sleep 1002; echo never', timeoutMs: 500 });
    expect(result).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL', stdout: '' });
    await expect.poll(() => processesMatching('sleep 100[12]'), { timeout: 5000 }).toBe('');
  });

  it('answers when the process exits even if a background child keeps stdout open', async () => {
    const result = await sandbox.exec({ command: 'sleep 1003 & echo started' });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false, stdout: 'started\n' });
    // A job started in the background outlives a complete answer, as it would in a shell.
    expect(await processesMatching('sleep 1003')).toContain('sleep 1003');
    await sandbox.exec({ command: ['pkill', '-f', 'sleep 1003'] });
  });
});

describe('POST /exec with Accept: application/x-ndjson', () => {
  it('streams start, then output as it comes, then exit', async () => {
    const res = await streamExec({
      command: 'for i in 1 2 3; do echo $i; sleep 0.2; done; echo bye >&2; exit 3',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const seen: ExecEvent[] = [];
    for await (const event of events(res)) seen.push(event);

    expect(seen[0]).toMatchObject({ type: 'start', pid: expect.any(Number) });
    expect(seen.at(-1)).toMatchObject({ type: 'exit', exitCode: 3, signal: null, timedOut: false });
    const stdout = seen.flatMap((event) => (event.type === 'stdout' ? [event.data] : []));
    // The lines were written 0.2 s apart, so each came as its own event, in order.
    expect(stdout).toEqual(['1\n', '2\n', '3\n']);
    expect(seen.filter((event) => event.type === 'stderr')).toEqual([{ type: 'stderr', data: 'bye\n' }]);
  });

  it('never splits a UTF-8 character across events', async () => {
    // The euro sign's three bytes arrive in two writes.
    const res = await streamExec({ command: "printf '\\342\\202'; sleep 0.3; printf '\\254 ok\\n'" });
    const data: string[] = [];
    for await (const event of events(res)) if (event.type === 'stdout') data.push(event.data);
    expect(data.join('')).toBe('€ ok\n');
    expect(data.join('')).not.toContain('\uFFFD');
  });

  it('holds the process back for a slow reader and loses no output', async () => {
    const res = await streamExec({ command: `head -c ${20 * MiB} /dev/zero | tr '\\0' x` });
    // Read nothing for a while: the process exits long before the client has read its output.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    let received = 0;
    let last: ExecEvent | undefined;
    for await (const event of events(res)) {
      if (event.type === 'stdout') received += event.data.length;
      last = event;
    }
    expect(received).toBe(20 * MiB);
    expect(last).toMatchObject({ type: 'exit', exitCode: 0 });
  });

  it('kills the process group when the client disconnects', async () => {
    const abort = new AbortController();
    const res = await streamExec({ command: 'sleep 1004 & sleep 1005' }, abort.signal);
    const first = await events(res).next();
    expect(first.value).toMatchObject({ type: 'start' });
    await expect.poll(() => processesMatching('sleep 100[45]'), { timeout: 5000 }).toContain('sleep 1005');

    abort.abort();
    await expect.poll(() => processesMatching('sleep 100[45]'), { timeout: 5000 }).toBe('');
  });

  it('reports a timeout in the exit event', async () => {
    const res = await streamExec({ command: 'echo before; sleep 1006', timeoutMs: 500 });
    const seen: ExecEvent[] = [];
    for await (const event of events(res)) seen.push(event);
    expect(seen).toContainEqual({ type: 'stdout', data: 'before\n' });
    expect(seen.at(-1)).toMatchObject({ type: 'exit', exitCode: null, signal: 'SIGKILL', timedOut: true });
  });
});
