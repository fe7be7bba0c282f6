#!/bin/sh
# Installs every Debian 12 package grantd's build, tests and benchmarks need.
# Idempotent: packages already present are left alone. Runs apt-get as root,
# or through sudo when started by another user.
set -eu

PKGS="build-essential cmake pkg-config libuv1-dev node-llhttp libbearssl-dev \
libmsgpack-dev liblmdb-dev libjansson-dev libcmocka-dev curl openssl wrk \
python3 lmdb-utils"

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
