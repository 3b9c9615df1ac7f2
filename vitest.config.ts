import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'client-sdk/test/**/*.test.ts'],
    // Tests drive one real Docker engine on a 2-core machine; files run one after another so that
    // each file's containers, ports and timings are its own.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    globalSetup: ['test/support/global-setup.ts'],
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
  },
});
