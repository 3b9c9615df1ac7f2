/**
 * Sandboxes as Docker containers, locked down: every capability dropped but sandboxd's few (it starts
 * as root and runs the code as the type's unprivileged user), no-new-privileges, pids, memory (no
 * swap) and CPU limits, no Docker socket, and disk limits: a read-only root (unless the type turns
 * it off), a size-capped tmpfs on each of the type's writable paths, and a /workspace of its own
 * size: a host dir in the deployment's hardened workspace root (workspace-root.ts), made by
 * `provideWorkspace` before the container (workspace-storage.ts).
 *
 * Networks are the deployment's own, never one the server or Redis is on: `public` sandboxes sit on
 * a bridge with inter-container traffic off and reach the internet only (sandbox-firewall.ts keeps
 * them off the host and private ranges); sandboxd is published on a host port (PORT_RANGE on
 * SANDBOX_HOST_ADDRESS). `allowlist` sandboxes are published the same way from a bridge of their
 * own, where the host filter lets each one reach only its listed ranges (installed right after
 * start, before which it can send nothing; removed with the container). `none` sandboxes sit on
 * an internal bridge, no route out and no traffic between them, and the host reaches sandboxd at
 * the container's address. Every bridge is named `rsbx<p|a|n>…` so the host filter finds it.
 * Every sandbox resolves names through the resolver on its network's gateway (sandbox-dns.ts),
 * which enforces the allowlist's domains. `create` is one createContainer plus one start; an
 * inspect only when the container's address is needed. `destroy` is one remove for the containers
 * this process made (it knows their allowlist address); others, e.g. a previous run's, are
 * inspected first for theirs.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  isAddressRange,
  type NetworkPolicy,
  networkPolicySchema,
  parseRunAs,
  SANDBOXD_CAPABILITIES,
  SANDBOXD_PORT,
} from '@runtime-sandbox/contract';
import Dockerode from 'dockerode';
import { type Config, deploymentIdOf, workspaceRootOf } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import {
  type ContainerSummary,
  type CreateSpec,
  type DeployedSandbox,
  type Deployer,
  type Endpoint,
  HostPortTakenError,
  LABELS,
  MANAGED_BY_VALUE,
  sandboxEnv,
} from './deployer.js';
import { SandboxDns } from './sandbox-dns.js';
import { BRIDGE_PREFIX_BY_POLICY, SandboxFirewall } from './sandbox-firewall.js';
import { WorkspaceRoot } from './workspace-root.js';
import { PlainWorkspaces, QuotaWorkspaces, type WorkspaceStorage } from './workspace-storage.js';

const SANDBOXD_PORT_KEY = `${SANDBOXD_PORT}/tcp`;
const WORKSPACE = '/workspace';
const MIB = 1024 * 1024;
/** Writable paths that are shared scratch space by convention: sticky and open to all, as usual. */
const SHARED_SCRATCH_PATHS = new Set(['/tmp', '/var/tmp']);

const NETWORK_SUFFIX_BY_POLICY = { public: 'sandboxes', allowlist: 'allowlist', none: 'offline' } as const;
const ICC_OPTION = 'com.docker.network.bridge.enable_icc';
const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name';

/** The domains of an allowlist sandbox, comma-separated, so every worker's resolver reads them from here. */
const ALLOW_DOMAINS_LABEL = 'io.runtime-sandbox.allow-domains';
/** How long a resolver keeps what it read about an allowlist sandbox, milliseconds. */
const ALLOWLIST_CACHE_MS = 2000;

/** Docker's words for a host port another process or container holds. */
const PORT_TAKEN = /port is already allocated|address already in use/i;

/** A sandbox network of the deployment: its Docker name and the gateway its resolver answers on. */
interface SandboxNetwork {
  name: string;
  gateway: string;
}

/** How the server reaches a sandbox: a port published on the host, or its address on its network. */
type Networking =
  | { kind: 'publish'; network: SandboxNetwork; hostPort: number }
  | { kind: 'attach'; network: SandboxNetwork };

export class DockerDeployer implements Deployer {
  readonly kind = 'docker';
  readonly location: string;
  private readonly config: Config;
  private readonly docker: Dockerode;
  private readonly deploymentId: string;
  private readonly firewall = new SandboxFirewall();
  /** Whether `prepare` installed the host filter (the sandbox resolver's rules go into it). */
  private filtering = false;
  private readonly dns: SandboxDns;
  private readonly networks = new Map<NetworkPolicy, Promise<SandboxNetwork>>();
  private readonly allowlists = new Map<string, { domains: string[] | undefined; until: number }>();
  /** Containers this process made and has not destroyed: handle -> allowlist address (undefined: none). */
  private readonly made = new Map<string, string | undefined>();
  private readonly workspaceRoot: WorkspaceRoot;
  private readonly workspaces: WorkspaceStorage;
  private readonly logger: Logger;

  constructor(options: { config: Config; logger: Logger; docker?: Dockerode }) {
    this.config = options.config;
    this.location = options.config.DOCKER_SOCKET;
    this.docker = options.docker ?? new Dockerode({ socketPath: options.config.DOCKER_SOCKET });
    this.deploymentId = deploymentIdOf(options.config);
    this.logger = options.logger;
    this.workspaceRoot = new WorkspaceRoot(workspaceRootOf(options.config), options.logger);
    this.workspaces = options.config.WORKSPACE_QUOTA
      ? new QuotaWorkspaces()
      : new PlainWorkspaces(options.logger);
    this.dns = new SandboxDns({
      upstream: options.config.SANDBOX_DNS_UPSTREAM,
      allowlistOf: (address) => this.allowedDomainsOf(address),
      allow: (address, resolved) => this.firewall.allowMore(address, `${resolved}/32`),
      logger: options.logger,
    });
  }

  /**
   * Checks that every runtime the types ask for is installed and that workspace file systems can be
   * made, and installs the host filter before any sandbox exists (SANDBOX_FIREWALL=off and
   * WORKSPACE_QUOTA=off are the operator's explicit choices to go without them).
   */
  async prepare(types: readonly SandboxType[]): Promise<void> {
    await this.checkEngineNetworkNamespace();
    if (this.config.WORKSPACE_QUOTA) {
      await QuotaWorkspaces.check().catch((error: unknown) => {
        throw new Error(
          `cannot make the size-limited workspace file systems (${messageOf(error).trim()}); run the server as root with loop devices, mkfs.ext4 and mount (scripts/bootstrap.sh installs them), or set WORKSPACE_QUOTA=false to let workspaces fill the host's disk`,
          { cause: error },
        );
      });
    }
    const writableRoots = types.filter((type) => !type.security.readOnlyRootfs).map((type) => type.name);
    if (writableRoots.length > 0) {
      this.logger.warn(
        { types: writableRoots },
        'these sandbox types turn readOnlyRootfs off: nothing limits what their code writes to the container root layer (overlay2 on this disk has no size limit)',
      );
    }
    const wanted = new Set(types.map((type) => this.runtimeOf(type)).filter((r) => r !== undefined));
    if (wanted.size > 0) {
      const installed = Object.keys((await this.docker.info()).Runtimes ?? {});
      for (const runtime of wanted) {
        if (!installed.includes(runtime)) {
          throw new Error(
            `Docker runtime "${runtime}" is not installed on this engine (it has: ${installed.join(', ')}); install it (runsc for gVisor, kata-runtime for Kata) or change DOCKER_RUNTIME / the type's security.runtime`,
          );
        }
      }
    }
    if (!this.config.SANDBOX_FIREWALL) return;
    await this.firewall.apply().catch((error: unknown) => {
      throw new Error(
        `cannot install the host packet filter that keeps sandboxes off the host and private networks (${messageOf(error).trim()}); run the server as root with iptables, or set SANDBOX_FIREWALL=false to go without it`,
        { cause: error },
      );
    });
    this.filtering = true;
  }

  /**
   * Sandboxd is published on this host's SANDBOX_HOST_ADDRESS (or reached on a sandbox bridge),
   * and the packet filter and the sandbox resolver live in this network namespace, so it must be
   * the engine's: a server in a container with a network of its own would start, then reach no
   * sandbox. Told by the engine's default bridge, when it has one (else by the first sandbox
   * network, in createNetwork).
   */
  private async checkEngineNetworkNamespace(): Promise<void> {
    let bridge: string | undefined;
    try {
      bridge = (await this.docker.getNetwork('bridge').inspect()).Options?.[BRIDGE_NAME_OPTION];
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    if (bridge !== undefined) requireInterface(bridge);
  }

  /**
   * After the deployment's last sandbox went: its workspace root, its networks, and the host filter
   * if no one else needs it.
   */
  async teardown(): Promise<void> {
    await this.workspaceRoot.remove();
    this.dns.close();
    for (const policy of networkPolicySchema.options) {
      const { name, bridge } = this.networkNames(policy);
      if (this.filtering) await this.firewall.refuseDns(bridge);
      await this.docker
        .getNetwork(name)
        .remove()
        .catch((error: unknown) => {
          if (statusOf(error) !== 404) throw error;
        });
      this.networks.delete(policy);
    }
    if (this.config.SANDBOX_FIREWALL) await this.firewall.removeIfUnused();
  }

  async create(spec: CreateSpec): Promise<DeployedSandbox> {
    const allowlisted = spec.type.security.network === 'allowlist';
    if (allowlisted && !this.config.SANDBOX_FIREWALL) {
      throw new Error('network policy allowlist needs the host packet filter (SANDBOX_FIREWALL=true)');
    }
    // Docker would make a missing bind source itself: a root-owned dir outside any quota.
    const workspace = this.workspaceDirOf(spec.sandboxId);
    if (!existsSync(workspace)) {
      throw new Error(`sandbox ${spec.sandboxId} has no workspace: provideWorkspace comes before create`);
    }
    const networking = await this.networkingFor(spec);
    const container = await this.docker.createContainer(this.containerOptions(spec, networking));
    try {
      await container.start();
      if (allowlisted) {
        // Until its rules exist the allowlist bridge lets the sandbox send nothing at all.
        const { host } = await this.addressOn(container, networking.network);
        this.made.set(container.id, host);
        await this.firewall.allow(host, spec.type.security.allow.filter(isAddressRange));
      } else {
        this.made.set(container.id, undefined);
      }
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
        throw new HostPortTakenError(networking.hostPort, { cause: error });
      }
      throw error;
    }
  }

  async destroy(handle: string): Promise<void> {
    try {
      const container = this.docker.getContainer(handle);
      const allowlisted = this.made.has(handle)
        ? this.made.get(handle)
        : (await container.inspect()).NetworkSettings.Networks[this.networkNames('allowlist').name]
            ?.IPAddress;
      // Forgotten first: a retry after a failure below inspects again, which is always right.
      this.made.delete(handle);
      await container.remove({ force: true, v: true });
      // After the container: its address must not go to a successor while the rules still hold.
      if (allowlisted) {
        await this.firewall.revoke(allowlisted);
        this.dns.forget(allowlisted);
        this.allowlists.delete(allowlisted);
      }
    } catch (error) {
      // Gone already (404), or another caller is removing it right now (409): either way it goes.
      const status = statusOf(error);
      if (status === 404 || (status === 409 && /already in progress/i.test(messageOf(error)))) return;
      throw error;
    }
  }

  /** `public` and `allowlist` sandboxes are published on a host port; `none` ones have no route to one. */
  needsHostPort(type: SandboxType): boolean {
    return type.security.network !== 'none';
  }

  /** A host dir inside the hardened workspace root, size-limited with WORKSPACE_QUOTA. */
  async provideWorkspace(sandboxId: string, type: SandboxType): Promise<void> {
    const dir = this.workspaceDirOf(sandboxId);
    await this.workspaceRoot.ensure();
    await this.workspaces.provide(dir, type.resources.workspaceMiB, parseRunAs(type.security.user));
  }

  async releaseWorkspace(sandboxId: string): Promise<void> {
    const dir = this.workspaceRoot.dirOf(sandboxId);
    if (dir !== undefined) await this.workspaces.release(dir);
  }

  workspaceIds(): Promise<string[]> {
    return this.workspaceRoot.ids();
  }

  async list(deploymentId: string): Promise<ContainerSummary[]> {
    const known = [...this.made.keys()];
    const containers = await this.docker.listContainers({
      all: true,
      filters: {
        label: [`${LABELS.managedBy}=${MANAGED_BY_VALUE}`, `${LABELS.deployment}=${deploymentId}`],
      },
    });
    if (deploymentId === this.deploymentId) {
      // Ones another worker or replica destroyed; those made during the listing are not in `known`.
      const listed = new Set(containers.map((c) => c.Id));
      for (const handle of known) if (!listed.has(handle)) this.made.delete(handle);
    }
    return containers.map((c) => ({
      handle: c.Id,
      sandboxId: c.Labels[LABELS.sandboxId],
      deploymentId: c.Labels[LABELS.deployment],
      replicaId: c.Labels[LABELS.replica],
      running: c.State === 'running',
    }));
  }

  /**
   * Docker has no backstop that ends a container after a time, so the reaper is the only one;
   * its list is the engine's own, never a cache, so `list` needs no `expected` handles either.
   */
  async bindExpiry(): Promise<void> {}

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
    const env = sandboxEnv(spec, this.config);
    const binds = [
      `${this.workspaceDirOf(spec.sandboxId)}:${WORKSPACE}:rw`,
      ...spec.readonlyMounts.map((m) => `${m.hostPath}:${m.containerPath}:ro`),
    ];

    const hostConfig: Dockerode.HostConfig = {
      NanoCpus: Math.round(resources.cpus * 1e9),
      Memory: resources.memoryMiB * MIB,
      MemorySwap: resources.memoryMiB * MIB,
      PidsLimit: resources.pidsLimit,
      CapDrop: ['ALL'],
      // sandboxd's few (it is root, and runs the code as security.user, which gets none of them).
      CapAdd: [...SANDBOXD_CAPABILITIES, ...security.capAdd],
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      ReadonlyRootfs: security.readOnlyRootfs,
      Tmpfs: this.tmpfsMounts(spec),
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
        [LABELS.replica]: spec.replicaId,
        [LABELS.sandboxId]: spec.sandboxId,
        [LABELS.type]: spec.type.name,
        [LABELS.pool]: String(spec.pooled),
      },
      HostConfig: hostConfig,
    };
    const domains =
      security.network === 'allowlist' ? security.allow.filter((entry) => !isAddressRange(entry)) : [];
    if (domains.length > 0 && options.Labels) options.Labels[ALLOW_DOMAINS_LABEL] = domains.join(',');
    // Docker's resolver in the sandbox forwards to the network's own (sandbox-dns.ts).
    hostConfig.Dns = [networking.network.gateway];
    // sandboxd must start as root to keep the code (security.user) out of its memory and signals.
    options.User = '0:0';
    const runtime = this.runtimeOf(spec.type);
    if (runtime !== undefined) hostConfig.Runtime = runtime;

    hostConfig.NetworkMode = networking.network.name;
    options.NetworkingConfig = { EndpointsConfig: { [networking.network.name]: {} } };
    if (networking.kind === 'publish') {
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
   * A size-capped tmpfs on each writable path, the type's user's (the shared scratch dirs sticky
   * and open to all). `exec` because Docker's tmpfs default is noexec, which breaks compilers and
   * tools that run what they build in /tmp (go run, node-gyp, pip builds).
   */
  private tmpfsMounts(spec: CreateSpec): Record<string, string> {
    const { uid, gid } = parseRunAs(spec.type.security.user);
    return Object.fromEntries(
      Object.entries(spec.type.storage.writable).map(([path, sizeMiB]) => {
        const mode = SHARED_SCRATCH_PATHS.has(path) ? '1777' : '0755';
        return [path, `rw,exec,nosuid,nodev,size=${sizeMiB}m,mode=${mode},uid=${uid},gid=${gid}`];
      }),
    );
  }

  /** The host dir of a sandbox this deployer names (its ids are plain); throws for any other id. */
  private workspaceDirOf(sandboxId: string): string {
    const dir = this.workspaceRoot.dirOf(sandboxId);
    if (dir === undefined) throw new Error(`sandbox id ${JSON.stringify(sandboxId)} cannot name a workspace`);
    return dir;
  }

  /** The type's runtime, else DOCKER_RUNTIME; undefined leaves the engine's default (runc). */
  private runtimeOf(type: SandboxType): string | undefined {
    return type.security.runtime ?? this.config.DOCKER_RUNTIME;
  }

  /**
   * `public` publishes sandboxd on a host port; `none` is reached at the container's address on its
   * internal network (a container without any network could not be reached at all).
   */
  private async networkingFor(spec: CreateSpec): Promise<Networking> {
    const policy = spec.type.security.network;
    const network = await this.ensureNetwork(policy);
    if (policy === 'none') return { kind: 'attach', network };
    if (spec.hostPort === undefined) {
      throw new Error(`sandbox ${spec.sandboxId}: a host port is needed to publish sandboxd`);
    }
    return { kind: 'publish', network, hostPort: spec.hostPort };
  }

  private ensureNetwork(policy: NetworkPolicy): Promise<SandboxNetwork> {
    let ensured = this.networks.get(policy);
    if (!ensured) {
      ensured = this.createNetwork(policy).catch((error: unknown) => {
        this.networks.delete(policy);
        throw error;
      });
      this.networks.set(policy, ensured);
    }
    return ensured;
  }

  /**
   * The deployment's network for `policy`, made on first use (one that exists must be as safe),
   * with the resolver on its gateway serving it.
   */
  private async createNetwork(policy: NetworkPolicy): Promise<SandboxNetwork> {
    const { name, bridge } = this.networkNames(policy);
    const network = await this.existingNetwork(policy).then(
      (existing) => existing ?? this.newNetwork(policy).then(() => this.existingNetwork(policy)),
    );
    if (!network) throw new Error(`Docker network ${name} vanished right after it was made`);
    requireInterface(bridge);
    if (this.filtering) await this.firewall.acceptDns(bridge, network.gateway);
    await this.dns.serve(network.gateway, policy);
    return network;
  }

  /** The deployment's network for `policy` if it exists, checked to be as safe as a new one. */
  private async existingNetwork(policy: NetworkPolicy): Promise<SandboxNetwork | undefined> {
    const { name } = this.networkNames(policy);
    let existing: Dockerode.NetworkInspectInfo;
    try {
      existing = await this.docker.getNetwork(name).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
    if (existing.Options?.[ICC_OPTION] !== 'false' || existing.Internal !== (policy === 'none')) {
      throw new Error(
        `Docker network ${name} exists without this deployment's isolation (inter-container traffic off${policy === 'none' ? ', internal' : ''}); remove it`,
      );
    }
    const gateway = existing.IPAM?.Config?.[0]?.Gateway;
    if (!gateway) throw new Error(`Docker network ${name} has no gateway address for the sandbox resolver`);
    return { name, gateway };
  }

  private async newNetwork(policy: NetworkPolicy): Promise<void> {
    const { name, bridge } = this.networkNames(policy);
    try {
      await this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        Internal: policy === 'none',
        CheckDuplicate: true,
        Options: { [ICC_OPTION]: 'false', [BRIDGE_NAME_OPTION]: bridge },
        Labels: { [LABELS.managedBy]: MANAGED_BY_VALUE, [LABELS.deployment]: this.deploymentId },
      });
    } catch (error) {
      // Another worker created it first.
      if (statusOf(error) !== 409) throw error;
    }
  }

  /** The domains of the allowlist sandbox at `address`, read from its container; undefined: none there. */
  private async allowedDomainsOf(address: string): Promise<string[] | undefined> {
    const cached = this.allowlists.get(address);
    if (cached && cached.until > Date.now()) return cached.domains;
    const { name } = this.networkNames('allowlist');
    const containers = await this.docker.listContainers({
      filters: {
        label: [`${LABELS.managedBy}=${MANAGED_BY_VALUE}`, `${LABELS.deployment}=${this.deploymentId}`],
        network: [name],
      },
    });
    // One listing answers for every sandbox on the network, not just the one that asked.
    const until = Date.now() + ALLOWLIST_CACHE_MS;
    this.allowlists.set(address, { domains: undefined, until });
    for (const container of containers) {
      const holder = container.NetworkSettings?.Networks?.[name]?.IPAddress;
      if (!holder) continue;
      const domains = (container.Labels[ALLOW_DOMAINS_LABEL] ?? '').split(',').filter((d) => d !== '');
      this.allowlists.set(holder, { domains, until });
    }
    return this.allowlists.get(address)?.domains;
  }

  /** Network and bridge names of the deployment; bridge names are at most 15 bytes (IFNAMSIZ). */
  private networkNames(policy: NetworkPolicy): { name: string; bridge: string } {
    const tag = createHash('sha256').update(this.deploymentId).digest('hex').slice(0, 8);
    return {
      name: `${this.deploymentId}-${NETWORK_SUFFIX_BY_POLICY[policy]}`,
      bridge: `${BRIDGE_PREFIX_BY_POLICY[policy]}${tag}`,
    };
  }

  private async addressOn(container: Dockerode.Container, network: SandboxNetwork): Promise<Endpoint> {
    const info = await container.inspect();
    const host = info.NetworkSettings.Networks[network.name]?.IPAddress;
    if (!host) throw new Error(`container ${container.id} has no address on network ${network.name}`);
    return { host, port: SANDBOXD_PORT };
  }
}

/** Throws unless this process's network namespace has the engine's bridge `name`. */
function requireInterface(name: string): void {
  if (existsSync(`/sys/class/net/${name}`)) return;
  throw new Error(
    `this server does not share the Docker engine's network namespace (the engine's bridge ${name} is not among its interfaces): the Docker deployer reaches sandboxes and keeps their packet filter and DNS resolver in the engine's; run the server on the engine's host, or its container with --network host (README, "Run it as a container")`,
  );
}

function statusOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    return typeof error.statusCode === 'number' ? error.statusCode : undefined;
  }
  return undefined;
}
