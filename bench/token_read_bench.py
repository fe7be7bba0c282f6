#!/usr/bin/env python3
"""Token-read benchmark: wrk against GET /v1/connections/{id}/token on grantd
versus a bare libuv keep-alive server (bench/bare_server_bench.c), measured in
the same run, alternating, so the ratio is meaningful on a shared machine.

Usage: bench/token_read_bench.py [--build DIR] [--rounds N] [--seconds S]
                                 [--connections C] [--threads T]
Needs a release build (cmake -S . -B build && cmake --build build) and wrk.
Prints req/s per round, the medians and the ratio grantd / bare. Exits 0;
there is no pass/fail threshold here (it reports figures only).
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def wait_port(path, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"process exited early with {proc.returncode}")
        try:
            with open(path) as f:
                txt = f.read().strip()
            if txt:
                return int(txt)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit(f"no port file {path}")


def api(port, key, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wrk(url, args, header=None):
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s"]
    if header:
        cmd += ["-H", header]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        sys.exit(f"wrk saw {non2xx.group(1)} error responses from {url}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run deps/install.sh")
    grantd = os.path.join(args.build, "grantd")
    bare = os.path.join(args.build, "bare_server_bench")
    for b in (grantd, bare):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: build first (cmake -S . -B {args.build} && cmake --build {args.build})")

    tmp = tempfile.mkdtemp(prefix="grantd-bench-")
    key = secrets.token_urlsafe(32)
    env = dict(os.environ, GRANTD_API_KEY=key, GRANTD_MASTER_KEY=secrets.token_hex(32),
               GRANTD_LOG_LEVEL="warn")
    procs = []
    try:
        # The provider's token_url names 127.0.0.1 (never dialled here, but
        # PUT /v1/providers refuses forbidden literals): allow loopback.
        gp = subprocess.Popen([grantd, "serve", "--listen", "127.0.0.1:0", "--data", f"{tmp}/data",
                               "--port-file", f"{tmp}/grantd.port",
                               "--allow-endpoint-cidr", "127.0.0.0/8,::1/128"], env=env)
        procs.append(gp)
        bp = subprocess.Popen([bare, "--port-file", f"{tmp}/bare.port"])
        procs.append(bp)
        gport = wait_port(f"{tmp}/grantd.port", gp)
        bport = wait_port(f"{tmp}/bare.port", bp)
        api(gport, key, "PUT", "/v1/providers/bench", {"token_url": "https://127.0.0.1:1/token"})
        api(gport, key, "PUT", "/v1/connections/c1", {
            "tenant": "t1", "provider": "bench", "grant": "refresh_token",
            "access_token": "at-" + secrets.token_urlsafe(40),
            "refresh_token": "rt-" + secrets.token_urlsafe(30), "expires_in": 86400})
        tok = api(gport, key, "GET", "/v1/connections/c1/token")
        assert tok["access_token"].startswith("at-")
        g_url = f"http://127.0.0.1:{gport}/v1/connections/c1/token"
        b_url = f"http://127.0.0.1:{bport}/"
        wrk(g_url, argparse.Namespace(**{**vars(args), "seconds": 1}), f"Authorization: Bearer {key}")
        gs, bs = [], []
        for r in range(args.rounds):
            bs.append(wrk(b_url, args))
            gs.append(wrk(g_url, args, f"Authorization: Bearer {key}"))
            print(f"round {r + 1}: bare {bs[-1]:.0f} req/s, grantd token read {gs[-1]:.0f} req/s")
        gm, bm = statistics.median(gs), statistics.median(bs)
        print(f"median: bare {bm:.0f} req/s, grantd {gm:.0f} req/s, ratio {gm / bm:.2f} "
              f"(target >= 0.85); wrk -t{args.threads} -c{args.connections} -d{args.seconds}s")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
