#!/bin/sh
# Replays a harness's stored corpus, then mutates it for RUNS executions
# with a fixed seed. New inputs go to a scratch directory under WORK (the
# stored corpus is never written); a crash leaves its input in
# WORK/artifacts/. Usage: replay.sh BIN NAME FUZZDIR WORK RUNS
set -eu
bin=$1 name=$2 fuzzdir=$3 work=$4 runs=$5
scratch="$work/scratch/$name"
mkdir -p "$scratch" "$work/artifacts"
rm -rf "$scratch"/*
dict=""
[ -f "$fuzzdir/dict/$name.dict" ] && dict="-dict=$fuzzdir/dict/$name.dict"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$bin" -seed=1 -runs="$runs" -max_len=65536 -rss_limit_mb=2048 -timeout=30 \
  -print_final_stats=1 $dict -artifact_prefix="$work/artifacts/$name-" \
  "$scratch" "$fuzzdir/corpus/$name"
