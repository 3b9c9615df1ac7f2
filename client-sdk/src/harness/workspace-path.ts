/**
 * Confinement of tool paths, checked in the client before any call so a model's `../../etc/passwd`
 * fails with a clear message; sandboxd enforces the same rule again, symlinks included.
 */
import { ValidationError } from '../errors.js';

/**
 * `path` as a clean path relative to the workspace root (`.` for the root itself). Relative paths
 * are taken from the root; absolute ones must lie under `workspaceRoot` (refused when it is not
 * known). `..` may not climb above the root. Throws ValidationError, code PATH_OUTSIDE_WORKSPACE.
 */
export function confinePath(path: string, workspaceRoot: string | undefined): string {
  let relative = path;
  if (path.startsWith('/')) {
    const root = workspaceRoot?.replace(/\/+$/, '');
    if (root === undefined || !(path === root || path.startsWith(`${root}/`))) {
      throw outside(path, workspaceRoot);
    }
    relative = path.slice(root.length);
  }
  if (relative.includes('\0')) throw outside(path, workspaceRoot);
  const parts: string[] = [];
  for (const part of relative.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw outside(path, workspaceRoot);
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Whether a clean relative path is `directory` or lies under it. */
export function isWithin(path: string, directory: string): boolean {
  return path === directory || path.startsWith(`${directory}/`);
}

function outside(path: string, workspaceRoot: string | undefined): ValidationError {
  return new ValidationError({
    code: 'PATH_OUTSIDE_WORKSPACE',
    message: `${JSON.stringify(path)} is outside the workspace${workspaceRoot ? ` (${workspaceRoot})` : ''}; use a path relative to it`,
    details: { path },
  });
}
