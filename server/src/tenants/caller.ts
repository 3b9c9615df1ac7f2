/**
 * Who a request acts for. The admin (BEARER_TOKEN, or anyone when auth is off on loopback) sees and
 * touches everything; a tenant (a key from API_KEYS_FILE) only what it owns: the sandboxes it
 * acquired and its own snapshots, and within its limits.
 */
import type { Tenant } from './api-keys.js';

export type Caller = { kind: 'admin' } | { kind: 'tenant'; tenant: Tenant };

export const ADMIN: Caller = { kind: 'admin' };

/** The tenant id a caller's new things are owned by; null for the admin. */
export function tenantIdOf(caller: Caller): string | null {
  return caller.kind === 'tenant' ? caller.tenant.id : null;
}

/** Whether the caller may see a thing owned by `ownerTenantId` (null: the admin's, or the pool's). */
export function mayAccess(caller: Caller, ownerTenantId: string | null): boolean {
  return caller.kind === 'admin' || caller.tenant.id === ownerTenantId;
}
