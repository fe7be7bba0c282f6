#!/bin/sh
# check_format.sh - fails (exit 1) when a tracked C source or header under
# src/, tests/ or bench/ differs from what clang-format makes of it with the
# committed .clang-format. Regions that read better aligned by hand sit
# between "// clang-format off" and "// clang-format on".
#
#   tools/check_format.sh          check (CTest runs this as `format`)
#   tools/check_format.sh --fix    rewrite the files in place
set -eu
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check_format: clang-format not found (deps/install.sh installs it)" >&2
  exit 1
fi
files=$(git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 2>/dev/null || true)
if [ -z "$files" ]; then
  files=$(find src tests bench -name '*.[ch]' | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  echo "$files" | xargs clang-format -i
  exit 0
fi
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "check_format: $f is not formatted (tools/check_format.sh --fix)" >&2
    bad=1
  fi
done
exit $bad
