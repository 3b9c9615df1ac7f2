/**
 * Sandboxes as Docker containers, locked down: every capability dropped, no-new-privileges, pids,
 * memory (no swap) and CPU limits, a size-capped tmpfs on /tmp, the image's unprivileged user, and
 * no Docker socket. sandboxd is reached on a published host port (PORT_RANGE on
 * SANDBOX_HOST_ADDRESS), or at the container's address on DOCKER_NETWORK when the server itself runs
 * in a container. `create` is one createContainer plus one start; an inspect only when the address
 * on a network is needed.
 */
import Dockerode from 'dockerode';
import { SANDBOXD_ENV, SANDBOXD_PORT } from '../../../sandbox-images/runtime/src/protocol.js';
import type { Config } from '../config/schema.js';
import { messageOf } from '../error-message.js';
import {
  type ContainerSummary,
  type CreateSpec,
  type DeployedSandbox,
  type Deployer,
  type Endpoint,
  LABELS,
  MANAGED_BY_VALUE,
} from './deployer.js';

/** The host port was taken by something else; the caller may retry with another port. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(`host port ${port} is already in use`, options);
    this.name = 'PortInUseError';
  }
}

const SANDBOXD_PORT_KEY = `${SANDBOXD_PORT}/tcp`;
const WORKSPACE = '/workspace';
const MIB = 1024 * 1024;

/** Docker's words for a host port another process or container holds. */
const PORT_TAKEN = /port is already allocated|address already in use/i;

/** Where a sandbox's network comes from: a published host port, or its address on a network. */
type Networking = { kind: 'publish'; hostPort: number } | { kind: 'attach'; network: string };

export class DockerDeployer implements Deployer {
  readonly kind = 'docker';
  private readonly config: Config;
  private readonly docker: Dockerode;
  private isolatedNetwork: Promise<string> | undefined;

  constructor(options: { config: Config; docker?: Dockerode }) {
    this.config = options.config;
    this.docker = options.docker ?? new Dockerode({ socketPath: options.config.DOCKER_SOCKET });
  }

  async create(spec: CreateSpec): Promise<DeployedSandbox> {
    const networking = await this.networkingFor(spec);
    const container = await this.docker.createContainer(this.containerOptions(spec, networking));
    try {
      await container.start();
      if (networking.kind === 'attach') {
        return { handle: container.id, endpoint: await this.addressOn(container, networking.network) };
      }
      return {
        handle: container.id,
        endpoint: { host: this.config.SANDBOX_HOST_ADDRESS, port: networking.hostPort },
      };
    } catch (error) {
      // Nothing leaks: a container that did not come up is removed before the error goes on.
      await this.destroy(container.id).catch(() => undefined);
      if (networking.kind === 'publish' && PORT_TAKEN.test(messageOf(error))) {
        throw new PortInUseError(networking.hostPort, { cause: error });
      }
      throw error;
    }
  }

  async destroy(handle: string): Promise<void> {
    try {
      await this.docker.getContainer(handle).remove({ force: true, v: true });
    } catch (error) {
      // Gone already (404), or another caller is removing it right now (409): either way it goes.
      const status = statusOf(error);
      if (status === 404 || (status === 409 && /already in progress/i.test(messageOf(error)))) return;
      throw error;
    }
  }

  async list(deploymentId: string): Promise<ContainerSummary[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`${LABELS.managedBy}=${MANAGED_BY_VALUE}`, `${LABELS.deployment}=${deploymentId}`],
      },
    });
    return containers.map((c) => ({
      handle: c.Id,
      sandboxId: c.Labels[LABELS.sandboxId],
      deploymentId: c.Labels[LABELS.deployment],
      running: c.State === 'running',
    }));
  }

  async ping(): Promise<void> {
    await this.docker.ping();
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  private containerOptions(spec: CreateSpec, networking: Networking): Dockerode.ContainerCreateOptions {
    const { resources, security } = spec.type;
    const env = {
      ...spec.type.env,
      [SANDBOXD_ENV.bootToken]: spec.bootToken,
      [SANDBOXD_ENV.maxJsonBytes]: String(this.config.MAX_JSON_BYTES),
      [SANDBOXD_ENV.maxUploadBytes]: String(this.config.MAX_UPLOAD_BYTES),
    };
    const binds = spec.readonlyMounts.map((m) => `${m.hostPath}:${m.containerPath}:ro`);
    if (spec.workspaceHostDir !== undefined) binds.unshift(`${spec.workspaceHostDir}:${WORKSPACE}:rw`);

    const hostConfig: Dockerode.HostConfig = {
      NanoCpus: Math.round(resources.cpus * 1e9),
      Memory: resources.memoryMiB * MIB,
      MemorySwap: resources.memoryMiB * MIB,
      PidsLimit: resources.pidsLimit,
      CapDrop: ['ALL'],
      CapAdd: security.capAdd,
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      ReadonlyRootfs: security.readOnlyRootfs,
      // `exec` because Docker's tmpfs default is noexec, which breaks compilers and tools that run
      // what they build in /tmp (go run, node-gyp, pip builds); /workspace is executable anyway.
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${resources.tmpfsMiB}m,mode=1777` },
      Binds: binds,
      AutoRemove: false,
      RestartPolicy: { Name: 'no' },
    };
    const options: Dockerode.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.image,
      Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
      Labels: {
        [LABELS.managedBy]: MANAGED_BY_VALUE,
        [LABELS.deployment]: spec.deploymentId,
        [LABELS.sandboxId]: spec.sandboxId,
        [LABELS.type]: spec.type.name,
        [LABELS.pool]: String(spec.pooled),
      },
      HostConfig: hostConfig,
    };
    if (security.user !== undefined) options.User = security.user;

    if (networking.kind === 'attach') {
      hostConfig.NetworkMode = networking.network;
      options.NetworkingConfig = { EndpointsConfig: { [networking.network]: {} } };
    } else {
      hostConfig.NetworkMode = 'bridge';
      options.ExposedPorts = { [SANDBOXD_PORT_KEY]: {} };
      hostConfig.PortBindings = {
        [SANDBOXD_PORT_KEY]: [
          { HostIp: this.config.SANDBOX_HOST_ADDRESS, HostPort: String(networking.hostPort) },
        ],
      };
    }
    return options;
  }

  /**
   * DOCKER_NETWORK wins (the server shares it). Otherwise `bridge` publishes a host port, and `none`
   * attaches to an internal network: no route out and no traffic between sandboxes, yet the host
   * still reaches sandboxd at the container's address (a container without any network could not
   * be reached at all).
   */
  private async networkingFor(spec: CreateSpec): Promise<Networking> {
    if (this.config.DOCKER_NETWORK !== undefined)
      return { kind: 'attach', network: this.config.DOCKER_NETWORK };
    if (spec.type.security.networkMode === 'none') {
      return { kind: 'attach', network: await this.ensureIsolatedNetwork() };
    }
    if (spec.hostPort === undefined) {
      throw new Error(
        `sandbox ${spec.sandboxId}: a host port is needed to publish sandboxd (DOCKER_NETWORK is unset)`,
      );
    }
    return { kind: 'publish', hostPort: spec.hostPort };
  }

  private ensureIsolatedNetwork(): Promise<string> {
    this.isolatedNetwork ??= this.createIsolatedNetwork().catch((error: unknown) => {
      this.isolatedNetwork = undefined;
      throw error;
    });
    return this.isolatedNetwork;
  }

  private async createIsolatedNetwork(): Promise<string> {
    const name = `${this.config.CONTAINER_PREFIX_KEY}-isolated`;
    try {
      await this.docker.getNetwork(name).inspect();
      return name;
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: true,
        CheckDuplicate: true,
        Options: { 'com.docker.network.bridge.enable_icc': 'false' },
        Labels: { [LABELS.managedBy]: MANAGED_BY_VALUE },
      });
    } catch (error) {
      // Another worker created it first.
      if (statusOf(error) !== 409) throw error;
    }
    return name;
  }

  private async addressOn(container: Dockerode.Container, network: string): Promise<Endpoint> {
    const info = await container.inspect();
    const host = info.NetworkSettings.Networks[network]?.IPAddress;
    if (!host) throw new Error(`container ${container.id} has no address on network ${network}`);
    return { host, port: SANDBOXD_PORT };
  }
}

function statusOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    return typeof error.statusCode === 'number' ? error.statusCode : undefined;
  }
  return undefined;
}
