/**
 * The image names the tests and benchmarks run, from the same RUNTIME_SANDBOX_REGISTRY /
 * _IMAGE_NAMESPACE / _IMAGE_TAG settings the server and the global setup's build read (defaults
 * when unset), so a checkout can test under its own tag (`RUNTIME_SANDBOX_IMAGE_TAG=mine npx vitest
 * run ...`) without overwriting the images another checkout tests on the same engine.
 */
import { z } from 'zod';
import { configSchema, imageNameFor } from '../server/src/config/schema.js';

/** The image naming settings from this process's environment, defaults filled in. */
export const IMAGE_SETTINGS = z
  .object({
    RUNTIME_SANDBOX_REGISTRY: configSchema.shape.RUNTIME_SANDBOX_REGISTRY,
    RUNTIME_SANDBOX_IMAGE_NAMESPACE: configSchema.shape.RUNTIME_SANDBOX_IMAGE_NAMESPACE,
    RUNTIME_SANDBOX_IMAGE_TAG: configSchema.shape.RUNTIME_SANDBOX_IMAGE_TAG,
  })
  .parse(process.env);

/** The settings as env for a server process the tests start. */
export const IMAGE_ENV: Record<string, string> = { ...IMAGE_SETTINGS };

/** The built-in (or extension) type's image as the builder names it. */
export function testImage(type: string): string {
  return imageNameFor(type, IMAGE_SETTINGS);
}

export const BASE_IMAGE = testImage('base');
