#!/usr/bin/env python3
"""Integration test: named, scoped, rotatable API keys (--api-keys-file).

A keys file (NAME SCOPE SHA256-HEX, comments) beside the single key
(GRANTD_API_KEY = "default", admin): every /v1 route tried with a key of
each scope answers 403 insufficient_scope (naming the scopes it takes, with
WWW-Authenticate error="insufficient_scope") outside the route's scopes,
and changes nothing; inside them it is served. Unknown keys get 401. Every
state-changing request is logged with the key's name, never a key. SIGHUP
reloads the file: a new key works and a removed one gets 401 without a
restart; a file without lines leaves the single key only; a malformed
file, a directory, a FIFO and a file over 1 MiB are
refused on reload with the old keys kept. At start-up a malformed file
exits 2 with one line naming the line; a keys file alone (no single key)
works and no DIR/api-key is generated.
"""
import hashlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, ServeProc, cleanup_dir, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()


def h(key):
    return hashlib.sha256(key.encode()).hexdigest()


def write_keys(path, rows, extra=""):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# grantd API keys: NAME SCOPE SHA256-HEX\n\n")
        for name, scope, key in rows:
            f.write("%s %s %s\n" % (name, scope, h(key)))
        f.write(extra)
    os.replace(tmp, path)


def wait_log_count(g, needle, count, timeout=60):
    deadline = time.monotonic() + timeout
    while g.last_log().count(needle) < count:
        if g.proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# (method, path, body, scopes besides admin that may call it)
ROUTES = [
    ("GET", "/v1/providers", None, ()),
    ("GET", "/v1/providers/p", None, ()),
    ("PUT", "/v1/providers/p2", {"token_url": "https://127.0.0.1:9/t", "client_id": "c"}, ()),
    ("DELETE", "/v1/providers/p2", None, ()),
    ("GET", "/v1/catalog", None, ()),
    ("GET", "/v1/connections", None, ("tokens",)),
    ("GET", "/v1/connections/c1", None, ("tokens", "connect")),
    ("GET", "/v1/connections/c1/token", None, ("tokens",)),
    ("POST", "/v1/connections/c1/refresh", None, ("tokens",)),
    ("PUT", "/v1/connections/c2", {"tenant": "t", "provider": "p", "grant": "authorization_code"},
     ("connect",)),
    ("POST", "/v1/connections/c2/authorize", None, ("connect",)),
    ("DELETE", "/v1/connections/c2", None, ()),
    ("POST", "/v1/connections:import", "", ()),
]


def scope_matrix(g, keys):
    for method, path, body, scopes in ROUTES:
        for scope in ("tokens", "connect"):
            label = "%s %s with a %s key" % (method, path, scope)
            r = g.client.request(method, path, body=body, key=keys[scope])
            if scope in scopes:
                T.ok(label + ": served", r.status not in (401, 403), "not 401/403",
                     "%d %s" % (r.status, T.scrub(r.text()[:200])))
            else:
                want = ", ".join(["admin"] + list(scopes)) if scopes else "admin"
                want = " or ".join(want.rsplit(", ", 1))
                T.error(label, 403, r, code="insufficient_scope", mentions="scope " + want)
                T.ok(label + ": names the key and its scope",
                     ("'%s-key' has %s" % (scope, scope)) in (r.json() or {}).get("message", ""),
                     "key name and scope", T.scrub(r.text()[:200]))
                T.ok(label + ": WWW-Authenticate insufficient_scope",
                     'error="insufficient_scope"' in (r.headers.get("www-authenticate") or ""),
                     "error=insufficient_scope", r.headers.get("www-authenticate"))
        # admin (a named admin key) reaches every route.
        r = g.client.request(method, path, body=body, key=keys["admin"])
        T.ok("%s %s with the admin key: served" % (method, path), r.status not in (401, 403),
             "not 401/403", "%d %s" % (r.status, T.scrub(r.text()[:200])))
    # Refused writes changed nothing: c1 is still there after the tokens
    # and connect keys were refused DELETE (and then admin deleted c2 only).
    r = g.client.get("/v1/connections/c1")
    T.status("refused deletes left c1 in place", 200, r)


def main():
    tmp = test_tmpdir("apikeys-")
    data = os.path.join(tmp, "data")
    single = T.secret(rand_key())
    mk = T.secret(rand_master_key())
    keys = {s: T.secret(rand_key()) for s in ("tokens", "connect", "admin")}
    kf = os.path.join(tmp, "api-keys")
    write_keys(kf, [("tokens-key", "tokens", keys["tokens"]),
                    ("connect-key", "connect", keys["connect"]),
                    ("admin-key", "admin", keys["admin"])])

    g = ServeProc(tmp, data, api_key=single, master_key=mk, args=["--api-keys-file", kf]).start()
    try:
        r = g.client.put("/v1/providers/p", {"token_url": "https://127.0.0.1:9/token",
                                             "authorize_url": "https://127.0.0.1:9/authorize",
                                             "client_id": "c"})
        T.status("the single key is admin: PUT provider", 200, r)
        at, rt = T.secret(rand_key()), T.secret(rand_key())
        r = g.client.put("/v1/connections/c1", {"tenant": "t", "provider": "p",
                                                "grant": "refresh_token", "access_token": at,
                                                "refresh_token": rt, "expires_in": 86400})
        T.status("PUT connection c1", 200, r)
        r = g.client.get("/v1/connections/c1/token", key=keys["tokens"])
        T.status("tokens key reads the token", 200, r)
        T.eq("tokens key: the token", at, (r.json() or {}).get("access_token"))
        T.error("unknown key", 401, g.client.get("/v1/connections", key=rand_key()),
                code="unauthorized")
        T.error("the hash as a key", 401, g.client.get("/v1/connections", key=h(keys["admin"])),
                code="unauthorized")
        scope_matrix(g, keys)
        log = g.last_log()
        T.ok("writes are logged with the key's name",
             '"route":"/v1/connections/{id}/authorize"' in log and '"key_name":"connect-key"' in log
             and '"key_name":"default"' in log, "api_write ... key_name", T.scrub(log[-400:]))
        T.ok("refused scopes are logged with the key's name",
             '"api_forbidden"' in log and '"key_name":"tokens-key"' in log, "api_forbidden",
             T.scrub(log[-400:]))

        # Rotation: add tokens-key-2, remove tokens-key, SIGHUP.
        new_tok = T.secret(rand_key())
        write_keys(kf, [("tokens-key-2", "tokens", new_tok),
                        ("connect-key", "connect", keys["connect"]),
                        ("admin-key", "admin", keys["admin"])])
        g.proc.send_signal(signal.SIGHUP)
        T.ok("SIGHUP: reloaded", wait_log_count(g, '"api_keys_reloaded"', 1), "api_keys_reloaded",
             T.scrub(g.last_log()[-300:]))
        T.status("new key works without a restart", 200,
                 g.client.get("/v1/connections/c1/token", key=new_tok))
        T.error("removed key is refused", 401,
                g.client.get("/v1/connections/c1/token", key=keys["tokens"]), code="unauthorized")
        T.status("single key still admin after reload", 200, g.client.get("/v1/providers"))

        # Bad reloads keep the keys in use.
        bad = [("malformed", lambda: write_keys(kf, [], "x root %s\n" % h("y")), "line 3"),
               ("a directory", lambda: (os.replace(kf, kf + ".keep"), os.mkdir(kf)),
                "not a regular file"),
               ("a FIFO", lambda: (os.rmdir(kf), os.mkfifo(kf)), "not a regular file"),
               ("over 1 MiB", lambda: (os.unlink(kf), open(kf, "w").write(
                   "# pad\n" * 200000)), "larger than")]
        n_fail = 0
        for label, make, mention in bad:
            make()
            g.proc.send_signal(signal.SIGHUP)
            n_fail += 1
            seen = wait_log_count(g, '"api_keys_reload_failed"', n_fail)
            T.ok("reload of %s: refused" % label, seen, "api_keys_reload_failed",
                 T.scrub(g.last_log()[-300:]))
            line = [x for x in g.last_log().splitlines() if '"api_keys_reload_failed"' in x]
            T.ok("reload of %s: the reason says %r" % (label, mention),
                 bool(line) and mention in line[-1], mention, T.scrub(line[-1:]))
            T.status("reload of %s: old keys kept" % label, 200,
                     g.client.get("/v1/connections/c1/token", key=new_tok))
            T.ok("reload of %s: still running" % label, g.proc.poll() is None, "running", "exited")
        # A file without a line leaves only the single key.
        os.unlink(kf)
        write_keys(kf, [])
        g.proc.send_signal(signal.SIGHUP)
        T.ok("reload of an empty file: reloaded", wait_log_count(g, '"api_keys_reloaded"', 2),
             "a second api_keys_reloaded", T.scrub(g.last_log()[-300:]))
        T.error("empty file: the named keys are gone", 401,
                g.client.get("/v1/connections/c1/token", key=new_tok), code="unauthorized")
        T.status("empty file: the single key remains", 200, g.client.get("/v1/providers"))
        log = g.log_text()
        T.ok("no key or hash in the log", not any(s in log for s in T.secrets)
             and not any(h(k) in log for k in list(keys.values()) + [new_tok, single]),
             "none", "a key or a key hash")
    finally:
        rc = g.stop()
    T.eq("SIGTERM after reloads: exit 0", 0, rc)
    os.unlink(kf)

    # Start-up: a malformed file is invalid configuration (exit 2, one line).
    write_keys(kf, [("a", "tokens", rand_key())], "b tokens 1234\n")
    bad = ServeProc(tmp, data, api_key=single, master_key=mk, args=["--api-keys-file", kf])
    bad.spawn()
    T.eq("malformed keys file at start: exit 2", 2, bad.wait_exit(60))
    lines = [x for x in bad.log().splitlines() if x.strip()]
    T.ok("malformed keys file at start: one line naming the line", len(lines) == 1
         and "line 4" in lines[0] and kf in lines[0], "one line with 'line 4'", T.scrub(lines))
    bad = ServeProc(tmp, data, api_key=single, master_key=mk,
                    args=["--api-keys-file", os.path.join(tmp, "missing")])
    bad.spawn()
    T.eq("missing keys file at start: exit 2", 2, bad.wait_exit(60))

    # A keys file alone: no single key, none generated.
    data2 = os.path.join(tmp, "data2")
    only = T.secret(rand_key())
    write_keys(kf, [("ops", "admin", only)])
    g2 = ServeProc(tmp, data2, api_key=None, master_key=mk,
                   env={"GRANTD_API_KEYS_FILE": kf}).start()
    try:
        g2.client.api_key = only
        T.status("keys file alone (env): admin key works", 200, g2.client.get("/v1/providers"))
        T.ok("keys file alone: no DIR/api-key generated",
             not os.path.exists(os.path.join(data2, "api-key")), "absent", "present")
    finally:
        T.eq("keys file alone: exit 0", 0, g2.stop())
    cleanup_dir(tmp)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
