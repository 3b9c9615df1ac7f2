/**
 * Round trips through a server's data plane, as a deployer's end-to-end tests run them: exec as
 * JSON and as an NDJSON stream; a file put and read back, its folder taken out as a tar and put
 * back elsewhere.
 */
import { expect } from 'vitest';
import type { ServerProcess } from '../../support/server-process.js';

/** Writes `notes/today.txt`, archives `notes` and unpacks it into `copy`; `base` is `/v1/sandboxes/<id>`. */
export async function expectFileAndArchiveRoundTrip(
  server: ServerProcess,
  base: string,
  content: string,
): Promise<void> {
  const put = await server.fetch(`${base}/files?path=notes/today.txt`, { method: 'PUT', body: content });
  expect(put.status).toBe(200);
  expect(await (await server.fetch(`${base}/files?path=notes/today.txt`)).text()).toBe(content);
  const tar = Buffer.from(await (await server.fetch(`${base}/archive?path=notes`)).arrayBuffer());
  const into = await server.fetch(`${base}/archive?path=copy`, {
    method: 'PUT',
    headers: { 'content-type': 'application/x-tar' },
    body: tar,
  });
  expect(into.status).toBe(200);
  expect(await (await server.fetch(`${base}/files?path=copy/today.txt`)).text()).toBe(content);
}

/** `command` prints `expected`; an NDJSON exec streams stdout and stderr and ends with the exit. */
export async function expectExecRoundTrip(
  server: ServerProcess,
  base: string,
  command: string,
  expected: string,
): Promise<void> {
  const exec = await server.call('POST', `${base}/exec`, { command });
  expect(exec).toMatchObject({ status: 200, body: { exitCode: 0, stdout: expected } });
  const stream = await server.fetch(`${base}/exec`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ command: 'echo one; echo two >&2' }),
  });
  expect(stream.headers.get('content-type')).toContain('application/x-ndjson');
  const events = (await stream.text())
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; data?: string; exitCode?: number });
  expect(events).toContainEqual({ type: 'stdout', data: 'one\n' });
  expect(events).toContainEqual({ type: 'stderr', data: 'two\n' });
  expect(events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 });
}
