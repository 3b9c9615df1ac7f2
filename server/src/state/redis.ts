/**
 * The StateStore on Redis, shared by every worker and replica of a deployment. Each operation is one
 * Redis command or one Lua script (redis-scripts.ts), so it is atomic across processes: a warm
 * sandbox goes to exactly one claimer, a port to one owner, an instance slot never past the limit.
 *
 * Keys, all under `<keyPrefix>:<deploymentId>:` so deployments sharing a Redis never see each other:
 *   sbx:<id>             hash, one JSON value per record field (redis-record.ts)
 *   all                  set of record ids
 *   status:<status>      set of ids  } indexes kept by the record scripts; list() reads them and
 *   session:<sessionId>  set of ids  } never scans the keyspace
 *   type:<type>          set of ids  }
 *   tenant:<tenantId>    set of ids  } (also the tenant's slots: its limit counts this set)
 *   pool:<type>          list of warm ids, oldest first
 *   pool-targets         hash type -> pool size set at run time
 *   instances            set of ids holding an instance slot
 *   lease:<name>         string holding the lease holder, with a PX expiry
 *   rate:<name>          counter of a fixed window (e.g. a tenant's acquires), with a PX expiry
 * Empty sets and lists vanish in Redis, and delete() removes a record with its index and pool
 * entries, so a deployment whose sandboxes are all released leaves no keys behind but its pool
 * targets (one small hash), unexpired leases and unexpired rate windows.
 *
 * Host ports are the exception: they belong to the Docker host, not to a deployment, so the port
 * map (`<portsKey>`, a sorted set of `<port>:<owner>` scored by port, and `<portsKey>:cursor`)
 * defaults to `<keyPrefix>:ports`, shared by every deployment on this Redis. Deployments on
 * different Docker hosts that share a Redis may pass their own `portsKey`.
 */
import type { Redis } from 'ioredis';
import { redisExchange } from './errors.js';
import { decodeRecord, encodeFields } from './redis-record.js';
import {
  ACQUIRE_LEASE,
  ALLOCATE_PORT,
  ASSIGN_TENANT,
  CLAIM_WARM,
  COUNT_IN_WINDOW,
  DELETE,
  LIST,
  PUSH_WARM,
  PUT,
  RELEASE_LEASE,
  RELEASE_PORT,
  RESERVE_INSTANCE,
  TOUCH,
  UPDATE,
} from './redis-scripts.js';
import type { RecordFilter, SandboxRecord, StateStore, TenantQuota, WindowCount } from './state-store.js';

export interface RedisStateStoreOptions {
  /** The store owns this client: close() quits it. See redis-connection.ts for the settings it needs. */
  redis: Redis;
  keyPrefix: string;
  deploymentId: string;
  /** Port map key; default `<keyPrefix>:ports` (host-wide, shared across deployments). */
  portsKey?: string;
}

export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;
  /** `<keyPrefix>:<deploymentId>:`, the start of every key of this deployment. */
  private readonly prefix: string;
  private readonly portsKey: string;

  constructor(options: RedisStateStoreOptions) {
    this.redis = options.redis;
    this.prefix = `${options.keyPrefix}:${options.deploymentId}:`;
    this.portsKey = options.portsKey ?? `${options.keyPrefix}:ports`;
  }

  put(record: SandboxRecord): Promise<void> {
    return this.call('put', async () => {
      await PUT.run(this.redis, [], [this.prefix, record.id, ...encodeFields(record)]);
    });
  }

  async get(id: string): Promise<SandboxRecord | null> {
    const fields = await this.call('get', () => this.redis.hgetall(this.recordKey(id)));
    return Object.keys(fields).length === 0 ? null : decodeRecord(fields);
  }

  async update(id: string, patch: Partial<SandboxRecord>): Promise<SandboxRecord | null> {
    // The id names the key; a patch cannot move a record to another one.
    const { id: _ignored, ...fields } = patch;
    const raw = await this.call('update', () =>
      UPDATE.run(this.redis, [], [this.prefix, id, ...encodeFields(fields)]),
    );
    return Array.isArray(raw) ? decodeRecord(raw) : null;
  }

  delete(id: string): Promise<void> {
    return this.call('delete', async () => {
      await DELETE.run(this.redis, [], [this.prefix, id]);
    });
  }

  async list(filter: RecordFilter = {}): Promise<SandboxRecord[]> {
    const indexes: string[] = [];
    if (filter.sessionId !== undefined) indexes.push(`session:${filter.sessionId}`);
    if (filter.type !== undefined) indexes.push(`type:${filter.type}`);
    if (filter.status !== undefined) indexes.push(`status:${filter.status}`);
    if (filter.tenantId !== undefined) indexes.push(`tenant:${filter.tenantId}`);
    const raw = await this.call('list', () =>
      LIST.run(this.redis, [], [this.prefix, indexes.length, ...indexes]),
    );
    return Array.isArray(raw) ? raw.filter(Array.isArray).map((fields) => decodeRecord(fields)) : [];
  }

  pushWarm(type: string, id: string): Promise<void> {
    return this.call('pushWarm', async () => {
      await PUSH_WARM.run(this.redis, [], [this.prefix, type, id]);
    });
  }

  async claimWarm(type: string, now: number, tenant?: TenantQuota): Promise<SandboxRecord | null> {
    const forTenant = tenant ? [tenant.tenantId, tenant.maxSandboxes] : [];
    const raw = await this.call('claimWarm', () =>
      CLAIM_WARM.run(this.redis, [], [this.prefix, type, JSON.stringify(now), ...forTenant]),
    );
    return Array.isArray(raw) ? decodeRecord(raw) : null;
  }

  removeWarm(type: string, id: string): Promise<void> {
    return this.call('removeWarm', async () => {
      await this.redis.lrem(this.poolKey(type), 0, id);
    });
  }

  warmCount(type: string): Promise<number> {
    return this.call('warmCount', () => this.redis.llen(this.poolKey(type)));
  }

  getPoolTarget(type: string): Promise<number | null> {
    return this.call('getPoolTarget', async () => {
      const size = await this.redis.hget(this.poolTargetsKey(), type);
      return size === null ? null : Number(size);
    });
  }

  setPoolTarget(type: string, size: number): Promise<void> {
    return this.call('setPoolTarget', async () => {
      await this.redis.hset(this.poolTargetsKey(), type, size);
    });
  }

  assignTenant(id: string, tenant: TenantQuota): Promise<boolean> {
    return this.call('assignTenant', async () => {
      const args = [this.prefix, id, tenant.tenantId, tenant.maxSandboxes];
      return (await ASSIGN_TENANT.run(this.redis, [], args)) === 1;
    });
  }

  countInWindow(name: string, limit: number, windowMs: number): Promise<WindowCount> {
    return this.call('countInWindow', async () => {
      const raw = await COUNT_IN_WINDOW.run(this.redis, [`${this.prefix}rate:${name}`], [limit, windowMs]);
      const [allowed, resetInMs] = Array.isArray(raw) ? raw.map(Number) : [];
      return { allowed: allowed === 1, resetInMs: resetInMs ?? windowMs };
    });
  }

  reserveInstance(id: string, max: number): Promise<boolean> {
    return this.call('reserveInstance', async () => {
      const held = await RESERVE_INSTANCE.run(this.redis, [this.instancesKey()], [id, max]);
      return held === 1;
    });
  }

  releaseInstance(id: string): Promise<void> {
    return this.call('releaseInstance', async () => {
      await this.redis.srem(this.instancesKey(), id);
    });
  }

  instanceCount(): Promise<number> {
    return this.call('instanceCount', () => this.redis.scard(this.instancesKey()));
  }

  allocatePort(range: { start: number; end: number }, owner: string): Promise<number | null> {
    return this.call('allocatePort', async () => {
      const port = await ALLOCATE_PORT.run(
        this.redis,
        [this.portsKey, `${this.portsKey}:cursor`, this.recordKey(owner)],
        [range.start, range.end, owner],
      );
      return typeof port === 'number' ? port : null;
    });
  }

  releasePort(port: number, owner: string): Promise<void> {
    return this.call('releasePort', async () => {
      await RELEASE_PORT.run(this.redis, [this.portsKey], [port, owner]);
    });
  }

  touch(id: string, now: number): Promise<void> {
    return this.call('touch', async () => {
      await TOUCH.run(this.redis, [this.recordKey(id)], [JSON.stringify(now)]);
    });
  }

  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.call('acquireLease', async () => {
      const held = await ACQUIRE_LEASE.run(this.redis, [this.leaseKey(name)], [holder, Math.ceil(ttlMs)]);
      return held === 1;
    });
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.call('releaseLease', async () => {
      await RELEASE_LEASE.run(this.redis, [this.leaseKey(name)], [holder]);
    });
  }

  ping(): Promise<void> {
    return this.call('ping', async () => {
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    if (this.redis.status === 'end') return;
    try {
      await this.redis.quit();
    } catch {
      // Not connected: nothing to say goodbye to; stop the reconnect loop instead.
      this.redis.disconnect();
    }
  }

  private recordKey(id: string): string {
    return `${this.prefix}sbx:${id}`;
  }

  private poolKey(type: string): string {
    return `${this.prefix}pool:${type}`;
  }

  private poolTargetsKey(): string {
    return `${this.prefix}pool-targets`;
  }

  private instancesKey(): string {
    return `${this.prefix}instances`;
  }

  private leaseKey(name: string): string {
    return `${this.prefix}lease:${name}`;
  }

  /** One Redis exchange; any failure becomes StoreUnavailableError (see redisExchange). */
  private call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return redisExchange(operation, run);
  }
}
