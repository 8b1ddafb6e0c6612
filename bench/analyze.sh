#!/usr/bin/env bash
# Scale of `keyfence analyze` (issue 11), measured, not asserted: a redis-server on
# 127.0.0.1:7000 gets KEYS keys (default 1,000,000) of mixed types in three
# namespaces (DEBUG POPULATE strings, plus hashes, lists, sets and zsets written
# by a Lua loop), SAVEs, and then, side by side:
#   keyfence analyze --rdb dump.rdb --json   wall time and peak RSS (/usr/bin/time)
#   keyfence analyze --json                  the same over replication (an RDB-only
#                                            replica: the master's BGSAVE streamed in)
#   redis-cli --memkeys                      a pipelined SCAN + MEMORY USAGE walk
#   KEYS=... bench/analyze.sh [OUTDIR]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${KEYFENCE_BIN:-$REPO/build/keyfence}
KEYS=${KEYS:-1000000}
OUT=${1:-$(mktemp -d /tmp/keyfence-analyze-XXXXXX)}
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*"; }
redis-server --port 7000 --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" --enable-debug-command yes \
  --daemonize yes --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log"
trap 'kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p 7000 ping >/dev/null 2>&1 && break; sleep 0.1; done
R="redis-cli -p 7000"
per=$((KEYS / 3 / 5))  # per namespace: per strings + 4 * per hashes, lists, sets, zsets
log "populating $KEYS keys"
for app in orders payments inventory; do
  $R debug populate "$per" "shop@$app:s" 32 >/dev/null  # strings
done
# hashes, lists, sets and zsets: a Lua loop per namespace (fast, server-side)
lua='local n = tonumber(ARGV[2]); local p = ARGV[1]
for i = 1, n do
  local k = tostring(i)
  redis.call("HSET", p .. "h:" .. k, "a", k, "b", "x", "c", "yy")
  redis.call("RPUSH", p .. "l:" .. k, k, "b", "c")
  redis.call("SADD", p .. "si:" .. k, 1, 2, i)
  redis.call("ZADD", p .. "z:" .. k, 1, "m" .. k, 2, "n")
  if i % 10 == 0 then redis.call("EXPIRE", p .. "h:" .. k, 100000) end
end
return n'
for app in orders payments inventory; do
  $R eval "$lua" 0 "shop@$app:" "$per" >/dev/null
done
$R dbsize | sed 's/^/keys: /'
$R info memory | grep '^used_memory_human'
$R save >/dev/null
ls -la "$OUT/dump.rdb"
cat >"$OUT/keyfence.yaml" <<EOF
cluster_name: shop
listeners: [{bind: 127.0.0.1:7400, tenant: orders}]
backend: {mode: standalone, nodes: ["127.0.0.1:7000"]}
tenants: {orders: {}, payments: {}, inventory: {}}
EOF
log "keyfence analyze"
/usr/bin/time -f "analyze: %e s wall, %M KB peak RSS" \
  "$BIN" analyze --config "$OUT/keyfence.yaml" --rdb "$OUT/dump.rdb" --json >"$OUT/report.json" \
  2>"$OUT/analyze.err" || { cat "$OUT/analyze.err"; exit 1; }
grep '^analyze:' "$OUT/analyze.err"
python3 -c "import json,sys; r=json.load(open('$OUT/report.json')); print({a: (t['keys'], t['memory_bytes']) for a, t in r['tenants'].items()})"
log "keyfence analyze over replication (RDB-only replica, diskless sync)"
$R config set repl-diskless-sync-delay 0 >/dev/null
/usr/bin/time -f "analyze (replication): %e s wall, %M KB peak RSS" \
  "$BIN" analyze --config "$OUT/keyfence.yaml" --json >"$OUT/report-repl.json" \
  2>"$OUT/analyze-repl.err" || { cat "$OUT/analyze-repl.err"; exit 1; }
grep '^analyze (replication):' "$OUT/analyze-repl.err"
python3 -c "
import json
a, b = (json.load(open('$OUT/' + f)) for f in ('report.json', 'report-repl.json'))
same = all(a['tenants'][t]['keys'] == b['tenants'][t]['keys'] and
           a['tenants'][t]['memory_bytes'] == b['tenants'][t]['memory_bytes'] for t in a['tenants'])
print('replication report == file report:', same)"
log "redis-cli --memkeys (SCAN + MEMORY USAGE)"
start=$(date +%s.%N)
timeout 600 $R --memkeys >"$OUT/memkeys.txt" 2>&1
end=$(date +%s.%N)
python3 -c "print(f'memkeys walk: {$end - $start:.2f} s wall')"
grep -E "Sampled" "$OUT/memkeys.txt" || true
log "results in $OUT"
