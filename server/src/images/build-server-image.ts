/**
 * What `runtime-sandbox-builder server` does: build the server's own image from the root
 * `Dockerfile`, with the context its `.dockerignore` admits, FROM the local OS image (made first
 * when it is missing), skipped when nothing changed, as for the sandbox images.
 *
 * Behind a TLS-intercepting proxy the build's downloads from the npm registry need its CA: the file
 * NODE_EXTRA_CA_CERTS names (Node's own setting for the CAs to trust besides its own) goes into the
 * context as `extra-ca-certificates.pem`, which the build stages trust and the final image leaves out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { z } from 'zod';
import { packageRoot } from '../package-root.js';
import { DEFAULT_BASE_OS_IMAGE, ensureBaseOsImage } from './base-os-image.js';
import { type AddedFile, readIgnoreFileContext } from './build-context.js';
import { BASE_IMAGE_ARG } from './build-sandbox-images.js';
import type { ProgressLog } from './docker-stream.js';
import { ImageBuildError, messageOf } from './errors.js';
import { buildImage, describeBuildResult, type ImageBuildResult } from './image-builder.js';

/** The `target` that builds the server image; also its image-type label and name (`runtime-sandbox-server`). */
export const SERVER_TARGET = 'server';

/** Where the Dockerfile looks for a proxy's CA certificates (the root `.dockerignore` admits it). */
const EXTRA_CA_CONTEXT_FILE = 'extra-ca-certificates.pem';

const packageJsonSchema = z.object({
  version: z.string(),
  repository: z.union([z.string(), z.object({ url: z.string() })]).optional(),
});

export interface ServerImageRequest {
  /** The name to tag it with (imageNameFor('server', config)). */
  image: string;
  /** Build even when up to date, without Docker's layer cache. */
  force?: boolean;
  /** What every stage starts FROM; default debian:bookworm-slim. */
  baseOsImage?: string;
  /** A PEM file of CA certificates the build's downloads trust besides the usual ones. */
  extraCaFile?: string;
}

export async function buildServerImage(
  docker: Docker,
  request: ServerImageRequest,
  log: ProgressLog,
): Promise<ImageBuildResult> {
  const root = packageRoot();
  const baseOsImage = request.baseOsImage ?? DEFAULT_BASE_OS_IMAGE;
  await ensureBaseOsImage(docker, baseOsImage, log);
  const { version, repository } = readPackageJson(root);
  const added: AddedFile[] =
    request.extraCaFile === undefined
      ? []
      : [{ path: EXTRA_CA_CONTEXT_FILE, content: readExtraCa(request.extraCaFile) }];
  const result = await buildImage(
    docker,
    {
      typeName: SERVER_TARGET,
      image: request.image,
      dockerfileDir: root,
      context: readIgnoreFileContext(root, added),
      buildArgs: {
        [BASE_IMAGE_ARG]: baseOsImage,
        VERSION: version,
        SOURCE: typeof repository === 'string' ? repository : (repository?.url ?? ''),
      },
      parentImage: baseOsImage,
    },
    { force: request.force, log },
  );
  log(describeBuildResult(result));
  return result;
}

function readPackageJson(root: string): z.infer<typeof packageJsonSchema> {
  const path = join(root, 'package.json');
  try {
    return packageJsonSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (error) {
    throw new ImageBuildError(`cannot read the version from ${path}: ${messageOf(error)}`);
  }
}

function readExtraCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ImageBuildError(
      `cannot read the CA certificates ${path} (NODE_EXTRA_CA_CERTS): ${messageOf(error)}`,
    );
  }
}
