/**
 * Keeps each type's warm pool at its target. `kick()` is cheap and coalescing: it is called on every
 * maintenance tick and (through `kickSoon`) shortly after every claim. Creates run in the background, at most
 * POOL_FILL_CONCURRENCY at once across all types; each finished create kicks again, so a large
 * deficit drains continuously rather than tick by tick. A type whose creates fail backs off.
 *
 * Only the deployment's leader fills (and shrinks) pools, so replicas never race each other into
 * overfilling one; a replica that loses leadership starts no further creates, and the ones it has
 * under way count for the new leader as 'creating' records.
 */
import type { Coordinator } from '../cluster/coordinator.js';
import type { Config } from '../config/schema.js';
import { describeCodedError, messageOf } from '../errors.js';
import { detached, type Logger } from '../observability/logger.js';
import type { SandboxType } from '../sandbox-types/definition.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { StateStore } from '../state/state-store.js';
import { newSandboxId, type Provisioner } from './provisioner.js';

/**
 * A claim's refill waits this long: creating a container keeps Docker busy on every core for a few
 * hundred milliseconds, and the caller who just claimed is about to run its first command.
 */
const REFILL_AFTER_CLAIM_MS = 250;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

export interface PoolStatus {
  type: string;
  target: number;
  warm: number;
  creating: number;
}

export interface PoolRefillerDeps {
  config: Config;
  registry: SandboxTypeRegistry;
  store: StateStore;
  provisioner: Provisioner;
  coordinator: Pick<Coordinator, 'isLeader'>;
  logger: Logger;
}

export class PoolRefiller {
  /** Per type, ids of pool sandboxes this process is creating. */
  private readonly inFlight = new Map<string, Set<string>>();
  private readonly running = new Set<Promise<void>>();
  private readonly backoff = new Map<string, { failures: number; until: number }>();
  /** Set when the instance limit refused a pool create; cleared by the next tick. */
  private capacityBlocked = false;
  private filling: Promise<void> | undefined;
  private fillAgain = false;
  private soon: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly deps: PoolRefillerDeps) {}

  /** The runtime override (PUT /v1/pools/:type) if any, else the registry's size for the type. */
  async targetOf(type: SandboxType): Promise<number> {
    return (await this.deps.store.getPoolTarget(type.name)) ?? this.deps.registry.poolSizeFor(type);
  }

  async status(type: SandboxType): Promise<PoolStatus> {
    const { store } = this.deps;
    const [target, warm, creating] = await Promise.all([
      this.targetOf(type),
      store.warmCount(type.name),
      store.list({ type: type.name, status: 'creating' }),
    ]);
    return { type: type.name, target, warm, creating: creating.filter((r) => r.fromPool).length };
  }

  /** Starts filling toward the targets; returns at once. `tick` clears a capacity block. */
  kick(options: { tick?: boolean } = {}): void {
    if (this.stopped) return;
    if (options.tick) this.capacityBlocked = false;
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.filling = detached(() => this.fill())
      .catch((err: unknown) => this.deps.logger.error({ err: messageOf(err) }, 'pool refill pass failed'))
      .finally(() => {
        this.filling = undefined;
        if (this.fillAgain) {
          this.fillAgain = false;
          this.kick();
        }
      });
  }

  /** A kick shortly (after a claim); several claims in a row share one. */
  kickSoon(): void {
    if (this.stopped || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.kick();
    }, REFILL_AFTER_CLAIM_MS);
    this.soon.unref();
  }

  /** Resolves once every create this process started has settled (a fresh pool is ready). */
  async idle(): Promise<void> {
    while (this.filling || this.running.size > 0) {
      await Promise.allSettled([this.filling, ...this.running]);
    }
  }

  /** No new creates; the ones under way are cut short (their sandboxes destroyed) and awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.soon);
    this.abort.abort();
    await this.idle();
  }

  private async fill(): Promise<void> {
    for (const type of this.deps.registry.list()) {
      if (this.stopped || this.capacityBlocked || !this.deps.coordinator.isLeader()) return;
      const backoff = this.backoff.get(type.name);
      if (backoff && backoff.until > Date.now()) continue;
      await this.fillType(type);
    }
  }

  private async fillType(type: SandboxType): Promise<void> {
    const { store, config } = this.deps;
    const local = this.inFlightOf(type.name);
    const [target, warm, creating] = await Promise.all([
      this.targetOf(type),
      store.warmCount(type.name),
      store.list({ type: type.name, status: 'creating' }),
    ]);
    // Other workers' creates count too (their records are in the store); ours may not be stored yet.
    const elsewhere = creating.filter((r) => r.fromPool && !local.has(r.id)).length;
    const deficit = target - warm - elsewhere - local.size;
    // Leadership may have passed while the counts were read.
    if (!this.deps.coordinator.isLeader()) return;
    if (deficit < 0 && local.size === 0) {
      await this.shrink(type, Math.min(warm, -deficit));
      return;
    }
    for (let i = 0; i < deficit && this.running.size < config.POOL_FILL_CONCURRENCY; i++) {
      this.launch(type);
    }
  }

  private launch(type: SandboxType): void {
    const id = newSandboxId();
    const local = this.inFlightOf(type.name);
    local.add(id);
    const job = this.createWarm(type, id).finally(() => {
      local.delete(id);
      this.running.delete(job);
    });
    this.running.add(job);
  }

  private async createWarm(type: SandboxType, id: string): Promise<void> {
    const { provisioner, store, logger } = this.deps;
    try {
      const record = await provisioner.create(type, { id, pooled: true, signal: this.abort.signal });
      if (this.stopped) {
        await provisioner.destroy(record, 'shutdown');
        return;
      }
      await provisioner.warmUp(record);
      const warm = await store.update(id, { status: 'warm' });
      if (!warm) return;
      await store.pushWarm(type.name, id);
      this.backoff.delete(type.name);
      logger.debug({ sandboxId: id, type: type.name }, 'warm sandbox added to the pool');
      this.kick();
    } catch (err) {
      if (this.stopped) return;
      if (describeCodedError(err)?.code === 'CAPACITY_EXCEEDED') {
        // Not a fault: the pool waits for a release; the next tick tries again.
        this.capacityBlocked = true;
        logger.debug({ type: type.name }, 'pool refill waits: instance limit or port range is full');
        return;
      }
      const failures = (this.backoff.get(type.name)?.failures ?? 0) + 1;
      const delay = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (failures - 1));
      this.backoff.set(type.name, { failures, until: Date.now() + delay });
      logger.error({ type: type.name, err: messageOf(err), retryInMs: delay }, 'pool sandbox create failed');
    }
  }

  /** Destroys warm sandboxes above a lowered target, claiming them first so no caller gets one. */
  private async shrink(type: SandboxType, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const record = await this.deps.store.claimWarm(type.name, Date.now());
      if (!record) return;
      await this.deps.provisioner.destroy(record, 'pool-shrunk');
    }
  }

  private inFlightOf(type: string): Set<string> {
    let ids = this.inFlight.get(type);
    if (!ids) {
      ids = new Set();
      this.inFlight.set(type, ids);
    }
    return ids;
  }
}
