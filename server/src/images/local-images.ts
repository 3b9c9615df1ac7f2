/** Small questions to the Docker engine: does it answer, which images does it hold. */
import type Docker from 'dockerode';
import { ImageBuildError, messageOf } from './errors.js';

const PING_TIMEOUT_MS = 5_000;

/** Fails with a message naming the socket when the engine does not answer a ping within seconds. */
export async function ensureDockerAnswers(docker: Docker, socketPath: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PING_TIMEOUT_MS / 1000}s`)),
      PING_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([docker.ping(), timeout]);
  } catch (error) {
    throw new ImageBuildError(
      `the Docker engine at ${socketPath} does not answer (${messageOf(error)}); start it ` +
        '(scripts/bootstrap.sh does) or point DOCKER_SOCKET at it',
    );
  } finally {
    clearTimeout(timer);
  }
}

/** The image's details, or undefined when there is no image by that name or id. */
export async function inspectLocalImage(
  docker: Docker,
  nameOrId: string,
): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(nameOrId).inspect();
  } catch (error) {
    if (statusCodeOf(error) === 404) return undefined;
    throw error;
  }
}

/**
 * Removes an image a rebuild left without a name, if it still carries `label` (so it was ours).
 * One still used by a container or by a child image stays (Docker refuses), and that is fine.
 */
export async function removeIfDangling(docker: Docker, imageId: string, label: string): Promise<boolean> {
  const image = await inspectLocalImage(docker, imageId);
  if (!image || image.Config.Labels?.[label] === undefined) return false;
  const named = (image.RepoTags ?? []).some((tag) => tag !== '<none>:<none>');
  if (named) return false;
  try {
    await docker.getImage(imageId).remove();
    return true;
  } catch (error) {
    const status = statusCodeOf(error);
    if (status === 404 || status === 409) return false;
    throw error;
  }
}

function statusCodeOf(error: unknown): number | undefined {
  return typeof error === 'object' &&
    error !== null &&
    'statusCode' in error &&
    typeof error.statusCode === 'number'
    ? error.statusCode
    : undefined;
}
