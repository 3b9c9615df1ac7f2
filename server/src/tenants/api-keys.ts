/**
 * Tenants and their API keys, from the JSON file API_KEYS_FILE names:
 *
 *   {"tenants": [{"id": "acme", "keys": ["sha256:<64 hex>"],
 *                 "limits": {"maxSandboxes": 10, "acquiresPerMinute": 60, "snapshotBytes": 1073741824}}]}
 *
 * The file holds only SHA-256 digests of the keys, never a key: a digest is useless to whoever
 * reads the file, and the keys are long random strings (`runtime-sandbox-server hash-key` makes
 * one), so an unsalted fast hash is enough. An entry that is not a digest is refused at start.
 *
 * Lookup hashes the presented key and compares the digest with every stored one by
 * timingSafeEqual, without stopping at a match: the time taken depends on the number of keys only,
 * never on how much of a key or digest matched. (A Map keyed by digest would be as safe in practice,
 * since the caller cannot steer the digest of its guess, but a full constant-time scan leaves
 * nothing to argue about and costs microseconds for hundreds of keys.)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { messageOf } from '../errors.js';

/** Lowercase letters, digits and `-`, at most 63; also the namespace of the tenant's snapshot keys. */
export const tenantIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    'a tenant id is 1-63 of a-z, 0-9 and -, starting with a letter or digit',
  );

const KEY_HASH = /^sha256:[0-9a-f]{64}$/;

const keyHashSchema = z
  .string()
  .transform((hash) => hash.trim().toLowerCase())
  .refine((hash) => KEY_HASH.test(hash), {
    // The value is left out: it may be a plain key someone pasted by mistake.
    message:
      'is not a key hash; store "sha256:<64 hex digits>" of the key, never the key itself (`runtime-sandbox-server hash-key` makes a key and its hash)',
  });

const limitsSchema = z.strictObject({
  /** Live sandboxes the tenant holds at once (creating ones included). */
  maxSandboxes: z.number().int().min(1).optional(),
  /** Acquires per minute, across every worker and replica sharing the state store. */
  acquiresPerMinute: z.number().int().min(1).optional(),
  /** Bytes of snapshots the tenant keeps in the snapshot store. */
  snapshotBytes: z.number().int().min(0).optional(),
});

const tenantSchema = z.strictObject({
  id: tenantIdSchema,
  keys: z.array(keyHashSchema).min(1, 'a tenant needs at least one key hash'),
  /** Absent limits are no limits of that kind. */
  limits: limitsSchema.default({}),
});

export const apiKeysFileSchema = z
  .strictObject({ tenants: z.array(tenantSchema) })
  .superRefine((file, ctx) => {
    const ids = new Set<string>();
    const owners = new Map<string, string>();
    file.tenants.forEach((tenant, t) => {
      if (ids.has(tenant.id)) {
        ctx.addIssue({ code: 'custom', path: ['tenants', t, 'id'], message: `tenant "${tenant.id}" twice` });
      }
      ids.add(tenant.id);
      tenant.keys.forEach((hash, k) => {
        const owner = owners.get(hash);
        if (owner !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['tenants', t, 'keys', k],
            message: `this key hash is also a key of tenant "${owner}"; a key belongs to one tenant`,
          });
        }
        owners.set(hash, tenant.id);
      });
    });
  });

export type TenantLimits = z.output<typeof limitsSchema>;

export interface Tenant {
  id: string;
  limits: TenantLimits;
}

/** API_KEYS_FILE cannot be read or is not a valid keys file; the server does not start. */
export class ApiKeysFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiKeysFileError';
  }
}

const digestOf = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** `sha256:<hex>` of a key, as the keys file holds it. */
export function keyHashOf(key: string): string {
  return `sha256:${digestOf(key).toString('hex')}`;
}

/** A fresh API key (256 random bits) and the hash that goes into the keys file. */
export function newApiKey(): { key: string; hash: string } {
  const key = `rsk_${randomBytes(32).toString('base64url')}`;
  return { key, hash: keyHashOf(key) };
}

export class TenantKeys {
  private readonly entries: Array<{ digest: Buffer; tenant: Tenant }> = [];

  constructor(file: z.output<typeof apiKeysFileSchema>) {
    for (const { id, keys, limits } of file.tenants) {
      const tenant: Tenant = { id, limits };
      for (const hash of keys) {
        this.entries.push({ digest: Buffer.from(hash.slice('sha256:'.length), 'hex'), tenant });
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** The tenant this key belongs to, or null; constant time in the key (see the header). */
  tenantOf(key: string): Tenant | null {
    const given = digestOf(key);
    let found: Tenant | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(given, entry.digest)) found = entry.tenant;
    }
    return found;
  }
}

/**
 * Reads and checks the keys file; every problem at once, by path, no key or hash ever echoed. The
 * admin token (BEARER_TOKEN) may not also be a tenant's key: one key, one caller.
 */
export function loadTenantKeys(path: string, adminToken: string | undefined): TenantKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ApiKeysFileError(`API_KEYS_FILE ${path} cannot be read as JSON: ${messageOf(err)}`);
  }
  const result = apiKeysFileSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}`,
    );
    throw new ApiKeysFileError(`API_KEYS_FILE ${path} is invalid: ${problems.join('; ')}`);
  }
  const keys = new TenantKeys(result.data);
  const shared = adminToken === undefined ? null : keys.tenantOf(adminToken);
  if (shared !== null) {
    throw new ApiKeysFileError(
      `API_KEYS_FILE ${path}: BEARER_TOKEN is also a key of tenant "${shared.id}"; give the admin a key of its own`,
    );
  }
  return keys;
}
