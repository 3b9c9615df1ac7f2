/**
 * sandboxd's stateful Python interpreter (POST /python) against the real base image: state kept
 * between cells, the last expression's value, stdout and stderr apart, tracebacks, interrupts on
 * timeout (and a restart when the cell ignores them), contexts apart, cells of one context in
 * turn, the context limit, the sandbox user, and bad input.
 */
import { PYTHON_MAX_CONTEXTS, type PythonRunRequest, type PythonRunResult } from '@runtime-sandbox/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxdContainer, startSandboxdContainer } from '../../support/sandboxd-container.js';

let sandbox: SandboxdContainer;

beforeAll(async () => {
  sandbox = await startSandboxdContainer({ purpose: 'sandboxd-python' });
});

afterAll(async () => {
  await sandbox?.remove();
});

function post(body: unknown): Promise<Response> {
  return sandbox.request('/python', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function run(request: PythonRunRequest): Promise<PythonRunResult> {
  const res = await post(request);
  if (res.status !== 200) throw new Error(`/python answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as PythonRunResult;
}

/** The interpreters running now, as `uid pid args` lines, seen by Docker's exec. */
async function interpreters(): Promise<string[]> {
  const { output } = await sandbox.dockerExecAsRoot(['ps', '-eo', 'uid=,pid=,args=']);
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => / python3 -u -c /.test(line));
}

describe('POST /python', () => {
  it('keeps variables and imports between cells and returns the last expression', async () => {
    const first = await run({ code: 'import math\nx = 40' });
    expect(first).toMatchObject({ context: 'default', value: null, error: null, timedOut: false });
    const second = await run({ code: 'x += 2\nmath.sqrt(x * x)' });
    expect(second.value).toBe('42.0');
    const third = await run({ code: '"text"' });
    expect(third.value).toBe("'text'");
  });

  it('returns stdout and stderr apart, with output of subprocesses', async () => {
    const result = await run({
      code: 'import sys, os\nprint("to out")\nprint("to err", file=sys.stderr)\nos.system("echo from a subprocess")\n7 * 6',
    });
    expect(result.stdout).toBe('to out\nfrom a subprocess\n');
    expect(result.stderr).toBe('to err\n');
    expect(result.value).toBe('42');
  });

  it('returns the traceback of an exception, and the context stays usable', async () => {
    await run({ code: 'kept = "still here"' });
    const failed = await run({ code: 'def divide(a):\n    return a / 0\nprint("before")\ndivide(1)' });
    expect(failed.stdout).toBe('before\n');
    expect(failed.value).toBeNull();
    expect(failed.error).toMatchObject({ name: 'ZeroDivisionError', message: 'division by zero' });
    expect(failed.error?.traceback).toContain('return a / 0');
    expect(failed.error?.traceback).toContain('ZeroDivisionError: division by zero');
    // The driver's own frames are not shown.
    expect(failed.error?.traceback).not.toContain('run_cell');
    const syntax = await run({ code: 'def (' });
    expect(syntax.error?.name).toBe('SyntaxError');
    expect((await run({ code: 'kept' })).value).toBe("'still here'");
  });

  it('interrupts a cell that runs past its timeout, and the context stays usable', async () => {
    await run({ code: 'survivor = 1' });
    const result = await run({ code: 'print("started")\nwhile True: pass', timeoutMs: 300 });
    expect(result).toMatchObject({ timedOut: true, restarted: false, stdout: 'started\n' });
    expect(result.error?.name).toBe('KeyboardInterrupt');
    expect(result.durationMs).toBeGreaterThanOrEqual(300);
    expect((await run({ code: 'survivor + 1' })).value).toBe('2');
  });

  it('kills and restarts an interpreter that ignores the interrupt, and says so', async () => {
    await run({ code: 'lost = 1', context: 'stubborn' });
    const [before] = (await interpreters()).filter((line) => line.includes('python3'));
    expect(before).toBeDefined();
    const result = await run({
      code: 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass',
      context: 'stubborn',
      timeoutMs: 200,
    });
    expect(result).toMatchObject({ timedOut: true, restarted: true, context: 'stubborn' });
    expect(result.error?.name).toBe('InterpreterRestarted');
    const after = await run({ code: '"lost" in globals()', context: 'stubborn' });
    expect(after).toMatchObject({ value: 'False', restarted: false, error: null });
  });

  it('restarts an interpreter that exits during a cell', async () => {
    await run({ code: 'gone = 1', context: 'exits' });
    const result = await run({ code: 'import os\nprint("bye", flush=True)\nos._exit(3)', context: 'exits' });
    expect(result).toMatchObject({ restarted: true, timedOut: false, stdout: 'bye\n' });
    expect(result.error?.name).toBe('InterpreterExited');
    expect((await run({ code: '"gone" in globals()', context: 'exits' })).value).toBe('False');
  });

  it('keeps two contexts apart', async () => {
    await run({ code: 'who = "left"', context: 'left' });
    await run({ code: 'who = "right"', context: 'right' });
    expect((await run({ code: 'who', context: 'left' })).value).toBe("'left'");
    expect((await run({ code: 'who', context: 'right' })).value).toBe("'right'");
    const pids = await Promise.all(
      ['left', 'right'].map(
        async (context) => (await run({ code: 'import os; os.getpid()', context })).value,
      ),
    );
    expect(pids[0]).not.toBe(pids[1]);
  });

  it('runs concurrent cells of one context one after another, their output not interleaved', async () => {
    const loop = (tag: string) =>
      `import time\nfor i in range(5):\n    print("${tag}", i, flush=True)\n    time.sleep(0.05)\n"${tag} done"`;
    const [a, b] = await Promise.all([
      run({ code: loop('a'), context: 'queue' }),
      run({ code: loop('b'), context: 'queue' }),
    ]);
    const lines = (tag: string) => [0, 1, 2, 3, 4].map((i) => `${tag} ${i}`).join('\n');
    expect(a.stdout).toBe(`${lines('a')}\n`);
    expect(b.stdout).toBe(`${lines('b')}\n`);
    expect([a.value, b.value]).toEqual(["'a done'", "'b done'"]);
  });

  it('runs the interpreter as the sandbox user, not root', async () => {
    const result = await run({ code: 'import os\n(os.getuid(), os.getgid(), os.getcwd())' });
    expect(result.value).toBe("(1000, 1000, '/workspace')");
    for (const line of await interpreters()) expect(line.split(/\s+/)[0]).toBe('1000');
  });

  it('refuses a context past the limit with PYTHON_CONTEXT_LIMIT, and the existing ones still run', async () => {
    const existing = (await interpreters()).length;
    for (let i = existing; i < PYTHON_MAX_CONTEXTS; i++) await run({ code: '1', context: `filler-${i}` });
    const res = await post({ code: '1', context: 'one-too-many' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PYTHON_CONTEXT_LIMIT');
    expect((await run({ code: 'who', context: 'left' })).value).toBe("'left'");
  });

  it('answers bad input with 400 and starts nothing', async () => {
    const before = await interpreters();
    const cases: Array<[unknown, string]> = [
      ['{"code": ', 'MALFORMED_JSON'],
      [{}, 'VALIDATION_ERROR'],
      [{ code: 1 }, 'VALIDATION_ERROR'],
      [{ code: '1', context: '../x' }, 'VALIDATION_ERROR'],
      [{ code: '1', timeoutMs: 0 }, 'VALIDATION_ERROR'],
      [{ code: '1', extra: true }, 'VALIDATION_ERROR'],
    ];
    for (const [body, code] of cases) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    expect(await interpreters()).toEqual(before);
  });
});
