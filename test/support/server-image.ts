/** The server image the container tests run, built by `runtime-sandbox-builder server` from source. */
import { join } from 'node:path';
import { expect } from 'vitest';
import { packageRoot } from '../../server/src/package-root.js';
import { IMAGE_ENV, testImage } from '../../support/images.js';
import { TSX_ARGS } from '../../support/tsx.js';
import { runCommand } from './readme.js';

export const SERVER_IMAGE = testImage('server');

/** Builds the server image (skipped when up to date); what the builder did and how long it took. */
export async function buildServerImage(): Promise<{ status: 'built' | 'up to date'; ms: number }> {
  const started = Date.now();
  const run = await runCommand(
    process.execPath,
    [...TSX_ARGS, join(packageRoot(), 'server/src/cli/builder.ts'), 'server'],
    IMAGE_ENV,
  );
  const ms = Date.now() - started;
  if (run.code !== 0) throw new Error(`the builder failed (exit ${run.code}):\n${run.out.slice(-4000)}`);
  if (run.out.includes(`[server] up to date: ${SERVER_IMAGE}`)) return { status: 'up to date', ms };
  expect(run.out).toContain(`[server] built ${SERVER_IMAGE}`);
  return { status: 'built', ms };
}
