#!/usr/bin/env bash
# Real-client tests: starts redis-server and keyfence (through the Python harness, on free
# loopback ports) and runs the node tests against them. Needs node_modules (npm ci here).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -d "$here/node_modules/ioredis" || ! -d "$here/node_modules/redis" ]]; then
  echo "tests/clients/node_modules is missing: run 'npm ci' in tests/clients" >&2
  exit 1
fi
export KEYFENCE_BIN="${KEYFENCE_BIN:-$here/../../build/keyfence}"
cd "$here"
# run.sh            the standalone suites
# run.sh --cluster  cluster.test.mjs against keyfence over a 3-master Redis Cluster
if [[ "${1:-}" == "--cluster" ]]; then
  exec /usr/bin/python3 "$here/../integration/harness.py" run --cluster -- \
    node --test --test-reporter=spec --test-timeout=30000 cluster.test.mjs
fi
exec /usr/bin/python3 "$here/../integration/harness.py" run -- \
  node --test --test-reporter=spec --test-timeout=20000 ioredis.test.mjs node-redis.test.mjs
