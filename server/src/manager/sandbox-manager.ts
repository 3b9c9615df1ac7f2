/**
 * The rules of the server: what happens on acquire, on every call into a sandbox, on release, on
 * the maintenance tick and on shutdown. It keeps no state another worker would need: pools, ports,
 * instance slots, records and idle timestamps all live in the StateStore.
 *
 * Acquire, in order:
 *   1. with `restore`, find the snapshot it names (an unknown one costs no sandbox);
 *   2. claim a warm sandbox of the type (atomic in the store) and kick the refiller, or, with the
 *      pool empty, create one cold if MAX_SANDBOX_INSTANCES allows (else CAPACITY_EXCEEDED);
 *   3. bind it to the caller: POST /init on its sandboxd with a fresh token and the caller's env
 *      over the type's, then record the token's nonce, session, metadata and timeouts;
 *   4. if binding fails, destroy that sandbox and try another (a few times at most);
 *   5. with `restore`, stream the snapshot into the workspace (snapshot-restorer.ts); if that
 *      fails, release the sandbox and fail the acquire.
 *
 * Every call names its caller (tenants/caller.ts). A tenant's acquire first counts against its
 * acquires per minute, and its claim or create takes one of its maxSandboxes slots in the same
 * atomic step that makes the sandbox its own (the slot goes with the record). A tenant sees and
 * calls only its own sandboxes: another's answers SANDBOX_NOT_FOUND exactly as a missing one does,
 * so its id is not even confirmed. The admin sees everything.
 */
import type { IncomingMessage } from 'node:http';
import type { NetworkPolicy } from '@runtime-sandbox/contract';
import type { Coordinator } from '../cluster/coordinator.js';
import type { Config } from '../config/schema.js';
import type { Deployer } from '../deployers/deployer.js';
import { describeCodedError, messageOf, ServiceError, sandboxNotFound } from '../errors.js';
import { detached, type Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { RecordFilter, SandboxRecord, SandboxStatus, StateStore } from '../state/state-store.js';
import { type Caller, mayAccess } from '../tenants/caller.js';
import { PoolRefiller, type PoolStatus } from './pool-refiller.js';
import { Provisioner } from './provisioner.js';
import { checkReady } from './readiness.js';
import { Reaper } from './reaper.js';
import { mayDestroyUnclaimed, Reconciler } from './reconciler.js';
import type { SandboxTokens } from './sandbox-tokens.js';
import type { SandboxdClient, SandboxdTarget, UpstreamRequest } from './sandboxd-client.js';
import type { PendingRestore, RestoreRequest, WorkspaceRestorer } from './snapshot-restorer.js';
import { ACQUIRE_WINDOW_MS, acquireRateExceeded, quotaOf } from './tenant-limits.js';

export interface AcquireRequest {
  type?: string;
  sessionId?: string;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
  idleTimeoutSeconds?: number;
  ttlSeconds?: number;
  /** Network policy for this sandbox; at most as open as the type's. */
  network?: NetworkPolicy;
  /** With `allowlist`: the CIDRs the sandbox may reach (within the type's own allowlist, if it has one). */
  allow?: string[];
  /** A snapshot to restore into the workspace before the sandbox is handed out. */
  restore?: RestoreRequest;
}

/** Policies from the most open to the strictest; an acquire may move only towards the end. */
const POLICY_STRICTNESS: readonly NetworkPolicy[] = ['public', 'allowlist', 'none'];

export interface SandboxManagerDeps {
  config: Config;
  registry: SandboxTypeRegistry;
  deployer: Deployer;
  store: StateStore;
  sandboxd: SandboxdClient;
  /** Derives sandboxd's tokens from the nonces in the records. */
  tokens: SandboxTokens;
  /** This replica among the deployment's others: leadership, liveness, refill requests. */
  coordinator: Coordinator;
  /** Finds the snapshots that acquires restore, and streams them in. */
  restorer: WorkspaceRestorer;
  metrics: ServerMetrics;
  logger: Logger;
}

/** Sandboxes tried per acquire when binding fails (a dead warm container, a refused /init). */
const BIND_ATTEMPTS = 3;
/** A keep-alive agent to a sandbox this worker has not called for this long is dropped. */
const AGENT_IDLE_MS = 60_000;
/** How often a sandbox busy with a long call is touched: well inside any idle timeout. */
const MAX_HEARTBEAT_MS = 10_000;
const MIN_HEARTBEAT_MS = 250;
/** Destroys at once during cleanup; Docker copes, the 2-core laptop does too. */
const CLEANUP_CONCURRENCY = 8;

export class SandboxManager {
  private readonly provisioner: Provisioner;
  private readonly refiller: PoolRefiller;
  private readonly reaper: Reaper;
  private readonly reconciler: Reconciler;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintenanceRun: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly deps: SandboxManagerDeps) {
    this.provisioner = new Provisioner(deps);
    this.refiller = new PoolRefiller({ ...deps, provisioner: this.provisioner });
    this.reaper = new Reaper({ ...deps, provisioner: this.provisioner });
    this.reconciler = new Reconciler({ ...deps, provisioner: this.provisioner });
  }

  get deploymentId(): string {
    return this.provisioner.deploymentId;
  }

  /** The type used when an acquire names none: the first of DEFAULT_SANDBOX_TYPE. */
  get defaultType(): string {
    return this.deps.config.DEFAULT_SANDBOX_TYPE[0] ?? 'base';
  }

  /**
   * Checks that every pooled type exists and has its image, clears what a crashed previous run left
   * behind, then starts filling pools (in the background) and the maintenance tick.
   */
  async start(): Promise<void> {
    const { config, registry, deployer, logger } = this.deps;
    for (const name of config.DEFAULT_SANDBOX_TYPE) registry.require(name);
    for (const type of registry.list()) {
      const target = await this.refiller.targetOf(type);
      const image = registry.imageFor(type);
      if (target > 0 && !(await deployer.hasImage(image))) {
        throw new ServiceError(
          'SANDBOX_CREATE_FAILED',
          `image ${image} for sandbox type "${type.name}" is not there; build it with \`runtime-sandbox-builder ${type.name}\``,
        );
      }
    }
    await deployer.prepare(registry.list());
    await this.reconciler.run();
    const { coordinator } = this.deps;
    await coordinator.start({
      onLeaderChange: (leader) => {
        if (leader) this.refiller.kick({ tick: true });
      },
      onRefillRequest: () => this.refiller.kickSoon(),
    });
    this.scheduleMaintenance();
    const { maxInstances } = this.provisioner;
    logger.info(
      {
        deploymentId: this.deploymentId,
        replicaId: coordinator.replicaId,
        leader: coordinator.isLeader(),
        maxInstances,
      },
      'sandbox manager started',
    );
    const pooled = await this.poolTargetsTotal();
    if (pooled > maxInstances) {
      logger.warn(
        { pooled, maxInstances },
        'the pool targets add up to more than the instance limit; the pools stop filling at the limit',
      );
    }
  }

  /** Resolves when the pool creates under way have settled (used to log the initial fill). */
  poolsSettled(): Promise<void> {
    return this.refiller.idle();
  }

  /**
   * The bound sandbox, the caller's; its `fromPool` says whether it came warm from the pool. With
   * `restore`, the snapshot is found before any sandbox is taken and restored before it is handed
   * out; a restore that fails releases that sandbox and fails the acquire (it never starts empty
   * unless the caller allowed that for a key with no snapshot yet).
   */
  async acquire(request: AcquireRequest, caller: Caller): Promise<SandboxRecord> {
    this.assertRunning();
    const registered = this.deps.registry.require(request.type ?? this.defaultType);
    const maxTtl = maxTtlOf(registered, this.deps.config);
    if (request.ttlSeconds !== undefined && maxTtl > 0 && request.ttlSeconds > maxTtl) {
      throw new ServiceError(
        'VALIDATION_ERROR',
        `ttlSeconds ${request.ttlSeconds} is over the longest a "${registered.name}" sandbox may live, ${maxTtl} s`,
        { ttlSeconds: request.ttlSeconds, maxTtlSeconds: maxTtl },
      );
    }
    const type = withNetwork(registered, request);
    const restore = request.restore && (await this.deps.restorer.find(request.restore, caller));
    await this.countAcquire(caller);
    // Pooled sandboxes have the type's own policy; any other is made for this caller.
    const bound = await this.claimAndBind(type, type === registered, request, caller);
    if (restore) await this.restoreOrRelease(bound, caller, restore);
    return bound;
  }

  /** A warm sandbox (when `poolable`) or a new one, bound; another is tried when binding fails. */
  private async claimAndBind(
    type: SandboxType,
    poolable: boolean,
    request: AcquireRequest,
    caller: Caller,
  ): Promise<SandboxRecord> {
    const { store, metrics, logger } = this.deps;
    const tenant = quotaOf(caller);
    const started = performance.now();
    for (let attempt = 1; ; attempt++) {
      // A full tenant claims nothing; its cold create below then refuses it.
      const claimed = poolable ? await store.claimWarm(type.name, Date.now(), tenant) : null;
      if (claimed) this.deps.coordinator.requestRefill();
      const record = claimed ?? (await this.provisioner.create(type, { pooled: false, tenant }));
      const fromPool = claimed !== null;
      try {
        const bound = await this.bind(record, type, request);
        metrics.acquireDuration.observe(
          { type: type.name, fromPool: String(fromPool) },
          (performance.now() - started) / 1000,
        );
        logger.info(
          {
            sandboxId: bound.id,
            type: type.name,
            fromPool,
            sessionId: bound.sessionId,
            tenantId: bound.tenantId,
          },
          'sandbox acquired',
        );
        return bound;
      } catch (err) {
        await this.provisioner.destroy(record, 'bind-failed');
        if (!sandboxAtFault(err) || attempt >= BIND_ATTEMPTS) throw err;
        logger.warn(
          { sandboxId: record.id, err: messageOf(err), attempt },
          'binding a sandbox failed; trying another',
        );
      }
    }
  }

  private async restoreOrRelease(
    sandbox: SandboxRecord,
    caller: Caller,
    restore: PendingRestore,
  ): Promise<void> {
    try {
      await restore.into(sandbox, (upstream) => this.call(sandbox.id, caller, upstream));
    } catch (err) {
      await this.release(sandbox.id, caller).catch((releaseErr: unknown) =>
        this.deps.logger.error(
          { sandboxId: sandbox.id, err: messageOf(releaseErr) },
          'releasing a sandbox whose restore failed failed too; the reaper will collect it',
        ),
      );
      throw err;
    }
  }

  /**
   * A live sandbox of this deployment the caller may see; SANDBOX_NOT_FOUND otherwise. Does not
   * count as activity.
   */
  async get(id: string, caller: Caller): Promise<SandboxRecord> {
    const record = await this.deps.store.get(id);
    if (
      !record ||
      record.deploymentId !== this.deploymentId ||
      record.status === 'releasing' ||
      !mayAccess(caller, record.tenantId)
    ) {
      throw sandboxNotFound(id);
    }
    return record;
  }

  /** The caller's sandboxes (every one for the admin, the pool's included). */
  async list(filter: Omit<RecordFilter, 'tenantId'>, caller: Caller): Promise<SandboxRecord[]> {
    const own = caller.kind === 'tenant' ? { ...filter, tenantId: caller.tenant.id } : filter;
    const records = await this.deps.store.list(own);
    return records
      .filter((r) => r.deploymentId === this.deploymentId && r.status !== 'releasing')
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Refreshes the idle timer, optionally with a new idle timeout. */
  async keepalive(id: string, caller: Caller, idleTimeoutSeconds?: number): Promise<SandboxRecord> {
    await this.claimedRecord(id, caller);
    const patch: Partial<SandboxRecord> = { lastActiveAt: Date.now() };
    if (idleTimeoutSeconds !== undefined) patch.idleTimeoutSeconds = idleTimeoutSeconds;
    const updated = await this.deps.store.update(id, patch);
    if (!updated) throw sandboxNotFound(id);
    return updated;
  }

  async release(id: string, caller: Caller): Promise<void> {
    const record = await this.get(id, caller);
    await this.provisioner.destroy(record, 'released');
  }

  /**
   * Forwards a data-plane call to the sandbox's sandboxd and resolves with its answer, still
   * streaming. The sandbox counts as active from the call's start until its answer is closed.
   */
  async call(id: string, caller: Caller, upstream: UpstreamRequest): Promise<IncomingMessage> {
    this.assertRunning();
    const record = await this.claimedRecord(id, caller);
    const stopHeartbeat = this.heartbeat(record);
    try {
      const response = await this.deps.sandboxd.forward(this.targetOf(record), upstream);
      response.once('close', stopHeartbeat);
      return response;
    } catch (err) {
      stopHeartbeat();
      throw err;
    }
  }

  /** Throws when the state store or the deployer does not answer (the readiness probe). */
  checkReady(): Promise<void> {
    return checkReady(this.deps);
  }

  async pools(): Promise<PoolStatus[]> {
    return Promise.all(this.deps.registry.list().map((type) => this.refiller.status(type)));
  }

  async pool(typeName: string): Promise<PoolStatus> {
    return this.refiller.status(this.deps.registry.require(typeName));
  }

  /**
   * Sets a type's pool target for every worker; the refiller grows or shrinks the pool. Warm
   * sandboxes hold instance slots, so all pools together stay within the instance limit. The
   * admin's alone: pools serve every tenant, and their sandboxes count against no tenant's limits.
   */
  async resizePool(typeName: string, size: number, caller: Caller): Promise<PoolStatus> {
    if (caller.kind !== 'admin') {
      throw new ServiceError('FORBIDDEN', 'resizing pools needs the admin token (BEARER_TOKEN)');
    }
    const type = this.deps.registry.require(typeName);
    const otherTargets = await this.poolTargetsTotal({ except: type.name });
    const maxInstances = this.provisioner.maxInstances;
    if (otherTargets + size > maxInstances) {
      throw new ServiceError(
        'VALIDATION_ERROR',
        `a pool of ${size} would put the pools at ${otherTargets + size} sandboxes, over the instance limit of ${maxInstances} (MAX_SANDBOX_INSTANCES)`,
        { size, maxPoolSize: Math.max(0, maxInstances - otherTargets), maxInstances },
      );
    }
    await this.deps.store.setPoolTarget(type.name, size);
    this.deps.coordinator.requestRefill();
    this.deps.logger.info({ type: type.name, size }, 'pool target changed');
    return this.refiller.status(type);
  }

  /** The pool targets of every type (but `except`) added up. */
  private async poolTargetsTotal(options: { except?: string } = {}): Promise<number> {
    const types = this.deps.registry.list().filter((type) => type.name !== options.except);
    const targets = await Promise.all(types.map((type) => this.refiller.targetOf(type)));
    return targets.reduce((sum, target) => sum + target, 0);
  }

  async countsByStatus(): Promise<Record<SandboxStatus, number>> {
    const counts: Record<SandboxStatus, number> = { creating: 0, warm: 0, claimed: 0, releasing: 0 };
    for (const record of await this.deps.store.list()) {
      if (record.deploymentId === this.deploymentId) counts[record.status]++;
    }
    return counts;
  }

  /**
   * Stops background work (pool creates under way are cut short and cleaned up), hands leadership
   * over and leaves the deployment's live replicas. With `cleanup`, the last replica to leave
   * destroys every sandbox of this deployment, pool included, and any container that still
   * carries its labels; one that leaves others running leaves the sandboxes to them.
   */
  async stop(options: { cleanup: boolean }): Promise<void> {
    const { store, deployer, sandboxd, coordinator, logger } = this.deps;
    this.stopping = true;
    clearTimeout(this.maintenanceTimer);
    await this.maintenanceRun;
    await this.refiller.stop();
    const othersAlive = await coordinator.leave();
    if (options.cleanup && othersAlive !== 0) {
      logger.info(
        { othersAlive },
        othersAlive === null
          ? 'the state store cannot say whether other replicas serve this deployment; leaving its sandboxes'
          : 'other replicas still serve this deployment; leaving its sandboxes to them',
      );
    }
    if (options.cleanup && othersAlive === 0) {
      const records = (await store.list()).filter((r) => r.deploymentId === this.deploymentId);
      await forEachLimited(records, CLEANUP_CONCURRENCY, (record) =>
        this.provisioner
          .destroy(record, 'shutdown')
          .catch((err: unknown) =>
            logger.error(
              { sandboxId: record.id, err: messageOf(err) },
              'destroying a sandbox at shutdown failed',
            ),
          ),
      );
      // Not a container of a replica that is alive after all (joined meanwhile, or on another store).
      const live = await coordinator.liveReplicas();
      const leftovers = (await deployer.list(this.deploymentId)).filter((container) =>
        mayDestroyUnclaimed(container, coordinator.replicaId, live),
      );
      await forEachLimited(leftovers, CLEANUP_CONCURRENCY, (container) =>
        this.provisioner
          .destroyOrphan(container.handle, container.sandboxId)
          .catch((err: unknown) =>
            logger.error(
              { handle: container.handle, err: messageOf(err) },
              'destroying a container at shutdown failed',
            ),
          ),
      );
      logger.info(
        { sandboxes: records.length, strayContainers: leftovers.length },
        'sandboxes of this deployment destroyed',
      );
      await deployer
        .teardown()
        .catch((err: unknown) =>
          logger.error(
            { err: messageOf(err) },
            'removing the deployment networks and workspace root at shutdown failed',
          ),
        );
    }
    sandboxd.close();
  }

  private async bind(
    record: SandboxRecord,
    type: SandboxType,
    request: AcquireRequest,
  ): Promise<SandboxRecord> {
    const { config, store, sandboxd } = this.deps;
    const { nonce, token } = this.deps.tokens.issue(record.id);
    await sandboxd.init(this.targetOf(record), { token, env: { ...type.env, ...request.env } });
    const now = Date.now();
    const ttlSeconds = request.ttlSeconds ?? maxTtlOf(type, config);
    const bound = await store.update(record.id, {
      status: 'claimed',
      tokenNonce: nonce,
      sessionId: request.sessionId ?? null,
      metadata: request.metadata ?? {},
      claimedAt: now,
      lastActiveAt: now,
      idleTimeoutSeconds: request.idleTimeoutSeconds ?? type.timeouts.idleSeconds ?? config.HEARTBEAT_TIMEOUT,
      expiresAt: ttlSeconds > 0 ? now + ttlSeconds * 1000 : null,
    });
    if (!bound)
      throw new ServiceError('SANDBOX_NOT_FOUND', `sandbox ${record.id} was destroyed while being bound`);
    if (bound.expiresAt !== null) this.bindExpiry(bound, bound.expiresAt);
    return bound;
  }

  /**
   * Tells the deployer the claim's hard expiry, in the background: the reaper ends the sandbox at
   * that time, and this is only the backend's backstop for when no reaper comes, so the acquire
   * neither waits for it (a warm acquire needs no backend call, and keeps working while the
   * backend is away) nor fails with it. A failure is logged; the sandbox then has the reaper alone.
   * The expiry never moves later after the claim (keep-alives change the idle timeout only).
   */
  private bindExpiry(record: SandboxRecord, expiresAt: number): void {
    const { deployer, logger } = this.deps;
    detached(() => deployer.bindExpiry(record.handle, expiresAt)).catch((err: unknown) =>
      logger.warn(
        { sandboxId: record.id, err: messageOf(err) },
        'the deployer could not take the hard expiry as a backstop; the reaper alone ends the sandbox',
      ),
    );
  }

  /** The record of a sandbox bound to a caller, its idle timer refreshed. */
  private async claimedRecord(id: string, caller: Caller): Promise<SandboxRecord> {
    const { store } = this.deps;
    const now = Date.now();
    // The admin's touch goes with the read (one round trip less); a tenant's waits for the check,
    // so that no tenant keeps another's sandbox alive.
    const record =
      caller.kind === 'admin'
        ? (await Promise.all([this.get(id, caller), store.touch(id, now)]))[0]
        : await this.get(id, caller).then(async (own) => {
            await store.touch(id, now);
            return own;
          });
    if (record.status !== 'claimed') {
      throw new ServiceError('SANDBOX_NOT_READY', `sandbox ${id} is ${record.status}, not acquired`, {
        status: record.status,
      });
    }
    return record;
  }

  /** Touches the sandbox while a call is in flight so a long exec is not reaped as idle. */
  private heartbeat(record: SandboxRecord): () => void {
    const every = Math.min(
      MAX_HEARTBEAT_MS,
      Math.max(MIN_HEARTBEAT_MS, (record.idleTimeoutSeconds * 1000) / 3),
    );
    const timer = setInterval(() => {
      this.deps.store.touch(record.id, Date.now()).catch((err: unknown) => {
        this.deps.logger.warn(
          { sandboxId: record.id, err: messageOf(err) },
          'touching a busy sandbox failed',
        );
      });
    }, every);
    timer.unref();
    return () => clearInterval(timer);
  }

  private scheduleMaintenance(): void {
    if (this.stopping) return;
    this.maintenanceTimer = setTimeout(() => {
      this.maintenanceRun = detached(() => this.maintain()).finally(() => {
        this.maintenanceRun = undefined;
        this.scheduleMaintenance();
      });
    }, this.deps.config.MAINTENANCE_INTERVAL_MS);
    this.maintenanceTimer.unref();
  }

  /**
   * One tick: every worker drops its idle sandboxd connections; the leader alone reaps, reconciles
   * and refills, and stops part-way if its term ends meanwhile; the others sweep the containers
   * they made that no record claims (the leader leaves those to their live creator).
   */
  private async maintain(): Promise<void> {
    const { coordinator, sandboxd, logger } = this.deps;
    sandboxd.sweepIdle(AGENT_IDLE_MS);
    if (this.stopping) return;
    if (!coordinator.isLeader()) {
      await this.reconciler
        .sweepOwn()
        .catch((err: unknown) => logger.error({ err: messageOf(err) }, 'sweeping own containers failed'));
      return;
    }
    const signal = coordinator.leaderSignal();
    try {
      await this.reaper.run({ signal });
      if (!signal.aborted) await this.reconciler.run({ signal });
      if (!signal.aborted) this.refiller.kick({ tick: true });
    } catch (err) {
      logger.error({ err: messageOf(err) }, 'maintenance tick failed');
    }
  }

  /** A tenant's acquire counts against its acquiresPerMinute, shared by every worker and replica. */
  private async countAcquire(caller: Caller): Promise<void> {
    if (caller.kind === 'admin') return;
    const { id, limits } = caller.tenant;
    const max = limits.acquiresPerMinute;
    if (max === undefined) return;
    const { allowed, resetInMs } = await this.deps.store.countInWindow(
      `acquires:${id}`,
      max,
      ACQUIRE_WINDOW_MS,
    );
    if (!allowed) throw acquireRateExceeded(id, max, resetInMs);
  }

  private targetOf(record: SandboxRecord): SandboxdTarget {
    if (!record.endpoint) {
      throw new ServiceError('SANDBOX_NOT_READY', `sandbox ${record.id} has no endpoint yet`);
    }
    return { sandboxId: record.id, endpoint: record.endpoint, token: this.deps.tokens.tokenFor(record) };
  }

  private assertRunning(): void {
    if (this.stopping) throw new ServiceError('SHUTTING_DOWN', 'the server is shutting down');
  }
}

/**
 * The type with the caller's network policy, which may only be stricter than the type's own: a
 * `public` type may become `allowlist` (any list) or `none`; an `allowlist` type keeps to a subset
 * of its list, or becomes `none`. The type itself when nothing changes.
 */
function withNetwork(type: SandboxType, request: Pick<AcquireRequest, 'network' | 'allow'>): SandboxType {
  const own = type.security;
  const network = request.network ?? (request.allow === undefined ? own.network : 'allowlist');
  const deny = (why: string) =>
    new ServiceError('NETWORK_POLICY_DENIED', `sandbox type "${type.name}" ${why}`, {
      type: type.name,
      typePolicy: own.network,
      requested: network,
    });
  if (POLICY_STRICTNESS.indexOf(network) < POLICY_STRICTNESS.indexOf(own.network)) {
    throw deny(`has network policy "${own.network}"; an acquire may only make it stricter, not "${network}"`);
  }
  if (request.allow !== undefined && network !== 'allowlist') {
    throw new ServiceError('VALIDATION_ERROR', '`allow` goes with network policy "allowlist" only', {
      network,
    });
  }
  let allow =
    network === 'allowlist' ? (request.allow ?? (own.network === 'allowlist' ? own.allow : [])) : [];
  allow = [...new Set(allow)].sort();
  if (own.network === 'allowlist') {
    const outside = allow.filter((range) => !own.allow.includes(range));
    if (outside.length > 0) throw deny(`allows only ${own.allow.join(', ')}; not ${outside.join(', ')}`);
  }
  const unchanged = network === own.network && allow.join(',') === [...own.allow].sort().join(',');
  return unchanged ? type : { ...type, security: { ...own, network, allow } };
}

/** The type's hard TTL, else SANDBOX_TTL: what a sandbox gets, and the most an acquire may ask; 0 is none. */
function maxTtlOf(type: SandboxType, config: Config): number {
  return type.timeouts.ttlSeconds ?? config.SANDBOX_TTL;
}

/** Binding failed because of that sandbox (dead, hung, already bound, gone), so another may do. */
function sandboxAtFault(err: unknown): boolean {
  const code = describeCodedError(err)?.code;
  return (
    code === 'UPSTREAM_ERROR' ||
    code === 'TIMEOUT' ||
    code === 'ALREADY_INITIALIZED' ||
    code === 'SANDBOX_NOT_FOUND'
  );
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (let item = items[next++]; item !== undefined; item = items[next++]) await work(item);
  });
  await Promise.all(lanes);
}
