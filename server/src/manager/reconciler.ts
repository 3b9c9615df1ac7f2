/**
 * Makes records and containers agree, for this deployment only. Containers no record claims
 * (leftovers of a crashed run, or of a create whose process died) are destroyed; records whose
 * container died or vanished are destroyed with what they hold (a warm one leaves the pool, the
 * refiller replaces it); 'creating' records nobody is working on any more, and releases that
 * stopped half-way, are finished.
 *
 * Order matters, because creates and releases go on meanwhile: records are read before the
 * container list (a record already warm or claimed then had its container, so a missing one is
 * dead) and again after it (a container whose record appeared in between is not an orphan).
 */
import type { Deployer } from '../deployers/deployer.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { SandboxRecord, StateStore } from '../state/state-store.js';
import { messageOf } from './errors.js';
import type { Provisioner } from './provisioner.js';

/** A create is abandoned when it outlives its type's ready timeout by this much. */
const ABANDONED_CREATE_GRACE_MS = 60_000;
const DEFAULT_READY_MS = 30_000;

export class Reconciler {
  /** Records seen 'releasing' by the previous pass. */
  private releasingLastPass = new Set<string>();

  constructor(
    private readonly deps: {
      store: StateStore;
      deployer: Deployer;
      provisioner: Provisioner;
      registry: SandboxTypeRegistry;
      metrics: ServerMetrics;
      logger: Logger;
    },
  ) {}

  async run(now = Date.now()): Promise<void> {
    const { deployer, provisioner } = this.deps;
    const before = await this.records();
    const containers = await deployer.list(provisioner.deploymentId);
    const after = new Map((await this.records()).map((r) => [r.id, r]));
    const running = new Set(containers.filter((c) => c.running).map((c) => c.sandboxId));

    const work: Promise<void>[] = [];
    for (const container of containers) {
      if (container.sandboxId !== undefined && after.has(container.sandboxId)) continue;
      work.push(this.destroyOrphan(container.handle, container.sandboxId));
    }
    const releasing = new Set<string>();
    for (const record of before) {
      const current = after.get(record.id);
      if (!current) continue;
      if ((record.status === 'warm' || record.status === 'claimed') && !running.has(record.id)) {
        work.push(this.destroyRecord(current, 'container-gone'));
      } else if (record.status === 'creating' && this.abandoned(record, now)) {
        work.push(this.destroyRecord(current, 'create-abandoned'));
      } else if (current.status === 'releasing') {
        // Still releasing a whole pass later: that destroy failed half-way; finish it.
        if (this.releasingLastPass.has(record.id))
          work.push(this.destroyRecord(current, 'release-unfinished'));
        else releasing.add(record.id);
      }
    }
    this.releasingLastPass = releasing;
    await Promise.all(work);
  }

  private async records(): Promise<SandboxRecord[]> {
    const all = await this.deps.store.list();
    return all.filter((r) => r.deploymentId === this.deps.provisioner.deploymentId);
  }

  private abandoned(record: SandboxRecord, now: number): boolean {
    if (this.deps.provisioner.isCreatingHere(record.id)) return false;
    const readyMs = this.deps.registry.get(record.type)?.timeouts.readyMs ?? DEFAULT_READY_MS;
    return now - record.createdAt > readyMs + ABANDONED_CREATE_GRACE_MS;
  }

  private async destroyOrphan(handle: string, sandboxId: string | undefined): Promise<void> {
    const { provisioner, metrics, logger } = this.deps;
    try {
      await provisioner.destroyOrphan(handle, sandboxId);
      metrics.reapedTotal.inc({ reason: 'orphan' });
      logger.warn({ handle, sandboxId }, 'destroyed a container no record claims');
    } catch (err) {
      logger.error({ handle, sandboxId, err: messageOf(err) }, 'destroying an orphan container failed');
    }
  }

  private async destroyRecord(record: SandboxRecord, reason: string): Promise<void> {
    const { provisioner, metrics, logger } = this.deps;
    try {
      await provisioner.destroy(record, reason);
      metrics.reapedTotal.inc({ reason });
    } catch (err) {
      logger.error({ sandboxId: record.id, err: messageOf(err) }, 'destroying a dead sandbox failed');
    }
  }
}
