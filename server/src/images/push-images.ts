/**
 * `runtime-sandbox-builder --push`: sends built images to the registry their names carry
 * (RUNTIME_SANDBOX_REGISTRY), where a cluster pulls them from. Credentials, when the registry
 * wants them, are RUNTIME_SANDBOX_REGISTRY_USERNAME and _PASSWORD.
 */
import type Docker from 'dockerode';
import { followStatusStream, type ProgressLog } from './docker-stream.js';
import { ImageBuildError } from './errors.js';

export interface RegistryLogin {
  username: string;
  password: string;
}

export async function pushImages(
  docker: Docker,
  images: readonly string[],
  options: { registry: string; login?: RegistryLogin; log: ProgressLog },
): Promise<void> {
  for (const image of images) {
    const started = Date.now();
    // The engine wants an auth header on every push, empty for a registry without logins.
    const authconfig = { serveraddress: options.registry, ...options.login };
    const stream = await docker.getImage(image).push({ authconfig });
    await followStatusStream(stream, options.log).catch((error: unknown) => {
      throw new ImageBuildError(
        `pushing ${image} failed: ${error instanceof Error ? error.message : error}`,
        {
          cause: error,
        },
      );
    });
    options.log(`[push] ${image} pushed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
}
