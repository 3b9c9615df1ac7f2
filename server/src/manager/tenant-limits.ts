/**
 * A tenant's limits as the manager applies them, and the 429 TENANT_LIMIT_EXCEEDED each one
 * answers. Every refusal names the limit and says when to retry (`retryAfterSeconds`, sent as
 * `Retry-After`): exact for the acquire rate, whose window closes at a known time; a fixed hint for
 * the others, which free up only when the tenant releases a sandbox or deletes a snapshot.
 */

import { ServiceError } from '../errors.js';
import type { TenantQuota } from '../state/state-store.js';
import type { Caller } from '../tenants/caller.js';

/** The window acquiresPerMinute counts in. */
export const ACQUIRE_WINDOW_MS = 60_000;
/** The hint for limits that free up by the tenant's own release or delete. */
const HELD_RETRY_SECONDS = 5;

/** What a claim or create counts against: the tenant and its maxSandboxes (0: none); none for the admin. */
export function quotaOf(caller: Caller): TenantQuota | undefined {
  if (caller.kind === 'admin') return undefined;
  return { tenantId: caller.tenant.id, maxSandboxes: caller.tenant.limits.maxSandboxes ?? 0 };
}

export function tenantFull(tenant: TenantQuota): ServiceError {
  return new ServiceError(
    'TENANT_LIMIT_EXCEEDED',
    `tenant "${tenant.tenantId}" holds its limit of ${tenant.maxSandboxes} live sandboxes; release one first`,
    {
      limit: 'maxSandboxes',
      tenantId: tenant.tenantId,
      max: tenant.maxSandboxes,
      retryAfterSeconds: HELD_RETRY_SECONDS,
    },
  );
}

export function acquireRateExceeded(tenantId: string, max: number, resetInMs: number): ServiceError {
  const retryAfterSeconds = Math.max(1, Math.ceil(resetInMs / 1000));
  return new ServiceError(
    'TENANT_LIMIT_EXCEEDED',
    `tenant "${tenantId}" made its ${max} acquires of this minute; retry in ${retryAfterSeconds} s`,
    { limit: 'acquiresPerMinute', tenantId, max, retryAfterSeconds },
  );
}

export function snapshotBytesExceeded(tenantId: string, max: number, usedBytes: number): ServiceError {
  return new ServiceError(
    'TENANT_LIMIT_EXCEEDED',
    `tenant "${tenantId}" may keep ${max} bytes of snapshots and holds ${usedBytes}; this snapshot would pass that, delete some first`,
    { limit: 'snapshotBytes', tenantId, max, usedBytes, retryAfterSeconds: HELD_RETRY_SECONDS },
  );
}
