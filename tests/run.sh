#!/bin/sh
# Builds grantd with AddressSanitizer+UBSan into build-asan/ and runs every
# test (unit + integration) through CTest. Used verbatim by .ci/run.
set -eu
cd "$(dirname "$0")/.."
BUILD=${GRANTD_TEST_BUILD:-build-asan}
cmake -S . -B "$BUILD" -DGRANTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
