/**
 * sandboxd out of the code's reach: the code it runs (through /exec, as the sandbox user) tries to
 * read sandboxd's memory and environment, signal it, trace it, and race it with symlinks into
 * writing or reading outside the workspace as root. Every row asserts the concrete sign of the
 * attack failing, and afterwards that sandboxd still answers.
 */
import type { ExecResult } from '@runtime-sandbox/contract';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { docker, type SandboxdContainer, startSandboxdContainer } from '../../support/sandboxd-container.js';
import { tarOf } from '../sandboxd/tar.js';

let sandbox: SandboxdContainer;
/** sandboxd's pid (tini is 1) and an address mapped in it. */
let pid: string;
let mappedAddress: string;

beforeAll(async () => {
  sandbox = await startSandboxdContainer({ purpose: 'security-daemon' });
  pid = (await sandbox.dockerExecAsRoot(['pgrep', '-o', '-x', 'node'])).output.trim();
  expect(pid).toMatch(/^\d+$/);
  const maps = await sandbox.dockerExecAsRoot(['head', '-n', '1', `/proc/${pid}/maps`]);
  mappedAddress = String(Number.parseInt(maps.output.split('-')[0] ?? '', 16));
  expect(Number(mappedAddress)).toBeGreaterThan(0);
});

afterAll(async () => {
  await sandbox?.remove();
});

afterEach(async () => {
  // Whatever was tried, sandboxd is alive, not stopped, and still runs commands.
  const state = await sandbox.dockerExecAsRoot(['sh', '-c', `cut -d' ' -f3 /proc/${pid}/stat`]);
  expect(state.output.trim()).toMatch(/^[RS]$/);
  expect((await sandbox.request('/healthz')).status).toBe(200);
  expect((await sandbox.exec({ command: 'echo alive' })).stdout).toBe('alive\n');
});

const readMemory = `
import errno, sys
try:
    f = open('/proc/%s/mem' % sys.argv[1], 'rb', buffering=0)
    f.seek(int(sys.argv[2]))
    print('READ %d bytes' % len(f.read(16)))
except OSError as e:
    print('DENIED ' + errno.errorcode[e.errno])
`;

const ptraceAttach = `
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
result = libc.ptrace(PTRACE_ATTACH, int(sys.argv[1]), None, None)
print('ATTACHED' if result == 0 else 'DENIED ' + errno.errorcode[ctypes.get_errno()])
`;

/** Reads the token from stdin, so that it is in no argv, and looks for it in every environ it can read. */
const tokenHunt = `
import glob, sys
token = sys.stdin.read().strip().encode()
readable = leaks = 0
for path in glob.glob('/proc/[0-9]*/environ'):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError:
        continue
    readable += 1
    leaks += token in data
print('readable=%d leaks=%d' % (readable, leaks))
`;

const denied = (result: ExecResult, message: RegExp) => {
  expect(result.exitCode, result.stdout).not.toBe(0);
  expect(result.stderr).toMatch(message);
};

interface Attack {
  name: string;
  run: () => Promise<ExecResult>;
  check: (result: ExecResult) => void | Promise<void>;
}

const attacks: Attack[] = [
  {
    name: "reads sandboxd's environment",
    run: () => sandbox.exec({ command: ['cat', `/proc/${pid}/environ`] }),
    check: (r) => {
      denied(r, /Permission denied/);
      expect(r.stdout).toBe('');
    },
  },
  {
    name: "reads sandboxd's memory at a mapped address",
    run: () => sandbox.exec({ command: ['python3', '-c', readMemory, pid, mappedAddress] }),
    check: (r) => expect(r.stdout.trim()).toMatch(/^DENIED E(ACCES|PERM)$/),
  },
  {
    name: "reads sandboxd's memory map",
    run: () => sandbox.exec({ command: ['cat', `/proc/${pid}/maps`] }),
    check: (r) => {
      denied(r, /Permission denied/);
      expect(r.stdout).toBe('');
    },
  },
  {
    name: "reads tini's (PID 1) environment",
    run: () => sandbox.exec({ command: ['cat', '/proc/1/environ'] }),
    check: (r) => {
      denied(r, /Permission denied/);
      expect(r.stdout).toBe('');
    },
  },
  {
    name: 'looks for the boot token in every environment it can read',
    run: () => sandbox.exec({ command: ['python3', '-c', tokenHunt], stdin: sandbox.bootToken }),
    check: (r) => expect(r.stdout.trim()).toMatch(/^readable=[1-9]\d* leaks=0$/),
  },
  {
    name: 'sends SIGUSR1 to open the inspector',
    run: () => sandbox.exec({ command: `kill -USR1 ${pid}` }),
    check: async (r) => {
      denied(r, /not permitted/i);
      const logs = await docker.getContainer(sandbox.id).logs({ stdout: true, stderr: true });
      expect(logs.toString()).not.toContain('Debugger listening');
    },
  },
  {
    name: 'sends SIGSTOP',
    run: () => sandbox.exec({ command: `kill -STOP ${pid}` }),
    check: (r) => denied(r, /not permitted/i),
  },
  {
    name: 'sends SIGKILL',
    run: () => sandbox.exec({ command: `kill -9 ${pid}` }),
    check: (r) => denied(r, /not permitted/i),
  },
  {
    name: 'sends SIGKILL to PID 1',
    run: () => sandbox.exec({ command: 'kill -9 1' }),
    check: (r) => denied(r, /not permitted/i),
  },
  {
    name: 'attaches with ptrace',
    run: () => sandbox.exec({ command: ['python3', '-c', ptraceAttach, pid] }),
    check: (r) => expect(r.stdout.trim()).toBe('DENIED EPERM'),
  },
  {
    name: 'runs as the sandbox user, without groups or capabilities',
    run: () =>
      sandbox.exec({
        command:
          'id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"; ' +
          "grep -E '^(CapInh|CapPrm|CapEff|CapAmb|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '",
      }),
    check: (r) =>
      expect(r.stdout).toBe(
        [
          '1000',
          '1000',
          '1000',
          '/home/sandbox sandbox sandbox',
          'CapInh: 0000000000000000',
          'CapPrm: 0000000000000000',
          'CapEff: 0000000000000000',
          'CapAmb: 0000000000000000',
          'NoNewPrivs: 1',
          '',
        ].join('\n'),
      ),
  },
];

describe('the code against sandboxd', () => {
  it.each(attacks)('fails when it $name', async ({ run, check }) => {
    await check(await run());
  });

  it('runs sandboxd as root, so the kernel keeps it apart', async () => {
    const { output } = await sandbox.dockerExecAsRoot(['stat', '-c', '%u', '/proc/1', `/proc/${pid}`]);
    expect(output).toBe('0\n0\n');
  });
});

describe('a symlink swapped in while sandboxd works through the path', () => {
  /** A root-only directory outside the workspace: nothing in it is the code's to read or change. */
  const OUTSIDE = '/srv/outside';
  const SECRET = 'OUTSIDE-SECRET';
  const SWAP_SECONDS = 40;
  const SWAP_LIMIT = 5_000_000;
  const ROUNDS = 60;

  // Flips race/d between a real directory and a link to OUTSIDE as fast as it can, until
  // race-stop appears, the time is up or the count is reached.
  const swapper = `
import os, sys, time
os.chdir('/workspace/race')
deadline = time.time() + ${SWAP_SECONDS}
swaps = 0
while swaps < ${SWAP_LIMIT} and time.time() < deadline and not os.path.exists('/workspace/race-stop'):
    for a, b in (('real', 'd'), ('d', 'real'), ('link', 'd'), ('d', 'link')):
        try:
            os.rename(a, b)
        except OSError:
            pass
    swaps += 1
print(swaps)
`;

  it('never reads outside content and never writes outside, and the sandbox keeps working', async () => {
    const setup = await sandbox.dockerExecAsRoot([
      'sh',
      '-c',
      `mkdir -m 700 ${OUTSIDE} && echo ${SECRET} > ${OUTSIDE}/data.txt && echo ${SECRET} > ${OUTSIDE}/outside-only.txt`,
    ]);
    expect(setup.exitCode, setup.output).toBe(0);
    const made = await sandbox.exec({
      command: `mkdir -p race/real && echo inside > race/real/data.txt && ln -s ${OUTSIDE} race/link`,
    });
    expect(made.exitCode, made.stderr).toBe(0);

    const swapping = sandbox.exec({
      command: ['python3', '-c', swapper],
      timeoutMs: (SWAP_SECONDS + 20) * 1000,
    });
    // Settled below; until then a failure must not become an unhandled rejection.
    swapping.catch(() => undefined);
    const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
    const post = (route: string, body: unknown) =>
      sandbox.request(route, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // Each read through the swapped path, and the sign that its answer came from outside.
    const reads: Array<{ send: () => Promise<Response>; leaked: (status: number, text: string) => boolean }> =
      [
        {
          send: () => sandbox.request(`/files?${q({ path: 'race/d/data.txt' })}`),
          leaked: (_status, text) => text.includes(SECRET),
        },
        {
          send: () => sandbox.request(`/files/list?${q({ path: 'race/d' })}`),
          leaked: (_status, text) => text.includes('"name":"outside-only.txt"'),
        },
        {
          send: () => sandbox.request(`/files/stat?${q({ path: 'race/d/outside-only.txt' })}`),
          leaked: (status) => status === 200,
        },
        {
          send: () => sandbox.request(`/archive?${q({ path: 'race' })}`),
          leaked: (_status, text) => text.includes(SECRET),
        },
        {
          send: () => post('/exec', { command: 'pwd -P; cat data.txt', cwd: 'race/d' }),
          leaked: (_status, text) => text.includes(SECRET) || text.includes(OUTSIDE),
        },
      ];
    const archive = await tarOf([{ name: 'from-tar.txt', data: 'inside, from a tar' }]);
    let outsideReads = 0;
    let insideReads = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        reads.map(async ({ send, leaked }) => {
          // A read cut short by the race (an archive whose tree changed under it) is a failed read, not a leak.
          const answer = await send()
            .then(async (r) => ({
              status: r.status,
              text: Buffer.from(await r.arrayBuffer()).toString('latin1'),
            }))
            .catch(() => ({ status: 0, text: '' }));
          if (leaked(answer.status, answer.text)) outsideReads += 1;
          else if (answer.text.includes('inside')) insideReads += 1;
        }),
      );
      await Promise.all([
        sandbox.request(`/files?${q({ path: `race/d/new-${round}.txt` })}`, {
          method: 'PUT',
          body: 'inside',
        }),
        sandbox.request(`/files?${q({ path: 'race/d/data.txt' })}`, { method: 'PUT', body: 'inside, again' }),
        post('/files/mkdir', { path: `race/d/dir-${round}/sub` }),
        sandbox.request(`/archive?${q({ path: 'race/d' })}`, { method: 'PUT', body: archive }),
        sandbox.request(`/files?${q({ path: 'race/d/outside-only.txt' })}`, { method: 'DELETE' }),
        sandbox.request(`/files?${q({ path: `race/d/dir-${round - 1}`, recursive: 'true' })}`, {
          method: 'DELETE',
        }),
      ]);
      // Moves need a file to move; made fresh each round.
      await sandbox.request(`/files?${q({ path: `race/mv-${round}` })}`, { method: 'PUT', body: 'inside' });
      await post('/files/move', { from: `race/mv-${round}`, to: `race/d/moved-${round}` });
    }
    await sandbox.request(`/files?${q({ path: 'race-stop' })}`, { method: 'PUT', body: '' });
    const swaps = Number((await swapping).stdout.trim());

    // The race ran, and sandboxd did serve through the path while it did.
    expect(swaps).toBeGreaterThan(ROUNDS);
    expect(insideReads).toBeGreaterThan(0);
    expect(outsideReads).toBe(0);
    // Outside, everything is as it was: nothing added, changed or removed, and owned by root.
    const outside = await sandbox.dockerExecAsRoot([
      'sh',
      '-c',
      `cd ${OUTSIDE} && ls -A && cat data.txt outside-only.txt && stat -c %u . data.txt`,
    ]);
    expect(outside.output).toBe(`data.txt\noutside-only.txt\n${SECRET}\n${SECRET}\n0\n0\n`);
    const stray = await sandbox.dockerExecAsRoot([
      'sh',
      '-c',
      "find / -xdev \\( -name 'new-*.txt' -o -name 'dir-*' -o -name 'moved-*' -o -name from-tar.txt \\) -not -path '/workspace/*' -not -path '/proc/*' 2>/dev/null | head",
    ]);
    expect(stray.output).toBe('');
    // And sandboxd still works normally on the same path.
    expect((await sandbox.request(`/files?${q({ path: 'race/real/data.txt' })}`)).status).toBe(200);
  }, 120_000);
});
