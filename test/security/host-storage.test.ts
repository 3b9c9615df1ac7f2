/**
 * The workspace bind mount opens no door to the host. Code in a sandbox owns its workspace and
 * plants a setuid copy of bash in it; on the host, no other user can reach it, the workspace root
 * is mounted nosuid,nodev, and even root running the planted file gets no setuid.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { mountAt } from '../../server/src/mount-table.js';
import { withServer } from '../support/fixture.js';

const run = promisify(execFile);
const SANDBOX_UID = 1000;

describe('host storage of workspaces', () => {
  const server = withServer('rsbx-sec-storage', { env: { POOL_SIZE: '0' } });
  let id: string;
  let root: string;
  let planted: string;

  beforeAll(async () => {
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    id = acquired.body.id;
    root = join(server.mountDir, server.deploymentId);
    planted = join(server.workspaceDir(id), 'suid-sh');
    const plant = await server.call<{ exitCode: number; stdout: string }>(
      'POST',
      `/v1/sandboxes/${id}/exec`,
      {
        command:
          'cp /bin/bash /workspace/suid-sh && chmod 4755 /workspace/suid-sh && stat -c %a /workspace/suid-sh',
      },
    );
    expect(plant.body).toMatchObject({ exitCode: 0, stdout: '4755\n' });
  });

  it('keeps the deployment root 0700 and root-owned, each workspace 0700 and its sandbox user’s', () => {
    const rootStat = statSync(root);
    expect(rootStat.mode & 0o777).toBe(0o700);
    expect(rootStat.uid).toBe(0);
    const workspace = statSync(server.workspaceDir(id));
    expect(workspace.mode & 0o777).toBe(0o700);
    expect(workspace.uid).toBe(SANDBOX_UID);
    // The planted file is really setuid on disk: what follows is the mount and the modes at work.
    expect(statSync(planted).mode & 0o4000).toBe(0o4000);
  });

  it('mounts the deployment root nosuid,nodev', async () => {
    const mount = await mountAt(root);
    expect(mount, `a mount at ${root}`).toBeDefined();
    expect(mount?.options).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
  });

  it.each([
    ['list the workspaces', ['ls', '/ROOT']],
    ['read a workspace', ['ls', '/WORKSPACE']],
    ['run the planted setuid file', ['/PLANTED', '-p', '-c', 'id -u']],
  ])('refuses another host user who tries to %s', async (_what, argv) => {
    const resolved = argv.map((arg) =>
      arg.replace('/ROOT', root).replace('/WORKSPACE', server.workspaceDir(id)).replace('/PLANTED', planted),
    );
    const attempt = await run('runuser', ['-u', 'nobody', '--', ...resolved]).then(
      () => 'allowed',
      (err: { stderr?: string }) => err.stderr ?? 'refused',
    );
    expect(attempt).toMatch(/Permission denied/);
  });

  it('gives no setuid to root running the planted file', async () => {
    // Without nosuid, bash -p would keep the file owner's uid (1000) as its effective uid.
    const { stdout } = await run(planted, ['-p', '-c', 'id -u']);
    expect(stdout.trim()).toBe('0');
  });
});
