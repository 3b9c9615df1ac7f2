/**
 * Builds one image (a sandbox type's, or the server's) with the classic builder (BuildKit may be
 * missing on these engines), unless an image of that name already carries the same content hash:
 * then it is up to date and nothing runs. The hash covers the build context, the build args and the
 * id of the parent image, so a new base image rebuilds its children.
 */
import type Docker from 'dockerode';
import { type ContextEntry, contentHashOf, packBuildContext } from './build-context.js';
import { followDockerStream, lineSplitter, type ProgressLog } from './docker-stream.js';
import { ImageBuildError, messageOf } from './errors.js';
import { inspectLocalImage, removeIfDangling } from './local-images.js';

/** Labels on every image the builder makes. (Containers inherit them, so none names a sandbox.) */
export const IMAGE_LABELS = {
  contentHash: 'io.runtime-sandbox.content-hash',
  type: 'io.runtime-sandbox.image-type',
} as const;

export interface ImageBuildTarget {
  /** The sandbox type's name, or `server` (a label on the image, and the prefix of its progress lines). */
  typeName: string;
  /** The name the image is tagged with. */
  image: string;
  /** Absolute path of the folder the context was read from (for the log). */
  dockerfileDir: string;
  /** The build context (build-context.ts), Dockerfile included. */
  context: readonly ContextEntry[];
  buildArgs: Record<string, string>;
  /** The local image the Dockerfile starts FROM (through BASE_IMAGE), when the builder knows it. */
  parentImage?: string;
}

export interface ImageBuildOptions {
  /** Build even when up to date, and without Docker's layer cache (to pick up new packages). */
  force?: boolean;
  log: ProgressLog;
}

export interface ImageBuildResult {
  typeName: string;
  image: string;
  status: 'built' | 'up-to-date';
  imageId: string;
  contentHash: string;
  durationMs: number;
}

export async function buildImage(
  docker: Docker,
  target: ImageBuildTarget,
  options: ImageBuildOptions,
): Promise<ImageBuildResult> {
  const started = Date.now();
  const entries = target.context;
  const parentImageId =
    target.parentImage === undefined ? '' : await localImageId(docker, target.parentImage);
  const contentHash = contentHashOf(entries, target.buildArgs, parentImageId);
  const result = (status: ImageBuildResult['status'], imageId: string): ImageBuildResult => ({
    typeName: target.typeName,
    image: target.image,
    status,
    imageId,
    contentHash,
    durationMs: Date.now() - started,
  });

  const existing = await inspectLocalImage(docker, target.image);
  if (!options.force && existing?.Config.Labels?.[IMAGE_LABELS.contentHash] === contentHash) {
    return result('up-to-date', existing.Id);
  }

  const log = (line: string): void => options.log(`[${target.typeName}] ${line}`);
  log(`building ${target.image} from ${target.dockerfileDir}${options.force ? ' (forced, no cache)' : ''}`);
  const output = lineSplitter(log);
  const stream = await docker.buildImage(packBuildContext(entries), {
    t: target.image,
    buildargs: target.buildArgs,
    labels: { [IMAGE_LABELS.contentHash]: contentHash, [IMAGE_LABELS.type]: target.typeName },
    rm: true,
    forcerm: true,
    nocache: options.force === true,
    version: '1',
  });
  try {
    await followDockerStream(stream, (message) => {
      if (message.stream !== undefined) output.write(message.stream);
    });
  } catch (error) {
    output.flush();
    throw new ImageBuildError(`building ${target.image} failed: ${messageOf(error)}`, { cause: error });
  }
  output.flush();

  const built = await localImageId(docker, target.image);
  if (
    existing &&
    existing.Id !== built &&
    (await removeIfDangling(docker, existing.Id, IMAGE_LABELS.contentHash))
  ) {
    log(`removed the image it replaced, ${existing.Id}`);
  }
  return result('built', built);
}

async function localImageId(docker: Docker, image: string): Promise<string> {
  const info = await inspectLocalImage(docker, image);
  if (!info) throw new ImageBuildError(`image ${image} is not there`);
  return info.Id;
}

/** The closing line for one image: what happened, which image, how long it took. */
export function describeBuildResult(result: ImageBuildResult): string {
  const seconds = `${(result.durationMs / 1000).toFixed(1)}s`;
  return result.status === 'built'
    ? `[${result.typeName}] built ${result.image} in ${seconds}`
    : `[${result.typeName}] up to date: ${result.image} (checked in ${seconds})`;
}
