#!/usr/bin/env python3
"""Integration test: docs/openapi.yaml against the real server.

- the document is a valid OpenAPI 3.1 document (openapi-spec-validator);
- GET /openapi.json, without the API key, serves exactly that document;
- JSON answers of the main resources (providers, connections, token,
  list, import, authorize, delete, healthz, errors) validate against the
  schema the document gives for their path, method and status, and every
  error code's status is the one info.x-error-statuses lists.
"""
import json
import os
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, REPO, ServeProc, cleanup_dir, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()
DOC_PATH = os.path.join(REPO, "docs", "openapi.yaml")
with open(DOC_PATH) as f:
    DOC = yaml.safe_load(f)
SKIPPED = []


def resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj and len(obj) == 1:
        node = DOC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def schema_for(route, method, status, media="application/json", line=False):
    op = DOC["paths"][route][method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        return None
    content = resolve(resp).get("content", {}).get(media)
    if content is None:
        return None
    s = content.get("x-line-schema") if line else content.get("schema")
    return dict(s, components=DOC["components"])


def validate(label, route, method, resp, media="application/json"):
    """Validates resp's JSON body against the document; returns the body."""
    s = schema_for(route, method, resp.status, media)
    if not T.ok(label + ": HTTP %d is documented for %s %s" % (resp.status, method, route),
                s is not None, "documented", "not documented"):
        return None
    body = resp.json()
    errors = sorted(jsonschema.Draft202012Validator(s).iter_errors(body), key=str)
    T.ok(label + ": answer matches its schema", not errors, "valid",
         "; ".join("%s at %s" % (e.message[:200], list(e.absolute_path)) for e in errors[:3]))
    if isinstance(body, dict) and resp.status >= 400 and "error" in body:
        want = DOC["info"]["x-error-statuses"].get(body["error"])
        T.eq(label + ": status of error %s" % body["error"], want, resp.status)
    return body


def validate_ndjson(label, route, method, resp):
    s = schema_for(route, method, resp.status, "application/x-ndjson", line=True)
    if not T.ok(label + ": HTTP %d is documented" % resp.status, s is not None, "documented", "no"):
        return
    v = jsonschema.Draft202012Validator(s)
    for i, line in enumerate(resp.text().splitlines()):
        errors = list(v.iter_errors(json.loads(line)))
        T.ok(label + ": line %d matches its schema" % (i + 1), not errors, "valid",
             errors[0].message[:200] if errors else "")


def check_document():
    try:
        from openapi_spec_validator import validate as spec_validate
    except ImportError:
        SKIPPED.append("openapi-spec-validator is not installed")
        print("SKIP document validation: the Python module openapi_spec_validator is not "
              "installed (pip package openapi-spec-validator)", flush=True)
        return
    try:
        spec_validate(DOC)
        T.ok("docs/openapi.yaml is a valid OpenAPI 3.1 document", True)
    except Exception as e:  # noqa: BLE001 - reported
        T.ok("docs/openapi.yaml is a valid OpenAPI 3.1 document", False, "valid", str(e)[:500])


# Codes of src/base/err.h that no HTTP answer carries (start-up only).
NOT_HTTP = {"wrong_master_key"}


def check_error_table():
    """Every error code of src/base/err.h is in the document's table."""
    import re
    with open(os.path.join(REPO, "src", "base", "err.h")) as f:
        codes = set(re.findall(r'^\s*X\(\w+, "(\w+)"', f.read(), re.M)) - NOT_HTTP
    table = DOC["info"]["x-error-statuses"]
    T.eq("every error code of err.h has its status in the document", [],
         sorted(codes - set(table)))
    T.eq("the ErrorCode enum lists the table's codes", sorted(table),
         sorted(DOC["components"]["schemas"]["ErrorCode"]["enum"]))


def main():
    check_document()
    check_error_table()
    tmp = test_tmpdir("openapi-")
    key = T.secret(rand_key())
    g = ServeProc(tmp, os.path.join(tmp, "data"), api_key=key, master_key=rand_master_key()).start()
    c = g.client

    r = c.get("/openapi.json", auth=False)
    T.status("GET /openapi.json without the API key", 200, r)
    T.eq("/openapi.json is docs/openapi.yaml", DOC, r.json())
    T.ok("/openapi.json is JSON", r.headers.get("content-type", "").startswith("application/json"),
         "application/json", r.headers.get("content-type"))

    validate("healthz", "/healthz", "GET", c.get("/healthz", auth=False))
    validate("no API key", "/v1/providers", "GET", c.get("/v1/providers", auth=False))
    validate("empty provider list", "/v1/providers", "GET", c.get("/v1/providers"))
    pbody = {"authorize_url": "https://127.0.0.1:9/authorize", "token_url": "https://127.0.0.1:9/token",
             "revoke_url": "https://127.0.0.1:9/revoke", "client_id": "cid",
             "client_secret": T.secret(rand_key()), "scopes": ["read"], "timeout_ms": 1000,
             "authorize_params": {"prompt": "consent"}, "rate_limit_count": 10,
             "rate_limit_window": 60}
    validate("PUT provider", "/v1/providers/{name}", "PUT", c.put("/v1/providers/acme", pbody))
    validate("catalog", "/v1/catalog", "GET", c.get("/v1/catalog"))
    validate("catalog template", "/v1/catalog/{name}", "GET", c.get("/v1/catalog/google"))
    validate("catalog template with vars", "/v1/catalog/{name}", "GET", c.get("/v1/catalog/zoho"))
    validate("catalog, unknown template", "/v1/catalog/{name}", "GET", c.get("/v1/catalog/nope"))
    validate("PUT provider from a template", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/g", {"template": "google", "client_id": "id",
                                       "client_secret": "s", "scopes": ["openid"]}))
    validate("GET provider from a template", "/v1/providers/{name}", "GET",
             c.get("/v1/providers/g"))
    validate("PUT provider, unknown template", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/bad", {"template": "gogle", "client_id": "id"}))
    validate("PUT provider, grant conflict", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/bad", {"template": "github", "client_id": "id",
                                         "grants": ["client_credentials"]}))
    validate("PUT provider, unknown field", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/bad", {"token_url": "https://x.example/t", "nope": 1}))
    validate("PUT provider, missing token_url", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/bad", {"client_id": "x"}))
    validate("PUT provider, not JSON", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/bad", "{nope"))
    validate("GET provider", "/v1/providers/{name}", "GET", c.get("/v1/providers/acme"))
    validate("GET missing provider", "/v1/providers/{name}", "GET", c.get("/v1/providers/none"))
    validate("provider list", "/v1/providers", "GET", c.get("/v1/providers"))
    validate("JWKS of a provider without a signing_key", "/v1/providers/{name}/jwks", "GET",
             c.get("/v1/providers/acme/jwks"))
    validate("JWKS of a missing provider", "/v1/providers/{name}/jwks", "GET",
             c.get("/v1/providers/none/jwks"))
    ec_jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
              "d": T.secret("jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI")}
    validate("PUT provider, private_key_jwt", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/pkj", {"token_url": "https://127.0.0.1:9/token",
                                         "client_id": "cid", "client_auth": "private_key_jwt",
                                         "signing_key": json.dumps(ec_jwk)}))
    validate("JWKS", "/v1/providers/{name}/jwks", "GET", c.get("/v1/providers/pkj/jwks"))
    validate("PUT provider, unusable signing_key", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/pkj2", {"token_url": "https://127.0.0.1:9/token",
                                          "client_id": "cid", "client_auth": "private_key_jwt",
                                          "signing_key": "not a key"}))

    cbody = {"tenant": "t1", "provider": "acme", "grant": "refresh_token",
             "access_token": T.secret(rand_key()), "refresh_token": T.secret(rand_key()),
             "expires_in": 3600, "scopes": ["read"], "metadata": {"k": "v"},
             "extra": {"instance_url": "https://i.example"}}
    validate("PUT connection", "/v1/connections/{id}", "PUT", c.put("/v1/connections/c1", cbody))
    validate("PUT connection, invalid grant", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/c2", dict(cbody, grant="magic")))
    validate("PUT connection, unknown provider", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/c2", dict(cbody, provider="ghost")))
    validate("PUT connection, invalid id", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/bad%20id", cbody))
    validate("PUT pending connection", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/ac1", {"tenant": "t1", "provider": "acme",
                                            "grant": "authorization_code"}))
    # The other grants' answers (the provider is unreachable: the device
    # flow ends at once, the assertion grant backs off).
    validate("PUT device_code, no device endpoint", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/dc0", {"tenant": "t1", "provider": "acme",
                                            "grant": "device_code"}))
    validate("PUT provider with device and assertion fields", "/v1/providers/{name}", "PUT",
             c.put("/v1/providers/acme2", dict(
                 pbody, device_authorization_url="https://127.0.0.1:9/device",
                 assertion_claims={"aud": "https://login.example"}, assertion_scope_claim=True)))
    validate("PUT device_code, unreachable", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/dc1", {"tenant": "t1", "provider": "acme2",
                                            "grant": "device_code"}))
    ec_jwk = T.secret('{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",'
                      '"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",'
                      '"d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}')
    validate("PUT jwt_bearer, unreachable", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/jb1", {"tenant": "t1", "provider": "acme2",
                                            "grant": "jwt_bearer", "signing_key": ec_jwk,
                                            "assertion_claims": {"sub": "u"}}))
    validate("PUT jwt_bearer, bad key", "/v1/connections/{id}", "PUT",
             c.put("/v1/connections/jb2", {"tenant": "t1", "provider": "acme2",
                                            "grant": "jwt_bearer", "signing_key": "nope"}))
    validate("GET connection", "/v1/connections/{id}", "GET", c.get("/v1/connections/c1"))
    validate("GET missing connection", "/v1/connections/{id}", "GET", c.get("/v1/connections/zz"))
    validate("token", "/v1/connections/{id}/token", "GET", c.get("/v1/connections/c1/token?min_ttl=0"))
    validate("token, bad min_ttl", "/v1/connections/{id}/token", "GET",
             c.get("/v1/connections/c1/token?min_ttl=x"))
    validate("token of a pending connection", "/v1/connections/{id}/token", "GET",
             c.get("/v1/connections/ac1/token"))
    validate("refresh against an unreachable provider", "/v1/connections/{id}/refresh", "POST",
             c.post("/v1/connections/c1/refresh", body=b""))
    validate("list", "/v1/connections", "GET", c.get("/v1/connections?tenant=t1&limit=1"))
    validate("list, bad status", "/v1/connections", "GET", c.get("/v1/connections?status=x"))
    validate("authorize", "/v1/connections/{id}/authorize", "POST",
             c.post("/v1/connections/ac1/authorize",
                    body={"redirect_after": "https://app.example/done", "scopes": ["read"]}))
    validate("authorize, unknown field", "/v1/connections/{id}/authorize", "POST",
             c.post("/v1/connections/ac1/authorize", body={"nope": 1}))
    lines = [dict(cbody, id="i%d" % i) for i in range(2)] + [{"id": "i9", "tenant": "t"}]
    r = c.post("/v1/connections:import", body="".join(json.dumps(l) + "\n" for l in lines),
               headers={"Content-Type": "application/x-ndjson"})
    T.status("import with a bad line answers 207", 207, r)
    validate_ndjson("import", "/v1/connections:import", "POST", r)
    validate("empty import", "/v1/connections:import", "POST",
             c.post("/v1/connections:import", body=b""))
    validate("delete", "/v1/connections/{id}", "DELETE", c.delete("/v1/connections/i0"))
    validate("delete, bad revoke", "/v1/connections/{id}", "DELETE",
             c.delete("/v1/connections/i1?revoke=maybe"))
    validate("delete with revocation", "/v1/connections/{id}", "DELETE",
             c.delete("/v1/connections/i1?revoke=true"))
    validate("delete provider in use", "/v1/providers/{name}", "DELETE", c.delete("/v1/providers/acme"))
    r = c.get("/v1/events?limit=1000")
    validate("event feed", "/v1/events", "GET", r)
    T.ok("event feed has events of the connections above", bool((r.json() or {}).get("events")))
    validate("event feed, filtered", "/v1/events", "GET",
             c.get("/v1/events?types=connection.*&tenant=nobody&wait=0"))
    validate("event feed, bad cursor", "/v1/events", "GET", c.get("/v1/events?after=x"))
    validate("event feed, bad type", "/v1/events", "GET", c.get("/v1/events?types=nope"))
    r = c.get("/oauth/callback?state=nope&code=x", auth=False)
    T.ok("callback with an unknown state: documented status", str(r.status) in
         DOC["paths"]["/oauth/callback"]["get"]["responses"], "documented", r.status)
    r = c.get("/metrics", auth=False)
    T.status("metrics", 200, r)

    T.eq("server stops with 0", 0, g.stop())
    code = T.finish() if not SKIPPED else None
    if code is None:
        print("%d passed, %d failed, %d skipped" % (T.passed, T.failed, len(SKIPPED)), flush=True)
        code = 1 if T.failed else 0
    if code == 0:
        cleanup_dir(tmp)
    return code


if __name__ == "__main__":
    sys.exit(main())
