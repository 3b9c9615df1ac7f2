/**
 * The compute backends the v1 behaviour suites run on: Docker (the engine on this machine) and
 * Kubernetes (pods on a fake API server, fake-kube/, whose node agent runs each pod as a Docker
 * container). A suite asks a `SandboxBackend` what its sandboxes left behind (containers or pods,
 * workspace storage) without knowing which backend made them, and runs once per backend:
 *
 *   describe.each(BACKENDS)('reaping on %s', (name) => {
 *     const backend = withBackend(name);
 *     const server = withServer(`h5-test-reaping-${name}`, { env: () => ({ ...backend.settings(), ... }) });
 *   });
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SANDBOXD_ENV, SANDBOXD_PORT } from '@runtime-sandbox/contract';
import { LABELS } from '../../server/src/deployers/deployer.js';
import { POD_LABELS } from '../../server/src/deployers/kubernetes-objects.js';
import { dockerExec } from '../../support/sandboxd-container.js';
import { containersOf, docker, type ServerProcess } from '../../support/server-process.js';
import { manifestAuthorization } from './deploy-rbac.js';
import type { FakeKube } from './fake-kube/index.js';
import type { Pod } from './fake-kube/pod-schema.js';
import { kubernetesSettings, withFakeKube } from './fixture.js';

export const BACKENDS = ['docker', 'k8s'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** What a test may dial to reach a sandbox's sandboxd itself, past the server. */
export interface DirectAccess {
  /** The token sandboxd was started with (SANDBOXD_TOKEN), valid until its claim's /init. */
  bootToken: string;
  /** sandboxd's base URL from this machine. */
  url: string;
}

export interface SandboxBackend {
  readonly name: BackendName;
  /** Whether sandboxes take host ports from PORT_RANGE (Docker's published ports). */
  readonly usesHostPorts: boolean;
  /** The settings a server needs to run its sandboxes here. */
  settings(): Record<string, string>;
  /** The ids of `server`'s sandboxes that have a container or pod now, running or not. */
  sandboxIds(server: ServerProcess): Promise<string[]>;
  /**
   * Whether sandbox `id` still has workspace storage: on Docker its host dir; on Kubernetes its
   * pod's emptyDir, which exists exactly as long as the pod.
   */
  hasWorkspace(server: ServerProcess, id: string): Promise<boolean>;
  /**
   * Whether `path` (relative to /workspace) is in sandbox `id`'s workspace storage, seen from
   * outside sandboxd: on Docker in the host dir; on Kubernetes in the pod's /workspace volume.
   */
  workspaceHolds(server: ServerProcess, id: string, path: string): Promise<boolean>;
  /** Kills sandbox `id`'s container behind the server's back, as a crash of its process would. */
  crash(server: ServerProcess, id: string): Promise<void>;
  /** Where sandbox `id`'s sandboxd listens and the token it booted with. */
  directAccess(server: ServerProcess, id: string): Promise<DirectAccess>;
}

/** The namespace of the fake's sandbox pods: restricted, as a real sandbox namespace should be. */
const NAMESPACE = 'sandboxes';

/** The backend `name`; register it in a describe before the servers that use it, so they stop first. */
export function withBackend(name: BackendName): SandboxBackend {
  return name === 'docker' ? dockerBackend : kubernetesBackend(withFakeKube(FAKE_OPTIONS));
}

/** Its API refuses what deploy/kubernetes/rbac.yaml does not grant the server. */
const FAKE_OPTIONS = {
  namespaces: { [NAMESPACE]: { podSecurity: 'restricted' as const } },
  authorization: manifestAuthorization(NAMESPACE),
};

const dockerBackend: SandboxBackend = {
  name: 'docker',
  usesHostPorts: true,
  settings: () => ({}),
  async sandboxIds(server) {
    return idsOf((await containersOf(server.deploymentId)).map((c) => c.Labels[LABELS.sandboxId]));
  },
  async hasWorkspace(server, id) {
    return existsSync(server.workspaceDir(id));
  },
  async workspaceHolds(server, id, path) {
    return existsSync(join(server.workspaceDir(id), path));
  },
  async crash(server, id) {
    await docker.getContainer(await dockerContainerOf(server, id)).kill();
  },
  async directAccess(server, id) {
    const inspected = await docker.getContainer(await dockerContainerOf(server, id)).inspect();
    const hostPort = inspected.NetworkSettings.Ports[`${SANDBOXD_PORT}/tcp`]?.[0]?.HostPort;
    if (!hostPort) throw new Error(`sandbox ${id} publishes no port`);
    return { bootToken: envOf(inspected.Config.Env, id), url: `http://127.0.0.1:${hostPort}` };
  },
};

function kubernetesBackend(fake: FakeKube): SandboxBackend {
  const podsOf = (id: string): Pod[] =>
    fake.pods(NAMESPACE).filter((pod) => pod.metadata.annotations?.[POD_LABELS.sandboxId] === id);
  const podOf = (id: string): Pod => {
    const [pod] = podsOf(id);
    if (!pod) throw new Error(`no pod for sandbox ${id}`);
    return pod;
  };
  const containerOf = (id: string): string => {
    const pod = podOf(id);
    const container = fake.containerIdOf(pod.metadata.name, NAMESPACE);
    if (!container) throw new Error(`pod ${pod.metadata.name} has no container`);
    return container;
  };
  return {
    name: 'k8s',
    usesHostPorts: false,
    settings: () => kubernetesSettings(fake, NAMESPACE),
    // One fake per suite: every pod in its namespace is the suite's server's.
    async sandboxIds() {
      return idsOf(fake.pods(NAMESPACE).map((pod) => pod.metadata.annotations?.[POD_LABELS.sandboxId]));
    },
    async hasWorkspace(_, id) {
      return podsOf(id).length > 0;
    },
    async workspaceHolds(_, id, path) {
      // The emptyDir is a tmpfs of the pod's container, which Docker's archive API cannot see into.
      const looked = await dockerExec(docker.getContainer(containerOf(id)), [
        'test',
        '-e',
        `/workspace/${path}`,
      ]);
      return looked.exitCode === 0;
    },
    async crash(_, id) {
      await docker.getContainer(containerOf(id)).kill();
    },
    async directAccess(_, id) {
      const pod = podOf(id);
      const env = pod.spec.containers.flatMap((c) => c.env ?? []).map((e) => `${e.name}=${e.value ?? ''}`);
      if (!pod.status.podIP) throw new Error(`pod ${pod.metadata.name} has no IP`);
      return { bootToken: envOf(env, id), url: `http://${pod.status.podIP}:${SANDBOXD_PORT}` };
    },
  };
}

async function dockerContainerOf(server: ServerProcess, id: string): Promise<string> {
  const [container] = (await containersOf(server.deploymentId)).filter(
    (c) => c.Labels[LABELS.sandboxId] === id,
  );
  if (!container) throw new Error(`no container for sandbox ${id}`);
  return container.Id;
}

function envOf(env: string[], id: string): string {
  const prefix = `${SANDBOXD_ENV.bootToken}=`;
  const token = env.find((e) => e.startsWith(prefix))?.slice(prefix.length);
  if (!token) throw new Error(`sandbox ${id} was started without ${SANDBOXD_ENV.bootToken}`);
  return token;
}

function idsOf(labels: Array<string | undefined>): string[] {
  return labels.filter((id): id is string => id !== undefined).sort();
}
