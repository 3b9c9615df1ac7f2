/**
 * How one replica (a cluster worker or a separately started server) works with the other replicas
 * of its deployment: it keeps itself on the list of live replicas, takes part in electing the one
 * leader that runs the background loops, and passes refill requests to that leader. With the
 * in-memory store there is one replica, which leads from the start.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type Config, deploymentIdOf } from '../config/schema.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../state/state-store.js';
import { LeaderLease } from './leader-lease.js';
import { LocalRefillSignal, RedisRefillSignal, type RefillSignal } from './refill-signal.js';
import { RedisReplicaRegistry, type ReplicaRegistry, SoloReplicaRegistry } from './replica-registry.js';

/** The lease that makes one replica the leader of its deployment. */
const LEADER_LEASE = 'leader';

export interface CoordinatorEvents {
  /** This replica became leader (true) or stopped being it (false). */
  onLeaderChange(leader: boolean): void;
  /** Some replica asked the leader to check its pools. */
  onRefillRequest(): void;
}

export interface CoordinatorOptions {
  config: Config;
  store: StateStore;
  /** The state store's Redis client when REDIS_ENABLED; absent for the in-memory store. */
  redis: Redis | undefined;
  logger: Logger;
}

export class Coordinator {
  /** Names this process in records it creates, in the replica list and as the lease holder. */
  readonly replicaId = randomUUID();
  /** How long a replica counts as alive after its last heartbeat; also the leader lease's TTL. */
  readonly replicaTtlMs: number;
  private readonly replicas: ReplicaRegistry;
  private readonly refills: RefillSignal;
  private lease: LeaderLease | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeating: Promise<void> | undefined;
  private heartbeatFailing = false;

  constructor(private readonly options: CoordinatorOptions) {
    const { config, redis, logger } = options;
    this.replicaTtlMs = config.LEADER_LEASE_MS;
    const prefix = `${config.REDIS_KEY_PREFIX}:${deploymentIdOf(config)}:`;
    if (redis) {
      this.replicas = new RedisReplicaRegistry({
        redis,
        key: `${prefix}replicas`,
        replicaId: this.replicaId,
        ttlMs: this.replicaTtlMs,
      });
      this.refills = new RedisRefillSignal({ redis, channel: `${prefix}refill`, logger });
    } else {
      this.replicas = new SoloReplicaRegistry(this.replicaId);
      this.refills = new LocalRefillSignal();
    }
  }

  /** Joins the live replicas (failing if the store cannot be reached), then enters the election. */
  async start(events: CoordinatorEvents): Promise<void> {
    const { store, logger } = this.options;
    await this.replicas.heartbeat();
    this.scheduleHeartbeat();
    await this.refills.listen(events.onRefillRequest);
    this.lease = new LeaderLease({
      store,
      name: LEADER_LEASE,
      holder: this.replicaId,
      ttlMs: this.replicaTtlMs,
      logger,
      onChange: events.onLeaderChange,
    });
    await this.lease.start();
  }

  isLeader(): boolean {
    return this.lease?.isLeader ?? false;
  }

  /** Aborted when this replica's current term as leader ends (already aborted if it is not leader). */
  leaderSignal(): AbortSignal {
    return this.lease?.signal ?? AbortSignal.abort();
  }

  /** The replicas alive now; this one always among them. */
  async liveReplicas(): Promise<Set<string>> {
    const live = await this.replicas.live();
    live.add(this.replicaId);
    return live;
  }

  /** Asks the leader, wherever it runs, to top up the pools soon. */
  requestRefill(): void {
    this.refills.notify();
  }

  /**
   * Hands leadership over and leaves the live replicas. Resolves with how many other replicas of
   * the deployment are still alive, or null when the store could not say (Redis away).
   */
  async leave(): Promise<number | null> {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    // A heartbeat landing after the leave would count this replica alive again.
    await this.heartbeating;
    await this.lease?.stop();
    await this.refills.close();
    try {
      return await this.replicas.leave();
    } catch (err) {
      this.options.logger.warn({ err: messageOf(err) }, 'cannot tell whether other replicas are alive');
      return null;
    }
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeating = this.beat().finally(() => {
        this.heartbeating = undefined;
        if (this.heartbeatTimer !== undefined) this.scheduleHeartbeat();
      });
    }, this.replicaTtlMs / 3);
    this.heartbeatTimer.unref();
  }

  private async beat(): Promise<void> {
    try {
      await this.replicas.heartbeat();
      this.heartbeatFailing = false;
    } catch (err) {
      // Said once per outage; the Redis client logs its own connection errors.
      if (!this.heartbeatFailing)
        this.options.logger.warn({ err: messageOf(err) }, 'replica heartbeat failed');
      this.heartbeatFailing = true;
    }
  }
}
