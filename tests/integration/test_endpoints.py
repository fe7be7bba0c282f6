#!/usr/bin/env python3
"""Integration test: which provider endpoints grantd connects to (the SSRF
guard) and certificates for IP-address URLs, on the real binaries.

Processes (all on loopback, port 0, stopped by PID):
  mock M4     leaf DNS:localhost, IP:127.0.0.1, IP:::1 on 127.0.0.1
  mock M6     the same leaf, listening on ::1
  mock N4     leaf DNS:localhost only (no IP SAN) on 127.0.0.1
  mock N6     that leaf on ::1
  grantd G0   no endpoint options: the default guard
  grantd G1   --allow-endpoint-cidr 127.0.0.0/8 (IPv4 loopback only)
  grantd G2   --allow-private-endpoints

Checks: bad --allow-endpoint-cidr values exit 2 with one line; PUT
/v1/providers refuses forbidden IP literals in token_url, revoke_url and
issuer (422 endpoint_forbidden) but not in authorize_url; a name resolving
to loopback (localhost) is refused when connecting, with last_error.code
endpoint_forbidden and no request reaching the mock, and is reached once
the CIDR is allowed; https://127.0.0.1 and https://[::1] work against
leaves with the matching iPAddress SAN and fail with tls_hostname against
leaves without one.

Prints "N passed, M failed"; exits 1 on any failure. Each grantd and mock
must exit 0 on SIGTERM.
"""
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, body_of, cleanup_dir,  # noqa: E402
                     grantd_bin, last_error, make_certs, test_tmpdir)

T = Checks()
CLIENT = ("ep-client", "ep-secret")
T.secret(CLIENT[1])


def provider(g, name, **kw):
    body = {"client_id": CLIENT[0], "client_secret": CLIENT[1], "client_auth": "basic"}
    body.update(kw)
    return g.client.put("/v1/providers/" + name, json_body=body)


def connect(g, cid, prov):
    return g.client.put("/v1/connections/" + cid, json_body={
        "tenant": "t-ep", "provider": prov, "grant": "client_credentials"})


def cc_requests(mock):
    c = mock.counters() or {}
    return (c.get("token_requests") or {}).get("client_credentials", 0)


def url(host, mock, path="/token"):
    h = "[%s]" % host if ":" in host else host
    return "https://%s:%d%s" % (h, mock.port, path)


def expect_active(label, r):
    j = body_of(r)
    T.status(label + ": HTTP status", 200, r)
    T.eq(label + ": status", "active", j.get("status"))
    T.eq(label + ": last_error", None, j.get("last_error"))


def expect_failed(label, r, code):
    j = body_of(r)
    le = last_error(j)
    T.eq(label + ": last_error.code", code, le.get("code"))
    T.ok(label + ": last_error.message", isinstance(le.get("message"), str) and le["message"],
         "a message", le.get("message"))
    T.eq(label + ": no token", False, j.get("has_access_token"))
    return le


def test_cli(work):
    """Bad allow lists are configuration errors: exit 2, one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    base = [grantd_bin(), "serve", "--listen", "127.0.0.1:0", "--data",
            os.path.join(work, "cli-data"), "--port-file", os.path.join(work, "cli-port")]
    cases = [
        (["--allow-endpoint-cidr", "10.0.0.1/8"], {}, "host bits"),
        (["--allow-endpoint-cidr", "10.0.0.0/8,nonsense"], {}, "nonsense"),
        (["--allow-endpoint-cidr", "10.0.0.0/33"], {}, "prefix length"),
        (["--allow-endpoint-cidr", ""], {}, "empty item"),
        (["--allow-endpoint-cidr", "127.0.0.0/8,,::1/128"], {}, "empty item"),
        ([], {"GRANTD_ALLOW_ENDPOINT_CIDR": "::1/129"}, "prefix length"),
        (["--allow-private-endpoints=maybe"], {}, "true or false"),
    ]
    for args, extra, needle in cases:
        e = dict(env)
        e.update(extra)
        p = subprocess.run(base + args, env=e, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
        err = p.stderr.decode("utf-8", "replace")
        label = "cli %s %s" % (" ".join(args), extra)
        T.eq(label + ": exit status", 2, p.returncode)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        T.eq(label + ": one line", 1, len(lines))
        T.ok(label + ": names the problem", needle in err, needle, err)
        T.ok(label + ": names the option",
             "allow-endpoint-cidr" in err or "allow-private-endpoints" in err, "option", err)


def test_literals_at_put(g0, m4):
    """Forbidden literals are refused when the provider is stored."""
    cases = [
        ("token_url", "https://169.254.169.254/latest/meta-data", "link_local"),
        ("token_url", "https://10.0.3.7:8443/token", "private"),
        ("token_url", "https://127.0.0.1:%d/token" % m4.port, "loopback"),
        ("token_url", "https://[::1]:8443/token", "loopback"),
        ("token_url", "https://[fe80::1]/token", "link_local"),
        ("token_url", "https://[fd00::7]/token", "unique_local"),
        ("token_url", "https://100.64.0.1/token", "shared"),
        ("token_url", "https://[::ffff:169.254.169.254]/token", "link_local"),
        ("token_url", "https://[64:ff9b::a9fe:a9fe]/token", "link_local"),
        ("token_url", "https://2130706433/token", "loopback"),
        ("token_url", "https://0.0.0.0/token", "unspecified"),
        ("revoke_url", "https://192.168.1.1/revoke", "private"),
        ("issuer", "https://[::1]:8443", "loopback"),
    ]
    for i, (field, u, cls) in enumerate(cases):
        body = {"token_url": "https://idp.example/token"}
        body[field] = u
        r = provider(g0, "lit-%d" % i, **body)
        j = body_of(r)
        T.status("PUT %s=%s: HTTP status" % (field, u), 422, r)
        T.eq("PUT %s=%s: error" % (field, u), "endpoint_forbidden", j.get("error"))
        msg = j.get("message") or ""
        T.ok("PUT %s=%s: message names field and class" % (field, u),
             field in msg and cls in msg and "--allow-endpoint-cidr" in msg,
             "%s, %s and the option" % (field, cls), msg)
        T.status("PUT %s=%s: nothing stored" % (field, u), 404,
                 g0.client.get("/v1/providers/lit-%d" % i))
    # The browser-facing authorize URL is never dialled by grantd.
    r = provider(g0, "lit-authz", token_url="https://idp.example/token",
                 authorize_url="https://127.0.0.1:%d/authorize" % m4.port)
    T.status("authorize_url on loopback is accepted", 200, r)
    # Names are checked when dialled, not here.
    r = provider(g0, "lit-name", token_url=url("localhost", m4))
    T.status("token_url by name is accepted at PUT", 200, r)


def test_names_at_connect(g0, g1, m4):
    """localhost resolves to 127.0.0.1: refused under the default guard,
    reached once 127.0.0.0/8 is allowed."""
    before = cc_requests(m4)
    T.status("G0 provider by name", 200, provider(g0, "byname", token_url=url("localhost", m4)))
    r = connect(g0, "ep-name-0", "byname")
    le = expect_failed("G0 localhost (default guard)", r, "endpoint_forbidden")
    T.ok("G0 localhost: message says how to allow it",
         "--allow-endpoint-cidr" in (le.get("message") or ""), "the option", le.get("message"))
    T.eq("G0 localhost: status", "error", body_of(r).get("status"))
    T.eq("G0 localhost: no request reached the mock", before, cc_requests(m4))
    j = body_of(g0.client.get("/v1/connections/ep-name-0"))
    T.eq("G0 localhost: stored last_error.code", "endpoint_forbidden",
         last_error(j).get("code"))
    log = g0.log()
    T.ok("G0 log names the refused address", '"endpoint_forbidden"' in log and
         "127.0.0.1" in log and "loopback" in log, "endpoint_forbidden log line", log[-600:])
    # Discovery by name is guarded the same way.
    r = provider(g0, "disc", issuer="https://localhost:%d" % m4.port)
    T.ok("G0 discovery of localhost fails", r.status >= 400, ">= 400", r)
    T.eq("G0 discovery: error", "discovery_failed", body_of(r).get("error"))
    T.ok("G0 discovery: the log says why", '"discovery_failed"' in g0.log() and
         "not public" in g0.log(), "the guard's message in the reason", g0.log()[-600:])

    T.status("G1 provider by name", 200, provider(g1, "byname", token_url=url("localhost", m4)))
    r = connect(g1, "ep-name-1", "byname")
    expect_active("G1 localhost with 127.0.0.0/8 allowed", r)
    T.eq("G1 localhost: one request reached the mock", before + 1, cc_requests(m4))
    # ::1 is outside 127.0.0.0/8.
    r = provider(g1, "v6lit", token_url="https://[::1]:1/token")
    T.status("G1 [::1] literal refused at PUT", 422, r)
    T.eq("G1 [::1] literal: error", "endpoint_forbidden", body_of(r).get("error"))


def test_ip_certificates(g1, g2, m4, m6, n4, n6):
    """IP-address URLs are verified against iPAddress SANs."""
    T.status("G1 provider https://127.0.0.1", 200,
             provider(g1, "ip4", token_url=url("127.0.0.1", m4)))
    expect_active("G1 https://127.0.0.1 (leaf has IP:127.0.0.1)", connect(g1, "ep-ip4", "ip4"))
    T.status("G1 provider https://127.0.0.1 no IP SAN", 200,
             provider(g1, "ip4-nosan", token_url=url("127.0.0.1", n4)))
    r = connect(g1, "ep-ip4-nosan", "ip4-nosan")
    expect_failed("G1 https://127.0.0.1 (leaf without IP SAN)", r, "tls_hostname")
    T.status("G1 provider https://localhost no IP SAN", 200,
             provider(g1, "name-nosan", token_url=url("localhost", n4)))
    expect_active("G1 https://localhost (leaf DNS:localhost)", connect(g1, "ep-name-nosan",
                                                                       "name-nosan"))

    T.status("G2 provider https://[::1]", 200, provider(g2, "ip6", token_url=url("::1", m6)))
    expect_active("G2 https://[::1] (leaf has IP:::1)", connect(g2, "ep-ip6", "ip6"))
    T.status("G2 provider https://[::1] no IP SAN", 200,
             provider(g2, "ip6-nosan", token_url=url("::1", n6)))
    r = connect(g2, "ep-ip6-nosan", "ip6-nosan")
    expect_failed("G2 https://[::1] (leaf without IP SAN)", r, "tls_hostname")
    T.ok("G2 warns that the guard is off", "endpoint_guard_off" in g2.log(),
         "endpoint_guard_off", g2.log()[-400:])


def main():
    tmp = test_tmpdir("endpoints-")
    procs = []
    ok_exit = True
    try:
        test_cli(tmp)
        ip = make_certs(os.path.join(tmp, "pki-ip"))
        noip = make_certs(os.path.join(tmp, "pki-noip"), no_ip=True)
        bundle = os.path.join(tmp, "trusted.pem")
        with open(bundle, "w") as f:
            for p in (ip.ca, noip.ca):
                with open(p) as src:
                    f.write(src.read())

        def start_mock(certs, host):
            m = MockProvider(tmp, certs, host=host).start(
                args=["--host", host, "--client", "%s:%s" % CLIENT])
            procs.append(("mock %s:%d" % (host, m.port), m))
            return m

        m4 = start_mock(ip, "127.0.0.1")
        m6 = start_mock(ip, "::1")
        # The control client checks the leaf's name: the no-IP leaf is for
        # localhost, which is 127.0.0.1 here; on ::1 it is reached by address
        # only, so its control client skips the name check (test-only).
        n4 = start_mock(noip, "127.0.0.1")
        n4.host = "localhost"
        n4.client = n4.new_client()

        class NoNameCheck:
            def __init__(self, c):
                self.ca, self.cert, self.key = c.ca, c.cert, c.key

            def ssl_context(self):
                ctx = noip.ssl_context()
                ctx.check_hostname = False
                return ctx

        n6 = start_mock(NoNameCheck(noip), "::1")

        def start_grantd(name, endpoint_args):
            g = GrantdProc(tmp, data_dir=os.path.join(tmp, "data-" + name), ca_file=bundle,
                           endpoint_args=endpoint_args).start()
            procs.append(("grantd " + name, g))
            return g

        g0 = start_grantd("g0", ())
        g1 = start_grantd("g1", ("--allow-endpoint-cidr", "127.0.0.0/8"))
        g2 = start_grantd("g2", ("--allow-private-endpoints",))
        for name, fn in (("literals", lambda: test_literals_at_put(g0, m4)),
                         ("names", lambda: test_names_at_connect(g0, g1, m4)),
                         ("ip certificates", lambda: test_ip_certificates(g1, g2, m4, m6, n4, n6))):
            try:
                fn()
            except Exception:
                T.ok("%s: no exception" % name, False, "none", traceback.format_exc())
    except Exception:
        T.ok("setup: no exception", False, "none", traceback.format_exc())
    finally:
        for name, p in reversed(procs):
            rc = p.stop()
            if rc != 0:
                ok_exit = False
                print("FAIL %s exit status: expected 0, got %s\n%s" % (name, rc, p.log()[-1500:]),
                      flush=True)
    if ok_exit:
        cleanup_dir(tmp)
    rc = T.finish()
    return rc if ok_exit else 1


if __name__ == "__main__":
    sys.exit(main())
