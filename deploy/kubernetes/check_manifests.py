#!/usr/bin/env python3
"""Checks what `podman kube play` ignores in the Kubernetes examples
(replica count, update strategy, probes, resources, security context):
prints one "ok"/"FAIL" line per check and exits 1 on any failure.
usage: check_manifests.py DIR"""
import os
import sys

import yaml

FAILED = 0


def check(label, cond):
    global FAILED
    print("%s %s" % ("ok  " if cond else "FAIL", label))
    FAILED += 0 if cond else 1


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(ds, kind):
    return [d for d in ds if d.get("kind") == kind]


def env_names(c):
    return {e["name"]: e for e in c.get("env", [])}


def check_pod(label, spec, grantd_name="grantd"):
    sc = spec.get("securityContext", {})
    check(label + ": pod runAsNonRoot with a non-root uid",
          sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0)
    check(label + ": fsGroup lets the uid write the volume", sc.get("fsGroup") == sc.get("runAsUser"))
    for c in spec["containers"]:
        csc = c.get("securityContext", {})
        check(label + ": %s readOnlyRootFilesystem" % c["name"], csc.get("readOnlyRootFilesystem") is True)
        check(label + ": %s drops ALL capabilities" % c["name"],
              csc.get("capabilities", {}).get("drop") == ["ALL"])
        check(label + ": %s no privilege escalation" % c["name"],
              csc.get("allowPrivilegeEscalation") is False)
        r = c.get("resources", {})
        check(label + ": %s has requests and a memory limit" % c["name"],
              "requests" in r and "memory" in r.get("limits", {}))
    g = [c for c in spec["containers"] if c["name"] == grantd_name]
    check(label + ": has the grantd container", len(g) == 1)
    if not g:
        return
    g = g[0]
    check(label + ": grantd readiness probe", "readinessProbe" in g)
    check(label + ": grantd liveness probe", "livenessProbe" in g)
    rp = g.get("readinessProbe", {})
    check(label + ": readiness asks /healthz",
          rp.get("httpGet", {}).get("path") == "/healthz" or
          rp.get("exec", {}).get("command", [])[-1:] == ["healthcheck"])
    env = env_names(g)
    for var, key in (("GRANTD_API_KEY", "api-key"), ("GRANTD_MASTER_KEY", "master-key")):
        ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef", {})
        check(label + ": %s from the Secret" % var, ref.get("name") == "grantd-keys" and ref.get("key") == key)
    mounts = [m["mountPath"] for m in g.get("volumeMounts", [])]
    check(label + ": /data is mounted", "/data" in mounts)
    check(label + ": terminationGracePeriodSeconds covers the drain",
          spec.get("terminationGracePeriodSeconds", 30) * 1000 >
          int(env.get("GRANTD_SHUTDOWN_TIMEOUT_MS", {}).get("value", "10000")))


def main():
    d = sys.argv[1]
    side = docs(os.path.join(d, "sidecar.yaml"))
    dep = by_kind(side, "Deployment")
    pvc = by_kind(side, "PersistentVolumeClaim")
    check("sidecar: one Deployment and one PVC", len(dep) == 1 and len(pvc) == 1)
    dep = dep[0]
    check("sidecar: 1 replica", dep["spec"].get("replicas") == 1)
    check("sidecar: Recreate strategy", dep["spec"].get("strategy", {}).get("type") == "Recreate")
    check("sidecar: PVC ReadWriteOnce", pvc[0]["spec"]["accessModes"] == ["ReadWriteOnce"])
    spec = dep["spec"]["template"]["spec"]
    check("sidecar: the volume is the PVC",
          any(v.get("persistentVolumeClaim", {}).get("claimName") == pvc[0]["metadata"]["name"]
              for v in spec["volumes"]))
    check("sidecar: a worker container beside grantd", len(spec["containers"]) == 2)
    check_pod("sidecar", spec)

    shared = docs(os.path.join(d, "shared-service.yaml"))
    sts = by_kind(shared, "StatefulSet")
    svc = by_kind(shared, "Service")
    check("shared: one StatefulSet and one Service", len(sts) == 1 and len(svc) == 1)
    sts = sts[0]
    check("shared: exactly 1 replica", sts["spec"].get("replicas") == 1)
    check("shared: serviceName is the Service", sts["spec"].get("serviceName") == svc[0]["metadata"]["name"])
    check("shared: a ReadWriteOnce volume claim template",
          sts["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] == ["ReadWriteOnce"])
    check("shared: the Service selects the pods",
          svc[0]["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items())
    check_pod("shared", sts["spec"]["template"]["spec"])

    sec = by_kind(docs(os.path.join(d, "secret.yaml")), "Secret")
    check("secret: grantd-keys with api-key and master-key",
          len(sec) == 1 and sec[0]["metadata"]["name"] == "grantd-keys" and
          {"api-key", "master-key"} <= set(sec[0].get("stringData", {})))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
