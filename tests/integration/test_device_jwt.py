#!/usr/bin/env python3
"""Integration test: the device authorization grant (RFC 8628) and the JWT
bearer grant (RFC 7523 section 2.1) against the mock provider over TLS.

Processes (127.0.0.1, port 0, stopped by PID): one mock (ECDSA leaf from a
CA made here) with its device-flow state machine and assertion checks, one
grantd (restarted once, same data and master key, to show that polling
resumes).

Device flow: put -> pending with user_code/verification_uri; grantd polls
(authorization_pending costs no write); the user approves at the mock
(POST /_mock/device) -> active with tokens; slow_down grows the interval
by 5 s; a denial and an expiry end needs_reauth with a clear last_error;
a provider without a device endpoint is refused (422, nothing stored); a
flow still pending across a restart completes.

JWT bearer: the documented claim sets of Google service accounts
(iss=client_email, scope claim, aud=token endpoint, no sub), Salesforce
(iss=client_id, sub=username, aud=https://login.salesforce.com) and
DocuSign (iss=integration key, sub=user id, aud=account-d.docusign.com,
scope "signature impersonation"), each checked in the assertion the mock
verified with the registered key; renewal signs a fresh assertion; a
replayed assertion is refused by the mock; bad keys and claims are 422
with nothing stored.

Token exchange (RFC 8693): a connection exchanging another connection's
access token (audience, resource, requested_token_type sent; the source
shown), one with a given subject token and an actor token, a source
whose token is about to expire refreshed first, cross-tenant sources
refused unless allowed, a deleted source making its dependent
needs_reauth, bad input 422 with nothing stored.

No timed assertions: waits poll the API until a state is reached (with a
generous bound that only guards against hangs).
"""
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, body_of, cleanup_dir,  # noqa: E402
                     make_certs, rand_master_key, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
GOOGLE_SA = "grantd-test@example-project.iam.gserviceaccount.com"
SF_KEY = "3MVG99OxTyEMCQ3gNp2PjkqeZKxnmAiG1xV4oHh9AKL_rSK.BoSVPGZHQukXnVjzRgSuQqGn75NL7yfkQcyy7"
DS_KEY = "6a1f0e2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
DS_USER = "9b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
T.secret(CLIENT[1])
WAIT_S = 120


def token_url(mock, path="/token"):
    return "https://localhost:%d%s" % (mock.port, path)


def wait_for(label, fn, timeout=WAIT_S):
    """Polls fn() until it returns a true value; returns it (or None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    T.ok(label, False, "reached", "not reached in %d s" % timeout)
    return None


class G:
    def __init__(self, proc):
        self.p = proc

    @property
    def c(self):
        return self.p.client

    def provider(self, name, body):
        r = self.c.put("/v1/providers/" + name, json_body=body)
        if r.status != 200:
            raise RuntimeError("provider %s refused: %r" % (name, r))
        return r.json()

    def put(self, cid, provider, grant, **kw):
        body = {"tenant": "t-dev", "provider": provider, "grant": grant}
        body.update(kw)
        return self.c.put("/v1/connections/" + cid, json_body=body)

    def conn(self, cid):
        r = self.c.get("/v1/connections/" + cid)
        return r.json() if r.status == 200 else None

    def status_is(self, cid, *want):
        j = self.conn(cid)
        return j if j and j.get("status") in want else None


def err_code(j):
    return (j.get("last_error") or {}).get("code")


def device_decide(mock, user_code, action):
    r = mock.client.post("/_mock/device", json_body={"user_code": user_code, "action": action})
    if r.status != 200:
        raise RuntimeError("mock device decision refused: %r" % r)


def dev_counters(mock):
    return mock.counters().get("device", {})


def check_device_answer(label, r):
    j = body_of(r)
    T.status(label + ": HTTP 200", 200, r)
    T.eq(label + ": pending", "pending", j.get("status"))
    d = j.get("device") or {}
    T.ok(label + ": user_code shown", isinstance(d.get("user_code"), str) and
         len(d.get("user_code", "")) == 9, "XXXX-XXXX", d.get("user_code"))
    T.ok(label + ": verification_uri", str(d.get("verification_uri", "")).endswith("/device"),
         "<base>/device", d.get("verification_uri"))
    T.ok(label + ": verification_uri_complete carries the code",
         str(d.get("verification_uri_complete", "")).endswith(d.get("user_code", "?")),
         "...?user_code=CODE", d.get("verification_uri_complete"))
    T.ok(label + ": expires_at set", isinstance(d.get("expires_at"), str), "a time",
         d.get("expires_at"))
    T.ok(label + ": the device code is never shown", '"device_code":' not in r.text(), "absent",
         "present")
    return d


def test_device(g, m):
    m.config(device_interval=1, device_expires_in=600, device_slow_down=0)
    g.provider("dev", {"token_url": token_url(m), "client_id": CLIENT[0],
                       "client_secret": CLIENT[1], "client_auth": "basic",
                       "device_authorization_url": token_url(m, "/device_authorization"),
                       "scopes": ["read"]})
    # approval
    r = g.put("d1", "dev", "device_code")
    d = check_device_answer("device put", r)
    T.eq("pending connection has no token yet", 409,
         g.c.get("/v1/connections/d1/token").status)
    c0 = dev_counters(m)
    wait_for("grantd polls (authorization_pending)",
             lambda: dev_counters(m).get("pending", 0) >= c0.get("pending", 0) + 2)
    rev = (g.conn("d1") or {}).get("revision")
    T.eq("authorization_pending polls store nothing (revision unchanged)", 1, rev)
    device_decide(m, d["user_code"], "approve")
    j = wait_for("approved flow becomes active", lambda: g.status_is("d1", "active"))
    if j:
        T.eq("active: last_error cleared", None, j.get("last_error"))
        T.eq("active: device block gone", None, j.get("device"))
        T.ok("active: has a refresh token", j.get("has_refresh_token"), True,
             j.get("has_refresh_token"))
    r = g.c.get("/v1/connections/d1/token")
    T.status("token of the approved device flow", 200, r)
    tok = (r.json() or {}).get("access_token")
    T.secret(tok)
    T.ok("token is live at the mock",
         (m.client.post("/introspect", form={"token": tok or ""}).json() or {}).get("active"),
         True, False)
    evs = (g.c.get("/v1/events?after=0&limit=100").json() or {}).get("events", [])
    types = [e["type"] for e in evs if e.get("data", {}).get("connection") == "d1"]
    T.ok("events: created then authorized", "connection.authorized" in types, "authorized",
         types)

    # slow_down: +5 s on the interval, stored; the flow goes on
    m.config(device_slow_down=1)
    d = check_device_answer("slow_down put", g.put("d2", "dev", "device_code"))
    j = wait_for("slow_down raises the interval to 6 s",
                 lambda: ((g.conn("d2") or {}).get("device") or {}).get("interval") == 6)
    device_decide(m, d["user_code"], "approve")
    wait_for("flow after slow_down becomes active", lambda: g.status_is("d2", "active"))

    # denial
    d = check_device_answer("denial put", g.put("d3", "dev", "device_code"))
    device_decide(m, d["user_code"], "deny")
    j = wait_for("denied flow ends", lambda: g.status_is("d3", "needs_reauth", "error"))
    if j:
        T.eq("denied: needs_reauth", "needs_reauth", j.get("status"))
        T.eq("denied: last_error access_denied", "access_denied", err_code(j))
        T.ok("denied: message says so", "denied" in (j.get("last_error") or {}).get("message", ""),
             "mentions denial", j.get("last_error"))

    # expiry (the mock says expired_token, or grantd's own deadline passes)
    m.config(device_expires_in=2)
    check_device_answer("expiry put", g.put("d4", "dev", "device_code"))
    j = wait_for("expired flow ends", lambda: g.status_is("d4", "needs_reauth", "error"))
    if j:
        T.eq("expired: needs_reauth", "needs_reauth", j.get("status"))
        T.eq("expired: last_error expired_token", "expired_token", err_code(j))
    m.config(device_expires_in=600)

    # no device endpoint: 422, nothing stored
    g.provider("nodev", {"token_url": token_url(m), "client_id": CLIENT[0],
                         "client_secret": CLIENT[1]})
    r = g.put("d5", "nodev", "device_code")
    T.status("no device endpoint: 422", 422, r)
    T.eq("no device endpoint: error code", "missing_device_endpoint", body_of(r).get("error"))
    T.eq("no device endpoint: nothing stored", 404, g.c.get("/v1/connections/d5").status)

    # the device endpoint fails: the flow ends at once with the reason
    m.config(fault="invalid_client", fault_on="token")
    r = g.put("d6", "dev", "device_code")
    m.config(fault="none")
    j = body_of(r)
    T.eq("device authorization refused: status error", "error", j.get("status"))
    T.eq("device authorization refused: last_error", "invalid_client", err_code(j))

    # discovery finds the device endpoint
    r = g.c.put("/v1/providers/disc", json_body={
        "issuer": "https://localhost:%d" % m.port, "client_id": CLIENT[0],
        "client_secret": CLIENT[1]})
    T.eq("discovery: device_authorization_url",
         token_url(m, "/device_authorization"), body_of(r).get("device_authorization_url"))


def test_device_restart(g, m, tmp):
    m.config(device_interval=1, device_expires_in=600, device_slow_down=0)
    d = check_device_answer("restart put", g.put("d7", "dev", "device_code"))
    st = g.p.stop()
    T.eq("grantd stops with a flow pending", 0, st)
    device_decide(m, d["user_code"], "approve")
    g.p.start()
    T.secret(g.p.api_key)
    wait_for("flow pending across a restart becomes active", lambda: g.status_is("d7", "active"))


# ---- JWT bearer -----------------------------------------------------------

def gen_rsa(tmp, name):
    path = os.path.join(tmp, name)
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", path], check=True, capture_output=True)
    with open(path) as f:
        return f.read()


def last_assertion(m):
    j = m.client.get("/_mock/assertion").json() or {}
    T.secret(j.get("assertion"))
    return j


def check_claims(label, a, want, absent=()):
    c = a.get("claims") or {}
    for k, v in want.items():
        T.eq("%s: claim %s" % (label, k), v, c.get(k))
    for k in absent:
        T.ok("%s: no claim %s" % (label, k), k not in c, "absent", c.get(k))
    iat, exp = c.get("iat"), c.get("exp")
    T.ok(label + ": iat now, exp = iat + 120", isinstance(iat, int) and exp == iat + 120 and
         abs(iat - time.time()) < 600, "iat/exp", (iat, exp))
    T.ok(label + ": jti present", isinstance(c.get("jti"), str) and len(c["jti"]) >= 16,
         "a jti", c.get("jti"))
    T.eq(label + ": typ JWT", "JWT", (a.get("header") or {}).get("typ"))
    T.ok(label + ": kid present", (a.get("header") or {}).get("kid"), "a kid", a.get("header"))


def test_jwt_bearer(g, m, tmp):
    key = gen_rsa(tmp, "sa.pem")
    other = gen_rsa(tmp, "other.pem")
    T.secret(key, other)
    m.config(assertion_key=key, assertion_aud=None)

    # Google service account: iss = client_email, scope claim, aud = the
    # token endpoint, no sub, no client authentication in the request.
    g.provider("google", {"token_url": token_url(m), "client_id": GOOGLE_SA,
                          "signing_key": key, "assertion_scope_claim": True,
                          "scopes": ["https://www.googleapis.com/auth/devstorage.read_only"],
                          "grants": ["jwt_bearer"]})
    r = g.put("j1", "google", "jwt_bearer")
    T.status("google: PUT", 200, r)
    T.eq("google: active", "active", body_of(r).get("status"))
    a = last_assertion(m)
    check_claims("google", a, {"iss": GOOGLE_SA, "aud": token_url(m),
                               "scope": "https://www.googleapis.com/auth/devstorage.read_only"},
                 absent=("sub",))
    T.eq("google: no client authentication sent", False, a.get("client_authenticated"))
    T.eq("google: scope not sent as a parameter", None, a.get("scope_param"))
    T.eq("google: RS256", "RS256", (a.get("header") or {}).get("alg"))

    # Renewal: a fresh assertion (new jti), accepted again.
    jti1 = (a.get("claims") or {}).get("jti")
    r = g.c.post("/v1/connections/j1/refresh", body=b"")
    T.status("google: renewal", 200, r)
    a2 = last_assertion(m)
    T.ok("google: renewal signs a fresh assertion", (a2.get("claims") or {}).get("jti") != jti1,
         "new jti", "same jti")

    # Salesforce: iss = consumer key, sub = username, aud = login host; the
    # connection carries its own key.
    m.config(assertion_aud="https://login.salesforce.com")
    g.provider("sf", {"token_url": token_url(m), "client_id": SF_KEY,
                      "assertion_claims": {"aud": "https://login.salesforce.com"}})
    r = g.put("j2", "sf", "jwt_bearer", signing_key=key,
              assertion_claims={"sub": "my@email.com"})
    T.status("salesforce: PUT", 200, r)
    T.eq("salesforce: active", "active", body_of(r).get("status"))
    T.eq("salesforce: signing key not shown", True, body_of(r).get("has_signing_key"))
    T.ok("salesforce: key text never returned", "PRIVATE KEY" not in r.text(), "absent",
         "present")
    check_claims("salesforce", last_assertion(m), {"iss": SF_KEY, "sub": "my@email.com",
                                                   "aud": "https://login.salesforce.com"})

    # DocuSign: iss = integration key, sub = user id, bare-host aud,
    # scope "signature impersonation" in the assertion.
    m.config(assertion_aud="account-d.docusign.com")
    g.provider("ds", {"token_url": token_url(m), "client_id": DS_KEY, "signing_key": key,
                      "assertion_claims": {"aud": "account-d.docusign.com"},
                      "assertion_scope_claim": True})
    r = g.put("j3", "ds", "jwt_bearer", scopes=["signature", "impersonation"],
              assertion_claims={"sub": DS_USER})
    T.status("docusign: PUT", 200, r)
    T.eq("docusign: active", "active", body_of(r).get("status"))
    check_claims("docusign", last_assertion(m), {"iss": DS_KEY, "sub": DS_USER,
                                                 "aud": "account-d.docusign.com",
                                                 "scope": "signature impersonation"})
    # The mock refuses the same assertion twice (RFC 7523 section 3 point 7;
    # this audience does not depend on the Host the test connects to).
    rr = m.client.post("/token", form={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                       "assertion": last_assertion(m).get("assertion") or ""})
    T.eq("replayed assertion refused", 400, rr.status)
    T.ok("replay: invalid_grant, jti reused", "jti" in (rr.json() or {}).get(
        "error_description", ""), "jti was used before", rr.json())

    # A key the provider does not know: refused, last_error from the mock.
    r = g.put("j4", "sf", "jwt_bearer", signing_key=other, assertion_claims={"sub": "x@y.z"})
    j = body_of(r)
    T.eq("unknown key: needs_reauth", "needs_reauth", j.get("status"))
    T.eq("unknown key: invalid_grant", "invalid_grant", err_code(j))

    # Bad input: 422, nothing stored.
    g.provider("nokey", {"token_url": token_url(m), "client_id": SF_KEY})
    bad = [
        ("no key anywhere", "nokey", {}, "invalid_signing_key"),
        ("unparsable key", "sf", {"signing_key": "-----BEGIN PRIVATE KEY-----\nnope\n"},
         "invalid_signing_key"),
        ("oct key", "sf", {"signing_key": '{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}'},
         "invalid_signing_key"),
        ("alg does not fit the key", "sf", {"signing_key": key, "signing_alg": "ES256"},
         "invalid_signing_key"),
        ("claims set exp", "sf", {"assertion_claims": {"exp": 1}}, "invalid_field"),
    ]
    for i, (label, prov, kw, code) in enumerate(bad):
        cid = "jbad%d" % i
        r = g.put(cid, prov, "jwt_bearer", **kw)
        T.status("bad input (%s): 422" % label, 422, r)
        T.eq("bad input (%s): code" % label, code, body_of(r).get("error"))
        T.eq("bad input (%s): nothing stored" % label, 404,
             g.c.get("/v1/connections/" + cid).status)
    r = g.put("jbad9", "sf", "client_credentials", signing_key=key)
    T.status("signing_key on another grant: 422", 422, r)
    r = g.c.put("/v1/providers/badclaims", json_body={"token_url": token_url(m),
                                                     "assertion_claims": {"jti": "x"}})
    T.status("provider claims with jti: 422", 422, r)
    T.eq("provider claims with jti: nothing stored", 404, g.c.get("/v1/providers/badclaims").status)


AT = "urn:ietf:params:oauth:token-type:access_token"


def test_exchange(g, m):
    m.config(expires_in=3600, fault="none")
    g.provider("xch", {"token_url": token_url(m), "client_id": CLIENT[0],
                       "client_secret": CLIENT[1], "client_auth": "basic", "scopes": ["read"]})
    r = g.put("xs1", "xch", "client_credentials")
    T.eq("exchange source active", "active", body_of(r).get("status"))
    src_tok = (g.c.get("/v1/connections/xs1/token").json() or {}).get("access_token")
    T.secret(src_tok)

    # From another connection.
    r = g.put("xd1", "xch", "token_exchange", subject_connection="xs1", audience=["api-a", "api-b"],
              resource=["https://rs.example/"], requested_token_type=AT)
    j = body_of(r)
    T.status("exchange from a connection: PUT", 200, r)
    T.eq("exchange from a connection: active", "active", j.get("status"))
    T.eq("dependent shows its source", "xs1", j.get("subject_connection"))
    x = m.client.get("/_mock/exchange").json() or {}
    T.eq("audience sent twice (RFC 8693 allows repeats)", ["api-a", "api-b"], x.get("audience"))
    T.eq("resource sent", ["https://rs.example/"], x.get("resource"))
    T.eq("subject_token_type default", AT, x.get("subject_token_type"))
    T.eq("requested_token_type sent", AT, x.get("requested_token_type"))
    tok = (g.c.get("/v1/connections/xd1/token").json() or {}).get("access_token")
    T.secret(tok)
    T.ok("exchanged token differs from the subject token", tok and tok != src_tok, "new token",
         "same")
    # Renewal repeats the exchange.
    n0 = m.counters().get("token_exchange", {}).get("accepted", 0)
    T.status("renewal of the exchange", 200, g.c.post("/v1/connections/xd1/refresh", body=b""))
    T.eq("renewal repeated the exchange", n0 + 1,
         m.counters().get("token_exchange", {}).get("accepted", 0))

    # Given subject token, with an actor token.
    r = g.put("xd2", "xch", "token_exchange", subject_token=src_tok, actor_token=tok,
              actor_token_type=AT)
    T.eq("given subject + actor token: active", "active", body_of(r).get("status"))
    T.eq("actor token sent", True, (m.client.get("/_mock/exchange").json() or {}).get("actor"))
    T.ok("subject token never shown", src_tok not in r.text(), "absent", "present")

    # A source about to expire is refreshed first.
    m.config(expires_in=30)
    g.put("xs2", "xch", "client_credentials")
    m.config(expires_in=3600)
    r = g.put("xd3", "xch", "token_exchange", subject_connection="xs2")
    T.eq("source near expiry: exchange still active", "active", body_of(r).get("status"))
    sj = g.conn("xs2") or {}
    T.ok("source near expiry was refreshed first (new expiry about an hour out)",
         sj.get("expires_at") and sj.get("expires_at") > time.strftime(
             "%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 600)), "refreshed", sj.get("expires_at"))

    # Cross tenant.
    r = g.c.put("/v1/connections/xs3", json_body={"tenant": "other", "provider": "xch",
                                                  "grant": "client_credentials"})
    T.status("other tenant's source created", 200, r)
    r = g.put("xd4", "xch", "token_exchange", subject_connection="xs3")
    T.status("cross-tenant source refused", 422, r)
    T.eq("cross-tenant: code", "cross_tenant_source", body_of(r).get("error"))
    T.eq("cross-tenant: nothing stored", 404, g.c.get("/v1/connections/xd4").status)
    r = g.put("xd4", "xch", "token_exchange", subject_connection="xs3", allow_cross_tenant=True)
    T.eq("cross-tenant allowed explicitly", "active", body_of(r).get("status"))

    # Bad input.
    for label, kw, code in [
            ("no subject", {}, "missing_field"),
            ("both subjects", {"subject_token": "a", "subject_connection": "xs1"}, "missing_field"),
            ("actor token without type", {"subject_token": "a", "actor_token": "b"},
             "invalid_field"),
            ("unknown source", {"subject_connection": "nope"}, "unknown_subject_connection"),
            ("chained source", {"subject_connection": "xd1"}, "invalid_field"),
            ("itself", {"subject_connection": "xbad"}, "invalid_field")]:
        r = g.put("xbad", "xch", "token_exchange", **kw)
        T.status("exchange bad input (%s): 422" % label, 422, r)
        T.eq("exchange bad input (%s): code" % label, code, body_of(r).get("error"))
        T.eq("exchange bad input (%s): nothing stored" % label, 404,
             g.c.get("/v1/connections/xbad").status)
    r = g.put("xbad", "xch", "client_credentials", audience=["x"])
    T.status("audience on another grant: 422", 422, r)

    # Deleting the source marks the dependent needs_reauth.
    T.status("delete the source", 200, g.c.delete("/v1/connections/xs1"))
    j = wait_for("dependent of a deleted source ends", lambda: g.status_is("xd1", "needs_reauth"))
    if j:
        T.eq("dependent: last_error", "subject_connection_deleted", err_code(j))


def section(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - a crashed section is a failure
        T.ok("section %s ran to the end" % name, False, "no exception",
             "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))


def main():
    tmp = test_tmpdir("devjwt-")
    procs = []
    try:
        ca = make_certs(os.path.join(tmp, "pki"))
        m = MockProvider(tmp, ca).start(args=[
            "--client", "%s:%s" % CLIENT, "--client", GOOGLE_SA + ":", "--client", SF_KEY + ":",
            "--client", DS_KEY + ":"])
        procs.append(("mock", m))
        gp = GrantdProc(tmp, data_dir=os.path.join(tmp, "data"), ca_file=ca.ca,
                        master_key=rand_master_key()).start()
        procs.append(("grantd", gp))
        T.secret(gp.api_key, gp.master_key)
        g = G(gp)
        section("device", test_device, g, m)
        section("device_restart", test_device_restart, g, m, tmp)
        section("jwt_bearer", test_jwt_bearer, g, m, tmp)
        section("token_exchange", test_exchange, g, m)
    except Exception as e:  # noqa: BLE001
        T.ok("set-up", False, "no exception", "%s: %s\n%s" % (type(e).__name__, e,
                                                              traceback.format_exc()))
    finally:
        for name, p in reversed(procs):
            st = p.stop()
            T.eq("%s exits 0 on SIGTERM (no crash, no leak)" % name, 0, st)
            log = p.log()
            T.ok("%s log has no sanitizer report" % name,
                 "AddressSanitizer" not in log and "runtime error:" not in log
                 and "LeakSanitizer" not in log, "no report", T.scrub(log[-2000:]))
    rc = T.finish()
    if rc == 0:
        cleanup_dir(tmp)
    else:
        print("logs kept in %s" % tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
