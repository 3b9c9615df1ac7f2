#!/usr/bin/env bash
# The test command (README, .ci/run): sets up this machine, builds, lints, and runs every test
# against a real Docker engine, real Redis and a real S3 protocol server.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
npm run --silent build
node dist/builder.mjs all
npx biome check .
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json "$@"
node scripts/test-summary.mjs .vitest-results.json
