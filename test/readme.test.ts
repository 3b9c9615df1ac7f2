/**
 * The README's walkthroughs run as written: its curl block and its SDK example are taken from the
 * README itself and run against a real server, so the README cannot drift from the product. Its
 * benchmark figures are those of the committed bench/results.json.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchSection, sectionOf } from '../bench/readme-table.js';
import { readResults } from '../bench/results.js';
import { packageRoot } from '../server/src/package-root.js';
import { containersOf, eventually } from '../support/server-process.js';
import { testDeploymentId, withServer } from './support/fixture.js';

const DEPLOYMENT = testDeploymentId('readme-test');
const root = packageRoot();

/** The fenced block right after `<!-- readme-test: NAME -->`. */
function readmeBlock(name: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const match = readme.match(
    new RegExp(`<!-- readme-test: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``),
  );
  if (!match?.[1]) throw new Error(`README.md has no block marked readme-test: ${name}`);
  return match[1];
}

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

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
    const { code, out } = await run('bash', ['-euo', 'pipefail', '-c', readmeBlock('curl')], {
      RUNTIME_SANDBOX_URL: server.url,
    });
    expect(out).toContain('hello from sandbox in /workspace');
    expect(out).toContain('hi there');
    expect(out).toMatch(/"type":"stdout","data":"1\\n"[\s\S]*"type":"exit","exitCode":0/);
    expect(out.trim().endsWith('204') || out.trim().endsWith('200')).toBe(true);
    expect(code).toBe(0);
    await expectNoClaimedSandbox();
  });

  it('the SDK example streams a command, writes and reads a file, and releases the sandbox', async () => {
    // Inside the repository, so that `@runtime-sandbox/client` resolves as it does for a user here.
    const file = join(scratch, 'example.mts');
    writeFileSync(file, readmeBlock('sdk'));
    const { code, out } = await run(process.execPath, ['--import', 'tsx', file], {
      RUNTIME_SANDBOX_URL: server.url,
    });
    expect(out).toContain('hello 1\nhello 2\nhello 3\n');
    expect(out).toContain('exit code 0');
    expect(out).toContain('- ship it');
    expect(code).toBe(0);
    await expectNoClaimedSandbox();
  });
});
