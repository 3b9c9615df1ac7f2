/** The README's marked blocks, run as written (test/readme.test.ts, test/images/server-image.test.ts). */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { packageRoot } from '../../server/src/package-root.js';

const root = packageRoot();

/** The fenced block right after `<!-- readme-test: NAME -->`. */
export function readmeBlock(name: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const match = readme.match(
    new RegExp(`<!-- readme-test: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\\n\`\`\``),
  );
  if (!match?.[1]) throw new Error(`README.md has no block marked readme-test: ${name}`);
  return match[1];
}

export interface CommandRun {
  code: number | null;
  /** stdout and stderr, interleaved. */
  out: string;
}

/** Runs a command in the repository to its end, with `env` over this process's environment. */
export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<CommandRun> {
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

/** Runs a README shell block with bash, failing on the first failed command. */
export function runReadmeShell(name: string, env: Record<string, string>): Promise<CommandRun> {
  return runCommand('bash', ['-euo', 'pipefail', '-c', readmeBlock(name)], env);
}

/**
 * The curl walkthrough against the server at `url`: acquired, ran, wrote, read, streamed, released.
 * `env` goes to the shell too (e.g. a CURL_HOME whose .curlrc sends the bearer token).
 */
export async function expectCurlWalkthrough(
  url: string,
  env: Record<string, string> = {},
): Promise<CommandRun> {
  const run = await runReadmeShell('curl', { ...env, RUNTIME_SANDBOX_URL: url });
  expect(run.out).toContain('hello from sandbox in /workspace');
  expect(run.out).toContain('hi there');
  expect(run.out).toMatch(/"type":"stdout","data":"1\\n"[\s\S]*"type":"exit","exitCode":0/);
  expect(run.out.trim().endsWith('204') || run.out.trim().endsWith('200')).toBe(true);
  expect(run.code).toBe(0);
  return run;
}
