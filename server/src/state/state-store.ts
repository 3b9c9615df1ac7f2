/**
 * Everything the manager must share between workers and replicas. The in-memory store serves one
 * worker; the Redis store (REDIS_ENABLED) makes every operation here atomic across processes.
 */
import type { Endpoint } from '../deployers/deployer.js';

export type SandboxStatus = 'creating' | 'warm' | 'claimed' | 'releasing';

export interface SandboxRecord {
  id: string;
  type: string;
  deploymentId: string;
  status: SandboxStatus;
  /** Deployer handle; empty while creating. */
  handle: string;
  endpoint: Endpoint | null;
  /** Host port taken from the allocator, to give back on release. */
  hostPort: number | null;
  /**
   * Nonce of sandboxd's current token (the boot token while warm, the caller-bound one after claim);
   * the token itself is derived from it with the server's secret (manager/sandbox-tokens.ts).
   */
  tokenNonce: string;
  sessionId: string | null;
  metadata: Record<string, string>;
  fromPool: boolean;
  /** Epoch milliseconds. */
  createdAt: number;
  claimedAt: number | null;
  lastActiveAt: number;
  idleTimeoutSeconds: number;
  /** Epoch ms of the hard TTL, or null for none. */
  expiresAt: number | null;
  /**
   * The replica (server process) that created the sandbox. A record still 'creating' whose creator
   * is no longer a live replica was abandoned by a process that died mid-create.
   */
  creator: string | null;
  /**
   * The tenant the sandbox belongs to, set in the same atomic step that counts it against the
   * tenant's limit (claimWarm, assignTenant); null for the admin's sandboxes and for pool sandboxes
   * nobody has claimed yet. The tenant's slot goes with the record.
   */
  tenantId: string | null;
}

export interface RecordFilter {
  sessionId?: string;
  type?: string;
  status?: SandboxStatus;
  tenantId?: string;
}

/** A tenant taking a sandbox: who, and how many records it may hold at once (0: no limit). */
export interface TenantQuota {
  tenantId: string;
  maxSandboxes: number;
}

/** One event counted in a fixed window (countInWindow). */
export interface WindowCount {
  /** Whether the event is within the window's limit. */
  allowed: boolean;
  /** Milliseconds until the window closes and counting starts over. */
  resetInMs: number;
}

export interface StateStore {
  readonly kind: 'memory' | 'redis';

  /** Creates or replaces a record. */
  put(record: SandboxRecord): Promise<void>;
  get(id: string): Promise<SandboxRecord | null>;
  /** Applies a partial update if the record exists; returns the new record or null. */
  update(id: string, patch: Partial<SandboxRecord>): Promise<SandboxRecord | null>;
  delete(id: string): Promise<void>;
  list(filter?: RecordFilter): Promise<SandboxRecord[]>;

  /**
   * Puts a ready sandbox (already stored with status 'warm') into its type's pool; does nothing when
   * the record is gone, not warm or of another type (so a late push cannot pool a dead sandbox).
   */
  pushWarm(type: string, id: string): Promise<void>;
  /**
   * Atomically takes one warm sandbox of the type and marks it 'claimed'; exactly one caller wins.
   * With a tenant, only while the tenant holds fewer than its maxSandboxes records, and the claimed
   * record is the tenant's in the same step. Null when the pool is empty or the tenant is full.
   */
  claimWarm(type: string, now: number, tenant?: TenantQuota): Promise<SandboxRecord | null>;
  /** Drops an id from the pool without claiming it (e.g. a pool sandbox that died). */
  removeWarm(type: string, id: string): Promise<void>;
  warmCount(type: string): Promise<number>;

  /** A pool size set at run time (PUT /v1/pools/:type), shared by every worker; null if never set. */
  getPoolTarget(type: string): Promise<number | null>;
  setPoolTarget(type: string, size: number): Promise<void>;

  /**
   * Makes the record the tenant's if the tenant holds fewer than its maxSandboxes records (a record
   * already the tenant's counts as held); false when the tenant is full or the record is gone.
   * Deleting the record frees the slot.
   */
  assignTenant(id: string, tenant: TenantQuota): Promise<boolean>;

  /**
   * Counts one event against `name`'s fixed window of `windowMs`, which opens with its first event;
   * shared by every worker and replica on the store, and gone by itself once the window closes.
   */
  countInWindow(name: string, limit: number, windowMs: number): Promise<WindowCount>;

  /** Takes an instance slot if fewer than `max` are taken (max 0: unlimited). */
  reserveInstance(id: string, max: number): Promise<boolean>;
  releaseInstance(id: string): Promise<void>;
  instanceCount(): Promise<number>;

  /**
   * A free host port in [start, end], now owned by `owner`, or null when all are taken. When `owner`
   * is the id of a record, the record's hostPort is set in the same atomic step, so a process that
   * dies right after cannot leave a port taken that no record names.
   */
  allocatePort(range: { start: number; end: number }, owner: string): Promise<number | null>;
  releasePort(port: number, owner: string): Promise<void>;

  /** Records activity on a claimed sandbox (idle timer refresh). */
  touch(id: string, now: number): Promise<void>;

  /** Takes or renews a named lease for `holder`; true if `holder` holds it afterwards. */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;

  /** The store answers (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
