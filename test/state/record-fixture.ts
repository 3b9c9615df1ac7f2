import { randomUUID } from 'node:crypto';
import type { SandboxRecord } from '../../server/src/state/state-store.js';

/** A complete record with a fresh id; epoch-ms-sized numbers so encodings must keep every digit. */
export function sandboxRecord(overrides: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id: randomUUID(),
    type: 'base',
    deploymentId: 'test-deployment',
    status: 'warm',
    handle: `container-${randomUUID()}`,
    endpoint: { host: '127.0.0.1', port: 49_153 },
    hostPort: 49_153,
    tokenNonce: 'boot-nonce-0123456789abcdef',
    sessionId: null,
    metadata: { owner: 'agent-7', note: 'ünïcödé, "quotes" and : colons' },
    fromPool: true,
    createdAt: 1_732_190_000_123,
    claimedAt: null,
    lastActiveAt: 1_732_190_000_456,
    idleTimeoutSeconds: 300,
    expiresAt: null,
    creator: 'replica-1',
    tenantId: null,
    ...overrides,
  };
}
