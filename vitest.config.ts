import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** The files of the unit tier: no Docker, no Redis, no images; `npm run test:unit` runs them alone. */
const UNIT = ['test/unit/**/*.test.ts'];

export default defineConfig({
  // Tests run @runtime-sandbox/contract from its TypeScript source, as tsc and the bundles do.
  // Not 'module': packages such as the AWS SDK would resolve to ESM builds Node cannot load.
  ssr: {
    resolve: {
      conditions: ['runtime-sandbox-source', ...defaultServerConditions.filter((c) => c !== 'module')],
    },
  },
  test: {
    testTimeout: 120_000,
    hookTimeout: 300_000,
    env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts', 'client-sdk/test/**/*.test.ts'],
          exclude: UNIT,
          // Tests drive one real Docker engine on a 2-core machine; files run one after another so
          // that each file's containers, ports and timings are its own.
          fileParallelism: false,
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
