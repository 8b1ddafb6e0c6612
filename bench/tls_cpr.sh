#!/usr/bin/env bash
# Callgrind Ir per request of keyfence on its TLS paths (issue 12), one process
# per layout, each run zeroed and dumped on its own (callgrind_control), with
# redis-benchmark as the client (its own TLS is not counted: only keyfence is
# under valgrind):
#   plain        client -plain-> keyfence -plain-> redis      (the common path)
#   client_tls   client -TLS->   keyfence -plain-> redis
#   backend_tls  client -plain-> keyfence -TLS->   redis --tls-port
#   redis, redis_tls   redis-server itself under callgrind, plain and --tls-port
#                      (the TLS-terminating peer: what TLS costs Redis per request)
#   N=100000 [LAYOUTS="plain client_tls"] [KEEP=1] bench/tls_cpr.sh [OUTDIR]
#   -> OUTDIR/tls_cpr.csv (KEEP: the callgrind dumps stay, for callgrind_annotate)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${KEYFENCE_BIN:-$REPO/build/keyfence}
N=${N:-100000}
OUT=${1:-$(mktemp -d /tmp/keyfence-tls-cpr-XXXXXX)}
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*"; }
for p in 7000 7002 7400 7401 7402; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p in use" >&2; exit 1; fi
done
. "$REPO/bench/tls_certs.sh"
bench_certs "$OUT"
redis-server --port 7000 --bind 127.0.0.1 --tls-port 7002 --tls-cert-file "$OUT/server.crt" \
  --tls-key-file "$OUT/server.key" --tls-ca-cert-file "$OUT/ca.crt" --tls-auth-clients no \
  --save '' --appendonly no --daemonize yes --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log"
KF=""
cleanup() {
  [ -n "$KF" ] && kill "$KF" 2>/dev/null && wait "$KF" 2>/dev/null
  kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p 7000 ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p 7000 -t set -n 200000 -r 100000 -d 3 -P 16 -c 50 -q >/dev/null 2>&1 || true
config() {  # backend address, backend tls block
  cat <<YAML
cluster_name: bench
workers: 1
listeners:
  - {bind: 127.0.0.1:7400, tenant: app}
  - {bind: 127.0.0.1:7402, tenant: app, tls: {cert: $OUT/server.crt, key: $OUT/server.key}}
admin: {bind: 127.0.0.1:7401}
backend: {mode: standalone, nodes: [$1]$2}
tenants: {app: {}}
YAML
}
tls=(--tls --cacert "$OUT/ca.crt")
echo "layout,pipeline,test,requests,Ir,Ir_per_req" >"$OUT/tls_cpr.csv"
want() { [ -z "${LAYOUTS:-}" ] || [[ " $LAYOUTS " == *" $1 "* ]]; }
measure() {  # layout port backend tls-block [client tls...]
  local layout=$1 port=$2 be=$3 block=$4; shift 4
  want "$layout" || return 0
  config "$be" "$block" >"$OUT/$layout.yaml"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg-$layout.%p" "$BIN" \
    --config "$OUT/$layout.yaml" --log-level warn >"$OUT/$layout.log" 2>&1 &
  KF=$!
  for _ in $(seq 300); do redis-cli -p 7400 ping >/dev/null 2>&1 && break; sleep 0.2; done
  run_counted "$layout" "$port" "$@"
}
run_counted() {  # layout port [client tls...]: warm-up, then each run zeroed and dumped
  local layout=$1 port=$2; shift 2
  redis-benchmark -p "$port" -n 20000 -c 50 -P 16 -t get -r 100000 -d 3 -q "$@" >/dev/null 2>&1
  for pl in 1 16; do
    for t in get set; do
      callgrind_control -z "$KF" >/dev/null
      redis-benchmark -p "$port" -n "$N" -c 50 -P "$pl" -t "$t" -r 100000 -d 3 -q "$@" >/dev/null 2>&1
      callgrind_control -d "$layout-$t-P$pl" "$KF" >/dev/null
      sleep 0.5
      local f ir
      f=$(ls -t "$OUT"/cg-"$layout".* | head -1)
      ir=$(grep -h '^summary:' "$f" | awk '{s+=$2} END {printf "%.0f", s}')
      echo "$layout,$pl,$t,$N,$ir,$((ir / N))" >>"$OUT/tls_cpr.csv"
      log "$layout P$pl $t: $((ir / N)) Ir/req"
    done
  done
  kill "$KF"; wait "$KF" 2>/dev/null || true; KF=""
  [ -n "${KEEP:-}" ] || rm -f "$OUT"/cg-"$layout".*
}
measure plain 7400 127.0.0.1:7000 ""
measure client_tls 7402 127.0.0.1:7000 "" "${tls[@]}"
measure backend_tls 7400 127.0.0.1:7002 ", tls: {ca: $OUT/ca.crt}"
# The TLS-terminating peer: redis-server itself under callgrind, plain and --tls-port.
redis_layout() {  # layout port [client tls...]
  local layout=$1 port=$2; shift 2
  want "$layout" || return 0
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg-$layout.%p" redis-server --port 7300 \
    --bind 127.0.0.1 --tls-port 7302 --tls-cert-file "$OUT/server.crt" --tls-key-file \
    "$OUT/server.key" --tls-ca-cert-file "$OUT/ca.crt" --tls-auth-clients no --save '' \
    --appendonly no >"$OUT/$layout.log" 2>&1 &
  KF=$!
  for _ in $(seq 300); do redis-cli -p 7300 ping >/dev/null 2>&1 && break; sleep 0.2; done
  redis-benchmark -p 7300 -t set -n 100000 -r 100000 -d 3 -P 16 -c 50 -q >/dev/null 2>&1
  run_counted "$layout" "$port" "$@"
}
redis_layout redis 7300
redis_layout redis_tls 7302 "${tls[@]}"
column -s, -t "$OUT/tls_cpr.csv"
log "results in $OUT/tls_cpr.csv"
