#!/usr/bin/env python3
"""Integration test: the HTTP server's limits and protocol handling on a real
`grantd serve`.

Body over 64 KiB -> 413, header block too large -> 431, malformed requests
-> 400, header/body timeouts -> 408 (--header-timeout 500), invalid JSON ->
400, pipelined requests answered in order, too many open connections -> 503
(--max-connections 5), and 1000 concurrent keep-alive clients all answered.
Every error answer must carry the JSON envelope {"error", "message"}.
"""
import asyncio
import json
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, RawConn, ServeProc, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()
N_TOKENS = 20
N_CLIENTS = 1000
REQS_PER_CLIENT = 3


def req(method, path, key=None, body=None, extra=""):
    """Raw HTTP/1.1 request bytes."""
    h = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, path)
    if key:
        h += "Authorization: Bearer %s\r\n" % key
    b = b""
    if body is not None:
        b = body if isinstance(body, bytes) else json.dumps(body).encode()
        h += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(b)
    return (h + extra + "\r\n").encode() + b


def send_until_answer(rc, head, chunks):
    """Sends the head, then body chunks until the server answers (it may
    answer and close before reading the whole body)."""
    rc.send(head)
    for ch in chunks:
        if rc.readable(0):
            break
        try:
            rc.sock.sendall(ch)
        except (BrokenPipeError, ConnectionResetError):
            break
    return rc.read_response()


def seed(g, tokens):
    c = g.client
    T.status("PUT provider", 200, c.put("/v1/providers/prov", {"token_url": "https://127.0.0.1:9/t"}))
    ok = True
    for i, tok in enumerate(tokens):
        r = c.put("/v1/connections/tok-%d" % i, {"tenant": "t", "provider": "prov", "grant": "refresh_token",
                                                 "access_token": tok, "expires_in": 86400})
        ok &= r.status == 200
    T.ok("seed %d connections" % len(tokens), ok, "all 200", "some failed")


def test_body_limits(g):
    key = g.api_key
    # Content-Length over the limit: 413 from the head alone.
    rc = RawConn(g.port)
    body = b'{"tenant": "' + b"x" * 70000 + b'"}'
    head = ("PUT /v1/connections/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (key, len(body))).encode()
    r = send_until_answer(rc, head, [body[i:i + 4096] for i in range(0, len(body), 4096)])
    T.ok("body > 64 KiB answered", r is not None, "a response", "connection closed")
    if r:
        T.error("body > 64 KiB (Content-Length)", 413, r)
    rc.close()

    # Chunked body over the limit.
    rc = RawConn(g.port)
    head = ("PUT /v1/connections/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % key).encode()
    chunks = [b"1000\r\n" + b" " * 4096 + b"\r\n" for _ in range(20)] + [b"0\r\n\r\n"]
    r = send_until_answer(rc, head, chunks)
    T.ok("chunked body > 64 KiB answered", r is not None, "a response", "connection closed")
    if r:
        T.error("body > 64 KiB (chunked)", 413, r)
    rc.close()

    # Just under the limit is fine (valid JSON padded with whitespace).
    b = json.dumps({"tenant": "t", "provider": "prov", "grant": "refresh_token",
                    "access_token": "pad-token", "expires_in": 600}).encode()
    b = b + b" " * (60000 - len(b))
    r = g.client.put("/v1/connections/padded", b, headers={"Content-Type": "application/json"})
    T.status("body of 60000 bytes accepted", 200, r)
    T.status("DELETE padded", 200, g.client.delete("/v1/connections/padded"))


def test_header_limits(g):
    rc = RawConn(g.port)
    rc.send(req("GET", "/healthz", extra="X-Fill: %s\r\n" % ("y" * 20000)))
    r = rc.read_response()
    T.ok("huge header answered", r is not None, "a response", "connection closed")
    if r:
        T.error("header block too large (one header)", 431, r)
    rc.close()

    rc = RawConn(g.port)
    rc.send(req("GET", "/healthz", extra="".join("X-H%d: %s\r\n" % (i, "z" * 20) for i in range(1200))))
    r = rc.read_response()
    if T.ok("many headers answered", r is not None, "a response", "connection closed"):
        T.error("header block too large (many headers)", 431, r)
    rc.close()

    rc = RawConn(g.port)
    rc.send(req("GET", "/healthz?" + "q" * 20000))
    r = rc.read_response()
    if T.ok("huge request line answered", r is not None, "a response", "connection closed"):
        T.ok("huge request line -> 414 or 431", r.status in (414, 431), "414 or 431", r.status)


def test_malformed(g):
    cases = [
        ("garbage line", b"HELLO\r\n\r\n"),
        ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
        ("bad Content-Length", b"PUT /v1/providers/p HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        ("two Content-Lengths", b"PUT /v1/providers/p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                b"Content-Length: 3\r\n\r\n{}"),
        ("binary", b"\x00\x01\x02\x03\r\n\r\n"),
        # Authenticated: without the key the head alone is answered 401.
        ("bad chunk size", b"PUT /v1/providers/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Authorization: Bearer " + g.api_key.encode() + b"\r\n\r\n"
                           b"zz\r\n{}\r\n0\r\n\r\n"),
    ]
    # All at once: the server drains each connection for a while before
    # closing it, and those waits should overlap.
    conns = []
    for label, raw in cases:
        rc = RawConn(g.port)
        rc.send(raw)
        conns.append((label, rc))
    for label, rc in conns:
        r = rc.read_response()
        if T.ok("malformed (%s) answered" % label, r is not None, "a response", "connection closed"):
            T.error("malformed (%s)" % label, 400, r)
    for label, rc in conns:
        T.ok("malformed (%s) closes the connection" % label, rc.closed_by_peer(30), "closed", "kept open")
        rc.close()


def test_invalid_json(g):
    c = g.client
    for label, body in [("not JSON", b"{not json"), ("truncated", b'{"token_url": "https://x'),
                        ("array", b"[1, 2]"), ("number", b"123"), ("empty", b""),
                        ("trailing garbage", b'{"token_url": "https://127.0.0.1:9/t"} x'),
                        ("invalid UTF-8", b'{"token_url": "https://127.0.0.1:9/\xff"}')]:
        r = c.put("/v1/providers/pj", body, headers={"Content-Type": "application/json"})
        T.error("invalid JSON (%s)" % label, 400, r)
    T.error("invalid JSON stored nothing", 404, c.get("/v1/providers/pj"))
    # The keep-alive connection survives application-level errors.
    T.status("keep-alive after 400s", 200, c.get("/healthz", auth=False))


def test_connection_close(g):
    rc = RawConn(g.port)
    rc.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    r = rc.read_response()
    T.ok("Connection: close answered 200", r is not None and r.status == 200, 200, r)
    T.ok("Connection: close closes", rc.closed_by_peer(30), "closed", "open")
    rc.close()
    rc = RawConn(g.port)
    rc.send(b"GET /healthz HTTP/1.0\r\n\r\n")
    r = rc.read_response()
    T.ok("HTTP/1.0 answered 200", r is not None and r.status == 200, 200, r)
    T.ok("HTTP/1.0 without keep-alive closes", rc.closed_by_peer(30), "closed", "open")
    rc.close()


def test_pipelining(g, tokens):
    key = g.api_key
    for round_, split in enumerate(["one write", "small random writes"]):
        reqs, want = [], []
        for i in range(60):
            k = i % 6
            if k == 0:
                j = (i * 7) % len(tokens)
                reqs.append(req("GET", "/v1/connections/tok-%d/token" % j, key))
                want.append((200, tokens[j]))
            elif k == 1:
                reqs.append(req("GET", "/healthz"))
                want.append((200, None))
            elif k == 2:
                reqs.append(req("GET", "/v1/connections/missing-%d" % i, key))
                want.append((404, None))
            elif k == 3:
                tok = T.secret("pipe-%d-%d-%s" % (round_, i, rand_key(8)))
                reqs.append(req("PUT", "/v1/connections/pipe-%d" % i, key,
                                {"tenant": "p", "provider": "prov", "grant": "refresh_token",
                                 "access_token": tok, "expires_in": 3600}))
                want.append((200, None))
                reqs.append(req("GET", "/v1/connections/pipe-%d/token" % i, key))
                want.append((200, tok))
            elif k == 4:
                reqs.append(req("PUT", "/v1/connections/pipe-x", key, {"tenant": "p", "oops": 1}))
                want.append((422, None))
            else:
                reqs.append(req("GET", "/v1/connections/tok-%d" % (i % len(tokens)), key))
                want.append((200, "tok-%d" % (i % len(tokens))))
        blob = b"".join(reqs)
        rc = RawConn(g.port, timeout=60)
        if split == "one write":
            rc.send(blob)
        else:
            rnd = random.Random(42)
            off = 0
            while off < len(blob):
                n = rnd.randint(1, 300)
                rc.send(blob[off:off + n])
                off += n
        got = []
        try:
            for _ in want:
                r = rc.read_response()
                if r is None:
                    break
                j = r.json() or {}
                got.append((r.status, j.get("access_token") or j.get("id")))
        except OSError as e:
            got.append(("error", str(e)))
        rc.close()
        T.eq("pipelined responses count (%s)" % split, len(want), len(got))
        bad = [i for i, (w, gt) in enumerate(zip(want, got)) if w[0] != gt[0] or (w[1] and w[1] != gt[1])]
        T.ok("pipelined responses in order (%s)" % split, not bad and len(got) == len(want),
             "every answer matches its request", "mismatch at %s: %s vs %s" %
             (bad[:3], [want[i] for i in bad[:3]], [got[i] for i in bad[:3]]))


async def one_client(i, port, key, tokens, state):
    ok = 0
    detail = None
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in range(REQS_PER_CLIENT):
            j = (i + n) % len(tokens)
            writer.write(("GET /v1/connections/tok-%d/token HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer %s\r\n\r\n" % (j, key)).encode())
            await writer.drain()
            line = await reader.readline()
            parts = line.split(b" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            length = None
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            body = await reader.readexactly(length or 0)
            if status == 200 and json.loads(body).get("access_token") == tokens[j]:
                ok += 1
            else:
                detail = "status %s" % status
                break
            if n == 0:
                # Hold every connection open until all clients are connected.
                state["arrived"] += 1
                if state["arrived"] == N_CLIENTS:
                    state["all"].set()
                await state["all"].wait()
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        detail = type(e).__name__
    finally:
        if ok == 0:
            state["arrived"] += 1
            if state["arrived"] == N_CLIENTS:
                state["all"].set()
        if writer is not None:
            writer.close()
    return ok, detail


async def many_clients(port, key, tokens):
    state = {"arrived": 0, "all": asyncio.Event()}
    tasks = [one_client(i, port, key, tokens, state) for i in range(N_CLIENTS)]
    return await asyncio.wait_for(asyncio.gather(*tasks), timeout=240)


def test_many_clients(g, tokens):
    t0 = time.monotonic()
    try:
        results = asyncio.run(many_clients(g.port, g.api_key, tokens))
    except asyncio.TimeoutError:
        T.ok("%d concurrent clients finished" % N_CLIENTS, False, "finished", "timed out after 240 s")
        return
    good = sum(1 for ok, _ in results if ok == REQS_PER_CLIENT)
    details = {}
    for ok, d in results:
        if d:
            details[d] = details.get(d, 0) + 1
    T.eq("%d concurrent keep-alive clients x %d GETs all 200 with the right token" %
         (N_CLIENTS, REQS_PER_CLIENT), N_CLIENTS, good)
    if details:
        print("  client failures by kind: %s" % details)
    print("  %d clients x %d requests in %.1f s" % (N_CLIENTS, REQS_PER_CLIENT, time.monotonic() - t0))
    T.status("healthy after the crowd", 200, g.client.get("/healthz", auth=False))


def test_timeouts(work, api_key, master_key):
    g = ServeProc(work, os.path.join(work, "data-timeout"), api_key=api_key, master_key=master_key,
                  args=["--header-timeout", "500", "--idle-timeout", "1000"])
    g.start()
    try:
        rc = RawConn(g.port, timeout=30)
        rc.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        r = rc.read_response()
        if T.ok("incomplete head answered", r is not None, "a response", "closed without one"):
            T.error("header timeout", 408, r)
            T.ok("header timeout closes", rc.closed_by_peer(30), "closed", "open")
        rc.close()

        rc = RawConn(g.port, timeout=30)
        rc.send(req("PUT", "/v1/providers/slow", api_key)[:-2] + b"Content-Length: 100\r\n\r\n{\"tok")
        r = rc.read_response()
        if T.ok("incomplete body answered", r is not None, "a response", "closed without one"):
            T.error("body timeout", 408, r)
        rc.close()

        rc = RawConn(g.port, timeout=30)
        # Nothing sent at all: a 408 or a plain close, but not kept forever.
        try:
            r = rc.read_response()
            T.ok("silent connection ends", r is None or r.status == 408, "408 or close", r)
        except OSError as e:
            T.ok("silent connection ends", False, "408 or close", type(e).__name__)
        rc.close()

        rc = RawConn(g.port, timeout=30)
        rc.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = rc.read_response()
        T.ok("request before idling", r is not None and r.status == 200, 200, r)
        try:
            r = rc.read_response()
            T.ok("idle keep-alive connection closed", r is None or r.status == 408, "close or 408", r)
        except OSError as e:
            T.ok("idle keep-alive connection closed", False, "close or 408", type(e).__name__)
        rc.close()
        T.status("server fine after timeouts", 200, g.client.get("/healthz", auth=False))
    finally:
        T.eq("SIGTERM exit status (timeouts instance)", 0, g.stop())


def test_max_connections(work, api_key, master_key):
    g = ServeProc(work, os.path.join(work, "data-maxconn"), api_key=api_key, master_key=master_key,
                  args=["--max-connections", "5"])
    g.start()
    conns = []
    try:
        for i in range(5):
            rc = RawConn(g.port)
            rc.send(req("GET", "/healthz"))
            r = rc.read_response()
            T.ok("connection %d of 5 served" % (i + 1), r is not None and r.status == 200, 200, r)
            conns.append(rc)
        extra = RawConn(g.port)
        try:
            extra.send(req("GET", "/healthz"))
            r = extra.read_response()
        except OSError as e:
            r = None
            print("  6th connection: %s" % type(e).__name__)
        if T.ok("6th connection answered", r is not None, "a 503 response", "closed without one"):
            T.error("too many connections", 503, r)
        extra.close()
        for rc in conns:   # the five still work
            rc.send(req("GET", "/healthz"))
        answers = [x.read_response() for x in conns]
        T.ok("the five keep working", all(a is not None and a.status == 200 for a in answers),
             "five 200s", answers)
        conns.pop().close()
        served = False
        for _ in range(100):
            rc = RawConn(g.port)
            try:
                rc.send(req("GET", "/healthz"))
                r = rc.read_response()
                if r is not None and r.status == 200:
                    served = True
                    conns.append(rc)
                    break
            except OSError:
                pass
            rc.close()
            time.sleep(0.1)
        T.ok("a slot frees up when a client leaves", served, "200 on a new connection", "only 503s")
    finally:
        for rc in conns:
            rc.close()
        T.eq("SIGTERM exit status (max-connections instance)", 0, g.stop())


def main():
    work = test_tmpdir("api-limits-")
    api_key, master_key = T.secret(rand_key(), rand_master_key())
    tokens = [T.secret("at-%d-%s" % (i, rand_key(12))) for i in range(N_TOKENS)]
    try:
        test_timeouts(work, api_key, master_key)
        test_max_connections(work, api_key, master_key)
        g = ServeProc(work, os.path.join(work, "data"), api_key=api_key, master_key=master_key)
        g.start()
    except RuntimeError as e:
        T.ok("grantd starts", False, "listening", str(e))
        return T.finish()
    try:
        seed(g, tokens)
        test_body_limits(g)
        test_header_limits(g)
        test_malformed(g)
        test_invalid_json(g)
        test_connection_close(g)
        test_pipelining(g, tokens)
        test_many_clients(g, tokens)
    finally:
        rc = g.stop()
    T.eq("SIGTERM exit status", 0, rc)
    T.ok("logs hold no secret", not any(s in g.log_text() for s in T.secrets), "none", "a secret")
    failed = T.finish()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
