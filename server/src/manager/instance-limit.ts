/**
 * How many sandboxes, warm ones included, a deployment may run at once. An operator's
 * MAX_SANDBOX_INSTANCES wins; without one the limit comes from the machine, so a flood of acquires
 * (or a pool resized to a thousand) stops where memory would run out, not after it did.
 */
import { totalmem } from 'node:os';
import type { Config } from '../config/schema.js';
import type { SandboxType } from '../sandbox-types/definition.js';

/** Share of the machine's memory the sandboxes' limits may add up to; the rest is the host's. */
const SANDBOX_MEMORY_SHARE = 0.75;
const MIB = 1024 * 1024;

export function instanceLimitOf(
  config: Pick<Config, 'MAX_SANDBOX_INSTANCES'>,
  types: readonly SandboxType[],
  machineMemoryBytes = totalmem(),
): number {
  if (config.MAX_SANDBOX_INSTANCES > 0) return config.MAX_SANDBOX_INSTANCES;
  // Counted at the largest type's memory limit, so every mix of types fits.
  const largestMiB = Math.max(...types.map((type) => type.resources.memoryMiB));
  return Math.max(1, Math.floor((machineMemoryBytes * SANDBOX_MEMORY_SHARE) / (largestMiB * MIB)));
}
