#!/usr/bin/env bash
# Cluster mode side by side: a 3-master Redis Cluster on 127.0.0.1:7001-7003
# ("direct" = redis-benchmark --cluster) against keyfence fronting it, then
# callgrind instructions per request for keyfence in cluster mode.
#   bench/cluster.sh [--rounds N] [--no-cpr] [--out DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${KF_SHARED_BENCH:-$ROOT/../shared/bench}
BIN=${KEYFENCE_BIN:-$ROOT/build/keyfence}
CONF=$ROOT/bench/configs/keyfence-cluster-bench.yaml
ROUNDS=3 CPR=1 OUT=/tmp/keyfence-cluster-bench-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --no-cpr) CPR=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT/nodes"
export BENCH_RUN="$OUT/run"
mkdir -p "$BENCH_RUN"
. "$SHARED/lib.sh"
PIDS=() KF_PID=""
cleanup() {
  [ -n "$KF_PID" ] && kill "$KF_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
}
trap cleanup EXIT
for port in 7001 7002 7003; do
  port_open 127.0.0.1 "$port" && bench_die "port $port in use"
  mkdir -p "$OUT/nodes/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --save '' --appendonly no \
    --cluster-config-file "$OUT/nodes/$port/nodes.conf" --dir "$OUT/nodes/$port" \
    --logfile "$OUT/nodes/$port/redis.log" &
  PIDS+=($!)
done
for port in 7001 7002 7003; do wait_port 127.0.0.1 "$port" 10; done
redis-cli --cluster create 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 --cluster-replicas 0 \
  --cluster-yes >"$OUT/create.log" 2>&1
for _ in $(seq 50); do
  redis-cli -p 7001 cluster info | grep -q cluster_state:ok && break; sleep 0.2
done
"$BIN" --config "$CONF" --log-level warn >"$OUT/keyfence.log" 2>&1 &
KF_PID=$!
wait_port 127.0.0.1 7400 10
sleep 1.5  # first topology
"$SHARED/sidebyside.sh" -r "$ROUNDS" --cluster 127.0.0.1:7001 --out "$OUT/sbs" \
  --pin keyfence=1 --bench-cpus 1 keyfence=127.0.0.1:7400
kill "$KF_PID"; KF_PID=""
if [ "$CPR" = 1 ]; then
  "$SHARED/cpr.sh" -n 100000 --port 7400 --no-prefill --label keyfence-cluster \
    --out "$OUT/cpr" -- "$BIN" --config "$CONF" --log-level warn
fi
echo "results in $OUT"
