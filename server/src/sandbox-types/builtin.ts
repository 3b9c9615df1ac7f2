/** The sandbox types every server knows without extensions. */
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import { defineSandboxType, type SandboxTypeInput } from './definition.js';

/** A shell, Node and the usual tools, as the unprivileged `sandbox` user; sandboxd on 49983. */
export const baseType = defineSandboxType({
  name: 'base',
  description: 'Debian with a shell, Node.js and common command-line tools',
  dockerfileDir: join(packageRoot(), 'sandbox-images', 'base'),
});

export const BUILTIN_TYPES: readonly SandboxTypeInput[] = [baseType];
