/**
 * What `runtime-sandbox-builder <type|all>` does: pick the registered types to build, build each
 * after what it starts FROM, and report each one. A Dockerfile that declares `ARG BASE_IMAGE`
 * gets the image it should start FROM: the base type gets the OS image (made locally when it
 * cannot be pulled), every other type gets the base type's image, brought up to date first.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type Docker from 'dockerode';
import { packageRoot } from '../package-root.js';
import { baseType } from '../sandbox-types/builtin.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import { DEFAULT_BASE_OS_IMAGE, ensureBaseOsImage } from './base-os-image.js';
import { readBuildContext } from './build-context.js';
import type { ProgressLog } from './docker-stream.js';
import { ImageBuildError, messageOf } from './errors.js';
import { buildImage, describeBuildResult, type ImageBuildResult } from './image-builder.js';

/** The `target` that builds every registered type with a Dockerfile folder. */
export const ALL_TYPES = 'all';

/** The build arg naming the image a Dockerfile starts FROM. */
export const BASE_IMAGE_ARG = 'BASE_IMAGE';

export interface BuildRequest {
  /** A type name, or `all`. */
  target: string;
  /** A Dockerfile folder to build the one type named in `target` from, instead of its own. */
  dockerfilePath?: string;
  /** Build the requested types even when up to date, without Docker's layer cache. */
  force?: boolean;
  /** What the base type starts FROM; default debian:bookworm-slim. */
  baseOsImage?: string;
}

export interface SandboxImageBuilderDeps {
  docker: Docker;
  registry: SandboxTypeRegistry;
  log: ProgressLog;
}

/** Where `node scripts/build.mjs sandboxd` writes the daemon bundle every image carries. */
export function sandboxdBundlePath(): string {
  return join(packageRoot(), 'sandbox-images', 'runtime', 'dist', 'sandboxd.mjs');
}

/** Builds what the request names (and the base image they start FROM); one result per image. */
export async function buildSandboxImages(
  deps: SandboxImageBuilderDeps,
  request: BuildRequest,
): Promise<ImageBuildResult[]> {
  const { docker, registry, log } = deps;
  const requested = typesToBuild(registry, request, log);
  const sandboxdBundle = readSandboxdBundle();
  const baseOsImage = request.baseOsImage ?? DEFAULT_BASE_OS_IMAGE;
  const results = new Map<string, ImageBuildResult>();

  const build = async (
    type: SandboxType,
    dockerfileDir: string,
    force: boolean,
  ): Promise<ImageBuildResult> => {
    const done = results.get(type.name);
    if (done) return done;
    let parentImage: string | undefined;
    if (declaresBaseImageArg(dockerfileDir)) {
      if (type.name === baseType.name) {
        await ensureBaseOsImage(docker, baseOsImage, log);
        parentImage = baseOsImage;
      } else {
        const base = registry.require(baseType.name);
        parentImage = (await build(base, ownDockerfileDir(base), false)).image;
      }
    }
    const result = await buildImage(
      docker,
      {
        typeName: type.name,
        image: registry.imageFor(type),
        dockerfileDir,
        context: readBuildContext(dockerfileDir, sandboxdBundle),
        buildArgs: parentImage === undefined ? {} : { [BASE_IMAGE_ARG]: parentImage },
        parentImage,
      },
      { force, log },
    );
    log(describeBuildResult(result));
    results.set(type.name, result);
    return result;
  };

  for (const { type, dockerfileDir } of requested) await build(type, dockerfileDir, request.force === true);
  return [...results.values()];
}

function typesToBuild(
  registry: SandboxTypeRegistry,
  request: BuildRequest,
  log: ProgressLog,
): Array<{ type: SandboxType; dockerfileDir: string }> {
  if (request.target === ALL_TYPES) {
    if (request.dockerfilePath !== undefined) {
      throw new ImageBuildError(`a Dockerfile path applies to one type, not to "${ALL_TYPES}"`);
    }
    return registry.list().flatMap((type) => {
      if (type.dockerfileDir !== undefined) return [{ type, dockerfileDir: type.dockerfileDir }];
      log(`[${type.name}] no Dockerfile folder: runs ${registry.imageFor(type)} as it is`);
      return [];
    });
  }
  const type = registry.require(request.target);
  const dockerfileDir =
    request.dockerfilePath === undefined ? ownDockerfileDir(type) : resolve(request.dockerfilePath);
  return [{ type, dockerfileDir }];
}

function ownDockerfileDir(type: SandboxType): string {
  if (type.dockerfileDir === undefined) {
    throw new ImageBuildError(
      `sandbox type "${type.name}" has no Dockerfile folder (dockerfileDir) to build; ` +
        'give it one, or name a folder to build it from',
    );
  }
  return type.dockerfileDir;
}

function readSandboxdBundle(): Buffer {
  const path = sandboxdBundlePath();
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ImageBuildError(
      `cannot read the sandboxd bundle ${path} (${messageOf(error)}); make it with ` +
        '`node scripts/build.mjs sandboxd` or `npm run build`',
    );
  }
}

/** Whether the Dockerfile takes the image to start FROM as `ARG BASE_IMAGE`. */
function declaresBaseImageArg(dockerfileDir: string): boolean {
  let text: string;
  try {
    text = readFileSync(join(dockerfileDir, 'Dockerfile'), 'utf8');
  } catch {
    return false; // reading the build context reports the missing Dockerfile clearly
  }
  return new RegExp(`^\\s*ARG\\s+${BASE_IMAGE_ARG}(\\s|=|$)`, 'm').test(text);
}
