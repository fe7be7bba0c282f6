#!/usr/bin/env python3
"""No secret in clear anywhere but the one answer that hands it out.

grantd against the mock (TLS), which adds an OpenID `id_token` to every
token answer (`extra`). Driven: a provider with a client secret, the connect
flow (browser hops), a refresh, a password-grant connection, an import of
tokens with their own id_token, an export (`grantd export`). Then every value
that is a credential (access tokens before and after the refresh, imported
access and refresh tokens, both id_tokens, the client secret, the password,
the API key) is looked for in the raw bytes of every file of the data
directory, in grantd's log, in /metrics, in every listing (GET of
connections and providers, one by one and as lists; `grantd list`,
`grantd inspect`, `grantd check`). Positive controls show the needles are
right: the token answer and the export do carry them.
Runs under CTest (GRANTD_BIN, MOCK_BIN, GRANTD_TEST_TMP).
"""
import json
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from test_connect_flow import Browser  # noqa: E402

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
PASSWORD = "wonderland"


def run_cmd(g, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    env["GRANTD_MASTER_KEY"] = g.master_key
    r = subprocess.run([H.grantd_bin()] + list(args) + ["--data", g.data_dir], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr


def main():
    c = H.ApiChecks()
    tmp = H.test_tmpdir("secrets-")
    mock = g = None
    try:
        certs = H.make_certs(os.path.join(tmp, "pki"))
        mock = H.MockProvider(tmp, certs).start()
        id_token_flow = c.secret("eyJ" + H.rand_key(30))
        mock.config(extra={"id_token": id_token_flow, "instance_url": "https://x.test"})
        g = H.GrantdProc(tmp, data_dir=os.path.join(tmp, "data"), ca_file=certs.ca,
                         master_key=H.rand_master_key()).start()
        c.secret(g.api_key, g.master_key, CLIENT_SECRET, PASSWORD)
        api = g.client
        base = "https://localhost:%d" % mock.port
        r = api.put("/v1/providers/acme", json_body={
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "scopes": ["read"],
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        c.status("PUT provider", 200, r)

        # The connect flow.
        r = api.put("/v1/connections/c1", json_body={"tenant": "t-1", "provider": "acme",
                                                     "grant": "authorization_code"})
        c.status("PUT c1", 200, r)
        a = api.post("/v1/connections/c1/authorize", json_body={}).json() or {}
        c.secret(a.get("state"))
        hops = Browser(certs.ssl_context()).follow(a.get("url", ""))
        c.eq("connect flow hops", [302, 200], [h.status for h in hops])
        t1 = api.get("/v1/connections/c1/token").json() or {}
        at1 = c.secret(t1.get("access_token"))
        c.ok("c1 has an access token", bool(at1))
        c.eq("the token answer carries the id_token (control)", id_token_flow,
             (t1.get("extra") or {}).get("id_token"))

        # A refresh.
        c.status("refresh c1", 200, api.post("/v1/connections/c1/refresh"))
        t2 = api.get("/v1/connections/c1/token").json() or {}
        at2 = c.secret(t2.get("access_token"))
        c.ok("the refresh gave a new access token", at2 and at2 != at1, "a new token", "same")

        # A password-grant connection.
        r = api.put("/v1/connections/p1", json_body={
            "tenant": "t-1", "provider": "acme", "grant": "password", "username": "alice",
            "password": PASSWORD})
        c.status("PUT p1 (password)", 200, r)
        at3 = c.secret((api.get("/v1/connections/p1/token").json() or {}).get("access_token"))

        # An import with tokens and an id_token of its own.
        (iat, irt), = H.mock_mint(mock, 1)
        c.secret(iat, irt)
        id_token_import = c.secret("eyJ" + H.rand_key(30))
        line = {"id": "i1", "tenant": "t-2", "provider": "acme", "grant": "refresh_token",
                "access_token": iat, "refresh_token": irt, "expires_in": 3600,
                "extra": {"id_token": id_token_import}}
        r = api.post("/v1/connections:import", body=json.dumps(line) + "\n",
                     headers={"Content-Type": "application/x-ndjson"})
        c.status("import", 200, r)
        c.ok("import stored i1", b'"i1"' in r.body and b"error" not in r.body.split(b"\n")[0],
             "i1 imported", r.text())

        # An export (to a file outside the data directory).
        rc, out, err = run_cmd(g, "export")
        c.eq("export exit status", 0, rc)
        for label, v in (("imported refresh token", irt), ("flow id_token", id_token_flow),
                         ("imported id_token", id_token_import), ("password", PASSWORD)):
            c.ok("the export carries the %s (control)" % label, v.encode() in out)

        needles = {"access token (flow)": at1, "access token (refresh)": at2,
                   "access token (password grant)": at3, "imported access token": iat,
                   "imported refresh token": irt, "flow id_token": id_token_flow,
                   "imported id_token": id_token_import, "client secret": CLIENT_SECRET,
                   "password": PASSWORD, "API key": g.api_key, "master key": g.master_key}
        needles = {k: v for k, v in needles.items() if v}
        c.eq("every needle is known", 11, len(needles))

        # Listings and metrics, while running.
        places = {}
        for path in ("/v1/connections", "/v1/connections?tenant=t-1", "/v1/connections/c1",
                     "/v1/connections/p1", "/v1/connections/i1", "/v1/providers",
                     "/v1/providers/acme", "/metrics"):
            r = api.get(path)
            c.status("GET " + path, 200, r)
            places["GET " + path] = r.body
        for cmd in (("list",), ("inspect", "c1"), ("inspect", "i1"), ("check",)):
            rc, out, err = run_cmd(g, *cmd)
            c.eq("grantd %s exit status" % " ".join(cmd), 0, rc)
            places["grantd " + " ".join(cmd)] = out + err
        g.stop()
        g.client = None
        places["grantd log"] = H.read_text(g.log_path).encode()
        for where, data in places.items():
            for what, v in needles.items():
                c.ok("no %s in %s" % (what, where), v.encode() not in data,
                     "absent", "present")
        hits = H.find_in_dir(g.data_dir, list(needles.values()))
        names = {v: k for k, v in needles.items()}
        c.eq("no secret in the raw bytes of the data directory", [],
             sorted("%s in %s" % (names[n], os.path.basename(p)) for p, n in hits))
        c.ok("the data directory was scanned (data.mdb exists)",
             os.path.exists(os.path.join(g.data_dir, "data.mdb")))
    except Exception:  # noqa: BLE001
        c.ok("test ran", False, "no exception", traceback.format_exc())
    finally:
        if g is not None and g.client is not None:
            g.stop()
        if mock is not None:
            mock.stop()
        if c.failed and g is not None:
            print("--- grantd log (tail) ---\n%s" % c.scrub(g.log()[-3000:]))
    rc = c.finish()
    if rc == 0:
        H.cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
