/**
 * The server side of the suite's benchmarks: a server CLI of the benchmark's own deployment, with
 * a client SDK on it, whose sandboxes are all removed afterwards, failure or not; and the Docker
 * container behind one of its sandboxes, for the engine's own APIs as the baseline.
 */
import type Docker from 'dockerode';
import { SandboxClient } from '../client-sdk/src/index.js';
import { LABELS } from '../server/src/deployers/deployer.js';
import {
  containersOf,
  docker,
  removeContainersOf,
  requireImage,
  type ServerProcess,
  type ServerProcessOptions,
  startServerProcess,
} from '../support/server-process.js';

/** Label (value: the benchmark) on containers a benchmark makes itself, outside any server. */
export const BENCH_LABEL = 'io.runtime-sandbox.bench';

export async function withBenchServer<T>(
  options: ServerProcessOptions & { deploymentId: string },
  work: (server: ServerProcess, client: SandboxClient) => Promise<T>,
): Promise<T> {
  await requireImage();
  // What an interrupted earlier run left behind.
  await removeContainersOf(options.deploymentId);
  const server = await startServerProcess(options);
  try {
    return await work(server, new SandboxClient({ baseUrl: server.url, token: server.token }));
  } finally {
    try {
      await server.stop();
    } finally {
      await removeContainersOf(options.deploymentId);
    }
  }
}

/** The container of a sandbox of the deployment, found by its sandbox-id label. */
export async function containerOfSandbox(deploymentId: string, sandboxId: string): Promise<Docker.Container> {
  const found = (await containersOf(deploymentId)).find((c) => c.Labels[LABELS.sandboxId] === sandboxId);
  if (!found) throw new Error(`no container of deployment ${deploymentId} carries sandbox id ${sandboxId}`);
  return docker.getContainer(found.Id);
}

/** Removes the containers a benchmark made itself (BENCH_LABEL=`benchmark`), running or not. */
export async function removeBenchContainers(benchmark: string): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${BENCH_LABEL}=${benchmark}`] },
  });
  for (const container of containers) {
    await docker
      .getContainer(container.Id)
      .remove({ force: true })
      .catch(() => undefined);
  }
}
