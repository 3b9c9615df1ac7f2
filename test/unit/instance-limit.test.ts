/** The instance limit a server has without MAX_SANDBOX_INSTANCES: from memory, never unlimited. */
import { describe, expect, it } from 'vitest';
import { instanceLimitOf } from '../../server/src/manager/instance-limit.js';
import { type SandboxType, sandboxTypeSchema } from '../../server/src/sandbox-types/definition.js';

const GIB = 1024 ** 3;
const typeWith = (memoryMiB: number): SandboxType =>
  sandboxTypeSchema.parse({ name: `m${memoryMiB}`, resources: { memoryMiB } });

describe('instanceLimitOf', () => {
  it.each([
    {
      setting: 0,
      memory: 24 * GIB,
      types: [512],
      limit: 36,
      why: 'three quarters of 24 GiB in 512 MiB sandboxes',
    },
    { setting: 0, memory: 24 * GIB, types: [512, 2048], limit: 9, why: 'counted at the largest type' },
    { setting: 0, memory: 1 * GIB, types: [4096], limit: 1, why: 'at least one' },
    { setting: 200, memory: 1 * GIB, types: [512], limit: 200, why: "the operator's setting wins" },
  ])('$why: $limit', ({ setting, memory, types, limit }) => {
    expect(instanceLimitOf({ MAX_SANDBOX_INSTANCES: setting }, types.map(typeWith), memory)).toBe(limit);
  });
});
