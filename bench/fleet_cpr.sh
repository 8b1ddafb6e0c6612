#!/usr/bin/env bash
# Issue 14's cost figures: what limits.scope: fleet costs.
#  1. callgrind Ir per request (../shared/bench/cpr.sh, GET, P=1 and P=16, 50 clients) of
#     one keyfence whose tenant runs at its ops_per_sec, for no limit, scope instance and
#     scope fleet: the limit (15,000/s) is under what keyfence serves under valgrind, with
#     on_limit: delay (redis-benchmark stops at the first error reply, so refusals cannot
#     be measured with it): the limited tenant's full rate;
#  2. natively, two keyfence instances sharing a fleet budget of 20,000/s, each flooded by
#     redis-benchmark for 10 s: the accepted total, and the backend calls spent on the
#     bucket (keyfence_fleet_bucket_calls_total, and redis' own count of EVALSHA).
#   bench/fleet_cpr.sh [OUTDIR]     (ports 7020-7031; loopback only)
set -euo pipefail
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${KEYFENCE_BIN:-$REPO/build/keyfence}
SHARED=${KF_SHARED_BENCH:-$REPO/../shared/bench}
OUT=${1:-/tmp/kf-fleet-cpr-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
export BENCH_RUN="$OUT/run"; mkdir -p "$BENCH_RUN"
. "$SHARED/lib.sh"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_started
}
trap cleanup EXIT

conf() {  # conf FILE LISTEN_PORT ADMIN_PORT LIMITS_YAML
  cat >"$1" <<YAML
cluster_name: bench
workers: 1
listeners:
  - bind: 127.0.0.1:$2
    tenant: app
admin:
  bind: 127.0.0.1:$3
backend:
  mode: standalone
  nodes: [127.0.0.1:7020]
tenants:
  app:
    limits: $4
YAML
}

start_redis 7020
echo "label,pipeline,test,Ir_per_req" >"$OUT/cpr.csv"
for scope in none instance fleet; do
  case $scope in
    none) limits="{}" ;;
    *) limits="{ops_per_sec: 15000, scope: $scope, on_limit: delay, max_delay_ms: 2000}" ;;
  esac
  conf "$OUT/$scope.yaml" 7021 7022 "$limits"
  timeout 900 "$SHARED/cpr.sh" -n 100000 -t get --port 7021 --backend-port 7020 \
    --label "scope-$scope" --out "$OUT/cpr-$scope" -- "$BIN" --config "$OUT/$scope.yaml" \
    --log-level warn >"$OUT/cpr-$scope.log" 2>&1
  tail -n +2 "$OUT/cpr-$scope/cpr.csv" | awk -F, '{print $1","$2","$3","$7}' >>"$OUT/cpr.csv"
done

# ---- two native instances sharing 20,000/s ----
redis-cli -p 7020 config resetstat >/dev/null
for i in 1 2; do
  conf "$OUT/fleet-$i.yaml" $((7023 + 2 * i)) $((7024 + 2 * i)) "{ops_per_sec: 20000, scope: fleet, on_limit: delay, max_delay_ms: 2000}"
  "$BIN" --config "$OUT/fleet-$i.yaml" --log-level warn >"$OUT/fleet-$i.log" 2>&1 &
  PIDS+=($!)
done
wait_port 127.0.0.1 7025 10; wait_port 127.0.0.1 7027 10
for port in 7025 7027; do
  timeout 60 redis-benchmark -p $port -t get -n 100000000 -P 16 -c 25 --threads 1 -q \
    >"$OUT/flood-$port.txt" 2>&1 &
  PIDS+=($!)
done
sleep 12
calls=0
for admin in 7026 7028; do
  c=$(curl -s "127.0.0.1:$admin/metrics" | awk '/^keyfence_fleet_bucket_calls_total/{print $2}')
  calls=$((calls + ${c:-0}))
done
accepted=0
for admin in 7026 7028; do
  a=$(curl -s "127.0.0.1:$admin/metrics" | awk '/^keyfence_requests_total\{.*tenant="app"/{s+=$2} END{print s+0}')
  r=$(curl -s "127.0.0.1:$admin/metrics" | awk '/^keyfence_rejected_total\{.*tenant="app".*reason="ratelimit"/{s+=$2} END{print s+0}')
  accepted=$(echo "$accepted + $a - $r" | bc)
done
evalsha=$(redis-cli -p 7020 info commandstats | awk -F'[:=,]' '/cmdstat_evalsha/{print $3}')
{
  echo "fleet of 2, ops_per_sec 20000, flooded ~12 s (startup included):"
  echo "  served (requests - ratelimit refusals): $accepted (limit: 240,000 in 12 s)"
  echo "  bucket calls by keyfence: $calls (~$((calls / 12 / 2))/s per instance); EVALSHA seen by redis: ${evalsha:-0}"
} | tee "$OUT/fleet.txt"
cat "$OUT/cpr.csv"
