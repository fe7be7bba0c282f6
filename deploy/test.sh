#!/bin/bash
# Tests grantd's container image for real with podman (CI runs it after the
# test suite): builds the image without pulling anything, runs it with a
# volume and a published loopback port, creates a provider, imports and
# reads a token through the port, checks the HEALTHCHECK, stops it (exit 0
# within the drain timeout), starts a new container on the same volume
# (data kept), checks that a second container on that volume refuses with
# the lock message, then plays the Kubernetes sidecar example with
# `podman kube play` (the worker reaches grantd on localhost with the
# Secret's key) and `podman kube down`.
#
# Installs podman runc iptables catatonit debootstrap with apt when missing
# and makes a local debian:bookworm-slim base with debootstrap when there is
# none. Removes everything it created, by name (containers, pods, volumes,
# secrets, its image tag, the kube network and CNI leftovers it caused);
# the base image and podman's layer cache are kept for the next run.
# Environment: GRANTD_DEPLOY_KEEP_IMAGE=1 keeps the image tag too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CONTAINERS_CONF=$ROOT/deploy/container/containers.conf
IMAGE=localhost/grantd:deploy-test
P=grantd-deploytest                 # prefix of every name this script creates
VOL=$P-data
NET_KUBE=podman-default-kube-network
WORK=$(mktemp -d /tmp/grantd-deploy.XXXXXX)
API_KEY=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
MASTER_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
PASSED=0
FAILED=0

ok()   { PASSED=$((PASSED + 1)); echo "ok   $*"; }
bad()  { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { # check LABEL COMMAND...: passes when the command succeeds
  local label=$1; shift
  if "$@"; then ok "$label"; else bad "$label"; fi
}
# podman prints harmless "unable to get systemd connection" lines (no systemd
# here, so no health-check timers): keep them out of the output.
pm() { podman "$@" 2> >(grep -v 'systemd' >&2); }

# ---- set-up ----
need=""
for p in podman runc iptables catatonit debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  echo "deploy: installing$need"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null
fi
kube_net_existed=0
podman network exists "$NET_KUBE" 2>/dev/null && kube_net_existed=1

cleanup() {
  set +e
  podman kube down "$WORK/sidecar.yaml" >/dev/null 2>&1
  podman pod rm -f worker-pod-0 >/dev/null 2>&1          # the names of the kube example
  podman volume rm -f worker-grantd-data >/dev/null 2>&1
  podman secret rm grantd-keys >/dev/null 2>&1
  for c in $(podman ps -a --format '{{.Names}}' | grep "^$P" ); do podman rm -f -v "$c" >/dev/null 2>&1; done
  for p in $(podman pod ps --format '{{.Name}}' | grep "^$P"); do podman pod rm -f "$p" >/dev/null 2>&1; done
  for v in $(podman volume ls --format '{{.Name}}' | grep "^$P"); do podman volume rm -f "$v" >/dev/null 2>&1; done
  for s in $(podman secret ls --format '{{.Name}}' | grep "^$P"); do podman secret rm "$s" >/dev/null 2>&1; done
  if [ "$kube_net_existed" = 0 ] && podman network exists "$NET_KUBE" 2>/dev/null; then
    podman network rm -f "$NET_KUBE" >/dev/null 2>&1
  fi
  [ "${GRANTD_DEPLOY_KEEP_IMAGE:-0}" = 1 ] || podman rmi -f "$IMAGE" >/dev/null 2>&1
  # CNI chains and bridges stay behind after the last container is gone.
  if [ -z "$(podman ps -aq)" ]; then
    for table in nat filter; do
      chains=$(iptables -t $table -S 2>/dev/null | awk '/^-N CNI-/ {print $2}')
      for ch in $chains; do
        iptables -t $table -S | grep -- "-j $ch\$" | sed 's/^-A/-D/' | while read -r rule; do
          eval iptables -t $table "$rule" 2>/dev/null; done
      done
      for ch in $chains; do iptables -t $table -F "$ch" 2>/dev/null; done
      for ch in $chains; do iptables -t $table -X "$ch" 2>/dev/null; done
    done
    for br in $(ip -o link show 2>/dev/null | awk -F': ' '/cni-podman/ {print $2}' | cut -d@ -f1); do
      ip link delete "$br" 2>/dev/null
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_start() { # leftovers of an interrupted earlier run
  podman pod rm -f worker-pod-0 >/dev/null 2>&1 || true
  for c in $(podman ps -a --format '{{.Names}}' | grep "^$P"); do podman rm -f -v "$c" >/dev/null 2>&1; done
  for p in $(podman pod ps --format '{{.Name}}' | grep "^$P"); do podman pod rm -f "$p" >/dev/null 2>&1; done
  for v in $(podman volume ls --format '{{.Name}}' | grep "^$P"); do podman volume rm -f "$v" >/dev/null 2>&1; done
  for s in $(podman secret ls --format '{{.Name}}' | grep "^$P"); do podman secret rm "$s" >/dev/null 2>&1; done
}
cleanup_start

deploy/container/make-base.sh

# ---- image ----
t0=$(date +%s)
if ! podman build -q --pull=never --format docker -f deploy/container/Containerfile -t "$IMAGE" . \
     >"$WORK/build.log" 2>&1; then
  tail -n 30 "$WORK/build.log"
  bad "image builds"
  echo "deploy: $PASSED passed, $FAILED failed"
  exit 1
fi
build_s=$(( $(date +%s) - t0 ))
ok "image builds (${build_s} s)"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "deploy: image size $((size / 1000000)) MB, build ${build_s} s"
check "image is at most 100 MB ($size bytes)" test "$size" -le 100000000
hc=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
check "image has the grantd healthcheck" grep -q 'grantd","healthcheck' <<<"$hc"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
check "image runs as a non-root uid ($user)" test "${user%%:*}" != 0 -a -n "$user"
check "image declares VOLUME /data" grep -q '/data' <<<"$(podman image inspect --format '{{json .Config.Volumes}}' "$IMAGE")"

# ---- run, use, stop, restart ----
run_grantd() { # NAME: starts a container on the volume with a loopback port
  pm run -d --name "$1" -v "$VOL:/data" -p 127.0.0.1::8484 \
    -e GRANTD_API_KEY="$API_KEY" -e GRANTD_MASTER_KEY="$MASTER_KEY" "$IMAGE" >/dev/null
}
port_of() { podman port "$1" 8484/tcp | head -n1 | sed 's/.*://'; }
wait_healthz() { # PORT
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
api() { # METHOD PORT PATH [BODY]
  curl -sS -o "$WORK/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $API_KEY" \
    ${4:+--data-binary "$4"} "http://127.0.0.1:$2$3"
}

pm volume create "$VOL" >/dev/null
run_grantd "$P-1"
port=$(port_of "$P-1")
check "container serves /healthz on 127.0.0.1:$port" wait_healthz "$port"
st=$(api PUT "$port" /v1/providers/acme '{"token_url":"https://acme.example/oauth/token","client_id":"cid"}')
check "PUT provider through the port (HTTP $st)" test "$st" = 200
TOKEN=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
line="{\"id\":\"c-1\",\"tenant\":\"t-1\",\"provider\":\"acme\",\"grant\":\"refresh_token\",\"access_token\":\"$TOKEN\",\"refresh_token\":\"r-$TOKEN\",\"expires_in\":86400}"
st=$(api POST "$port" /v1/connections:import "$line")
check "import a token (HTTP $st)" test "$st" = 200
st=$(api GET "$port" "/v1/connections/c-1/token?min_ttl=0")
check "read the token back (HTTP $st)" grep -q "\"access_token\":\"$TOKEN\"" "$WORK/body"
st=$(api GET "$port" /v1/catalog/salesforce)
check "the image carries the provider catalog (HTTP $st)" grep -q '"name":"salesforce"' "$WORK/body"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/providers")
check "the API key is required through the port (HTTP $st)" test "$st" = 401
check "podman healthcheck run reports healthy" pm healthcheck run "$P-1"
check "health status is healthy" test "$(podman inspect --format '{{.State.Health.Status}}' "$P-1")" = healthy
check "grantd check runs beside the server" pm exec "$P-1" grantd check

t0=$(date +%s%N)
pm stop -t 30 "$P-1" >/dev/null
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
code=$(podman inspect --format '{{.State.ExitCode}}' "$P-1")
check "SIGTERM stop exits 0 (exit $code)" test "$code" = 0
check "stop within the 10 s drain timeout (${stop_ms} ms)" test "$stop_ms" -lt 10000
check "it logged its orderly stop" grep -q '"event":"stopped"' <(podman logs "$P-1" 2>&1)

run_grantd "$P-2"
port=$(port_of "$P-2")
check "restart on the same volume serves" wait_healthz "$port"
api GET "$port" "/v1/connections/c-1/token?min_ttl=0" >/dev/null
check "restart kept the token" grep -q "\"access_token\":\"$TOKEN\"" "$WORK/body"

set +e
out=$(podman run --name "$P-3" -v "$VOL:/data" -e GRANTD_API_KEY="$API_KEY" \
      -e GRANTD_MASTER_KEY="$MASTER_KEY" "$IMAGE" 2>&1 | grep -v systemd)
code=$(podman inspect --format '{{.State.ExitCode}}' "$P-3")
set -e
check "a second container on the volume exits 2 (exit $code)" test "$code" = 2
check "... saying: $out" grep -qx 'grantd: data directory /data is in use by pid 1' <<<"$out"
check "the first one still serves" wait_healthz "$port"
pm stop -t 30 "$P-2" >/dev/null
pm rm -f -v "$P-1" "$P-2" "$P-3" >/dev/null
pm volume rm "$VOL" >/dev/null

# ---- Kubernetes sidecar example with podman kube play ----
. deploy/kubernetes/test-kube.sh

echo "deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
