#!/usr/bin/env bash
# The test command (README, .ci/run): sets up this machine, builds, lints, and runs every test
# against a real Docker engine, real Redis and a real S3 protocol server; then the SDK's tests and
# the README's walkthroughs again on Node 24 LTS (scripts/node24-leg.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
npm run --silent build
node dist/builder.mjs all
npx biome check .
node --conditions=runtime-sandbox-source --import tsx scripts/lint-openapi.ts
node --conditions=runtime-sandbox-source --import tsx scripts/check-layers.ts
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json "$@"
# With no test filter given, the second leg: the SDK and the README's walkthroughs on Node 24 LTS.
if [ "$#" -eq 0 ]; then
  bash scripts/node24-leg.sh
  node scripts/test-summary.mjs .vitest-results.json .vitest-results-node24.json
else
  node scripts/test-summary.mjs .vitest-results.json
fi
