/**
 * Creates and destroys sandboxes with their resources: an instance slot, a host port (when the
 * deployer publishes on one), the workspace storage the deployer keeps under the sandbox's id and
 * the container (and for a tenant's cold acquire the tenant's slot, which is the record's tenantId
 * and goes with the record). The record is stored first, naming its creator, and every later step
 * is recorded no later than it takes effect (the port allocator writes the port into the record
 * itself), so whoever destroys it (a failed create, a release, the reaper, shutdown, another
 * worker's reconciler after this process died) knows everything there is to give back.
 * Destroying is idempotent.
 */
import { randomBytes } from 'node:crypto';
import type { Coordinator } from '../cluster/coordinator.js';
import type { Config } from '../config/schema.js';
import { deploymentIdOf } from '../config/schema.js';
import { type DeployedSandbox, type Deployer, HostPortTakenError } from '../deployers/deployer.js';
import { waitForSandboxd } from '../deployers/wait-ready.js';
import { describeCodedError, messageOf, ServiceError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { SandboxRecord, StateStore, TenantQuota } from '../state/state-store.js';
import { instanceLimitOf } from './instance-limit.js';
import type { SandboxTokens } from './sandbox-tokens.js';
import type { SandboxdClient } from './sandboxd-client.js';
import { tenantFull } from './tenant-limits.js';

/** Tries with another host port when the deployer finds one taken by something outside our allocator. */
const PORT_ATTEMPTS = 5;
/** A full deployment frees up as sandboxes are released or reaped: a hint, not a promise. */
const CAPACITY_RETRY_SECONDS = 5;

export interface ProvisionerDeps {
  config: Config;
  registry: SandboxTypeRegistry;
  deployer: Deployer;
  store: StateStore;
  sandboxd: SandboxdClient;
  tokens: SandboxTokens;
  coordinator: Pick<Coordinator, 'replicaId'>;
  metrics: ServerMetrics;
  logger: Logger;
}

export interface CreateOptions {
  /** For the pool (status goes to 'warm' later) or for one caller (cold acquire). */
  pooled: boolean;
  /** Chosen by the caller when it must know the id before the record exists (the refiller does). */
  id?: string;
  /** For a tenant's cold acquire: the sandbox is the tenant's from the start, within its limit. */
  tenant?: TenantQuota;
  signal?: AbortSignal;
}

export function newSandboxId(): string {
  return randomBytes(8).toString('hex');
}

export class Provisioner {
  readonly deploymentId: string;
  /** MAX_SANDBOX_INSTANCES, or the limit derived from the machine (instance-limit.ts). */
  readonly maxInstances: number;
  /** Ids this process is creating right now; the reconciler leaves their 'creating' records alone. */
  private readonly creating = new Set<string>();

  constructor(private readonly deps: ProvisionerDeps) {
    this.deploymentId = deploymentIdOf(deps.config);
    this.maxInstances = instanceLimitOf(deps.config, deps.registry.list());
  }

  isCreatingHere(id: string): boolean {
    return this.creating.has(id);
  }

  /** A running sandbox whose sandboxd answers /healthz, recorded with status 'creating'. */
  async create(type: SandboxType, options: CreateOptions): Promise<SandboxRecord> {
    const { config, store } = this.deps;
    const id = options.id ?? newSandboxId();
    const started = performance.now();
    const now = Date.now();
    let record: SandboxRecord = {
      id,
      type: type.name,
      deploymentId: this.deploymentId,
      status: 'creating',
      handle: '',
      endpoint: null,
      hostPort: null,
      tokenNonce: this.deps.tokens.issue(id).nonce,
      sessionId: null,
      metadata: {},
      fromPool: options.pooled,
      createdAt: now,
      claimedAt: null,
      lastActiveAt: now,
      idleTimeoutSeconds: type.timeouts.idleSeconds ?? config.HEARTBEAT_TIMEOUT,
      expiresAt: null,
      creator: this.deps.coordinator.replicaId,
      tenantId: null,
    };
    this.creating.add(id);
    try {
      record = await this.recordAndReserve(record, options.tenant);
      try {
        await this.deps.deployer.provideWorkspace(id, type);
        const deployed = await this.deploy(record, type, options.pooled);
        record = await this.stillCreating(id, {
          handle: deployed.handle,
          endpoint: deployed.endpoint,
          ...(deployed.bootNonce === undefined ? {} : { tokenNonce: deployed.bootNonce }),
        });
        await waitForSandboxd(deployed.endpoint, {
          timeoutMs: type.timeouts.readyMs,
          signal: options.signal,
          proxyTransport: this.deps.deployer.proxyTransport,
        });
        this.deps.metrics.createDuration.observe(
          { type: type.name, pooled: String(options.pooled) },
          (performance.now() - started) / 1000,
        );
        return record;
      } catch (err) {
        // Give back everything acquired so far: what the store knows, and what a step held when the
        // record vanished under it.
        const stored = await store.get(id).catch(() => null);
        const pending = err instanceof SandboxGoneError ? err.pending : {};
        await this.destroy({ ...record, ...stored, ...pending }, 'create-failed');
        throw asCreateError(err, type, this.deps.registry.imageFor(type));
      }
    } finally {
      this.creating.delete(id);
    }
  }

  /**
   * Gives back everything the sandbox holds; safe to call twice and on half-created records. The
   * container and directory go even when the state store cannot be reached; the store's part (the
   * record, port and slot) is then left to the reconciler, and the store's error is thrown.
   */
  async destroy(record: SandboxRecord, reason: string): Promise<void> {
    const { store, deployer, sandboxd, logger } = this.deps;
    let storeError: unknown;
    const inStore = async (step: () => Promise<unknown>): Promise<void> => {
      if (storeError !== undefined) return;
      await step().catch((err: unknown) => {
        storeError = err;
      });
    };
    await inStore(() => store.update(record.id, { status: 'releasing' }));
    if (record.status === 'warm') await inStore(() => store.removeWarm(record.type, record.id));
    sandboxd.forget(record.id);
    const problems: string[] = [];
    if (record.handle) {
      // A container that will not go stays labelled: the reconciler retries once the record is gone.
      await deployer
        .destroy(record.handle)
        .catch((err: unknown) => problems.push(`container: ${messageOf(err)}`));
    }
    const hostPort = record.hostPort;
    if (hostPort !== null) await inStore(() => store.releasePort(hostPort, record.id));
    await deployer
      .releaseWorkspace(record.id)
      .catch((err: unknown) => problems.push(`workspace: ${messageOf(err)}`));
    await inStore(() => store.releaseInstance(record.id));
    await inStore(() => store.delete(record.id));
    const fields = { sandboxId: record.id, type: record.type, reason };
    if (storeError !== undefined) {
      logger.warn(
        { ...fields, problems, err: messageOf(storeError) },
        'sandbox destroyed, but the state store is unreachable; the reconciler finishes its record',
      );
      throw storeError;
    }
    if (problems.length > 0) logger.warn({ ...fields, problems }, 'sandbox destroyed with leftovers');
    else logger.info(fields, 'sandbox destroyed');
  }

  /** Exercises a fresh pool sandbox once (see SandboxdClient.warmUp); a failure destroys it. */
  async warmUp(record: SandboxRecord): Promise<void> {
    if (!record.endpoint) return;
    try {
      await this.deps.sandboxd.warmUp({
        sandboxId: record.id,
        endpoint: record.endpoint,
        token: this.deps.tokens.tokenFor(record),
      });
    } catch (err) {
      await this.destroy(record, 'warm-up-failed');
      throw err;
    }
  }

  /**
   * Destroys a container no record claims (a crashed run's, or one whose record was lost), and the
   * workspace of the sandbox id its label carries.
   */
  async destroyOrphan(handle: string, sandboxId: string | undefined): Promise<void> {
    await this.deps.deployer.destroy(handle);
    if (sandboxId !== undefined) {
      this.deps.sandboxd.forget(sandboxId);
      await this.deps.deployer.releaseWorkspace(sandboxId);
    }
  }

  /** Applies a step's result, or fails if someone destroyed the record meanwhile (shutdown, reaper). */
  private async stillCreating(id: string, patch: Partial<SandboxRecord>): Promise<SandboxRecord> {
    const updated = await this.deps.store.update(id, patch);
    // What the step acquired rides on the error, so the caller's destroy gives it back.
    if (updated?.status !== 'creating') throw new SandboxGoneError(id, patch);
    return updated;
  }

  /**
   * Stores the record, then makes it the tenant's (the tenant's slot lives in the record), then
   * takes an instance slot for it: in this order a process dying between the steps leaves a record
   * (which the reconciler finishes), never a slot no record names. A refusal deletes the record,
   * and the tenant's slot with it.
   */
  private async recordAndReserve(record: SandboxRecord, tenant?: TenantQuota): Promise<SandboxRecord> {
    const { store } = this.deps;
    await store.put(record);
    if (tenant && !(await store.assignTenant(record.id, tenant))) {
      await store.delete(record.id);
      throw tenantFull(tenant);
    }
    const stored = tenant ? { ...record, tenantId: tenant.tenantId } : record;
    if (await store.reserveInstance(record.id, this.maxInstances)) return stored;
    await store.delete(record.id);
    throw new ServiceError(
      'CAPACITY_EXCEEDED',
      `all ${this.maxInstances} sandbox instances are in use (MAX_SANDBOX_INSTANCES)`,
      { maxInstances: this.maxInstances, retryAfterSeconds: CAPACITY_RETRY_SECONDS },
    );
  }

  /** deployer.create with a host port from the allocator, retried on ports taken outside it. */
  private async deploy(record: SandboxRecord, type: SandboxType, pooled: boolean): Promise<DeployedSandbox> {
    const { config, store, deployer, registry } = this.deps;
    for (let attempt = 1; ; attempt++) {
      const hostPort = deployer.needsHostPort(type) ? await this.allocatePort(record.id) : null;
      try {
        // The allocator recorded the port already; this checks that the record is still being
        // created (a shutdown or reaper may have destroyed it meanwhile).
        if (hostPort !== null) await this.stillCreating(record.id, { hostPort });
        const sandbox = await deployer.create({
          sandboxId: record.id,
          deploymentId: this.deploymentId,
          replicaId: this.deps.coordinator.replicaId,
          type,
          image: registry.imageFor(type),
          name: `${config.CONTAINER_PREFIX_KEY}-${record.id}`,
          bootToken: this.deps.tokens.tokenFor(record),
          hostPort: hostPort ?? undefined,
          readonlyMounts: config.READONLY_MOUNTS,
          pooled,
        });
        return sandbox;
      } catch (err) {
        if (hostPort !== null) await store.releasePort(hostPort, record.id);
        if (!(err instanceof HostPortTakenError) || attempt >= PORT_ATTEMPTS) throw err;
        this.deps.logger.warn(
          { sandboxId: record.id, port: hostPort },
          'host port taken outside PORT_RANGE bookkeeping; trying another',
        );
      }
    }
  }

  private async allocatePort(owner: string): Promise<number> {
    const { config, store } = this.deps;
    const port = await store.allocatePort(config.PORT_RANGE, owner);
    if (port === null) {
      throw new ServiceError(
        'CAPACITY_EXCEEDED',
        `every host port in PORT_RANGE ${config.PORT_RANGE.start}-${config.PORT_RANGE.end} is taken`,
        { portRange: config.PORT_RANGE, retryAfterSeconds: CAPACITY_RETRY_SECONDS },
      );
    }
    return port;
  }
}

/** The record disappeared or left 'creating' while we were still building it. */
class SandboxGoneError extends Error {
  constructor(
    readonly sandboxId: string,
    readonly pending: Partial<SandboxRecord>,
  ) {
    super(`sandbox ${sandboxId} was destroyed while it was being created`);
    this.name = 'SandboxGoneError';
  }
}

function asCreateError(err: unknown, type: SandboxType, image: string): Error {
  if (err instanceof Error && err.name === 'AbortError') return err;
  const coded = describeCodedError(err);
  if (coded && coded.code !== 'TIMEOUT') return err as Error;
  return new ServiceError(
    'SANDBOX_CREATE_FAILED',
    `could not create a "${type.name}" sandbox from ${image}: ${messageOf(err)}`,
    { type: type.name, image },
    { cause: err },
  );
}
