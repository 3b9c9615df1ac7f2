/**
 * The sandbox types this server can run: the built-ins plus whatever extension modules register.
 * Each definition is validated once here; everything else works with the parsed `SandboxType`.
 */
import type { ErrorCode } from '@runtime-sandbox/contract';
import { z } from 'zod';
import { type Config, imageNameFor } from '../config/schema.js';
import { BUILTIN_TYPES } from './builtin.js';
import { type SandboxType, type SandboxTypeInput, sandboxTypeSchema } from './definition.js';

/** An acquire or pool call named a type nobody registered. */
export class SandboxTypeNotFoundError extends Error {
  readonly code = 'SANDBOX_TYPE_NOT_FOUND' satisfies ErrorCode;
  readonly details: { type: string; available: string[] };

  constructor(type: string, available: string[]) {
    super(`no sandbox type "${type}" is registered (available: ${available.join(', ') || 'none'})`);
    this.name = 'SandboxTypeNotFoundError';
    this.details = { type, available };
  }
}

/** A definition is invalid or its name is taken; a startup error naming the module at fault. */
export class SandboxTypeDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxTypeDefinitionError';
  }
}

export const BUILTIN_SOURCE = 'built-in';

export class SandboxTypeRegistry {
  private readonly types = new Map<string, { type: SandboxType; source: string }>();

  constructor(private readonly config: Config) {}

  /** Validates and adds a type; `source` (a module path) names the culprit in errors. */
  register(input: SandboxTypeInput, source = BUILTIN_SOURCE): SandboxType {
    const parsed = sandboxTypeSchema.safeParse(input);
    if (!parsed.success) {
      const name = typeof input?.name === 'string' ? ` "${input.name}"` : '';
      throw new SandboxTypeDefinitionError(
        `invalid sandbox type${name} from ${source}:\n${z.prettifyError(parsed.error)}`,
      );
    }
    const type = parsed.data;
    const existing = this.types.get(type.name);
    if (existing) {
      throw new SandboxTypeDefinitionError(
        `sandbox type "${type.name}" from ${source} is already registered by ${existing.source}`,
      );
    }
    this.types.set(type.name, { type, source });
    return type;
  }

  get(name: string): SandboxType | undefined {
    return this.types.get(name)?.type;
  }

  require(name: string): SandboxType {
    const type = this.get(name);
    if (!type) throw new SandboxTypeNotFoundError(name, [...this.types.keys()]);
    return type;
  }

  list(): SandboxType[] {
    return [...this.types.values()].map((entry) => entry.type);
  }

  /** Where a type came from: `built-in` or the extension module's path. */
  sourceOf(name: string): string | undefined {
    return this.types.get(name)?.source;
  }

  imageFor(type: SandboxType): string {
    return type.image ?? imageNameFor(type.name, this.config);
  }

  /**
   * Warm sandboxes to keep: the type's own `poolSize`, else POOL_SIZE for the types named in
   * DEFAULT_SANDBOX_TYPE and none for the rest (as the seed server pre-warms only its defaults).
   */
  poolSizeFor(type: SandboxType): number {
    if (type.poolSize !== undefined) return type.poolSize;
    return this.config.DEFAULT_SANDBOX_TYPE.includes(type.name) ? this.config.POOL_SIZE : 0;
  }
}

/** A registry holding the built-in types. */
export function createRegistry(config: Config): SandboxTypeRegistry {
  const registry = new SandboxTypeRegistry(config);
  for (const type of BUILTIN_TYPES) registry.register(type);
  return registry;
}
