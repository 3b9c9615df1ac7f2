/**
 * The leader of a deployment: the one replica that runs the background loops (refill, reap,
 * reconcile). Leadership is a lease in the state store, renewed by a timer of its own every third
 * of its TTL, so work that runs long never lets it lapse. The holder counts itself leader only
 * until the lease would expire if the last successful renewal were the last one (measured from
 * when that renewal was sent, so never later than the store's own expiry); each term carries an
 * AbortSignal that fires the moment the term ends, and work checks it between steps. Followers try
 * to take the lease on the same timer, so one takes over within TTL + TTL/3 of the holder's death.
 */

import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../state/state-store.js';

export interface LeaderLeaseOptions {
  store: Pick<StateStore, 'acquireLease' | 'releaseLease'>;
  name: string;
  holder: string;
  ttlMs: number;
  logger: Logger;
  /** Called when this replica becomes leader (true) or stops being it (false). */
  onChange: (leader: boolean) => void;
}

const NOT_LEADER = AbortSignal.abort(new Error('not the leader'));

export class LeaderLease {
  /** The current term; undefined while not leader. */
  private term: AbortController | undefined;
  private heldUntil = 0;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private attempting: Promise<void> | undefined;
  private failing = false;
  private stopped = false;

  constructor(private readonly options: LeaderLeaseOptions) {}

  get isLeader(): boolean {
    return this.term !== undefined && Date.now() < this.heldUntil;
  }

  /** Aborted when the current term ends; already aborted when this replica is not the leader. */
  get signal(): AbortSignal {
    return this.isLeader && this.term ? this.term.signal : NOT_LEADER;
  }

  /** Makes a first attempt (so a lone replica leads as soon as it starts), then keeps trying. */
  async start(): Promise<void> {
    this.attempting = this.attempt();
    await this.attempting;
    this.attempting = undefined;
    this.schedule();
  }

  /**
   * Stops trying; a leader ends its term and hands the lease back, so a follower takes over on its
   * next try (within a third of the TTL) rather than once the TTL runs out.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    await this.attempting;
    this.end('handing over: this replica is stopping', 'info');
    // Unconditionally: a renewal whose answer was lost may have left the lease with us.
    await this.options.store.releaseLease(this.options.name, this.options.holder).catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.renewTimer = setTimeout(() => {
      this.attempting = this.attempt().finally(() => {
        this.attempting = undefined;
        this.schedule();
      });
    }, this.options.ttlMs / 3);
    this.renewTimer.unref();
  }

  private async attempt(): Promise<void> {
    const { store, name, holder, ttlMs, logger } = this.options;
    const sentAt = Date.now();
    let held: boolean;
    try {
      held = await store.acquireLease(name, holder, ttlMs);
    } catch (err) {
      // The expiry timer ends the term if renewals keep failing; say so once per outage.
      if (!this.failing) logger.warn({ err: messageOf(err) }, 'cannot renew or take the leader lease');
      this.failing = true;
      return;
    }
    this.failing = false;
    if (!held) {
      this.end('another replica holds the leader lease', 'warn');
      return;
    }
    this.heldUntil = sentAt + ttlMs;
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => this.end('the leader lease expired unrenewed', 'warn'),
      Math.max(0, this.heldUntil - Date.now()),
    );
    this.expiryTimer.unref();
    if (this.term) return;
    this.term = new AbortController();
    logger.info({ holder, leaseMs: ttlMs }, 'became leader');
    this.options.onChange(true);
  }

  private end(reason: string, level: 'info' | 'warn'): void {
    clearTimeout(this.expiryTimer);
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    this.heldUntil = 0;
    term.abort(new Error(reason));
    this.options.logger[level]({ holder: this.options.holder, reason }, 'no longer leader');
    this.options.onChange(false);
  }
}
