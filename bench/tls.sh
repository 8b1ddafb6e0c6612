#!/usr/bin/env bash
# What TLS costs (issue 12), measured, not asserted, in one run and one layout
# (redis pinned to cpu0, the proxy and redis-benchmark to cpu1):
#   direct        redis-server, plain TCP                       127.0.0.1:7000
#   direct TLS    redis-server's own --tls-port (the TLS-terminating peer)
#   keyfence      keyfence plain listener -> redis plain
#   keyfence TLS  keyfence TLS listener   -> redis plain
# redis-benchmark GET and SET, P=1 and P=16, 50 clients, ROUNDS rounds (median).
#   ROUNDS=3 N=200000 bench/tls.sh [OUTDIR]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${KEYFENCE_BIN:-$REPO/build/keyfence}
ROUNDS=${ROUNDS:-3} N=${N:-200000}
OUT=${1:-$(mktemp -d /tmp/keyfence-tls-XXXXXX)}
mkdir -p "$OUT"
log() { echo "[$(date +%T)] $*"; }
. "$REPO/bench/tls_certs.sh"
bench_certs "$OUT"
taskset -c 0 redis-server --port 7000 --bind 127.0.0.1 --tls-port 7002 --tls-cert-file "$OUT/server.crt" \
  --tls-key-file "$OUT/server.key" --tls-ca-cert-file "$OUT/ca.crt" --tls-auth-clients no \
  --save '' --appendonly no --daemonize yes --pidfile "$OUT/redis.pid" --logfile "$OUT/redis.log"
cat >"$OUT/keyfence.yaml" <<YAML
cluster_name: bench
workers: 1
listeners:
  - {bind: 127.0.0.1:7400, tenant: app}
  - {bind: 127.0.0.1:7402, tenant: app, tls: {cert: $OUT/server.crt, key: $OUT/server.key}}
admin: {bind: 127.0.0.1:7401}
backend: {mode: standalone, nodes: [127.0.0.1:7000]}
tenants: {app: {}}
YAML
taskset -c 1 "$BIN" --config "$OUT/keyfence.yaml" --log-level warn >"$OUT/keyfence.log" 2>&1 &
KF=$!
trap 'kill $KF 2>/dev/null; kill "$(cat "$OUT/redis.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p 7400 ping >/dev/null 2>&1 && break; sleep 0.1; done
tls=(--tls --cacert "$OUT/ca.crt")
run() {  # name port P cmd [tls...]
  local name=$1 port=$2 p=$3 cmd=$4; shift 4
  local vals=()
  for _ in $(seq "$ROUNDS"); do
    vals+=("$(taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$N" -P "$p" -t "$cmd" \
      -r 100000 -d 16 --csv "$@" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')")
  done
  printf '%s\n' "${vals[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p" >"$OUT/$name-$cmd-P$p"
}
log "redis-benchmark, $ROUNDS rounds of $N requests"
for p in 1 16; do
  for cmd in get set; do
    run direct 7000 "$p" "$cmd"
    run direct_tls 7002 "$p" "$cmd" "${tls[@]}"
    run keyfence 7400 "$p" "$cmd"
    run keyfence_tls 7402 "$p" "$cmd" "${tls[@]}"
  done
done
printf '%-4s %-4s %12s %12s %12s %12s %10s %10s\n' P cmd direct direct_tls keyfence keyfence_tls \
  kf_tls/kf kf_tls/dtls
for p in 1 16; do
  for cmd in get set; do
    d=$(cat "$OUT/direct-$cmd-P$p") dt=$(cat "$OUT/direct_tls-$cmd-P$p")
    k=$(cat "$OUT/keyfence-$cmd-P$p") kt=$(cat "$OUT/keyfence_tls-$cmd-P$p")
    printf '%-4s %-4s %12s %12s %12s %12s %10.2f %10.2f\n' "$p" "$cmd" "$d" "$dt" "$k" "$kt" \
      "$(echo "$kt / $k" | bc -l)" "$(echo "$kt / $dt" | bc -l)"
  done
done
log "results in $OUT"
