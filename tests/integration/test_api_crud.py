#!/usr/bin/env python3
"""Integration test: the v1 API's CRUD surface on a real `grantd serve`.

Providers (client_secret write-only, validation of names, fields and types),
connections imported with grant=refresh_token, the token endpoint, listing
with tenant/status filters and cursor pagination, deletion, the 401/404/405
answers, id validation, RFC 3339 timestamps, /healthz and /metrics.
"""
import json
import os
import re
import shutil
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (RFC3339_UTC, ApiChecks, ServeProc, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()


def parse_time(s):
    return datetime.strptime(s.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def expiry_of(r):
    """expires_at of a connection answer as a Unix time, or None."""
    v = (r.json() or {}).get("expires_at")
    return parse_time(v).timestamp() if isinstance(v, str) and RFC3339_UTC.match(v) else None


def check_times(label, obj, fields):
    for f in fields:
        v = obj.get(f) if isinstance(obj, dict) else None
        T.ok("%s %s is RFC 3339 UTC" % (label, f), isinstance(v, str) and RFC3339_UTC.match(v),
             "YYYY-MM-DDTHH:MM:SS[.fff]Z", v)


def no_secret_in(label, resp, secrets):
    body = resp.text()
    T.ok(label + " shows no secret", not any(s in body for s in secrets),
         "no secret value in the body", "a secret value in the body")


def test_auth_and_ops(g):
    c = g.client
    r = c.get("/healthz", auth=False)
    T.status("GET /healthz", 200, r)
    T.eq("/healthz status field", "ok", (r.json() or {}).get("status"))

    r = c.get("/v1/providers", auth=False)
    T.error("no API key", 401, r)
    T.ok("401 has WWW-Authenticate", "www-authenticate" in r.headers, "a WWW-Authenticate header", r.headers)
    T.ok("WWW-Authenticate names Bearer", r.headers.get("www-authenticate", "").lower().startswith("bearer"),
         "Bearer ...", r.headers.get("www-authenticate"))
    r = c.get("/v1/providers", key=rand_key())
    T.error("wrong API key", 401, r)
    T.ok("401 (wrong key) has WWW-Authenticate", "www-authenticate" in r.headers,
         "a WWW-Authenticate header", r.headers)
    r = c.get("/v1/providers", key=g.api_key[:-1])
    T.error("API key prefix", 401, r)
    r = c.get("/v1/providers", key=g.api_key + "x")
    T.error("API key with a suffix", 401, r)
    r = c.get("/v1/providers", auth=False, headers={"Authorization": "Basic " + g.api_key})
    T.error("API key with the Basic scheme", 401, r)
    r = c.get("/v1/connections/whatever/token", auth=False)
    T.error("token endpoint without a key", 401, r)
    r = c.get("/v1/providers")
    T.status("right API key", 200, r)


def test_providers(g, secret):
    c = g.client
    body = {"token_url": "https://127.0.0.1:9/token", "client_id": "cid-1",
            "client_secret": secret, "scopes": ["read", "write"]}
    r = c.put("/v1/providers/acme", body)
    T.status("PUT provider", 200, r)
    j = r.json() or {}
    no_secret_in("PUT provider answer", r, [secret])
    T.ok("PUT provider answer has no client_secret field", "client_secret" not in j,
         "no client_secret field", sorted(j))
    T.eq("has_client_secret", True, j.get("has_client_secret"))
    T.eq("provider name", "acme", j.get("name"))
    T.eq("token_url echoed", body["token_url"], j.get("token_url"))
    T.eq("authorize_url optional", None, j.get("authorize_url"))
    T.eq("scopes echoed", ["read", "write"], j.get("scopes"))
    check_times("provider", j, ["created_at", "updated_at"])

    r = c.get("/v1/providers/acme")
    T.status("GET provider", 200, r)
    j = r.json() or {}
    no_secret_in("GET provider", r, [secret])
    T.ok("GET provider has no client_secret field", "client_secret" not in j, "absent", sorted(j))
    T.eq("GET provider has_client_secret", True, j.get("has_client_secret"))
    T.eq("GET provider client_id", "cid-1", j.get("client_id"))

    r = c.put("/v1/providers/with-auth", {"token_url": "https://127.0.0.1:9/token",
                                          "authorize_url": "https://127.0.0.1:9/authorize",
                                          "client_id": "cid-2"})
    T.status("PUT provider with authorize_url, no secret", 200, r)
    j = r.json() or {}
    T.eq("authorize_url echoed", "https://127.0.0.1:9/authorize", j.get("authorize_url"))
    T.eq("has_client_secret without a secret", False, j.get("has_client_secret"))

    r = c.get("/v1/providers")
    T.status("GET /v1/providers", 200, r)
    names = [p.get("name") for p in (r.json() or {}).get("providers", [])]
    T.eq("provider list", ["acme", "with-auth"], names)
    no_secret_in("provider list", r, [secret])

    # Validation.
    r = c.put("/v1/providers/p1", {"client_id": "x"})
    T.error("provider without token_url", 422, r, mentions="token_url")
    r = c.put("/v1/providers/p1", {"token_url": "https://127.0.0.1:9/t", "colour": "blue"})
    T.error("provider unknown field", 422, r, code="unknown_field", mentions="colour")
    for field, val in [("token_url", 5), ("scopes", "read write"), ("pkce", "yes"),
                       ("client_id", ["a"]), ("default_expires_in", "3600"), ("token_params", ["x"])]:
        b = {"token_url": "https://127.0.0.1:9/t"}
        b[field] = val
        r = c.put("/v1/providers/p1", b)
        T.error("provider %s of a wrong type" % field, 422, r, mentions=field)
    r = c.put("/v1/providers/p1", {"token_url": "not a url"})
    T.error("provider token_url not a URL", 422, r, mentions="token_url")
    r = c.put("/v1/providers/p1", {"token_url": "https://127.0.0.1:9/t", "client_auth": "magic"})
    T.error("provider client_auth unknown", 422, r, mentions="client_auth")
    r = c.get("/v1/providers/p1")
    T.error("rejected provider was not stored", 404, r)

    for name, label in [("bad!name", "charset"), ("bad%20name", "space"), ("a" * 129, "129 bytes")]:
        r = c.put("/v1/providers/" + name, {"token_url": "https://127.0.0.1:9/t"})
        T.error("provider name (%s)" % label, 400, r)
    r = c.put("/v1/providers/" + "a" * 128, {"token_url": "https://127.0.0.1:9/t"})
    T.status("provider name of 128 bytes", 200, r)
    r = c.delete("/v1/providers/" + "a" * 128)
    T.status("DELETE provider", 200, r)
    r = c.get("/v1/providers/" + "a" * 128)
    T.error("GET deleted provider", 404, r, code="not_found")
    r = c.get("/v1/providers/nope")
    T.error("GET unknown provider", 404, r)
    r = c.delete("/v1/providers/nope")
    T.error("DELETE unknown provider", 404, r)

    # Replacing keeps it write-only; no secret -> has_client_secret false.
    r = c.put("/v1/providers/acme2", {"token_url": "https://127.0.0.1:9/t", "client_secret": secret})
    T.eq("acme2 has_client_secret", True, (r.json() or {}).get("has_client_secret"))
    r = c.put("/v1/providers/acme2", {"token_url": "https://127.0.0.1:9/t"})
    T.eq("acme2 replaced without secret", False, (r.json() or {}).get("has_client_secret"))
    T.status("DELETE acme2", 200, c.delete("/v1/providers/acme2"))


def test_connections(g, secrets):
    c = g.client
    at, rt = secrets["at1"], secrets["rt1"]
    t0 = time.time()
    r = c.put("/v1/connections/conn-a", {
        "tenant": "tenant-x", "provider": "acme", "grant": "refresh_token",
        "access_token": at, "refresh_token": rt, "expires_in": 3600,
        "scopes": ["read"], "metadata": {"team": "blue"}})
    T.status("PUT connection (import, expires_in)", 200, r)
    j = r.json() or {}
    no_secret_in("PUT connection answer", r, [at, rt])
    for f in ("access_token", "refresh_token"):
        T.ok("PUT connection answer has no %s" % f, f not in j, "absent", sorted(j))
    T.eq("connection id", "conn-a", j.get("id"))
    T.eq("connection tenant", "tenant-x", j.get("tenant"))
    T.eq("connection grant", "refresh_token", j.get("grant"))
    T.eq("connection status", "active", j.get("status"))
    T.eq("has_access_token", True, j.get("has_access_token"))
    T.eq("has_refresh_token", True, j.get("has_refresh_token"))
    T.eq("metadata echoed", {"team": "blue"}, j.get("metadata"))
    check_times("connection", j, ["expires_at", "created_at", "updated_at"])
    if isinstance(j.get("expires_at"), str) and RFC3339_UTC.match(j["expires_at"]):
        exp = parse_time(j["expires_at"]).timestamp()
        T.ok("expires_at = now + expires_in", t0 + 3600 - 120 <= exp <= time.time() + 3600 + 120,
             "about %d" % (t0 + 3600), exp)

    r = c.get("/v1/connections/conn-a")
    T.status("GET connection", 200, r)
    no_secret_in("GET connection", r, [at, rt])
    T.eq("GET connection status", "active", (r.json() or {}).get("status"))

    r = c.get("/v1/connections/conn-a/token")
    T.status("GET token", 200, r)
    j = r.json() or {}
    T.ok("token endpoint returns the imported access token", j.get("access_token") == at,
         "the imported access token", "a different value")
    T.ok("token endpoint never returns the refresh token", rt not in r.text(), "absent", "present")
    T.eq("token_type", "Bearer", j.get("token_type"))
    T.eq("token scopes", ["read"], j.get("scopes"))
    check_times("token", j, ["expires_at"])

    # expires_at as RFC 3339, access token only.
    at2 = secrets["at2"]
    r = c.put("/v1/connections/conn-b", {"tenant": "tenant-y", "provider": "acme",
                                         "grant": "refresh_token", "access_token": at2,
                                         "expires_at": "2031-02-03T04:05:06Z"})
    T.status("PUT connection (import, expires_at)", 200, r)
    T.eq("expires_at round trip", "2031-02-03T04:05:06Z", (r.json() or {}).get("expires_at"))
    T.eq("has_refresh_token false", False, (r.json() or {}).get("has_refresh_token"))
    r = c.put("/v1/connections/conn-b2", {"tenant": "tenant-y", "provider": "acme",
                                          "grant": "refresh_token", "access_token": at2,
                                          "expires_at": "2031-02-03T05:05:06+01:00"})
    T.eq("expires_at with an offset is shown in UTC", "2031-02-03T04:05:06Z",
         (r.json() or {}).get("expires_at"))
    r = c.get("/v1/connections/conn-b/token")
    T.ok("token of conn-b", (r.json() or {}).get("access_token") == at2, "the imported token", r.status)
    T.eq("token expires_at", "2031-02-03T04:05:06Z", (r.json() or {}).get("expires_at"))

    # Replace: a PUT on an existing id replaces the record.
    at3 = secrets["at3"]
    r = c.put("/v1/connections/conn-b", {"tenant": "tenant-y", "provider": "acme",
                                         "grant": "refresh_token", "access_token": at3,
                                         "expires_in": 7200})
    T.status("PUT replaces a connection", 200, r)
    r = c.get("/v1/connections/conn-b/token")
    T.ok("token after replace", (r.json() or {}).get("access_token") == at3, "the new token", "the old or none")

    # Validation.
    base = {"tenant": "t", "provider": "acme", "grant": "refresh_token", "access_token": "x1"}
    r = c.put("/v1/connections/v1", dict(base, surprise=1))
    T.error("connection unknown field", 422, r, code="unknown_field", mentions="surprise")
    for f in ("tenant", "provider", "grant"):
        b = dict(base)
        del b[f]
        r = c.put("/v1/connections/v1", b)
        T.error("connection without %s" % f, 422, r, mentions=f)
    for f, v in [("expires_in", "soon"), ("tenant", 7), ("scopes", "a"), ("metadata", "m"),
                 ("expires_at", "yesterday"), ("access_token", 12)]:
        r = c.put("/v1/connections/v1", dict(base, **{f: v}))
        T.error("connection %s of a wrong type" % f, 422, r, mentions=f)
    # expires_in on import takes what token endpoints send (number, numeric
    # string, null) and names itself when it is anything else.
    for v in (False, {}, "zzz", "", [60], -1):
        r = c.put("/v1/connections/v1", dict(base, expires_in=v))
        T.error("import with expires_in %r" % (v,), 422, r, code="invalid_field", mentions="expires_in")
    t0 = time.time()
    r = c.put("/v1/connections/v-str", dict(base, expires_in="7200"))
    T.status("import with expires_in \"7200\"", 200, r)
    exp = expiry_of(r)
    T.ok("expires_in \"7200\": expires_at = now + 7200 s",
         exp is not None and t0 + 7200 - 120 <= exp <= time.time() + 7200 + 120,
         "about now + 7200 s", (r.json() or {}).get("expires_at"))
    r = c.put("/v1/connections/v-big", dict(base, expires_in=2 ** 31))
    T.status("import with expires_in 2^31 (clamped)", 200, r)
    exp = expiry_of(r)
    T.ok("expires_in 2^31: clamped to 10 years", exp is not None and
         abs(exp - (time.time() + 10 * 365 * 86400)) < 600, "now + 10 years",
         (r.json() or {}).get("expires_at"))
    for cid in ("v-str", "v-big"):
        c.delete("/v1/connections/" + cid)
    body = "".join(json.dumps(dict(base, id=cid, expires_in=v)) + "\n"
                   for cid, v in (("nd-bad", False), ("nd-ok", "600")))
    r = c.post("/v1/connections:import", body=body, headers={"Content-Type": "application/x-ndjson"})
    lines = [json.loads(x) for x in r.text().splitlines() if x.strip()]
    by_id = {o.get("id"): o for o in lines if "summary" not in o}
    bad = by_id.get("nd-bad") or {}
    T.ok("NDJSON import: a bad expires_in fails its line naming the field",
         bad.get("error") == "invalid_field" and "expires_in" in (bad.get("message") or ""),
         "invalid_field naming expires_in", bad)
    T.ok("NDJSON import: a numeric-string expires_in is imported", "error" not in (by_id.get("nd-ok") or {"error": 1}),
         "no error", by_id.get("nd-ok"))
    T.error("NDJSON import: the bad line was not stored", 404, c.get("/v1/connections/nd-bad"))
    c.delete("/v1/connections/nd-ok")
    r = c.put("/v1/connections/v1", dict(base, grant="telepathy"))
    T.error("connection unknown grant", 422, r, mentions="grant")
    r = c.put("/v1/connections/v1", dict(base, expires_in=10, expires_at="2031-01-01T00:00:00Z"))
    T.error("expires_in and expires_at together", 422, r)
    b = dict(base)
    del b["access_token"]
    r = c.put("/v1/connections/v1", b)
    T.error("refresh_token import without tokens", 422, r)
    r = c.get("/v1/connections/v1")
    T.error("rejected connection was not stored", 404, r)

    for cid, label in [("bad!id", "charset"), ("a%2Fb", "slash"), ("sp%20ace", "space"), ("x" * 129, "129 bytes")]:
        r = c.put("/v1/connections/" + cid, base)
        T.error("PUT connection id (%s)" % label, 400, r)
    r = c.get("/v1/connections/" + "x" * 129)
    T.error("GET connection id of 129 bytes", 400, r)
    r = c.get("/v1/connections/bad!id/token")
    T.error("GET token of an invalid id", 400, r)
    r = c.put("/v1/connections/" + "y" * 128, base)
    T.status("connection id of 128 bytes", 200, r)
    T.status("DELETE 128-byte id", 200, c.delete("/v1/connections/" + "y" * 128))

    # redirect_after ends up in a Location header: no header splitting.
    r = c.put("/v1/connections/auth-c", {"tenant": "t", "provider": "acme",
                                          "grant": "authorization_code"})
    T.status("authorization_code connection", 200, r)
    for bad, label in [("https://app.example/x\r\nSet-Cookie: a=1", "CRLF"),
                       ("https://app.example/x y", "space"),
                       ("javascript:alert(1)", "scheme"), ("/relative", "relative")]:
        r = c.request("POST", "/v1/connections/auth-c/authorize", {"redirect_after": bad})
        T.error("redirect_after (%s)" % label, 422, r, mentions="redirect_after")
    T.status("DELETE auth-c", 200, c.delete("/v1/connections/auth-c"))

    # Unknown ids.
    T.error("GET unknown connection", 404, c.get("/v1/connections/nope"), code="not_found")
    T.error("GET token of unknown connection", 404, c.get("/v1/connections/nope/token"))
    T.error("DELETE unknown connection", 404, c.delete("/v1/connections/nope"))

    # A provider in use cannot be deleted.
    r = c.delete("/v1/providers/acme")
    T.error("DELETE provider in use", 409, r)
    T.status("provider still there", 200, c.get("/v1/providers/acme"))

    # Delete.
    r = c.delete("/v1/connections/conn-b2")
    T.status("DELETE connection", 200, r)
    T.eq("DELETE answer", True, (r.json() or {}).get("deleted"))
    T.error("GET deleted connection", 404, c.get("/v1/connections/conn-b2"))
    T.error("token of deleted connection", 404, c.get("/v1/connections/conn-b2/token"))
    T.error("DELETE twice", 404, c.delete("/v1/connections/conn-b2"))


def list_all(c, query, limit):
    """Pages through GET /v1/connections; returns (ids, pages, error)."""
    ids, pages, cursor = [], 0, None
    while True:
        q = "limit=%d" % limit + (("&" + query) if query else "")
        if cursor is not None:
            q += "&cursor=" + cursor
        r = c.get("/v1/connections?" + q)
        if r.status != 200:
            return ids, pages, "HTTP %d %s" % (r.status, r.text()[:200])
        j = r.json() or {}
        page = [x.get("id") for x in j.get("connections", [])]
        pages += 1
        if len(page) > limit:
            return ids, pages, "page of %d > limit %d" % (len(page), limit)
        ids += page
        cursor = j.get("next_cursor")
        if cursor is None:
            return ids, pages, None
        if pages > 200:
            return ids, pages, "no end of pages"


def test_listing(g, token_prefix):
    c = g.client
    tenants = ["t-red", "t-green", "t-blue"]
    made = {t: [] for t in tenants}
    for i in range(25):
        cid = "list-%03d" % i
        t = tenants[i % 3]
        r = c.put("/v1/connections/" + cid, {"tenant": t, "provider": "acme", "grant": "refresh_token",
                                             "access_token": "%s-%d" % (token_prefix, i), "expires_in": 3600})
        if not T.status("PUT " + cid, 200, r):
            return
        made[t].append(cid)
    # One pending connection (authorization_code waits for the user).
    r = c.put("/v1/connections/list-pending", {"tenant": "t-red", "provider": "with-auth",
                                               "grant": "authorization_code"})
    T.status("PUT authorization_code connection", 200, r)
    T.eq("authorization_code connection is pending", "pending", (r.json() or {}).get("status"))

    everything = sorted(["conn-a", "conn-b", "list-pending"] + [x for v in made.values() for x in v])
    ids, pages, err = list_all(c, "", 7)
    T.eq("paging limit=7 without errors", None, err)
    T.eq("paging limit=7 sees every id once, in order", everything, ids)
    T.eq("pages of 7", (len(everything) + 6) // 7, pages)

    r = c.get("/v1/connections")
    T.eq("default list returns everything", everything,
         [x.get("id") for x in (r.json() or {}).get("connections", [])])
    T.eq("last page has next_cursor null", None, (r.json() or {}).get("next_cursor", "missing"))
    no_secret_in("list", r, ["%s-%d" % (token_prefix, i) for i in range(25)])

    for t in tenants:
        want = sorted(made[t] + (["list-pending"] if t == "t-red" else []))
        ids, _, err = list_all(c, "tenant=" + t, 3)
        T.eq("tenant=%s pages without errors" % t, None, err)
        T.eq("tenant=%s paging limit=3" % t, want, ids)
    ids, _, _ = list_all(c, "tenant=nobody", 5)
    T.eq("unknown tenant lists nothing", [], ids)

    ids, _, _ = list_all(c, "status=pending", 2)
    T.eq("status=pending", ["list-pending"], ids)
    ids, _, _ = list_all(c, "status=active", 10)
    T.eq("status=active", [x for x in everything if x != "list-pending"], ids)
    ids, _, _ = list_all(c, "status=active&tenant=t-red", 4)
    T.eq("status=active&tenant=t-red", sorted(made["t-red"]), ids)
    ids, _, _ = list_all(c, "status=revoked", 10)
    T.eq("status=revoked", [], ids)

    T.error("status filter unknown", 400, c.get("/v1/connections?status=sleepy"))
    T.error("limit=0", 400, c.get("/v1/connections?limit=0"))
    T.error("limit=abc", 400, c.get("/v1/connections?limit=abc"))
    T.error("limit too big", 400, c.get("/v1/connections?limit=100000"))
    T.error("bad cursor", 400, c.get("/v1/connections?cursor=%21%21"))

    # Deleting from the middle keeps the walk consistent.
    T.status("DELETE list-007", 200, c.delete("/v1/connections/list-007"))
    everything.remove("list-007")
    ids, _, _ = list_all(c, "", 7)
    T.eq("list after a delete", everything, ids)
    return everything


def test_routes(g):
    c = g.client
    T.error("unknown route", 404, c.get("/v1/nothing-here"))
    T.error("unknown route outside /v1", 404, c.get("/nope", auth=False))
    T.error("POST on a connection", 405, c.request("POST", "/v1/connections/conn-a"))
    T.error("PATCH on a provider", 405, c.request("PATCH", "/v1/providers/acme", body={}))
    T.error("DELETE on the token", 405, c.delete("/v1/connections/conn-a/token"))
    T.error("POST /v1/connections", 405, c.request("POST", "/v1/connections", body={}))
    T.error("PUT /healthz", 405, c.request("PUT", "/healthz", body={}, auth=False))


def labels_of(line):
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
    if not m:
        return None, {}, None
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    return m.group(1), labels, m.group(4)


def test_metrics(g):
    c = g.client
    r = c.get("/metrics", auth=False)
    T.status("GET /metrics", 200, r)
    T.ok("metrics content type is text/plain", r.headers.get("content-type", "").startswith("text/plain"),
         "text/plain", r.headers.get("content-type"))
    seen = {}
    for line in r.text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, labels, value = labels_of(line)
        if name and "request" in name and "route" in labels and ("status" in labels or "code" in labels):
            seen[(labels["route"], labels.get("status", labels.get("code")))] = value
    for route, status in [("/v1/connections/{id}", "200"), ("/v1/connections/{id}/token", "200"),
                          ("/v1/providers/{name}", "422"), ("/v1/connections/{id}", "404"),
                          ("/healthz", "200")]:
        T.ok("metrics count %s %s" % (route, status), (route, status) in seen,
             "a request counter with route=%s status=%s" % (route, status),
             sorted(seen)[:12])
    T.ok("metrics show connections by status", re.search(r'^grantd_connections\{status="active"\}', r.text(), re.M),
         'grantd_connections{status="active"} ...', "absent")
    T.ok("metrics expose a commit count", re.search(r"^grantd_\w*commit\w*", r.text(), re.M),
         "a grantd_*commit* metric", "absent")
    secrets = [g.api_key, g.master_key] + T.secrets
    T.ok("metrics contain no secret", not any(s in r.text() for s in secrets), "no secrets", "a secret")


def main():
    work = test_tmpdir("api-crud-")
    api_key, master_key = T.secret(rand_key(), rand_master_key())
    secret = T.secret("cs-" + rand_key())
    toks = {k: T.secret(k + "-" + rand_key()) for k in ("at1", "rt1", "at2", "at3")}
    list_prefix = T.secret("lt-" + rand_key(12))
    g = ServeProc(work, os.path.join(work, "data"), api_key=api_key, master_key=master_key)
    try:
        g.start()
    except RuntimeError as e:
        T.ok("grantd starts", False, "listening", T.scrub(str(e)))
        return T.finish()
    rc = None
    try:
        test_auth_and_ops(g)
        test_providers(g, secret)
        test_connections(g, toks)
        test_listing(g, list_prefix)
        test_routes(g)
        test_metrics(g)
    finally:
        rc = g.stop()
    T.eq("SIGTERM exit status", 0, rc)
    log = g.log_text()
    T.ok("log holds no secret", not any(s in log for s in T.secrets), "no secret in stderr", "a secret")
    failed = T.finish()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
