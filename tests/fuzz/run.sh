#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# runs each for SECONDS (default 20) on its committed corpus; new interesting
# inputs go to a scratch corpus, crashes to build-fuzz/crashes/ (the run fails).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_EACH=${1:-20}
OUT=${KF_FUZZ_BUILD:-$ROOT/build-fuzz}
command -v clang++ >/dev/null || { echo "fuzz: clang++ not installed"; exit 1; }
cmake -S "$HERE" -B "$OUT" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None >/dev/null
cmake --build "$OUT" -j "$(nproc)" >"$OUT/build.log" 2>&1 ||
  { echo "fuzz: the build failed:"; tail -30 "$OUT/build.log"; exit 1; }
mkdir -p "$OUT/crashes"
status=0
for t in request_parser_fuzz:request reply_fuzz:reply namespace_fuzz:keys rdb_fuzz:rdb; do
  bin=${t%%:*}; corpus=${t##*:}
  scratch="$OUT/corpus-$corpus"
  mkdir -p "$scratch"
  if "$OUT/$bin" -max_total_time="$SECONDS_EACH" -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$OUT/crashes/$bin-" "$scratch" "$HERE/corpus/$corpus" \
      >"$OUT/$bin.log" 2>&1; then
    echo "fuzz $bin: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/$bin.log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz $bin: FAILED (see $OUT/$bin.log)"; tail -30 "$OUT/$bin.log"; status=1
  fi
done
echo "$([ $status = 0 ] && echo 4 || echo 0) passed, $([ $status = 0 ] && echo 0 || echo 1) failed"
exit $status
