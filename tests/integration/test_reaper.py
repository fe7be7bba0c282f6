#!/usr/bin/env python3
"""Integration test: the connection reaper, off by default.

Connections: two pending (a consent never finished), one needs_reauth (the
mock answers invalid_grant to a forced refresh) and two active imports.
Without --reap-after nothing is deleted. `grantd reap --dry-run
--reap-after 1` lists exactly the pending and needs_reauth ones (after
they are at least a second old), `grantd reap` without --dry-run exits 2.
The server with --reap-dry-run logs them as reap_candidate and deletes
nothing; with --reap-after 1 --reap-revoke it revokes nr's tokens at the
provider (RFC 7009) and deletes exactly those (logged "reaped",
counted in grantd_reaped_total by status) and leaves the active ones
serving their tokens.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, MockProvider, ServeProc, cleanup_dir, grantd_bin,  # noqa: E402
                     make_certs, rand_key, rand_master_key, test_tmpdir)

T = ApiChecks()
CLIENT = ("test-client", "test-secret")
DUE = {"p1", "p2", "nr"}
KEEP = {"a1", "a2"}


def wait_for(fn, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def metric(g, name, labels):
    for line in g.client.get("/metrics", auth=False).text().splitlines():
        if line.startswith("%s{%s} " % (name, labels)):
            return float(line.split()[-1])
    return None


def main():
    tmp = test_tmpdir("reaper-")
    certs = make_certs(os.path.join(tmp, "pki"))
    data = os.path.join(tmp, "data")
    key, mk = T.secret(rand_key()), T.secret(rand_master_key())
    mock = MockProvider(tmp, certs).start()
    g = None
    try:
        g = ServeProc(tmp, data, api_key=key, master_key=mk, args=["--ca-file", certs.ca]).start()
        T.status("PUT provider", 200, g.client.put("/v1/providers/p", {
            "token_url": "https://localhost:%d/token" % mock.port,
            "authorize_url": "https://localhost:%d/authorize" % mock.port,
            "revoke_url": "https://localhost:%d/revoke" % mock.port,
            "client_id": CLIENT[0], "client_secret": CLIENT[1]}))
        for cid in ("p1", "p2"):
            T.status("PUT pending %s" % cid, 200, g.client.put("/v1/connections/" + cid, {
                "tenant": "t", "provider": "p", "grant": "authorization_code"}))
        toks = {}
        for cid in ("a1", "a2", "nr"):
            toks[cid] = T.secret(rand_key())
            T.status("import %s" % cid, 200, g.client.put("/v1/connections/" + cid, {
                "tenant": "t", "provider": "p", "grant": "refresh_token",
                "access_token": toks[cid], "refresh_token": T.secret(rand_key()),
                "expires_in": 86400}))
        mock.config(fault="invalid_grant", fault_count=1)
        g.client.request("POST", "/v1/connections/nr/refresh")
        st = wait_for(lambda: (g.client.get("/v1/connections/nr").json() or {}).get("status")
                      == "needs_reauth")
        T.ok("nr is needs_reauth", st, "needs_reauth", g.client.get("/v1/connections/nr").text())
        T.ok("reaper off by default", "reaper_on" not in g.log(), "no reaper_on", "reaper_on")
        T.eq("stop: exit 0", 0, g.stop())
        # Every due connection is at least a second old from here on (the
        # age counts from its last change; nothing changes them now).
        time.sleep(1.2)

        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
        env["GRANTD_MASTER_KEY"] = mk
        p = subprocess.run([grantd_bin(), "reap", "--dry-run", "--reap-after", "1", "--data", data],
                           env=env, capture_output=True, text=True, timeout=120)
        T.eq("reap --dry-run: exit 0", 0, p.returncode)
        listed = {l.split()[0] for l in p.stdout.splitlines()[1:] if l and not l[0].isdigit()}
        T.eq("reap --dry-run lists the due connections", DUE, listed)
        T.ok("reap --dry-run: the summary counts them",
             "3 connection(s) would be reaped" in p.stdout, "3 ...", p.stdout[-200:])
        p = subprocess.run([grantd_bin(), "reap", "--reap-after", "1", "--data", data], env=env,
                           capture_output=True, text=True, timeout=120)
        T.eq("reap without --dry-run: exit 2", 2, p.returncode)
        T.ok("reap without --dry-run: says the server deletes", "--reap-after" in p.stderr,
             "--reap-after", p.stderr)

        g = ServeProc(tmp, data, api_key=key, master_key=mk, args=[
            "--ca-file", certs.ca, "--reap-after", "1", "--reap-dry-run", "--reap-interval", "50"]).start()
        seen = wait_for(lambda: all('"reap_candidate"' in l and '"id":"%s"' % c in l
                                    for c in DUE for l in [g.log()]))
        T.ok("dry-run server: every due connection logged as reap_candidate", seen,
             "reap_candidate for p1, p2, nr", g.log()[-400:])
        T.ok("dry-run server: no active connection is a candidate",
             not any('"reap_candidate"' in l and ('"id":"%s"' % c) in l
                     for c in KEEP for l in g.log().splitlines()), "none", "a1/a2 listed")
        for cid in DUE | KEEP:
            T.status("dry-run server: %s still there" % cid, 200, g.client.get("/v1/connections/" + cid))
        T.eq("dry-run server: exit 0", 0, g.stop())

        revokes = mock.counters()["requests"]["revoke"]
        g = ServeProc(tmp, data, api_key=key, master_key=mk, args=[
            "--ca-file", certs.ca, "--reap-after", "1", "--reap-interval", "50",
            "--reap-revoke"]).start()
        gone = wait_for(lambda: all(g.client.get("/v1/connections/" + c).status == 404 for c in DUE))
        T.ok("reaper: the due connections are deleted", gone, "404 for p1, p2, nr",
             {c: g.client.get("/v1/connections/" + c).status for c in DUE})
        T.ok("reaper: each deletion logged", wait_for(
            lambda: g.log().count('"event":"reaped"') >= 3), "3 reaped lines", g.log()[-400:])
        T.ok("reaper --reap-revoke: the tokens of nr were revoked at the provider first",
             mock.counters()["requests"]["revoke"] >= revokes + 2
             and '"id":"nr","status":"needs_reauth","revoke_attempted":true' in g.log(),
             ">= 2 revoke requests, revoke_attempted", (mock.counters()["requests"]["revoke"], revokes, T.scrub(g.log()[-600:])))
        T.eq("reaper: counted (pending)", 2.0, metric(g, "grantd_reaped_total", 'status="pending"'))
        T.eq("reaper: counted (needs_reauth)", 1.0,
             metric(g, "grantd_reaped_total", 'status="needs_reauth"'))
        for cid in KEEP:
            r = g.client.get("/v1/connections/%s/token" % cid)
            T.status("reaper: active %s kept" % cid, 200, r)
            T.eq("reaper: active %s token" % cid, toks[cid], (r.json() or {}).get("access_token"))
        T.ok("reaper: logs hold no secret", not any(s in g.log() for s in T.secrets), "none", "a secret")
        T.eq("reaper: exit 0", 0, g.stop())
        g = None
    finally:
        if g is not None:
            g.stop()
        mock.stop()
    cleanup_dir(tmp)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
