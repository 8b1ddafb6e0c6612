#!/usr/bin/env bash
# Callgrind Ir/request for keyfence, standalone and cluster, with the same cpr.sh
# flags as bench/run.sh and bench/cluster.sh, but without their side-by-side part.
# Before each cpr run the keyspace (-k 100000, -d 3) is filled THROUGH keyfence
# (native, not under valgrind), as the side-by-side SET rounds do in run.sh /
# cluster.sh, so GETs hit existing (namespaced) keys.
#   KEYFENCE_BIN=... REPO=... bench/cpr.sh OUTDIR
set -euo pipefail
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${KEYFENCE_BIN:-$REPO/build/keyfence}
SHARED=${KF_SHARED_BENCH:-$REPO/../shared/bench}
OUT=${1:-/tmp/kf-cpr-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/nodes"
export BENCH_RUN="$OUT/run"; mkdir -p "$BENCH_RUN"
. "$SHARED/lib.sh"
PIDS=() KF_PID=""
cleanup() {
  [ -n "$KF_PID" ] && kill "$KF_PID" 2>/dev/null && wait "$KF_PID" 2>/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && bench_log "stopped cluster node pid $p"; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  stop_started
  for p in 7000 7001 7002 7003 7400; do  # wait (bounded) until they are really gone
    for _ in $(seq 50); do port_open 127.0.0.1 $p || break; sleep 0.2; done
  done
}
trap cleanup EXIT
prefill() {  # through keyfence on 7400, like the side-by-side SET rounds (skip: PREFILL=0)
  [ "${PREFILL:-1}" = 1 ] || { echo skipped >"$1"; return 0; }
  timeout 120 redis-benchmark -p 7400 -t set -n 500000 -r 100000 -d 3 -P 16 -c 50 --threads 1 -q >"$1" 2>&1
}
for p in 7000 7001 7002 7003 7400 7401; do port_open 127.0.0.1 $p && bench_die "port $p in use"; done
echo "binary: $BIN ($(sha256sum "$BIN" | cut -c1-16))" >"$OUT/info.txt"

# ---- standalone (bench/run.sh) ----
CONF=$REPO/bench/configs/keyfence-bench.yaml
start_redis 7000
"$BIN" --config "$CONF" --log-level warn >"$OUT/keyfence-prefill.log" 2>&1 & KF_PID=$!
wait_port 127.0.0.1 7400 10 || bench_die "keyfence did not listen"
prefill "$OUT/prefill-standalone.txt"
kill "$KF_PID"; wait "$KF_PID" 2>/dev/null || true; KF_PID=""
while port_open 127.0.0.1 7400; do sleep 0.2; done
bench_log "standalone: $(redis-cli -p 7000 dbsize) keys on :7000"
timeout 900 "$SHARED/cpr.sh" -n 100000 --port 7400 --backend-port 7000 --no-prefill --label keyfence \
  --out "$OUT/cpr-keyfence" -- "$BIN" --config "$CONF" --log-level warn
stop_started
for _ in $(seq 50); do port_open 127.0.0.1 7000 || break; sleep 0.2; done

# ---- cluster (bench/cluster.sh setup) ----
CONF=$REPO/bench/configs/keyfence-cluster-bench.yaml
for port in 7001 7002 7003; do
  mkdir -p "$OUT/nodes/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --save '' --appendonly no \
    --cluster-config-file "$OUT/nodes/$port/nodes.conf" --dir "$OUT/nodes/$port" \
    --logfile "$OUT/nodes/$port/redis.log" &
  PIDS+=($!)
done
for port in 7001 7002 7003; do wait_port 127.0.0.1 "$port" 10; done
timeout 60 redis-cli --cluster create 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 --cluster-replicas 0 \
  --cluster-yes >"$OUT/create.log" 2>&1
for _ in $(seq 50); do
  redis-cli -p 7001 cluster info | grep -q cluster_state:ok && break; sleep 0.2
done
"$BIN" --config "$CONF" --log-level warn >"$OUT/keyfence-cluster-prefill.log" 2>&1 & KF_PID=$!
wait_port 127.0.0.1 7400 10 || bench_die "keyfence did not listen"
sleep 1.5  # first topology
prefill "$OUT/prefill-cluster.txt"
kill "$KF_PID"; wait "$KF_PID" 2>/dev/null || true; KF_PID=""
while port_open 127.0.0.1 7400; do sleep 0.2; done
bench_log "cluster: $(for p in 7001 7002 7003; do redis-cli -p $p dbsize; done | paste -sd+ | bc) keys"
timeout 900 "$SHARED/cpr.sh" -n 100000 --port 7400 --no-prefill --label keyfence-cluster \
  --out "$OUT/cpr-cluster" -- "$BIN" --config "$CONF" --log-level warn
bench_log "results in $OUT (cpr-keyfence/cpr.csv, cpr-cluster/cpr.csv)"
