#!/bin/sh
# Builds grantd with AddressSanitizer+UBSan into build-asan/ and runs every
# test (unit + integration) through CTest; then builds the libFuzzer
# harnesses with clang into build-fuzz/ and replays each one's stored
# corpus (tests/fuzz/, CTest names fuzz/<harness>). Used verbatim by
# .ci/run. Arguments go to both ctest runs (e.g. -R fuzz/ or -R api/).
set -eu
cd "$(dirname "$0")/.."
BUILD=${GRANTD_TEST_BUILD:-build-asan}
FUZZ_BUILD=${GRANTD_FUZZ_BUILD:-build-fuzz}
cmake -S . -B "$BUILD" -DGRANTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
fuzz=1
if ! command -v clang >/dev/null 2>&1; then
  echo "tests: clang not found (deps/install.sh installs it): fuzz harnesses skipped" >&2
  fuzz=0
fi
if [ "$fuzz" = 1 ]; then
  cmake -S . -B "$FUZZ_BUILD" -DCMAKE_C_COMPILER=clang -DGRANTD_FUZZ=ON -DGRANTD_BUILD_TESTS=OFF \
    -DGRANTD_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$FUZZ_BUILD" -j"$(nproc)" --target fuzzers
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$BUILD" --output-on-failure -j2 "$@"
if [ "$fuzz" = 1 ]; then
  ctest --test-dir "$FUZZ_BUILD" --output-on-failure -j2 "$@"
fi
