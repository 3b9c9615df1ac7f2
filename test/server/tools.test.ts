/**
 * Tools and the Python interpreter through the server over real HTTP: the tool list, both built-ins,
 * POST /python, the interpreter running as the sandbox user, every bad input answered with its
 * 4xx and nothing started by it, and release taking the interpreters with the sandbox.
 */
import type { PythonRunResult, ToolCallResult, ToolList } from '@runtime-sandbox/contract';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../server/src/deployers/deployer.js';
import { docker } from '../../support/sandboxd-container.js';
import { containersOf, eventually } from '../../support/server-process.js';
import { withServer } from '../support/fixture.js';

const TOKEN = 'tools-test-token-0123456789abcdef';

interface ErrorAnswer {
  error: { code: string };
}

describe('tools and Python through the server', () => {
  const server = withServer('h5-test-tools', {
    ports: 10,
    env: { POOL_SIZE: '1', BEARER_TOKEN: TOKEN, MAINTENANCE_INTERVAL_MS: '500' },
    warm: 1,
  });
  let id: string;
  const base = () => `/v1/sandboxes/${id}`;

  /** Command lines of the sandbox's Python interpreters, `uid args`, seen by Docker rather than sandboxd. */
  async function interpreters(): Promise<string[]> {
    const [container] = (await containersOf(server.deploymentId)).filter((c) => isSandbox(c, id));
    if (!container) throw new Error(`no container for sandbox ${id}`);
    const exec = await docker.getContainer(container.Id).exec({
      Cmd: ['ps', '-eo', 'uid=,args='],
      User: '0:0',
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => stream.on('end', resolve));
    return Buffer.concat(chunks)
      .toString('latin1')
      .split('\n')
      .filter((line) => line.includes('python3 -u -c'))
      .map((line) => line.replace(/^[^\d]*/, '').trim());
  }

  it('lists the built-in tools and calls both', async () => {
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    expect(acquired.status).toBe(201);
    id = acquired.body.id;

    const list = await server.call<ToolList>('GET', `${base()}/tools`);
    expect(list.status).toBe(200);
    expect(list.body.tools.map((tool) => tool.name)).toEqual(['run_shell_command', 'run_ipython_cell']);

    const shell = await server.call<ToolCallResult>('POST', `${base()}/tools/run_shell_command`, {
      arguments: { command: 'id -u; exit 4' },
    });
    expect(shell.status).toBe(200);
    expect(shell.body).toMatchObject({ isError: true, structuredContent: { exitCode: 4, stdout: '1000\n' } });

    const cell = await server.call<ToolCallResult>('POST', `${base()}/tools/run_ipython_cell`, {
      arguments: { code: 'import os\nos.getuid()' },
      timeoutMs: 10_000,
    });
    expect(cell.status).toBe(200);
    expect(cell.body.isError).toBe(false);
    expect(cell.body.structuredContent).toMatchObject({ value: '1000', error: null });
  });

  it('runs cells on POST /python that share state with the tool, as the sandbox user', async () => {
    await server.call('POST', `${base()}/python`, { code: 'answer = 41' });
    const result = await server.call<PythonRunResult>('POST', `${base()}/python`, { code: 'answer + 1' });
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({ context: 'default', value: '42', error: null });
    const lines = await interpreters();
    expect(lines.length).toBe(1);
    expect(lines[0]?.split(/\s+/)[0]).toBe('1000');
  });

  it('answers bad input with its 4xx and starts nothing', async () => {
    const before = await interpreters();
    const cases: Array<[string, string, unknown, number, string]> = [
      ['POST', `${base()}/tools/no_such_tool`, { arguments: {} }, 404, 'TOOL_NOT_FOUND'],
      ['POST', `${base()}/tools/${'x'.repeat(200)}`, { arguments: {} }, 404, 'TOOL_NOT_FOUND'],
      [
        'POST',
        `${base()}/tools/run_shell_command`,
        { arguments: { command: 7 } },
        400,
        'INVALID_TOOL_ARGUMENTS',
      ],
      ['POST', `${base()}/tools/run_ipython_cell`, { arguments: {} }, 400, 'INVALID_TOOL_ARGUMENTS'],
      ['POST', `${base()}/tools/run_ipython_cell`, { arguments: [] }, 400, 'VALIDATION_ERROR'],
      ['POST', `${base()}/tools/run_shell_command`, { arguments: {}, extra: 1 }, 400, 'VALIDATION_ERROR'],
      ['POST', `${base()}/python`, { code: '1', context: 'a b' }, 400, 'VALIDATION_ERROR'],
      ['POST', `${base()}/python`, { code: '1', timeoutMs: -1 }, 400, 'VALIDATION_ERROR'],
      ['GET', '/v1/sandboxes/no-such-sandbox/tools', undefined, 404, 'SANDBOX_NOT_FOUND'],
      [
        'POST',
        '/v1/sandboxes/no-such-sandbox/tools/run_shell_command',
        { arguments: { command: 'true' } },
        404,
        'SANDBOX_NOT_FOUND',
      ],
      ['POST', '/v1/sandboxes/no-such-sandbox/python', { code: '1' }, 404, 'SANDBOX_NOT_FOUND'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const answer = await server.call<ErrorAnswer>(method, path, body);
      expect({ path: path.slice(0, 80), status: answer.status, code: answer.body.error?.code }).toEqual({
        path: path.slice(0, 80),
        status,
        code,
      });
    }
    for (const path of [`${base()}/python`, `${base()}/tools/run_ipython_cell`]) {
      const malformed = await server.fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"code": ',
      });
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as ErrorAnswer).error.code).toBe('MALFORMED_JSON');
    }
    expect(await interpreters()).toEqual(before);
  });

  it('takes the interpreters with the sandbox on release', async () => {
    await server.call('POST', `${base()}/python`, { code: '1', context: 'second' });
    expect((await interpreters()).length).toBe(2);
    const released = await server.fetch(base(), { method: 'DELETE' });
    expect(released.status).toBe(204);
    await eventually('the sandbox container is gone', async () =>
      (await containersOf(server.deploymentId)).some((c) => isSandbox(c, id)) ? undefined : true,
    );
    const after = await server.call<ErrorAnswer>('POST', `${base()}/python`, { code: '1' });
    expect(after.status).toBe(404);
  });
});

function isSandbox(container: { Labels?: Record<string, string> }, sandboxId: string): boolean {
  return container.Labels?.[LABELS.sandboxId] === sandboxId;
}
