#!/bin/sh
# Runs the libFuzzer harnesses long, one after the other (one core each;
# the machine is shared), and prints one summary line per harness:
# executions, coverage (edges / features), corpus size, crashes.
#
#   tests/fuzz/run_long.sh [-t SECONDS] [-n RUNS] [-m] [HARNESS...]
#
#   -t  time limit per harness (default 1800 s)
#   -n  execution limit per harness (e.g. -n 10000000); with -t as well,
#       whichever is reached first stops the harness
#   -m  merge the inputs that added coverage into tests/fuzz/corpus/NAME/
#       (libFuzzer -merge=1: only inputs with new features are copied)
#   HARNESS  names without the fuzz_ prefix (default: every built one)
#
# Needs the clang build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang
# -DGRANTD_FUZZ=ON -DGRANTD_BUILD_TESTS=OFF -DGRANTD_BUILD_BENCH=OFF &&
# cmake --build build-fuzz -j2 --target fuzzers (GRANTD_FUZZ_BUILD=DIR
# for another directory). Logs, new inputs and crash inputs go to
# BUILD/fuzz-long/.
set -eu
cd "$(dirname "$0")/../.."
FUZZ_BUILD=${GRANTD_FUZZ_BUILD:-build-fuzz}
secs="" runs="" merge=0
while getopts t:n:m o; do
  case $o in
    t) secs=$OPTARG ;;
    n) runs=$OPTARG ;;
    m) merge=1 ;;
    *) echo "usage: $0 [-t SECONDS] [-n RUNS] [-m] [HARNESS...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
names="$*"
if [ -z "$names" ]; then
  for b in "$FUZZ_BUILD"/fuzz_*; do
    [ -x "$b" ] && names="$names ${b##*/fuzz_}"
  done
fi
[ -n "$names" ] || { echo "no harnesses in $FUZZ_BUILD (build the fuzzers target)" >&2; exit 2; }
work="$FUZZ_BUILD/fuzz-long"
mkdir -p "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for name in $names; do
  bin="$FUZZ_BUILD/fuzz_$name"
  [ -x "$bin" ] || { echo "$name: $bin not built" >&2; status=1; continue; }
  corpus="tests/fuzz/corpus/$name"
  new="$work/$name.new"
  mkdir -p "$new" "$corpus"
  dict=""
  [ -f "tests/fuzz/dict/$name.dict" ] && dict="-dict=tests/fuzz/dict/$name.dict"
  limit=""
  [ -n "$runs" ] && limit="-runs=$runs"
  [ -n "$secs" ] && limit="$limit -max_total_time=$secs"
  [ -n "$limit" ] || limit="-max_total_time=1800"
  rm -f "$work/$name"-crash-* "$work/$name"-leak-* "$work/$name"-timeout-* "$work/$name"-oom-*
  rc=0
  "$bin" $limit -max_len=65536 -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 $dict \
    -artifact_prefix="$work/$name-" "$new" "$corpus" >"$work/$name.log" 2>&1 || rc=$?
  crashes=$(ls "$work/$name"-crash-* "$work/$name"-leak-* "$work/$name"-timeout-* \
    "$work/$name"-oom-* 2>/dev/null | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -1)
  cov=$(grep -E '^#[0-9]+' "$work/$name.log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/edges \1, features \2, corpus \3/p')
  echo "$name: ${execs:-?} execs, ${cov:-no coverage line}, $crashes crash(es), exit $rc (log $work/$name.log)"
  [ "$rc" = 0 ] && [ "$crashes" = 0 ] || status=1
  if [ "$merge" = 1 ] && [ "$rc" = 0 ]; then
    "$bin" -merge=1 -max_len=65536 -timeout=30 "$corpus" "$new" >"$work/$name.merge.log" 2>&1 || status=1
    echo "$name: corpus now $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
  fi
done
exit $status
