#!/usr/bin/env python3
"""Long-poll benchmark: what 1 000 parked GET /v1/events?wait=60 requests
cost grantd while nothing happens, and how fast they are all answered when
an event commits.

Usage (release build first: cmake -S . -B build && cmake --build build -j2
        --target grantd):

  bench/longpoll_bench.py [--build build] [-c 1000] [--seconds 20]
                          [--rounds 3]

Each round measures grantd's CPU (utime+stime from /proc) over --seconds
with no request open (the baseline), then over --seconds with -c
long-polls parked (one keep-alive TCP connection each), then creates one
connection (a connection.created event) and times until every long-poll
has its answer with that event. Prints per round and the medians. Figures
only, no pass/fail threshold.
"""
import argparse
import os
import secrets
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refresh_bench import Api, cpu_s, stop, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-c", type=int, default=1000, help="long-polls (default 1000)")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="longpoll-bench-")
    key = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    env["GRANTD_API_KEY"] = key
    pf = os.path.join(work, "port")
    log = open(os.path.join(work, "grantd.log"), "wb")
    g = subprocess.Popen([os.path.join(a.build, "grantd"), "serve", "--listen", "127.0.0.1:0",
                          "--data", os.path.join(work, "data"), "--port-file", pf,
                          "--log-level", "warn"],
                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    socks = []
    rows = []
    try:
        port = wait_port(pf, g)
        api = Api(port, key)
        while True:
            try:
                if api.req("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                api.close()
            time.sleep(0.01)
        st, _ = api.json("PUT", "/v1/providers/p", {
            "token_url": "https://localhost:1/token", "client_id": "bench",
            "client_secret": secrets.token_hex(16)})
        if st not in (200, 201):
            sys.exit("provider put: HTTP %s" % st)
        exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
        for r in range(a.rounds):
            st, page = api.json("GET", "/v1/events?limit=1000")
            cursor = page["next_cursor"] if st == 200 else "0"
            while st == 200 and page["events"]:
                st, page = api.json("GET", "/v1/events?limit=1000&after=%s" % cursor)
                cursor = page["next_cursor"]
            c0, t0 = cpu_s(g.pid), time.monotonic()
            time.sleep(a.seconds)
            idle_base = (cpu_s(g.pid) - c0) / (time.monotonic() - t0)
            req = ("GET /v1/events?wait=60&after=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (cursor, key)).encode()
            sel = selectors.DefaultSelector()
            for _ in range(a.c):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(req)
                s.setblocking(False)
                socks.append(s)
                sel.register(s, selectors.EVENT_READ, bytearray())
            time.sleep(1)  # every request parked
            c0, t0 = cpu_s(g.pid), time.monotonic()
            time.sleep(a.seconds)
            idle_polls = (cpu_s(g.pid) - c0) / (time.monotonic() - t0)
            early = sum(1 for k in sel.get_map().values() if _readable(k.fileobj))
            t0 = time.monotonic()
            line = ('{"id":"lp%d-%s","tenant":"t","provider":"p","grant":"refresh_token",'
                    '"access_token":"a","refresh_token":"r","expires_at":"%s"}\n'
                    % (r, secrets.token_hex(4), exp))
            st, _ = api.req("POST", "/v1/connections:import", line, "application/x-ndjson")
            if st != 200:
                sys.exit("import: HTTP %s" % st)
            left = a.c
            while left and time.monotonic() - t0 < 30:
                for k, _ in sel.select(1):
                    try:
                        d = k.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    k.data.extend(d)
                    if b"\r\n\r\n" in k.data and b"connection.created" in k.data:
                        sel.unregister(k.fileobj)
                        left -= 1
            wake = time.monotonic() - t0
            for s in socks:
                s.close()
            socks = []
            sel.close()
            row = dict(base=idle_base * 100, polls=idle_polls * 100, wake_ms=wake * 1e3,
                       answered=a.c - left, early=early)
            rows.append(row)
            print("round %d: CPU idle %.2f %% of a core, with %d long-polls parked %.2f %%; "
                  "one event answered %d/%d of them in %.0f ms (%d answered early)"
                  % (r + 1, row["base"], a.c, row["polls"], row["answered"], a.c,
                     row["wake_ms"], early), flush=True)
    finally:
        for s in socks:
            s.close()
        stop(g)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    if rows:
        def med(k):
            return statistics.median(x[k] for x in rows)
        print("median of %d rounds: CPU idle %.2f %%, with %d long-polls %.2f %% of a core; all "
              "answered within %.0f ms of the commit" % (len(rows), med("base"), a.c,
                                                        med("polls"), med("wake_ms")))


def _readable(s):
    try:
        return len(s.recv(1, socket.MSG_PEEK)) > 0
    except BlockingIOError:
        return False


if __name__ == "__main__":
    main()
