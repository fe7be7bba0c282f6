#!/usr/bin/env python3
"""Integration test: what a hostile or careless client can make a real
`grantd serve` do.

- A request with a body that is refused anyway (no or wrong API key: 401;
  no route: 404; wrong method: 405) is answered as soon as its head is
  complete, without reading the body, and the connection closes: sixteen
  unauthenticated 64 MiB imports cost nothing.
- --max-buffered bounds the request body bytes held at once: above it
  503 server_busy with Retry-After. The import's body is streamed (not
  held), so an import larger than the cap passes; its answer is held and
  counts: an import whose answer would go over the cap ends with 503
  server_busy, keeping a prefix of its lines.
- A full store is 507 storage_full saying the map is full, and import
  lines that fail to commit keep their id in the results.
- A provider's ca_file that is not a regular file (/dev/zero, a FIFO, a
  directory), is too large, missing or holds no certificate is 422 naming
  the problem; it is read off the event loop, so /healthz keeps answering.
- Key files (GRANTD_MASTER_KEY_FILE, GRANTD_API_KEY_FILE) follow the same
  file rule: a FIFO, a device, a directory or a file over 1 KiB is refused
  at start with a message naming it, without hanging.
- A malformed issuer URL ("https://", no host, bad port, a query) is 422
  invalid_field naming it, before any discovery request.
- Ids and names that HTTP clients rewrite ('.', '..', also percent-encoded)
  are refused with 400 invalid_id on every route that takes one, and in
  import lines; nothing is stored under them.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, RawConn, ServeProc, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()


def raw(g, method, path, body=b"", key=None, extra=""):
    """One raw request (the path is sent exactly as given)."""
    rc = RawConn(g.port)
    h = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
    if key:
        h += "Authorization: Bearer %s\r\n" % key
    if body:
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    rc.send((h + extra + "\r\n").encode() + body)
    r = rc.read_response()
    rc.close()
    return r


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_refused_before_body(g):
    big = 64 << 20
    part = b"x" * (1 << 20)
    cases = [
        ("no API key", "POST /v1/connections:import", None, 401, "unauthorized"),
        ("wrong API key", "POST /v1/connections:import", "wrong-key", 401, "unauthorized"),
        ("no route", "POST /v1/nothing-here", g.api_key, 404, "not_found"),
        ("wrong method", "PATCH /v1/connections/c1", g.api_key, 405, "method_not_allowed"),
    ]
    rss0 = rss_kib(g.proc.pid)
    for label, line, key, status, code in cases:
        rc = RawConn(g.port)
        head = "%s HTTP/1.1\r\nHost: x\r\n" % line
        if key:
            head += "Authorization: Bearer %s\r\n" % key
        head += "Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % big
        rc.send(head.encode())
        try:
            rc.sock.sendall(part)  # a little of the body; the rest never comes
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = rc.read_response()
        if T.ok("%s: answered before the body" % label, r is not None, "a response", "closed"):
            T.error("%s: answered before the body" % label, status, r, code=code)
            T.eq("%s: connection closes" % label, "close", r.headers.get("connection"))
        rc.close()
    # Sixteen at once, each having sent 1 MiB of a 64 MiB import: answered
    # while their bodies are incomplete, and nothing is held for them.
    conns = []
    head = ("POST /v1/connections:import HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % big).encode()
    for _ in range(16):
        rc = RawConn(g.port)
        rc.send(head)
        try:
            rc.sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass
        conns.append(rc)
    answers = [rc.read_response() for rc in conns]
    T.ok("16 unauthenticated imports answered 401", all(a is not None and a.status == 401 for a in answers),
         "all 401", [a.status if a else None for a in answers])
    grown = rss_kib(g.proc.pid) - rss0
    T.ok("16 unauthenticated imports hold no memory", grown < 16 * 1024,
         "RSS growth < 16 MiB", "%d KiB" % grown)
    for rc in conns:
        rc.close()


def test_buffered_cap(work, api_key, master_key):
    g = ServeProc(work, os.path.join(work, "data-cap"), api_key=api_key, master_key=master_key,
                  args=["--max-buffered", "64K", "--max-body", "1M"])
    g.start()
    try:
        rc = RawConn(g.port)
        rc.send(("PUT /v1/providers/cap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Length: %d\r\n\r\n" % (api_key, 128 << 10)).encode())
        r = rc.read_response()
        if T.ok("a body over --max-buffered answered", r is not None, "a response", "closed"):
            T.error("a body over --max-buffered", 503, r, code="server_busy")
            T.ok("503 server_busy has Retry-After", "retry-after" in r.headers, "Retry-After", r.headers)
        rc.close()
        # The import is streamed, never held whole: 600 lines (over 100 KiB)
        # pass a 64 KiB cap, since only their answer is held.
        T.status("PUT provider (cap instance)", 200,
                 g.client.put("/v1/providers/prov", {"token_url": "https://127.0.0.1:9/t"}))
        import json

        def body(n):
            return b"".join(b'{"id":"cap-%05d","tenant":"t","provider":"prov","grant":"refresh_token",'
                            b'"access_token":"x","metadata":{"pad":"%s"}}\n' % (i, b"p" * 160)
                            for i in range(n))
        b = body(600)
        T.ok("the import body is over --max-buffered", len(b) > 64 << 10, "> 64 KiB", len(b))
        r = g.client.post("/v1/connections:import", body=b)
        T.status("an import larger than --max-buffered is streamed", 200, r)
        last = r.text().strip().splitlines()[-1] if r.status == 200 else "{}"
        T.eq("every line of the streamed import stored", 600,
             json.loads(last).get("summary", {}).get("imported"))
        # Its answer is held, and counts: 8000 lines' results (~450 KiB)
        # cannot be held under 64 KiB. 503 server_busy; what was stored is
        # a prefix of the lines (re-sending is safe).
        rc = RawConn(g.port)
        b = body(8000)
        rc.send(("POST /v1/connections:import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Length: %d\r\n\r\n" % (api_key, len(b))).encode())
        try:
            rc.sock.sendall(b)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = rc.read_response()
        rc.close()
        if T.ok("an import whose answer is over --max-buffered answered", r is not None,
                "a response", "closed"):
            T.error("an import whose answer is over --max-buffered", 503, r, code="server_busy")
            T.ok("its 503 has Retry-After", "retry-after" in r.headers, "Retry-After", r.headers)
        ids = []
        cursor = None
        while True:
            lr = g.client.get("/v1/connections?limit=1000" + ("&cursor=" + cursor if cursor else ""))
            j = lr.json() or {}
            ids += [c["id"] for c in j.get("connections", [])]
            cursor = j.get("next_cursor")
            if not cursor:
                break
        T.ok("the cut import stored a prefix of its lines",
             ids == ["cap-%05d" % i for i in range(len(ids))] and 600 <= len(ids) < 8000,
             "cap-00000.. (600 <= n < 8000)", "%d ids" % len(ids))
    finally:
        T.eq("SIGTERM exit status (--max-buffered instance)", 0, g.stop())


def test_store_full_import(work, api_key, master_key):
    g = ServeProc(work, os.path.join(work, "data-full"), api_key=api_key, master_key=master_key,
                  args=["--map-size", "1M"])
    g.start()
    try:
        T.status("PUT provider (tiny map)", 200,
                 g.client.put("/v1/providers/prov", {"token_url": "https://127.0.0.1:9/t"}))
        full = None
        for i in range(600):
            r = g.client.put("/v1/connections/fill-%03d" % i,
                             {"tenant": "t", "provider": "prov", "grant": "refresh_token",
                              "access_token": "x", "metadata": {"pad": "p" * 12000}})
            if r.status != 200:
                full = r
                break
        if not T.ok("the tiny map fills up", full is not None, "a non-200 answer", "600 puts"):
            return
        T.error("PUT into a full store", 507, full, code="storage_full", mentions="map")
        body = b"".join(b'{"id":"imp-%d","tenant":"t","provider":"prov","grant":"refresh_token",'
                        b'"access_token":"x","metadata":{"pad":"%s"}}\n' % (i, b"q" * 12000)
                        for i in range(3))
        r = g.client.post("/v1/connections:import", body=body)
        T.status("import into a full store", 207, r)
        import json
        lines = [json.loads(l) for l in r.text().splitlines() if l]
        results = [l for l in lines if "line" in l]
        T.eq("import results: one per line", 3, len(results))
        T.ok("failed import lines keep their id",
             all(l.get("id") == "imp-%d" % (l.get("line", 0) - 1) for l in results),
             "ids imp-0..2", results)
        T.ok("failed import lines say storage_full",
             all(l.get("error") == "storage_full" for l in results), "storage_full", results)
    finally:
        T.eq("SIGTERM exit status (full store)", 0, g.stop())


def test_bad_ca_file(g, work):
    fifo = os.path.join(work, "ca.fifo")
    os.mkfifo(fifo)
    big = os.path.join(work, "big.pem")
    with open(big, "wb") as f:
        f.write(b"#" * (2 << 20))
    junk = os.path.join(work, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    cases = [("/dev/zero", "file_not_regular", "regular"), (fifo, "file_not_regular", "regular"),
             (work, "file_not_regular", "regular"), (big, "file_too_large", "larger"),
             (os.path.join(work, "missing.pem"), "file_unreadable", "cannot be read"),
             (junk, "invalid_ca_file", "certificate")]
    for path, code, words in cases:
        r = g.client.put("/v1/providers/bad-ca", {"token_url": "https://127.0.0.1:9/t", "ca_file": path})
        if T.error("ca_file %s" % os.path.basename(path), 422, r, code=code, mentions="ca_file"):
            T.ok("ca_file %s: message says why" % os.path.basename(path), words in r.json()["message"],
                 words, r.json()["message"])
        T.status("healthz after ca_file %s" % os.path.basename(path), 200,
                 g.client.get("/healthz", auth=False))
    T.error("nothing stored for a bad ca_file", 404, g.client.get("/v1/providers/bad-ca"))


def test_key_files(work, api_key):
    """GRANTD_MASTER_KEY_FILE / GRANTD_API_KEY_FILE follow the file rule:
    regular files only (a FIFO does not hang the start, /dev/zero is not
    read as a key), at most 1 KiB (refused, not cut), a clear message."""
    fifo = os.path.join(work, "key.fifo")
    os.mkfifo(fifo)
    big = os.path.join(work, "big.key")
    with open(big, "w") as f:
        f.write("a" * 2048)
    cases = [(fifo, "regular"), ("/dev/zero", "regular"), (work, "regular"),
             (big, "larger than 1024"), (os.path.join(work, "missing.key"), "cannot read")]
    for var in ("GRANTD_MASTER_KEY_FILE", "GRANTD_API_KEY_FILE"):
        for path, words in cases:
            label = "%s=%s" % (var, os.path.basename(path))
            env = {var: path}
            g = ServeProc(work, os.path.join(work, "data-keys"),
                          api_key=None if var == "GRANTD_API_KEY_FILE" else api_key,
                          master_key=None if var == "GRANTD_MASTER_KEY_FILE" else "0" * 64, env=env)
            g.spawn()
            st = g.wait_exit(60)
            T.ok("%s: start refused (no hang)" % label, st not in (0, "timeout"), "exit != 0", st)
            log = g.log_text()
            T.ok("%s: the message names the file and says why" % label,
                 path in log and words in log, "%s ... %s" % (path, words), log[-300:])


def test_bad_issuer(g):
    for issuer in ("https://", "https://:443/t", "https://a.example:99999", "https://a.example/t?x=1"):
        r = g.client.put("/v1/providers/bad-issuer", {"issuer": issuer})
        T.error("issuer %r" % issuer, 422, r, code="invalid_field", mentions="issuer")
    T.ok("no discovery was attempted", "discovery_failed" not in g.log_text(), "no discovery_failed",
         "discovery_failed logged")
    T.error("nothing stored for a bad issuer", 404, g.client.get("/v1/providers/bad-issuer"))


def test_dot_ids(g):
    key = g.api_key
    conn = b'{"tenant":"t","provider":"prov","grant":"refresh_token","access_token":"x1"}'
    for seg in (".", "..", "%2E", "%2e%2E", ".%2e", "%2E."):
        for method, path, body in (
                ("PUT", "/v1/connections/%s", conn),
                ("GET", "/v1/connections/%s", b""),
                ("GET", "/v1/connections/%s/token", b""),
                ("DELETE", "/v1/connections/%s", b""),
                ("PUT", "/v1/providers/%s", b'{"token_url":"https://127.0.0.1:9/t"}'),
                ("POST", "/v1/connections/%s/authorize", b"")):
            r = raw(g, method, path % seg, body, key)
            if T.ok("%s %s answered" % (method, path % seg), r is not None, "a response", "closed"):
                T.error("%s %s" % (method, path % seg), 400, r, code="invalid_id")
    r = g.client.post("/v1/connections:import", body=
                      b'{"id":"..","tenant":"t","provider":"prov","grant":"refresh_token","access_token":"x"}\n'
                      b'{"id":"ok-1","tenant":"t","provider":"prov","grant":"refresh_token","access_token":"x"}\n')
    T.status("import with a '..' line", 207, r)
    lines = [l for l in r.text().splitlines() if l]
    import json
    first = json.loads(lines[0]) if lines else {}
    T.eq("the '..' import line is refused", "invalid_id", first.get("error"))
    T.eq("the '..' import line keeps its id", "..", first.get("id"))
    r = g.client.get("/v1/connections")
    ids = [c.get("id") for c in (r.json() or {}).get("connections", [])]
    T.ok("nothing stored under a dot id", "." not in ids and ".." not in ids, "no dot ids", ids)
    T.ok("the good import line is stored", "ok-1" in ids, "ok-1 listed", ids)
    # Dots inside longer ids are ordinary characters.
    T.status("PUT ...", 200, g.client.put("/v1/connections/...", {"tenant": "t", "provider": "prov",
                                                                   "grant": "refresh_token",
                                                                   "access_token": "x"}))
    T.status("GET ...", 200, g.client.get("/v1/connections/..."))


def main():
    work = test_tmpdir("hostile-")
    api_key, master_key = T.secret(rand_key(), rand_master_key())
    g = ServeProc(work, os.path.join(work, "data"), api_key=api_key, master_key=master_key)
    try:
        g.start()
    except RuntimeError as e:
        T.ok("grantd starts", False, "listening", str(e))
        return T.finish()
    try:
        T.status("PUT provider", 200, g.client.put("/v1/providers/prov",
                                                   {"token_url": "https://127.0.0.1:9/t"}))
        test_refused_before_body(g)
        test_bad_issuer(g)
        test_bad_ca_file(g, work)
        test_dot_ids(g)
    finally:
        rc = g.stop()
    test_buffered_cap(work, api_key, master_key)
    test_key_files(work, api_key)
    test_store_full_import(work, api_key, master_key)
    T.eq("SIGTERM exit status", 0, rc)
    T.ok("logs hold no secret", not any(s in g.log_text() for s in T.secrets), "none", "a secret")
    failed = T.finish()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
