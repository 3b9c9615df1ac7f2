/**
 * The state store of a single worker: plain maps in this process. Every method is atomic because
 * none awaits between reading and writing. Records are copied in and out, so callers see the same
 * value semantics as with the Redis store and cannot change stored state by mutating a result.
 */
import type { RecordFilter, SandboxRecord, StateStore, TenantQuota, WindowCount } from './state-store.js';

export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const;

  private readonly records = new Map<string, SandboxRecord>();
  /** Per type, warm ids oldest first: claims take the longest-waiting sandbox. */
  private readonly pools = new Map<string, string[]>();
  private readonly poolTargets = new Map<string, number>();
  private readonly instances = new Set<string>();
  /** Port -> owner. */
  private readonly ports = new Map<number, string>();
  /** Where the next port search starts, so a freed port is not handed out again at once. */
  private nextPort: number | null = null;
  private readonly leases = new Map<string, { holder: string; expiresAt: number }>();
  private readonly windows = new Map<string, { count: number; closesAt: number }>();

  async put(record: SandboxRecord): Promise<void> {
    this.records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<SandboxRecord | null> {
    const record = this.records.get(id);
    return record ? structuredClone(record) : null;
  }

  async update(id: string, patch: Partial<SandboxRecord>): Promise<SandboxRecord | null> {
    const record = this.records.get(id);
    if (!record) return null;
    const updated = { ...record, ...structuredClone(patch), id };
    this.records.set(id, updated);
    return structuredClone(updated);
  }

  async delete(id: string): Promise<void> {
    this.records.delete(id);
  }

  async list(filter: RecordFilter = {}): Promise<SandboxRecord[]> {
    const matches: SandboxRecord[] = [];
    for (const record of this.records.values()) {
      if (filter.sessionId !== undefined && record.sessionId !== filter.sessionId) continue;
      if (filter.type !== undefined && record.type !== filter.type) continue;
      if (filter.status !== undefined && record.status !== filter.status) continue;
      if (filter.tenantId !== undefined && record.tenantId !== filter.tenantId) continue;
      matches.push(structuredClone(record));
    }
    return matches;
  }

  async pushWarm(type: string, id: string): Promise<void> {
    const record = this.records.get(id);
    if (record?.status !== 'warm' || record.type !== type) return;
    const pool = this.poolOf(type);
    if (!pool.includes(id)) pool.push(id);
  }

  async claimWarm(type: string, now: number, tenant?: TenantQuota): Promise<SandboxRecord | null> {
    if (tenant && this.isFull(tenant)) return null;
    const pool = this.poolOf(type);
    for (let id = pool.shift(); id !== undefined; id = pool.shift()) {
      const record = this.records.get(id);
      if (record?.status !== 'warm') continue;
      const claimed: SandboxRecord = {
        ...record,
        status: 'claimed',
        claimedAt: now,
        lastActiveAt: now,
        tenantId: tenant?.tenantId ?? record.tenantId,
      };
      this.records.set(id, claimed);
      return structuredClone(claimed);
    }
    return null;
  }

  async removeWarm(type: string, id: string): Promise<void> {
    const pool = this.poolOf(type);
    const index = pool.indexOf(id);
    if (index >= 0) pool.splice(index, 1);
  }

  async warmCount(type: string): Promise<number> {
    return this.poolOf(type).length;
  }

  async getPoolTarget(type: string): Promise<number | null> {
    return this.poolTargets.get(type) ?? null;
  }

  async setPoolTarget(type: string, size: number): Promise<void> {
    this.poolTargets.set(type, size);
  }

  async assignTenant(id: string, tenant: TenantQuota): Promise<boolean> {
    const record = this.records.get(id);
    if (!record) return false;
    if (record.tenantId === tenant.tenantId) return true;
    if (this.isFull(tenant)) return false;
    this.records.set(id, { ...record, tenantId: tenant.tenantId });
    return true;
  }

  async countInWindow(name: string, limit: number, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let window = this.windows.get(name);
    if (!window || window.closesAt <= now) {
      // Closed windows go, so the map holds only windows still open.
      for (const [other, { closesAt }] of this.windows) if (closesAt <= now) this.windows.delete(other);
      window = { count: 0, closesAt: now + windowMs };
      this.windows.set(name, window);
    }
    window.count++;
    return { allowed: window.count <= limit, resetInMs: window.closesAt - now };
  }

  async reserveInstance(id: string, max: number): Promise<boolean> {
    if (this.instances.has(id)) return true;
    if (max > 0 && this.instances.size >= max) return false;
    this.instances.add(id);
    return true;
  }

  async releaseInstance(id: string): Promise<void> {
    this.instances.delete(id);
  }

  async instanceCount(): Promise<number> {
    return this.instances.size;
  }

  async allocatePort(range: { start: number; end: number }, owner: string): Promise<number | null> {
    const size = range.end - range.start + 1;
    const cursor = this.nextPort;
    const first = cursor !== null && cursor >= range.start && cursor <= range.end ? cursor : range.start;
    for (let i = 0; i < size; i++) {
      const port = range.start + ((first - range.start + i) % size);
      if (this.ports.has(port)) continue;
      this.ports.set(port, owner);
      this.nextPort = port === range.end ? range.start : port + 1;
      const record = this.records.get(owner);
      if (record) this.records.set(owner, { ...record, hostPort: port });
      return port;
    }
    return null;
  }

  async releasePort(port: number, owner: string): Promise<void> {
    if (this.ports.get(port) === owner) this.ports.delete(port);
  }

  async touch(id: string, now: number): Promise<void> {
    const record = this.records.get(id);
    if (record) this.records.set(id, { ...record, lastActiveAt: now });
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const lease = this.leases.get(name);
    if (lease && lease.holder !== holder && lease.expiresAt > now) return false;
    this.leases.set(name, { holder, expiresAt: now + ttlMs });
    return true;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    if (this.leases.get(name)?.holder === holder) this.leases.delete(name);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  private isFull({ tenantId, maxSandboxes }: TenantQuota): boolean {
    if (maxSandboxes <= 0) return false;
    let held = 0;
    for (const record of this.records.values()) if (record.tenantId === tenantId) held++;
    return held >= maxSandboxes;
  }

  private poolOf(type: string): string[] {
    let pool = this.pools.get(type);
    if (!pool) {
      pool = [];
      this.pools.set(type, pool);
    }
    return pool;
  }
}
