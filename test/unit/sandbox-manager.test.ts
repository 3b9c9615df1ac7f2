/**
 * The manager's rules over the in-memory store and a fake deployer (support/fake-deployer.ts):
 * the branches the Docker suite cannot reach on demand. A dead warm sandbox makes the acquire try
 * another; a create that fails at any step gives back everything it took; concurrent acquires
 * never pass the instance limit; the reaper ends idle sandboxes and those past their TTL; a restore
 * that names no snapshot takes no sandbox, and one that fails gives its sandbox back; each claim's
 * hard expiry goes to the deployer (its backstop), never failing the acquire; a replica
 * that is not the leader destroys the containers it made that lost their records, and no other's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Coordinator } from '../../server/src/cluster/coordinator.js';
import { type ConfigInput, configSchema } from '../../server/src/config/schema.js';
import { ServiceError } from '../../server/src/errors.js';
import { SandboxManager } from '../../server/src/manager/sandbox-manager.js';
import { SandboxTokens } from '../../server/src/manager/sandbox-tokens.js';
import { SandboxdClient } from '../../server/src/manager/sandboxd-client.js';
import type { PendingRestore, WorkspaceRestorer } from '../../server/src/manager/snapshot-restorer.js';
import { createLogger } from '../../server/src/observability/logger.js';
import { ServerMetrics } from '../../server/src/observability/metrics.js';
import { createRegistry } from '../../server/src/sandbox-types/registry.js';
import { MemoryStateStore } from '../../server/src/state/memory.js';
import { ADMIN } from '../../server/src/tenants/caller.js';
import { eventually } from '../../support/eventually.js';
import { FakeDeployer } from './support/fake-deployer.js';

/** Restores as the test says: none found, failing, or done (recording the sandbox it went into). */
class ScriptedRestorer implements WorkspaceRestorer {
  outcome: 'missing' | 'fails' | 'restores' = 'restores';
  readonly restoredInto: string[] = [];

  async find(): Promise<PendingRestore> {
    if (this.outcome === 'missing') throw new ServiceError('SNAPSHOT_NOT_FOUND', 'no such snapshot');
    return {
      into: async (sandbox) => {
        if (this.outcome === 'fails') throw new ServiceError('RESTORE_FAILED', 'the bytes were bad');
        this.restoredInto.push(sandbox.id);
      },
    };
  }
}

interface Harness {
  manager: SandboxManager;
  restorer: ScriptedRestorer;
  deployer: FakeDeployer;
  store: MemoryStateStore;
}

const running: SandboxManager[] = [];

afterEach(async () => {
  for (const manager of running.splice(0)) await manager.stop({ cleanup: true });
});

/** A replica that never leads, next to another live replica named `OTHER_REPLICA`. */
const OTHER_REPLICA = 'other-live-replica';
class FollowerCoordinator extends Coordinator {
  override isLeader(): boolean {
    return false;
  }

  override async liveReplicas(): Promise<Set<string>> {
    return new Set([...(await super.liveReplicas()), OTHER_REPLICA]);
  }
}

async function startManager(
  settings: ConfigInput = {},
  deployer = new FakeDeployer(),
  makeCoordinator: (options: ConstructorParameters<typeof Coordinator>[0]) => Coordinator = (options) =>
    new Coordinator(options),
): Promise<Harness> {
  const config = configSchema.parse({
    DEPLOYMENT_ID: 'unit',
    POOL_SIZE: '0',
    MAINTENANCE_INTERVAL_MS: '50',
    ...settings,
  });
  const registry = createRegistry(config);
  registry.register({ name: 'slow', timeouts: { readyMs: 300 }, poolSize: 0 });
  const logger = createLogger('silent');
  const store = new MemoryStateStore();
  const restorer = new ScriptedRestorer();
  const manager = new SandboxManager({
    config,
    registry,
    deployer,
    store,
    sandboxd: new SandboxdClient(),
    tokens: SandboxTokens.fromConfig(config),
    coordinator: makeCoordinator({ config, store, redis: undefined, logger }),
    restorer,
    metrics: new ServerMetrics(),
    logger,
  });
  await manager.start();
  running.push(manager);
  return { manager, restorer, deployer, store };
}

/** Timeout and poll interval of the waits here: the fake deployer answers in microseconds. */
const FAST = [10_000, 20] as const;

/** Nothing of a sandbox is left: no record, slot, port, fake sandbox or workspace. */
async function expectNothingLeft({ store, deployer }: Harness): Promise<void> {
  expect(await store.list()).toEqual([]);
  expect(await store.instanceCount()).toBe(0);
  expect([...deployer.live.keys()]).toEqual([]);
  expect(deployer.workspaces.size).toBe(0);
}

describe('SandboxManager over a fake deployer', () => {
  it('destroys a warm sandbox whose sandboxd died and binds the caller to another', async () => {
    const harness = await startManager({ POOL_SIZE: '1' });
    const { manager, deployer } = harness;
    await eventually(
      'a warm sandbox',
      async () => (await manager.pool('base')).warm === 1 || undefined,
      ...FAST,
    );
    const [dead] = [...deployer.live.values()];
    if (!dead) throw new Error('no warm sandbox');
    dead.behaviour.initStatus = 500;

    const bound = await manager.acquire({}, ADMIN);
    expect(bound.status).toBe('claimed');
    expect(bound.id).not.toBe(dead.spec.sandboxId);
    expect(deployer.destroyed).toContain(dead.handle);
    await expect(manager.get(dead.spec.sandboxId, ADMIN)).rejects.toMatchObject({
      code: 'SANDBOX_NOT_FOUND',
    });
  });

  it('gives up after three sandboxes that cannot be bound, and leaves none of them', async () => {
    const harness = await startManager();
    harness.deployer.script({ initStatus: 500 }, { initStatus: 500 }, { initStatus: 500 });
    await expect(harness.manager.acquire({}, ADMIN)).rejects.toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(harness.deployer.destroyed).toHaveLength(3);
    await expectNothingLeft(harness);
  });

  it.each([
    { step: 'the deployer refuses the create', script: { createError: new Error('engine said no') } },
    { step: 'sandboxd never gets ready', script: { neverReady: true }, type: 'slow' },
  ])('gives back everything a create took when $step', async ({ script, type }) => {
    const harness = await startManager();
    harness.deployer.script(script);
    await expect(harness.manager.acquire({ type }, ADMIN)).rejects.toMatchObject({
      code: 'SANDBOX_CREATE_FAILED',
    });
    await expectNothingLeft(harness);
  });

  it('takes no sandbox for a restore that names no snapshot, and gives back the one whose restore failed', async () => {
    const harness = await startManager();
    const { manager, restorer, deployer } = harness;
    const restore = { snapshotId: '00000000-0000-4000-8000-000000000000' };
    restorer.outcome = 'missing';
    await expect(manager.acquire({ restore }, ADMIN)).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
    expect(deployer.destroyed).toEqual([]);
    await expectNothingLeft(harness);

    restorer.outcome = 'fails';
    await expect(manager.acquire({ restore }, ADMIN)).rejects.toMatchObject({ code: 'RESTORE_FAILED' });
    expect(deployer.destroyed).toHaveLength(1);
    await expectNothingLeft(harness);

    restorer.outcome = 'restores';
    const restored = await manager.acquire({ restore }, ADMIN);
    expect(restorer.restoredInto).toEqual([restored.id]);
    expect(restored.status).toBe('claimed');
  });

  it('lets no more than MAX_SANDBOX_INSTANCES of many concurrent acquires through', async () => {
    const harness = await startManager({ MAX_SANDBOX_INSTANCES: '2' });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, () => harness.manager.acquire({}, ADMIN)),
    );
    const bound = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(bound).toHaveLength(2);
    for (const reason of refused) expect(reason).toMatchObject({ code: 'CAPACITY_EXCEEDED' });
    expect(harness.deployer.live.size).toBe(2);
    expect(await harness.store.instanceCount()).toBe(2);
  });

  it('reaps a sandbox idle past its timeout, and gives back all it held', async () => {
    const harness = await startManager();
    const bound = await harness.manager.acquire({ idleTimeoutSeconds: 1 }, ADMIN);
    await eventually(
      'the idle reap',
      async () => (await harness.store.get(bound.id)) === null || undefined,
      ...FAST,
    );
    await expectNothingLeft(harness);
  });

  it('reaps a sandbox past its hard TTL though it is kept alive', async () => {
    const harness = await startManager();
    const bound = await harness.manager.acquire({ ttlSeconds: 1 }, ADMIN);
    const keepAlive = setInterval(() => {
      harness.manager.keepalive(bound.id, ADMIN).catch(() => undefined);
    }, 100);
    try {
      await eventually(
        'the TTL reap',
        async () => (await harness.store.get(bound.id)) === null || undefined,
        ...FAST,
      );
    } finally {
      clearInterval(keepAlive);
    }
    await expectNothingLeft(harness);
  });

  it('tells the deployer the hard expiry of each claim, warm or cold, and none without a TTL; its failure fails no acquire', async () => {
    const { manager, deployer } = await startManager({ POOL_SIZE: '1' });
    await eventually(
      'a warm sandbox',
      async () => (await manager.pool('base')).warm === 1 || undefined,
      ...FAST,
    );
    const warm = await manager.acquire({ ttlSeconds: 600 }, ADMIN);
    const cold = await manager.acquire({ type: 'slow', ttlSeconds: 300 }, ADMIN);
    expect(warm.fromPool).toBe(true);
    expect(cold.fromPool).toBe(false);
    // Started before the acquire answers (not awaited): the fake takes it at once.
    expect(deployer.expiries.get(warm.handle)).toBe(warm.expiresAt);
    expect(deployer.expiries.get(cold.handle)).toBe(cold.expiresAt);
    expect(cold.expiresAt).toBeGreaterThanOrEqual(Date.now() + 299_000);

    const untimed = await startManager({ SANDBOX_TTL: '0' });
    const forever = await untimed.manager.acquire({}, ADMIN);
    expect(forever.expiresAt).toBeNull();
    expect(untimed.deployer.expiries.size).toBe(0);

    class RefusingDeployer extends FakeDeployer {
      override async bindExpiry(): Promise<void> {
        throw new ServiceError('UPSTREAM_ERROR', 'the backend refused the deadline');
      }
    }
    const refusing = await startManager({}, new RefusingDeployer());
    const bound = await refusing.manager.acquire({ ttlSeconds: 60 }, ADMIN);
    expect(bound.status).toBe('claimed');
    expect((await refusing.manager.get(bound.id, ADMIN)).status).toBe('claimed');
  });

  it("as a replica that is not the leader, destroys its own containers that lost their records, and no other live replica's", async () => {
    const harness = await startManager({}, new FakeDeployer(), (options) => new FollowerCoordinator(options));
    const { manager, deployer, store } = harness;
    const own = await manager.acquire({}, ADMIN);
    const kept = await manager.acquire({}, ADMIN);
    const ownSandbox = [...deployer.live.values()].find((s) => s.spec.sandboxId === own.id);
    if (!ownSandbox) throw new Error('no container for the acquired sandbox');
    const others = await deployer.create({
      ...ownSandbox.spec,
      sandboxId: 'sbx-of-other',
      replicaId: OTHER_REPLICA,
    });
    // The state store lost this record (Redis came back empty): nobody claims the container.
    await store.delete(own.id);

    await eventually(
      'the own orphan and its workspace to go',
      () => (deployer.destroyed.includes(ownSandbox.handle) && !deployer.workspaces.has(own.id)) || undefined,
      ...FAST,
    );
    expect(deployer.live.has(others.handle)).toBe(true);
    expect((await manager.get(kept.id, ADMIN)).status).toBe('claimed');
    await deployer.destroy(others.handle);
  });
});
