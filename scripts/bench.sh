#!/usr/bin/env bash
# The benchmark command (`npm run bench`): sets up this machine like scripts/test.sh (Docker, deps,
# bundles, sandbox images), then runs every benchmark and prints one table, also written with the
# machine description to bench/results.json. Exits non-zero when any benchmark failed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
npm run --silent build
node dist/builder.mjs all
npx tsx --conditions=runtime-sandbox-source bench/run-all.ts
