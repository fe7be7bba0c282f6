#!/usr/bin/env python3
"""Integration test: the provider catalog.

Start-up: a --catalog-dir file that does not validate (unknown field, bad
URL, JSON syntax), is not a regular file or is too large makes `grantd
serve` exit 2 with one line naming the file (and the field), before it
writes anything; a good directory adds and overrides templates.

API: GET /v1/catalog and /v1/catalog/{name}; PUT /v1/providers/{name}
with "template": explicit fields win, the provider remembers the template's
name, version and which fields came from it; unknown template (422 with
close names), a grant the template lacks (422), a connection whose grant
the provider does not support (422).

URL variables: a shopify provider whose URLs point at the mock (TLS, on
loopback, opted in as an operator would) under /s/{shop}/: bad, missing
and unknown variables are 422 naming the variable and nothing is stored;
two connections with their own shop each reach the mock under their own
path for the authorize redirect, the code exchange, the refresh and the
revocation (the mock's `prefixed` counters). Provider-level variables
(zoho's data centre), an issuer-based template without its variables, an
undeclared or malformed placeholder, and an expanded host the endpoint
policy forbids.

Response shapes (Slack, the mock answering the documented shapes through
its `extra` knob): slack-user serves the user token nested under
authed_user and keeps the rest in extra; slack serves the top-level bot
token, or the user token for a connection with token_member; HTTP 200 with "ok": false is the error it names (ok_false without
one, invalid_code -> needs_reauth). Salesforce (no expires_in: the
template's 7200 s default expires and schedules the token; instance_url and
id kept) and QuickBooks (realmId from the callback,
x_refresh_token_expires_in as the refresh token's lifetime).
"""
import json
import os
import shutil
import sys
import time
import urllib.parse
from datetime import datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, GrantdProc, MockProvider, ServeProc, last_error,  # noqa: E402
                     make_certs, rand_key, rand_master_key, test_tmpdir)
from test_connect_flow import Browser  # noqa: E402

T = ApiChecks()

ACME = {
    "name": "acme", "display_name": "Acme", "version": 3,
    "docs": "https://acme.example/docs/oauth",
    "grants": ["authorization_code", "refresh_token"],
    "authorize_url": "https://acme.example/oauth/authorize",
    "token_url": "https://acme.example/oauth/token",
    "client_auth": "basic", "scopes": ["read"], "pkce": True,
}


def write(d, name, obj):
    with open(os.path.join(d, name), "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


def start_fails(work, label, cat_dir, mentions):
    data = os.path.join(work, "data-" + label.replace(" ", "-"))
    g = ServeProc(work, data, api_key=rand_key(), master_key=rand_master_key(),
                  args=["--catalog-dir", cat_dir])
    g.spawn()
    rc = g.wait_exit()
    T.eq(label + ": exit status", 2, rc)
    log = g.log()
    for m in mentions:
        T.ok(label + ": message names %r" % m, m in log, m, log[-400:])
    T.ok(label + ": one line", log.strip().count("\n") == 0, "one line", log[-400:])
    T.ok(label + ": nothing written", not os.path.exists(data), "no data directory", "created")


def test_startup_errors(work):
    d = os.path.join(work, "bad1")
    os.makedirs(d)
    write(d, "acme.json", dict(ACME, colour="red"))
    start_fails(work, "unknown field", d, [os.path.join(d, "acme.json"), "field 'colour'"])

    d = os.path.join(work, "bad2")
    os.makedirs(d)
    write(d, "acme.json", dict(ACME, token_url="ftp://acme.example/token"))
    start_fails(work, "bad URL", d, ["acme.json", "field 'token_url'"])

    d = os.path.join(work, "bad3")
    os.makedirs(d)
    write(d, "acme.json", "{\"name\": \"acme\",")
    start_fails(work, "JSON syntax", d, ["acme.json", "line 1"])

    d = os.path.join(work, "bad4")
    os.makedirs(d)
    os.mkfifo(os.path.join(d, "fifo.json"))
    start_fails(work, "FIFO", d, ["fifo.json", "regular"])

    d = os.path.join(work, "bad5")
    os.makedirs(d)
    write(d, "big.json", " " * (65 * 1024))
    start_fails(work, "too large", d, ["big.json", "64 KiB"])

    start_fails(work, "missing dir", os.path.join(work, "nope"), ["nope"])


def test_api(work):
    d = os.path.join(work, "good")
    os.makedirs(d)
    write(d, "acme.json", ACME)
    write(d, "google.json", {
        "name": "google", "display_name": "Google (ours)", "version": 9,
        "docs": "https://developers.google.com/identity/protocols/oauth2/web-server",
        "grants": ["client_credentials"], "token_url": "https://oauth2.example/token"})
    write(d, "README.txt", "not a template")
    g = ServeProc(work, os.path.join(work, "data-api"), api_key=rand_key(),
                  master_key=rand_master_key(), args=["--catalog-dir", d]).start()
    c = g.client
    try:
        r = c.get("/v1/catalog")
        T.status("GET /v1/catalog", 200, r)
        items = (r.json() or {}).get("templates", [])
        names = [t.get("name") for t in items]
        T.ok("at least 40 built-in + acme", len(names) >= 41, ">= 41", len(names))
        T.eq("sorted by name", sorted(names), names)
        T.ok("acme from --catalog-dir listed", "acme" in names, "acme", names)
        by = {t["name"]: t for t in items}
        T.eq("google overridden by --catalog-dir", "Google (ours)", by.get("google", {}).get("display_name"))
        T.eq("summary members", sorted(["name", "display_name", "version", "grants", "docs", "variables"]),
             sorted(by.get("zoho", {}).keys()))
        T.eq("zoho's variables", ["domain"], by.get("zoho", {}).get("variables"))
        T.ok("every template cites https docs",
             all(str(t.get("docs", "")).startswith("https://") for t in items), "https://...", "")

        r = c.get("/v1/catalog/salesforce")
        T.status("GET /v1/catalog/salesforce", 200, r)
        j = r.json() or {}
        T.eq("salesforce default_expires_in", 7200, j.get("default_expires_in"))
        T.ok("salesforce notes", isinstance(j.get("notes"), str), "notes", j.get("notes"))
        T.error("GET /v1/catalog/salesforc", 404, c.get("/v1/catalog/salesforc"),
                code="not_found", mentions="salesforce")

        # A provider from a template; explicit fields win.
        r = c.put("/v1/providers/acme-1", {"template": "acme", "client_id": "cid",
                                           "client_secret": "shh", "scopes": ["write"],
                                           "pkce": False})
        T.status("PUT provider from template", 200, r)
        j = r.json() or {}
        T.eq("template token_url", ACME["token_url"], j.get("token_url"))
        T.eq("template client_auth", "basic", j.get("client_auth"))
        T.eq("explicit scopes win", ["write"], j.get("scopes"))
        T.eq("explicit pkce wins", False, j.get("pkce"))
        T.eq("grants from template", ACME["grants"], j.get("grants"))
        t = j.get("template") or {}
        T.eq("template name", "acme", t.get("name"))
        T.eq("template version", 3, t.get("version"))
        T.eq("fields from the template", ["authorize_url", "token_url", "client_auth"],
             t.get("fields"))
        T.ok("client_secret not shown", "shh" not in r.text(), "no secret", "secret")
        r = c.get("/v1/providers/acme-1")
        T.eq("GET keeps template info", t, (r.json() or {}).get("template"))

        r = c.put("/v1/providers/dbx", {"template": "dropbox", "client_id": "cid",
                                        "client_secret": "s"})
        T.status("PUT dropbox", 200, r)
        T.eq("dropbox token_access_type", {"token_access_type": "offline"},
             (r.json() or {}).get("authorize_params"))
        r = c.put("/v1/providers/plain", {"token_url": "https://x.example/t"})
        T.eq("plain provider: template null", None, (r.json() or {}).get("template"))

        T.error("unknown template", 422, c.put("/v1/providers/x", {"template": "gogle", "client_id": "i"}),
                code="unknown_template", mentions="google")
        T.error("unknown template, nothing close", 422,
                c.put("/v1/providers/x", {"template": "zzzzzzzzzz", "client_id": "i"}),
                code="unknown_template", mentions="GET /v1/catalog")
        T.error("template + conflicting grant", 422,
                c.put("/v1/providers/x", {"template": "acme", "client_id": "i",
                                          "grants": ["password"]}),
                code="grant_conflict", mentions="password")
        T.error("template + unknown field", 422,
                c.put("/v1/providers/x", {"template": "acme", "colour": "red"}),
                code="unknown_field", mentions="colour")
        T.error("issuer-based template without its variables", 422,
                c.put("/v1/providers/x", {"template": "okta", "client_id": "i"}),
                code="missing_variable", mentions="domain")
        T.status("nothing stored for refused PUTs", 404, c.get("/v1/providers/x"))

        # Connections: the provider's grants.
        T.error("grant the provider lacks", 422,
                c.put("/v1/connections/c1", {"tenant": "t", "provider": "acme-1",
                                             "grant": "client_credentials"}),
                code="grant_not_supported", mentions="client_credentials")
        T.status("connection not stored", 404, c.get("/v1/connections/c1"))
        r = c.put("/v1/connections/c2", {"tenant": "t", "provider": "acme-1",
                                         "grant": "authorization_code"})
        T.status("supported grant", 200, r)
        r = c.put("/v1/connections/c3", {"tenant": "t", "provider": "acme-1",
                                         "grant": "refresh_token", "refresh_token": "rt"})
        T.status("import into an authorization_code provider", 200, r)
    finally:
        T.eq("grantd stops cleanly", 0, g.stop())


def test_vars(work):
    certs = make_certs(os.path.join(work, "pki"))
    mock = MockProvider(work, certs).start()
    g = GrantdProc(work, data_dir=os.path.join(work, "data-vars"), ca_file=certs.ca,
                   master_key=rand_master_key()).start()
    api = g.client
    base = "https://localhost:%d/s/{shop}" % mock.port
    try:
        r = api.put("/v1/providers/shop", json_body={
            "template": "shopify", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke", "grants": ["authorization_code", "password"],
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.error("shopify + password grant", 422, r, code="grant_conflict", mentions="password")
        r = api.put("/v1/providers/shop", json_body={
            "template": "shopify", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT shopify provider (URLs at the mock)", 200, r)
        j = r.json() or {}
        T.eq("provider keeps the placeholder", base + "/token", j.get("token_url"))
        T.eq("provider's variables", {"shop": "dns_label"}, (j.get("template") or {}).get("vars"))

        def conn(cid, vars_):
            body = {"tenant": "t", "provider": "shop", "grant": "authorization_code"}
            if vars_ is not None:
                body["vars"] = vars_
            return api.put("/v1/connections/" + cid, json_body=body)

        for bad in ("evil.com/", "evil.com", "a@b", "a:1", "a/b", "%2e%2e", "..", "-x", "x-",
                    "", "a b", "a?b", "a#b", "a" * 64, "é"):
            T.error("shop %r" % bad, 422, conn("bad", {"shop": bad}), code="invalid_variable",
                    mentions="shop")
        T.error("shop not a string", 422, conn("bad", {"shop": 7}), code="invalid_variable",
                mentions="shop")
        T.error("vars not an object", 422, conn("bad", ["acme"]), code="invalid_field",
                mentions="vars")
        T.error("missing shop", 422, conn("bad", None), code="missing_variable", mentions="shop")
        T.error("unknown variable", 422, conn("bad", {"shop": "acme", "tenant": "x"}),
                code="unknown_variable", mentions="tenant")
        T.status("nothing stored for refused connections", 404, api.get("/v1/connections/bad"))

        browser = Browser(certs.ssl_context())
        for cid, shop in (("c-acme", "acme"), ("c-beta", "beta-2")):
            r = conn(cid, {"shop": shop})
            T.status("PUT %s" % cid, 200, r)
            T.eq("%s shows its vars" % cid, {"shop": shop}, (r.json() or {}).get("vars"))
            a = api.post("/v1/connections/%s/authorize" % cid, json_body={}).json() or {}
            u = urllib.parse.urlsplit(a.get("url", ""))
            T.eq("%s authorize URL path" % cid, "/s/%s/authorize" % shop, u.path)
            hops = browser.follow(a.get("url", ""))
            T.eq("%s connect flow hops" % cid, [302, 200], [h.status for h in hops])
            T.eq("%s active" % cid, "active",
                 (api.get("/v1/connections/" + cid).json() or {}).get("status"))
            T.status("%s refresh" % cid, 200, api.post("/v1/connections/%s/refresh" % cid))
            T.status("%s delete + revoke" % cid, 200,
                     api.delete("/v1/connections/%s?revoke=true" % cid))
        got = mock.counters().get("prefixed", {})
        for shop in ("acme", "beta-2"):
            T.eq("mock saw %s's authorize" % shop, 1, got.get(shop + "/authorize"))
            T.eq("mock saw %s's code exchange and refresh" % shop, 2, got.get(shop + "/token"))
            T.ok("mock saw %s's revocation" % shop, got.get(shop + "/revoke", 0) >= 1, ">= 1",
                 got.get(shop + "/revoke"))
        T.eq("no request outside a shop's path", 0,
             mock.counters().get("requests", {}).get("other"))

        # Provider-level variables.
        r = api.put("/v1/providers/zoho-eu", json_body={"template": "zoho", "client_id": "i",
                                                        "vars": {"domain": "zoho.eu"}})
        T.status("zoho with its data centre fixed", 200, r)
        j = r.json() or {}
        T.eq("zoho token_url", "https://accounts.zoho.eu/oauth/v2/token", j.get("token_url"))
        T.eq("zoho: no per-connection variable left", {}, (j.get("template") or {}).get("vars"))
        T.status("zoho-eu connection needs no vars", 200, api.put(
            "/v1/connections/z1", json_body={"tenant": "t", "provider": "zoho-eu",
                                             "grant": "authorization_code"}))
        T.error("zoho domain outside the list", 422, api.put(
            "/v1/providers/zoho-x", json_body={"template": "zoho", "client_id": "i",
                                               "vars": {"domain": "evil.com"}}),
            code="invalid_variable", mentions="zohocloud.ca")
        T.status("zoho per connection", 200, api.put("/v1/providers/zoho-any", json_body={
            "template": "zoho", "client_id": "i"}))
        r = api.put("/v1/connections/z2", json_body={"tenant": "t", "provider": "zoho-any",
                                                     "grant": "authorization_code",
                                                     "vars": {"domain": "zohocloud.ca"}})
        T.status("zoho Canada connection", 200, r)
        a = api.post("/v1/connections/z2/authorize", json_body={}).json() or {}
        T.ok("zoho Canada authorize URL", a.get("url", "").startswith(
            "https://accounts.zohocloud.ca/oauth/v2/auth?"), "accounts.zohocloud.ca", a.get("url"))
        T.error("zoho unknown provider variable", 422, api.put(
            "/v1/providers/zoho-x", json_body={"template": "zoho", "client_id": "i",
                                               "vars": {"shop": "a"}}),
            code="unknown_variable", mentions="shop")
        T.error("vars without a template", 422, api.put(
            "/v1/providers/zoho-x", json_body={"token_url": "https://a.example/t",
                                               "vars": {"shop": "a"}}),
            code="unknown_field", mentions="vars")
        T.error("undeclared placeholder", 422, api.put(
            "/v1/providers/zoho-x", json_body={"token_url": "https://a.example/{shop}/t"}),
            code="invalid_field", mentions="{shop}")
        T.error("malformed placeholder", 422, api.put(
            "/v1/providers/zoho-x", json_body={"token_url": "https://a.example/{Shop}/t"}),
            code="invalid_field", mentions="token_url")
        T.error("placeholder beyond the template's", 422, api.put(
            "/v1/providers/zoho-x", json_body={"template": "shopify", "client_id": "i",
                                               "token_url": "https://{host}/t"}),
            code="invalid_field", mentions="{host}")
        T.status("nothing stored for refused providers", 404, api.get("/v1/providers/zoho-x"))

        # Microsoft: the tenant rule.
        T.status("PUT microsoft", 200, api.put("/v1/providers/ms", json_body={
            "template": "microsoft", "client_id": "i"}))
        for bad in ("evil.com/x", "a@b.com", "contoso.com:443", "common/..", "x"):
            T.error("tenant %r" % bad, 422, api.put("/v1/connections/ms1", json_body={
                "tenant": "t", "provider": "ms", "grant": "authorization_code",
                "vars": {"tenant": bad}}), code="invalid_variable", mentions="tenant")
        for good in ("common", "contoso.onmicrosoft.com", "72f988bf-86f1-41af-91ab-2d7cd011db47"):
            T.status("tenant %r" % good, 200, api.put("/v1/connections/ms1", json_body={
                "tenant": "t", "provider": "ms", "grant": "authorization_code",
                "vars": {"tenant": good}}))

        # A host variable that names an address the endpoint policy forbids.
        T.status("PUT gitlab-self-managed", 200, api.put("/v1/providers/gl", json_body={
            "template": "gitlab-self-managed", "client_id": "i"}))
        T.error("host = link-local address", 422, api.put("/v1/connections/gl1", json_body={
            "tenant": "t", "provider": "gl", "grant": "authorization_code",
            "vars": {"host": "169.254.169.254"}}), code="endpoint_forbidden", mentions="token_url")
        T.status("host = a name", 200, api.put("/v1/connections/gl1", json_body={
            "tenant": "t", "provider": "gl", "grant": "authorization_code",
            "vars": {"host": "gitlab.example.com"}}))
        # The same guard for a refresh_url that takes the variable.
        T.status("PUT gitlab-self-managed with refresh_url", 200, api.put(
            "/v1/providers/gl2", json_body={
                "template": "gitlab-self-managed", "client_id": "i",
                "token_url": "https://gitlab.example.com/oauth/token",
                "revoke_url": "https://gitlab.example.com/oauth/revoke",
                "refresh_url": "https://{host}/oauth/token"}))
        T.error("refresh_url host = link-local address", 422, api.put(
            "/v1/connections/gl2", json_body={
                "tenant": "t", "provider": "gl2", "grant": "authorization_code",
                "vars": {"host": "169.254.169.254"}}), code="endpoint_forbidden",
            mentions="refresh_url")
        T.status("nothing stored for gl2", 404, api.get("/v1/connections/gl2"))
    finally:
        T.eq("grantd (vars) stops cleanly", 0, g.stop())
        mock.stop()


def rfc3339(v):
    """Seconds since the epoch of an RFC 3339 UTC time, or None."""
    if not isinstance(v, str):
        return None
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def test_shapes(work):
    certs = make_certs(os.path.join(work, "pki-shapes"))
    mock = MockProvider(work, certs).start()
    g = GrantdProc(work, data_dir=os.path.join(work, "data-shapes"), ca_file=certs.ca,
                   master_key=rand_master_key()).start()
    api = g.client
    base = "https://localhost:%d" % mock.port
    browser = Browser(certs.ssl_context())
    user_tok = "xoxp-" + rand_key(20)

    def provider(name, template):
        r = api.put("/v1/providers/" + name, json_body={
            "template": template, "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT %s (%s at the mock)" % (name, template), 200, r)
        return r.json() or {}

    def connect(cid, prov, **more):
        T.status("PUT " + cid, 200, api.put("/v1/connections/" + cid, json_body=dict(
            {"tenant": "t", "provider": prov, "grant": "authorization_code"}, **more)))
        a = api.post("/v1/connections/%s/authorize" % cid, json_body={}).json() or {}
        hops = browser.follow(a.get("url", ""))
        T.eq("%s connect flow hops" % cid, [302, 200], [h.status for h in hops])
        return a

    try:
        mock.config(extra={"ok": True, "app_id": "A1", "team": {"id": "T1"},
                           "authed_user": {"id": "U1", "scope": "users:read",
                                           "access_token": user_tok, "token_type": "user"}})
        j = provider("su", "slack-user")
        T.eq("slack-user token_member", "authed_user", j.get("token_member"))
        a = connect("su1", "su")
        T.ok("slack-user asks for user_scope", "user_scope=users%3Aread" in a.get("url", ""),
             "user_scope", a.get("url"))
        t = api.get("/v1/connections/su1/token").json() or {}
        T.eq("slack-user serves the nested user token", user_tok, t.get("access_token"))
        T.eq("slack-user token_type as sent", "user", t.get("token_type"))
        T.eq("slack-user scopes from authed_user", ["users:read"], t.get("scopes"))
        T.eq("team kept in extra", {"id": "T1"}, (t.get("extra") or {}).get("team"))
        v = api.get("/v1/connections/su1")
        T.ok("the user token is not in the connection view", user_tok not in v.text(),
             "absent", "present")
        T.eq("authed_user.id kept in the view", "U1",
             ((v.json() or {}).get("extra") or {}).get("authed_user", {}).get("id"))

        provider("sb", "slack")
        connect("sb1", "sb")
        connect("sb2", "sb")
        connect("sb3", "sb", token_member="authed_user")
        t = api.get("/v1/connections/sb3/token").json() or {}
        T.eq("a slack connection choosing the user token", user_tok, t.get("access_token"))
        T.eq("its token_member shown", "authed_user",
             (api.get("/v1/connections/sb3").json() or {}).get("token_member"))
        T.error("token_member outside its rule", 422, api.put("/v1/connections/sb4", json_body={
            "tenant": "t", "provider": "sb", "grant": "authorization_code",
            "token_member": "authed-user"}), code="invalid_field", mentions="token_member")
        t = api.get("/v1/connections/sb1/token").json() or {}
        T.ok("slack serves the top-level bot token",
             t.get("access_token") and t.get("access_token") != user_tok, "the mock's token",
             t.get("access_token"))
        T.eq("the user token stays in extra", user_tok,
             ((t.get("extra") or {}).get("authed_user") or {}).get("access_token"))

        # HTTP 200 with "ok": false, with and without an error member.
        mock.config(extra={"ok": False})
        r = api.post("/v1/connections/sb1/refresh")
        T.ok("ok false refresh is refused", r.status >= 400, ">= 400", r.status)
        c = api.get("/v1/connections/sb1").json() or {}
        T.eq("ok false without error: last_error", "ok_false", last_error(c).get("code"))
        T.eq("ok false without error: status", "error", c.get("status"))
        mock.config(extra={}, fault="error_with_200", fault_error="invalid_code", fault_count=1)
        T.ok("su1 has no refresh token (authed_user held none)",
             (api.get("/v1/connections/su1").json() or {}).get("has_refresh_token") is False)
        r = api.post("/v1/connections/sb2/refresh")
        c = api.get("/v1/connections/sb2").json() or {}
        T.eq("ok-false style invalid_code: last_error", "invalid_code", last_error(c).get("code"))
        T.eq("invalid_code: needs_reauth", "needs_reauth", c.get("status"))

        # Salesforce sends no expires_in: the template's default (7200 s)
        # schedules the refresh; instance_url and id are kept.
        mock.config(fault="none", expires_in=0,
                    extra={"instance_url": "https://acme.my.salesforce.com",
                           "id": "https://login.salesforce.com/id/00D/005"})
        provider("sf", "salesforce")
        t0 = time.time()
        connect("sf1", "sf")
        c = api.get("/v1/connections/sf1").json() or {}
        exp = rfc3339(c.get("expires_at"))
        T.ok("salesforce expires_at = now + 7200 s (template default)",
             exp is not None and t0 + 7200 - 5 <= exp <= time.time() + 7200 + 5,
             "about now + 7200", c.get("expires_at"))
        nra = rfc3339(c.get("next_refresh_at"))
        T.ok("salesforce refresh scheduled before expiry", nra is not None and exp is not None
             and t0 < nra < exp, "between now and expiry", c.get("next_refresh_at"))
        t = api.get("/v1/connections/sf1/token").json() or {}
        T.eq("salesforce instance_url kept", "https://acme.my.salesforce.com",
             (t.get("extra") or {}).get("instance_url"))
        T.eq("salesforce id kept", "https://login.salesforce.com/id/00D/005",
             (c.get("extra") or {}).get("id"))

        # A JSON token body (token_body json, as Notion documents): the code
        # exchange, the refresh and the revocation go as JSON objects.
        mock.config(expires_in=3600, extra={})
        before = mock.counters().get("json_bodies", 0)
        r = api.put("/v1/providers/js", json_body={
            "template": "notion", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT notion (at the mock)", 200, r)
        T.eq("notion token_body", "json", (r.json() or {}).get("token_body"))
        connect("js1", "js")
        T.status("js1 refresh", 200, api.post("/v1/connections/js1/refresh"))
        T.status("js1 delete + revoke", 200, api.delete("/v1/connections/js1?revoke=true"))
        T.ok("exchange, refresh and revocation sent as JSON",
             mock.counters().get("json_bodies", 0) - before >= 3, ">= 3 JSON bodies",
             mock.counters().get("json_bodies", 0) - before)
        # monday.com OAuth 2.1 (template version 2): PKCE required, the client
        # in the form body, rotating refresh tokens, an answer without
        # expires_in still scheduled (keep-alive), RFC 7009 revocation.
        mock.config(expires_in=0, extra={}, require_pkce=True, client_auth="post")
        r = api.put("/v1/providers/mo", json_body={
            "template": "monday", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT monday (at the mock)", 200, r)
        j = r.json() or {}
        T.eq("monday template version", 2, (j.get("template") or {}).get("version"))
        T.eq("monday grants", ["authorization_code", "refresh_token"], j.get("grants"))
        T.eq("monday token_body (form, RFC 6749)", "form", j.get("token_body"))
        a = connect("mo1", "mo")
        T.ok("monday asks with a S256 code_challenge",
             "code_challenge_method=S256" in a.get("url", ""), "S256", a.get("url"))
        c = api.get("/v1/connections/mo1").json() or {}
        T.eq("monday has a refresh token", True, c.get("has_refresh_token"))
        T.ok("monday without expires_in: a refresh is scheduled",
             rfc3339(c.get("next_refresh_at")) is not None, "a time", c.get("next_refresh_at"))
        T.status("mo1 refresh", 200, api.post("/v1/connections/mo1/refresh"))
        T.status("mo1 refresh with the rotated token", 200,
                 api.post("/v1/connections/mo1/refresh"))
        revoked = mock.counters().get("revocations", 0)
        T.status("mo1 delete + revoke", 200, api.delete("/v1/connections/mo1?revoke=true"))
        T.eq("monday revocation reached the mock", revoked + 1,
             mock.counters().get("revocations", 0))
        mock.config(require_pkce=False, client_auth="any")

        # Figma (template version 3): the code exchange at token_url, every
        # refresh at its own refresh_url (Basic auth, form body); Figma's
        # refresh answer has no new refresh token, so the stored one stays.
        mock.config(expires_in=3600, extra={}, client_auth="basic",
                    rotate_refresh_tokens=False, echo_refresh_token=False)
        r = api.put("/v1/providers/fg", json_body={
            "template": "figma", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/s/fg-token/token",
            "refresh_url": base + "/s/fg-refresh/token",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT figma (at the mock)", 200, r)
        j = r.json() or {}
        T.eq("figma template version", 3, (j.get("template") or {}).get("version"))
        T.eq("figma refresh_url shown", base + "/s/fg-refresh/token", j.get("refresh_url"))
        T.eq("figma client_auth", "basic", j.get("client_auth"))
        before = mock.counters().get("prefixed", {})
        connect("fg1", "fg")
        got = mock.counters().get("prefixed", {})

        def seen(path):
            return got.get(path, 0) - before.get(path, 0)

        T.eq("figma code exchange at the token path", 1, seen("fg-token/token"))
        T.eq("figma: nothing at the refresh path yet", 0, seen("fg-refresh/token"))
        T.status("fg1 refresh", 200, api.post("/v1/connections/fg1/refresh"))
        T.status("fg1 second refresh (same refresh token)", 200,
                 api.post("/v1/connections/fg1/refresh"))
        got = mock.counters().get("prefixed", {})
        T.eq("figma refreshes at the refresh path", 2, seen("fg-refresh/token"))
        T.eq("figma: no refresh at the token path", 1, seen("fg-token/token"))
        c = api.get("/v1/connections/fg1").json() or {}
        T.eq("figma keeps its refresh token", True, c.get("has_refresh_token"))
        T.eq("figma active after refreshes", "active", c.get("status"))
        # The template's refresh_url when only token_url is overridden.
        r = api.put("/v1/providers/fg2", json_body={
            "template": "figma", "client_id": "i", "token_url": base + "/token"})
        j = r.json() or {}
        T.eq("figma template refresh_url", "https://api.figma.com/v1/oauth/refresh",
             j.get("refresh_url"))
        T.ok("refresh_url listed as from the template",
             "refresh_url" in ((j.get("template") or {}).get("fields") or []), "listed",
             (j.get("template") or {}).get("fields"))
        T.error("refresh_url over http", 422, api.put("/v1/providers/fx", json_body={
            "token_url": "https://a.example/t", "refresh_url": "http://a.example/r"}),
            code="insecure_url")
        T.error("refresh_url at a forbidden address", 422, api.put("/v1/providers/fx", json_body={
            "token_url": "https://a.example/t", "refresh_url": "https://169.254.169.254/r"}),
            code="endpoint_forbidden", mentions="refresh_url")
        T.error("refresh_url placeholder not a template variable", 422,
                api.put("/v1/providers/fx", json_body={
                    "template": "figma", "client_id": "i",
                    "refresh_url": "https://{team}.figma.com/r"}),
                code="invalid_field", mentions="team")
        T.status("nothing stored for refused providers", 404, api.get("/v1/providers/fx"))
        mock.config(client_auth="any", rotate_refresh_tokens=True)

        # Zoho (template version 3, revoke_query): the revocation's token in
        # the URL's query string, as Zoho documents; the mock revokes it.
        mock.config(expires_in=3600, extra={}, client_auth="post")
        r = api.put("/v1/providers/zq", json_body={
            "template": "zoho", "client_id": "test-client", "client_secret": "test-secret",
            "authorize_url": base + "/authorize", "token_url": base + "/token",
            "revoke_url": base + "/revoke",
            "redirect_uri": "http://127.0.0.1:%d/oauth/callback" % g.port})
        T.status("PUT zoho (at the mock)", 200, r)
        j = r.json() or {}
        T.eq("zoho template version", 3, (j.get("template") or {}).get("version"))
        T.eq("zoho revoke_query", True, j.get("revoke_query"))
        connect("zq1", "zq")
        before = mock.counters()
        T.status("zq1 delete + revoke", 200, api.delete("/v1/connections/zq1?revoke=true"))
        after = mock.counters()
        T.ok("zoho revocation with the token in the query string",
             after.get("revoke_query", 0) - before.get("revoke_query", 0) >= 1, ">= 1",
             after.get("revoke_query", 0) - before.get("revoke_query", 0))
        T.eq("zoho revocation revoked the token at the mock",
             before.get("revocations", 0) + 1, after.get("revocations", 0))
        T.eq("servicenow revoke_query", True, (api.put("/v1/providers/sn", json_body={
            "template": "servicenow", "client_id": "i"}).json() or {}).get("revoke_query"))
        T.eq("revoke_query defaults to false", False,
             (api.get("/v1/providers/fg").json() or {}).get("revoke_query"))
        mock.config(client_auth="any")
        T.error("token_body outside form|json", 422, api.put("/v1/providers/jx", json_body={
            "token_url": "https://a.example/t", "token_body": "xml"}),
            code="invalid_field", mentions="token_body")

        # QuickBooks: realmId on the callback, x_refresh_token_expires_in.
        mock.config(expires_in=3600, realm_id="9130357",
                    extra={"x_refresh_token_expires_in": 8726400})
        provider("qb", "quickbooks")
        t0 = time.time()
        connect("qb1", "qb")
        c = api.get("/v1/connections/qb1").json() or {}
        T.eq("quickbooks realmId from the callback", "9130357",
             (c.get("extra") or {}).get("realmId"))
        rexp = rfc3339(c.get("refresh_token_expires_at"))
        T.ok("quickbooks refresh_token_expires_at from x_refresh_token_expires_in",
             rexp is not None and t0 + 8726400 - 5 <= rexp <= time.time() + 8726400 + 5,
             "about now + 101 days", c.get("refresh_token_expires_at"))
    finally:
        T.eq("grantd (shapes) stops cleanly", 0, g.stop())
        mock.stop()


SNAPSHOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "catalog_authorize.txt")


def test_authorize_snapshots(work):
    """Every built-in template's authorize URL for a sample connection (its
    variables' examples, state and PKCE challenge masked) against the
    reviewed snapshot catalog_authorize.txt. GRANTD_UPDATE_SNAPSHOTS=1
    rewrites the file instead (review the diff before committing it).
    Issuer-based templates (okta, keycloak) are left out: storing them
    discovers their endpoints from the provider's real host."""
    g = ServeProc(work, os.path.join(work, "data-snap"), api_key=rand_key(),
                  master_key=rand_master_key()).start()
    c = g.client
    lines = []
    try:
        names = [t["name"] for t in (c.get("/v1/catalog").json() or {}).get("templates", [])]
        for name in names:
            t = c.get("/v1/catalog/" + name).json() or {}
            if "issuer" in t and "token_url" not in t:
                lines.append("%s (issuer-based: endpoints by discovery)" % name)
                continue
            if "authorization_code" not in t.get("grants", []):
                lines.append("%s (no authorization_code grant)" % name)
                continue
            r = c.put("/v1/providers/p-" + name, {
                "template": name, "client_id": "CLIENT_ID", "client_secret": "s",
                "redirect_uri": "https://app.example/oauth/callback"})
            T.status("snapshot: PUT provider from %s" % name, 200, r)
            vars_ = {k: d["example"] for k, d in (t.get("vars") or {}).items()}
            r = c.put("/v1/connections/c-" + name, {"tenant": "t", "provider": "p-" + name,
                                                    "grant": "authorization_code",
                                                    "vars": vars_})
            T.status("snapshot: PUT connection for %s" % name, 200, r)
            a = c.post("/v1/connections/c-%s/authorize" % name, body={}).json() or {}
            u = urllib.parse.urlsplit(a.get("url", ""))
            q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
            masked = {"state": "STATE", "code_challenge": "CHALLENGE"}
            query = "&".join("%s=%s" % (k, masked[k] if k in masked else urllib.parse.quote(v, safe=""))
                             for k, v in q)
            lines.append("%s %s://%s%s?%s" % (name, u.scheme, u.netloc, u.path, query))
    finally:
        T.eq("grantd (snapshots) stops cleanly", 0, g.stop())
    text = "\n".join(lines) + "\n"
    if os.environ.get("GRANTD_UPDATE_SNAPSHOTS") == "1":
        with open(SNAPSHOT, "w") as f:
            f.write(text)
        print("wrote %s" % SNAPSHOT)
        return
    with open(SNAPSHOT) as f:
        want = {ln.split(" ", 1)[0]: ln for ln in f.read().splitlines() if ln}
    got = {ln.split(" ", 1)[0]: ln for ln in lines}
    T.eq("snapshot: the same templates", sorted(want), sorted(got))
    for name in sorted(got):
        T.eq("snapshot: authorize URL of " + name, want.get(name), got[name])


def main():
    work = test_tmpdir("catalog-")
    try:
        test_startup_errors(work)
        test_api(work)
        test_vars(work)
        test_shapes(work)
        test_authorize_snapshots(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
