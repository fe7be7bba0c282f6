#!/usr/bin/env python3
"""Integration test: POST /v1/connections:import is read and committed line
by line while its body streams in (a real `grantd serve`).

- A malformed line in the middle fails only itself; a line longer than
  --max-body fails as line_too_long; results stay in input order, one per
  line, then the summary; a last line without a newline counts.
- A client that disconnects mid-body: what is stored is a prefix of the
  complete lines it sent (no half line, no gap), every stored record reads
  back whole, and re-sending the import is idempotent.
- kill -9 while an import's body is still arriving: after the restart the
  stored ids are a prefix of the lines sent, each with its own token, and
  re-sending the whole import gives the same end state as one clean import.
- An import of more lines than the result window (back-pressure pauses
  reading) keeps every result in order.
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, RawConn, ServeProc, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()


def line(i, prefix="s"):
    return (b'{"id":"%s%06d","tenant":"t","provider":"prov","grant":"refresh_token",'
            b'"access_token":"at-%s-%06d","expires_in":3600}\n' % (prefix.encode(), i,
                                                                   prefix.encode(), i))


def results(r):
    lines = [json.loads(x) for x in r.text().splitlines() if x.strip()]
    return [x for x in lines if "line" in x], (lines[-1].get("summary") if lines else None)


def stored_ids(g, prefix):
    ids, cursor = [], None
    while True:
        q = "/v1/connections?limit=1000" + ("&cursor=" + cursor if cursor else "")
        r = g.client.get(q)
        if r.status != 200:
            raise RuntimeError("listing failed: HTTP %s" % r.status)
        j = r.json()
        ids.extend(c["id"] for c in j["connections"] if c["id"].startswith(prefix))
        cursor = j.get("next_cursor")
        if not cursor:
            return ids


def metric(g, name):
    r = g.client.get("/metrics", auth=False)
    for ln in r.text().splitlines():
        if ln.startswith(name + " ") or ln.startswith(name + "{"):
            return float(ln.rsplit(" ", 1)[1])
    return 0.0


def settle(g, prefix):
    """The ids stored under prefix once no write is pending and the count
    is the same twice in a row."""
    last = None
    for _ in range(600):
        ids = stored_ids(g, prefix)
        if metric(g, "grantd_store_pending_ops") == 0 and ids == last:
            return ids
        last = ids
        time.sleep(0.05)
    return last


def is_prefix(ids, prefix, n_max):
    return ids == ["%s%06d" % (prefix, i) for i in range(len(ids))] and len(ids) <= n_max


def check_tokens(g, ids, prefix, label):
    bad = []
    for cid in ids[:: max(1, len(ids) // 50)] + ids[-1:]:
        r = g.client.get("/v1/connections/%s/token" % cid)
        want = "at-%s-%s" % (prefix, cid[len(prefix):])
        if r.status != 200 or (r.json() or {}).get("access_token") != want:
            bad.append((cid, r.status))
    T.eq("%s: stored records read back whole (sampled tokens)" % label, [], bad)


def post_raw(g, head_len, chunks, close_after=True):
    """Sends an import head declaring head_len body bytes, then chunks."""
    rc = RawConn(g.port)
    rc.send(("POST /v1/connections:import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n"
             % (g.api_key, head_len)).encode())
    for c in chunks:
        rc.sock.sendall(c)
    if close_after:
        rc.close()
    return rc


def test_malformed_and_long(g):
    long_line = b'{"id":"long","tenant":"t","provider":"prov","grant":"refresh_token",' \
                b'"access_token":"x","metadata":{"pad":"%s"}}\n' % (b"L" * 5000)
    body = (line(0, "m") + b"{not json\n" + line(1, "m") + b"\n   \n" + long_line + line(2, "m")
            + b'{"id":"bad..","grant":"refresh_token"}\n' + line(3, "m").rstrip(b"\n"))
    r = g.client.post("/v1/connections:import", body=body,
                      headers={"Content-Type": "application/x-ndjson"})
    T.status("import with a malformed middle line", 207, r)
    res, summ = results(r)
    T.eq("one result per non-blank line, in order", [1, 2, 3, 4, 5, 6, 7],
         [x.get("line") for x in res])
    T.eq("line results", ["m000000", None, "m000001", None, "m000002", "bad..", "m000003"],
         [x.get("id") for x in res])
    T.eq("line errors", [None, "invalid_json", None, "line_too_long", None, "missing_field", None],
         [x.get("error") for x in res])
    T.ok("line_too_long names the limit", "4096" in (res[3].get("message") or ""), "4096 bytes",
         res[3] if len(res) > 3 else None)
    T.eq("summary", {"lines": 7, "imported": 4, "failed": 3}, summ)
    T.eq("only the good lines are stored", ["m000000", "m000001", "m000002", "m000003"],
         stored_ids(g, "m"))
    T.error("the long line is not stored", 404, g.client.get("/v1/connections/long"))


def test_window(g):
    n = 5000  # several result windows: reading pauses and resumes
    body = b"".join(line(i, "w") if i % 997 else b"[1]\n" for i in range(n))
    r = g.client.post("/v1/connections:import", body=body)
    T.status("a 5000-line import", 207, r)
    res, summ = results(r)
    T.eq("5000 results in input order", list(range(1, n + 1)), [x.get("line") for x in res])
    bad = [x["line"] - 1 for x in res if "error" in x]
    T.eq("exactly the non-object lines failed", [i for i in range(n) if i % 997 == 0], bad)
    T.eq("summary of the 5000-line import", n - len(bad), (summ or {}).get("imported"))


def test_disconnect(g):
    n_sent = 3000
    full = [line(i, "d") for i in range(6000)]
    sent = b"".join(full[:n_sent])
    half = full[n_sent][:40]
    total = sum(len(x) for x in full)
    post_raw(g, total, [sent, half])
    ids = settle(g, "d")
    T.ok("disconnect: stored ids are a prefix of the complete lines sent",
         is_prefix(ids, "d", n_sent), "d000000.. (at most %d)" % n_sent,
         "%d ids, first %s, last %s" % (len(ids), ids[:1], ids[-1:]))
    T.ok("disconnect: the half-sent line is not stored", "d%06d" % n_sent not in ids, "absent",
         "stored")
    print("disconnect after %d complete lines: %d stored" % (n_sent, len(ids)), flush=True)
    T.ok("disconnect: the cut is logged", "import_cut_off" in g.log_text(), "import_cut_off",
         "not logged")
    check_tokens(g, ids, "d", "disconnect")
    r = g.client.post("/v1/connections:import", body=b"".join(full))
    res, summ = results(r)
    T.status("disconnect: re-sending the whole import", 200, r)
    T.eq("disconnect: re-sent import stores every line", 6000, (summ or {}).get("imported"))
    ids = stored_ids(g, "d")
    T.eq("disconnect: one record per line after the re-send", 6000, len(ids))
    check_tokens(g, ids, "d", "disconnect re-send")


def test_kill9(work, api_key, master_key):
    g = ServeProc(work, os.path.join(work, "data-kill"), api_key=api_key, master_key=master_key)
    g.start()
    n = 20000
    full = [line(i, "k") for i in range(n)]
    total = sum(len(x) for x in full)
    try:
        T.status("kill: PUT provider", 200,
                 g.client.put("/v1/providers/prov", {"token_url": "https://127.0.0.1:9/t"}))
        # Half the body, then wait until some of it is durable: the process
        # dies while the body is still arriving and writes may be in flight.
        rc = post_raw(g, total, [b"".join(full[: n // 2])], close_after=False)
        for _ in range(600):
            if metric(g, "grantd_store_ops_committed_total") >= 1000:
                break
            time.sleep(0.02)
        rc.sock.sendall(b"".join(full[n // 2: n // 2 + 2000]))
        g.kill9()
        rc.close()
        g.start()
        ids = stored_ids(g, "k")
        T.ok("kill: stored ids are a prefix of the lines sent", is_prefix(ids, "k", n // 2 + 2000),
             "k000000.. (at most %d)" % (n // 2 + 2000),
             "%d ids, first %s, last %s" % (len(ids), ids[:1], ids[-1:]))
        T.ok("kill: some lines were committed before the kill", len(ids) >= 1000, ">= 1000",
             len(ids))
        print("kill -9 after %d of %d lines sent: %d stored" % (n // 2 + 2000, n, len(ids)),
              flush=True)
        check_tokens(g, ids, "k", "kill")
        r = g.client.post("/v1/connections:import", body=b"".join(full))
        res, summ = results(r)
        T.status("kill: re-sending the whole import", 200, r)
        T.eq("kill: re-sent import stores every line", n, (summ or {}).get("imported"))
        ids = stored_ids(g, "k")
        T.eq("kill: one record per line after the re-send", n, len(ids))
        check_tokens(g, ids, "k", "kill re-send")
    finally:
        T.eq("kill: SIGTERM exit status", 0, g.stop())


def main():
    work = test_tmpdir("import-")
    api_key, master_key = T.secret(rand_key(), rand_master_key())
    g = ServeProc(work, os.path.join(work, "data"), api_key=api_key, master_key=master_key,
                  args=["--max-body", "4K"])
    try:
        g.start()
    except RuntimeError as e:
        T.ok("grantd starts", False, "listening", str(e))
        return T.finish()
    try:
        T.status("PUT provider", 200, g.client.put("/v1/providers/prov",
                                                   {"token_url": "https://127.0.0.1:9/t"}))
        test_malformed_and_long(g)
        test_window(g)
        test_disconnect(g)
    finally:
        rc = g.stop()
    T.eq("SIGTERM exit status", 0, rc)
    test_kill9(work, api_key, master_key)
    failed = T.finish()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
