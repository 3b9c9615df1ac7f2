/**
 * `runtime-sandbox-builder <type|all|server>`: builds sandbox type images, or the server's own
 * image, on the local Docker engine. Build steps and one closing line per image go to stderr; any
 * failure ends with exit code 1 and a one-line reason.
 */
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { loadConfig } from '../config/load.js';
import { imageNameFor } from '../config/schema.js';
import { DEFAULT_BASE_OS_IMAGE } from '../images/base-os-image.js';
import { ALL_TYPES, buildSandboxImages } from '../images/build-sandbox-images.js';
import { buildServerImage, SERVER_TARGET } from '../images/build-server-image.js';
import { messageOf } from '../images/errors.js';
import { ensureDockerAnswers } from '../images/local-images.js';
import { pushImages } from '../images/push-images.js';
import { loadExtensions } from '../sandbox-types/extensions.js';
import { createRegistry } from '../sandbox-types/registry.js';

const USAGE = `Usage: runtime-sandbox-builder <type|${ALL_TYPES}|${SERVER_TARGET}> [options]

Builds the Docker image of a sandbox type, or of every registered type with a Dockerfile folder
("${ALL_TYPES}"), on the local Docker engine. A type whose image already matches its Dockerfile folder,
the sandboxd bundle and its base image is left alone ("up to date").

"${SERVER_TARGET}" builds the server's own image (runtime-sandbox/runtime-sandbox-server:latest on
the default RUNTIME_SANDBOX_* settings) from the root Dockerfile and the context its .dockerignore
admits, FROM the base image below; up to date when none of them changed. Behind a TLS-intercepting
proxy, the build's downloads trust the CA file NODE_EXTRA_CA_CERTS names.

Options:
  --dockerfile-path DIR  build the named type from this Dockerfile folder instead of its own
  --extension MODULE     load an extension module that registers sandbox types (repeatable)
  --config FILE.env      settings file (RUNTIME_SANDBOX_REGISTRY, _IMAGE_NAMESPACE, _IMAGE_TAG,
                         DOCKER_SOCKET); the environment wins over it
  --base-image IMAGE     what the base type (or the server image) starts FROM (default
                         ${DEFAULT_BASE_OS_IMAGE}, made with debootstrap when it is missing and
                         cannot be pulled)
  --force                build even when up to date, without Docker's layer cache
  --push                 then push the images to RUNTIME_SANDBOX_REGISTRY (credentials, if it
                         needs them: RUNTIME_SANDBOX_REGISTRY_USERNAME and _PASSWORD)
  -h, --help             show this help
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) {
    throw new UsageError(
      `expected one type name, "${ALL_TYPES}" or "${SERVER_TARGET}", got ${positionals.length} arguments`,
    );
  }

  const config = loadConfig({ configFile: values.config });
  const registry = createRegistry(config);
  await loadExtensions(registry, values.extension ?? []);
  const docker = new Docker({ socketPath: config.DOCKER_SOCKET });
  await ensureDockerAnswers(docker, config.DOCKER_SOCKET);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (values.push && config.RUNTIME_SANDBOX_REGISTRY === '') {
    throw new UsageError('--push needs RUNTIME_SANDBOX_REGISTRY, the registry to push the images to');
  }
  let results: Array<{ image: string }>;
  if (target === SERVER_TARGET) {
    if (values['dockerfile-path'] !== undefined || registry.get(SERVER_TARGET) !== undefined) {
      throw new UsageError(
        `"${SERVER_TARGET}" is the server image: it takes no --dockerfile-path, and no sandbox type may share its name`,
      );
    }
    const server = await buildServerImage(
      docker,
      {
        image: imageNameFor(SERVER_TARGET, config),
        force: values.force,
        baseOsImage: values['base-image'],
        extraCaFile: process.env.NODE_EXTRA_CA_CERTS || undefined,
      },
      log,
    );
    results = [server];
  } else {
    results = await buildSandboxImages(
      { docker, registry, log },
      {
        target,
        dockerfilePath: values['dockerfile-path'],
        force: values.force,
        baseOsImage: values['base-image'],
      },
    );
  }
  if (!values.push) return;
  const { RUNTIME_SANDBOX_REGISTRY_USERNAME: username, RUNTIME_SANDBOX_REGISTRY_PASSWORD: password } = config;
  await pushImages(
    docker,
    results.map((result) => result.image),
    {
      registry: config.RUNTIME_SANDBOX_REGISTRY,
      login: username !== undefined && password !== undefined ? { username, password } : undefined,
      log,
    },
  );
}

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'dockerfile-path': { type: 'string' },
        extension: { type: 'string', multiple: true },
        config: { type: 'string' },
        'base-image': { type: 'string' },
        force: { type: 'boolean' },
        push: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const usage = error instanceof UsageError ? `\n\n${USAGE}` : '';
  process.stderr.write(`runtime-sandbox-builder: ${messageOf(error)}${usage}\n`);
  process.exitCode = 1;
});
