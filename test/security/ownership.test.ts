/**
 * One owner per container. Two servers on their defaults (no Redis) on one engine: the second runs
 * under the next free deployment id, and neither destroys the other's sandboxes, over many reconcile
 * passes and across the other's shutdown. An id the operator chose that another server runs is
 * refused. A server killed with SIGKILL releases its id, and the next one on it clears the leftovers.
 * With Redis, a container no record claims is left to its creator while that replica is alive, and
 * the creator destroys it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ID_ATTEMPTS, holdClaim } from '../../server/src/cluster/deployment-claim.js';
import { configSchema, deploymentIdOf } from '../../server/src/config/schema.js';
import { LABELS, MANAGED_BY_VALUE } from '../../server/src/deployers/deployer.js';
import { BASE_IMAGE } from '../../support/images.js';
import {
  containersOf,
  docker,
  eventually,
  removeContainersOf,
  removeMountDir,
  requireImage,
  runServerCli,
  type ServerProcess,
  startServerProcess,
  waitForWarm,
} from '../../support/server-process.js';
import { lastLeader, onRedis } from '../redis/support.js';
import { withDeployment, withRedis } from '../support/fixture.js';
import { allocatePortRange, type PortRange } from '../support/port-ranges.js';

/** What `npm start` runs as. */
const DEFAULT_ID = deploymentIdOf(configSchema.parse({}));
const DEFAULT_IDS = [
  DEFAULT_ID,
  ...Array.from({ length: DEFAULT_ID_ATTEMPTS - 1 }, (_, i) => `${DEFAULT_ID}-${i + 2}`),
];
/** Ports of each server on the defaults (their PORT_RANGE is given: only the id is left default). */
const PORTS_EACH = 30;
const MAINTENANCE_INTERVAL_MS = 300;
const PASSES = 5;
const ORPHAN_DESTROYED = 'destroyed a container no record claims';
const IMAGE = BASE_IMAGE;

const passes = (server: ServerProcess): number =>
  server.logs().filter((line) => line.msg === 'reconcile pass').length;

/** Until every server has reconciled `PASSES` more times than it had when called. */
async function waitForPasses(servers: ServerProcess[]): Promise<void> {
  const targets = servers.map((server) => passes(server) + PASSES);
  await eventually(`${PASSES} reconcile passes on each server`, async () =>
    servers.every((server, i) => passes(server) >= (targets[i] ?? 0)) ? true : undefined,
  );
}

function replicaIdOf(server: ServerProcess): string {
  const started = server.logs().find((line) => line.msg === 'sandbox manager started');
  if (typeof started?.replicaId !== 'string') throw new Error('no "sandbox manager started" line');
  return started.replicaId;
}

async function execWho(server: ServerProcess, id: string): Promise<unknown> {
  return server.call('POST', `/v1/sandboxes/${id}/exec`, { command: 'echo $WHO' });
}

/** Container ids of a deployment, sorted. */
async function containerIds(deploymentId: string): Promise<string[]> {
  return (await containersOf(deploymentId)).map((c) => c.Id).sort();
}

/** Removes what default-id deployments left, except one a live server (not ours) holds. */
async function removeUnheldDefaultContainers(): Promise<void> {
  for (const id of DEFAULT_IDS) {
    const claim = await holdClaim(id);
    if (claim === null) continue;
    await removeContainersOf(id);
    await claim.release();
  }
}

describe('one owner per container', () => {
  const { redis } = withRedis();
  const redisDeployment = withDeployment('h9-test-ownership-redis', { start: onRedis(redis), ports: 30 });
  const REDIS_DEPLOYMENT = redisDeployment.id;
  // The servers on the default id: the fixture's deployments all have ids of their own.
  const servers: ServerProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'h9-ownership-'));
  let ports: PortRange | undefined;

  /** The `part`-th slice of PORTS_EACH ports of the file's range (first, second, next server). */
  const portRange = (part: number): string => {
    if (!ports) throw new Error('no port range before the beforeAll');
    const first = ports.first + part * PORTS_EACH;
    return `${first}-${first + PORTS_EACH - 1}`;
  };

  const startDefaults = async (part: number): Promise<ServerProcess> => {
    const server = await startServerProcess({
      portRange: portRange(part),
      env: { MAINTENANCE_INTERVAL_MS: String(MAINTENANCE_INTERVAL_MS), LOG_LEVEL: 'debug' },
    });
    servers.push(server);
    return server;
  };

  beforeAll(async () => {
    await requireImage(IMAGE);
    for (const id of DEFAULT_IDS) {
      const claim = await holdClaim(id);
      if (claim === null) {
        throw new Error(`a server on default settings runs deployment ${id} on this host; stop it first`);
      }
      await claim.release();
    }
    await removeUnheldDefaultContainers();
    ports = allocatePortRange(3 * PORTS_EACH);
  });

  afterAll(async () => {
    for (const server of servers) await server.stop('SIGKILL');
    await removeUnheldDefaultContainers();
    removeMountDir(dir);
    ports?.release();
    expect(await containersOf(DEFAULT_ID)).toEqual([]);
  });

  it("two servers on their defaults keep to their own sandboxes, and one's shutdown spares the other's", async () => {
    const first = await startDefaults(0);
    const second = await startDefaults(1);
    expect(first.deploymentId).toBe(DEFAULT_ID);
    expect(second.deploymentId).toBe(`${DEFAULT_ID}-2`);
    expect(
      second
        .logs()
        .some(
          (line) =>
            line.level === 'warn' &&
            line.deploymentId === second.deploymentId &&
            String(line.msg).includes(`running as deployment ${second.deploymentId}`),
        ),
    ).toBe(true);

    const held = await Promise.all(
      [first, second].map((server) =>
        server.call<{ id: string }>('POST', '/v1/sandboxes', { env: { WHO: server.deploymentId } }),
      ),
    );
    expect(held.map((h) => h.status)).toEqual([201, 201]);
    const [heldFirst, heldSecond] = held.map((h) => h.body.id);
    await waitForWarm(first, 'base', 1);
    await waitForWarm(second, 'base', 1);
    await waitForPasses([first, second]);

    expect(await execWho(first, heldFirst ?? '')).toMatchObject({
      status: 200,
      body: { exitCode: 0, stdout: `${first.deploymentId}\n` },
    });
    expect(await execWho(second, heldSecond ?? '')).toMatchObject({
      status: 200,
      body: { exitCode: 0, stdout: `${second.deploymentId}\n` },
    });
    for (const server of [first, second]) {
      expect(server.logs().filter((line) => line.msg === ORPHAN_DESTROYED)).toEqual([]);
    }
    const firstContainers = await containerIds(first.deploymentId);
    expect(firstContainers).toHaveLength(2);
    expect(await containerIds(second.deploymentId)).toHaveLength(2);

    // The second cleans up its own deployment on the way out, and nothing of the first's.
    expect(await second.stop('SIGTERM')).toBe(0);
    expect(await containerIds(second.deploymentId)).toEqual([]);
    expect(await containerIds(first.deploymentId)).toEqual(firstContainers);
    expect(await execWho(first, heldFirst ?? '')).toMatchObject({ status: 200, body: { exitCode: 0 } });
  }, 180_000);

  it('refuses to start on a deployment id the operator chose when another server runs it', async () => {
    const running = servers[0];
    if (running === undefined) throw new Error('the first test starts the server this one needs');
    const configFile = join(dir, 'empty.env');
    writeFileSync(configFile, '');
    const expected = `another runtime-sandbox server without shared state already runs deployment ${running.deploymentId} on this host; give this one its own DEPLOYMENT_ID, or share state with REDIS_ENABLED`;
    for (const setting of ['DEPLOYMENT_ID', 'CONTAINER_PREFIX_KEY']) {
      const run = await runServerCli(['--config', configFile], {
        PORT: '0',
        PORT_RANGE: portRange(1),
        DEFAULT_MOUNT_DIR: join(dir, 'refused'),
        [setting]: running.deploymentId,
      });
      expect(run.code, setting).not.toBe(0);
      expect(run.stderr, setting).toContain(expected);
      const logged = run.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(
        logged.some((line) => line.level === 'error' && line.msg === expected),
        setting,
      ).toBe(true);
    }
    expect(running.child.exitCode).toBeNull();
  });

  it('after a SIGKILL the next server on the defaults takes the same id and clears the leftovers', async () => {
    const killed = servers[0];
    if (killed === undefined) throw new Error('the first test starts the server this one needs');
    const leftovers = await containerIds(killed.deploymentId);
    expect(leftovers.length).toBeGreaterThan(0);
    await killed.stop('SIGKILL');
    expect(await containerIds(killed.deploymentId)).toEqual(leftovers);

    const next = await startDefaults(2);
    expect(next.deploymentId).toBe(killed.deploymentId);
    const own = replicaIdOf(next);
    await eventually(
      "the killed server's containers to go",
      async () => {
        const containers = await containersOf(next.deploymentId);
        return containers.every((c) => c.Labels[LABELS.replica] === own) ? true : undefined;
      },
      60_000,
    );
    expect(next.logs().some((line) => line.msg === ORPHAN_DESTROYED)).toBe(true);
    await waitForWarm(next, 'base', 1);
    expect(await next.stop('SIGTERM')).toBe(0);
    expect(await containersOf(next.deploymentId)).toEqual([]);
  }, 180_000);

  it('with Redis, leaves an unclaimed container to its creator while that replica is alive, which destroys it', async () => {
    const env = { POOL_SIZE: '0', LOG_LEVEL: 'debug' };
    const replicas: ServerProcess[] = [];
    for (let i = 0; i < 2; i++) replicas.push(await redisDeployment.start({ env }));
    // The replica that reconciles, and the one whose container it must leave alone.
    const leader = await eventually('a leader', async () => {
      const holder = lastLeader(replicas)?.holder;
      return replicas.find((r) => holder !== undefined && replicaIdOf(r) === holder);
    });
    const creator = replicas.find((r) => r !== leader);
    if (creator === undefined) throw new Error('two replicas were started');

    const unclaimed = async (sandboxId: string, replicaId: string): Promise<string> => {
      const container = await docker.createContainer({
        Image: IMAGE,
        name: `${REDIS_DEPLOYMENT}-${sandboxId}`,
        Labels: {
          [LABELS.managedBy]: MANAGED_BY_VALUE,
          [LABELS.deployment]: REDIS_DEPLOYMENT,
          [LABELS.sandboxId]: sandboxId,
          [LABELS.replica]: replicaId,
        },
      });
      return container.id;
    };
    // As after Redis came back empty: containers of a live replica and of a dead one, no records.
    await unclaimed('ofliveReplica', replicaIdOf(creator));
    await unclaimed('ofDeadReplica', randomUUID());

    await eventually('both containers to go', async () =>
      (await containerIds(REDIS_DEPLOYMENT)).length === 0 ? true : undefined,
    );
    const destroyedBy = (server: ServerProcess) =>
      server
        .logs()
        .filter((line) => line.msg === ORPHAN_DESTROYED)
        .map((line) => line.sandboxId);
    // Each destroy is logged just after its container went.
    await eventually('both destroys in the logs', async () =>
      destroyedBy(leader).length + destroyedBy(creator).length >= 2 ? true : undefined,
    );
    // The leader took the dead replica's only; the live one swept its own.
    expect(destroyedBy(leader)).toEqual(['ofDeadReplica']);
    expect(destroyedBy(creator)).toEqual(['ofliveReplica']);
    for (const replica of [creator, leader]) expect(await replica.stop('SIGTERM')).toBe(0);
  }, 180_000);
});
