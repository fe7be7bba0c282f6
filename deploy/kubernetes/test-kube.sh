# Sourced by deploy/test.sh (its helpers ok/bad/check/pm, $WORK, $IMAGE,
# $API_KEY, $MASTER_KEY): plays the sidecar example with podman kube play.
# podman 4.3 cannot read a Secret played from the same file, so the Secret
# is made with `podman secret create` from {"key": base64(value)}, as its
# Kubernetes form in secret.yaml would be. It ignores replicas, strategy,
# readiness and runAsNonRoot: check_manifests.py reads those from the YAML.
KUBE_DIR=deploy/kubernetes
KUBE_POD=worker-pod-0
KUBE_SECRET=grantd-keys
KUBE_VOLUME=worker-grantd-data

if python3 "$KUBE_DIR/check_manifests.py" "$KUBE_DIR" >"$WORK/manifests.log"; then
  ok "Kubernetes manifests: $(grep -c '^ok' "$WORK/manifests.log") checks of what kube play ignores"
else
  grep -v '^ok' "$WORK/manifests.log"
  bad "Kubernetes manifests"
fi

# The manifest as written, with the image under test.
sed "s|image: localhost/grantd:latest|image: $IMAGE|" "$KUBE_DIR/sidecar.yaml" >"$WORK/sidecar.yaml"
printf '{"api-key": "%s", "master-key": "%s"}\n' "$(printf %s "$API_KEY" | base64 -w0)" \
  "$(printf %s "$MASTER_KEY" | base64 -w0)" >"$WORK/keys.json"
podman secret rm "$KUBE_SECRET" >/dev/null 2>&1 || true
podman volume rm -f "$KUBE_VOLUME" >/dev/null 2>&1 || true
pm secret create "$KUBE_SECRET" "$WORK/keys.json" >/dev/null
rm -f "$WORK/keys.json"

if pm kube play "$WORK/sidecar.yaml" >"$WORK/play.log" 2>&1; then
  ok "podman kube play sidecar.yaml"
else
  cat "$WORK/play.log"
  bad "podman kube play sidecar.yaml"
fi
worker_saw_200() {
  for _ in $(seq 1 120); do
    podman logs "$KUBE_POD-worker" 2>/dev/null | grep -q '^HTTP/1.1 200' && return 0
    sleep 0.5
  done
  return 1
}
check "the worker reaches grantd on localhost with the Secret's key (HTTP 200)" worker_saw_200
raw_status() { # KEY: status line of GET /v1/providers from inside the worker
  pm exec "$KUBE_POD-worker" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8484 && printf "GET /v1/providers HTTP/1.1\r\nHost: l\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n" "$1" >&3 && head -n1 <&3' _ "$1" | tr -d '\r'
}
st=$(raw_status "wrong-key-0123456789" || true)
check "... and a wrong key is refused ($st)" test "$st" = "HTTP/1.1 401 Unauthorized"
uid=$(pm exec "$KUBE_POD-grantd" id -u 2>/dev/null || echo "?")
check "grantd runs as uid 10001 in the pod (uid $uid)" test "$uid" = 10001
check "grantd's root filesystem is read-only" \
  test "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$KUBE_POD-grantd")" = true
check "grantd healthcheck inside the pod" pm exec "$KUBE_POD-grantd" grantd healthcheck
check "grantd check inside the pod (store on the PVC)" pm exec "$KUBE_POD-grantd" grantd check
if pm kube down "$WORK/sidecar.yaml" >"$WORK/down.log" 2>&1; then
  ok "podman kube down sidecar.yaml"
else
  cat "$WORK/down.log"
  bad "podman kube down sidecar.yaml"
fi
check "the pod is gone" bash -c "! podman pod exists $KUBE_POD"
pm volume rm -f "$KUBE_VOLUME" >/dev/null 2>&1 || true
pm secret rm "$KUBE_SECRET" >/dev/null 2>&1 || true
