#!/usr/bin/env python3
"""The connect flow end to end: grantd against the mock OAuth provider (TLS).

A small browser-like client (Browser) follows redirects hop by hop: the
authorization URL at the mock's /authorize -> 302 to grantd's
/oauth/callback -> 302 to redirect_after, a tiny HTTP server of this test
(Landing) that records what arrived. Covered:
  - the full flow with PKCE (the mock requires it), ending with a token that
    the mock's /resource accepts; the same with PKCE off
  - state replayed (400, exactly one code exchange), expired (grantd with
    --state-ttl 10, one wait), unknown, tampered (one character changed)
  - error=access_denied; a wrong RFC 9207 `iss` (and a right one); a code the
    provider rejects; the provider down during the exchange
  - realmId kept in `extra`; no redirect_after -> 200 "Connected" page
  - the authorization URL's encoding (provider query kept, separator,
    authorize_params, request params); the default redirect_uri from
    --public-url; the callback's limits (414, repeated state, bad-state
    metric); a connection deleted mid-flow; a denied re-authorization of an
    active connection keeps its grant
  - discovery from the mock's metadata (explicit fields win), a mismatching
    issuer -> 502 discovery_failed and nothing stored
  - DELETE ?revoke=true (refresh then access token) reaching the mock, the
    revoked token refused there, the mock down (deleted anyway, reported),
    DELETE without revoke (no revoke request)
Runs under CTest (GRANTD_BIN, MOCK_BIN, GRANTD_TEST_TMP). Processes are
stopped by PID; no timed assertions (the one wait only makes a state old).
"""
import http.client
import http.server
import os
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402

STATE_TTL_S = 10  # grantd's minimum --state-ttl
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------------------
# A browser-like client and a landing page
# ---------------------------------------------------------------------------

class Hop:
    def __init__(self, url, status, headers, body):
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def location(self):
        return self.headers.get("location")

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "%s -> HTTP %s" % (self.url.split("?")[0], self.status)


class Browser:
    """Follows redirects the way a browser does: GET, resolve Location
    against the current URL, again; https is verified against the test CA
    (host names checked). New connection per hop (no shared state)."""

    def __init__(self, ssl_context):
        self.ssl_context = ssl_context

    def get(self, url):
        u = urllib.parse.urlsplit(url)
        port = u.port or (443 if u.scheme == "https" else 80)
        if u.scheme == "https":
            c = http.client.HTTPSConnection(u.hostname, port, timeout=60, context=self.ssl_context)
        else:
            c = http.client.HTTPConnection(u.hostname, port, timeout=60)
        try:
            path = (u.path or "/") + ("?" + u.query if u.query else "")
            c.request("GET", path, headers={
                "User-Agent": "grantd-test-browser/1.0",
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                "Accept-Language": "en"})
            r = c.getresponse()
            body = r.read()
            return Hop(url, r.status, {k.lower(): v for k, v in r.getheaders()}, body)
        finally:
            c.close()

    def follow(self, url, max_hops=8, stop=None):
        """Hops until an answer that is not a redirect (or stop(hop) is
        true, or max_hops). Returns the list of hops."""
        hops = []
        while len(hops) < max_hops:
            hop = self.get(url)
            hops.append(hop)
            if hop.status not in (301, 302, 303, 307, 308) or not hop.location:
                break
            if stop is not None and stop(hop):
                break
            url = urllib.parse.urljoin(url, hop.location)
        return hops


class Landing:
    """The application's page behind redirect_after: records each request's
    path and query, answers 200 "landed"."""

    def __init__(self):
        self.seen = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                outer.seen.append(self.path)
                body = b"landed\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def query_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)


def q1(url, name):
    v = query_of(url).get(name)
    return v[0] if v else None


def with_param(url, name, value):
    """url with query parameter `name` replaced by value (order kept)."""
    u = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    pairs = [(k, value if k == name else v) for k, v in pairs]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(pairs)))


def flip_char(s):
    """s with one character changed (still base64url)."""
    i = len(s) // 2
    return s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------

class Env:
    """One mock (the provider everyone uses), one for "provider down", one
    grantd (default state TTL) and one with --state-ttl 10."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.certs = H.make_certs(os.path.join(tmp, "pki"))
        self.mock = H.MockProvider(tmp, self.certs).start(args=["--require-pkce", "true"])
        self.mock2 = H.MockProvider(tmp, self.certs).start()
        self.g = H.GrantdProc(os.path.join(tmp), data_dir=os.path.join(tmp, "data1"),
                              ca_file=self.certs.ca).start()
        self.g2 = H.GrantdProc(os.path.join(tmp), data_dir=os.path.join(tmp, "data2"),
                               ca_file=self.certs.ca,
                               args=["--state-ttl", str(STATE_TTL_S),
                                     "--public-url", "http://127.0.0.1:1/base//"]).start()
        self.landing = Landing()
        self.browser = Browser(self.certs.ssl_context())

    def base(self, mock=None):
        return "https://localhost:%d" % (mock or self.mock).port

    def callback(self, g=None):
        return "http://127.0.0.1:%d/oauth/callback" % (g or self.g).port

    def provider_body(self, mock=None, g=None, **over):
        b = self.base(mock)
        body = {"authorize_url": b + "/authorize", "token_url": b + "/token",
                "revoke_url": b + "/revoke", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "scopes": ["read", "write"],
                "redirect_uri": self.callback(g)}
        body.update(over)
        return {k: v for k, v in body.items() if v is not None}

    def close(self):
        for p in (self.g, self.g2):
            p.stop()
        for m in (self.mock, self.mock2):
            m.stop()
        self.landing.close()


class ConnectFlowTest:
    def __init__(self, env, checks):
        self.e = env
        self.c = checks
        self.api = env.g.client
        self.mock = env.mock

    # --- small helpers --------------------------------------------------
    def put_provider(self, name, g=None, **over):
        g = g or self.e.g
        r = g.client.put("/v1/providers/" + name, json_body=self.e.provider_body(g=g, **over))
        self.c.status("PUT provider %s" % name, 200, r)
        return r

    def put_conn(self, cid, provider, g=None):
        g = g or self.e.g
        r = g.client.put("/v1/connections/" + cid, json_body={
            "tenant": "t-1", "provider": provider, "grant": "authorization_code"})
        self.c.status("PUT connection %s" % cid, 200, r)
        j = r.json() or {}
        self.c.eq("connection %s starts pending" % cid, "pending", j.get("status"))

    def authorize(self, cid, g=None, **body):
        g = g or self.e.g
        r = g.client.post("/v1/connections/%s/authorize" % cid, json_body=body)
        self.c.status("authorize %s" % cid, 200, r)
        j = r.json() or {}
        self.c.secret(j.get("state"))
        return j

    def conn(self, cid, g=None):
        r = (g or self.e.g).client.get("/v1/connections/" + cid)
        return r.json() if r.status == 200 else {"_status": r.status}

    def token(self, cid):
        r = self.api.get("/v1/connections/%s/token" % cid)
        j = r.json() or {}
        self.c.secret(j.get("access_token"))
        return r, j

    def counters(self, mock=None):
        return (mock or self.mock).counters()

    def code_exchanges(self, mock=None):
        return self.counters(mock)["token_requests"]["authorization_code"]

    def token_works(self, label, at, expect=200):
        r = self.mock.client.get("/resource", headers={"Authorization": "Bearer " + (at or "-")})
        self.c.status(label, expect, r)
        return r

    def not_active_with_error(self, label, cid, code, mentions=None, g=None):
        j = self.conn(cid, g)
        self.c.ok(label + ": connection not active", j.get("status") not in ("active", None),
                  "a status other than active", j.get("status"))
        le = j.get("last_error") or {}
        self.c.eq(label + ": last_error.code", code, le.get("code"))
        self.c.ok(label + ": last_error.message is set", bool(le.get("message")),
                  "a message", le.get("message"))
        if mentions:
            self.c.ok(label + ": last_error.message mentions %r" % mentions,
                      mentions in (le.get("message") or ""), "message naming %r" % mentions,
                      le.get("message"))
        self.c.ok(label + ": no access token stored", j.get("has_access_token") is False,
                  "has_access_token false", j.get("has_access_token"))
        return j

    def bad_state_page(self, label, hop):
        self.c.eq(label + ": status 400", 400, hop.status)
        self.c.ok(label + ": HTML page", "text/html" in hop.headers.get("content-type", ""),
                  "text/html", hop.headers.get("content-type"))
        self.c.ok(label + ": no redirect", hop.location is None, "no Location", hop.location)

    # --- the flows ------------------------------------------------------
    def full_flow_pkce(self):
        """c1: PKCE on (the mock refuses /authorize without a challenge),
        redirect_after with its own query."""
        self.put_provider("acme")
        self.put_conn("c1", "acme")
        ra = self.e.landing.url("/done?tab=integrations")
        a = self.authorize("c1", redirect_after=ra)
        url, state = a.get("url", ""), a.get("state", "")
        self.c.ok("state is base64url of >= 128 bits", B64URL.match(state) and len(state) >= 22,
                  ">= 22 base64url characters", "%d characters" % len(state))
        self.c.ok("expires_at is RFC 3339", H.RFC3339_UTC.match(a.get("expires_at") or ""),
                  "RFC 3339 UTC", a.get("expires_at"))
        self.c.ok("URL goes to the provider's authorize_url",
                  url.startswith(self.e.base() + "/authorize?"), self.e.base() + "/authorize?...",
                  url.split("?")[0])
        q = query_of(url)
        for k, v in (("response_type", "code"), ("client_id", CLIENT_ID),
                     ("redirect_uri", self.e.callback()), ("scope", "read write"),
                     ("state", state), ("code_challenge_method", "S256")):
            self.c.eq("authorize URL %s" % k, [v], q.get(k))
        ch = (q.get("code_challenge") or [""])[0]
        self.c.ok("code_challenge is 43 base64url chars", len(ch) == 43 and B64URL.match(ch),
                  "43 base64url characters", ch)
        before = self.code_exchanges()
        hops = self.e.browser.follow(url)
        self.c.eq("browser hops (mock, grantd, landing)", [302, 302, 200],
                  [h.status for h in hops])
        if len(hops) < 3:
            return
        self.c.ok("mock redirects to grantd's callback",
                  hops[0].location.startswith(self.e.callback() + "?"), self.e.callback(),
                  hops[0].location.split("?")[0])
        self.c.eq("callback carries the state", state, q1(hops[0].location, "state"))
        loc = hops[1].location
        self.c.ok("grantd redirects to redirect_after (its query kept)",
                  loc.startswith(ra + "&"), ra + "&...", loc)
        self.c.eq("redirect_after gets connection and status",
                  ({"tab": ["integrations"], "connection": ["c1"], "status": ["active"]}),
                  query_of(loc))
        self.c.ok("callback answer is not cacheable",
                  "no-store" in hops[1].headers.get("cache-control", ""), "no-store",
                  hops[1].headers.get("cache-control"))
        self.c.eq("the landing page saw the redirect",
                  ["/done?tab=integrations&connection=c1&status=active"], self.e.landing.seen[-1:])
        self.c.eq("exactly one code exchange", before + 1, self.code_exchanges())
        j = self.conn("c1")
        self.c.eq("c1 active", "active", j.get("status"))
        self.c.eq("c1 last_error", None, j.get("last_error"))
        self.c.eq("c1 scopes", ["read", "write"], j.get("scopes"))
        r, t = self.token("c1")
        self.c.status("c1 token", 200, r)
        self.c.ok("c1 access_token present", bool(t.get("access_token")), "a token", t)
        res = self.token_works("c1 token accepted at the mock's /resource", t.get("access_token"))
        self.c.eq("resource sees the client", CLIENT_ID, (res.json() or {}).get("client_id"))
        self.c.eq("resource sees the scope", "read write", (res.json() or {}).get("scope"))
        self.c1_callback_url = urllib.parse.urljoin(hops[0].url, hops[0].location)

    def replayed_state(self):
        before = self.code_exchanges()
        at_before = self.token("c1")[1].get("access_token")
        hop = self.e.browser.get(self.c1_callback_url)
        self.bad_state_page("replayed callback", hop)
        self.c.eq("replay makes no second exchange", before, self.code_exchanges())
        self.c.eq("c1 still active after the replay", "active", self.conn("c1").get("status"))
        self.c.ok("c1 keeps its token after the replay",
                  self.token("c1")[1].get("access_token") == at_before, "same token", "changed")

    def unknown_state(self):
        before = self.code_exchanges()
        st = secrets.token_urlsafe(32)
        hop = self.e.browser.get(self.e.callback() + "?code=abc&state=" + st)
        self.bad_state_page("unknown state", hop)
        hop = self.e.browser.get(self.e.callback() + "?code=abc")
        self.bad_state_page("missing state", hop)
        self.c.eq("unknown state makes no exchange", before, self.code_exchanges())

    def tampered_state(self):
        """A state with one character changed is unknown; the real one is
        not burnt by it and still completes the flow."""
        self.put_conn("c3", "acme")
        a = self.authorize("c3")
        hops = self.e.browser.follow(a["url"], max_hops=1)
        cb = urllib.parse.urljoin(hops[0].url, hops[0].location)
        bad = with_param(cb, "state", flip_char(q1(cb, "state")))
        before = self.code_exchanges()
        hop = self.e.browser.get(bad)
        self.bad_state_page("tampered state", hop)
        self.c.eq("tampered state makes no exchange", before, self.code_exchanges())
        self.c.eq("c3 still pending after the tampered callback", "pending",
                  self.conn("c3").get("status"))
        hop = self.e.browser.get(cb)
        self.c.eq("the genuine callback still works after a tampered one", 200, hop.status)
        self.c.eq("c3 active", "active", self.conn("c3").get("status"))

    def pkce_off(self):
        self.put_provider("acme-nopkce", pkce=False)
        self.put_conn("c2", "acme-nopkce")
        a = self.authorize("c2", redirect_after=self.e.landing.url("/back"))
        q = query_of(a.get("url", ""))
        self.c.ok("PKCE off: no code_challenge in the URL",
                  "code_challenge" not in q and "code_challenge_method" not in q,
                  "no code_challenge(_method)", sorted(q))
        # The mock (require_pkce) reports whether a challenge reached it.
        hop = self.e.browser.get(a["url"])
        self.c.eq("PKCE off: the mock saw no code_challenge (require_pkce -> invalid_request)",
                  "invalid_request", q1(hop.location or "", "error"))
        self.mock.config(require_pkce=False)
        try:
            a = self.authorize("c2", redirect_after=self.e.landing.url("/back"))
            before = self.code_exchanges()
            hops = self.e.browser.follow(a["url"])
            self.c.eq("PKCE off: hops", [302, 302, 200], [h.status for h in hops])
            self.c.eq("PKCE off: one exchange (the mock refuses a verifier without a challenge)",
                      before + 1, self.code_exchanges())
            self.c.eq("PKCE off: c2 active", "active", self.conn("c2").get("status"))
            r, t = self.token("c2")
            self.c.status("PKCE off: token", 200, r)
            self.token_works("PKCE off: token accepted at the mock", t.get("access_token"))
        finally:
            self.mock.config(require_pkce=True)

    def access_denied(self):
        self.put_conn("c4", "acme")
        self.mock.config(deny=True)
        try:
            before = self.code_exchanges()
            a = self.authorize("c4", redirect_after=self.e.landing.url("/back"))
            hops = self.e.browser.follow(a["url"])
            self.c.eq("access_denied: hops", [302, 302, 200], [h.status for h in hops])
            if len(hops) >= 2:
                self.c.eq("access_denied: redirect_after query",
                          {"connection": ["c4"], "status": ["error"], "error": ["access_denied"]},
                          query_of(hops[1].location or ""))
            self.c.eq("access_denied: no exchange", before, self.code_exchanges())
            self.not_active_with_error("access_denied", "c4", "access_denied")
            # Without redirect_after the browser sees a small page.
            a = self.authorize("c4")
            hops = self.e.browser.follow(a["url"])
            last = hops[-1]
            self.c.ok("access_denied without redirect_after: an error page",
                      last.status >= 400 and "text/html" in last.headers.get("content-type", "")
                      and "access_denied" in last.text(), "4xx HTML naming access_denied",
                      "HTTP %s %s" % (last.status, last.text()[:200]))
        finally:
            self.mock.config(deny=False)

    def issuer_checks(self):
        b = self.e.base()
        self.put_provider("acme-iss", issuer=b)
        self.put_conn("c5", "acme-iss")
        self.put_conn("c6", "acme-iss")
        # Right iss (RFC 9207): accepted.
        self.mock.config(send_iss=True)
        a = self.authorize("c6")
        hops = self.e.browser.follow(a["url"])
        self.c.eq("right iss on the redirect", b, q1(hops[0].location or "", "iss"))
        self.c.eq("right iss: Connected page", 200, hops[-1].status)
        self.c.eq("right iss: c6 active", "active", self.conn("c6").get("status"))
        # Wrong iss: mix-up defence.
        self.mock.config(issuer="https://evil.example", send_iss=False)
        try:
            before = self.code_exchanges()
            a = self.authorize("c5", redirect_after=self.e.landing.url("/back"))
            hops = self.e.browser.follow(a["url"])
            self.c.eq("wrong iss on the redirect", "https://evil.example",
                      q1(hops[0].location or "", "iss"))
            if len(hops) >= 2:
                self.c.eq("wrong iss: redirect_after says error",
                          {"connection": ["c5"], "status": ["error"], "error": ["issuer_mismatch"]},
                          query_of(hops[1].location or ""))
            self.c.eq("wrong iss: no code exchange", before, self.code_exchanges())
            self.not_active_with_error("wrong iss", "c5", "issuer_mismatch", "evil.example")
        finally:
            self.mock.config(issuer=None)
        # RFC 9207: a provider whose metadata advertises
        # authorization_response_iss_parameter_supported (the mock does
        # while send_iss is on) must send iss; a response without it is
        # refused like a wrong one.
        self.mock.config(send_iss=True)
        try:
            # Endpoints left out, so they (and the flag) are discovered.
            r = self.put_provider("acme-iss-req", issuer=b, authorize_url=None, token_url=None,
                                  revoke_url=None)
            self.c.eq("iss advertised: stored with the provider", True,
                      (r.json() or {}).get("authorization_response_iss_parameter_supported"))
        finally:
            self.mock.config(send_iss=False)
        self.put_conn("c5b", "acme-iss-req")
        before = self.code_exchanges()
        a = self.authorize("c5b", redirect_after=self.e.landing.url("/back"))
        hops = self.e.browser.follow(a["url"])
        self.c.eq("missing iss: none on the redirect", None, q1(hops[0].location or "", "iss"))
        if len(hops) >= 2:
            self.c.eq("missing iss: redirect_after says error",
                      {"connection": ["c5b"], "status": ["error"], "error": ["issuer_mismatch"]},
                      query_of(hops[1].location or ""))
        self.c.eq("missing iss: no code exchange", before, self.code_exchanges())
        self.not_active_with_error("missing iss", "c5b", "issuer_mismatch", "has no iss")
        # The provider without the advertisement still accepts no iss
        # (acme-iss was stored while the mock did not advertise it).
        self.c.eq("iss not advertised: stored false", False,
                  self.e.g.client.get("/v1/providers/acme-iss").json()
                  .get("authorization_response_iss_parameter_supported"))

    def rejected_code(self):
        """A forged code: the mock answers invalid_grant for real."""
        self.put_conn("c7", "acme")
        a = self.authorize("c7", redirect_after=self.e.landing.url("/back"))
        hops = self.e.browser.follow(a["url"], max_hops=1)
        cb = urllib.parse.urljoin(hops[0].url, hops[0].location)
        forged = with_param(cb, "code", secrets.token_urlsafe(30))
        before = self.counters()
        hops = self.e.browser.follow(forged)
        after = self.counters()
        self.c.eq("forged code: one exchange attempt", 1,
                  after["token_requests"]["authorization_code"]
                  - before["token_requests"]["authorization_code"])
        self.c.eq("forged code: the mock said invalid_grant", 1,
                  after["errors"]["invalid_grant"] - before["errors"]["invalid_grant"])
        self.c.eq("forged code: redirect_after says error",
                  {"connection": ["c7"], "status": ["error"], "error": ["invalid_grant"]},
                  query_of(hops[0].location or ""))
        self.not_active_with_error("forged code", "c7", "invalid_grant")
        # A rejected code uses up its state too.
        hop = self.e.browser.get(cb)
        self.bad_state_page("genuine callback after a rejected exchange", hop)
        # The knob: invalid_grant on the exchange of a genuine code.
        self.mock.config(fault="invalid_grant", fault_count=1, fault_on="token")
        a = self.authorize("c7", redirect_after=self.e.landing.url("/back"))
        hops = self.e.browser.follow(a["url"])
        self.c.eq("invalid_grant knob: redirect_after says error", ["invalid_grant"],
                  query_of(hops[1].location if len(hops) > 1 else "").get("error"))
        self.not_active_with_error("invalid_grant knob", "c7", "invalid_grant")

    def provider_down(self):
        m2 = self.e.mock2
        self.put_provider("down", mock=m2, revoke_url=None)
        self.put_conn("c8", "down")
        a = self.authorize("c8", redirect_after=self.e.landing.url("/back"))
        hops = self.e.browser.follow(a["url"], max_hops=1)
        self.c.eq("provider down: /authorize answered first", 302, hops[0].status)
        cb = urllib.parse.urljoin(hops[0].url, hops[0].location)
        self.c.eq("mock2 stopped", 0, m2.stop())
        hop = self.e.browser.get(cb)
        self.c.eq("provider down: 302 to redirect_after", 302, hop.status)
        q = query_of(hop.location or "")
        self.c.eq("provider down: status=error", ["error"], q.get("status"))
        self.c.ok("provider down: an error code", bool(q.get("error")), "error=...", q)
        j = self.not_active_with_error("provider down", "c8", (q.get("error") or [None])[0])
        msg = ((j.get("last_error") or {}).get("message") or "").lower()
        self.c.ok("provider down: last_error says the exchange failed",
                  "exchange" in msg or "connect" in msg or "reach" in msg,
                  "a message about the failed exchange", msg)
        hop = self.e.browser.get(cb)
        self.bad_state_page("provider down: the state was consumed", hop)

    def malformed_lifetime(self):
        """A code exchange answered with a token but an unusable expires_in
        (false): a malformed answer, not a token that never expires."""
        self.put_conn("c-life", "acme")
        self.mock.config(expires_in=0, extra={"expires_in": False})
        try:
            a = self.authorize("c-life", redirect_after=self.e.landing.url("/back"))
            hops = self.e.browser.follow(a["url"])
        finally:
            self.mock.config(expires_in=3600, extra={})
        self.c.eq("malformed expires_in: redirect_after says error",
                  {"connection": ["c-life"], "status": ["error"], "error": ["invalid_response"]},
                  query_of(hops[1].location if len(hops) > 1 else ""))
        j = self.not_active_with_error("malformed expires_in", "c-life", "invalid_response",
                                       mentions="expires_in")
        self.c.eq("malformed expires_in: no expiry stored", None, j.get("expires_at"))

    def realm_and_page(self):
        """realmId kept in extra; no redirect_after -> 200 Connected page."""
        self.put_conn("c9", "acme")
        self.mock.config(realm_id="9130-3571-42")
        try:
            a = self.authorize("c9")
            hops = self.e.browser.follow(a["url"])
        finally:
            self.mock.config(realm_id=None)
        self.c.eq("realmId on the redirect", "9130-3571-42", q1(hops[0].location or "", "realmId"))
        last = hops[-1]
        self.c.eq("no redirect_after: hops", [302, 200], [h.status for h in hops])
        self.c.ok("Connected page is HTML", "text/html" in last.headers.get("content-type", ""),
                  "text/html", last.headers.get("content-type"))
        self.c.ok("Connected page says Connected", "Connected" in last.text(),
                  "'Connected'", last.text()[:300])
        j = self.conn("c9")
        self.c.eq("c9 active", "active", j.get("status"))
        self.c.eq("c9 extra.realmId", "9130-3571-42", (j.get("extra") or {}).get("realmId"))
        r, t = self.token("c9")
        self.c.eq("c9 token extra.realmId", "9130-3571-42", (t.get("extra") or {}).get("realmId"))
        self.c.ok("c9 extra holds no OAuth parameters",
                  not set(j.get("extra") or {}) & {"code", "state", "iss"},
                  "no code/state/iss", sorted(j.get("extra") or {}))

    def default_redirect_uri(self):
        """Without the provider's redirect_uri: GRANTD_PUBLIC_URL (trailing
        slashes dropped) + /oauth/callback."""
        g2 = self.e.g2
        self.put_provider("nouri", g=g2, redirect_uri=None)
        self.put_conn("d1", "nouri", g=g2)
        a = self.authorize("d1", g=g2)
        self.c.eq("redirect_uri from --public-url", ["http://127.0.0.1:1/base/oauth/callback"],
                  query_of(a.get("url", "")).get("redirect_uri"))

    def expired_start(self):
        """Authorize on g2 (--state-ttl 10) and get the mock's redirect now;
        the callback is made at the end (expired_finish)."""
        g2 = self.e.g2
        self.put_provider("acme", g=g2)
        self.put_conn("e1", "acme", g=g2)
        a = self.authorize("e1", g=g2)
        self.expired_t0 = time.monotonic()
        exp = a.get("expires_at") or ""
        hops = self.e.browser.follow(a["url"], max_hops=1)
        self.expired_cb = urllib.parse.urljoin(hops[0].url, hops[0].location)
        self.c.ok("expired: the callback goes to g2",
                  self.expired_cb.startswith(self.e.callback(g2)), self.e.callback(g2),
                  self.expired_cb.split("?")[0])
        self.c.ok("expired: expires_at given", bool(exp), "a time", exp)

    def expired_finish(self):
        left = STATE_TTL_S + 1.5 - (time.monotonic() - self.expired_t0)
        if left > 0:
            time.sleep(left)  # not an assertion: only makes the state old
        before = self.code_exchanges()
        hop = self.e.browser.get(self.expired_cb)
        self.bad_state_page("expired state", hop)
        self.c.eq("expired state makes no exchange", before, self.code_exchanges())
        self.c.eq("e1 still pending", "pending", self.conn("e1", self.e.g2).get("status"))

    def url_encoding(self):
        """The provider's authorize_url query is kept; scopes joined with the
        provider's separator; authorize_params and the request's params
        added; everything percent-encoded (parsing gives back the values)."""
        b = self.e.base()
        self.put_provider("acme-enc", authorize_url=b + "/authorize?tenant=a%20b&x=1",
                          scopes=["read:all", "a/b"], scope_separator=",",
                          authorize_params={"prompt": "consent"})
        self.put_conn("c12", "acme-enc")
        hint = "\u00e4+b@example.com &x=1#frag"
        a = self.authorize("c12", params={"login_hint": hint})
        url = a.get("url", "")
        q = query_of(url)
        for k, v in (("tenant", "a b"), ("x", "1"), ("scope", "read:all,a/b"),
                     ("prompt", "consent"), ("login_hint", hint),
                     ("redirect_uri", self.e.callback())):
            self.c.eq("encoded authorize URL: %s" % k, [v], q.get(k))
        self.c.ok("encoded authorize URL: no raw space, '#' or non-ASCII",
                  not re.search(r"[ #\x80-\uffff]", url), "a clean URL", url)
        hops = self.e.browser.follow(url)
        self.c.eq("encoded authorize URL: flow completes", [302, 200], [h.status for h in hops])
        self.c.eq("c12 active", "active", self.conn("c12").get("status"))

    def callback_limits(self):
        """The public endpoint's limits: oversized query, repeated state;
        unknown states are counted in /metrics."""
        def bad_state_metric():
            r = self.api.get("/metrics")
            m = re.search(r"^grantd_callback_bad_state_total(?:\{\})? (\d+)", r.text(), re.M)
            return int(m.group(1)) if m else 0
        before = bad_state_metric()
        st = secrets.token_urlsafe(32)
        hop = self.e.browser.get(self.e.callback() + "?code=x&state=" + st)
        self.bad_state_page("unknown state (metrics)", hop)
        self.c.eq("unknown state counted in grantd_callback_bad_state_total", before + 1,
                  bad_state_metric())
        hop = self.e.browser.get(self.e.callback() + "?code=x&state=%s&state=%s" % (st, st))
        self.bad_state_page("repeated state", hop)
        hop = self.e.browser.get(self.e.callback() + "?code=x&state=%s&pad=%s" % (st, "a" * 5000))
        self.c.eq("oversized callback query refused", 414, hop.status)
        self.c.ok("oversized callback query: HTML page",
                  "text/html" in hop.headers.get("content-type", ""), "text/html",
                  hop.headers.get("content-type"))

    def deleted_during_flow(self):
        """The connection is deleted between /authorize and the callback: no
        code exchange, no success, nothing re-created."""
        self.put_conn("c13", "acme")
        a = self.authorize("c13", redirect_after=self.e.landing.url("/back"))
        hops = self.e.browser.follow(a["url"], max_hops=1)
        cb = urllib.parse.urljoin(hops[0].url, hops[0].location)
        self.c.status("delete c13 mid-flow", 200, self.api.delete("/v1/connections/c13"))
        before = self.code_exchanges()
        hop = self.e.browser.get(cb)
        self.c.ok("deleted mid-flow: not a success",
                  "status=active" not in (hop.location or "") and hop.status != 200,
                  "an error answer", "HTTP %s %s" % (hop.status, hop.location))
        self.c.eq("deleted mid-flow: no code exchange", before, self.code_exchanges())
        self.c.status("deleted mid-flow: c13 stays gone", 404, self.api.get("/v1/connections/c13"))

    def reauth_denied_keeps_active(self):
        """A failed re-authorization of an active connection records
        last_error but keeps the working grant (connect_flow.c's contract)."""
        at = self.token("c6")[1].get("access_token")
        self.mock.config(deny=True)
        try:
            a = self.authorize("c6")
            self.e.browser.follow(a["url"])
        finally:
            self.mock.config(deny=False)
        j = self.conn("c6")
        self.c.eq("re-auth denied: c6 stays active", "active", j.get("status"))
        self.c.eq("re-auth denied: last_error recorded", "access_denied",
                  (j.get("last_error") or {}).get("code"))
        self.c.ok("re-auth denied: same token served", self.token("c6")[1].get("access_token") == at,
                  "the same token", "another one")

    # --- discovery -------------------------------------------------------
    def discovery(self):
        b = self.e.base()
        before = self.counters()["requests"]["metadata"]
        r = self.api.put("/v1/providers/disc", json_body={
            "issuer": b, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "scopes": ["read"], "redirect_uri": self.e.callback()})
        self.c.status("discovery: PUT with only issuer", 200, r)
        j = r.json() or {}
        self.c.eq("discovery: authorize_url", b + "/authorize", j.get("authorize_url"))
        self.c.eq("discovery: token_url", b + "/token", j.get("token_url"))
        self.c.eq("discovery: revoke_url", b + "/revoke", j.get("revoke_url"))
        self.c.eq("discovery: issuer kept", b, j.get("issuer"))
        self.c.ok("discovery: PKCE methods filled",
                  "S256" in (j.get("code_challenge_methods_supported") or []),
                  "S256 listed", j.get("code_challenge_methods_supported"))
        self.c.ok("discovery: client auth methods filled",
                  "client_secret_basic" in (j.get("token_endpoint_auth_methods_supported") or []),
                  "client_secret_basic listed", j.get("token_endpoint_auth_methods_supported"))
        self.c.ok("discovery: the mock served metadata",
                  self.counters()["requests"]["metadata"] > before, "> %d" % before,
                  self.counters()["requests"]["metadata"])
        g = self.api.get("/v1/providers/disc").json() or {}
        self.c.eq("discovery: stored", b + "/token", g.get("token_url"))
        # The discovered provider works for a whole flow.
        self.put_conn("c10", "disc")
        a = self.authorize("c10")
        hops = self.e.browser.follow(a["url"])
        self.c.eq("discovered provider: flow completes", [302, 200], [h.status for h in hops])
        self.c.eq("discovered provider: c10 active", "active", self.conn("c10").get("status"))
        # Explicit fields win.
        r = self.api.put("/v1/providers/disc2", json_body={
            "issuer": b, "client_id": CLIENT_ID, "revoke_url": b + "/my-revoke"})
        self.c.status("discovery with an explicit revoke_url", 200, r)
        j = r.json() or {}
        self.c.eq("explicit revoke_url wins", b + "/my-revoke", j.get("revoke_url"))
        self.c.eq("other endpoints still discovered", b + "/token", j.get("token_url"))
        # A mismatching issuer: 502, nothing stored.
        self.mock.config(issuer="https://other.example")
        try:
            r = self.api.put("/v1/providers/disc-bad", json_body={
                "issuer": b, "client_id": CLIENT_ID})
            self.c.status("mismatching issuer: 502", 502, r)
            self.c.eq("mismatching issuer: discovery_failed", "discovery_failed",
                      (r.json() or {}).get("error"))
            self.c.status("mismatching issuer: nothing stored", 404,
                          self.api.get("/v1/providers/disc-bad"))
            r = self.api.put("/v1/providers/disc", json_body={
                "issuer": b, "client_id": "someone-else"})
            self.c.status("mismatching issuer on replace: 502", 502, r)
            g = self.api.get("/v1/providers/disc").json() or {}
            self.c.eq("failed replace keeps the old provider", CLIENT_ID, g.get("client_id"))
            self.c.eq("failed replace keeps the old endpoints", b + "/token", g.get("token_url"))
        finally:
            self.mock.config(issuer=None)

    # --- revocation ------------------------------------------------------
    def revocation(self):
        # c1 (connected above): revoke refresh then access token.
        at = self.token("c1")[1].get("access_token")
        self.token_works("before revoke: token accepted", at)
        before = self.counters()
        r = self.api.delete("/v1/connections/c1?revoke=true")
        self.c.status("DELETE ?revoke=true", 200, r)
        j = r.json() or {}
        self.c.eq("DELETE answer: deleted", True, j.get("deleted"))
        rv = j.get("revocation") or {}
        self.c.eq("revocation of the refresh token", True, (rv.get("refresh_token") or {}).get("revoked"))
        self.c.eq("revocation of the access token", True, (rv.get("access_token") or {}).get("revoked"))
        after = self.counters()
        self.c.eq("the mock got two revoke requests", 2,
                  after["requests"]["revoke"] - before["requests"]["revoke"])
        self.c.ok("the mock revoked the grant", after["revocations"] > before["revocations"] and
                  after["families_revoked"] > before["families_revoked"],
                  "revocations and families_revoked up",
                  (after["revocations"] - before["revocations"],
                   after["families_revoked"] - before["families_revoked"]))
        self.token_works("revoked token refused at /resource", at, expect=401)
        ir = self.mock.client.post("/introspect", form={"token": at})
        self.c.eq("revoked token inactive at /introspect", False, (ir.json() or {}).get("active"))
        self.c.status("c1 gone", 404, self.api.get("/v1/connections/c1"))
        self.c.eq("no trace of the access token in the data dir", [],
                  H.find_in_dir(self.e.g.data_dir, [at]))

        # Order: refresh token first. The first revoke request fails (500):
        # it must be the refresh token's.
        self.mock.config(fault="500", fault_count=1, fault_on="revoke")
        try:
            at3 = self.token("c3")[1].get("access_token")
            r = self.api.delete("/v1/connections/c3?revoke=true")
            self.c.status("DELETE c3 ?revoke=true", 200, r)
            rv = (r.json() or {}).get("revocation") or {}
            self.c.eq("first revoke request is the refresh token's (it got the 500)",
                      (False, 500), ((rv.get("refresh_token") or {}).get("revoked"),
                                     (rv.get("refresh_token") or {}).get("http_status")))
            self.c.eq("then the access token's", True,
                      (rv.get("access_token") or {}).get("revoked"))
            self.token_works("c3 access token revoked", at3, expect=401)
        finally:
            self.mock.config(fault="none")

        # Without revoke: no revoke request, the token stays valid there.
        at2 = self.token("c2")[1].get("access_token")
        before = self.counters()["requests"]["revoke"]
        r = self.api.delete("/v1/connections/c2")
        self.c.status("DELETE without revoke", 200, r)
        self.c.eq("DELETE without revoke: revocation null", None, (r.json() or {}).get("revocation"))
        self.c.eq("DELETE without revoke: no revoke request", before,
                  self.counters()["requests"]["revoke"])
        self.token_works("DELETE without revoke: token still valid at the mock", at2)
        self.c.status("c2 gone", 404, self.api.get("/v1/connections/c2"))

    def revocation_provider_down(self):
        """mock2 is stopped by now (provider_down): deletion still happens
        and the answer says revocation failed."""
        port = closed_port()
        b = "https://localhost:%d" % port
        r = self.api.put("/v1/providers/gone", json_body={
            "token_url": b + "/token", "revoke_url": b + "/revoke", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET})
        self.c.status("PUT provider gone", 200, r)
        r = self.api.put("/v1/connections/c11", json_body={
            "tenant": "t-1", "provider": "gone", "grant": "refresh_token",
            "access_token": "imported-at-" + secrets.token_urlsafe(8),
            "refresh_token": "imported-rt-" + secrets.token_urlsafe(8), "expires_in": 3600})
        self.c.status("import c11", 200, r)
        r = self.api.delete("/v1/connections/c11?revoke=true")
        self.c.status("DELETE ?revoke=true with the provider down", 200, r)
        j = r.json() or {}
        self.c.eq("provider down: deleted anyway", True, j.get("deleted"))
        rv = j.get("revocation") or {}
        for k in ("refresh_token", "access_token"):
            part = rv.get(k) or {}
            self.c.ok("provider down: %s revocation reported failed" % k,
                      part.get("revoked") is False and bool(part.get("error")),
                      "revoked false with an error", part)
        self.c.status("c11 gone", 404, self.api.get("/v1/connections/c11"))


def main():
    checks = H.ApiChecks()
    tmp = H.test_tmpdir("connect-flow-")
    env = None
    try:
        env = Env(tmp)
        checks.secret(env.g.api_key, env.g2.api_key, CLIENT_SECRET)
        t = ConnectFlowTest(env, checks)
        steps = [t.expired_start, t.full_flow_pkce, t.replayed_state, t.unknown_state,
                 t.tampered_state, t.pkce_off, t.access_denied, t.issuer_checks,
                 t.rejected_code, t.provider_down, t.malformed_lifetime, t.realm_and_page, t.default_redirect_uri,
                 t.url_encoding, t.callback_limits, t.deleted_during_flow,
                 t.reauth_denied_keeps_active,
                 t.discovery, t.revocation, t.revocation_provider_down, t.expired_finish]
        for step in steps:
            try:
                step()
            except Exception:  # noqa: BLE001 - counted, the next step runs
                checks.ok("step %s ran" % step.__name__, False, "no exception",
                          traceback.format_exc())
    except Exception:  # noqa: BLE001
        checks.ok("set-up", False, "no exception", traceback.format_exc())
    finally:
        if env is not None:
            env.close()
            for p in (env.g, env.g2):
                if checks.failed:
                    print("--- grantd log %s (tail) ---\n%s" % (p.log_path, checks.scrub(p.log()[-3000:])))
    rc = checks.finish()
    if rc == 0:
        H.cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
