#!/usr/bin/env python3
"""Integration test of the mock OAuth provider (tests/mock/) on its own.

Makes an ECDSA and an RSA test PKI with make_certs.sh, starts $MOCK_BIN on
127.0.0.1 port 0, and checks: metadata, every grant with both client
authentication styles and public clients, PKCE (S256, plain, failures),
redirect_uri binding, code replay, refresh rotation + grace window + replay
revocation, rotation off, scopes, revocation (RFC 7009), /resource and
/introspect, every fault knob, latency, /authorize knobs (deny, iss,
realmId), counters (requests, grants, TLS handshakes incl. resumption,
requests per connection), /_mock/config validation, /_mock/reset, --plain,
bad start-up options, and clean exits on SIGTERM/SIGINT (also with a hung
request outstanding). Prints "N passed, M failed".
"""
import base64
import hashlib
import http.client
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, MockProvider, cleanup_dir, expect_raises,  # noqa: E402
                     make_certs, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
OTHER = ("other-client", "other-secret")
WEIRD = ("we ird&id", "s:e+c/r=t%x")  # needs form-encoding inside Basic
PUBLIC = ("public-client", "")
REDIRECT = "https://app.example/cb?x=1"
TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def basic(client):
    raw = urllib.parse.quote_plus(client[0]) + ":" + urllib.parse.quote_plus(client[1])
    return "Basic " + base64.b64encode(raw.encode()).decode()


class Api:
    """Token-endpoint helpers over one mock."""

    def __init__(self, mock):
        self.mock = mock
        self.c = mock.client

    def token(self, form, style="basic", client=CLIENT, client_obj=None):
        form = dict(form)
        headers = {}
        if style == "basic":
            headers["Authorization"] = basic(client)
        elif style == "post":
            form["client_id"] = client[0]
            form["client_secret"] = client[1]
        elif style == "public":
            form["client_id"] = client[0]
        r = (client_obj or self.c).post("/token", form=form, headers=headers)
        j = r.json()
        if isinstance(j, dict):
            T.secret(j.get("access_token"), j.get("refresh_token"))
        return r

    def revoke(self, tok, style="basic", client=CLIENT):
        form = {"token": tok}
        headers = {}
        if style == "basic":
            headers["Authorization"] = basic(client)
        else:
            form.update(client_id=client[0], client_secret=client[1])
        return self.c.post("/revoke", form=form, headers=headers)

    def resource(self, tok):
        return self.c.get("/resource", headers={"Authorization": "Bearer " + tok})

    def authorize(self, client_id=CLIENT[0], redirect=REDIRECT, state="st-1", scope="read write",
                  challenge=None, method="S256", response_type="code"):
        q = {"response_type": response_type, "client_id": client_id, "redirect_uri": redirect,
             "state": state, "scope": scope}
        if challenge is not None:
            q["code_challenge"] = challenge
            if method is not None:
                q["code_challenge_method"] = method
        r = self.c.get("/authorize?" + urllib.parse.urlencode(q))
        loc = r.headers.get("location", "")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        T.secret(params.get("code"))
        return r, loc, params

    def code_flow(self, style="basic", client=CLIENT, pkce=True):
        """A full authorization-code flow; returns the token JSON."""
        verifier = secrets.token_urlsafe(32)
        _, _, p = self.authorize(client_id=client[0], challenge=s256(verifier) if pkce else None)
        form = {"grant_type": "authorization_code", "code": p.get("code", ""),
                "redirect_uri": REDIRECT}
        if pkce:
            form["code_verifier"] = verifier
        return self.token(form, style=style, client=client)

    def password(self, style="basic", scope=None):
        form = {"grant_type": "password", "username": "alice", "password": "wonderland"}
        if scope:
            form["scope"] = scope
        return self.token(form, style=style)

    def refresh(self, rt, style="basic", client=CLIENT, scope=None):
        form = {"grant_type": "refresh_token", "refresh_token": rt}
        if scope:
            form["scope"] = scope
        return self.token(form, style=style, client=client)


def s256(verifier):
    d = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(d).decode().rstrip("=")


def is_token(s):
    return isinstance(s, str) and len(s) == 40 and set(s) <= TOKEN_CHARS


def err_of(r):
    j = r.json()
    return j.get("error") if isinstance(j, dict) else None


def check_error(label, r, status, error):
    T.status(label + " status", status, r)
    T.eq(label + " error", error, err_of(r))


# ---------------------------------------------------------------------------

def test_metadata(api):
    m = api.mock
    for path, oidc in (("/.well-known/oauth-authorization-server", False),
                       ("/.well-known/openid-configuration", True)):
        r = api.c.get(path)
        T.status(path, 200, r)
        j = r.json() or {}
        T.eq(path + " issuer", m.base_url, j.get("issuer"))
        T.eq(path + " token_endpoint", m.url("/token"), j.get("token_endpoint"))
        T.eq(path + " authorization_endpoint", m.url("/authorize"), j.get("authorization_endpoint"))
        T.eq(path + " revocation_endpoint", m.url("/revoke"), j.get("revocation_endpoint"))
        T.ok(path + " S256 supported", "S256" in j.get("code_challenge_methods_supported", []),
             "S256", j.get("code_challenge_methods_supported"))
        T.eq(path + " jwks_uri only for OIDC", oidc, "jwks_uri" in j)
    T.status("POST metadata", 405, api.c.post("/.well-known/openid-configuration", body=b""))
    T.status("jwks", 200, api.c.get("/jwks"))
    T.status("unknown path", 404, api.c.get("/nope"))
    T.status("set issuer knob", 200, m.config(issuer="https://evil.example"))
    j = api.c.get("/.well-known/openid-configuration").json() or {}
    T.eq("mismatching issuer served", "https://evil.example", j.get("issuer"))
    T.eq("iss parameter advertised", True, j.get("authorization_response_iss_parameter_supported"))
    m.config(issuer=None)
    j = api.c.get("/.well-known/oauth-authorization-server").json() or {}
    T.eq("issuer back to base URL", m.base_url, j.get("issuer"))


def test_client_credentials(api):
    for style in ("basic", "post"):
        r = api.token({"grant_type": "client_credentials", "scope": "read"}, style=style)
        T.status("client_credentials %s" % style, 200, r)
        j = r.json() or {}
        T.ok("cc %s access token shape" % style, is_token(j.get("access_token")),
             "40 base64url chars", len(j.get("access_token") or ""))
        T.eq("cc %s token_type" % style, "Bearer", j.get("token_type"))
        T.eq("cc %s expires_in" % style, 3600, j.get("expires_in"))
        T.eq("cc %s scope" % style, "read", j.get("scope"))
        T.ok("cc %s no refresh token" % style, "refresh_token" not in j, "absent", "present")
        T.eq("cc %s Cache-Control" % style, "no-store", r.headers.get("cache-control"))
        T.status("cc %s token works at /resource" % style, 200, api.resource(j["access_token"]))
    r = api.token({"grant_type": "client_credentials"}, style="basic", client=WEIRD)
    T.status("Basic with form-encoded id and secret", 200, r)
    r = api.token({"grant_type": "client_credentials"}, style="post", client=WEIRD)
    T.status("post with special characters", 200, r)
    tokens = set()
    for _ in range(20):
        tokens.add((api.token({"grant_type": "client_credentials"}).json() or {}).get("access_token"))
    T.eq("20 distinct tokens", 20, len(tokens))


def test_client_auth_errors(api):
    r = api.token({"grant_type": "client_credentials"}, client=("test-client", "wrong"))
    check_error("wrong secret (basic)", r, 401, "invalid_client")
    T.ok("401 has WWW-Authenticate", "www-authenticate" in r.headers, "header", r.headers)
    r = api.token({"grant_type": "client_credentials"}, style="post", client=("nobody", "x"))
    check_error("unknown client (post)", r, 401, "invalid_client")
    r = api.token({"grant_type": "client_credentials"}, style="none")
    check_error("no client authentication", r, 401, "invalid_client")
    r = api.c.post("/token", form={"grant_type": "client_credentials", "client_id": CLIENT[0],
                                   "client_secret": CLIENT[1]},
                   headers={"Authorization": basic(CLIENT)})
    check_error("two authentication methods", r, 400, "invalid_request")
    r = api.c.post("/token", form={"grant_type": "client_credentials"},
                   headers={"Authorization": "Basic !!!notbase64"})
    check_error("malformed Basic", r, 401, "invalid_client")
    r = api.token({"grant_type": "client_credentials"}, style="public", client=CLIENT)
    check_error("confidential client without secret", r, 401, "invalid_client")
    r = api.c.post("/token", body="grant_type=client_credentials",
                   headers={"Authorization": basic(CLIENT), "Content-Type": "application/json"})
    check_error("wrong Content-Type", r, 400, "invalid_request")
    r = api.c.post("/token", body="grant_type=client_credentials&grant_type=password",
                   headers={"Authorization": basic(CLIENT),
                            "Content-Type": "application/x-www-form-urlencoded"})
    check_error("repeated parameter", r, 400, "invalid_request")
    check_error("missing grant_type", api.token({}), 400, "invalid_request")
    check_error("unknown grant_type", api.token({"grant_type": "magic"}), 400,
                "unsupported_grant_type")
    T.status("GET /token", 405, api.c.get("/token"))
    api.mock.config(client_auth="post")
    check_error("client_auth=post refuses basic",
                api.token({"grant_type": "client_credentials"}), 401, "invalid_client")
    T.status("client_auth=post accepts post", 200,
             api.token({"grant_type": "client_credentials"}, style="post"))
    api.mock.config(client_auth="basic")
    check_error("client_auth=basic refuses post",
                api.token({"grant_type": "client_credentials"}, style="post"), 401,
                "invalid_client")
    api.mock.config(client_auth="any")


def test_password(api):
    for style in ("basic", "post"):
        r = api.password(style=style, scope="profile")
        T.status("password %s" % style, 200, r)
        j = r.json() or {}
        T.ok("password %s refresh token" % style, is_token(j.get("refresh_token")),
             "a refresh token", "none")
        sub = (api.resource(j.get("access_token", "")).json() or {}).get("sub")
        T.eq("password %s subject" % style, "alice", sub)
    r = api.token({"grant_type": "password", "username": "alice", "password": "nope"})
    check_error("wrong password", r, 400, "invalid_grant")
    r = api.token({"grant_type": "password", "username": "alice"})
    check_error("password missing", r, 400, "invalid_request")


def test_code(api):
    for style in ("basic", "post"):
        r = api.code_flow(style=style)
        T.status("authorization_code+PKCE %s" % style, 200, r)
        j = r.json() or {}
        T.ok("code %s tokens" % style, is_token(j.get("access_token")) and is_token(j.get("refresh_token")),
             "access and refresh tokens", sorted(j))
        T.eq("code %s scope" % style, "read write", j.get("scope"))
    T.status("code flow without PKCE", 200, api.code_flow(pkce=False))
    T.status("public client with PKCE", 200, api.code_flow(style="public", client=PUBLIC))

    # The redirect itself.
    v = secrets.token_urlsafe(32)
    r, loc, p = api.authorize(challenge=s256(v), state="s t&ate")
    T.status("authorize redirects", 302, r)
    T.ok("redirect keeps redirect_uri", loc.startswith(REDIRECT + "&"), REDIRECT + "&...", loc[:40])
    T.eq("state echoed", "s t&ate", p.get("state"))
    T.ok("code shape", is_token(p.get("code")), "40 chars", len(p.get("code") or ""))
    T.ok("no iss by default", "iss" not in p, "absent", sorted(p))
    code = p["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    check_error("PKCE: missing verifier", api.token(form), 400, "invalid_grant")
    check_error("PKCE: wrong verifier",
                api.token(dict(form, code_verifier=secrets.token_urlsafe(32))), 400, "invalid_grant")
    check_error("PKCE: malformed verifier", api.token(dict(form, code_verifier="short")), 400,
                "invalid_grant")
    check_error("redirect_uri mismatch",
                api.token(dict(form, code_verifier=v, redirect_uri="https://app.example/other")),
                400, "invalid_grant")
    check_error("code of another client",
                api.token(dict(form, code_verifier=v), client=OTHER), 400, "invalid_grant")
    r = api.token(dict(form, code_verifier=v))
    T.status("right verifier after failures", 200, r)
    at = (r.json() or {}).get("access_token", "")
    T.status("exchanged token works", 200, api.resource(at))
    before = api.mock.counters()["replays_detected"]
    check_error("code replay", api.token(dict(form, code_verifier=v)), 400, "invalid_grant")
    T.status("code replay revoked the grant's access token", 401, api.resource(at))
    T.eq("code replay counted", before + 1, api.mock.counters()["replays_detected"])

    v = secrets.token_urlsafe(32)
    _, _, p = api.authorize(challenge=v, method="plain")
    r = api.token({"grant_type": "authorization_code", "code": p.get("code", ""),
                   "redirect_uri": REDIRECT, "code_verifier": v})
    T.status("PKCE plain", 200, r)
    _, _, p = api.authorize()
    r = api.token({"grant_type": "authorization_code", "code": p.get("code", ""),
                   "redirect_uri": REDIRECT, "code_verifier": v})
    check_error("verifier without challenge", r, 400, "invalid_grant")
    check_error("unknown code", api.token({"grant_type": "authorization_code",
                                          "code": "A" * 40, "redirect_uri": REDIRECT}),
                400, "invalid_grant")

    # /authorize errors.
    r, loc, p = api.authorize(response_type="token")
    T.eq("unsupported_response_type redirect", ("unsupported_response_type", "st-1"),
         (p.get("error"), p.get("state")))
    r, loc, p = api.authorize(challenge="x", method="S256")
    T.eq("bad challenge -> invalid_request", "invalid_request", p.get("error"))
    r, loc, p = api.authorize(challenge=s256(v), method="S512")
    T.eq("bad challenge method -> invalid_request", "invalid_request", p.get("error"))
    r, loc, p = api.authorize(client_id="nobody")
    T.ok("unknown client: 400, no redirect", r.status == 400 and not loc, "400 without Location",
         (r.status, loc))
    r, loc, p = api.authorize(redirect="not a url")
    T.ok("bad redirect_uri: 400, no redirect", r.status == 400 and not loc, "400 without Location",
         (r.status, loc))
    T.status("POST /authorize", 405, api.c.post("/authorize", body=b""))

    # Knobs of /authorize.
    api.mock.config(deny=True)
    _, _, p = api.authorize()
    T.eq("deny knob", ("access_denied", None), (p.get("error"), p.get("code")))
    api.mock.config(deny=False, send_iss=True, realm_id="4620816365")
    _, _, p = api.authorize()
    T.eq("iss parameter (RFC 9207)", api.mock.base_url, p.get("iss"))
    T.eq("realmId knob", "4620816365", p.get("realmId"))
    api.mock.config(send_iss=False, realm_id=None, require_pkce=True)
    _, _, p = api.authorize()
    T.eq("require_pkce knob", "invalid_request", p.get("error"))
    api.mock.config(require_pkce=False, code_ttl_s=1)
    _, _, p = api.authorize()
    time.sleep(1.2)  # the code must outlive its 1 s TTL; no assertion on time itself
    r = api.token({"grant_type": "authorization_code", "code": p.get("code", ""),
                   "redirect_uri": REDIRECT})
    check_error("expired code", r, 400, "invalid_grant")
    api.mock.config(code_ttl_s=600)


def test_refresh(api):
    m = api.mock
    j = api.password().json() or {}
    at0, rt0 = j.get("access_token", ""), j.get("refresh_token", "")
    r = api.refresh(rt0, style="post")
    T.status("refresh (post)", 200, r)
    j1 = r.json() or {}
    rt1 = j1.get("refresh_token", "")
    T.ok("rotation gives a new refresh token", is_token(rt1) and rt1 != rt0, "new token", "same/none")
    T.status("previous access token still valid", 200, api.resource(at0))
    r = api.refresh(rt1)
    T.status("refresh (basic)", 200, r)
    j2 = r.json() or {}
    rt2, at2 = j2.get("refresh_token", ""), j2.get("access_token", "")
    T.status("oldest of three access tokens evicted", 401, api.resource(at0))
    check_error("refresh by another client", api.refresh(rt2, client=OTHER), 400, "invalid_grant")
    jb = api.password(scope="a b").json() or {}
    r = api.refresh(jb.get("refresh_token", ""), scope="a")
    T.eq("narrowed scope", "a", (r.json() or {}).get("scope"))
    r = api.refresh((r.json() or {}).get("refresh_token", ""), scope="a c")
    check_error("wider scope", r, 400, "invalid_scope")

    # Replay outside any grace window revokes the whole grant.
    c0 = m.counters()
    check_error("reuse of a rotated refresh token", api.refresh(rt0), 400, "invalid_grant")
    check_error("grant revoked: current refresh token", api.refresh(rt2), 400, "invalid_grant")
    T.status("grant revoked: current access token", 401, api.resource(at2))
    c1 = m.counters()
    T.eq("replay counted", c0["replays_detected"] + 1, c1["replays_detected"])
    T.eq("family revocation counted", c0["families_revoked"] + 1, c1["families_revoked"])

    # Grace window: the old token yields the grant's current refresh token.
    m.config(reuse_grace_s=300)
    rt0 = (api.password().json() or {}).get("refresh_token", "")
    rt1 = (api.refresh(rt0).json() or {}).get("refresh_token", "")
    r = api.refresh(rt0)
    T.status("reuse within grace window", 200, r)
    T.ok("grace answer carries the current refresh token",
         (r.json() or {}).get("refresh_token") == rt1, "the current one", "another")
    T.eq("grace reuse counted", c1["grace_reuses"] + 1, m.counters()["grace_reuses"])
    T.status("current token still works after a grace reuse", 200, api.refresh(rt1))
    m.config(reuse_grace_s=0)
    check_error("same reuse after the window closed", api.refresh(rt0), 400, "invalid_grant")

    # keep_rotated bounds what is remembered: older tokens are just unknown.
    m.config(keep_rotated=1)
    c0 = m.counters()
    rts = [(api.password().json() or {}).get("refresh_token", "")]
    for _ in range(3):
        rts.append((api.refresh(rts[-1]).json() or {}).get("refresh_token", ""))
    check_error("forgotten rotated token", api.refresh(rts[0]), 400, "invalid_grant")
    T.eq("forgotten token is no replay", c0["replays_detected"], m.counters()["replays_detected"])
    T.status("grant intact after a forgotten token", 200, api.refresh(rts[-1]))
    m.config(keep_rotated=2)

    # Rotation off.
    m.config(rotate_refresh_tokens=False)
    rt = (api.password().json() or {}).get("refresh_token", "")
    r = api.refresh(rt)
    T.ok("no rotation: no refresh_token in the answer", r.status == 200 and
         "refresh_token" not in (r.json() or {}), "200 without refresh_token", r.status)
    T.status("no rotation: same token again", 200, api.refresh(rt))
    m.config(echo_refresh_token=True)
    T.eq("echo_refresh_token", rt, (api.refresh(rt).json() or {}).get("refresh_token"))
    m.config(rotate_refresh_tokens=True, echo_refresh_token=False)
    check_error("missing refresh_token", api.token({"grant_type": "refresh_token"}), 400,
                "invalid_request")
    check_error("access token as refresh token", api.refresh(at2), 400, "invalid_grant")


def test_revoke(api):
    j = api.password().json() or {}
    at, rt = j.get("access_token", ""), j.get("refresh_token", "")
    c0 = api.mock.counters()["revocations"]
    r = api.revoke(at)
    T.ok("revoke access token: 200, empty", r.status == 200 and r.body == b"", "200 empty", r)
    T.status("revoked access token refused", 401, api.resource(at))
    T.status("revoke it again (unknown now)", 200, api.revoke(at, style="post"))
    T.status("revoke unknown token", 200, api.revoke("not-a-token"))
    at2 = (api.refresh(rt).json() or {}).get("access_token", "")
    j = api.password().json() or {}
    at3, rt3 = j.get("access_token", ""), j.get("refresh_token", "")
    check_error("revoke another client's token", api.revoke(rt3, client=OTHER), 400,
                "unauthorized_client")
    T.status("revoke refresh token (post)", 200, api.revoke(rt3, style="post"))
    T.status("its grant's access token refused", 401, api.resource(at3))
    check_error("revoked refresh token", api.refresh(rt3), 400, "invalid_grant")
    T.status("other grants untouched", 200, api.resource(at2))
    T.eq("revocations counted", c0 + 2, api.mock.counters()["revocations"])
    r = api.c.post("/revoke", form={}, headers={"Authorization": basic(CLIENT)})
    check_error("revoke without token", r, 400, "invalid_request")
    r = api.c.post("/revoke", form={"token": at2})
    check_error("revoke without client auth", r, 401, "invalid_client")

    r = api.c.post("/introspect", form={"token": at2})
    T.eq("introspect live token", (True, "access_token", "alice"),
         ((r.json() or {}).get("active"), (r.json() or {}).get("token_type"),
          (r.json() or {}).get("sub")))
    r = api.c.post("/introspect", form={"token": at})
    T.eq("introspect revoked token", False, (r.json() or {}).get("active"))
    check_error("/resource without token", api.c.get("/resource"), 401, "invalid_request")


def test_knobs(api):
    m = api.mock
    cc = {"grant_type": "client_credentials"}
    m.config(expires_in=0)
    j = api.token(cc).json() or {}
    T.ok("expires_in=0 omits it", "expires_in" not in j, "absent", j.get("expires_in"))
    T.status("token without expires_in still valid", 200, api.resource(j.get("access_token", "")))
    m.config(expires_in=120, expires_in_as_string=True, token_type="bearer")
    j = api.token(cc).json() or {}
    T.eq("expires_in as string", "120", j.get("expires_in"))
    T.eq("token_type case", "bearer", j.get("token_type"))
    m.config(expires_in=3600, expires_in_as_string=False, token_type="Bearer",
             extra={"instance_url": "https://na1.example", "id_token": "e30.e30.sig"})
    j = api.token(cc).json() or {}
    T.eq("extra fields", ("https://na1.example", "e30.e30.sig"),
         (j.get("instance_url"), j.get("id_token")))
    m.config(extra={})
    r = m.config(expires_in="soon")
    T.ok("bad knob value refused", r.status == 400 and "expires_in" in r.text(), "400 naming it", r)
    r = m.config(no_such_knob=1)
    T.ok("unknown knob refused", r.status == 400 and "no_such_knob" in r.text(), "400 naming it", r)
    r = m.client.post("/_mock/config", body="not json", headers={"Content-Type": "application/json"})
    T.status("config body not JSON", 400, r)
    r = m.config(fault="bogus")
    T.status("unknown fault refused", 400, r)
    T.eq("failed config changed nothing", ("none", 3600),
         (m.knobs().get("fault"), m.knobs().get("expires_in")))
    r = m.config(expires_in=60, fault="nonsense")
    T.eq("config is all or nothing", 3600, m.knobs().get("expires_in"))
    T.status("GET /_mock/config", 200, m.client.get("/_mock/config"))


def fault_once(api, fault, **more):
    api.mock.config(fault=fault, fault_count=1, **more)


def test_faults(api):
    m = api.mock
    cc = {"grant_type": "client_credentials"}

    fault_once(api, "invalid_grant")
    check_error("fault invalid_grant", api.token(cc), 400, "invalid_grant")
    T.status("fault_count=1 applies once", 200, api.token(cc))
    fault_once(api, "invalid_client")
    check_error("fault invalid_client", api.token(cc), 401, "invalid_client")
    fault_once(api, "429", retry_after=7)
    r = api.token(cc)
    T.status("fault 429", 429, r)
    T.eq("429 Retry-After", "7", r.headers.get("retry-after"))
    fault_once(api, "500")
    r = api.token(cc)
    T.ok("fault 500 (HTML body)", r.status == 500 and r.json() is None, "500 non-JSON", r)
    fault_once(api, "malformed_json")
    r = api.token(cc)
    T.ok("fault malformed_json", r.status == 200 and r.json() is None and r.body.startswith(b"{"),
         "200 with broken JSON", r)
    fault_once(api, "form_encoded")
    r = api.token(cc)
    f = r.form()
    T.ok("fault form_encoded", r.status == 200 and r.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded") and is_token(f.get("access_token")) and
        f.get("expires_in") == "3600", "form body with a token", r.headers.get("content-type"))
    T.secret(f.get("access_token"))
    fault_once(api, "chunked")
    r = api.token(cc)
    T.eq("fault chunked: header", "chunked", r.headers.get("transfer-encoding"))
    T.ok("fault chunked: body reassembled", is_token((r.json() or {}).get("access_token")),
         "a token", r.status)
    fault_once(api, "expires_in_missing")
    j = api.token(cc).json() or {}
    T.ok("fault expires_in_missing", is_token(j.get("access_token")) and "expires_in" not in j,
         "token without expires_in", sorted(j))
    fault_once(api, "empty_400")
    r = api.token(cc)
    T.ok("fault empty_400", r.status == 400 and r.body == b"", "400 empty", r)
    fault_once(api, "empty_403")
    r = api.token(cc)
    T.ok("fault empty_403", r.status == 403 and r.body == b"", "403 empty", r)
    fault_once(api, "error_with_200", fault_error="bad_verification_code")
    r = api.token(cc)
    T.ok("fault error_with_200", r.status == 200 and err_of(r) == "bad_verification_code",
         "200 with an error", r)

    fault_once(api, "close_mid_response")
    fresh = m.new_client()
    expect_raises(T, "fault close_mid_response cuts the body",
             (http.client.IncompleteRead, ssl.SSLError, ConnectionError),
             lambda: api.token(cc, client_obj=fresh))
    fresh.close()
    T.status("after close_mid_response", 200, api.token(cc))

    fault_once(api, "hang")
    slow = m.new_client(timeout=2)
    expect_raises(T, "fault hang never answers", (socket.timeout, TimeoutError),
             lambda: api.token(cc, client_obj=slow))
    slow.close()
    T.status("after hang", 200, api.token(cc))

    m.config(fault="500")  # no count: every request
    T.ok("fault without count applies to all",
         api.token(cc).status == 500 and api.token(cc).status == 500, "500 twice", "other")
    m.config(fault="none")
    T.status("fault none clears", 200, api.token(cc))

    # The server rotated, the client never saw the answer: its old refresh
    # token is now a replay.
    rt = (api.password().json() or {}).get("refresh_token", "")
    fault_once(api, "close_mid_response", fault_after_grant=True)
    fresh = m.new_client()
    expect_raises(T, "lost rotation answer", (http.client.IncompleteRead, ssl.SSLError, ConnectionError),
             lambda: api.token({"grant_type": "refresh_token", "refresh_token": rt},
                               client_obj=fresh))
    fresh.close()
    check_error("old refresh token after a lost rotation", api.refresh(rt), 400, "invalid_grant")
    m.config(fault_after_grant=False)

    m.config(fault="500", fault_count=1, fault_on="revoke")
    T.status("token unaffected by fault_on=revoke", 200, api.token(cc))
    T.status("revoke gets the fault", 500, api.revoke("x"))
    m.config(fault_on="token")

    m.config(latency_ms=200)
    T.status("latency_ms still answers", 200, api.token(cc))
    T.status("control endpoints skip latency", 200, m.client.get("/_mock/counters"))
    m.config(latency_ms=0)


def test_counters_and_reset(api, certs):
    m = api.mock
    T.status("reset", 200, m.reset())
    c = m.counters()
    T.eq("reset zeroes token requests", 0, c["requests"]["token"])
    T.eq("reset forgets tokens", 0, c["live"]["tokens"])
    j = api.password().json() or {}
    api.refresh(j.get("refresh_token", ""))
    api.token({"grant_type": "client_credentials"})
    api.token({"grant_type": "client_credentials"}, style="post")
    api.code_flow()
    api.revoke(j.get("access_token", ""))
    api.resource("nope")
    c = m.counters()
    T.eq("requests by endpoint",
         {"authorize": 1, "token": 5, "revoke": 1, "resource": 1, "introspect": 0, "metadata": 0,
          "mock": 2, "other": 0}, c["requests"])
    T.eq("requests by grant",
         {"authorization_code": 1, "refresh_token": 1, "client_credentials": 2, "password": 1,
          "other": 0}, c["token_requests"])
    T.eq("tokens issued", {"access": 5, "refresh": 3, "codes": 1}, c["tokens_issued"])
    T.eq("refreshes and rotations", (1, 1), (c["refreshes"], c["rotations"]))
    T.eq("no new connection since the reset", (0, 0),
         (c["tls"]["connections"], c["tls"]["full_handshakes"]))

    # Requests per connection: one client, many requests on one connection.
    cl = m.new_client()
    for _ in range(12):
        cl.get("/_mock/counters")
    c = m.counters()
    cl.close()
    T.eq("one connection for 12 requests", 1, cl.connections)
    T.eq("TLS connection and handshake counted", (1, 1),
         (c["tls"]["connections"], c["tls"]["full_handshakes"]))
    T.ok("per-connection histogram", c["connections"]["requests_per_connection"]["11-100"] >= 1,
         ">= 1 in 11-100", c["connections"])
    T.ok("max requests per connection", c["connections"]["max_requests_per_connection"] >= 12,
         ">= 12", c["connections"]["max_requests_per_connection"])

    # TLS session resumption is visible in the counters.
    ctx = certs.ssl_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sess = None
    reused = []
    for i in range(2):
        raw = socket.create_connection(("127.0.0.1", m.port), timeout=30)
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=sess)
        s.sendall(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        reused.append(s.session_reused)
        sess = s.session
        s.close()
    T.eq("second handshake resumed", [False, True], reused)
    t = m.counters()["tls"]
    T.ok("resumed handshakes counted", t["resumed_handshakes"] >= 1 and t["full_handshakes"] >= 1,
         "full >= 1 and resumed >= 1", t)


def test_other_modes(tmp, rsa_certs):
    # RSA certificate.
    m = MockProvider(tmp, rsa_certs).start()
    api = Api(m)
    T.status("RSA: client_credentials over TLS", 200, api.token({"grant_type": "client_credentials"}))
    T.eq("RSA: SIGTERM exits 0", 0, m.stop())

    # Plain HTTP, custom clients/users and knobs from flags; SIGINT.
    m = MockProvider(tmp, None).start(args=["--client", "c1:s1", "--user", "bob:pw",
                                            "--expires-in", "77", "--token-type", "mac",
                                            "--config", '{"send_iss": true}'])
    api = Api(m)
    r = api.token({"grant_type": "password", "username": "bob", "password": "pw"}, client=("c1", "s1"))
    T.status("--plain, --client, --user", 200, r)
    T.eq("knobs from flags", (77, "mac"), ((r.json() or {}).get("expires_in"),
                                          (r.json() or {}).get("token_type")))
    check_error("default client replaced", api.token({"grant_type": "client_credentials"}),
                401, "invalid_client")
    T.eq("--config applied", True, m.knobs().get("send_iss"))
    T.eq("plain base URL", "http://127.0.0.1:%d" % m.port,
         (m.client.get("/.well-known/oauth-authorization-server").json() or {}).get("issuer"))
    T.eq("SIGINT exits 0", 0, m.stop(sig=signal.SIGINT))

    # A hung request outstanding at shutdown does not stop a clean exit.
    m = MockProvider(tmp, None).start(args=["--fault", "hang"])
    s = socket.create_connection(("127.0.0.1", m.port), timeout=30)
    s.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 29\r\n\r\ngrant_type=client_credentials")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and m.counters()["requests"]["token"] < 1:
        time.sleep(0.02)
    T.eq("SIGTERM with a hung request exits 0", 0, m.stop())
    s.close()

    # Bad start-up options fail fast with a message.
    mock_bin = os.environ["MOCK_BIN"]
    for label, args in (("no certificate", []),
                        ("missing key file", ["--cert", rsa_certs.cert, "--key", "/nonexistent"]),
                        ("bad knob flag", ["--plain", "--fault", "explode"]),
                        ("unknown option", ["--plain", "--frobnicate", "1"]),
                        ("bad --client", ["--plain", "--client", "nocolon"])):
        p = subprocess.run([mock_bin] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        T.ok("start-up error: %s" % label, p.returncode != 0 and b"mock_provider" in p.stderr,
             "non-zero exit with a message", (p.returncode, p.stderr[:200]))


def main():
    tmp = test_tmpdir("mock-")
    certs = make_certs(os.path.join(tmp, "pki-ec"))
    rsa_certs = make_certs(os.path.join(tmp, "pki-rsa"), rsa=True)
    args = []
    for cl in (CLIENT, OTHER, WEIRD, PUBLIC):
        args += ["--client", "%s:%s" % cl]
    mock = MockProvider(tmp, certs).start(args=args + ["--user", "alice:wonderland"])
    api = Api(mock)
    ok = False
    try:
        for fn in (test_metadata, test_client_credentials, test_client_auth_errors, test_password,
                   test_code, test_refresh, test_revoke, test_knobs, test_faults):
            fn(api)
        test_counters_and_reset(api, certs)
        test_other_modes(tmp, rsa_certs)
        ok = True
    finally:
        rc = mock.stop()
        T.eq("ECDSA mock: SIGTERM exits 0", 0, rc)
        if not ok or T.failed:
            print("--- mock log (tail) ---\n" + mock.log()[-2000:], flush=True)
    status = T.finish()
    if status == 0:
        cleanup_dir(tmp)
    return status


if __name__ == "__main__":
    sys.exit(main())
