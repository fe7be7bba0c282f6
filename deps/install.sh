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

# Node.js runs the official Standard Webhooks library (npm
# "standardwebhooks", pinned in tests/node/package.json) that verifies
# grantd's webhook signatures independently in test_webhooks; skipped when
# GRANTD_NO_NODE=1 (the test then reports that check skipped). A node
# already on the PATH (from any source) is used as it is.
if [ "${GRANTD_NO_NODE:-0}" != "1" ] && ! command -v node >/dev/null 2>&1; then
  PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

node_modules() {
  # The verifier's npm package, into tests/node/node_modules (git-ignored).
  [ "${GRANTD_NO_NODE:-0}" = "1" ] && return 0
  command -v npm >/dev/null 2>&1 || { echo "deps: npm not found: webhook verifier skipped" >&2; return 0; }
  here="$(cd "$(dirname "$0")/.." && pwd)"
  if [ -f "$here/tests/node/node_modules/standardwebhooks/package.json" ]; then
    echo "deps: tests/node modules present"
    return 0
  fi
  echo "deps: npm install in tests/node"
  (cd "$here/tests/node" && npm install --no-audit --no-fund --loglevel=error) ||
    echo "deps: npm install failed: webhook verifier skipped" >&2
}

if [ -z "$missing" ]; then
  echo "deps: all packages present"
  node_modules
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
node_modules
