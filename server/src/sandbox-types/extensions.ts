/**
 * Extension modules add sandbox types (`--extension MODULE`). A module's default export is a type
 * definition, an array of them, or a function `(api) => void | Promise<void>` that calls
 * `api.registerSandboxType(def)`. A definition's `dockerfileDir` is relative to the module's folder.
 * TypeScript modules work without a build: tsx's loader is registered the first time one is seen.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { messageOf } from '../errors.js';
import type { SandboxType, SandboxTypeInput } from './definition.js';
import { SandboxTypeDefinitionError, type SandboxTypeRegistry } from './registry.js';

/** What a function-style extension receives. */
export interface ExtensionApi {
  registerSandboxType(definition: SandboxTypeInput): SandboxType;
}

/** A module could not be found, failed to load, or exported nothing usable. */
export class ExtensionLoadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ExtensionLoadError';
  }
}

const TYPESCRIPT_FILE = /\.[cm]?tsx?$/;
const SCRIPT_FILE = /\.[cm]?[jt]sx?$/;

let tsLoader: Promise<void> | undefined;

/** Loads each module in order; the first failure stops the start with an error naming the module. */
export async function loadExtensions(
  registry: SandboxTypeRegistry,
  modules: string[],
  cwd = process.cwd(),
): Promise<void> {
  for (const specifier of modules) await loadExtension(registry, specifier, cwd);
}

async function loadExtension(registry: SandboxTypeRegistry, specifier: string, cwd: string): Promise<void> {
  const file = resolveModuleFile(specifier, cwd);
  const named = file === specifier ? `extension ${file}` : `extension ${specifier} (${file})`;
  if (TYPESCRIPT_FILE.test(file)) await registerTsLoader();

  let namespace: { default?: unknown };
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (error) {
    throw new ExtensionLoadError(`${named} failed to load: ${messageOf(error)}`, { cause: error });
  }

  const source = `extension ${specifier}`;
  const moduleDir = dirname(file);
  const register = (definition: SandboxTypeInput): SandboxType =>
    registry.register(withResolvedDockerfileDir(definition, moduleDir), source);

  const exported = namespace.default;
  if (typeof exported === 'function') {
    const api: ExtensionApi = { registerSandboxType: register };
    try {
      await exported(api);
    } catch (error) {
      if (error instanceof SandboxTypeDefinitionError) throw error; // it names the module already
      throw new ExtensionLoadError(`${named} failed while registering: ${messageOf(error)}`, {
        cause: error,
      });
    }
  } else if (Array.isArray(exported) && exported.length > 0) {
    for (const definition of exported) register(definition);
  } else if (typeof exported === 'object' && exported !== null && !Array.isArray(exported)) {
    register(exported as SandboxTypeInput);
  } else {
    throw new ExtensionLoadError(
      `${named} exports nothing usable: its default export must be a sandbox type ` +
        'definition (defineSandboxType), a non-empty array of them, or a function (api) => void ' +
        'calling api.registerSandboxType',
    );
  }
}

/** A path relative to `cwd` or absolute, else a package name resolved from `cwd`'s node_modules. */
function resolveModuleFile(specifier: string, cwd: string): string {
  const asPath = resolve(cwd, specifier);
  if (existsSync(asPath)) return asPath;
  if (isAbsolute(specifier) || specifier.startsWith('.') || SCRIPT_FILE.test(specifier)) {
    throw new ExtensionLoadError(`extension ${specifier}: no such file ${asPath}`);
  }
  try {
    return createRequire(resolve(cwd, 'package.json')).resolve(specifier);
  } catch (error) {
    throw new ExtensionLoadError(
      `extension ${specifier}: neither a file nor a package found from ${cwd}: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

/** Registers the definition as given (the registry validates it), with dockerfileDir made absolute. */
function withResolvedDockerfileDir(definition: SandboxTypeInput, moduleDir: string): SandboxTypeInput {
  if (typeof definition !== 'object' || definition === null || typeof definition.dockerfileDir !== 'string') {
    return definition;
  }
  return { ...definition, dockerfileDir: resolve(moduleDir, definition.dockerfileDir) };
}

function registerTsLoader(): Promise<void> {
  tsLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return tsLoader;
}
