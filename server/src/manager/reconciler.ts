/**
 * Makes records and containers agree, for this deployment only. Containers no record claims
 * (leftovers of a crashed run, or of a create whose process died) are destroyed; records whose
 * container died or vanished are destroyed with what they hold (a warm one leaves the pool, the
 * refiller replaces it); 'creating' records nobody is working on any more, and releases that
 * stopped half-way, are finished, their containers with them; warm records that a process died
 * before pooling are pooled; workspaces on this host that neither a record nor a container names
 * (a create whose process died before its container existed) are removed, mount and all.
 *
 * A container no record claims is left alone while its creator (its replica label) is another live
 * replica: its record may not be visible yet, or live in a state store this replica does not see.
 * That creator sweeps its own (`sweepOwn`, run by every replica that is not the leader), so the
 * containers of a state store that came back empty go whichever replica made them.
 * Without shared state the only live replica is this one (cluster/deployment-claim.ts keeps other
 * servers off the deployment), so everything unclaimed is a crashed earlier run's and goes.
 *
 * A create is abandoned when its creator is no longer a live replica (it died mid-create; its
 * heartbeat has run out, so within LEADER_LEASE_MS), or, whoever made it, when it outlives its
 * type's ready timeout by a wide margin (a create that failed and could not clean up after itself).
 *
 * Order matters, because creates and releases go on meanwhile: records are read before the
 * container list (a record already warm or claimed then had its container, so a missing one is
 * dead) and again after it (a container whose record appeared in between is not an orphan).
 * Workspace dirs are listed before both: a create stores its record before it makes the dir, so
 * a dir listed then whose record is missing after is no live create's.
 */
import type { Coordinator } from '../cluster/coordinator.js';
import type { ContainerSummary, Deployer } from '../deployers/deployer.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { SandboxRecord, StateStore } from '../state/state-store.js';
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
      coordinator: Pick<Coordinator, 'replicaId' | 'liveReplicas' | 'replicaTtlMs'>;
      metrics: ServerMetrics;
      logger: Logger;
    },
  ) {}

  /** `signal`: the leader's term; a pass whose term ended while it looked destroys nothing. */
  async run(options: { signal?: AbortSignal; now?: number } = {}): Promise<void> {
    const { deployer, provisioner, coordinator } = this.deps;
    const now = options.now ?? Date.now();
    const workspaces = await deployer.workspaceIds();
    const before = await this.records();
    // Those whose container must be there: a cached list confirms them before any is taken for gone.
    const expected = before
      .filter((r) => (r.status === 'warm' || r.status === 'claimed') && r.handle !== '')
      .map((r) => r.handle);
    const containers = await deployer.list(provisioner.deploymentId, expected);
    const after = new Map((await this.records()).map((r) => [r.id, r]));
    const live = await coordinator.liveReplicas();
    const running = new Set(containers.filter((c) => c.running).map((c) => c.sandboxId));

    const work: Array<() => Promise<void>> = [];
    const doomed = new Set<string>();
    const releasing = new Set<string>();
    for (const record of before) {
      const current = after.get(record.id);
      if (!current) continue;
      if ((record.status === 'warm' || record.status === 'claimed') && !running.has(record.id)) {
        work.push(() => this.destroyRecord(current, 'container-gone'));
      } else if (record.status === 'creating' && this.abandoned(current, now, live)) {
        // Its container may exist without the record knowing it yet (the creator died after
        // starting it): it goes with the record, below.
        doomed.add(record.id);
        work.push(() => this.destroyRecord(current, 'create-abandoned'));
      } else if (current.status === 'releasing') {
        // Still releasing a whole pass later: that destroy failed half-way; finish it.
        if (this.releasingLastPass.has(record.id))
          work.push(() => this.destroyRecord(current, 'release-unfinished'));
        else releasing.add(record.id);
      }
    }
    let orphans = 0;
    let leftToOthers = 0;
    for (const container of containers) {
      const id = container.sandboxId;
      // A doomed record's container goes with it, whoever made it.
      const withDoomed = id !== undefined && doomed.has(id);
      if (id !== undefined && after.has(id) && !withDoomed) continue;
      if (!withDoomed && !mayDestroyUnclaimed(container, coordinator.replicaId, live)) {
        leftToOthers++;
        continue;
      }
      orphans++;
      work.push(() => this.destroyOrphan(container.handle, id));
    }
    const named = new Set([...after.keys(), ...containers.map((c) => c.sandboxId)]);
    const strayWorkspaces = workspaces.filter((id) => !named.has(id) && !provisioner.isCreatingHere(id));
    for (const id of strayWorkspaces) work.push(() => this.releaseStrayWorkspace(id));
    this.releasingLastPass = releasing;
    if (options.signal?.aborted) return;
    await Promise.all(work.map((step) => step()));
    this.deps.logger.debug(
      {
        containers: containers.length,
        records: after.size,
        orphans,
        leftToOthers,
        strayWorkspaces: strayWorkspaces.length,
      },
      'reconcile pass',
    );
    if (!options.signal?.aborted) await this.poolStrays([...after.values()]);
  }

  /**
   * Destroys the containers this replica made that no record claims: what a replica that is not
   * the leader does each tick, since the leader leaves a live replica's containers to it. Records
   * are read after the container list, and a create stores its record before its container exists,
   * so no live create's container is taken for an orphan.
   */
  async sweepOwn(): Promise<void> {
    const { deployer, provisioner, coordinator } = this.deps;
    const own = (await deployer.list(provisioner.deploymentId)).filter(
      (c) => c.replicaId === coordinator.replicaId,
    );
    if (own.length === 0) return;
    const claimed = new Set((await this.records()).map((r) => r.id));
    const orphans = own.filter(
      (c) =>
        c.sandboxId === undefined || !(claimed.has(c.sandboxId) || provisioner.isCreatingHere(c.sandboxId)),
    );
    await Promise.all(orphans.map((c) => this.destroyOrphan(c.handle, c.sandboxId)));
  }

  private async records(): Promise<SandboxRecord[]> {
    const all = await this.deps.store.list();
    return all.filter((r) => r.deploymentId === this.deps.provisioner.deploymentId);
  }

  private abandoned(record: SandboxRecord, now: number, live: Set<string>): boolean {
    if (this.deps.provisioner.isCreatingHere(record.id)) return false;
    const age = now - record.createdAt;
    // Older than a heartbeat TTL, so a creator that is alive has had time to say so.
    if (record.creator !== null && !live.has(record.creator) && age > this.deps.coordinator.replicaTtlMs) {
      return true;
    }
    const readyMs = this.deps.registry.get(record.type)?.timeouts.readyMs ?? DEFAULT_READY_MS;
    return age > readyMs + ABANDONED_CREATE_GRACE_MS;
  }

  /**
   * A process that died between marking a sandbox warm and pooling it leaves a warm sandbox no
   * claim can reach. When a type's pool is shorter than its warm records, they are all pooled again
   * (pushing a pooled id only moves it to the back; a record no longer warm is refused).
   */
  private async poolStrays(records: SandboxRecord[]): Promise<void> {
    const { store } = this.deps;
    const warmByType = new Map<string, string[]>();
    for (const record of records.filter((r) => r.status === 'warm')) {
      warmByType.set(record.type, [...(warmByType.get(record.type) ?? []), record.id]);
    }
    for (const [type, ids] of warmByType) {
      if ((await store.warmCount(type)) >= ids.length) continue;
      for (const id of ids) await store.pushWarm(type, id);
    }
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

  private async releaseStrayWorkspace(sandboxId: string): Promise<void> {
    const { deployer, logger } = this.deps;
    try {
      await deployer.releaseWorkspace(sandboxId);
      logger.warn({ sandboxId }, 'removed a workspace no record or container names');
    } catch (err) {
      logger.error({ sandboxId, err: messageOf(err) }, 'removing a stray workspace failed');
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

/**
 * Whether `self` may destroy a container no record claims: not while its creator is another live
 * replica. A container without the replica label (made by an older server) may go, as it always did.
 */
export function mayDestroyUnclaimed(
  container: ContainerSummary,
  self: string,
  live: ReadonlySet<string>,
): boolean {
  const creator = container.replicaId;
  return creator === undefined || creator === self || !live.has(creator);
}
