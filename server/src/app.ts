/**
 * Puts the server together: config -> type registry (+ extensions) -> deployer -> snapshot store ->
 * state store -> manager (+ snapshot service) -> HTTP. `startServer` returns once the port listens
 * (pools fill in the background); `stop` is the graceful shutdown: refuse new requests, let
 * in-flight ones finish within SHUTDOWN_GRACE_MS, stop background work, and with AUTO_CLEANUP
 * destroy this deployment's sandboxes.
 */
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Redis } from 'ioredis';
import { ByteBudget } from './api/body-limits.js';
import { createHttpApp } from './api/http-app.js';
import { InFlightRequests } from './api/in-flight.js';
import { Coordinator } from './cluster/coordinator.js';
import { claimDeployment, type DeploymentClaim } from './cluster/deployment-claim.js';
import type { Config } from './config/schema.js';
import { createDeployer } from './deployers/create-deployer.js';
import { messageOf } from './errors.js';
import { DataPlane } from './manager/data-plane.js';
import { SandboxManager } from './manager/sandbox-manager.js';
import { SandboxTokens } from './manager/sandbox-tokens.js';
import { SandboxdClient } from './manager/sandboxd-client.js';
import { SnapshotOutcomes } from './manager/snapshot-outcomes.js';
import { SnapshotRestorer } from './manager/snapshot-restorer.js';
import { SnapshotService } from './manager/snapshot-service.js';
import { createLogger, type Logger, logLevelOf } from './observability/logger.js';
import { ServerMetrics } from './observability/metrics.js';
import { loadExtensions } from './sandbox-types/extensions.js';
import { createRegistry } from './sandbox-types/registry.js';
import { createSnapshotStore } from './snapshots/create-snapshot-store.js';
import type { SnapshotStore } from './snapshots/snapshot-store.js';
import { createStateStore } from './state/create-state-store.js';
import { loadTenantKeys } from './tenants/api-keys.js';

/**
 * Long uploads are legitimate; Node's default (5 minutes to receive a whole request) would cut them.
 * A client that stalls is cut off by BODY_IDLE_TIMEOUT_MS instead (api/request-input.ts).
 */
const REQUEST_TIMEOUT_MS = 60 * 60 * 1000;
const CONNECTION_CHECK_MS = 1000;

export interface StartOptions {
  config: Config;
  /** Extension modules registering more sandbox types (`--extension`). */
  extensions?: string[];
  logger?: Logger;
  /**
   * Whether the operator chose the deployment id (DEPLOYMENT_ID or CONTAINER_PREFIX_KEY given).
   * Without shared state, a chosen id that another server runs stops the start; the default id
   * gives way to the next free one (cluster/deployment-claim.ts). Default true: refusing is safe.
   */
  deploymentIdChosen?: boolean;
}

export interface RunningServer {
  /** `http://host:port`, with the port actually bound (PORT=0 picks a free one). */
  url: string;
  port: number;
  logger: Logger;
  /** Graceful shutdown; calling it again returns the same promise. */
  stop(reason: string): Promise<void>;
}

/** The server cannot start for a reason outside the config file (Docker down, an image missing). */
export class StartupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StartupError';
  }
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const logger = options.logger ?? createLogger(logLevelOf(options.config));
  const claim = await claimUnshared(options, logger);
  // The claimed id names the deployment everywhere: labels, state keys, workspace dirs.
  const config = claim ? { ...options.config, DEPLOYMENT_ID: claim.deploymentId } : options.config;
  let running: RunningServer;
  try {
    running = await assemble(config, options, logger);
  } catch (err) {
    await claim?.release();
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= running.stop(reason).finally(() => claim?.release());
    return stopping;
  };
  return { ...running, stop };
}

/** Without shared state this server is its deployment's only one on the host, or does not start. */
async function claimUnshared(options: StartOptions, logger: Logger): Promise<DeploymentClaim | undefined> {
  if (options.config.REDIS_ENABLED) return undefined;
  try {
    return await claimDeployment(options.config, options.deploymentIdChosen ?? true, logger);
  } catch (err) {
    throw new StartupError(messageOf(err), { cause: err });
  }
}

async function assemble(config: Config, options: StartOptions, logger: Logger): Promise<RunningServer> {
  // A bad keys file stops the start before anything is made.
  const tenantKeys =
    config.API_KEYS_FILE === undefined
      ? undefined
      : loadTenantKeys(config.API_KEYS_FILE, config.BEARER_TOKEN);
  const registry = createRegistry(config);
  await loadExtensions(registry, options.extensions ?? []);
  const tokens = SandboxTokens.fromConfig(config);
  // A kubeconfig the chosen access cannot use (K8S_ACCESS=proxy over http://) stops the start here.
  const deployer = await createDeployer(config, logger, {
    sharedBootTokens: (scope) => tokens.shared(scope),
    registry,
  }).catch((err: unknown) => {
    throw new StartupError(
      `the ${config.CONTAINER_DEPLOYMENT} deployer cannot be set up: ${messageOf(err)}`,
      {
        cause: err,
      },
    );
  });
  try {
    await deployer.ping();
  } catch (err) {
    throw new StartupError(
      `the ${deployer.kind} deployer's backend does not answer (${deployer.location}): ${messageOf(err)}`,
      { cause: err },
    );
  }
  const { store, redis } = await createStateStore(config, { logger }).catch((err: unknown) => {
    throw new StartupError(`the state store cannot be opened: ${messageOf(err)}`, { cause: err });
  });
  // Shares the state store's Redis connection, if there is one.
  const snapshotStore = await openSnapshotStore(config, logger, redis).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const coordinator = new Coordinator({ config, store, redis, logger });
  const metrics = new ServerMetrics();
  const sandboxd = new SandboxdClient({ proxyTransport: deployer.proxyTransport });
  const outcomes = new SnapshotOutcomes({ metrics, logger });
  const manager = new SandboxManager({
    config,
    registry,
    deployer,
    store,
    sandboxd,
    tokens,
    coordinator,
    restorer: new SnapshotRestorer({ store: snapshotStore, outcomes }),
    metrics,
    logger,
  });
  metrics.bindState({ pools: () => manager.pools(), countsByStatus: () => manager.countsByStatus() });
  try {
    await manager.start();
  } catch (err) {
    // The start's own error is the one to report: a cleanup that fails for the same reason (a
    // backend that lacks what the start needed) is logged only.
    await manager
      .stop({ cleanup: config.AUTO_CLEANUP })
      .catch((stopErr: unknown) =>
        logger.error({ err: messageOf(stopErr) }, 'cleaning up after the failed start failed too'),
      );
    await snapshotStore.close();
    await store.close();
    throw new StartupError(messageOf(err), { cause: err });
  }
  const snapshots = new SnapshotService({ manager, store: snapshotStore, outcomes });

  const inFlight = new InFlightRequests();
  const jsonBudget = new ByteBudget(config.JSON_BYTES_IN_FLIGHT);
  metrics.bindJsonBytesInFlight(jsonBudget);
  const app = createHttpApp({
    config,
    manager,
    dataPlane: new DataPlane({ manager, metrics }),
    snapshots,
    registry,
    metrics,
    logger,
    inFlight,
    bodies: {
      json: {
        maxBytes: config.MAX_JSON_BYTES,
        idleTimeoutMs: config.BODY_IDLE_TIMEOUT_MS,
        budget: jsonBudget,
      },
      upload: { maxBytes: config.MAX_UPLOAD_BYTES, idleTimeoutMs: config.BODY_IDLE_TIMEOUT_MS },
    },
    tenantKeys,
  });
  let server: ServerType;
  try {
    server = await listen(app.fetch, config);
  } catch (err) {
    // The start's own error is the one to report: a cleanup that fails for the same reason (a
    // backend that lacks what the start needed) is logged only.
    await manager
      .stop({ cleanup: config.AUTO_CLEANUP })
      .catch((stopErr: unknown) =>
        logger.error({ err: messageOf(stopErr) }, 'cleaning up after the failed start failed too'),
      );
    await snapshotStore.close();
    await store.close();
    throw new StartupError(`cannot listen on ${config.HOST}:${config.PORT}: ${messageOf(err)}`, {
      cause: err,
    });
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST}:${port}`;
  logger.info(
    {
      url,
      deploymentId: manager.deploymentId,
      auth: config.BEARER_TOKEN !== undefined || tenantKeys !== undefined,
      tenantKeys: tenantKeys?.size ?? 0,
      pools: await manager.pools(),
    },
    'listening',
  );
  const filled = performance.now();
  // Only the leader fills pools; another replica would report a fill it had no part in.
  if (coordinator.isLeader()) {
    manager
      .poolsSettled()
      .then(async () => {
        logger.info(
          { pools: await manager.pools(), ms: Math.round(performance.now() - filled) },
          'pools filled',
        );
      })
      .catch(() => undefined);
  }

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason, inFlight: inFlight.size }, 'shutting down');
      inFlight.draining = true;
      if (!(await inFlight.drained(config.SHUTDOWN_GRACE_MS))) {
        logger.warn({ inFlight: inFlight.size }, 'grace period over; cutting the requests still in flight');
      }
      await closeServer(server);
      await manager.stop({ cleanup: config.AUTO_CLEANUP });
      await snapshotStore.close();
      await store.close();
      logger.info('stopped');
    })();
    return stopping;
  };
  return { url, port, logger, stop };
}

/** FILE_SYSTEM's snapshot store; bad settings or an unreachable Redis stop the start. */
async function openSnapshotStore(
  config: Config,
  logger: Logger,
  redis: Redis | undefined,
): Promise<SnapshotStore> {
  try {
    return await createSnapshotStore(config, redis ? { logger, redis } : { logger });
  } catch (err) {
    throw new StartupError(
      `the snapshot store (FILE_SYSTEM=${config.FILE_SYSTEM}) cannot be opened: ${messageOf(err)}`,
      { cause: err },
    );
  }
}

function listen(fetch: Parameters<typeof serve>[0]['fetch'], config: Config): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({
      fetch,
      port: config.PORT,
      hostname: config.HOST,
      serverOptions: {
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: config.HEADERS_TIMEOUT_MS,
        // Node checks those timeouts on this beat (30 s by default), so it bounds how late they act.
        connectionsCheckingInterval: CONNECTION_CHECK_MS,
      },
    });
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}
