#!/usr/bin/env bash
# keyfence side by side with direct redis-server and nutcracker (stock -v 5 and
# tuned -v 4), in one run, in the pinned layout of ../shared/bench/README.md,
# then callgrind instructions per request. Builds on ../shared/bench/.
#   bench/run.sh [--rounds N] [--quick] [--no-cpr] [--out DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${KF_SHARED_BENCH:-$ROOT/../shared/bench}
BIN=${KEYFENCE_BIN:-$ROOT/build/keyfence}
CONF=$ROOT/bench/configs/keyfence-bench.yaml
ROUNDS=5 CPR=1 OUT=/tmp/keyfence-bench-$(date +%Y%m%d-%H%M%S) EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --quick) ROUNDS=2; EXTRA+=(--n1 50000 --nP 300000); shift ;;
    --no-cpr) CPR=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
[ -d "$SHARED" ] || { echo "shared bench scripts not found at $SHARED" >&2; exit 1; }
mkdir -p "$OUT"
export BENCH_RUN="$OUT/run"
mkdir -p "$BENCH_RUN"
. "$SHARED/lib.sh"
KF_PID="" 
cleanup() {
  [ -n "$KF_PID" ] && kill "$KF_PID" 2>/dev/null
  stop_started
  BENCH_RUN="$OUT/sbs/run" stop_started  # what sidebyside.sh --keep left running
}
trap cleanup EXIT

port_open 127.0.0.1 7000 || start_redis 7000
NUT_VERBOSITY=4 start_nutcracker 7110 7000           # tuned peer (-v 4)
"$BIN" --config "$CONF" --log-level warn >"$OUT/keyfence.log" 2>&1 &
KF_PID=$!
wait_port 127.0.0.1 7400 10 || { cat "$OUT/keyfence.log"; exit 1; }

"$SHARED/sidebyside.sh" -r "$ROUNDS" "${EXTRA[@]}" --keep --out "$OUT/sbs" \
  --pin direct=0 --pin nutcracker=1 --pin nut-v4=1 --pin keyfence=1 --bench-cpus 1 \
  nut-v4=127.0.0.1:7110 keyfence=127.0.0.1:7400
kill "$KF_PID"; KF_PID=""

if [ "$CPR" = 1 ]; then
  "$SHARED/cpr.sh" -n 100000 --port 7400 --backend-port 7000 --no-prefill --label keyfence \
    --out "$OUT/cpr-keyfence" -- "$BIN" --config "$CONF" --log-level warn
  NUT_VERBOSITY=4 "$SHARED/cpr.sh" -n 100000 --preset nutcracker --backend-port 7000 --no-prefill \
    --label nutcracker-v4 --out "$OUT/cpr-nut4"
fi
echo "results in $OUT (sbs/summary.txt, cpr-*/cpr.csv)"
