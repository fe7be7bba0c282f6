#!/usr/bin/env python3
"""Webhook delivery benchmark: events delivered per second by grantd to one
keep-alive receiver (bench/webhook_sink_bench.c: llhttp, 204 at once), and
grantd's CPU per delivered event.

Usage (release build first: cmake -S . -B build && cmake --build build -j2
        --target grantd webhook_sink_bench):

  bench/webhook_bench.py [--build build] [-n 100000] [--rounds 3]
                         [--inflight 32] [--workdir DIR] [--keep]

Each round:
  1. starts a fresh receiver that answers its first request 410 Gone, PUTs
     the endpoint `bench` (url = that receiver, events ["connection.*"],
     a generated secret) and imports one connection: its event gets the
     410, and grantd disables the endpoint;
  2. imports N connections (chunks of 20 000 NDJSON lines, tokens valid
     30 days so nothing refreshes): N connection.created events pile up in
     the outbox, undelivered;
  3. PUTs the endpoint again (enabling it) and times the delivery of the
     backlog: from the PUT until GET /v1/webhooks/bench shows backlog 0.
     Figures: events/s (delivered / wall time), grantd's CPU per event
     (utime+stime from /proc), the receiver's CPU per event.
Prints one line per round and the medians. There is no pass/fail threshold
(figures only). grantd runs with --allow-insecure-http and loopback allowed
as an endpoint, as an operator would opt in for a local receiver.
"""
import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refresh_bench import Api, cpu_s, rfc3339, stop, wait_port  # noqa: E402

CHUNK = 20000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--inflight", type=int, default=32, help="--webhook-max-inflight")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.workdir:
        if os.path.exists(a.workdir):
            sys.exit("--workdir %s exists; give a new directory" % a.workdir)
        os.makedirs(a.workdir)
        work = a.workdir
    else:
        work = tempfile.mkdtemp(prefix="webhook-bench-")
    key = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
    env["GRANTD_API_KEY"] = key
    pf = os.path.join(work, "grantd-port")
    log = open(os.path.join(work, "grantd.log"), "wb")
    keep = str(max(100000, 4 * (a.n + 1) * a.rounds))
    g = subprocess.Popen([os.path.join(a.build, "grantd"), "serve", "--listen", "127.0.0.1:0",
                          "--data", os.path.join(work, "data"), "--port-file", pf,
                          "--log-level", "warn", "--allow-insecure-http",
                          "--allow-endpoint-cidr", "127.0.0.0/8", "--events-keep", keep,
                          "--webhook-max-inflight", str(a.inflight)],
                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    sinks = []
    rows = []
    try:
        api = Api(wait_port(pf, g), key)
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
        exp = rfc3339(int(time.time() * 1000) + 30 * 86400 * 1000)
        serial = 0

        def import_lines(n):
            nonlocal serial
            for c0 in range(0, n, CHUNK):
                lines = []
                for _ in range(min(CHUNK, n - c0)):
                    serial += 1
                    lines.append('{"id":"c%08d","tenant":"t%d","provider":"p","grant":'
                                 '"refresh_token","access_token":"at%d","refresh_token":"rt%d",'
                                 '"expires_at":"%s"}\n' % (serial, serial % 100, serial, serial,
                                                            exp))
                st, data = api.req("POST", "/v1/connections:import", "".join(lines),
                                   "application/x-ndjson")
                if st != 200:
                    sys.exit("import: HTTP %s %s" % (st, data[-300:]))

        def view():
            st, v = api.json("GET", "/v1/webhooks/bench")
            if st != 200:
                sys.exit("webhook get: HTTP %s" % st)
            return v["status"]

        def wait(label, cond, timeout=600):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                s = view()
                if cond(s):
                    return s
                time.sleep(0.02)
            sys.exit("%s: not reached within %ss (%s)" % (label, timeout, view()))

        body = None
        for r in range(a.rounds):
            spf = os.path.join(work, "sink-port-%d" % r)
            sink = subprocess.Popen([os.path.join(a.build, "webhook_sink_bench"), "--port-file",
                                     spf, "--gone-first", "1"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            sinks.append(sink)
            sport = wait_port(spf, sink)
            body = {"url": "http://127.0.0.1:%d/hook" % sport, "events": ["connection.*"]}
            st, _ = api.json("PUT", "/v1/webhooks/bench", body)
            if st not in (200, 201):
                sys.exit("webhook put: HTTP %s" % st)
            import_lines(1)
            wait("endpoint disabled by 410", lambda s: s["state"] == "disabled")
            t0 = time.monotonic()
            import_lines(a.n)
            t_imp = time.monotonic() - t0
            s0 = wait("backlog piled up", lambda s: s["backlog"] >= a.n)
            c0, k0, t0 = cpu_s(g.pid), cpu_s(sink.pid), time.monotonic()
            st, _ = api.json("PUT", "/v1/webhooks/bench", body)
            if st != 200:
                sys.exit("webhook re-enable: HTTP %s" % st)
            s1 = wait("backlog delivered", lambda s: s["backlog"] == 0 and s["inflight"] == 0)
            t1, c1, k1 = time.monotonic(), cpu_s(g.pid), cpu_s(sink.pid)
            n = s1["delivered"] - s0["delivered"]
            if s1["failed"] != s0["failed"]:
                sys.exit("round %d: %d events failed" % (r, s1["failed"] - s0["failed"]))
            row = dict(events=n, seconds=t1 - t0, per_s=n / (t1 - t0),
                       grantd_us=(c1 - c0) / n * 1e6, sink_us=(k1 - k0) / n * 1e6,
                       import_per_s=a.n / t_imp)
            rows.append(row)
            print("round %d: %d events in %.2f s: %.0f events/s, grantd %.1f us/event, receiver "
                  "%.1f us/event (import %.0f lines/s)" % (r + 1, n, row["seconds"], row["per_s"],
                                                           row["grantd_us"], row["sink_us"],
                                                           row["import_per_s"]), flush=True)
            stop(sink)
    finally:
        for s in sinks:
            stop(s)
        stop(g)
        log.close()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    if rows:
        def med(k):
            return statistics.median(x[k] for x in rows)
        print("median of %d rounds: %.0f events/s, grantd %.1f us/event, receiver %.1f us/event "
              "(N=%d, inflight %d)" % (len(rows), med("per_s"), med("grantd_us"), med("sink_us"),
                                       a.n, a.inflight))


if __name__ == "__main__":
    main()
