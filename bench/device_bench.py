#!/usr/bin/env python3
"""Device-flow benchmark: N concurrent RFC 8628 device flows waiting for
their users, against the mock provider over TLS on loopback.

Usage (any build with grantd and mock_provider):
  bench/device_bench.py [--build build-asan] [-n 2000] [--interval 5]
                        [--window 20] [--keep]

  1. starts the mock (device_interval = --interval, codes living an hour)
     and grantd; RssAnon of the idle grantd is the baseline;
  2. puts N device_code connections (each a device authorization request);
  3. measures over --window seconds while all N flows poll and get
     authorization_pending: polls/s seen by the mock, grantd's CPU per poll
     (utime+stime from /proc), RssAnon per flow over the baseline, and how
     many polls wrote a record (the revisions of the N connections, which
     only a stored change raises; authorization_pending stores nothing);
  4. approves them all and reports how long until all are active.
Figures only; exit 0 unless something failed to run.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import GrantdProc, MockProvider, cleanup_dir, make_certs, test_tmpdir  # noqa: E402


def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build-asan"))
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("GRANTD_BIN", os.path.join(a.build, "grantd"))
    os.environ.setdefault("MOCK_BIN", os.path.join(a.build, "mock_provider"))
    tmp = test_tmpdir("device-bench-")
    certs = make_certs(os.path.join(tmp, "pki"))
    m = MockProvider(tmp, certs).start(args=["--client", "c:s", "--device-interval",
                                             str(a.interval), "--device-expires-in", "3600"])
    g = GrantdProc(tmp, ca_file=certs.ca).start()
    try:
        url = "https://localhost:%d" % m.port
        r = g.client.put("/v1/providers/dev", json_body={
            "token_url": url + "/token", "device_authorization_url": url + "/device_authorization",
            "client_id": "c", "client_secret": "s"})
        assert r.status == 200, r
        time.sleep(1)
        base = rss_anon(g.proc.pid)
        t0 = time.monotonic()
        codes = []
        for i in range(a.n):
            r = g.client.put("/v1/connections/d%d" % i, json_body={
                "tenant": "t", "provider": "dev", "grant": "device_code"})
            j = r.json() or {}
            assert r.status == 200 and j.get("status") == "pending", r
            codes.append(j["device"]["user_code"])
        put_s = time.monotonic() - t0
        time.sleep(a.interval + 1)
        c0, p0, w0 = cpu_s(g.proc.pid), m.counters()["device"]["pending"], time.monotonic()
        time.sleep(a.window)
        c1, p1, w1 = cpu_s(g.proc.pid), m.counters()["device"]["pending"], time.monotonic()
        rss = rss_anon(g.proc.pid)
        revs = [((g.client.get("/v1/connections/d%d" % i).json()) or {}).get("revision")
                for i in range(a.n)]
        polls = p1 - p0
        t1 = time.monotonic()
        for uc in codes:
            m.client.post("/_mock/device", json_body={"user_code": uc, "action": "approve"})
        while True:
            r = g.client.get("/v1/connections?status=pending&limit=1")
            if not (r.json() or {}).get("connections"):
                break
            time.sleep(0.2)
        done_s = time.monotonic() - t1
        print("flows                         %d" % a.n)
        print("puts (device authorizations)  %.0f/s" % (a.n / put_s))
        print("polls/s (authorization_pending) %.0f (expected %.0f)" % (polls / (w1 - w0),
                                                                        a.n / a.interval))
        print("grantd CPU per poll           %.1f us" % ((c1 - c0) / max(polls, 1) * 1e6))
        print("grantd CPU, share of one core %.1f %%" % ((c1 - c0) / (w1 - w0) * 100))
        print("RssAnon per pending flow      %.0f B" % ((rss - base) / a.n))
        print("records written by pending polls %d (revisions above 1: %d)" %
              (sum(1 for v in revs if v != 1), sum(1 for v in revs if v != 1)))
        print("all approved -> all active    %.1f s" % done_s)
    finally:
        g.stop()
        m.stop()
        if not a.keep:
            cleanup_dir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
