// Builds everything: type-checks the repository, bundles the CLIs and sandboxd with esbuild, and
// emits the shared contract, then the client SDK that imports it, with their declarations.
// `node scripts/build.mjs sandboxd` rebuilds only the daemon bundle (what the image build needs),
// and `node scripts/build.mjs cli` only the CLI bundles (what the server image's build stage
// needs: it has the sources they are made from, not the tests the type check covers); both skip
// the type check.
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

/** The export condition under which @runtime-sandbox/contract is its TypeScript source (package.json). */
const SOURCE = ['runtime-sandbox-source'];
const CONTRACT = '@runtime-sandbox/contract';

/** Every bare import stays external except the contract, which is bundled in from its source. */
const externalButContract = {
  name: 'external-but-contract',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^[^./]/ }, ({ path }) =>
      path === CONTRACT || path.startsWith(`${CONTRACT}/`) ? undefined : { path, external: true },
    );
  },
};

const only = process.argv[2];
if (only !== undefined && only !== 'sandboxd' && only !== 'cli') {
  throw new Error(`unknown build target ${only}: expected sandboxd, cli or nothing (everything)`);
}
if (only === undefined) run('npx', ['tsc', '-p', 'tsconfig.json']);

// sandboxd runs on the image's Node (Debian bookworm: Node 18), with every dependency inside.
if (only !== 'cli')
  await build({
    entryPoints: [join(root, 'sandbox-images/runtime/src/main.ts')],
    outfile: join(root, 'sandbox-images/runtime/dist/sandboxd.mjs'),
    bundle: true,
    conditions: SOURCE,
    platform: 'node',
    target: 'node18',
    format: 'esm',
    minify: true,
    legalComments: 'none',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: 'warning',
  });

if (only === 'sandboxd') process.exit(0);

// The server CLIs keep npm packages external (they are installed beside them), all but the contract.
// Split into chunks, so that a deployer's client library (Kubernetes' takes most of a second) is
// imported only when that deployer is chosen.
rmSync(join(root, 'dist/chunks'), { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'server/src/cli/server.ts'), join(root, 'server/src/cli/builder.ts')],
  outdir: join(root, 'dist'),
  entryNames: '[name]',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  conditions: SOURCE,
  plugins: [externalButContract],
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
for (const cli of ['server.mjs', 'builder.mjs']) chmodSync(join(root, 'dist', cli), 0o755);
if (only === 'cli') process.exit(0);

run('npx', ['tsc', '-p', 'packages/contract/tsconfig.build.json']);
run('npx', ['tsc', '-p', 'client-sdk/tsconfig.build.json']);
