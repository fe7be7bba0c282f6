#!/usr/bin/env python3
"""Import memory benchmark: peak RSS of grantd while it takes one large
POST /v1/connections:import (default 64 MiB of NDJSON), for one or more
grantd binaries (e.g. a build before the streamed import and one after).

Usage: bench/import_rss.py [--grantd BIN ...] [--mib N] [--rounds R]
Defaults: --grantd build-rel/grantd, --mib 64, --rounds 3. Each round starts
a fresh grantd (own data directory), imports the same body once and reads
/proc/PID/status: VmHWM (peak resident set, anonymous and file pages: LMDB's
map counts as it is touched) after the answer, and the highest RssAnon
(heap: the body, parsed lines, results) sampled every 20 ms during the
import. Prints each round, then the medians per binary and the ratio of
each binary's medians to the first one's. Reports figures only; there is no
pass/fail threshold.
"""
import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def wait_port(path, proc, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"grantd exited early with {proc.returncode}")
        try:
            with open(path) as f:
                txt = f.read().strip()
            if txt:
                return int(txt)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit(f"no port file {path}")


def status_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def make_body(mib):
    lines, size, i = [], 0, 0
    pad = "p" * 96
    while size < mib << 20:
        ln = json.dumps({"id": f"imp-{i:07d}", "tenant": "t", "provider": "bench",
                         "grant": "refresh_token", "access_token": f"at-{i:07d}-{pad}",
                         "refresh_token": f"rt-{i:07d}", "expires_in": 86400}) + "\n"
        lines.append(ln)
        size += len(ln)
        i += 1
    return "".join(lines).encode(), i


def one_round(grantd, body, nlines):
    tmp = tempfile.mkdtemp(prefix="grantd-import-rss-")
    key = secrets.token_urlsafe(32)
    env = dict(os.environ, GRANTD_API_KEY=key, GRANTD_MASTER_KEY=secrets.token_hex(32),
               GRANTD_LOG_LEVEL="warn")
    p = subprocess.Popen([grantd, "serve", "--listen", "127.0.0.1:0", "--data", f"{tmp}/data",
                          "--port-file", f"{tmp}/port", "--map-size", "4G",
                          "--allow-endpoint-cidr", "127.0.0.0/8"], env=env)
    try:
        port = wait_port(f"{tmp}/port", p)
        hdr = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        c.request("PUT", "/v1/providers/bench", body=json.dumps({"token_url": "https://127.0.0.1:1/t"}),
                  headers=hdr)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit(f"PUT provider: HTTP {r.status}")
        base = status_kib(p.pid)
        peak_anon = [base["RssAnon"]]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak_anon[0] = max(peak_anon[0], status_kib(p.pid)["RssAnon"])
                except OSError:
                    return
                time.sleep(0.02)

        t = threading.Thread(target=sample)
        t.start()
        t0 = time.monotonic()
        hdr["Content-Type"] = "application/x-ndjson"
        c.request("POST", "/v1/connections:import", body=body, headers=hdr)
        r = c.getresponse()
        answer = r.read()
        secs = time.monotonic() - t0
        done.set()
        t.join()
        after = status_kib(p.pid)
        summary = json.loads(answer.decode().strip().splitlines()[-1]).get("summary", {})
        if r.status != 200 or summary.get("imported") != nlines:
            sys.exit(f"import: HTTP {r.status} {summary}")
        c.close()
        return {"hwm": after["VmHWM"], "base": base["VmRSS"], "anon": peak_anon[0], "secs": secs}
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grantd", action="append")
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bins = args.grantd or ["build-rel/grantd"]
    for b in bins:
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: build first")
    body, n = make_body(args.mib)
    print(f"body {len(body) / (1 << 20):.1f} MiB, {n} lines")
    res = {b: [] for b in bins}
    for rnd in range(args.rounds):
        for b in bins:  # alternating, so a noisy machine hits every binary alike
            r = one_round(b, body, n)
            res[b].append(r)
            print(f"round {rnd + 1} {b}: VmHWM {r['hwm'] / 1024:.1f} MiB (idle {r['base'] / 1024:.1f}), "
                  f"peak RssAnon {r['anon'] / 1024:.1f} MiB, {r['secs']:.1f} s", flush=True)
    first = None
    for b in bins:
        hwm = statistics.median(x["hwm"] for x in res[b]) / 1024
        anon = statistics.median(x["anon"] for x in res[b]) / 1024
        secs = statistics.median(x["secs"] for x in res[b])
        ratio = ""
        if first is None:
            first = (hwm, anon)
        else:
            ratio = f"; vs {bins[0]}: VmHWM x{hwm / first[0]:.2f}, RssAnon x{anon / first[1]:.2f}"
        print(f"median {b}: VmHWM {hwm:.1f} MiB, peak RssAnon {anon:.1f} MiB, {secs:.1f} s{ratio}")


if __name__ == "__main__":
    main()
