/**
 * The README's walkthroughs run as written: its curl block and its SDK example are taken from the
 * README itself and run against a real server, so the README cannot drift from the product. Its
 * benchmark figures are those of the committed bench/results.json.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchSection, sectionOf } from '../bench/readme-table.js';
import { readResults } from '../bench/results.js';
import { packageRoot } from '../server/src/package-root.js';
import { containersOf, eventually } from '../support/server-process.js';
import { testDeploymentId, withServer } from './support/fixture.js';
import { expectCurlWalkthrough, readmeBlock, runCommand } from './support/readme.js';

const DEPLOYMENT = testDeploymentId('readme-test');
const root = packageRoot();

describe('README benchmark figures', () => {
  it('are those of bench/results.json (scripts/bench-table.ts writes them)', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(sectionOf(readme)).toBe(benchSection(readResults()));
  });
});

describe('README walkthroughs', () => {
  const server = withServer('readme-test', { ports: 40, env: { POOL_SIZE: '1' }, warm: 1 });
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(root, 'test', '.readme-'));
  });

  /** Released means gone: no claimed record, and no container beyond the warm pool's one. */
  async function expectNoClaimedSandbox(): Promise<void> {
    const { body } = await server.call<{ sandboxes: unknown[] }>('GET', '/v1/sandboxes?status=claimed');
    expect(body.sandboxes).toEqual([]);
    // Only the refilled warm sandbox remains.
    await eventually('the released container to be removed', async () =>
      (await containersOf(DEPLOYMENT)).length === 1 ? true : undefined,
    );
  }

  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('the curl walkthrough acquires, runs, writes, reads, streams and releases', async () => {
    await expectCurlWalkthrough(server.url);
    await expectNoClaimedSandbox();
  });

  it('the SDK example streams a command, writes and reads a file, and releases the sandbox', async () => {
    // Inside the repository, so that `@runtime-sandbox/client` resolves as it does for a user here.
    const file = join(scratch, 'example.mts');
    writeFileSync(file, readmeBlock('sdk'));
    const { code, out } = await runCommand(process.execPath, ['--import', 'tsx', file], {
      RUNTIME_SANDBOX_URL: server.url,
    });
    expect(out).toContain('hello 1\nhello 2\nhello 3\n');
    expect(out).toContain('exit code 0');
    expect(out).toContain('- ship it');
    expect(code).toBe(0);
    await expectNoClaimedSandbox();
  });
});
