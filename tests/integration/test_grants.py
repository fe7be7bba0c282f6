#!/usr/bin/env python3
"""Integration test: grantd's outbound token path against the mock provider
over TLS.

Processes (all on 127.0.0.1, port 0, stopped by PID):
  mock A    ECDSA leaf for localhost from CA1: grants, client auth styles,
            response quirks, faults and their stored state
  mock B    ECDSA, CA1: "a refresh never goes out twice" (request counts)
  mock C    RSA leaf from an RSA CA: 100 sequential refreshes on one TLS
            connection, and session resumption after the pool dropped it
  mock D    leaf from CA1 for another host name only      -> tls_hostname
  mock E    leaf from CA1 for localhost, expired in 2020    -> tls_expired
  mock E2   leaf from CA1 for localhost, valid from 2099    -> tls_expired
  mock F    leaf from CA2, which grantd does not trust      -> tls_untrusted
  grantd G1 --ca-file CA1 (+ the RSA CA): everything but the pool test
  grantd G3 --ca-file CA1 + RSA CA, --refresh-max-inflight 1 (pool of one
            connection, so a request to another origin evicts the idle one)

Background refresh retries (0.5-1 s after a transient failure) would make
request counts at a mock racy. Two rules keep every check deterministic:
state checks use persistent faults (a background retry fails the same way)
and delete their connection before the next scenario; count checks run on
their own mock with providers whose rate limit admits exactly the requests
the scenario makes (a background retry then waits in grantd's queue and
never reaches the mock; a resend below that limiter would still show).

The certificates are made at test time (tests/mock/make_certs.sh for the
CAs and good leaves, `openssl ca` for the wrong-name and expired leaves).
Prints "N passed, M failed"; exits 1 on any failure. Each grantd and mock
must exit 0 on SIGTERM (under ASan that also means no leak was reported).
"""
import base64
import calendar
import os
import secrets
import ssl
import subprocess
import sys
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, body_of, cleanup_dir,  # noqa: E402
                     last_error, make_certs, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
# A client whose id and secret need form-encoding inside Basic (RFC 6749
# section 2.3.1); the mock decodes them that way.
WEIRD = ("we ird&id", "s:e+c/r=t%x")
USER = ("alice", "wonderland")
# client_secret_jwt signs with the secret (HS256: 32 bytes or more).
JWT_CLIENT = ("jwt-client", "a-client-secret-of-more-than-32-bytes")
# private_key_jwt: the P-256 key of RFC 7515 appendix A.3 (a published
# example key, registered with mock A by the client_assertion_key knob).
EC_JWK = ('{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",'
          '"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",'
          '"d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}')
T.secret(CLIENT[1], WEIRD[1], USER[1], JWT_CLIENT[1], "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def parse_time(s):
    """RFC 3339 UTC ("2026-01-02T03:04:05.678Z") -> epoch seconds (float)."""
    if not isinstance(s, str):
        return None
    main, _, frac = s.rstrip("Z").partition(".")
    t = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return t + (float("0." + frac) if frac else 0.0)


def basic(client):
    raw = urllib.parse.quote_plus(client[0]) + ":" + urllib.parse.quote_plus(client[1])
    return "Basic " + base64.b64encode(raw.encode()).decode()


def token_url(mock):
    # The TLS layer checks DNS names only: the leaf's DNS:localhost.
    return "https://localhost:%d/token" % mock.port


def mock_password_grant(mock):
    """A password grant made directly at the mock: (access, refresh)."""
    r = mock.client.post("/token", form={"grant_type": "password", "username": USER[0],
                                         "password": USER[1], "scope": "read write"},
                         headers={"Authorization": basic(CLIENT)})
    j = r.json() or {}
    T.secret(j.get("access_token"), j.get("refresh_token"))
    if r.status != 200:
        raise RuntimeError("mock password grant failed: %r" % r)
    return j["access_token"], j["refresh_token"]


def introspect(mock, tok):
    r = mock.client.post("/introspect", form={"token": tok or ""})
    return r.json() or {}


def counters(mock):
    c = mock.counters()
    if not isinstance(c, dict):
        raise RuntimeError("no counters from the mock")
    return c


def set_knobs(mock, **knobs):
    r = mock.config(**knobs)
    if r.status != 200:
        raise RuntimeError("mock config %r refused: %r" % (knobs, r))


def clear_knobs(mock):
    set_knobs(mock, fault="none", fault_count=0, fault_after_grant=False, client_auth="any",
              rotate_refresh_tokens=True, echo_refresh_token=False, expires_in=3600,
              expires_in_as_string=False, token_type="Bearer", extra={}, retry_after=1,
              fault_error="invalid_grant", reuse_grace_s=0)


class G:
    """API helpers over one grantd."""

    def __init__(self, proc):
        self.p = proc
        self.c = proc.client

    def provider(self, name, mock, **kw):
        body = {"token_url": token_url(mock), "client_id": CLIENT[0], "client_secret": CLIENT[1],
                "client_auth": "basic", "scopes": ["read", "write"]}
        body.update(kw)
        r = self.c.put("/v1/providers/" + name, json_body=body)
        if r.status != 200:
            raise RuntimeError("provider %s refused: %r" % (name, r))
        return r.json()

    def put(self, cid, provider, grant, **kw):
        body = {"tenant": "t-grants", "provider": provider, "grant": grant}
        body.update(kw)
        return self.c.put("/v1/connections/" + cid, json_body=body)

    def put_password(self, cid, provider):
        return self.put(cid, provider, "password", username=USER[0], password=USER[1])

    def import_rt(self, cid, provider, at, rt, expires_in=3600):
        return self.put(cid, provider, "refresh_token", access_token=at, refresh_token=rt,
                        expires_in=expires_in)

    def get(self, cid):
        return self.c.get("/v1/connections/" + cid)

    def conn(self, cid):
        return self.get(cid).json() or {}

    def token(self, cid, min_ttl=None):
        q = "" if min_ttl is None else "?min_ttl=%d" % min_ttl
        r = self.c.get("/v1/connections/%s/token%s" % (cid, q))
        j = r.json()
        if isinstance(j, dict):
            T.secret(j.get("access_token"))
        return r

    def refresh(self, cid):
        return self.c.post("/v1/connections/%s/refresh" % cid, body=b"")

    def delete(self, cid):
        return self.c.delete("/v1/connections/" + cid)


def check_active(label, r, grant=None):
    """A PUT/refresh answer: 200 and an active connection without error."""
    j = body_of(r)
    T.status(label + ": HTTP status", 200, r)
    T.eq(label + ": status", "active", j.get("status"))
    T.eq(label + ": last_error", None, j.get("last_error"))
    T.ok(label + ": has an access token", j.get("has_access_token") is True,
         "has_access_token true", j.get("has_access_token"))
    if grant is not None:
        T.eq(label + ": grant", grant, j.get("grant"))
    return j


def check_failed(label, r, status, code, http_status="any"):
    """A PUT/refresh answer for a failed token request: the connection's
    status and last_error (code, http status) in the body, whatever the
    HTTP status of the answer itself. code may be a set of accepted codes."""
    j = body_of(r)
    le = last_error(j)
    T.eq(label + ": status", status, j.get("status"))
    if isinstance(code, (set, frozenset)):
        T.ok(label + ": last_error.code", le.get("code") in code, "one of %s" % sorted(code),
             le.get("code"))
    else:
        T.eq(label + ": last_error.code", code, le.get("code"))
    if http_status != "any":
        T.eq(label + ": last_error.http_status", http_status, le.get("http_status"))
    T.ok(label + ": last_error.message set", isinstance(le.get("message"), str) and le["message"],
         "a message", le.get("message"))
    return j


def check_token_live(label, mock, tok, sub=None):
    """The access token grantd serves is one the mock issued and still
    honours."""
    info = introspect(mock, tok)
    T.eq(label + ": mock says the token is live", True, info.get("active"))
    T.eq(label + ": token's client", CLIENT[0], info.get("client_id"))
    if sub is not None:
        T.eq(label + ": token's user", sub, info.get("sub"))


def check_expiry(label, j, t0, t1, ttl):
    """expires_at is now + ttl seconds, with now somewhere in [t0, t1]."""
    exp = parse_time(j.get("expires_at"))
    T.ok(label + ": expires_at = now + %ds" % ttl,
         exp is not None and t0 + ttl - 2 <= exp <= t1 + ttl + 2,
         "between %.0f and %.0f" % (t0 + ttl, t1 + ttl), j.get("expires_at"))


def delta(after, before, *path):
    a, b = after, before
    for k in path:
        a, b = a[k], b[k]
    return a - b


# ---------------------------------------------------------------------------
# certificates
# ---------------------------------------------------------------------------

CA_CNF = """[ca]
default_ca = tca
[tca]
database = db/index.txt
serial = db/serial
new_certs_dir = db
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = none
[pol]
commonName = supplied
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = %s
"""


class Leaf:
    def __init__(self, d):
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")


def make_leaf(d, ca, cn, san, dates):
    """A P-256 leaf signed by ca (a harness Certs) with `openssl ca`, so the
    validity period can lie in the past. dates: ["-days", "30"] or
    ["-startdate", "...Z", "-enddate", "...Z"]."""
    os.makedirs(os.path.join(d, "db"))
    with open(os.path.join(d, "db", "index.txt"), "w"):
        pass
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("%016x\n" % (0x1000 + int.from_bytes(os.urandom(6), "big")))
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write(CA_CNF % san)
    ca_key = os.path.join(os.path.dirname(ca.ca), "ca.key")

    def run(*args):
        subprocess.run(list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", "server.key")
    run("openssl", "req", "-new", "-key", "server.key", "-subj", "/CN=" + cn, "-out", "server.csr")
    run("openssl", "ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", ca.ca, "-keyfile",
        ca_key, "-in", "server.csr", "-out", "server.pem", "-extensions", "leaf", *dates)
    return Leaf(d)


class LeafCerts:
    """Quacks like harness.Certs for MockProvider (cert, key, ssl_context)."""

    def __init__(self, ca, leaf):
        self.ca = ca.ca
        self.cert = leaf.cert
        self.key = leaf.key

    def ssl_context(self):
        # The control client must still reach a mock whose leaf is expired
        # or names another host, so it skips verification (test-only).
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx


# ---------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------

def test_grants(g, mA):
    """Each grant; token readable and live at the mock."""
    clear_knobs(mA)
    g.provider("pa", mA)
    before = counters(mA)

    r = g.put("cc-1", "pa", "client_credentials")
    j = check_active("client_credentials PUT", r, "client_credentials")
    T.eq("client_credentials PUT: no refresh token", False, j.get("has_refresh_token"))
    T.eq("client_credentials PUT: scopes", ["read", "write"], j.get("scopes"))
    tr = g.token("cc-1")
    T.status("client_credentials token readable", 200, tr)
    cc_tok = body_of(tr).get("access_token")
    check_token_live("client_credentials token", mA, cc_tok)
    T.eq("client_credentials token_type", "Bearer", body_of(tr).get("token_type"))

    r = g.put_password("pw-1", "pa")
    j = check_active("password PUT", r, "password")
    T.eq("password PUT: has refresh token", True, j.get("has_refresh_token"))
    tr = g.token("pw-1")
    T.status("password token readable", 200, tr)
    check_token_live("password token", mA, body_of(tr).get("access_token"), sub=USER[0])

    after = counters(mA)
    T.eq("mock saw one client_credentials request", 1,
         delta(after, before, "token_requests", "client_credentials"))
    T.eq("mock saw one password request", 1, delta(after, before, "token_requests", "password"))

    # A wrong password is invalid_grant: the connection needs re-authorization.
    r = g.put("pw-bad", "pa", "password", username=USER[0], password="not-the-password")
    check_failed("password PUT with a wrong password", r, "needs_reauth", "invalid_grant", 400)

    # refresh_token import, then POST /refresh (refresh_token grant).
    at0, rt0 = mock_password_grant(mA)
    r = g.import_rt("imp-1", "pa", at0, rt0)
    check_active("refresh_token import", r, "refresh_token")
    T.eq("imported token served as is", at0, body_of(g.token("imp-1")).get("access_token"))
    before = counters(mA)
    r = g.refresh("imp-1")
    check_active("POST /refresh of an import", r)
    after = counters(mA)
    T.eq("import refresh: one refresh_token request at the mock", 1,
         delta(after, before, "token_requests", "refresh_token"))
    new_at = body_of(g.token("imp-1")).get("access_token")
    T.ok("import refresh: a new access token is served", new_at and new_at != at0,
         "a new token", "the imported one" if new_at == at0 else new_at)
    check_token_live("refreshed token", mA, new_at, sub=USER[0])

    # POST /refresh without a refresh token re-runs client_credentials.
    before = counters(mA)
    r = g.refresh("cc-1")
    check_active("POST /refresh of client_credentials", r)
    after = counters(mA)
    T.eq("cc refresh re-ran client_credentials", 1,
         delta(after, before, "token_requests", "client_credentials"))
    T.ok("cc refresh: new token", body_of(g.token("cc-1")).get("access_token") != cc_tok,
         "a new token", "the old one")


def test_client_auth(g, mA):
    """basic and post: the mock enforces one style at a time, so success
    proves which style arrived (and a client sending both would be refused
    with invalid_request)."""
    clear_knobs(mA)
    g.provider("auth-basic", mA, client_auth="basic")
    g.provider("auth-post", mA, client_auth="post")
    g.provider("auth-weird", mA, client_auth="basic", client_id=WEIRD[0], client_secret=WEIRD[1])
    g.provider("auth-weird-post", mA, client_auth="post", client_id=WEIRD[0],
               client_secret=WEIRD[1])

    set_knobs(mA, client_auth="basic")
    check_active("basic accepted by a basic-only provider",
                 g.put("ab-1", "auth-basic", "client_credentials"))
    check_active("basic with an id/secret needing form-encoding",
                 g.put("ab-2", "auth-weird", "client_credentials"))
    check_failed("post refused by a basic-only provider",
                 g.put("ab-3", "auth-post", "client_credentials"), "error", "invalid_client", 401)
    check_active("basic refresh (password grant then refresh_token)",
                 g.put_password("ab-4", "auth-basic"))
    check_active("basic refresh_token grant", g.refresh("ab-4"))

    set_knobs(mA, client_auth="post")
    check_active("post accepted by a post-only provider",
                 g.put("ap-1", "auth-post", "client_credentials"))
    check_active("post with an id/secret needing form-encoding",
                 g.put("ap-2", "auth-weird-post", "client_credentials"))
    check_failed("basic refused by a post-only provider",
                 g.put("ap-3", "auth-basic", "client_credentials"), "error", "invalid_client", 401)
    check_active("post password grant", g.put_password("ap-4", "auth-post"))
    check_active("post refresh_token grant", g.refresh("ap-4"))
    set_knobs(mA, client_auth="any")

    # A wrong secret: invalid_client -> error (configuration rejected).
    g.provider("auth-wrong", mA, client_secret="wrong-secret")
    check_failed("wrong client secret", g.put("aw-1", "auth-wrong", "client_credentials"),
                 "error", "invalid_client", 401)


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_with_jwks(label, jws, jwks):
    """Checks the compact JWS jws against the JWK Set jwks with Python
    cryptography (an implementation independent of grantd's): the header's
    kid names a key of the set, alg is that key's alg, and the signature
    verifies (RS256, PS256 with a 32-byte salt, ES256 as raw R || S)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    parts = (jws or "").split(".")
    if not T.eq(label + ": a compact JWS", 3, len(parts)):
        return
    import json as _json
    hdr = _json.loads(b64u(parts[0]))
    keys = [k for k in (jwks or {}).get("keys", []) if k.get("kid") == hdr.get("kid")]
    if not T.eq(label + ": the JWKS has the assertion's kid", 1, len(keys)):
        return
    k = keys[0]
    T.eq(label + ": alg of the JWS and of the JWK", k.get("alg"), hdr.get("alg"))
    T.eq(label + ": the JWK is for signing", "sig", k.get("use"))
    T.eq(label + ": no private member in the JWK", [],
         [m for m in ("d", "p", "q", "dp", "dq", "qi", "k") if m in k])
    data, sig = (parts[0] + "." + parts[1]).encode(), b64u(parts[2])
    try:
        if k["kty"] == "RSA":
            pub = rsa.RSAPublicNumbers(int.from_bytes(b64u(k["e"]), "big"),
                                       int.from_bytes(b64u(k["n"]), "big")).public_key()
            pad = (padding.PSS(padding.MGF1(hashes.SHA256()), 32) if k["alg"] == "PS256"
                   else padding.PKCS1v15())
            pub.verify(sig, data, pad, hashes.SHA256())
        else:
            pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64u(k["x"]), "big"),
                                                int.from_bytes(b64u(k["y"]), "big"),
                                                ec.SECP256R1()).public_key()
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                             int.from_bytes(sig[32:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
        T.ok(label + ": signature verifies with the published key", True)
    except InvalidSignature:
        T.ok(label + ": signature verifies with the published key", False, "valid", "invalid")


def check_jwks(label, g, mock, provider):
    """The assertion the mock last accepted verifies with grantd's JWKS of
    provider (GET /v1/providers/{name}/jwks), as the provider would check it
    against the keys registered there."""
    r = g.c.get("/v1/providers/%s/jwks" % provider)
    T.status(label + ": JWKS answer", 200, r)
    last = mock.client.get("/_mock/last_auth").json() or {}
    verify_with_jwks(label, last.get("client_assertion"), body_of(r))


def test_client_jwt(g, mA):
    """private_key_jwt and client_secret_jwt (RFC 7523 section 2.2): the
    mock verifies each assertion's signature with the registered key (or
    the client secret), its claims, and refuses a jti it has seen, so a
    second token request succeeding proves a fresh assertion."""
    clear_knobs(mA)
    g.provider("jwt-ec", mA, client_auth="private_key_jwt", signing_key=EC_JWK,
               signing_key_id="ec-1")
    p = g.c.get("/v1/providers/jwt-ec").json() or {}
    T.eq("provider shows has_signing_key", True, p.get("has_signing_key"))
    T.eq("provider never shows the key", False, "signing_key" in p)
    T.eq("provider shows the kid", "ec-1", p.get("signing_key_id"))
    T.eq("provider client_auth", "private_key_jwt", p.get("client_auth"))

    set_knobs(mA, client_auth="private_key_jwt", client_assertion_key=EC_JWK)
    check_active("private_key_jwt ES256 accepted", g.put("jw-1", "jwt-ec", "client_credentials"))
    check_jwks("ES256 assertion against the JWKS", g, mA, "jwt-ec")
    jwks = body_of(g.c.get("/v1/providers/jwt-ec/jwks"))
    T.eq("JWKS of an EC key", [{"kty": "EC", "crv": "P-256", "kid": "ec-1", "alg": "ES256",
                                "use": "sig",
                                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}],
         jwks.get("keys"))
    check_active("a second assertion (fresh jti) accepted",
                 g.put("jw-2", "jwt-ec", "client_credentials"))
    check_active("private_key_jwt password grant", g.put_password("jw-3", "jwt-ec"))
    check_active("private_key_jwt refresh_token grant", g.refresh("jw-3"))
    # The secret alone is refused by a mock that wants an assertion.
    g.provider("jwt-post", mA, client_auth="post")
    check_failed("client_secret_post refused by a private_key_jwt-only provider",
                 g.put("jw-4", "jwt-post", "client_credentials"), "error", "invalid_client", 401)
    # No key registered at the provider: the assertion cannot be verified.
    set_knobs(mA, client_assertion_key=None)
    check_failed("assertion without a registered key refused",
                 g.put("jw-5", "jwt-ec", "client_credentials"), "error", "invalid_client", 401)

    set_knobs(mA, client_auth="client_secret_jwt")
    g.provider("jwt-hs", mA, client_auth="client_secret_jwt", client_id=JWT_CLIENT[0],
               client_secret=JWT_CLIENT[1])
    check_active("client_secret_jwt HS256 accepted", g.put("jw-6", "jwt-hs", "client_credentials"))
    check_failed("private_key_jwt refused by a client_secret_jwt-only provider",
                 g.put("jw-7", "jwt-ec", "client_credentials"), "error", "invalid_client", 401)

    # PS256 (RSASSA-PSS, RFC 7518 section 3.5) with an RSA key made for the
    # test; the mock verifies it with the registered key.
    rsa_pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                              "rsa_keygen_bits:2048"], check=True, capture_output=True,
                             text=True).stdout
    set_knobs(mA, client_auth="private_key_jwt", client_assertion_key=rsa_pem)
    g.provider("jwt-ps", mA, client_auth="private_key_jwt", signing_key=rsa_pem,
               signing_alg="PS256")
    check_active("private_key_jwt PS256 accepted", g.put("jw-8", "jwt-ps", "client_credentials"))
    check_jwks("PS256 assertion against the JWKS", g, mA, "jwt-ps")
    g.provider("jwt-rs", mA, client_auth="private_key_jwt", signing_key=rsa_pem)
    check_active("private_key_jwt RS256 (the RSA default) accepted",
                 g.put("jw-9", "jwt-rs", "client_credentials"))
    check_jwks("RS256 assertion against the JWKS (kid = RFC 7638 thumbprint)", g, mA, "jwt-rs")
    r = g.c.get("/v1/providers/jwt-hs/jwks")
    T.status("no JWKS for client_secret_jwt (no signing_key): 404", 404, r)
    T.eq("no JWKS: error code", "no_signing_key", body_of(r).get("error"))
    T.status("no JWKS for an unknown provider: 404", 404, g.c.get("/v1/providers/nope/jwks"))

    # Unusable keys: 422 and nothing stored.
    for label, extra in (("unparsable key", {"signing_key": "not a key"}),
                         ("PS256 with an EC key", {"signing_key": EC_JWK, "signing_alg": "PS256"}),
                         ("RS256 with an EC key", {"signing_key": EC_JWK, "signing_alg": "RS256"}),
                         ("private_key_jwt without a key", {})):
        body = {"token_url": token_url(mA), "client_id": CLIENT[0],
                "client_auth": "private_key_jwt"}
        body.update(extra)
        r = g.c.put("/v1/providers/jwt-bad", json_body=body)
        T.status("%s: 422" % label, 422, r)
        T.eq("%s: error code" % label, "invalid_signing_key", body_of(r).get("error"))
        T.status("%s: nothing stored" % label, 404, g.c.get("/v1/providers/jwt-bad"))
    for cid in ("jw-1", "jw-2", "jw-3", "jw-4", "jw-5", "jw-6", "jw-7", "jw-8", "jw-9"):
        g.delete(cid)
    set_knobs(mA, client_auth="any")


def test_quirks(g, mA):
    """Response shapes: each gives the right stored state."""
    clear_knobs(mA)
    g.provider("q", mA)
    g.provider("qdef", mA, default_expires_in=1234)

    # form-encoded body (GitHub's shape), with an extra member.
    set_knobs(mA, fault="form_encoded", fault_count=1, extra={"instance_url": "https://na1.example"})
    t0 = time.time()
    r = g.put_password("q-form", "q")
    t1 = time.time()
    j = check_active("form-encoded body", r)
    T.eq("form-encoded: refresh token stored", True, j.get("has_refresh_token"))
    T.eq("form-encoded: scopes", ["read", "write"], j.get("scopes"))
    check_expiry("form-encoded", j, t0, t1, 3600)
    T.eq("form-encoded: extra kept", {"instance_url": "https://na1.example"}, j.get("extra"))
    check_token_live("form-encoded token", mA, body_of(g.token("q-form")).get("access_token"))
    set_knobs(mA, extra={})
    check_active("form-encoded: the stored refresh token works", g.refresh("q-form"))

    # chunked body.
    set_knobs(mA, fault="chunked", fault_count=1)
    t0 = time.time()
    r = g.put_password("q-chunk", "q")
    t1 = time.time()
    j = check_active("chunked body", r)
    check_expiry("chunked", j, t0, t1, 3600)
    check_token_live("chunked token", mA, body_of(g.token("q-chunk")).get("access_token"))
    check_active("chunked: the stored refresh token works", g.refresh("q-chunk"))
    set_knobs(mA, fault="chunked", fault_count=1)
    check_active("chunked refresh answer", g.refresh("q-chunk"))
    check_token_live("chunked refresh token", mA, body_of(g.token("q-chunk")).get("access_token"))

    # expires_in as a string.
    set_knobs(mA, expires_in=1800, expires_in_as_string=True)
    t0 = time.time()
    j = check_active("expires_in as a string", g.put("q-str", "q", "client_credentials"))
    t1 = time.time()
    check_expiry("expires_in \"1800\"", j, t0, t1, 1800)
    set_knobs(mA, expires_in=3600, expires_in_as_string=False)

    # expires_in missing: the provider's default_expires_in, else unknown.
    set_knobs(mA, fault="expires_in_missing", fault_count=1)
    t0 = time.time()
    j = check_active("expires_in missing, provider default", g.put("q-def", "qdef",
                                                                   "client_credentials"))
    t1 = time.time()
    check_expiry("default_expires_in 1234", j, t0, t1, 1234)
    set_knobs(mA, fault="expires_in_missing", fault_count=1)
    j = check_active("expires_in missing, no default", g.put("q-unk", "q", "client_credentials"))
    T.eq("no expires_in, no default: expiry unknown", None, j.get("expires_at"))
    before = counters(mA)
    t_a = g.token("q-unk")
    t_b = g.token("q-unk", min_ttl=3600)
    after = counters(mA)
    T.status("unknown expiry: token readable", 200, t_a)
    T.eq("unknown expiry: token_type", "Bearer", body_of(t_a).get("token_type"))
    T.eq("unknown expiry: token expires_at null", None, body_of(t_a).get("expires_at"))
    T.ok("unknown expiry: no refresh on read (same token)",
         body_of(t_a).get("access_token") == body_of(t_b).get("access_token"),
         "same token", "different tokens")
    T.eq("unknown expiry: no token request on read", 0, delta(after, before, "requests", "token"))

    # A lifetime that is present but unusable is a malformed answer (like a
    # missing access_token), never a token that does not expire.
    for n, (label, extra) in enumerate((("expires_in false", {"expires_in": False}),
                                        ("expires_in {}", {"expires_in": {}}),
                                        ("expires_in \"zzz\"", {"expires_in": "zzz"}))):
        set_knobs(mA, expires_in=0, extra=extra)
        cid = "q-bad-%d" % n
        j = check_failed(label + " (client_credentials)", g.put(cid, "q", "client_credentials"),
                         "refresh_failing", "invalid_response", 200)
        T.ok(label + ": last_error names expires_in", "expires_in" in (last_error(j).get("message") or ""),
             "a message naming expires_in", last_error(j).get("message"))
        T.eq(label + ": no access token stored", False, j.get("has_access_token"))
        g.delete(cid)
    set_knobs(mA, expires_in=0, extra={"expires_in": "3600"})
    t0 = time.time()
    j = check_active("expires_in from a numeric string member", g.put("q-num", "q", "client_credentials"))
    check_expiry("expires_in \"3600\"", j, t0, time.time(), 3600)
    g.delete("q-num")
    set_knobs(mA, expires_in=0, extra={"expires_in": None}, fault="none")
    j = check_active("expires_in null", g.put("q-null", "q", "client_credentials"))
    T.eq("expires_in null: expiry unknown", None, j.get("expires_at"))
    g.delete("q-null")
    # The same rule on a refresh answer (password grant, then a refresh that
    # returns an unusable refresh_token_expires_in): the old token is kept.
    clear_knobs(mA)
    check_active("refresh_token_expires_in: healthy first", g.put_password("q-rtexp", "q"))
    old = body_of(g.token("q-rtexp")).get("access_token")
    set_knobs(mA, extra={"refresh_token_expires_in": False})
    j = check_failed("refresh_token_expires_in false (refresh)", g.refresh("q-rtexp"),
                     "refresh_failing", "invalid_response", 200)
    T.ok("refresh_token_expires_in false: last_error names it",
         "refresh_token_expires_in" in (last_error(j).get("message") or ""),
         "a message naming refresh_token_expires_in", last_error(j).get("message"))
    check_old_token_served("refresh_token_expires_in false", g, "q-rtexp", old)
    end_fault(g, mA, "q-rtexp")
    clear_knobs(mA)

    # Credentials nested in extra (Slack's oauth.v2.access answer with token
    # rotation: the user's tokens in authed_user) never show in a view of the
    # connection; the token answer returns extra whole.
    user_at, user_rt = T.secret("xoxp-user-" + secrets.token_urlsafe(12), "xoxe-1-user-" + secrets.token_urlsafe(12))
    nested_sec = T.secret("nested-secret-" + secrets.token_urlsafe(8))
    slack_extra = {"ok": True, "bot_user_id": "U0KRQLJ9H", "app_id": "A0KRD7HC3",
                   "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
                   "enterprise": {"name": "slack-sports", "id": "E12345678"},
                   "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": user_at,
                                   "token_type": "user", "refresh_token": user_rt, "expires_in": 43200},
                   "installs": [{"id": "I1", "client_secret": nested_sec}]}
    set_knobs(mA, extra=slack_extra)
    r = g.put_password("q-slack", "q")
    j = check_active("Slack-shaped extra", r)
    views = [("PUT answer", r), ("GET", g.get("q-slack")), ("list", g.c.get("/v1/connections?tenant=t-grants")),
             ("refresh answer", g.refresh("q-slack"))]
    for label, resp in views:
        text = resp.text()
        T.ok("Slack extra, %s: no nested credential" % label,
             user_at not in text and user_rt not in text and nested_sec not in text,
             "no credential", "a credential from extra")
    x = j.get("extra") or {}
    T.eq("Slack extra: the view keeps what is not a credential",
         {"id": "U1234", "scope": "chat:write", "token_type": "user", "expires_in": 43200},
         x.get("authed_user"))
    T.eq("Slack extra: arrays are redacted too", [{"id": "I1"}], x.get("installs"))
    T.eq("Slack extra: top level kept", ("U0KRQLJ9H", True), (x.get("bot_user_id"), x.get("ok")))
    T.eq("Slack extra: the token answer returns extra whole", slack_extra,
         body_of(g.token("q-slack")).get("extra"))
    g.delete("q-slack")
    clear_knobs(mA)

    # token_type in lower case.
    set_knobs(mA, token_type="bearer")
    check_active("token_type bearer", g.put("q-lc", "q", "client_credentials"))
    tr = g.token("q-lc")
    T.eq("token_type case-insensitive: served as Bearer", "Bearer", body_of(tr).get("token_type"))
    T.eq("token_type case-insensitive: stored as Bearer", "Bearer",
         g.conn("q-lc").get("token_type"))
    set_knobs(mA, token_type="Bearer")

    # extra members (instance_url, id_token) kept in extra.
    extra = {"instance_url": "https://na1.example", "id_token": "aGVhZGVy.cGF5bG9hZA.c2ln",
             "realmId": "12345"}
    set_knobs(mA, extra=extra)
    j = check_active("extra members", g.put_password("q-extra", "q"))
    tr = body_of(g.token("q-extra"))
    T.eq("extra in the token answer", extra, tr.get("extra"))
    T.eq("extra in the connection (id_token withheld)",
         {"instance_url": "https://na1.example", "realmId": "12345"}, j.get("extra"))
    # A refresh answer carrying extra again replaces it.
    set_knobs(mA, extra={"instance_url": "https://na2.example"})
    check_active("extra after refresh", g.refresh("q-extra"))
    T.eq("extra replaced by the refresh answer's", {"instance_url": "https://na2.example"},
         body_of(g.token("q-extra")).get("extra"))
    set_knobs(mA, extra={})

    # A refresh answer without a refresh token keeps the old one.
    set_knobs(mA, rotate_refresh_tokens=False, echo_refresh_token=False)
    at0, rt0 = mock_password_grant(mA)
    check_active("import for no-rotation", g.import_rt("q-keep", "q", at0, rt0))
    before = counters(mA)
    j = check_active("refresh without a new refresh token", g.refresh("q-keep"))
    T.eq("old refresh token kept", True, j.get("has_refresh_token"))
    check_active("second refresh with the kept refresh token", g.refresh("q-keep"))
    after = counters(mA)
    T.eq("no rotation: two refreshes at the mock", 2, delta(after, before, "refreshes"))
    T.eq("no rotation: no refresh token issued", 0,
         delta(after, before, "tokens_issued", "refresh"))
    T.eq("no rotation: mock refresh token still live", "refresh_token",
         introspect(mA, rt0).get("token_type"))

    # Rotation: the new refresh token is stored and used next time (reuse of
    # a rotated one would be a replay: invalid_grant and the grant revoked).
    set_knobs(mA, rotate_refresh_tokens=True, reuse_grace_s=0)
    at0, rt0 = mock_password_grant(mA)
    check_active("import for rotation", g.import_rt("q-rot", "q", at0, rt0))
    before = counters(mA)
    check_active("rotating refresh 1", g.refresh("q-rot"))
    check_active("rotating refresh 2 (uses the rotated token)", g.refresh("q-rot"))
    check_active("rotating refresh 3", g.refresh("q-rot"))
    after = counters(mA)
    T.eq("rotation: three rotations at the mock", 3, delta(after, before, "rotations"))
    T.eq("rotation: no replay detected", 0, delta(after, before, "replays_detected"))
    T.eq("rotation: the imported refresh token is rotated away", False,
         introspect(mA, rt0).get("active"))
    check_token_live("rotated grant token", mA, body_of(g.token("q-rot")).get("access_token"))
    clear_knobs(mA)


def fault_scenario(g, mA, cid, prov, fault, **knobs):
    """Makes a healthy password connection, then sets a persistent fault and
    forces a refresh. Returns (answer of POST /refresh, token before, t0)."""
    clear_knobs(mA)
    r = g.put_password(cid, prov)
    check_active("%s: healthy before the fault" % cid, r)
    old = body_of(g.token(cid)).get("access_token")
    set_knobs(mA, fault=fault, fault_count=0, **knobs)
    t0 = time.time()
    return g.refresh(cid), old, t0


def check_old_token_served(label, g, cid, old):
    tr = g.token(cid, min_ttl=0)
    T.status(label + ": GET token min_ttl=0", 200, tr)
    T.ok(label + ": the old token is still served", body_of(tr).get("access_token") == old,
         "the token from before the fault", "another or none")
    j = g.conn(cid)
    T.eq(label + ": stored status", "refresh_failing", j.get("status"))
    T.ok(label + ": stored last_error set", bool(last_error(j).get("code")), "a code",
         j.get("last_error"))
    T.eq(label + ": has_access_token", True, j.get("has_access_token"))


def end_fault(g, mA, cid):
    """Deletes the connection while the fault still holds, so no background
    retry of it succeeds later, then clears the knobs."""
    r = g.delete(cid)
    T.status("%s: deleted" % cid, 200, r)
    clear_knobs(mA)


def test_faults(g, mA):
    g.provider("f", mA)
    g.provider("f1s", mA, timeout_ms=1000)

    r, old, _ = fault_scenario(g, mA, "f-ig", "f", "invalid_grant")
    check_failed("invalid_grant", r, "needs_reauth", "invalid_grant", 400)
    T.eq("invalid_grant: stored needs_reauth", "needs_reauth", g.conn("f-ig").get("status"))
    tr = g.token("f-ig", min_ttl=0)
    T.ok("invalid_grant: no token served", tr.status >= 400, "HTTP 4xx", tr.status)
    end_fault(g, mA, "f-ig")

    r, old, _ = fault_scenario(g, mA, "f-ic", "f", "invalid_client")
    check_failed("invalid_client", r, "error", "invalid_client", 401)
    T.eq("invalid_client: stored error", "error", g.conn("f-ic").get("status"))
    end_fault(g, mA, "f-ic")

    r, old, t0 = fault_scenario(g, mA, "f-429", "f", "429", retry_after=600)
    check_failed("429 + Retry-After", r, "refresh_failing", "rate_limited", 429)
    check_old_token_served("429", g, "f-429", old)
    nra = parse_time(g.conn("f-429").get("next_refresh_at"))
    T.ok("429: next refresh not before Retry-After (600 s)", nra is not None and nra >= t0 + 598,
         ">= now + 600 s", g.conn("f-429").get("next_refresh_at"))
    end_fault(g, mA, "f-429")

    r, old, _ = fault_scenario(g, mA, "f-500", "f", "500")
    check_failed("500 (HTML body)", r, "refresh_failing", "http_error", 500)
    check_old_token_served("500", g, "f-500", old)
    end_fault(g, mA, "f-500")

    r, old, _ = fault_scenario(g, mA, "f-hang", "f1s", "hang")
    j = check_failed("hang (provider timeout_ms 1000)", r, "refresh_failing",
                     {"timeout", "refresh_outcome_unknown"})
    msg = last_error(j).get("message") or ""
    T.ok("hang: last_error names the timeout",
         last_error(j).get("code") == "timeout" or "did not answer in time" in msg,
         "code timeout or a message naming it", msg)
    check_old_token_served("hang", g, "f-hang", old)
    end_fault(g, mA, "f-hang")

    r, old, _ = fault_scenario(g, mA, "f-cut", "f", "close_mid_response")
    check_failed("close_mid_response", r, "refresh_failing",
                 {"connection_closed", "refresh_outcome_unknown"})
    check_old_token_served("close_mid_response", g, "f-cut", old)
    end_fault(g, mA, "f-cut")

    r, old, _ = fault_scenario(g, mA, "f-json", "f", "malformed_json")
    check_failed("malformed JSON", r, "refresh_failing", "invalid_response", 200)
    check_old_token_served("malformed JSON", g, "f-json", old)
    end_fault(g, mA, "f-json")

    for fault, code in (("empty_400", 400), ("empty_403", 403)):
        cid = "f-" + fault
        r, old, _ = fault_scenario(g, mA, cid, "f", fault)
        check_failed(fault, r, "refresh_failing", "http_error", code)
        T.eq(fault + ": old token kept", old, body_of(g.token(cid, min_ttl=0)).get("access_token"))
        end_fault(g, mA, cid)

    r, old, _ = fault_scenario(g, mA, "f-200", "f", "error_with_200", fault_error="invalid_grant")
    check_failed("error body with HTTP 200", r, "needs_reauth", "invalid_grant", 200)
    end_fault(g, mA, "f-200")

    r, old, _ = fault_scenario(g, mA, "f-200c", "f", "error_with_200", fault_error="invalid_scope")
    check_failed("error body with HTTP 200 (invalid_scope)", r, "error", "invalid_scope", 200)
    end_fault(g, mA, "f-200c")

    # Recovery: after a transient failure, a refresh that works clears the
    # error and the connection is active again.
    r, old, _ = fault_scenario(g, mA, "f-rec", "f", "500")
    check_failed("recovery: 500 first", r, "refresh_failing", "http_error", 500)
    clear_knobs(mA)
    j = check_active("recovery: next refresh succeeds", g.refresh("f-rec"))
    T.eq("recovery: failures reset", 0, j.get("failures"))
    g.delete("f-rec")


def test_no_resend(g, mB):
    """A token request that may have reached the provider is never sent
    again: exactly one token request per forced refresh at the mock."""
    clear_knobs(mB)
    # rate_limit_count 1: only the forced refresh itself may go out; any
    # background retry waits in grantd's queue (see the file comment).
    g.provider("nr-hang", mB, timeout_ms=1000, rate_limit_count=1, rate_limit_window=86400)
    g.provider("nr-cut", mB, rate_limit_count=1, rate_limit_window=86400)
    g.provider("nr-cut2", mB, rate_limit_count=1, rate_limit_window=86400)

    # hang: the mock reads the request and never answers.
    at0, rt0 = mock_password_grant(mB)
    check_active("no-resend import (hang)", g.import_rt("nr-1", "nr-hang", at0, rt0))
    set_knobs(mB, fault="hang", fault_count=0)
    before = counters(mB)
    r = g.refresh("nr-1")
    after = counters(mB)
    check_failed("no-resend hang", r, "refresh_failing", {"timeout", "refresh_outcome_unknown"})
    T.eq("hang: exactly one token request reached the mock", 1,
         delta(after, before, "requests", "token"))
    clear_knobs(mB)

    # The mock processes the refresh (rotating the token), then cuts the
    # answer off: the client lost the new refresh token. A resend would
    # present the rotated token again (a replay, revoking the grant).
    at0, rt0 = mock_password_grant(mB)
    check_active("no-resend import (cut)", g.import_rt("nr-2", "nr-cut", at0, rt0))
    set_knobs(mB, fault="close_mid_response", fault_count=0, fault_after_grant=True)
    before = counters(mB)
    r = g.refresh("nr-2")
    after = counters(mB)
    check_failed("no-resend close_mid_response after the grant", r, "refresh_failing",
                 {"connection_closed", "refresh_outcome_unknown"})
    T.eq("cut after grant: exactly one token request", 1, delta(after, before, "requests", "token"))
    T.eq("cut after grant: one rotation at the mock", 1, delta(after, before, "rotations"))
    T.eq("cut after grant: no replay", 0, delta(after, before, "replays_detected"))
    # (No GET token here: it would wait for the rate-limited retry.)
    T.eq("cut after grant: stored status", "refresh_failing", g.conn("nr-2").get("status"))
    clear_knobs(mB)

    # Same without the grant processed (cut before anything happened).
    at0, rt0 = mock_password_grant(mB)
    check_active("no-resend import (cut, no grant)", g.import_rt("nr-3", "nr-cut2", at0, rt0))
    set_knobs(mB, fault="close_mid_response", fault_count=0)
    before = counters(mB)
    r = g.refresh("nr-3")
    after = counters(mB)
    check_failed("no-resend close_mid_response", r, "refresh_failing",
                 {"connection_closed", "refresh_outcome_unknown"})
    T.eq("cut: exactly one token request", 1, delta(after, before, "requests", "token"))
    clear_knobs(mB)


def test_tls_failures(g, mD, mE, mE2, mF, ca2):
    """Each TLS failure fails cleanly with its named code."""
    for mock, prov, code in ((mD, "tls-name", "tls_hostname"), (mE, "tls-exp", "tls_expired"),
                             (mE2, "tls-future", "tls_expired"),
                             (mF, "tls-untrusted", "tls_untrusted")):
        g.provider(prov, mock)
        before = counters(mock)
        r = g.put(prov + "-1", prov, "client_credentials")
        T.ok(code + ": PUT answered", r.status in (200, 409, 502), "HTTP 200/409/502", r)
        check_failed(code + " (client_credentials PUT)", r, "error", code, None)
        T.eq(code + ": no token", False, body_of(r).get("has_access_token"))
        r = g.put_password(prov + "-2", prov)
        check_failed(code + " (password PUT)", r, "error", code, None)
        after = counters(mock)
        T.eq(code + ": no token request reached the mock", 0,
             delta(after, before, "requests", "token"))
        T.ok(code + ": the mock saw the failed handshakes",
             delta(after, before, "tls", "failed_handshakes") >= 1,
             ">= 1", delta(after, before, "tls", "failed_handshakes"))
        # An imported connection's refresh fails the same way.
        r = g.import_rt(prov + "-3", prov, "imported-access-token-0001", "imported-refresh-0001")
        check_active(code + ": import", r)
        r = g.refresh(prov + "-3")
        check_failed(code + " (refresh)", r, "error", code, None)

    # A provider's own ca_file adds its CA: mock F then works (same origin
    # as the untrusted provider above, but another trust context), and
    # a connection under that trust must not serve the untrusting provider.
    g.provider("tls-own-ca", mF, ca_file=ca2.ca)
    r = g.put("tls-own-ca-1", "tls-own-ca", "client_credentials")
    check_active("provider ca_file trusts its CA", r)
    r = g.put("tls-untrusted-4", "tls-untrusted", "client_credentials")
    check_failed("untrusted provider after a trusted one to the same host", r, "error",
                 "tls_untrusted", None)


def test_insecure_http(g, mB):
    """Plain http:// token URLs: refused at the provider unless it opts in,
    and even then refused by a grantd not started with
    --allow-insecure-http (nothing is sent)."""
    url = "http://localhost:%d/token" % mB.port
    r = g.c.put("/v1/providers/plain", json_body={"token_url": url, "client_id": CLIENT[0],
                                                  "client_secret": CLIENT[1]})
    T.status("http:// provider without allow_insecure_http refused", 422, r)
    T.eq("http:// provider error code", "insecure_url", body_of(r).get("error"))
    g.provider("plain-ok", mB, token_url=url, allow_insecure_http=True)
    before = counters(mB)
    r = g.put("plain-1", "plain-ok", "client_credentials")
    check_failed("http:// refused by grantd", r, "error", "insecure_url", None)
    after = counters(mB)
    T.eq("http://: nothing reached the mock", 0, delta(after, before, "connections", "accepted"))


def test_known_good_host(g, tmp, procs, ca1, expired):
    """Classification: transient covers network errors and TLS to a
    known-good host. TLS failures towards a host that has worked before are
    transient (the provider's certificate expired or was swapped: keep
    serving the old token and retry), unlike a host that never validated.
    A mock on a fixed port is replaced by one with an expired leaf, then
    by a good one again."""
    good = MockProvider(tmp, ca1).start()
    procs.append(("mock (known-good, 1st)", good))
    port = good.port
    g.provider("kg", good)
    check_active("known-good: client_credentials PUT", g.put("kg-1", "kg", "client_credentials"))
    old = body_of(g.token("kg-1")).get("access_token")
    T.eq("known-good: first mock exits 0", 0, good.stop())
    bad = MockProvider(tmp, LeafCerts(ca1, expired)).start(args=["--port", str(port)])
    procs.append(("mock (known-good, expired)", bad))
    r = g.refresh("kg-1")
    check_failed("known-good host, now expired certificate", r, "refresh_failing", "tls_expired",
                 None)
    tr = g.token("kg-1", min_ttl=0)
    T.ok("known-good host, expired certificate: old token still served",
         tr.status == 200 and body_of(tr).get("access_token") == old, "HTTP 200 + the old token",
         "HTTP %s" % tr.status)
    T.eq("known-good: expired mock exits 0", 0, bad.stop())
    again = MockProvider(tmp, ca1).start(args=["--port", str(port)])
    procs.append(("mock (known-good, 2nd)", again))
    check_active("known-good host, certificate fixed: refresh works again", g.refresh("kg-1"))


def test_pool(g3, mC, mA):
    """100 sequential refreshes on one TLS connection; after the pool drops
    it (evicted for another origin: --refresh-max-inflight 1 makes the pool
    one connection), the next connection resumes the TLS session."""
    clear_knobs(mC)
    g3.provider("pool", mC)
    g3.provider("other", mA)
    before = counters(mC)
    ctl_conns = mC.client.connections
    check_active("pool: password PUT", g3.put_password("pool-1", "pool"))
    n_ok = 0
    for _ in range(100):
        r = g3.refresh("pool-1")
        if r.status == 200 and body_of(r).get("status") == "active":
            n_ok += 1
    T.eq("pool: 100 refreshes succeeded", 100, n_ok)
    after = counters(mC)
    T.eq("pool: control client kept its connection", ctl_conns, mC.client.connections)
    T.eq("pool: 101 token requests", 101, delta(after, before, "requests", "token"))
    T.eq("pool: one TLS connection for 101 token requests", 1,
         delta(after, before, "tls", "connections"))
    T.eq("pool: one full handshake", 1, delta(after, before, "tls", "full_handshakes"))
    T.eq("pool: no resumed handshake yet", 0, delta(after, before, "tls", "resumed_handshakes"))
    T.ok("pool: >= 101 requests on one connection",
         after["connections"]["max_requests_per_connection"] >= 101, ">= 101",
         after["connections"]["max_requests_per_connection"])

    # Another origin needs the only pool slot: the idle connection to C is
    # closed. The next refresh to C must use a new, resumed, connection.
    check_active("pool: other origin", g3.put("pool-other", "other", "client_credentials"))
    before = counters(mC)
    check_active("pool: refresh after the connection was dropped", g3.refresh("pool-1"))
    after = counters(mC)
    T.eq("pool: a new TLS connection", 1, delta(after, before, "tls", "connections"))
    T.eq("pool: it resumed the session", 1, delta(after, before, "tls", "resumed_handshakes"))
    T.eq("pool: no full handshake", 0, delta(after, before, "tls", "full_handshakes"))
    for _ in range(5):
        check_active("pool: refreshes on the resumed connection", g3.refresh("pool-1"))
    after2 = counters(mC)
    T.eq("pool: still one connection after more refreshes", 0,
         delta(after2, after, "tls", "connections"))

    # The mock cuts a response off and closes the connection (close_notify):
    # the session stays resumable, so every later connection resumes. (A
    # background retry may open that connection before the forced refresh;
    # either way no new connection does a full handshake.)
    set_knobs(mC, fault="close_mid_response", fault_count=1)
    check_failed("pool: cut response", g3.refresh("pool-1"), "refresh_failing",
                 {"connection_closed", "refresh_outcome_unknown"})
    check_active("pool: refresh after the server closed the connection", g3.refresh("pool-1"))
    after3 = counters(mC)
    T.ok("pool: new connection(s) after the close",
         delta(after3, after2, "tls", "connections") >= 1, ">= 1",
         delta(after3, after2, "tls", "connections"))
    T.eq("pool: no full handshake after the close", 0,
         delta(after3, after2, "tls", "full_handshakes"))
    T.eq("pool: every new connection resumed", delta(after3, after2, "tls", "connections"),
         delta(after3, after2, "tls", "resumed_handshakes"))
    clear_knobs(mC)


# ---------------------------------------------------------------------------

def section(name, fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - a crashed section is a failure
        T.ok("section %s ran to the end" % name, False, "no exception",
             "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))


def main():
    tmp = test_tmpdir("grants-")
    procs = []
    ok_exit = True
    try:
        ca1 = make_certs(os.path.join(tmp, "pki1"))
        ca2 = make_certs(os.path.join(tmp, "pki2"))
        rsa = make_certs(os.path.join(tmp, "pki-rsa"), rsa=True)
        wrong = make_leaf(os.path.join(tmp, "leaf-wrong"), ca1, "wrong.example",
                          "DNS:wrong.example", ["-days", "30"])
        expired = make_leaf(os.path.join(tmp, "leaf-expired"), ca1, "localhost", "DNS:localhost",
                            ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"])
        future = make_leaf(os.path.join(tmp, "leaf-future"), ca1, "localhost", "DNS:localhost",
                           ["-startdate", "20990101000000Z", "-enddate", "20991231000000Z"])
        bundle = os.path.join(tmp, "trusted.pem")
        with open(bundle, "w") as f:
            for p in (ca1.ca, rsa.ca):
                with open(p) as src:
                    f.write(src.read())

        def start_mock(certs, args=()):
            m = MockProvider(tmp, certs).start(args=list(args))
            procs.append(("mock %d" % m.port, m))
            return m

        mA = start_mock(ca1, ["--client", "%s:%s" % CLIENT, "--client", "%s:%s" % WEIRD,
                              "--client", "%s:%s" % JWT_CLIENT])
        mB = start_mock(ca1)
        mC = start_mock(rsa)
        mD = start_mock(LeafCerts(ca1, wrong))
        mE = start_mock(LeafCerts(ca1, expired))
        mF = start_mock(ca2)
        mE2 = start_mock(LeafCerts(ca1, future))

        g1p = GrantdProc(tmp, data_dir=os.path.join(tmp, "data-g1"),
                         ca_file=bundle).start()
        procs.append(("grantd G1", g1p))
        g3p = GrantdProc(tmp, data_dir=os.path.join(tmp, "data-g3"),
                         ca_file=bundle, args=["--refresh-max-inflight", "1"]).start()
        procs.append(("grantd G3", g3p))
        T.secret(g1p.api_key, g3p.api_key)
        g1, g3 = G(g1p), G(g3p)

        section("grants", test_grants, g1, mA)
        section("client_auth", test_client_auth, g1, mA)
        section("client_jwt", test_client_jwt, g1, mA)
        section("quirks", test_quirks, g1, mA)
        section("faults", test_faults, g1, mA)
        section("no_resend", test_no_resend, g1, mB)
        section("tls_failures", test_tls_failures, g1, mD, mE, mE2, mF, ca2)
        section("insecure_http", test_insecure_http, g1, mB)
        section("pool", test_pool, g3, mC, mA)
        section("known_good_host", test_known_good_host, g1, tmp, procs, ca1, expired)
    except Exception as e:  # noqa: BLE001
        T.ok("set-up", False, "no exception", "%s: %s\n%s" % (type(e).__name__, e,
                                                              traceback.format_exc()))
    finally:
        for name, p in reversed(procs):
            st = p.stop()
            if not T.eq("%s exits 0 on SIGTERM (no crash, no leak)" % name, 0, st):
                ok_exit = False
                print(T.scrub(p.log()[-3000:]))
            log = p.log()
            T.ok("%s log has no sanitizer report" % name,
                 "AddressSanitizer" not in log and "runtime error:" not in log
                 and "LeakSanitizer" not in log, "no report", T.scrub(log[-2000:]))
    rc = T.finish()
    if rc == 0 and ok_exit:
        cleanup_dir(tmp)
    else:
        print("logs kept in %s" % tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
