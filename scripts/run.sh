#!/usr/bin/env bash
# make run: a local redis-server (the backend of the example config) and
# keyfence in the foreground. Ctrl-C stops both.
set -euo pipefail
BIN=${1:-build/keyfence}
CONFIG=${2:-deploy/examples/keyfence.yaml}
BACKEND_PORT=6379
RUN_DIR=$(mktemp -d /tmp/keyfence-run.XXXXXX)
REDIS_PID=""
cleanup() { [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null; rm -rf "$RUN_DIR"; }
trap cleanup EXIT
if redis-cli -p "$BACKEND_PORT" ping >/dev/null 2>&1; then
  echo "using the redis-server already listening on 127.0.0.1:$BACKEND_PORT"
else
  redis-server --port "$BACKEND_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p "$BACKEND_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "started redis-server on 127.0.0.1:$BACKEND_PORT (pid $REDIS_PID)"
fi
cat <<EOT

keyfence is starting with $CONFIG. Connect with:
  redis-cli -p 6381                                  # sidecar listener: tenant "orders", no AUTH
  redis-cli -p 6380 --user orders -a orders-secret   # gateway listener: AUTH picks the tenant
  redis-cli -p 6380 --user payments -a payments-secret
  curl -s 127.0.0.1:9121/metrics                      # admin: /healthz /readyz /config /tenants
The backend (redis-cli -p $BACKEND_PORT keys '*') holds every key under "shop@<tenant>:".

EOT
"$BIN" --config "$CONFIG"
