/**
 * Ends claimed sandboxes whose caller went quiet (idle timeout) or whose hard TTL passed. Runs on the
 * maintenance tick; a sandbox busy with a long call is touched while the call lasts, so only real
 * silence counts as idle.
 */

import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxRecord, StateStore } from '../state/state-store.js';
import type { Provisioner } from './provisioner.js';

export type ReapReason = 'idle' | 'ttl';

export function reapReason(record: SandboxRecord, now: number): ReapReason | null {
  if (record.status !== 'claimed') return null;
  if (record.expiresAt !== null && now >= record.expiresAt) return 'ttl';
  if (now - record.lastActiveAt >= record.idleTimeoutSeconds * 1000) return 'idle';
  return null;
}

export class Reaper {
  constructor(
    private readonly deps: {
      store: StateStore;
      provisioner: Provisioner;
      metrics: ServerMetrics;
      logger: Logger;
    },
  ) {}

  /** `signal`: the leader's term; once it ends, no further sandbox is reaped by this pass. */
  async run(options: { signal?: AbortSignal; now?: number } = {}): Promise<void> {
    const { store, provisioner } = this.deps;
    const now = options.now ?? Date.now();
    const claimed = await store.list({ status: 'claimed' });
    const due = claimed.filter(
      (r) => r.deploymentId === provisioner.deploymentId && reapReason(r, now) !== null,
    );
    await Promise.all(due.map((record) => this.reap(record.id, options.signal)));
  }

  private async reap(id: string, signal: AbortSignal | undefined): Promise<void> {
    const { store, provisioner, metrics, logger } = this.deps;
    try {
      // Read again: a call may have touched it since the list was taken.
      const record = await store.get(id);
      const reason = record ? reapReason(record, Date.now()) : null;
      if (!record || !reason || signal?.aborted) return;
      await provisioner.destroy(record, reason);
      metrics.reapedTotal.inc({ reason });
    } catch (err) {
      logger.error({ sandboxId: id, err: messageOf(err) }, 'reaping a sandbox failed');
    }
  }
}
