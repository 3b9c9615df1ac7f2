#!/usr/bin/env bash
# Quick start: makes the machine ready (Docker engine, npm packages), builds the server and the
# sandbox images of the served types, then runs runtime-sandbox-server in the foreground.
# Extra arguments go to the server, e.g. `npm start -- --config config/local.env`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
npm run --silent build
node dist/builder.mjs all
exec node dist/server.mjs "$@"
