#!/usr/bin/env python3
"""Integration test: master-key rotation with a keyring.

A store sealed with the single master key (key id 1) holds a provider with
a client secret and 1500 imported connections. Started with
GRANTD_MASTER_KEYS=2:NEW,1:OLD and a slow --reseal-rate, the re-seal job
moves records to key 2 while tokens keep being served; kill -9 in the
middle leaves every record readable (grantd check: exit 0, records on both
keys); a start with key 1 removed is refused (exit 2, one line naming how
many records need key 1); the next start (keyring from --master-keys-file)
resumes and finishes (reseal_done, grantd_store_records_by_key_id 0 for key
1); then key 1 is removed safely and every token reads the same. A record
sealed with a key later removed is refused at start and listed by grantd
check as record_key_unknown, not a crash. (Start-up failures are checked
as one plain line besides the JSON log.) Both key forms at once, a
malformed keyring: exit 2, one line. SIGHUP reloads a keyring file
(test_reload).
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, ServeProc, cleanup_dir, grantd_bin, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()
N = 1500


def env_of(single=None, ring=None, ring_file=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    if single:
        env["GRANTD_MASTER_KEY"] = single
    if ring:
        env["GRANTD_MASTER_KEYS"] = ring
    if ring_file:
        env["GRANTD_MASTER_KEYS_FILE"] = ring_file
    return env


def check(data, **keys):
    p = subprocess.run([grantd_bin(), "check", "--data", data], env=env_of(**keys),
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"^records by key id:(.*)$", p.stdout, re.M)
    counts = {}
    if m and "none" not in m.group(1):
        for part in m.group(1).split(","):
            k, v = part.strip().split("=")
            counts[int(k)] = int(v)
    return p.returncode, counts, p.stdout + p.stderr


def metric(g, name, labels=""):
    r = g.client.get("/metrics", auth=False)
    for line in r.text().splitlines():
        if line.startswith(name + (("{" + labels + "}") if labels else "") + " "):
            return float(line.split()[-1])
    return None


def wait_for(fn, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    return fn()


def spawn_fail(tmp, data, env, args=()):
    g = ServeProc(tmp, data, api_key=rand_key(), env=env, args=list(args))
    g.spawn()
    rc = g.wait_exit(60)
    # The one line for the operator; JSON log lines may come before it.
    return rc, [x for x in g.log().splitlines() if x.strip() and not x.startswith("{")]


def count_log(g, needle):
    return g.last_log().count(needle)


def hup_and_wait(g, needle, n):
    g.proc.send_signal(signal.SIGHUP)
    return wait_for(lambda: count_log(g, needle) >= n, 60)


def test_reload(tmp, key):
    """SIGHUP reloads a keyring file: a new current key starts a re-seal
    pass; the old key can then be removed without a restart; a keyring that
    drops the current key, lacks a key records need, has a different key
    under a known id, or does not parse is refused and the old one kept."""
    data = os.path.join(tmp, "data-reload")
    old, new, other = (T.secret(rand_master_key()) for _ in range(3))
    kf = os.path.join(tmp, "reload-keys")

    def write(text):
        with open(kf + ".tmp", "w") as f:
            f.write(text)
        os.replace(kf + ".tmp", kf)

    write("1:%s\n" % old)
    g = ServeProc(tmp, data, api_key=key, env={"GRANTD_MASTER_KEYS_FILE": kf}).start()
    ok_n = fail_n = 0
    try:
        T.status("reload: PUT provider", 200, g.client.put("/v1/providers/p", {
            "token_url": "https://127.0.0.1:9/token", "client_id": "c",
            "client_secret": T.secret(rand_key())}))
        toks = {}
        for i in range(20):
            toks["r%02d" % i] = T.secret(rand_key())
            T.status("reload: PUT r%02d" % i, 200, g.client.put("/v1/connections/r%02d" % i, {
                "tenant": "t", "provider": "p", "grant": "refresh_token",
                "access_token": toks["r%02d" % i], "expires_in": 86400}))
        # Refused before anything changes: the current key dropped, a key
        # that differs under id 1, a malformed file.
        for label, text, mention in [
                ("without the current key", "2:%s\n" % new, "the current key"),
                ("another key under id 1", "2:%s\n1:%s\n" % (new, other), "differs"),
                ("malformed", "2:%s\n1:\n" % new, "entry 2")]:
            write(text)
            fail_n += 1
            seen = hup_and_wait(g, '"master_keys_reload_failed"', fail_n)
            line = [x for x in g.last_log().splitlines() if '"master_keys_reload_failed"' in x]
            T.ok("reload %s: refused, naming why" % label, seen and mention in line[-1]
                 and new not in line[-1] and other not in line[-1], mention, T.scrub(line[-1:]))
        r = g.client.get("/v1/connections/r00/token")
        T.eq("refused reloads: tokens still read", toks["r00"], (r.json() or {}).get("access_token"))
        write("# rotate\n2:%s\n1:%s\n" % (new, old))
        ok_n += 1
        T.ok("reload 2:NEW,1:OLD: accepted", hup_and_wait(g, '"master_keys_reloaded"', ok_n),
             "master_keys_reloaded", T.scrub(g.last_log()[-300:]))
        T.ok("reload: the re-seal pass runs and ends", wait_for(
            lambda: count_log(g, '"reseal_done"') >= 1, 60), "reseal_done", T.scrub(g.last_log()[-300:]))
        # The start-up count saw an empty store: key 1 has no series, or 0.
        T.ok("reload: gauge key 1 after the pass", metric(
            g, "grantd_store_records_by_key_id", 'key_id="1"') in (None, 0.0), "0 or absent",
            metric(g, "grantd_store_records_by_key_id", 'key_id="1"'))
        T.eq("reload: gauge key 2 after the pass", 21.0,
             metric(g, "grantd_store_records_by_key_id", 'key_id="2"'))
        write("2:%s\n" % new)
        ok_n += 1
        T.ok("reload 2:NEW alone after the pass: accepted",
             hup_and_wait(g, '"master_keys_reloaded"', ok_n), "master_keys_reloaded",
             T.scrub(g.last_log()[-300:]))
        toks["after"] = T.secret(rand_key())
        T.status("write after the reloads", 200, g.client.put("/v1/connections/after", {
            "tenant": "t", "provider": "p", "grant": "refresh_token",
            "access_token": toks["after"], "expires_in": 86400}))
        bad = sum((g.client.get("/v1/connections/%s/token" % c).json() or {}).get("access_token")
                  != t for c, t in toks.items())
        T.eq("after the reloads: every token reads the same", 0, bad)
    finally:
        T.eq("reload: exit 0", 0, g.stop())
    rc, counts, out = check(data, ring="2:%s" % new)
    T.eq("reload: check with key 2 alone: exit 0", 0, rc)
    T.eq("reload: every record on key 2", {2: 22}, counts)


def main():
    tmp = test_tmpdir("rotation-")
    data = os.path.join(tmp, "data")
    key = T.secret(rand_key())
    old, new, k3 = (T.secret(rand_master_key()) for _ in range(3))
    tokens = {}

    # 1. A store on the single key (key id 1).
    g = ServeProc(tmp, data, api_key=key, master_key=old).start()
    secret = T.secret("cs-" + rand_key())
    T.status("PUT provider", 200, g.client.put("/v1/providers/p", {
        "token_url": "https://127.0.0.1:9/token", "client_id": "c", "client_secret": secret}))
    lines = []
    for i in range(N):
        at = T.secret("at-%d-%s" % (i, rand_key(12)))
        tokens["c%04d" % i] = at
        lines.append(json.dumps({"id": "c%04d" % i, "tenant": "t", "provider": "p",
                                 "grant": "refresh_token", "access_token": at,
                                 "refresh_token": "rt-%d" % i, "expires_in": 86400}))
    r = g.client.request("POST", "/v1/connections:import", body="\n".join(lines) + "\n",
                         headers={"Content-Type": "application/x-ndjson"})
    T.status("import %d connections" % N, 200, r)
    T.eq("single key: exit 0", 0, g.stop())
    rc, counts, out = check(data, single=old)
    T.eq("check on the single key: exit 0", 0, rc)
    T.eq("check: every record on key id 1", {1: N + 1}, counts)

    # 2. Rotation, slowly; kill -9 in the middle.
    ring = "2:%s,1:%s" % (new, old)
    g = ServeProc(tmp, data, api_key=key, env={"GRANTD_MASTER_KEYS": ring},
                  args=["--reseal-rate", "100"]).start()
    T.ok("reseal started", wait_for(lambda: '"reseal_started"' in g.last_log()), "reseal_started",
         T.scrub(g.last_log()[-300:]))
    T.eq("by-key-id gauge at start: key 1", float(N + 1),
         metric(g, "grantd_store_records_by_key_id", 'key_id="1"'))
    moved = wait_for(lambda: (metric(g, "grantd_reseal_records_total") or 0) >= 50)
    T.ok("re-seal progresses", moved, ">= 50 records re-sealed", moved)
    for cid in ("c0000", "c0749", "c1499"):
        r = g.client.get("/v1/connections/%s/token" % cid)
        T.status("token served during the re-seal (%s)" % cid, 200, r)
        T.eq("same token during the re-seal (%s)" % cid, tokens[cid], (r.json() or {}).get("access_token"))
    T.eq("kill -9 during the re-seal", -9, g.kill9())
    rc, counts, out = check(data, ring=ring)
    T.eq("check after kill -9: every record readable (exit 0)", 0, rc)
    T.ok("check after kill -9: records on both keys (stopped mid-way)",
         counts.get(1, 0) > 0 and counts.get(2, 0) > 0, "1=..., 2=...", counts)

    # 3. Removing key 1 while records need it is refused.
    rc, lines = spawn_fail(tmp, data, {"GRANTD_MASTER_KEYS": "2:%s" % new})
    T.eq("key 1 removed while in use: exit 2", 2, rc)
    T.ok("key 1 removed while in use: one line naming the count", len(lines) == 1
         and ("%d records are sealed with master key id 1" % counts.get(1, -1)) in lines[0],
         "'N records are sealed with master key id 1'", T.scrub(lines))

    # 4. Resume (keyring from a file) and finish.
    ring_file = os.path.join(tmp, "master-keys")
    with open(ring_file, "w") as f:
        f.write("# current first\n2:%s\n1:%s\n" % (new, old))
    os.chmod(ring_file, 0o600)
    g = ServeProc(tmp, data, api_key=key, env={"GRANTD_MASTER_KEYS_FILE": ring_file}).start()
    T.ok("resumed re-seal finishes", wait_for(lambda: '"reseal_done"' in g.last_log()),
         "reseal_done", T.scrub(g.last_log()[-300:]))
    T.eq("gauge after the pass: key 1", 0.0, metric(g, "grantd_store_records_by_key_id", 'key_id="1"'))
    T.eq("gauge after the pass: key 2", float(N + 1),
         metric(g, "grantd_store_records_by_key_id", 'key_id="2"'))
    T.eq("re-sealed by the resumed pass", float(counts.get(1, 0)),
         metric(g, "grantd_reseal_records_total"))
    T.eq("resumed: exit 0", 0, g.stop())

    # 5. Key 1 is no longer needed.
    g = ServeProc(tmp, data, api_key=key, env={"GRANTD_MASTER_KEYS": "2:%s" % new}).start()
    bad = 0
    for cid in sorted(tokens)[::50] + ["c1499"]:
        r = g.client.get("/v1/connections/%s/token" % cid)
        bad += r.status != 200 or (r.json() or {}).get("access_token") != tokens[cid]
    T.eq("key 1 removed: sampled tokens read the same", 0, bad)
    T.ok("no re-seal needed", '"reseal_started"' not in g.last_log(), "no reseal_started",
         T.scrub(g.last_log()[-300:]))
    # A record sealed with key 3, which is removed later.
    T.eq("key 2 only: exit 0", 0, g.stop())
    g = ServeProc(tmp, data, api_key=key, env={"GRANTD_MASTER_KEYS": "3:%s,2:%s" % (k3, new)},
                  args=["--reseal-rate", "1"]).start()
    r = g.client.put("/v1/connections/k3", {"tenant": "t", "provider": "p", "grant": "refresh_token",
                                            "access_token": T.secret(rand_key()), "expires_in": 86400})
    T.status("PUT a connection sealed with key 3", 200, r)
    g.kill9()
    rc, counts3, out = check(data, ring="3:%s,2:%s" % (k3, new))
    T.ok("check with key 3: records on key 3 (the connection, and the provider if rewritten)",
         counts3.get(3, 0) >= 1, ">= 1", counts3)
    rc, lines = spawn_fail(tmp, data, {"GRANTD_MASTER_KEYS": "2:%s" % new})
    T.eq("key 3 removed: exit 2", 2, rc)
    T.ok("key 3 removed: one line naming the count", len(lines) == 1
         and ("%d records are sealed with master key id 3" % counts3.get(3, -1)) in lines[0],
         "N records ... id 3", T.scrub(lines))
    rc, counts, out = check(data, ring="2:%s" % new)
    T.eq("check without key 3: exit 1", 1, rc)
    T.ok("check without key 3: the record is named record_key_unknown",
         "connections k3: record_key_unknown" in out, "connections k3: record_key_unknown", T.scrub(out))

    test_reload(tmp, key)

    # 6. Configuration errors.
    rc, lines = spawn_fail(tmp, data, {"GRANTD_MASTER_KEYS": "2:%s" % new, "GRANTD_MASTER_KEY": new})
    T.eq("single key and keyring: exit 2", 2, rc)
    T.ok("single key and keyring: one line", len(lines) == 1 and "not both" in lines[0],
         "... not both", T.scrub(lines))
    rc, lines = spawn_fail(tmp, data, {"GRANTD_MASTER_KEYS": "2:%s,x:%s" % (new, old)})
    T.eq("malformed keyring: exit 2", 2, rc)
    T.ok("malformed keyring: one line naming the entry, no key", len(lines) == 1
         and "entry 2" in lines[0] and new not in lines[0] and old not in lines[0],
         "entry 2 ...", T.scrub(lines))
    with open(ring_file, "w") as f:
        f.write("2:%s\n2:%s\n" % (new, old))
    rc, lines = spawn_fail(tmp, data, {"GRANTD_MASTER_KEYS_FILE": ring_file})
    T.eq("keyring file with a repeated id: exit 2", 2, rc)
    T.ok("repeated id: names the file", len(lines) == 1 and ring_file in lines[0]
         and "given twice" in lines[0], "file ... given twice", T.scrub(lines))
    cleanup_dir(tmp)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
