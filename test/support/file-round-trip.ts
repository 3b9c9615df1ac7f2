/**
 * A file and archive round trip through a server's data plane, as a deployer's end-to-end tests
 * run it: a file put and read back, its folder taken out as a tar and put back elsewhere.
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
