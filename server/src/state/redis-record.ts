/**
 * How a SandboxRecord is laid out in Redis: one hash per record, one field per property, each value
 * JSON. Per-field JSON lets the Lua scripts patch single fields and read the indexed ones without
 * re-encoding the record (Redis's cjson would round numbers to 14 digits). Reading back goes through
 * a zod schema, so a record written by another version or by hand cannot pass for a valid one.
 */
import { z } from 'zod';
import { endpointSchema } from '../deployers/deployer.js';
import type { SandboxRecord } from './state-store.js';

const sandboxRecordSchema = z.object({
  id: z.string(),
  type: z.string(),
  deploymentId: z.string(),
  status: z.enum(['creating', 'warm', 'claimed', 'releasing']),
  handle: z.string(),
  endpoint: endpointSchema.nullable(),
  hostPort: z.number().nullable(),
  tokenNonce: z.string(),
  sessionId: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
  fromPool: z.boolean(),
  createdAt: z.number(),
  claimedAt: z.number().nullable(),
  lastActiveAt: z.number(),
  idleTimeoutSeconds: z.number(),
  expiresAt: z.number().nullable(),
  creator: z.string().nullable(),
  // Records written before tenants existed have no owner.
  tenantId: z.string().nullable().default(null),
}) satisfies z.ZodType<SandboxRecord>;

/** `field, json, field, json...` for HSET; undefined properties are left out. */
export function encodeFields(fields: Partial<SandboxRecord>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined) out.push(name, JSON.stringify(value));
  }
  return out;
}

/** A record from HGETALL, as an object (ioredis' hgetall) or as the flat array a script returns. */
export function decodeRecord(raw: Record<string, string> | unknown[]): SandboxRecord {
  const entries = Array.isArray(raw) ? pairs(raw) : Object.entries(raw);
  const fields: Record<string, unknown> = {};
  for (const [name, json] of entries) {
    try {
      fields[name] = JSON.parse(json);
    } catch {
      throw new Error(`sandbox record field "${name}" in Redis is not JSON: ${json.slice(0, 80)}`);
    }
  }
  const parsed = sandboxRecordSchema.safeParse(fields);
  if (!parsed.success) {
    throw new Error(
      `sandbox record ${String(fields.id)} in Redis is malformed: ${z.prettifyError(parsed.error)}`,
    );
  }
  return parsed.data;
}

function pairs(flat: unknown[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), String(flat[i + 1])]);
  return out;
}
