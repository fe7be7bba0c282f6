#!/usr/bin/env python3
"""Integration test: mutual TLS client authentication (RFC 8705) against the
mock provider's mTLS listener.

Processes (127.0.0.1, port 0, stopped by PID):
  mock M    ECDSA leaf from CA1; a second listener (--client-ca) that asks
            every client for a certificate and checks it against the client
            CA (tls_client_auth) or the registered certificate
            (self_signed_tls_client_auth); its metadata lists that listener
            as mtls_endpoint_aliases
  grantd G  --ca-file CA1

Checked: both methods end to end (client_credentials, password, refresh,
revocation), the aliases from discovery (and that the plain token endpoint,
which asks for no certificate, refuses a mutual-TLS client), a wrong or
missing certificate refused by the provider, the pool rule (a connection
that presented one client certificate is never reused for a request that
needs another or none: the certificate the mock saw on each request, and
one TLS connection per certificate), and bad input (422
invalid_client_cert, nothing stored).

The certificates are made at test time with the openssl CLI. Prints "N
passed, M failed"; exits 1 on any failure.
"""
import base64
import hashlib
import os
import ssl
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, body_of, cleanup_dir,  # noqa: E402
                     make_certs, read_text, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
USER = ("alice", "wonderland")
T.secret(CLIENT[1], USER[1])

LEAF_EXT = """[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
"""


def run(*cmd, cwd=None):
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def genkey(path, kind):
    if kind == "ec":
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", path)
    else:
        run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + kind,
            "-out", path)


class Pki:
    """A client CA, two leaves it issued (EC and RSA), a self-signed RSA
    certificate, a 1024-bit one, and spare keys; PEM texts by name."""

    def __init__(self, d):
        os.makedirs(d, exist_ok=True)
        self.d = d
        p = lambda n: os.path.join(d, n)  # noqa: E731
        with open(p("ext.cnf"), "w") as f:
            f.write(LEAF_EXT)
        genkey(p("ca.key"), "ec")
        run("openssl", "req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=grantd test client CA",
            "-days", "30", "-out", p("ca.pem"))
        for name, kind in (("a", "ec"), ("b", "2048")):
            genkey(p(name + ".key"), kind)
            run("openssl", "req", "-new", "-key", p(name + ".key"), "-subj",
                "/CN=client-" + name, "-out", p(name + ".csr"))
            run("openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey",
                p("ca.key"), "-CAcreateserial", "-days", "30", "-extfile", p("ext.cnf"),
                "-extensions", "leaf", "-out", p(name + ".pem"))
        for name, bits in (("ss", "2048"), ("small", "1024")):
            genkey(p(name + ".key"), bits)
            run("openssl", "req", "-x509", "-new", "-key", p(name + ".key"), "-subj",
                "/CN=self-signed-" + name, "-days", "30", "-out", p(name + ".pem"))
        genkey(p("other-ec.key"), "ec")
        self.ca = p("ca.pem")

    def pem(self, name):
        return read_text(os.path.join(self.d, name))

    def sha(self, name):
        der = ssl.PEM_cert_to_DER_cert(self.pem(name + ".pem"))
        return hashlib.sha256(der).digest()

    def sha_hex(self, name):
        return self.sha(name).hex()

    def x5t(self, name):
        return base64.urlsafe_b64encode(self.sha(name)).rstrip(b"=").decode()


def set_knobs(mock, **knobs):
    r = mock.config(**knobs)
    if r.status != 200:
        raise RuntimeError("mock config %r refused: %r" % (knobs, r))


def last_cert(mock):
    return (mock.client.get("/_mock/last_auth").json() or {}).get("client_cert_sha256")


def conns_accepted(mock):
    return ((mock.counters() or {}).get("connections") or {}).get("accepted")


def main():
    tmp = test_tmpdir("mtls-")
    mock = g = None
    try:
        ca1 = make_certs(os.path.join(tmp, "pki1"))
        pki = Pki(os.path.join(tmp, "clients"))
        for n in ("a.key", "b.key", "ss.key", "small.key", "other-ec.key"):
            T.secret(pki.pem(n))
        mport_file = os.path.join(tmp, "mtls-port")
        mock = MockProvider(tmp, ca1).start(args=["--client-ca", pki.ca, "--mtls-port-file",
                                                  mport_file])
        mport = int(read_text(mport_file).strip())
        mtls_base = "https://127.0.0.1:%d" % mport
        g = GrantdProc(tmp, ca_file=ca1.ca).start()
        c = g.client

        def provider(name, **kw):
            body = {"client_id": CLIENT[0], "scopes": ["read"]}
            body.update(kw)
            return c.put("/v1/providers/" + name, json_body=body)

        def put(cid, prov, grant="client_credentials", **kw):
            body = {"tenant": "t-mtls", "provider": prov, "grant": grant}
            body.update(kw)
            return c.put("/v1/connections/" + cid, json_body=body)

        def active(label, r):
            j = body_of(r)
            T.status(label + ": HTTP 200", 200, r)
            T.eq(label + ": active", "active", j.get("status"))
            T.eq(label + ": no last_error", None, j.get("last_error"))
            return j

        def refused(label, r, want="invalid_client"):
            j = body_of(r)
            le = j.get("last_error") or {}
            T.eq(label + ": status error", "error", j.get("status"))
            T.eq(label + ": the provider's error", want, le.get("code") or le.get("error"))

        # ---- tls_client_auth, endpoints from discovery ----
        set_knobs(mock, client_auth="tls_client_auth")
        r = provider("mt-ca", issuer=mock.base_url, client_auth="tls_client_auth",
                     client_cert=pki.pem("a.pem"), client_cert_key=pki.pem("a.key"))
        T.status("tls_client_auth provider with discovery", 200, r)
        p = body_of(r)
        T.eq("mtls_token_url from mtls_endpoint_aliases", mtls_base + "/token",
             p.get("mtls_token_url"))
        T.eq("mtls_revoke_url from mtls_endpoint_aliases", mtls_base + "/revoke",
             p.get("mtls_revoke_url"))
        T.eq("token_url stays the plain endpoint", mock.url("/token"), p.get("token_url"))
        T.eq("has_client_cert", True, p.get("has_client_cert"))
        T.eq("client_cert_sha256 is the x5t#S256 of the leaf", pki.x5t("a"),
             p.get("client_cert_sha256"))
        T.eq("the key is never shown", [], [k for k in p if "key" in k and k != "has_signing_key"
                                            and k != "signing_key_id"])
        j = active("tls_client_auth client_credentials", put("m1", "mt-ca"))
        T.eq("the mock saw certificate A", pki.sha_hex("a"), last_cert(mock))
        active("tls_client_auth password grant",
               put("m2", "mt-ca", "password", username=USER[0], password=USER[1]))
        active("tls_client_auth refresh", c.post("/v1/connections/m2/refresh", body=b""))
        k0 = mock.counters() or {}
        r = c.delete("/v1/connections/m2?revoke=true")
        T.status("tls_client_auth revocation", 200, r)
        k1 = mock.counters() or {}
        T.ok("revocation reached the mock", k1["requests"]["revoke"] > k0["requests"]["revoke"],
             "more revoke requests", k1["requests"]["revoke"])
        T.ok("the mock revoked (the alias, with certificate A)",
             k1["revocations"] > k0["revocations"], "more revocations", k1["revocations"])
        T.eq("no revocation refused", k0["errors"]["invalid_client"],
             k1["errors"]["invalid_client"])

        # The plain token endpoint asks for no certificate: a mutual-TLS
        # client sent there is refused (why the aliases matter).
        r = provider("mt-plain", token_url=mock.url("/token"), client_auth="tls_client_auth",
                     client_cert=pki.pem("a.pem"), client_cert_key=pki.pem("a.key"))
        T.status("tls_client_auth provider without aliases", 200, r)
        refused("no certificate on the plain endpoint", put("m3", "mt-plain"))

        # A certificate the client CA did not issue.
        r = provider("mt-wrong", token_url=mock.url("/token"), mtls_token_url=mtls_base + "/token",
                     client_auth="tls_client_auth", client_cert=pki.pem("ss.pem"),
                     client_cert_key=pki.pem("ss.key"))
        T.status("provider with a self-signed certificate", 200, r)
        refused("tls_client_auth with a certificate from no trusted CA", put("m4", "mt-wrong"))

        # ---- self_signed_tls_client_auth, explicit alias ----
        set_knobs(mock, client_auth="self_signed_tls_client_auth",
                  client_cert_sha256=pki.sha_hex("ss"))
        r = provider("mt-ss", token_url=mock.url("/token"), mtls_token_url=mtls_base + "/token",
                     client_auth="self_signed_tls_client_auth", client_cert=pki.pem("ss.pem"),
                     client_cert_key=pki.pem("ss.key"))
        T.status("self_signed_tls_client_auth provider", 200, r)
        active("self_signed_tls_client_auth client_credentials", put("m5", "mt-ss"))
        T.eq("the mock saw the self-signed certificate", pki.sha_hex("ss"), last_cert(mock))
        refused("self_signed_tls_client_auth with another certificate than registered",
                put("m6", "mt-ca"))

        # ---- the pool rule ----
        # A and B: certificates of the client CA; N: the same mTLS endpoint
        # with no certificate. Interleaved requests each present their own
        # certificate (or none), and each identity keeps its own pooled
        # connection: three connections for the six requests.
        set_knobs(mock, client_auth="tls_client_auth", client_cert_sha256=None)
        provider("pool-a", token_url=mtls_base + "/token", client_auth="tls_client_auth",
                 client_cert=pki.pem("a.pem"), client_cert_key=pki.pem("a.key"))
        provider("pool-b", token_url=mtls_base + "/token", client_auth="tls_client_auth",
                 client_cert=pki.pem("b.pem"), client_cert_key=pki.pem("b.key"))
        provider("pool-n", token_url=mtls_base + "/token", client_auth="post",
                 client_secret=CLIENT[1])
        n0 = conns_accepted(mock)
        for i, (prov, want) in enumerate((("pool-a", "a"), ("pool-b", "b"), ("pool-n", None),
                                          ("pool-a", "a"), ("pool-n", None), ("pool-b", "b"))):
            r = put("pool-%d" % i, prov)
            label = "pool request %d (%s)" % (i, prov)
            if want is None:
                refused(label + ": no certificate, so refused", r)
                T.eq(label + ": the mock saw no certificate", None, last_cert(mock))
            else:
                active(label, r)
                T.eq(label + ": the mock saw certificate " + want.upper(), pki.sha_hex(want),
                     last_cert(mock))
        T.eq("one TLS connection per certificate identity (A, B, none)", 3,
             conns_accepted(mock) - n0)

        # ---- bad input: 422 invalid_client_cert, nothing stored ----
        good = {"token_url": mtls_base + "/token", "client_auth": "tls_client_auth"}
        bad = (
            ("mutual TLS without a certificate", {}),
            ("certificate without its key", {"client_cert": pki.pem("a.pem")}),
            ("key without its certificate", {"client_cert_key": pki.pem("a.key"),
                                             "client_auth": "basic", "client_secret": "s"}),
            ("unparsable certificate", {"client_cert": "-----BEGIN CERTIFICATE-----\nnope\n"
                                        "-----END CERTIFICATE-----\n",
                                        "client_cert_key": pki.pem("a.key")}),
            ("not PEM at all", {"client_cert": "hello", "client_cert_key": pki.pem("a.key")}),
            ("unparsable key", {"client_cert": pki.pem("a.pem"), "client_cert_key": "garbage"}),
            ("key of another certificate", {"client_cert": pki.pem("a.pem"),
                                            "client_cert_key": pki.pem("other-ec.key")}),
            ("key of the wrong type", {"client_cert": pki.pem("a.pem"),
                                       "client_cert_key": pki.pem("b.key")}),
            ("RSA key too small", {"client_cert": pki.pem("small.pem"),
                                   "client_cert_key": pki.pem("small.key")}),
        )
        for label, extra in bad:
            body = dict(good, client_id=CLIENT[0])
            body.update(extra)
            r = c.put("/v1/providers/mt-bad", json_body=body)
            T.status(label + ": 422", 422, r)
            T.eq(label + ": error code", "invalid_client_cert", body_of(r).get("error"))
            T.ok(label + ": the message names the field",
                 "client_cert" in (body_of(r).get("message") or ""), "client_cert...",
                 body_of(r).get("message"))
            T.status(label + ": nothing stored", 404, c.get("/v1/providers/mt-bad"))
        log = g.log()
        T.ok("no client key in grantd's log", "PRIVATE KEY" not in log, "absent", "present")
    except Exception:  # noqa: BLE001 - reported as a failure
        T.ok("scenarios ran to the end", False, "no exception", traceback.format_exc()[-1500:])
    finally:
        for proc, name in ((g, "grantd"), (mock, "mock")):
            if proc is not None:
                rc = proc.stop()
                T.eq("%s exits 0 on SIGTERM" % name, 0, rc)
        cleanup_dir(tmp)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
