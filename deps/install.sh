#!/bin/sh
# Installs every Debian 12 package grantd's build, tests and benchmarks need.
# Idempotent: packages already present are left alone. Runs apt-get as root,
# or through sudo when started by another user.
set -eu

# clang + libclang-rt-14-dev (libFuzzer and the sanitizer runtimes; only
# "recommended" by clang) build the fuzz harnesses in tests/fuzz/;
# clang-format checks the layout of the C sources (CTest `format`).
PKGS="build-essential cmake pkg-config libuv1-dev node-llhttp libbearssl-dev \
libmsgpack-dev liblmdb-dev libjansson-dev libcmocka-dev curl openssl wrk \
python3 lmdb-utils python3-yaml python3-jsonschema clang libclang-rt-14-dev \
clang-format"

# python3-yaml turns docs/openapi.yaml into the compiled-in /openapi.json at
# build time; python3-jsonschema validates answers against it in the tests.
# (Debian 12 has no openapi-spec-validator package: test_openapi uses the
# Python module when present and reports the document check skipped
# otherwise.)

# Headless Chromium drives the browser connect-flow test; skipped when
# GRANTD_NO_CHROMIUM=1 (it is large).
if [ "${GRANTD_NO_CHROMIUM:-0}" != "1" ]; then
  PKGS="$PKGS chromium"
fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  echo "deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: need root (or sudo) to install:$missing" >&2; exit 1
  fi
fi

echo "deps: installing$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
