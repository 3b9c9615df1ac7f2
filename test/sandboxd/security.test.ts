/**
 * Bad and hostile input to sandboxd, in the real base image: every case gets its 4xx code, and
 * after every test the container is searched (through Docker, not sandboxd) for anything written
 * outside the workspace or left behind inside it.
 */
import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { SANDBOXD_AUTHORIZATION_HEADER } from '@runtime-sandbox/contract';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SandboxdContainer, startSandboxdContainer } from '../../support/sandboxd-container.js';
import { readTar, type TarEntryInput, tarOf } from './tar.js';

const MiB = 1024 * 1024;
const SMALL_LIMITS = {
  SANDBOXD_MAX_UPLOAD_BYTES: String(MiB),
  SANDBOXD_MAX_JSON_BYTES: String(64 * 1024),
  SANDBOXD_MAX_OUTPUT_BYTES: '1000',
};

let sandbox: SandboxdContainer;
let small: SandboxdContainer;

beforeAll(async () => {
  [sandbox, small] = await Promise.all([
    startSandboxdContainer({ purpose: 'sandboxd-security' }),
    startSandboxdContainer({ purpose: 'sandboxd-security-limits', env: SMALL_LIMITS }),
  ]);
  // Links out of the workspace, as code running in the sandbox could make them; and a file to protect.
  const setup = await sandbox.exec({
    command:
      'mkdir -p sec arc-dest && echo keep > arc-dest/keep.txt && ln -s /tmp sec/tmp-link && ' +
      'ln -s /etc/passwd sec/passwd-link && ln -s /tmp/pwned-dangling sec/dangling && ' +
      'ln -s /home/sandbox sec/home-link && echo precious > /tmp/victim',
  });
  expect(setup.exitCode, setup.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all([sandbox?.remove(), small?.remove()]);
});

/** Anything named *pwned* where the sandbox user could write outside the workspace, and our own temp files. */
async function leftovers(target: SandboxdContainer): Promise<string> {
  const { output } = await target.dockerExec([
    'sh',
    '-c',
    "find /tmp /home /var/tmp /dev/shm / -maxdepth 1 -name '*pwned*' 2>/dev/null; " +
      "find /tmp /home /var/tmp /dev/shm -name '*pwned*' 2>/dev/null; " +
      "find /workspace -name '.sandboxd-staging-*' -o -name '.sandboxd-upload-*'",
  ]);
  return output.trim();
}

afterEach(async () => {
  expect(await leftovers(sandbox)).toBe('');
  expect(await leftovers(small)).toBe('');
  expect((await sandbox.dockerExec(['cat', '/tmp/victim'])).output).toBe('precious\n');
});

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

async function expectError(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(text).not.toMatch(/\n\s+at /);
  const body = JSON.parse(text) as {
    error: { code: string; message: string; details?: Record<string, unknown> };
  };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  return body.error.details ?? {};
}

function postJson(target: SandboxdContainer, route: string, body: unknown): Promise<Response> {
  return target.request(route, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('authentication', () => {
  const protectedCalls: Array<[string, string, RequestInit]> = [
    ['POST /exec', '/exec', { method: 'POST', body: JSON.stringify({ command: 'touch /tmp/pwned-exec' }) }],
    ['PUT /files', `/files?${q({ path: 'unauth-pwned' })}`, { method: 'PUT', body: 'x' }],
    ['GET /files/list', '/files/list', { method: 'GET' }],
    ['GET /archive', '/archive', { method: 'GET' }],
    ['POST /init', '/init', { method: 'POST', body: JSON.stringify({ token: 'x'.repeat(32) }) }],
  ];

  it('lets /healthz answer without a token', async () => {
    const res = await sandbox.request('/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', initialized: false });
  });

  it.each(protectedCalls)(
    'refuses %s without a token, with a wrong one, and with another scheme',
    async (_name, path, init) => {
      await expectError(await sandbox.request(path, { ...init, token: null }), 401, 'UNAUTHORIZED');
      await expectError(
        await sandbox.request(path, { ...init, token: `${sandbox.bootToken}x` }),
        401,
        'UNAUTHORIZED',
      );
      await expectError(
        await sandbox.request(path, {
          ...init,
          token: null,
          headers: { authorization: `Basic ${sandbox.bootToken}` },
        }),
        401,
        'UNAUTHORIZED',
      );
      expect(await sandbox.existsInContainer('/workspace/unauth-pwned')).toBe(false);
    },
  );

  /** A call with the token in the dedicated header (as through the pod proxy), and maybe an Authorization. */
  const viaProxy = (path: string, init: RequestInit, token: string, authorization?: string) =>
    sandbox.request(path, {
      ...init,
      token: null,
      headers: {
        ...(init.headers as Record<string, string> | undefined),
        [SANDBOXD_AUTHORIZATION_HEADER]: `Bearer ${token}`,
        ...(authorization === undefined ? {} : { authorization }),
      },
    });

  it.each(protectedCalls)(
    'refuses %s with a wrong token in x-sandboxd-authorization, even beside a right Authorization',
    async (_name, path, init) => {
      const wrong = `${sandbox.bootToken}x`;
      await expectError(await viaProxy(path, init, wrong), 401, 'UNAUTHORIZED');
      await expectError(
        await viaProxy(path, init, wrong, `Bearer ${sandbox.bootToken}`),
        401,
        'UNAUTHORIZED',
      );
      expect(await sandbox.existsInContainer('/workspace/unauth-pwned')).toBe(false);
    },
  );

  it('takes the token in x-sandboxd-authorization, whatever Authorization holds (the proxy’s own)', async () => {
    const exec = await viaProxy(
      '/exec',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ command: 'echo via proxy' }),
      },
      sandbox.bootToken,
      'Bearer the-proxy-s-credentials',
    );
    expect(exec.status).toBe(200);
    expect(await exec.json()).toMatchObject({ exitCode: 0, stdout: 'via proxy\n' });
    const list = await viaProxy('/files/list', { method: 'GET' }, sandbox.bootToken);
    expect(list.status).toBe(200);
    await list.body?.cancel();
  });
});

describe('paths outside the workspace', () => {
  const writeEscapes = [
    '../tmp/pwned',
    '../../../../tmp/pwned',
    '/tmp/pwned',
    '/home/sandbox/pwned',
    'sec/../../tmp/pwned',
    'sec/tmp-link/pwned',
    'sec/home-link/pwned',
  ];
  const readEscapes = [
    '../etc/passwd',
    '/etc/passwd',
    'sec/passwd-link',
    'sec/home-link/.bashrc',
    'sec/tmp-link/victim',
  ];

  it.each(writeEscapes)('refuses to write, create or move to %s', async (path) => {
    await expectError(
      await sandbox.request(`/files?${q({ path })}`, { method: 'PUT', body: 'x' }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await expectError(await postJson(sandbox, '/files/mkdir', { path }), 403, 'PATH_OUTSIDE_WORKSPACE');
    await expectError(
      await sandbox.request(`/archive?${q({ path })}`, {
        method: 'PUT',
        body: await tarOf([{ name: 'f', data: 'x' }]),
      }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await sandbox.exec({ command: 'echo data > move-me' });
    await expectError(
      await postJson(sandbox, '/files/move', { from: 'move-me', to: path }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
  });

  it('refuses to write through a dangling symlink that points outside', async () => {
    const path = 'sec/dangling';
    await expectError(
      await sandbox.request(`/files?${q({ path })}`, { method: 'PUT', body: 'x' }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await expectError(await postJson(sandbox, '/files/mkdir', { path }), 403, 'PATH_OUTSIDE_WORKSPACE');
    await expectError(
      await sandbox.request(`/archive?${q({ path })}`, {
        method: 'PUT',
        body: await tarOf([{ name: 'f', data: 'x' }]),
      }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
  });

  it.each(readEscapes)('refuses to read %s', async (path) => {
    await expectError(await sandbox.request(`/files?${q({ path })}`), 403, 'PATH_OUTSIDE_WORKSPACE');
  });

  it('refuses to list, archive, delete, move from or run in places outside', async () => {
    await expectError(
      await sandbox.request(`/files/list?${q({ path: 'sec/tmp-link' })}`),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await expectError(
      await sandbox.request(`/files/list?${q({ path: '..' })}`),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await expectError(
      await sandbox.request(`/archive?${q({ path: 'sec/home-link' })}`),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    await expectError(
      await sandbox.request(`/files/stat?${q({ path: 'sec/tmp-link/victim' })}`),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    for (const path of ['/tmp/victim', '../tmp/victim', 'sec/tmp-link/victim']) {
      await expectError(
        await sandbox.request(`/files?${q({ path })}`, { method: 'DELETE' }),
        403,
        'PATH_OUTSIDE_WORKSPACE',
      );
    }
    await expectError(
      await postJson(sandbox, '/files/move', { from: 'sec/tmp-link/victim', to: 'stolen' }),
      403,
      'PATH_OUTSIDE_WORKSPACE',
    );
    for (const cwd of ['..', '/tmp', 'sec/tmp-link']) {
      await expectError(
        await postJson(sandbox, '/exec', { command: 'touch pwned', cwd }),
        403,
        'PATH_OUTSIDE_WORKSPACE',
      );
    }
  });

  it('describes a symlink to outside as a link, and deletes the link itself', async () => {
    const res = await sandbox.request(`/files/stat?${q({ path: 'sec/passwd-link' })}`);
    expect(await res.json()).toMatchObject({ type: 'symlink', symlinkTarget: '/etc/passwd' });
    await sandbox.exec({ command: 'ln -s /tmp/victim sec/victim-link' });
    expect(
      (await sandbox.request(`/files?${q({ path: 'sec/victim-link' })}`, { method: 'DELETE' })).status,
    ).toBe(204);
    expect(await sandbox.existsInContainer('/workspace/sec/victim-link')).toBe(false);
  });
});

describe('hostile archives', () => {
  const put = async (entries: TarEntryInput[] | Buffer, gzip = false) =>
    sandbox.request(`/archive?${q({ path: 'arc-dest', gzip: String(gzip) })}`, {
      method: 'PUT',
      body: Buffer.isBuffer(entries) ? entries : await tarOf(entries),
    });

  afterEach(async () => {
    // A refused archive leaves the destination exactly as it was.
    const result = await sandbox.exec({ command: 'cd arc-dest && find . | sort && cat keep.txt' });
    expect(result.stdout).toBe('.\n./keep.txt\nkeep\n');
  });

  const unsafeCases: Array<[string, TarEntryInput[], string]> = [
    [
      'a ../ entry after a good one',
      [
        { name: 'ok.txt', data: 'fine' },
        { name: '../pwned', data: 'x' },
      ],
      '../pwned',
    ],
    ['a name that climbs out midway', [{ name: 'a/../../pwned', data: 'x' }], 'a/../../pwned'],
    ['an absolute name', [{ name: '/tmp/pwned', data: 'x' }], '/tmp/pwned'],
    [
      'a symlink to outside, then a file through it',
      [
        { name: 'esc', type: 'symlink', linkname: '/tmp' },
        { name: 'esc/pwned', data: 'x' },
      ],
      'esc/pwned',
    ],
    ['a hard link to a file outside', [{ name: 'h', type: 'link', linkname: '/tmp/victim' }], 'h'],
    [
      'a hard link through a symlink',
      [
        { name: 's', type: 'symlink', linkname: '/tmp' },
        { name: 'h', type: 'link', linkname: 's/victim' },
      ],
      'h',
    ],
    ['a fifo', [{ name: 'pipe', type: 'fifo' }], 'pipe'],
    ['a character device', [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], 'null'],
  ];

  it.each(unsafeCases)('refuses %s', async (_name, entries, offender) => {
    const details = await expectError(await put(entries), 400, 'UNSAFE_ARCHIVE_ENTRY');
    expect(details.entry).toBe(offender);
  });

  it('refuses a truncated archive without writing its complete entries', async () => {
    const whole = await tarOf([
      { name: 'first.txt', data: 'complete' },
      { name: 'second.bin', data: Buffer.alloc(10_000, 1) },
    ]);
    await expectError(await put(whole.subarray(0, 4096)), 400, 'INVALID_ARCHIVE');
  });

  it('refuses bytes that are not a tar, and a plain tar sent as gzip', async () => {
    await expectError(await put(Buffer.alloc(4096, 0x41)), 400, 'INVALID_ARCHIVE');
    await expectError(await put([{ name: 'f.txt', data: 'x' }], true), 400, 'INVALID_ARCHIVE');
  });

  it('replaces a symlink in the destination instead of writing through it', async () => {
    await sandbox.exec({ command: 'mkdir -p link-dest && ln -s /tmp link-dest/d' });
    const archive = await tarOf([
      { name: 'd/', type: 'directory' },
      { name: 'd/pwned.txt', data: 'x' },
    ]);
    const res = await sandbox.request(`/archive?${q({ path: 'link-dest' })}`, {
      method: 'PUT',
      body: archive,
    });
    expect(res.status).toBe(200);
    const { output } = await sandbox.dockerExec([
      'sh',
      '-c',
      'test -L /workspace/link-dest/d || ls /workspace/link-dest/d',
    ]);
    expect(output).toBe('pwned.txt\n');
  });
});

describe('symlinks in archives', () => {
  // Links anywhere, as a venv (`bin/python3 -> /usr/bin/python3`) or the code itself makes them:
  // kept as links, and never followed by anything sandboxd does afterwards.
  const links: TarEntryInput[] = [
    { name: 'out', type: 'symlink', linkname: '/tmp/pwned' },
    { name: 'up', type: 'symlink', linkname: '../../tmp/pwned' },
    { name: 'x/a', type: 'symlink', linkname: '.' },
    { name: 'x/b', type: 'symlink', linkname: 'a/../..' },
    { name: 'bin/python3', type: 'symlink', linkname: '/usr/bin/python3' },
    { name: 'inside', type: 'symlink', linkname: 'bin' },
  ];
  const dest = 'link-keep';

  it('extracts symlinks as links whatever their target, twice over, and packs them back as links', async () => {
    for (let round = 0; round < 2; round++) {
      const res = await sandbox.request(`/archive?${q({ path: dest })}`, {
        method: 'PUT',
        body: await tarOf(links),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ entries: links.length });
    }
    const { output } = await sandbox.dockerExec([
      'sh',
      '-c',
      `cd /workspace/${dest} && for l in out up x/a x/b bin/python3 inside; do readlink "$l"; done`,
    ]);
    expect(output.trim().split('\n')).toEqual(links.map((link) => link.linkname));

    const packed = await sandbox.request(`/archive?${q({ path: dest })}`);
    expect(packed.status).toBe(200);
    const entries = await readTar(new Uint8Array(await packed.arrayBuffer()));
    expect(
      entries
        .filter(({ header }) => header.type === 'symlink')
        .map(({ header }) => [header.name, header.linkname])
        .sort(),
    ).toEqual(links.map((link) => [link.name, link.linkname]).sort());
  });

  it.each(['out', 'up', 'up/more', 'bin/python3'])(
    'answers PATH_OUTSIDE_WORKSPACE to reads and writes through %s',
    async (path) => {
      await expectError(
        await sandbox.request(`/files?${q({ path: `${dest}/${path}` })}`),
        403,
        'PATH_OUTSIDE_WORKSPACE',
      );
      await expectError(
        await sandbox.request(`/files?${q({ path: `${dest}/${path}` })}`, { method: 'PUT', body: 'x' }),
        403,
        'PATH_OUTSIDE_WORKSPACE',
      );
    },
  );

  it('refuses an archive that writes through one of its links, even one pointing inside', async () => {
    const res = await sandbox.request(`/archive?${q({ path: 'link-through' })}`, {
      method: 'PUT',
      body: await tarOf([
        { name: 'inside', type: 'symlink', linkname: 'real' },
        { name: 'real/', type: 'directory' },
        { name: 'inside/pwned', data: 'x' },
      ]),
    });
    const details = await expectError(res, 400, 'UNSAFE_ARCHIVE_ENTRY');
    expect(details.entry).toBe('inside/pwned');
  });
});

describe('malformed requests', () => {
  it('answers 400 MALFORMED_JSON for a body that is not JSON', async () => {
    await expectError(await postJson(sandbox, '/exec', '{"command": "echo'), 400, 'MALFORMED_JSON');
    await expectError(await postJson(sandbox, '/files/mkdir', ''), 400, 'MALFORMED_JSON');
  });

  it('answers 400 VALIDATION_ERROR with the issues for bodies and queries of the wrong shape', async () => {
    const details = await expectError(
      await postJson(sandbox, '/exec', { command: 5 }),
      400,
      'VALIDATION_ERROR',
    );
    expect(Array.isArray(details.issues) && details.issues.length > 0).toBe(true);
    await expectError(
      await postJson(sandbox, '/exec', { command: 'true', extra: 1 }),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(
      await postJson(sandbox, '/exec', { command: 'true', timeoutMs: -1 }),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(
      await postJson(sandbox, '/exec', { command: 'true', env: { 'A=B': 'x' } }),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(
      await sandbox.request(`/files/list?${q({ path: '.', depth: '99' })}`),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(await sandbox.request('/files', { method: 'PUT', body: 'x' }), 400, 'VALIDATION_ERROR');
    await expectError(
      await sandbox.request(`/files?${q({ path: 'm.txt', mode: 'rwx' })}`, { method: 'PUT', body: 'x' }),
      400,
      'VALIDATION_ERROR',
    );
    await expectError(await sandbox.request(`/files?${q({ path: 'a\0b' })}`), 400, 'VALIDATION_ERROR');
  });

  it('answers 400 to a request target that is not a URL, and keeps serving', async () => {
    const { hostname, port } = new URL(sandbox.url);
    const statusLine = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.end('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString();
      });
      socket.on('end', () => resolve(answer.split('\r\n')[0] ?? ''));
      socket.on('error', reject);
    });
    expect(statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect((await sandbox.request('/healthz')).status).toBe(200);
  });

  it('answers 404 for an unknown route and 405 for a wrong method', async () => {
    await expectError(await sandbox.request('/nope'), 404, 'ROUTE_NOT_FOUND');
    const res = await sandbox.request('/exec', { method: 'DELETE' });
    expect(res.headers.get('allow')).toBe('POST');
    await expectError(res, 405, 'METHOD_NOT_ALLOWED');
  });
});

/** PUT with a chunked body (no content-length), written in pieces as a streaming client would. */
function putChunked(
  target: SandboxdContainer,
  path: string,
  body: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${target.url}${path}`,
      { method: 'PUT', headers: { authorization: `Bearer ${target.bootToken}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    const pieceBytes = 64 * 1024;
    let sent = 0;
    const writeMore = () => {
      while (sent < body.length) {
        const piece = body.subarray(sent, sent + pieceBytes);
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', writeMore);
      }
      req.end();
    };
    writeMore();
  });
}

describe('size limits (a sandbox started with small SANDBOXD_MAX_* settings)', () => {
  it('refuses a file upload over the limit and leaves nothing, with or without content-length', async () => {
    const res = await small.request(`/files?${q({ path: 'up/new/big.bin' })}`, {
      method: 'PUT',
      body: Buffer.alloc(2 * MiB, 1),
    });
    const details = await expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    expect(details.limitBytes).toBe(MiB);

    const chunked = await putChunked(
      small,
      `/files?${q({ path: 'up/new/big.bin' })}`,
      Buffer.alloc(2 * MiB, 1),
    );
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await small.existsInContainer('/workspace/up')).toBe(false);

    // Under the limit the same upload works, on the same daemon.
    const ok = await small.request(`/files?${q({ path: 'up/new/ok.bin' })}`, {
      method: 'PUT',
      body: Buffer.alloc(MiB, 1),
    });
    expect(ok.status).toBe(200);
  });

  it("refuses an archive body over the limit and leaves nothing; what a gzip inflates to is the quota's to bound", async () => {
    const big = await tarOf([{ name: 'big.bin', data: Buffer.alloc(2 * MiB, 1) }]);
    await expectError(
      await small.request(`/archive?${q({ path: 'arc-big' })}`, { method: 'PUT', body: big }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    const chunked = await putChunked(small, `/archive?${q({ path: 'arc-big' })}`, big);
    expect(chunked.status).toBe(413);
    expect(await small.existsInContainer('/workspace/arc-big')).toBe(false);
    // A few KiB of gzip that inflate past the body limit: the limit is on the request, not on what
    // it inflates to, which the workspace's disk quota bounds (test/security/quotas.test.ts).
    const compressed = gzipSync(big);
    expect(compressed.length).toBeLessThan(MiB);
    const inflated = await small.request(`/archive?${q({ path: 'arc-inflated', gzip: 'true' })}`, {
      method: 'PUT',
      body: compressed,
    });
    expect(inflated.status).toBe(200);
    expect(
      (await small.exec({ command: 'stat -c %s arc-inflated/big.bin && rm -r arc-inflated' })).stdout,
    ).toBe(`${2 * MiB}\n`);
  });

  it('refuses a JSON body over the limit', async () => {
    await expectError(
      await postJson(small, '/exec', { command: 'cat > pwned-stdin', stdin: 'x'.repeat(100 * 1024) }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expect(await small.existsInContainer('/workspace/pwned-stdin')).toBe(false);
  });

  it('cuts output at SANDBOXD_MAX_OUTPUT_BYTES', async () => {
    const result = await small.exec({ command: 'head -c 5000 /dev/zero | tr "\\0" x' });
    expect(result.stdout).toBe('x'.repeat(1000));
    expect(result.stdoutTruncated).toBe(true);
  });
});
