/**
 * The repository (or installed package) root, found by walking up from this module to the folder
 * whose package.json is named "runtime-sandbox". The walk works the same from source (tsx, vitest:
 * server/src/) and from the esbuild bundles (dist/*.mjs), which sit at different depths.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'runtime-sandbox';

let cached: string | undefined;

export function packageRoot(): string {
  cached ??= findPackageRoot(dirname(fileURLToPath(import.meta.url)));
  return cached;
}

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (isOurPackage(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) {
      throw new Error(`no package.json named "${PACKAGE_NAME}" above ${start}`);
    }
  }
}

function isOurPackage(manifest: string): boolean {
  if (!existsSync(manifest)) return false;
  try {
    const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && 'name' in parsed && parsed.name === PACKAGE_NAME;
  } catch {
    return false;
  }
}
