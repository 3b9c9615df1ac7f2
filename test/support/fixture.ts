/**
 * The one set-up of the tests that start server processes and redis-servers: `withDeployment()`,
 * `withServer()` and `withRedis()` register the vitest hooks that start what a file needs and, after
 * its tests, remove every trace of it (processes, containers, mount dirs, lock files). Each
 * deployment gets its own port slice (port-ranges.ts), an id with a per-run suffix (so two runs of a
 * file, or two checkouts, never share labels, container names or Redis keys) and a mount dir.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type RedisServer, startRedisServer } from '../../support/redis-server.js';
import {
  removeContainersOf,
  removeMountDir,
  requireImage,
  type ServerProcess,
  type ServerProcessOptions,
  startServerProcess,
  waitForWarm,
} from '../../support/server-process.js';
import { type FakeKube, type FakeKubeOptions, startFakeKube } from './fake-kube/index.js';
import { allocatePortRange, type PortRange } from './port-ranges.js';

/** Tells this run's deployments from those of earlier runs and of other checkouts. */
const RUN_SUFFIX = `${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;

/** `name` made unique to this run, e.g. "h5-test-reaping-1a2b3c4d". */
export function testDeploymentId(name: string): string {
  return `${name}-${RUN_SUFFIX}`;
}

/**
 * An object that stands for what a `beforeAll` creates, so a file can name it at the top and use it
 * in its tests; touching it before the hook ran fails saying what is missing.
 */
export function lateBound<T extends object>(what: string, current: () => T | undefined): T {
  const target = (): T => {
    const value = current();
    if (value === undefined) throw new Error(`${what} is not started (used outside its tests?)`);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      const value: unknown = Reflect.get(target(), key);
      return typeof value === 'function' ? value.bind(target()) : value;
    },
    has: (_, key) => Reflect.has(target(), key),
    ownKeys: () => Reflect.ownKeys(target()),
    getOwnPropertyDescriptor: (_, key) => Reflect.getOwnPropertyDescriptor(target(), key),
  });
}

export type StartOptions = Omit<ServerProcessOptions, 'deploymentId' | 'portRange'>;

export interface DeploymentOptions {
  /** Ports in the deployment's PORT_RANGE (default 20). */
  ports?: number;
  /** Takes this deployment's PORT_RANGE instead of one of its own (deployments sharing a port map). */
  sharePortsWith?: Deployment;
  /** Images the servers need (default the base image). */
  images?: string[];
  /** How a server of this deployment starts (default startServerProcess; Redis tests add a store). */
  start?: (options: ServerProcessOptions) => Promise<ServerProcess>;
}

export interface Deployment {
  /** The deployment id (and container prefix), with the run suffix. */
  readonly id: string;
  /** The PORT_RANGE every server of the deployment gets. */
  readonly portRange: string;
  /** The DEFAULT_MOUNT_DIR its servers share unless a start says otherwise. */
  readonly mountDir: string;
  /** Starts a server of the deployment; whatever is still running after the file's tests is killed. */
  start(options?: StartOptions): Promise<ServerProcess>;
}

/** A deployment whose servers the tests start themselves (restarts, replicas, crashes). */
export function withDeployment(name: string, options: DeploymentOptions = {}): Deployment {
  const id = testDeploymentId(name);
  const mountDir = mkdtempSync(join(tmpdir(), `${id}-mounts-`));
  const started: ServerProcess[] = [];
  let ports: PortRange | undefined;
  const start = options.start ?? startServerProcess;

  beforeAll(async () => {
    for (const image of options.images ?? [undefined]) await requireImage(image);
    if (!options.sharePortsWith) ports = allocatePortRange(options.ports);
  });
  afterAll(async () => {
    for (const server of started) await server.stop('SIGKILL');
    await removeContainersOf(id);
    removeMountDir(mountDir);
    ports?.release();
  });

  return {
    id,
    mountDir,
    get portRange() {
      if (options.sharePortsWith) return options.sharePortsWith.portRange;
      if (!ports) throw new Error(`${id} has no port range before its beforeAll`);
      return ports.range;
    },
    async start(startOptions: StartOptions = {}) {
      const server = await start({ mountDir, ...startOptions, deploymentId: id, portRange: this.portRange });
      started.push(server);
      return server;
    },
  };
}

export interface ServerOptions extends DeploymentOptions, Omit<StartOptions, 'env'> {
  /** The settings; a function when they come from an earlier `beforeAll` (an S3 endpoint, a dir). */
  env?: Record<string, string> | (() => Record<string, string>);
  /** Warm base sandboxes to wait for before the tests. */
  warm?: number;
}

/**
 * One server for the whole file, started before its tests and stopped (SIGTERM, so it cleans up
 * as in production) after them. The returned object is that server; `deployment` is its deployment.
 */
export function withServer(
  name: string,
  options: ServerOptions = {},
): ServerProcess & { readonly deployment: Deployment } {
  const { ports, sharePortsWith, images, start, warm, env, ...startOptions } = options;
  const deployment = withDeployment(name, { ports, sharePortsWith, images, start });
  let server: ServerProcess | undefined;
  beforeAll(async () => {
    server = await deployment.start({ ...startOptions, env: typeof env === 'function' ? env() : env });
    if (warm) await waitForWarm(server, 'base', warm);
  });
  afterAll(async () => {
    await server?.stop();
  });
  const bound = lateBound(`the ${name} server`, () => server);
  return Object.assign(Object.create(bound) as ServerProcess, { deployment });
}

export function redisClient(redis: RedisServer): Redis {
  return new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: false, maxRetriesPerRequest: 1 });
}

export interface RedisFixture {
  readonly redis: RedisServer;
  /** A direct client, to look at what the servers keep there. */
  readonly client: Redis;
}

/** A redis-server (and a client of it) for the file, stopped after its tests. */
export function withRedis(): RedisFixture {
  let redis: RedisServer | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startRedisServer();
    client = redisClient(redis);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });
  return {
    redis: lateBound('redis-server', () => redis),
    client: lateBound('the Redis client', () => client),
  };
}

/**
 * A fake Kubernetes API server (fake-kube/) for the file, stopped after its tests; register it
 * before the servers that use it, so that they stop first.
 */
export function withFakeKube(options: FakeKubeOptions = {}): FakeKube {
  let fake: FakeKube | undefined;
  beforeAll(async () => {
    fake = await startFakeKube(options);
  });
  afterAll(async () => {
    await fake?.stop();
  });
  return lateBound('the fake Kubernetes API server', () => fake);
}

/** The settings of a server whose sandboxes are pods on `fake`, in `namespace`. */
export function kubernetesSettings(fake: FakeKube, namespace = 'default'): Record<string, string> {
  return { CONTAINER_DEPLOYMENT: 'k8s', KUBECONFIG_PATH: fake.kubeconfigPath, K8S_NAMESPACE: namespace };
}
