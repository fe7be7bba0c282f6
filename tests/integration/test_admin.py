#!/usr/bin/env python3
"""Integration test: the admin commands of the grantd binary.

- backup during a refresh storm (forced refreshes rotating tokens at the
  mock, new connections being written): a server started on the copy has
  every connection acknowledged before the backup began, and `check` reads
  all of the copy; DEST must not exist.
- export | import: connections exported beside a running server and
  imported into a second instance keep tenant, provider, scopes, metadata
  and tokens; the second instance's export equals the first's.
- check on a store with a corrupted record: exit 1, the record named,
  counts by status / provider / key id; a wrong master key is refused.
- list / inspect never print secrets; export refuses a terminal.
- healthcheck: 0 against a ready server, 1 when nothing listens.
- every command: --help exits 0, bad usage exits 2 with one line.
"""
import json
import os
import pty
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, ApiClient, MockProvider, ServeProc, cleanup_dir,  # noqa: E402
                     grantd_bin, make_certs, mock_mint, rand_key, rand_master_key, test_tmpdir)

T = ApiChecks()
CLIENT = ("test-client", "test-secret")
COMMANDS = ["backup", "check", "list", "inspect", "export", "healthcheck"]


def run(args, mk=None, data=None, stdin=None, stdout=subprocess.PIPE, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    if mk:
        env["GRANTD_MASTER_KEY"] = mk
    env.update(extra_env or {})
    cmd = [grantd_bin()] + args + (["--data", data] if data else [])
    return subprocess.run(cmd, env=env, stdin=stdin or subprocess.DEVNULL, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=300)


def one_line(label, p, status):
    err = p.stderr.decode("utf-8", "replace")
    T.eq(label + ": exit %d" % status, status, p.returncode)
    lines = [l for l in err.splitlines() if l.strip()]
    T.ok(label + ": one line on stderr starting with grantd:",
         len(lines) == 1 and lines[0].startswith("grantd: "), "one 'grantd: ...' line", err)
    return lines[0] if lines else ""


def no_secrets(label, text):
    hits = [s for s in T.secrets if s in text]
    T.ok(label + ": no secret in the output", not hits, "no secret", "%d secrets" % len(hits))


def usage_checks(tmp, mk):
    for c in COMMANDS:
        p = run([c, "--help"])
        T.eq("%s --help exits 0" % c, 0, p.returncode)
        T.ok("%s --help prints its usage" % c, b"usage: grantd " + c.encode() in p.stdout,
             "usage line", p.stdout[:200])
        one_line("%s with an unknown option" % c, run([c, "--no-such-option"]), 2)
    one_line("backup without DEST", run(["backup"]), 2)
    one_line("inspect without ID", run(["inspect"]), 2)
    one_line("list with two positionals", run(["list", "a"]), 2)
    one_line("list --status without a value", run(["list", "--status"]), 2)
    empty = os.path.join(tmp, "empty")
    line = one_line("check on a directory without a store", run(["check"], mk, empty), 1)
    T.ok("... names the directory", empty in line, empty, line)
    line = one_line("check without a master key", run(["check"], None, empty), 1)
    T.ok("... says the master key is missing", "no master key" in line, "no master key", line)
    T.ok("check generated no key file", not os.path.exists(os.path.join(empty, "master-key")),
         "no master-key file", "created")


def seed_roundtrip(g):
    c = g.client
    T.status("PUT provider rt", 200, c.put("/v1/providers/rt", {
        "token_url": "https://127.0.0.1:9/token", "client_id": "cid",
        "client_secret": T.secret(rand_key()), "timeout_ms": 2000}))
    ids = []
    for i in range(4):
        cid = "imp-%d" % i
        body = {"tenant": "ten-%d" % (i % 2), "provider": "rt", "grant": "refresh_token",
                "access_token": T.secret(rand_key()), "refresh_token": T.secret(rand_key()),
                "token_type": "Bearer", "expires_in": 86400, "scopes": ["read", "write"],
                "metadata": {"n": str(i)}, "extra": {"instance_url": "https://x%d.example" % i}}
        if i == 3:
            body["client_id"] = "own"
            body["client_secret"] = T.secret(rand_key())
        T.status("PUT " + cid, 200, c.put("/v1/connections/" + cid, body))
        ids.append(cid)
    T.status("PUT pending authorization_code connection", 200,
             c.put("/v1/connections/ac-1", {"tenant": "ten-0", "provider": "rt",
                                            "grant": "authorization_code", "scopes": ["read"]}))
    ids.append("ac-1")
    return ids


def public(g, cid):
    j = g.client.get("/v1/connections/" + cid).json() or {}
    keep = ("id", "tenant", "provider", "scopes", "metadata", "extra", "has_access_token",
            "has_refresh_token", "client_id", "has_client_secret", "expires_at", "token_type")
    return {k: j.get(k) for k in keep}


def phase_roundtrip(tmp, key):
    mk = T.secret(rand_master_key())
    a = ServeProc(tmp, os.path.join(tmp, "rt-a"), api_key=key, master_key=mk).start()
    ids = seed_roundtrip(a)
    T.status("PUT webhook endpoint ops", 201, a.client.put("/v1/webhooks/ops", {
        "url": "https://127.0.0.1:9/hook", "events": ["connection.*"]}))

    p = run(["export"], mk, a.data_dir)
    T.eq("export beside a running server exits 0", 0, p.returncode)
    lines = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    T.eq("export: one line per connection, in id order", sorted(ids), [l["id"] for l in lines])
    T.ok("export includes the tokens", all(l.get("access_token") for l in lines if l["id"] != "ac-1"),
         "access_token on every import line", [sorted(l) for l in lines][:2])
    p2 = run(["export", "--tenant", "ten-1"], mk, a.data_dir)
    T.eq("export --tenant ten-1", ["imp-1", "imp-3"],
         [json.loads(l)["id"] for l in p2.stdout.decode().splitlines() if l.strip()])

    bkey = T.secret(rand_key())
    b = ServeProc(tmp, os.path.join(tmp, "rt-b"), api_key=bkey, master_key=rand_master_key()).start()
    T.status("PUT provider rt on the target", 200, b.client.put("/v1/providers/rt", {
        "token_url": "https://127.0.0.1:9/token", "client_id": "cid", "timeout_ms": 2000}))
    r = b.client.post("/v1/connections:import", body=p.stdout,
                      headers={"Content-Type": "application/x-ndjson"})
    T.status("import of the export", 200, r)
    for cid in ids:
        T.eq("round trip keeps %s" % cid, public(a, cid), public(b, cid))
    for cid in ids[:4]:
        ta = a.client.get("/v1/connections/%s/token" % cid).json() or {}
        tb = b.client.get("/v1/connections/%s/token" % cid).json() or {}
        T.ok("round trip: same access token for %s" % cid,
             ta.get("access_token") and ta.get("access_token") == tb.get("access_token"),
             "equal tokens", "differ")
    pb = run(["export"], b.master_key, b.data_dir)
    T.eq("export of the target equals the source's", p.stdout, pb.stdout)

    # Read-only views never show secrets.
    pl = run(["list"], mk, a.data_dir)
    T.eq("list exits 0", 0, pl.returncode)
    out = pl.stdout.decode()
    T.eq("list: header + one line per connection", len(ids) + 1, len(out.splitlines()))
    no_secrets("list", out + pl.stderr.decode())
    pl = run(["list", "--tenant", "ten-0", "--status", "pending"], mk, a.data_dir)
    T.eq("list --tenant ten-0 --status pending", ["ac-1"],
         [l.split()[0] for l in pl.stdout.decode().splitlines()[1:]])
    one_line("list --status bogus", run(["list", "--status", "bogus"], mk, a.data_dir), 2)
    pi = run(["inspect", "imp-3"], mk, a.data_dir)
    T.eq("inspect exits 0", 0, pi.returncode)
    j = json.loads(pi.stdout)
    T.eq("inspect shows the record", ("imp-3", "ten-1", True, True),
         (j.get("id"), j.get("tenant"), j.get("has_refresh_token"), j.get("has_client_secret")))
    T.eq("inspect names the provider's token URL", "https://127.0.0.1:9/token",
         (j.get("provider_config") or {}).get("token_url"))
    no_secrets("inspect", pi.stdout.decode() + pi.stderr.decode())
    line = one_line("inspect of a missing id", run(["inspect", "nope"], mk, a.data_dir), 1)
    T.ok("... names it", "nope" in line, "nope", line)

    # export onto a terminal: refused before anything is written.
    master, slave = pty.openpty()
    pe = run(["export"], mk, a.data_dir, stdout=slave)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        leaked = os.read(master, 65536).decode("utf-8", "replace")
    except (BlockingIOError, OSError):
        leaked = ""
    os.close(master)
    line = one_line("export to a terminal", pe, 2)
    T.ok("... says why", "terminal" in line, "terminal", line)
    T.eq("... writes nothing to the terminal", "", leaked)

    # healthcheck
    ph = run(["healthcheck", "--listen", "127.0.0.1:%d" % a.port])
    T.eq("healthcheck of a ready server exits 0", 0, ph.returncode)

    # check on a corrupted record (server stopped; mdb_dump/mdb_load rewrite it).
    T.eq("source stops with 0", 0, a.stop())
    T.eq("target stops with 0", 0, b.stop())
    pc = run(["check"], mk, a.data_dir)
    T.eq("check of a sound store exits 0", 0, pc.returncode)
    text = pc.stdout.decode()
    T.ok("check counts by status", "connections by status: active=4, pending=1" in text,
         "active=4, pending=1", text)
    T.ok("check counts by provider", "connections by provider: rt=5" in text, "rt=5", text)
    T.ok("check counts by sealing key id", "sealed fields by key id: 1=" in text, "1=N", text)
    T.ok("check counts the webhook endpoint", "webhook endpoints: 1" in text, "1 endpoint", text)
    corrupt(a.data_dir, "imp-2")
    pc = run(["check"], mk, a.data_dir)
    text = pc.stdout.decode()
    T.eq("check with a corrupted record exits 1", 1, pc.returncode)
    T.ok("check names the bad record", "connections imp-2: record_" in text, "imp-2 listed", text)
    T.ok("check counts it", "undecodable records: 1" in text, "1 undecodable", text)
    T.ok("check still counts the rest", "connections: 5" in text, "5 connections", text)
    no_secrets("check", text + pc.stderr.decode())
    pe = run(["export"], mk, a.data_dir)
    T.eq("export with a bad record exits 1", 1, pe.returncode)
    T.eq("... but writes the readable ones", 4, len(pe.stdout.decode().splitlines()))
    line = one_line("check with a wrong master key", run(["check"], rand_master_key(), a.data_dir), 1)
    T.ok("... says so", "master key" in line, "master key", line)
    ph = run(["healthcheck", "--listen", "127.0.0.1:%d" % a.port])
    T.eq("healthcheck with nothing listening exits 1", 1, ph.returncode)


def corrupt(data_dir, cid):
    """Flips a byte in the middle of connection cid's stored value."""
    dump = subprocess.run(["mdb_dump", "-s", "connections", data_dir], check=True,
                          capture_output=True, text=True).stdout.splitlines()
    want = " " + cid.encode().hex()
    out = []
    i = 0
    while i < len(dump):
        out.append(dump[i])
        if dump[i] == want and i + 1 < len(dump):
            v = bytearray.fromhex(dump[i + 1].strip())
            v[len(v) // 2] ^= 0x5a
            out.append(" " + v.hex())
            i += 1
        i += 1
    subprocess.run(["mdb_load", "-s", "connections", data_dir], input="\n".join(out) + "\n",
                   check=True, capture_output=True, text=True)


def phase_backup(tmp, key):
    certs = make_certs(os.path.join(tmp, "pki"))
    mock = MockProvider(tmp, certs).start()
    mock.config(expires_in=3600, reuse_grace_s=0, rotate_refresh_tokens=True)
    mk = T.secret(rand_master_key())
    g = ServeProc(tmp, os.path.join(tmp, "bk-src"), api_key=key, master_key=mk,
                  args=["--ca-file", certs.ca]).start()
    T.status("PUT provider", 200, g.client.put("/v1/providers/m", {
        "token_url": "https://localhost:%d/token" % mock.port, "client_id": CLIENT[0],
        "client_secret": CLIENT[1]}))
    pairs = [T.secret(at, rt) for at, rt in mock_mint(mock, 20, CLIENT)]
    for i, (at, rt) in enumerate(pairs):
        T.status("PUT s-%d" % i, 200, g.client.put("/v1/connections/s-%d" % i, {
            "tenant": "t", "provider": "m", "grant": "refresh_token", "access_token": at,
            "refresh_token": rt, "expires_in": 3600}))

    stop = threading.Event()
    acked = []          # (monotonic time of the 200, id)
    refreshes = [0]
    lock = threading.Lock()

    def writer():
        cl = ApiClient(g.port, key)
        n = 0
        while not stop.is_set():
            cid = "w-%d" % n
            r = cl.put("/v1/connections/" + cid, {"tenant": "t", "provider": "m",
                                                  "grant": "refresh_token",
                                                  "access_token": "a-%d" % n,
                                                  "refresh_token": "r-%d" % n,
                                                  "expires_in": 3600})
            if r.status == 200:
                with lock:
                    acked.append((time.monotonic(), cid))
            n += 1
        cl.close()

    def refresher(k):
        cl = ApiClient(g.port, key)
        i = k
        while not stop.is_set():
            r = cl.post("/v1/connections/s-%d/refresh" % (i % 20), body=b"")
            if r.status == 200:
                with lock:
                    refreshes[0] += 1
            i += 3
        cl.close()

    threads = [threading.Thread(target=writer)] + \
              [threading.Thread(target=refresher, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    while True:
        with lock:
            if len(acked) >= 30 and refreshes[0] >= 10:
                break
        time.sleep(0.05)
    dest = os.path.join(tmp, "bk-copy")
    began = time.monotonic()
    p = run(["backup", dest], None, g.data_dir)
    for _ in range(3):  # the storm goes on after the copy too
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    T.eq("backup during the storm exits 0", 0, p.returncode)
    T.ok("backup ran during refreshes", refreshes[0] >= 10, ">= 10 refreshes", refreshes[0])
    before = [cid for t, cid in acked if t < began]
    T.ok("connections were acknowledged before the backup", len(before) >= 30, ">= 30", len(before))
    T.eq("backup data.mdb is 0600", 0o600, os.stat(os.path.join(dest, "data.mdb")).st_mode & 0o777)
    one_line("backup onto an existing directory", run(["backup", dest], None, g.data_dir), 2)

    pc = run(["check"], mk, dest)
    T.eq("check of the copy exits 0", 0, pc.returncode)
    T.eq("source stops with 0", 0, g.stop())
    mock.stop()
    r = ServeProc(tmp, dest, api_key=key, master_key=mk).start()
    missing = [cid for cid in before + ["s-%d" % i for i in range(20)]
               if r.client.get("/v1/connections/" + cid).status != 200]
    T.eq("every connection acknowledged before the backup is in the copy", [], missing)
    j = r.client.get("/v1/connections/" + before[-1]).json() or {}
    T.ok("... and readable", j.get("has_access_token") and j.get("has_refresh_token"),
         "tokens present", j)
    tok = r.client.get("/v1/connections/%s/token" % before[0]).json() or {}
    T.eq("... token of the first written connection", "a-0", tok.get("access_token"))
    T.eq("server on the copy stops with 0", 0, r.stop())


def main():
    tmp = test_tmpdir("admin-")
    key = T.secret(rand_key())
    usage_checks(tmp, T.secret(rand_master_key()))
    phase_roundtrip(tmp, key)
    phase_backup(tmp, key)
    code = T.finish()
    if code == 0:
        cleanup_dir(tmp)
    return code


if __name__ == "__main__":
    sys.exit(main())
