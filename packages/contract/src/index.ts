/**
 * @runtime-sandbox/contract: what the server, sandboxd and the client SDK say to each other. Types
 * are the zod schemas' inputs (what callers send) and outputs (what answers carry). TokenGate, which
 * needs node:crypto, is apart in `@runtime-sandbox/contract/token-gate`.
 */
export * from './archive.js';
export * from './env.js';
export * from './error-body.js';
export * from './error-codes.js';
export * from './exec.js';
export * from './files.js';
export * from './init.js';
export * from './ndjson.js';
export * from './network.js';
export * from './pools.js';
export * from './python.js';
export * from './run-as.js';
export * from './sandboxd.js';
export * from './sandboxes.js';
export * from './snapshots.js';
export * from './tools.js';
