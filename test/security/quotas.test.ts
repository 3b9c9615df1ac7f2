/**
 * Disk quotas the kernel enforces. Code in a sandbox, or a caller, tries to fill the host's disk:
 * through /workspace (a file PUT, an archive, a gzip bomb, a restore, `dd`), through the writable
 * paths (/tmp, /var/tmp, /home/sandbox) and through the image's own file system. Every way stops
 * at the type's size (a small `small-disk` type here, so filling it is quick) with a clean
 * QUOTA_EXCEEDED or ENOSPC, keeps nothing of what did not fit, and leaves the sandbox and server
 * working; a released sandbox leaves no mount, loop device or image file behind.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuotaWorkspaces } from '../../server/src/deployers/workspace-storage.js';
import { mountAt, mountTable } from '../../server/src/mount-table.js';
import { removeMountDir, runServerCli } from '../../support/server-process.js';
import { tarOf } from '../sandboxd/tar.js';
import { testDeploymentId, withDeployment, withServer } from '../support/fixture.js';
import { SMALL_WORKSPACE_MIB, SMALL_WRITABLE_MIB } from './fixtures/quota-types.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** Past the small workspace, well within MAX_UPLOAD_BYTES: only the quota can refuse it. */
const OVER_WORKSPACE = (SMALL_WORKSPACE_MIB + 8) * MiB;

interface ExecAnswer {
  exitCode: number;
  stdout: string;
  stderr: string;
}

interface ErrorAnswer {
  error?: { code: string; message: string };
}

async function loopDevices(): Promise<string> {
  return (await run('losetup', ['-a'])).stdout;
}

describe('disk quotas', () => {
  const snapshotDir = mkdtempSync(join(tmpdir(), 'rsbx-sec-quotas-snapshots-'));
  afterAll(() => rmSync(snapshotDir, { recursive: true, force: true }));
  /** How this file's servers start (the crash test starts a second one on the same deployment). */
  const start = {
    env: { POOL_SIZE: '0', FILE_SYSTEM: 'local', SNAPSHOT_DIR: snapshotDir },
    args: ['--extension', 'test/security/fixtures/quota-types.ts'],
  };
  const server = withServer('rsbx-sec-quotas', start);
  let id: string;

  const exec = async (sandboxId: string, command: string): Promise<ExecAnswer> => {
    const { status, body } = await server.call<ExecAnswer>('POST', `/v1/sandboxes/${sandboxId}/exec`, {
      command,
    });
    expect(status).toBe(200);
    return body;
  };
  const acquire = async (body: Record<string, unknown>): Promise<string> => {
    const { status, body: answer } = await server.call<{ id: string } & ErrorAnswer>(
      'POST',
      '/v1/sandboxes',
      body,
    );
    expect({ status, error: answer.error }).toEqual({ status: 201, error: undefined });
    return answer.id;
  };
  /** Bytes in use on /workspace, and what `ls -A` shows there (staging and temp files included). */
  const workspaceState = async (sandboxId: string) => {
    const answer = await exec(sandboxId, 'ls -A /workspace; df -B1 --output=used /workspace | tail -1');
    const lines = answer.stdout.trim().split('\n');
    return { entries: lines.slice(0, -1), usedBytes: Number(lines.at(-1)) };
  };

  beforeAll(async () => {
    id = await acquire({ type: 'small-disk' });
  });

  it("gives each workspace an ext4 file system of its own, of the type's size, nosuid,nodev, on a loop device", async () => {
    const dir = server.workspaceDir(id);
    const mount = await mountAt(dir);
    expect(mount).toBeDefined();
    expect(mount?.options).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(mount?.fsType).toBe('ext4');
    expect(await loopDevices()).toContain(`${dir}/.workspace.ext4`);

    const seen = await exec(
      id,
      'df -B1M --output=size /workspace | tail -1; stat -c %U:%a /workspace; ls -A',
    );
    const [size, owner, ...entries] = seen.stdout.trim().split('\n');
    // ext4's own metadata takes a little of it.
    expect(Number(size)).toBeGreaterThan(SMALL_WORKSPACE_MIB * 0.85);
    expect(Number(size)).toBeLessThanOrEqual(SMALL_WORKSPACE_MIB);
    expect(owner).toBe('sandbox:700');
    expect(entries).toEqual([]);
  });

  it.each([
    {
      what: 'a file PUT',
      path: '/files?path=big.bin',
      contentType: 'application/octet-stream',
      body: () => Promise.resolve(randomBytes(OVER_WORKSPACE)),
    },
    {
      what: 'a tar upload',
      path: '/archive?path=.',
      contentType: 'application/x-tar',
      body: () => tarOf([{ name: 'big.bin', data: randomBytes(OVER_WORKSPACE) }]),
    },
    {
      what: 'a gzip bomb (a small gzip inflating to 3 times the quota)',
      path: '/archive?path=.&gzip=true',
      contentType: 'application/gzip',
      body: async () =>
        gzipSync(await tarOf([{ name: 'zeros.bin', data: Buffer.alloc(3 * OVER_WORKSPACE) }])),
    },
  ])(
    'refuses $what past the quota with 413 QUOTA_EXCEEDED, keeping nothing of it',
    async ({ path, contentType, body }) => {
      const payload = await body();
      const response = await server.fetch(`/v1/sandboxes/${id}${path}`, {
        method: 'PUT',
        headers: { 'content-type': contentType },
        body: new Uint8Array(payload),
      });
      const answer = (await response.json()) as ErrorAnswer;
      expect({ status: response.status, code: answer.error?.code }).toEqual({
        status: 413,
        code: 'QUOTA_EXCEEDED',
      });
      // The temp file or staging directory went with the refusal, and its space with it.
      const after = await workspaceState(id);
      expect(after.entries).toEqual([]);
      expect(after.usedBytes).toBeLessThan(MiB);
      // The sandbox and the server carry on.
      const small = await server.fetch(`/v1/sandboxes/${id}/files?path=after.txt`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: 'still works',
      });
      expect(small.status).toBe(200);
      expect((await exec(id, 'cat after.txt && rm after.txt')).stdout).toBe('still works');
      expect((await server.fetch('/healthz')).status).toBe(200);
    },
  );

  it.each([
    { path: '/workspace', mib: SMALL_WORKSPACE_MIB },
    { path: '/tmp', mib: SMALL_WRITABLE_MIB },
    { path: '/var/tmp', mib: SMALL_WRITABLE_MIB },
    { path: '/home/sandbox', mib: SMALL_WRITABLE_MIB },
  ])('stops dd filling $path at its $mib MiB with ENOSPC', async ({ path, mib }) => {
    const filled = await exec(id, `dd if=/dev/zero of=${path}/fill bs=1M count=${mib + 8}`);
    expect(filled.exitCode).not.toBe(0);
    expect(filled.stderr).toContain('No space left on device');
    const size = await exec(id, `stat -c %s ${path}/fill && rm ${path}/fill`);
    expect(Number(size.stdout)).toBeLessThanOrEqual(mib * MiB);
  });

  it.each(['/', '/usr', '/etc', '/opt/sandboxd', '/var/lib'])(
    'refuses writes to %s: the root file system is read-only',
    async (path) => {
      const write = await exec(id, `touch ${path}/planted`);
      expect(write.exitCode).not.toBe(0);
      expect(write.stderr).toContain('Read-only file system');
    },
  );

  it('refuses a restore larger than the new sandbox quota with 413 QUOTA_EXCEEDED, costing no sandbox', async () => {
    const big = await acquire({ type: 'base' });
    await exec(big, `head -c ${OVER_WORKSPACE} /dev/urandom > big.bin`);
    const taken = await server.call<{ id: string }>('POST', `/v1/sandboxes/${big}/snapshots`, {});
    expect(taken.status).toBe(201);
    expect((await server.call('DELETE', `/v1/sandboxes/${big}`)).status).toBe(204);

    const restore = await server.call<ErrorAnswer>('POST', '/v1/sandboxes', {
      type: 'small-disk',
      restore: { snapshotId: taken.body.id },
    });
    expect({ status: restore.status, code: restore.body.error?.code }).toEqual({
      status: 413,
      code: 'QUOTA_EXCEEDED',
    });
    const { body } = await server.call<{ sandboxes: Array<{ id: string }> }>('GET', '/v1/sandboxes');
    expect(body.sandboxes.map((s) => s.id)).toEqual([id]);
  });

  it('leaves no mount, loop device or image file behind once a sandbox is released', async () => {
    const other = await acquire({ type: 'small-disk' });
    const dir = server.workspaceDir(other);
    expect(await mountAt(dir)).toBeDefined();
    expect((await server.call('DELETE', `/v1/sandboxes/${other}`)).status).toBe(204);
    expect(await mountAt(dir)).toBeUndefined();
    expect(await loopDevices()).not.toContain(dir);
    expect(existsSync(dir)).toBe(false);
    expect(server.workspaceDirs()).toEqual([id]);
  });

  it('after a crash, the next start unmounts and removes what the crashed run left; a clean stop leaves nothing', async () => {
    const dir = server.workspaceDir(id);
    server.child.kill('SIGKILL');
    await server.exited;
    expect(await mountAt(dir)).toBeDefined();
    // And a workspace of a create that died before its container existed: no record, no container.
    const stray = server.workspaceDir('feedfacefeedface');
    await new QuotaWorkspaces().provide(stray, SMALL_WORKSPACE_MIB, { uid: 1000, gid: 1000 });
    expect(await mountAt(stray)).toBeDefined();

    // The deployment's mount dir, which the crashed server shares.
    const restarted = await server.deployment.start(start);
    try {
      // The reconcile pass runs before the server listens.
      for (const left of [dir, stray]) {
        expect(await mountAt(left)).toBeUndefined();
        expect(existsSync(left)).toBe(false);
      }
      // And one live at the clean stop.
      const live = await restarted.call<{ id: string }>('POST', '/v1/sandboxes', { type: 'small-disk' });
      expect(live.status).toBe(201);
      expect(await mountAt(restarted.workspaceDir(live.body.id))).toBeDefined();
    } finally {
      // Stopped here in any case: a restarted server left running would hold the deployment.
      expect(await restarted.stop()).toBe(0);
    }
    const mountsLeft = (await mountTable()).filter((mount) => mount.mountPoint.startsWith(server.mountDir));
    expect(mountsLeft).toEqual([]);
    expect(await loopDevices()).not.toContain(server.mountDir);
    expect(existsSync(join(server.mountDir, server.deploymentId))).toBe(false);
  });
});

describe('a server that cannot make workspace file systems', () => {
  // Without /usr/sbin on PATH there is no mkfs.ext4 (nor iptables, so the host filter is off too).
  const withoutTools = { PATH: '/usr/local/bin:/usr/bin:/bin', SANDBOX_FIREWALL: 'false' };
  const refusedId = testDeploymentId('rsbx-sec-quotas-cli');
  const scratch = mkdtempSync(join(tmpdir(), `${refusedId}-`));
  afterAll(() => removeMountDir(scratch));
  const quotasOff = withDeployment('rsbx-sec-quotas-off', { ports: 10 });

  it('refuses to start, saying how to turn quotas off; starts with WORKSPACE_QUOTA=false', async () => {
    const env = {
      ...withoutTools,
      CONTAINER_PREFIX_KEY: refusedId,
      PORT: '0',
      POOL_SIZE: '0',
      DEFAULT_MOUNT_DIR: join(scratch, 'mounts'),
    };
    const refused = await runServerCli([], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot make the size-limited workspace file systems');
    expect(refused.stderr).toContain('WORKSPACE_QUOTA=false');

    const unsafe = await quotasOff.start({
      env: { ...withoutTools, POOL_SIZE: '0', WORKSPACE_QUOTA: 'false' },
    });
    expect((await unsafe.fetch('/readyz')).status).toBe(200);
    expect(await unsafe.stop()).toBe(0);
  });
});
