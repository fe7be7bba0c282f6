#!/usr/bin/env python3
"""Integration test: durability, secrets at rest, keys and the command line
of a real `grantd serve`.

Restart persistence (SIGTERM -> exit 0 -> same stored fields and tokens;
the engine's own fields of connections it keeps retrying are not compared),
kill -9 right after an acknowledged write (x20), no plaintext secret or key
anywhere in the data dir or the logs, generated API/master keys (0600 files
in a 0700 dir, reused on restart, never logged), a wrong master key, a
sealed store started without its key (exit 2, one line, nothing written),
SIGHUP (a reload; without an API keys file nothing changes), invalid configuration (exit 2, one line), `grantd
version`, `grantd serve --help`, JSON log lines, and a tiny --map-size
filling up (507 storage_full naming the map, earlier data intact).
"""
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, ServeProc, find_in_dir, grantd_bin,  # noqa: E402
                     rand_key, rand_master_key, test_tmpdir)

T = ApiChecks()
KILL_ROUNDS = 20


def token_of(g, cid):
    r = g.client.get("/v1/connections/%s/token" % cid)
    return r.status, (r.json() or {}).get("access_token")


def check_token(label, g, cid, want):
    st, tok = token_of(g, cid)
    return T.ok(label, st == 200 and tok == want, "200 with the stored token",
                "HTTP %s, %s" % (st, "same token" if tok == want else "other token" if tok else "no token"))


def check_log_lines(label, text):
    bad = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            if not isinstance(o, dict) or "level" not in o:
                bad.append(line)
        except ValueError:
            bad.append(line)
    T.ok(label + ": every stderr line is a JSON object with a level", not bad,
         "JSON lines", "%d other lines, first: %s" % (len(bad), bad[:1]))
    T.ok(label + ": logs hold no secret", not any(s in text for s in T.secrets), "no secret", "a secret value")


def no_secrets_on_disk(label, data_dir, extra=(), skip=()):
    needles = list(T.secrets) + list(extra)
    hits = [(p, n) for p, n in find_in_dir(data_dir, needles) if os.path.basename(p) not in skip]
    files = sorted({os.path.basename(p) for p, _ in hits})
    T.ok(label, not hits, "no plaintext secret in %s" % os.path.basename(data_dir),
         "%d hits in %s" % (len(hits), files))


def seed(g, s):
    c = g.client
    r = c.put("/v1/providers/pp", {"token_url": "https://127.0.0.1:9/token", "client_id": "cid",
                                   "client_secret": s["cs"], "timeout_ms": 2000})
    T.status("PUT provider", 200, r)
    for i in range(3):
        r = c.put("/v1/connections/imp-%d" % i, {"tenant": "ten-%d" % (i % 2), "provider": "pp",
                                                  "grant": "refresh_token", "access_token": s["at%d" % i],
                                                  "refresh_token": s["rt%d" % i], "expires_in": 86400,
                                                  "metadata": {"n": str(i)}})
        T.status("PUT imp-%d" % i, 200, r)
    # Grants that need the network: stored whatever the (unreachable) provider says.
    r = c.put("/v1/connections/pw-1", {"tenant": "ten-0", "provider": "pp", "grant": "password",
                                       "username": "alice", "password": s["pw"]})
    T.status("PUT password connection", 200, r)
    r = c.put("/v1/connections/cc-1", {"tenant": "ten-1", "provider": "pp", "grant": "client_credentials",
                                       "client_id": "other", "client_secret": s["cs2"]})
    T.status("PUT client_credentials connection with its own secret", 200, r)


# What the engine changes on its own clock while it retries a failing
# connection; everything else in a view is stored and a restart keeps it.
ENGINE_FIELDS = ("status", "failures", "last_error", "refreshed_at", "next_refresh_at", "updated_at",
                 "revision")


def kept(conn):
    return {k: v for k, v in conn.items() if k not in ENGINE_FIELDS}


def by_id(conns):
    return {c["id"]: c for c in conns or []}


def wait_for(fn, timeout=60):
    """Polls fn() until it is true (True) or the deadline passes (False)."""
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def snapshot(g):
    c = g.client
    prov = c.get("/v1/providers/pp").json()
    conns = (c.get("/v1/connections").json() or {}).get("connections")
    return prov, conns


def test_restart(work, keys, s):
    data = os.path.join(work, "data")
    g = ServeProc(work, data, api_key=keys[0], master_key=keys[1])
    g.start()
    try:
        seed(g, s)
        before = snapshot(g)
    finally:
        rc = g.stop()
    T.eq("SIGTERM exit status", 0, rc)
    T.ok("data dir is 0700", stat.S_IMODE(os.stat(data).st_mode) == 0o700, "0700",
         oct(stat.S_IMODE(os.stat(data).st_mode)))
    no_secrets_on_disk("no plaintext secret on disk after SIGTERM", data)

    g.start()
    try:
        # pw-1 and cc-1 keep failing (their provider is unreachable) and
        # are retried on the engine's clock, before and after the restart.
        # Take the second snapshot only once one of them has retried since
        # the restart, so that a comparison of what the engine changes
        # while it runs fails every time, not only on a slow machine.
        failing = {c["id"]: c["failures"] for c in before[1] or [] if c.get("failures")}
        T.ok("connections failing before the restart", set(failing) == {"pw-1", "cc-1"},
             "pw-1 and cc-1", sorted(failing))
        T.ok("a failing connection is retried after the restart", wait_for(
            lambda: any(c["id"] in failing and c["failures"] > failing[c["id"]]
                        for c in snapshot(g)[1] or [])), "failures grow", "no retry")
        after = snapshot(g)
        T.eq("provider unchanged after restart", before[0], after[0])
        b_by, a_by = by_id(before[1]), by_id(after[1])
        T.eq("the same connections after restart", sorted(b_by), sorted(a_by))
        for cid in sorted(set(b_by) & set(a_by)):
            b, a = b_by[cid], a_by[cid]
            if cid in failing:
                T.eq("%s: stored fields kept across the restart" % cid, kept(b), kept(a))
                T.ok("%s: still failing, failures not reset" % cid, a["last_error"] and
                     a["failures"] >= b["failures"], ">= %d failures" % b["failures"], (a["failures"], a["last_error"]))
            else:  # nothing for the engine to do: the whole view is kept
                T.eq("%s: unchanged after restart" % cid, b, a)
        T.ok("connections listed", isinstance(after[1], list) and len(after[1]) == 5, 5,
             len(after[1] or []))
        T.eq("provider still has its secret", True, (after[0] or {}).get("has_client_secret"))
        for i in range(3):
            check_token("token of imp-%d after restart" % i, g, "imp-%d" % i, s["at%d" % i])
    finally:
        rc = g.stop()
    T.eq("SIGTERM exit status after restart", 0, rc)
    return g


def test_kill9(g, s):
    acked = {}
    deleted = []
    for i in range(KILL_ROUNDS):
        g.start()
        try:
            bad = [cid for cid, tok in acked.items() if token_of(g, cid) != (200, tok)]
            T.ok("kill -9 round %d: every acknowledged record survived" % i, not bad,
                 "all %d present" % len(acked), "missing or wrong: %s" % bad)
            gone = [cid for cid in deleted if g.client.get("/v1/connections/" + cid).status != 404]
            T.ok("kill -9 round %d: acknowledged deletes stayed deleted" % i, not gone, "404", gone)
            if i % 5 == 4 and acked:
                cid = sorted(acked)[0]
                r = g.client.delete("/v1/connections/" + cid)
                if T.status("kill -9 round %d: DELETE %s" % (i, cid), 200, r):
                    del acked[cid]
                    deleted.append(cid)
            cid = "k9-%02d" % i
            tok = T.secret("k9tok-%d-%s" % (i, rand_key(12)))
            r = g.client.put("/v1/connections/" + cid, {"tenant": "k9", "provider": "pp",
                                                        "grant": "refresh_token", "access_token": tok,
                                                        "refresh_token": T.secret("k9rt-" + rand_key(12)),
                                                        "expires_in": 3600})
        finally:
            rc = g.kill9()
        if T.status("kill -9 round %d: PUT acknowledged" % i, 200, r):
            acked[cid] = tok
        T.eq("kill -9 round %d: killed by SIGKILL" % i, -9, rc)
    g.start()
    try:
        bad = [cid for cid, tok in acked.items() if token_of(g, cid) != (200, tok)]
        T.ok("after %d kill -9 rounds: every acknowledged record is there" % KILL_ROUNDS, not bad,
             "all %d present" % len(acked), "missing or wrong: %s" % bad)
        for i in range(3):
            check_token("imp-%d after the kill -9 rounds" % i, g, "imp-%d" % i, s["at%d" % i])
    finally:
        T.eq("SIGTERM exit status after kill -9 rounds", 0, g.stop())
    no_secrets_on_disk("no plaintext secret on disk after kill -9", g.data_dir,
                       [bytes.fromhex(g.master_key)])


def test_wrong_master_key(g, s):
    wrong = T.secret(rand_master_key())
    bad = ServeProc(g.workdir, g.data_dir, api_key=g.api_key, master_key=wrong)
    bad.spawn()
    rc = bad.wait_exit(60)
    T.ok("wrong master key: non-zero exit", rc not in (0, "timeout"), "a non-zero exit status", rc)
    text = bad.last_log()
    lines = [x for x in text.splitlines() if x.strip()]
    T.ok("wrong master key: says so", any(re.search(r"master.key|key", x, re.I) for x in lines),
         "a line about the master key", T.scrub(lines[-3:]))
    T.ok("wrong master key: no crash report", "Sanitizer" not in text and "Traceback" not in text,
         "no sanitizer report", "a sanitizer report")
    T.ok("wrong master key: short", 1 <= len(lines) <= 5, "one readable line (a few at most)", len(lines))
    T.ok("wrong master key: never listened", not os.path.exists(bad.port_file), "no port file", "port file")
    T.ok("wrong master key: key values not logged", wrong not in text and g.master_key not in text,
         "not logged", "logged")
    # The right key still opens everything.
    g.start()
    try:
        check_token("data intact after a wrong-key start", g, "imp-0", s["at0"])
    finally:
        T.eq("SIGTERM exit status (right key again)", 0, g.stop())
    check_log_lines("main data dir", g.log_text())


def run_cli(args, env_extra=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    env.update(env_extra or {})
    p = subprocess.run([grantd_bin()] + args, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_cli(work, keys):
    keyenv = {"GRANTD_API_KEY": keys[0], "GRANTD_MASTER_KEY": keys[1]}
    data = os.path.join(work, "cli-data")
    base = ["serve", "--data", data, "--port-file", os.path.join(work, "cli-port")]
    cases = [
        ("--listen nonsense", ["--listen", "nonsense"], {}, "listen"),
        ("--listen port out of range", ["--listen", "127.0.0.1:99999"], {}, "listen"),
        ("--map-size 12Q", ["--listen", "127.0.0.1:0", "--map-size", "12Q"], {}, "map-size"),
        ("--max-connections 0", ["--listen", "127.0.0.1:0", "--max-connections", "0"], {}, "max-connections"),
        ("--log-level loud", ["--listen", "127.0.0.1:0", "--log-level", "loud"], {}, "log-level"),
        ("unknown option", ["--listen", "127.0.0.1:0", "--frobnicate"], {}, "frobnicate"),
        ("GRANTD_LISTEN=nonsense", [], {"GRANTD_LISTEN": "nonsense"}, "listen"),
        ("GRANTD_MAP_SIZE=lots", ["--listen", "127.0.0.1:0"], {"GRANTD_MAP_SIZE": "lots"}, "MAP_SIZE"),
        ("malformed master key", ["--listen", "127.0.0.1:0"], {"GRANTD_MASTER_KEY": "not-a-key"}, "key"),
    ]
    for label, args, env, mention in cases:
        env = dict(keyenv, **env)
        rc, out, err = run_cli(base + args, env)
        lines = [x for x in err.splitlines() if x.strip()]
        T.eq("invalid configuration (%s): exit status" % label, 2, rc)
        T.ok("invalid configuration (%s): one line on stderr" % label, len(lines) == 1, "1 line",
             T.scrub(lines[:4]))
        T.ok("invalid configuration (%s): names %s" % (label, mention),
             any(mention.lower() in x.lower() for x in lines), mention, T.scrub(lines[:2]))
    T.ok("invalid configuration never listens", not os.path.exists(os.path.join(work, "cli-port")),
         "no port file", "port file written")
    rc, out, err = run_cli(["frobnicate"], keyenv)
    T.eq("unknown command: exit status", 2, rc)

    rc, out, err = run_cli(["version"])
    T.eq("grantd version: exit status", 0, rc)
    T.ok("grantd version prints a version", re.search(r"\d+\.\d+\.\d+", out), "x.y.z on stdout", out[:200])

    rc, out, err = run_cli(["serve", "--help"])
    T.eq("grantd serve --help: exit status", 0, rc)
    text = out + err
    for flag, env in [("--listen", "GRANTD_LISTEN"), ("--data", "GRANTD_DATA"),
                      ("--port-file", "GRANTD_PORT_FILE"), ("--ca-file", "GRANTD_CA_FILE"),
                      ("--log-level", "GRANTD_LOG_LEVEL"), ("--map-size", "GRANTD_MAP_SIZE"),
                      ("--max-connections", "GRANTD_MAX_CONNECTIONS"),
                      ("--header-timeout", "GRANTD_HEADER_TIMEOUT_MS")]:
        T.ok("--help lists %s with %s" % (flag, env), any(flag in x and env in x for x in text.splitlines()),
             "%s and %s on one line" % (flag, env), "missing")
    for env in ("GRANTD_API_KEY", "GRANTD_MASTER_KEY"):
        T.ok("--help names %s" % env, env in text, env, "missing")
    T.ok("--help shows the default listen address", "127.0.0.1:8484" in text, "127.0.0.1:8484", "missing")


def test_generated_keys(work):
    data = os.path.join(work, "gen", "data")
    os.makedirs(os.path.dirname(data))
    g = ServeProc(work, data)                 # no GRANTD_API_KEY / GRANTD_MASTER_KEY
    try:
        g.start()
    except RuntimeError as e:
        T.ok("starts without keys", False, "listening", T.scrub(str(e)))
        return
    apath, mpath = os.path.join(data, "api-key"), os.path.join(data, "master-key")
    try:
        T.ok("generated data dir is 0700", stat.S_IMODE(os.stat(data).st_mode) == 0o700, "0700",
             oct(stat.S_IMODE(os.stat(data).st_mode)))
        ok = True
        for p in (apath, mpath):
            exists = os.path.isfile(p)
            ok &= T.ok("%s generated" % os.path.basename(p), exists, "a file", "missing")
            if exists:
                T.ok("%s is 0600" % os.path.basename(p), stat.S_IMODE(os.stat(p).st_mode) == 0o600, "0600",
                     oct(stat.S_IMODE(os.stat(p).st_mode)))
        if not ok:
            return
        with open(apath, "rb") as f:
            api_raw = f.read()
        with open(mpath, "rb") as f:
            master_raw = f.read()
        api_key = api_raw.decode().strip()
        T.secret(api_key, master_raw.decode("latin-1").strip())
        T.ok("generated API key is long enough", len(api_key) >= 32, ">= 32 chars", len(api_key))
        g.api_key = api_key
        g.client.api_key = api_key
        T.status("generated API key works", 200, g.client.get("/v1/providers"))
        T.error("other keys still rejected", 401, g.client.get("/v1/providers", key=rand_key()))
        log = g.last_log()
        T.ok("log says where the API key is", "api-key" in log, "the api-key path in the log", "absent")
        T.ok("log says where the master key is", "master-key" in log, "the master-key path in the log", "absent")
        T.ok("first start with a generated master key: warns", "master_key_beside_data" in log,
             "a master_key_beside_data warning", T.scrub(log[-300:]))
        T.ok("log never shows the generated keys", api_key not in log and master_raw.strip().decode("latin-1")
             not in log, "not in the log", "a key value in the log")
        tok = T.secret("gen-at-" + rand_key())
        T.status("PUT provider (generated keys)", 200,
                 g.client.put("/v1/providers/gp", {"token_url": "https://127.0.0.1:9/t"}))
        T.status("PUT connection (generated keys)", 200,
                 g.client.put("/v1/connections/g1", {"tenant": "t", "provider": "gp", "grant": "refresh_token",
                                                     "access_token": tok, "expires_in": 3600}))
    finally:
        T.eq("SIGTERM exit status (generated keys)", 0, g.stop())
    g.start()
    try:
        with open(apath, "rb") as f:
            T.ok("api-key file unchanged by restart", f.read() == api_raw, "same", "changed")
        with open(mpath, "rb") as f:
            T.ok("master-key file unchanged by restart", f.read() == master_raw, "same", "changed")
        T.status("generated API key works after restart", 200, g.client.get("/v1/providers"))
        check_token("token readable after restart (master key reused)", g, "g1", tok)
        T.ok("restart log never shows the keys", api_key not in g.last_log(), "absent", "present")
        warn = [x for x in g.last_log().splitlines() if '"master_key_beside_data"' in x]
        T.ok("restart with DIR/master-key: warns that the key is beside the data", len(warn) == 1
             and '"level":"warn"' in warn[0] and mpath in warn[0]
             and "GRANTD_MASTER_KEY_FILE" in warn[0], "one warning naming the file and the fix",
             T.scrub(warn))
    finally:
        T.eq("SIGTERM exit status (generated keys, restart)", 0, g.stop())
    # The same key passed from a "secret" file: no warning.
    secret_file = os.path.join(work, "gen", "master-key-secret")
    with open(secret_file, "wb") as f:
        f.write(master_raw)
    g.env["GRANTD_MASTER_KEY_FILE"] = secret_file
    g.start()
    try:
        check_token("token readable with the key from GRANTD_MASTER_KEY_FILE", g, "g1", tok)
        T.ok("key from a secret file: no master_key_beside_data warning",
             "master_key_beside_data" not in g.last_log(), "no warning", T.scrub(g.last_log()[-300:]))
    finally:
        T.eq("SIGTERM exit status (generated keys, key from a file)", 0, g.stop())
    del g.env["GRANTD_MASTER_KEY_FILE"]
    no_secrets_on_disk("no plaintext secret in the generated-keys data dir (besides the key files)", data,
                       skip=("api-key", "master-key"))
    check_log_lines("generated keys", g.log_text())


def start_seeded(work, keys, name):
    """A grantd on its own data directory work/name, with a provider
    (unreachable: nothing is refreshed) and one imported connection `name`
    holding a new token for an hour. Returns (the ServeProc, the token)."""
    g = ServeProc(work, os.path.join(work, name), api_key=keys[0], master_key=keys[1])
    g.start()
    tok = T.secret("%s-at-%s" % (name, rand_key()))
    T.status(name + ": PUT provider", 200, g.client.put("/v1/providers/p-" + name,
                                                        {"token_url": "https://127.0.0.1:9/t"}))
    T.status(name + ": PUT connection", 200,
             g.client.put("/v1/connections/" + name, {"tenant": "t", "provider": "p-" + name,
                                                      "grant": "refresh_token", "access_token": tok,
                                                      "expires_in": 3600}))
    return g, tok


def wait_log_count(g, needle, count, timeout=60):
    """Waits until the current log of g holds needle `count` times (True),
    or g exits / the deadline passes (False). No timing is asserted."""
    deadline = time.monotonic() + timeout
    while g.last_log().count(needle) < count:
        if g.proc.poll() is not None or time.monotonic() > deadline:
            return g.last_log().count(needle) >= count
        time.sleep(0.05)
    return True


def test_sighup(work, keys):
    """SIGHUP reloads; without an API keys file there is nothing to reload
    and it says so: the server keeps serving, and a later SIGTERM still
    drains and exits 0 (SIGHUPs do not count as a first signal)."""
    g, tok = start_seeded(work, keys, "hup")
    try:
        for n in (1, 2):
            g.proc.send_signal(signal.SIGHUP)
            seen = wait_log_count(g, '"api_keys_not_reloaded"', n)
            T.ok("SIGHUP #%d: logged" % n, seen, "an api_keys_not_reloaded line",
                 T.scrub(g.last_log()[-300:]))
            T.ok("SIGHUP #%d: still running" % n, g.proc.poll() is None, "running",
                 "exited with %s" % g.proc.poll())
            if g.proc.poll() is not None:
                return
            T.status("SIGHUP #%d: healthz" % n, 200, g.client.get("/healthz", auth=False))
            check_token("SIGHUP #%d: token still served" % n, g, "hup", tok)
        line = [x for x in g.last_log().splitlines() if '"reloading"' in x][:1]
        T.ok("SIGHUP: the reload line names SIGHUP", bool(line) and "SIGHUP" in line[0],
             "reloading ... SIGHUP", T.scrub(line))
        line = [x for x in g.last_log().splitlines() if '"api_keys_not_reloaded"' in x][:1]
        T.ok("SIGHUP: says why nothing was reloaded", bool(line) and "--api-keys-file" in line[0],
             "... --api-keys-file ...", T.scrub(line))
    finally:
        rc = g.stop()
    T.eq("SIGTERM after SIGHUPs: drains and exits 0", 0, rc)
    T.ok("SIGTERM after SIGHUPs: an orderly shutdown", "shutting_down" in g.last_log()
         and "exit_now" not in g.last_log(), "shutting_down, no exit_now", T.scrub(g.last_log()[-300:]))
    check_log_lines("SIGHUP", g.log_text())


def dir_state(d):
    """{file name: (size, mtime_ns)} of a directory, to see that nothing was
    written."""
    out = {}
    for name in sorted(os.listdir(d)):
        st = os.stat(os.path.join(d, name))
        out[name] = (st.st_size, st.st_mtime_ns)
    return out


def test_sealed_store_without_key(work, keys):
    """A data directory that holds a store sealed with a given master key,
    started without any master key setting: exit 2 with one line saying the
    store is sealed and how to give its key, and nothing written (no
    generated master-key, not even an api-key)."""
    g, tok = start_seeded(work, keys, "sealed")
    data = g.data_dir
    T.eq("sealed: SIGTERM exit status", 0, g.stop())
    for label, api_key in (("no key setting at all", None), ("API key only", keys[0])):
        before = dir_state(data)
        bad = ServeProc(work, data, api_key=api_key, master_key=None)
        bad.spawn()
        rc = bad.wait_exit(60)
        text = bad.last_log()
        lines = [x for x in text.splitlines() if x.strip()]
        T.eq("sealed store, %s: exit status 2" % label, 2, rc)
        T.ok("sealed store, %s: one line" % label, len(lines) == 1, "1 line", T.scrub(lines[:4]))
        line = lines[0] if lines else ""
        T.ok("sealed store, %s: says the store is sealed and how to give its key" % label,
             "sealed" in line and "GRANTD_MASTER_KEY" in line and "GRANTD_MASTER_KEY_FILE" in line,
             "sealed ... GRANTD_MASTER_KEY ... GRANTD_MASTER_KEY_FILE", T.scrub(line))
        T.ok("sealed store, %s: no master-key written" % label,
             not os.path.exists(os.path.join(data, "master-key")), "no master-key file", "a stray master-key")
        T.eq("sealed store, %s: the data directory is unchanged" % label, before, dir_state(data))
        T.ok("sealed store, %s: never listened" % label, not os.path.exists(bad.port_file), "no port file",
             "port file")
    g.start()
    try:
        check_token("sealed store: the right key still opens it", g, "sealed", tok)
    finally:
        T.eq("sealed store: SIGTERM exit status (right key)", 0, g.stop())


def test_map_full(work, keys):
    data = os.path.join(work, "tiny")
    g = ServeProc(work, data, api_key=keys[0], master_key=keys[1], args=["--map-size", "1M"])
    g.start()
    acked = {}
    full = None
    try:
        T.status("PUT provider (tiny map)", 200,
                 g.client.put("/v1/providers/tp", {"token_url": "https://127.0.0.1:9/t"}))
        for i in range(600):
            cid = "fill-%03d" % i
            tok = T.secret("fill-%d-%s" % (i, rand_key(9)))
            r = g.client.put("/v1/connections/" + cid, {"tenant": "t", "provider": "tp", "grant": "refresh_token",
                                                        "access_token": tok, "expires_in": 3600,
                                                        "metadata": {"pad": os.urandom(6000).hex()}})
            if r.status == 200:
                acked[cid] = tok
                continue
            full = (cid, r)
            break
        if not T.ok("a tiny map fills up", full is not None, "a non-200 answer", "600 puts accepted"):
            return
        print("  --map-size 1M: %d connections acknowledged before the store filled up" % len(acked))
        T.error("store full", 507, full[1], code="storage_full", mentions="map")
        T.ok("some puts were acknowledged first", len(acked) >= 5, ">= 5", len(acked))
        T.error("the rejected record is not there", 404, g.client.get("/v1/connections/" + full[0]))
        first, last = sorted(acked)[0], sorted(acked)[-1]
        check_token("first record readable when full", g, first, acked[first])
        check_token("last record readable when full", g, last, acked[last])
        T.status("healthz when full", 200, g.client.get("/healthz", auth=False))
    finally:
        T.eq("SIGTERM exit status (full store)", 0, g.stop())
    g.start()
    try:
        bad = [cid for cid, tok in acked.items() if token_of(g, cid) != (200, tok)]
        T.ok("every acknowledged record intact after restart", not bad, "all %d" % len(acked), bad[:5])
        T.error("the rejected record is still not there", 404, g.client.get("/v1/connections/" + full[0]))
    finally:
        T.eq("SIGTERM exit status (full store, restart)", 0, g.stop())
    check_log_lines("tiny map", g.log_text())


def main():
    work = test_tmpdir("persist-")
    keys = T.secret(rand_key(), rand_master_key())
    s = {k: T.secret("%s-%s" % (k, rand_key())) for k in
         ("cs", "cs2", "pw", "at0", "at1", "at2", "rt0", "rt1", "rt2")}
    try:
        test_cli(work, keys)
        g = test_restart(work, keys, s)
        test_kill9(g, s)
        test_wrong_master_key(g, s)
        test_generated_keys(work)
        test_sighup(work, keys)
        test_sealed_store_without_key(work, keys)
        test_map_full(work, keys)
    except RuntimeError as e:       # grantd failed to start: report, do not hang
        T.ok("grantd starts", False, "listening", T.scrub(str(e)))
    failed = T.finish()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
