#!/usr/bin/env python3
"""Refresh benchmark: grantd refreshing N connections continuously against a
token endpoint over TLS on loopback - the mock OAuth provider, or Debian's
nginx answering a fixed token (--endpoint nginx), which costs far less CPU
per request than the mock and links none of grantd's code.

Usage (release build first: cmake -S . -B build && cmake --build build -j2
        --target grantd mock_provider):

  bench/refresh_bench.py [--build build] [-n 10000] [--duration 30]
                         [--rate 20000 | --lifetime S] [--json FILE]
                         [--perf FILE] [--keep] [--workdir DIR]
                         [--endpoint mock|nginx] [--import-spread S]
                         [--lead-min S]

What it does:
  1. starts the mock provider (rotating refresh tokens) and grantd on an
     empty data directory; RssAnon of the empty grantd is the baseline;
  2. mints N grants at the mock (pipelined password grants over one TLS
     connection) and imports them with POST /v1/connections:import in
     chunks of 20 000 lines, with expiries spread over one lifetime so the
     refreshes are spread evenly;
  3. the mock issues tokens living `lifetime` seconds (by default chosen so
     that N connections demand about --rate refreshes/s: a token is
     refreshed at half its life, provider refresh_lead_min is set high);
     after a warm-up it measures for --duration seconds, printing every
     second refreshes/s, in flight, queued, the lag p99 of that second and
     grantd's CPU;
  4. switches the mock to 30-day tokens and waits until every connection
     took one (they are now idle), then restarts grantd on the data
     directory: start-up reschedule time (service_open's ms; also process
     start to /healthz 200) and RssAnon with N idle connections;
  With --endpoint nginx the token endpoint is nginx (its own config and
  prefix in the work directory, 127.0.0.1, TLS 1.2 with the test
  certificate, unlimited keep-alive requests, one worker) answering every
  POST /token with a fixed non-rotating JSON token of `lifetime` seconds;
  the imported tokens are random strings, step 4 reloads nginx with 30-day
  tokens, and nginx's own CPU per request is reported beside grantd's.
  --import-spread S imports expiries uniform over [1 s, S s] from now
  instead of over one lifetime (with --lifetime 100000 --lead-min 86400
  and -n 1000000 this is the "few refreshes per second at 1M" case);
  rss_anon_after_import_bytes_per_connection is taken right after the
  import.
  5. prints a table and writes a JSON file with: refreshes_per_s,
     cpu_us_per_refresh (grantd's utime+stime from /proc over the window /
     refreshes), refresh_p50_ms / refresh_p99_ms and lag_p99_ms (from the
     histogram deltas over the window, interpolated within buckets),
     rss_anon_bytes_per_connection (idle, after the restart, minus the
     empty baseline), store_bytes_per_connection (data.mdb size / N),
     startup_reschedule_s, tls_handshakes (full handshakes grantd made to
     the mock), loop_cpu_us_per_refresh (the event-loop thread alone; the
     rest is the commit thread), ops_per_commit (store writes per LMDB
     commit over the window), and more detail.

Targets (figures, never assertions): >= 20 000 refreshes/s,
<= 25 us CPU per refresh against nginx, lag p99 <= 10 ms, <= 512 B anonymous memory per
idle connection at 1 000 000, 1 000 000 rescheduled in <= 3 s.
Exit status 0 unless something failed to run.
"""
import argparse
import base64
import http.client
import json
import os
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAKE_CERTS = os.path.join(REPO, "tests", "mock", "make_certs.sh")
CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"
CHUNK = 20000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# processes and /proc
# ---------------------------------------------------------------------------

def wait_port(path, proc, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("%s exited early with status %s" % (proc.args[0], proc.returncode))
        try:
            with open(path) as f:
                s = f.read().strip()
            if s.isdigit() and int(s) > 0:
                return int(s)
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    sys.exit("no port in %s" % path)


def cpu_s(pid):
    """utime + stime of a process (all threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loop_cpu_s(pid):
    """utime + stime of a process's main thread (grantd's event loop)."""
    with open("/proc/%d/task/%d/stat" % (pid, pid)) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def stop(proc, sig=signal.SIGTERM, timeout=120):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Api:
    """Keep-alive client to grantd (plain HTTP) or the mock (TLS)."""

    def __init__(self, port, key=None, ctx=None, timeout=600):
        self.port, self.key, self.ctx, self.timeout = port, key, ctx, timeout
        self.c = None
        self.connections = 0

    def req(self, method, path, body=None, ctype="application/json"):
        h = {}
        if self.key:
            h["Authorization"] = "Bearer " + self.key
        if body is not None:
            h["Content-Type"] = ctype
            if isinstance(body, str):
                body = body.encode()
        for attempt in range(2):
            if self.c is None:
                self.connections += 1
                if self.ctx:
                    self.c = http.client.HTTPSConnection("localhost", self.port, context=self.ctx,
                                                         timeout=self.timeout)
                else:
                    self.c = http.client.HTTPConnection("127.0.0.1", self.port,
                                                        timeout=self.timeout)
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None):
        st, data = self.req(method, path, json.dumps(body) if body is not None else None)
        return st, json.loads(data) if data else None

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
ALLOC_FNS = ("malloc", "calloc", "realloc", "free")


def start_alloc_count(pid, duration, work):
    """perf stat on libc uprobes of the allocation functions, over `duration`
    seconds of process `pid`; None (with a line) when perf cannot do it."""
    have = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    for f in ALLOC_FNS:
        if "probe_libc:%s " % f not in have:
            subprocess.run(["perf", "probe", "-q", "-x", LIBC, "-a", f], capture_output=True)
    out = os.path.join(work, "allocs.csv")
    events = ",".join("probe_libc:" + f for f in ALLOC_FNS)
    p = subprocess.Popen(["perf", "stat", "-x", ",", "-o", out, "-e", events, "-p", str(pid),
                          "--", "sleep", str(duration)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (p, out)


def finish_alloc_count(h):
    p, out = h
    p.wait()
    counts = {}
    try:
        with open(out) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2].startswith("probe_libc:"):
                    try:
                        counts[parts[2].split(":")[1]] = int(parts[0])
                    except ValueError:
                        pass
    except OSError:
        pass
    if set(counts) != set(ALLOC_FNS):
        print("count-allocs: perf could not count the libc uprobes (root and perf needed)",
              file=sys.stderr)
        return None
    return counts


def metrics(api):
    st, data = api.req("GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if m:
            out[(m.group(1), (m.group(2) or "{}")[1:-1])] = float(m.group(3))
    return out


def msum(m, name):
    return sum(v for (n, _), v in m.items() if n == name)


def hist(m, name):
    """[(upper bound, cumulative count)] sorted, +Inf last."""
    out = []
    for (n, l), v in m.items():
        if n == name + "_bucket":
            le = re.search(r'le="([^"]+)"', l).group(1)
            out.append((float("inf") if le == "+Inf" else float(le), v))
    return sorted(out)


def hist_delta(a, b):
    da = dict(a)
    return [(le, v - da.get(le, 0.0)) for le, v in b]


def quantile(h, q):
    """Quantile estimate from cumulative buckets (linear within a bucket,
    the first bucket starting at 0). None without observations. A value
    in the +Inf bucket is reported as the last finite bound."""
    if not h or h[-1][1] <= 0:
        return None
    total = h[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in h:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


# ---------------------------------------------------------------------------
# minting grants at the mock (pipelined password grants)
# ---------------------------------------------------------------------------

def mint(port, ctx, n, window=64):
    """n (access, refresh) pairs; one TLS connection, `window` requests in
    flight (the mock answers pipelined requests in order)."""
    body = b"grant_type=password&username=alice&password=wonderland"
    auth = base64.b64encode(("%s:%s" % (CLIENT_ID, CLIENT_SECRET)).encode())
    req = (b"POST /token HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic " + auth +
           b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
           str(len(body)).encode() + b"\r\n\r\n" + body)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    pat = re.compile(rb'"access_token":"([^"]+)".*?"refresh_token":"([^"]+)"')
    out = []
    buf = b""
    while len(out) < n:
        k = min(window, n - len(out))
        s.sendall(req * k)
        got = 0
        while got < k:
            # parse complete responses from buf
            while True:
                he = buf.find(b"\r\n\r\n")
                if he < 0:
                    break
                head = buf[:he]
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                clen = int(m.group(1)) if m else 0
                if len(buf) < he + 4 + clen:
                    break
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit("mock password grant failed: %r" % head[:40])
                b = buf[he + 4:he + 4 + clen]
                buf = buf[he + 4 + clen:]
                mm = pat.search(b)
                out.append((mm.group(1).decode(), mm.group(2).decode()))
                got += 1
            if got < k:
                d = s.recv(1 << 20)
                if not d:
                    sys.exit("mock closed the minting connection")
                buf += d
    s.close()
    return out


# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, a):
        self.a = a
        self.work = a.workdir or tempfile.mkdtemp(prefix="refresh-bench-")
        os.makedirs(self.work, exist_ok=True)
        self.data = os.path.join(self.work, "data")
        self.key = secrets.token_urlsafe(24)
        self.mock = self.g = None
        self.gn = 0
        self.res = {}

    def log(self, s):
        print(s, flush=True)

    # -- processes --
    def start_mock(self):
        pki = os.path.join(self.work, "pki")
        subprocess.run(["sh", MAKE_CERTS, pki], check=True, stdout=subprocess.DEVNULL)
        self.ca = os.path.join(pki, "ca.pem")
        pf = os.path.join(self.work, "mock-port")
        self.mock_log = open(os.path.join(self.work, "mock.log"), "ab")
        self.mock = subprocess.Popen([os.path.join(self.a.build, "mock_provider"), "--cert",
                                      os.path.join(pki, "server.pem"), "--key",
                                      os.path.join(pki, "server.key"), "--port-file", pf],
                                     stdin=subprocess.DEVNULL, stdout=self.mock_log,
                                     stderr=self.mock_log)
        self.mock_port = wait_port(pf, self.mock)
        self.ctx = ssl.create_default_context(cafile=self.ca)
        self.mapi = Api(self.mock_port, ctx=self.ctx)

    def start_grantd(self):
        self.gn += 1
        pf = os.path.join(self.work, "grantd-port-%d" % self.gn)
        self.glog_path = os.path.join(self.work, "grantd-%d.log" % self.gn)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
        env["GRANTD_API_KEY"] = self.key
        cmd = [os.path.join(self.a.build, "grantd"), "serve", "--listen", "127.0.0.1:0",
               "--data", self.data, "--port-file", pf, "--ca-file", self.ca,
               "--map-size", self.a.map_size, "--log-level", "info",
               # The mock listens on loopback: opt out of the SSRF guard for
               # it, as an operator would for an in-network provider.
               "--allow-endpoint-cidr", "127.0.0.0/8,::1/128"]
        for extra in self.a.grantd_arg:
            cmd += shlex.split(extra)
        t0 = time.monotonic()
        with open(self.glog_path, "wb") as log:
            self.g = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=log)
        self.port = wait_port(pf, self.g)
        self.api = Api(self.port, self.key)
        while True:
            try:
                st, _ = self.api.req("GET", "/healthz")
                if st == 200:
                    break
            except OSError:
                self.api.close()
            time.sleep(0.005)
        return time.monotonic() - t0

    def service_open(self):
        with open(self.glog_path) as f:
            for line in f:
                if '"event":"service_open"' in line:
                    return json.loads(line)
        return None

    # -- nginx as the token endpoint --
    def nginx_conf(self, expires_in):
        ng = os.path.join(self.work, "nginx")
        body = json.dumps({"access_token": "at-" + secrets.token_hex(16), "token_type": "Bearer",
                           "expires_in": expires_in, "refresh_token": "rt-" + secrets.token_hex(16)},
                          separators=(",", ":"))
        conf = """worker_processes 1;
daemon off;
master_process on;
pid %(ng)s/nginx.pid;
error_log %(ng)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(ng)s/tmp;
  proxy_temp_path %(ng)s/tmp;
  fastcgi_temp_path %(ng)s/tmp;
  uwsgi_temp_path %(ng)s/tmp;
  scgi_temp_path %(ng)s/tmp;
  keepalive_requests 2000000000;
  keepalive_timeout 600s;
  server {
    listen 127.0.0.1:%(port)d ssl;
    server_name localhost;
    ssl_certificate %(pki)s/server.pem;
    ssl_certificate_key %(pki)s/server.key;
    ssl_protocols TLSv1.2;
    ssl_session_cache shared:S:10m;
    location = /token {
      default_type application/json;
      add_header Cache-Control no-store;
      return 200 '%(body)s';
    }
  }
}
""" % {"ng": ng, "port": self.mock_port, "pki": self.pki, "body": body}
        with open(os.path.join(ng, "nginx.conf"), "w") as f:
            f.write(conf)

    def start_nginx(self):
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(exe, os.X_OK):
            sys.exit("nginx not found: apt-get install nginx")
        self.pki = os.path.join(self.work, "pki")
        subprocess.run(["sh", MAKE_CERTS, self.pki], check=True, stdout=subprocess.DEVNULL)
        self.ca = os.path.join(self.pki, "ca.pem")
        ng = os.path.join(self.work, "nginx")
        os.makedirs(os.path.join(ng, "tmp"), exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.mock_port = s.getsockname()[1]
        self.nginx_conf(self.lifetime)
        self.mock_log = open(os.path.join(self.work, "nginx.log"), "ab")
        self.mock = subprocess.Popen([exe, "-p", ng, "-c", os.path.join(ng, "nginx.conf")],
                                     stdin=subprocess.DEVNULL, stdout=self.mock_log,
                                     stderr=self.mock_log)
        end = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.mock_port), 1).close()
                break
            except OSError:
                if self.mock.poll() is not None or time.monotonic() > end:
                    sys.exit("nginx did not start; see %s/error.log" % ng)
                time.sleep(0.05)
        self.ctx = ssl.create_default_context(cafile=self.ca)
        self.nginx_requests = 0

    def endpoint_cpu(self):
        """CPU seconds of the token endpoint: the mock, or nginx's master
        and workers."""
        if self.a.endpoint != "nginx":
            return cpu_s(self.mock.pid)
        total = cpu_s(self.mock.pid)
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        st = f.read()
                    if int(st[st.rindex(")") + 2:].split()[1]) == self.mock.pid:
                        total += cpu_s(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return total

    def mock_counters(self):
        if self.a.endpoint == "nginx":
            return None
        return self.mapi.json("GET", "/_mock/counters")[1]

    def mock_config(self, **k):
        if self.a.endpoint == "nginx":
            self.nginx_conf(k.get("expires_in", self.lifetime))
            self.mock.send_signal(signal.SIGHUP)
            time.sleep(1)
            return
        st, _ = self.mapi.json("POST", "/_mock/config", k)
        if st != 200:
            sys.exit("mock config %s: HTTP %s" % (k, st))

    # -- phases --
    def setup(self):
        a = self.a
        n = a.n
        self.lifetime = a.lifetime or max(1, int(round(2.1 * n / a.rate)))
        if a.endpoint == "nginx":
            self.start_nginx()
        else:
            self.start_mock()
            self.mock_config(expires_in=self.lifetime, rotate_refresh_tokens=True)
        self.start_grantd()
        time.sleep(0.5)
        self.res["rss_anon_empty_bytes"] = rss_anon(self.g.pid)
        # lead = lifetime / 2 while lifetime < 2 * refresh_lead_min: refreshed
        # at half-life (minus up to 10 % jitter).
        st, _ = self.api.json("PUT", "/v1/providers/p", {
            "token_url": "https://localhost:%d/token" % self.mock_port, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "refresh_lead_min": a.lead_min})
        if st not in (200, 201):
            sys.exit("provider put: HTTP %s" % st)
        self.log("refresh_bench: N=%d endpoint=%s lifetime=%ds (demand ~%.0f refreshes/s) "
                 "duration=%ds workdir=%s" % (n, a.endpoint, self.lifetime,
                                              n / (self.lifetime * 0.475), a.duration, self.work))

    def do_import(self):
        n = self.a.n
        t0 = time.monotonic()
        if self.a.endpoint == "nginx":
            pairs = [("at%07d-%s" % (i, secrets.token_hex(8)), "rt%07d-%s" % (i, secrets.token_hex(8)))
                     for i in range(n)]
        else:
            pairs = mint(self.mock_port, self.ctx, n)
        t_mint = time.monotonic() - t0
        self.log("minted %d grants in %.1f s (%.0f/s)" % (n, t_mint, n / t_mint))
        rnd = random.Random(1)
        spread = self.a.import_spread * 1000
        t0 = time.monotonic()
        L = self.lifetime * 1000
        done = 0
        for c0 in range(0, n, CHUNK):
            now = int(time.time() * 1000)
            lines = []
            for i in range(c0, min(n, c0 + CHUNK)):
                at, rt = pairs[i]
                if spread:
                    exp = now + rnd.randint(1000, spread)
                else:
                    exp = now + L // 2 + rnd.randint(0, L // 2)
                lines.append('{"id":"c%07d","tenant":"t%d","provider":"p","grant":"refresh_token",'
                             '"access_token":"%s","refresh_token":"%s","expires_at":"%s"}\n'
                             % (i, i % 100, at, rt, rfc3339(exp)))
            st, data = self.api.req("POST", "/v1/connections:import", "".join(lines),
                                    "application/x-ndjson")
            summ = json.loads(data.decode().strip().rsplit("\n", 1)[-1])["summary"]
            if st != 200 or summ["failed"]:
                sys.exit("import chunk at %d: HTTP %s %s" % (c0, st, summ))
            done += summ["imported"]
            if n > CHUNK:
                self.log("  imported %d / %d (%.0f/s)" % (done, n, done / (time.monotonic() - t0)))
        t_imp = time.monotonic() - t0
        del pairs
        self.res.update(mint_s=round(t_mint, 2), import_s=round(t_imp, 2),
                        imports_per_s=round(n / t_imp))
        time.sleep(1)
        self.res["rss_anon_after_import_bytes_per_connection"] = round(
            (rss_anon(self.g.pid) - self.res["rss_anon_empty_bytes"]) / n, 1)
        self.log("imported %d connections in %.1f s (%.0f/s)" % (n, t_imp, n / t_imp))

    def measure(self):
        a = self.a
        warm = self.a.warmup if self.a.warmup is not None else max(3.0, min(10.0, self.lifetime * 0.6))
        self.log("warm-up %.0f s ..." % warm)
        time.sleep(warm)
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "--call-graph", a.perf_call_graph,
                                     "-o", a.perf, "-p", str(self.g.pid),
                                     "--", "sleep", str(a.duration)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        allocs = None
        if a.count_allocs:
            allocs = start_alloc_count(self.g.pid, a.duration, self.work)
        m0 = metrics(self.api)
        c0, mc0 = cpu_s(self.g.pid), self.endpoint_cpu()
        lc0 = loop_cpu_s(self.g.pid)
        k0 = self.mock_counters()
        t0 = time.monotonic()
        prev, prev_t, prev_cpu = m0, t0, c0
        self.log("   t  refreshes/s  failed/s  in_flight  queued  lag_p99_ms  grantd_cpu  %s_cpu"
                 % ("nginx" if a.endpoint == "nginx" else "mock"))
        pm = mc0
        while time.monotonic() - t0 < a.duration:
            time.sleep(max(0.0, 1.0 - (time.monotonic() - prev_t)))
            m = metrics(self.api)
            t, c, mc = time.monotonic(), cpu_s(self.g.pid), self.endpoint_cpu()
            dt = t - prev_t
            ok = (m.get(("grantd_refreshes_total", 'outcome="ok"'), 0)
                  - prev.get(("grantd_refreshes_total", 'outcome="ok"'), 0))
            allr = msum(m, "grantd_refreshes_total") - msum(prev, "grantd_refreshes_total")
            lag = quantile(hist_delta(hist(prev, "grantd_scheduler_lag_ms"),
                                      hist(m, "grantd_scheduler_lag_ms")), 0.99)
            self.log("%4.0f  %11.0f  %8.0f  %9.0f  %6.0f  %10s  %9.0f%%  %7.0f%%" % (
                t - t0, ok / dt, (allr - ok) / dt, msum(m, "grantd_refresh_inflight"),
                m.get(("grantd_refresh_queued", ""), 0), "-" if lag is None else "%.1f" % lag,
                100 * (c - prev_cpu) / dt, 100 * (mc - pm) / dt))
            prev, prev_t, prev_cpu, pm = m, t, c, mc
        m1 = prev
        t1, c1, mc1 = prev_t, prev_cpu, pm
        lc1 = loop_cpu_s(self.g.pid)
        k1 = self.mock_counters()
        if perf:
            perf.wait()
        alloc_counts = finish_alloc_count(allocs) if allocs else None
        dt = t1 - t0
        ok = (m1.get(("grantd_refreshes_total", 'outcome="ok"'), 0)
              - m0.get(("grantd_refreshes_total", 'outcome="ok"'), 0))
        allr = msum(m1, "grantd_refreshes_total") - msum(m0, "grantd_refreshes_total")
        events = msum(m1, "grantd_events_total") - msum(m0, "grantd_events_total")
        lat = hist_delta(hist(m0, "grantd_refresh_latency_ms"), hist(m1, "grantd_refresh_latency_ms"))
        lag = hist_delta(hist(m0, "grantd_scheduler_lag_ms"), hist(m1, "grantd_scheduler_lag_ms"))
        r = self.res
        r.update(window_s=round(dt, 2), refreshes=int(ok), failed_refreshes=int(allr - ok),
                 refreshes_per_s=round(ok / dt), demand_per_s=round(self.a.n / (self.lifetime * 0.475)),
                 cpu_us_per_refresh=round(1e6 * (c1 - c0) / ok, 1) if ok else None,
                 cpu_us_per_attempt=round(1e6 * (c1 - c0) / allr, 1) if allr else None,
                 events_committed=int(events),
                 loop_cpu_us_per_refresh=round(1e6 * (lc1 - lc0) / ok, 1) if ok else None,
                 ops_per_commit=round((msum(m1, "grantd_store_ops_committed_total")
                                       - msum(m0, "grantd_store_ops_committed_total"))
                                      / max(1, msum(m1, "grantd_store_commits_total")
                                            - msum(m0, "grantd_store_commits_total")), 1),
                 grantd_cpu_percent=round(100 * (c1 - c0) / dt, 1),
                 endpoint_cpu_us_per_refresh=round(1e6 * (mc1 - mc0) / ok, 1) if ok else None,
                 refresh_p50_ms=rnd2(quantile(lat, 0.5)), refresh_p99_ms=rnd2(quantile(lat, 0.99)),
                 lag_p50_ms=rnd2(quantile(lag, 0.5)), lag_p99_ms=rnd2(quantile(lag, 0.99)))
        if alloc_counts and ok:
            r.update(allocs_per_refresh=round(sum(alloc_counts[k] for k in ("malloc", "calloc", "realloc"))
                                              / ok, 1),
                     frees_per_refresh=round(alloc_counts["free"] / ok, 1))
        if k0 and k1:
            r.update(mock_refreshes_in_window=k1["refreshes"] - k0["refreshes"],
                     mock_replays=k1["replays_detected"],
                     tls_full_handshakes_in_window=k1["tls"]["full_handshakes"]
                     - k0["tls"]["full_handshakes"],
                     tls_resumed_handshakes_in_window=k1["tls"]["resumed_handshakes"]
                     - k0["tls"]["resumed_handshakes"])

    def settle_idle(self):
        """Long tokens from now on: every connection refreshes once more and
        is then idle for 30 days."""
        n = self.a.n
        # ok0 before the switch: every connection needs one refresh after it.
        ok0 = metrics(self.api).get(("grantd_refreshes_total", 'outcome="ok"'), 0)
        self.mock_config(expires_in=30 * 86400)
        t0 = time.monotonic()
        quiet = 0
        last = ok0
        while time.monotonic() - t0 < max(120, 4 * self.lifetime):
            time.sleep(1)
            m = metrics(self.api)
            ok = m.get(("grantd_refreshes_total", 'outcome="ok"'), 0)
            inflight = msum(m, "grantd_refresh_inflight") + m.get(("grantd_refresh_queued", ""), 0)
            quiet = quiet + 1 if ok == last and inflight == 0 and ok - ok0 >= n else 0
            if int(time.monotonic() - t0) % 10 == 0:
                self.log("  settling: %d refreshed since the switch, last second %d, in flight+queued %d"
                         % (ok - ok0, ok - last, inflight))
            last = ok
            if quiet >= 2:
                break
        self.log("all connections idle (30-day tokens) after %.0f s" % (time.monotonic() - t0))
        time.sleep(1)
        self.res["rss_anon_after_run_bytes"] = rss_anon(self.g.pid)

    def restart(self):
        n = self.a.n
        st = stop(self.g)
        if st != 0:
            self.log("warning: grantd exited %s on SIGTERM" % st)
        mdb = os.path.join(self.data, "data.mdb")
        size = os.path.getsize(mdb)
        self.res["store_file_bytes"] = size
        self.res["store_bytes_per_connection"] = round(size / n, 1)
        if shutil.which("mdb_stat"):
            out = subprocess.run(["mdb_stat", "-e", self.data], capture_output=True, text=True).stdout
            pg = re.search(r"Page size: (\d+)", out)
            last = re.search(r"Number of pages used: (\d+)", out)
            if pg and last:
                self.res["store_used_bytes_per_connection"] = round(
                    int(pg.group(1)) * int(last.group(1)) / n, 1)
        t = self.start_grantd()
        so = self.service_open() or {}
        self.res["startup_to_healthz_s"] = round(t, 3)
        self.res["startup_reschedule_s"] = so.get("ms", 0) / 1000.0
        self.res["startup_connections"] = so.get("connections")
        self.res["startup_overdue"] = so.get("overdue")
        time.sleep(2)
        base = self.res["rss_anon_empty_bytes"]
        rss = rss_anon(self.g.pid)
        self.res["rss_anon_idle_bytes"] = rss
        self.res["rss_anon_bytes_per_connection"] = round((rss - base) / n, 1)
        self.res["rss_anon_bytes_per_connection_before_restart"] = round(
            (self.res["rss_anon_after_run_bytes"] - base) / n, 1)
        k = self.mock_counters()
        if k:
            # grantd's handshakes: all of the mock's minus the bench's own
            # connections (minting 1, control client).
            ours = 1 + self.mapi.connections
            self.res["tls_handshakes"] = k["tls"]["full_handshakes"] - ours
            self.res["tls_resumed_handshakes"] = k["tls"]["resumed_handshakes"]
            self.res["mock_refreshes_total"] = k["refreshes"]
            self.res["mock_replays"] = k["replays_detected"]

    def report(self):
        r = self.res
        r["n"] = self.a.n
        r["lifetime_s"] = self.lifetime
        r["duration_s"] = self.a.duration
        rows = [
            ("refreshes_per_s", r.get("refreshes_per_s"), ">= 20000", lambda v: v >= 20000),
            ("cpu_us_per_refresh", r.get("cpu_us_per_refresh"), "<= 25 (nginx)", lambda v: v <= 25),
            ("loop_cpu_us_per_refresh", r.get("loop_cpu_us_per_refresh"), "", None),
            ("ops_per_commit", r.get("ops_per_commit"), "", None),
            ("endpoint_cpu_us_per_refresh", r.get("endpoint_cpu_us_per_refresh"), "", None),
            ("cpu_us_per_attempt", r.get("cpu_us_per_attempt"), "", None),
            ("failed_refreshes", r.get("failed_refreshes"), "", None),
            ("events_committed", r.get("events_committed"), "", None),
            ("rss_anon_after_import_bytes_per_connection",
             r.get("rss_anon_after_import_bytes_per_connection"), "<= 200 (at 1M)", lambda v: v <= 200),
            ("refresh_p50_ms", r.get("refresh_p50_ms"), "", None),
            ("refresh_p99_ms", r.get("refresh_p99_ms"), "", None),
            ("lag_p99_ms", r.get("lag_p99_ms"), "<= 10", lambda v: v <= 10),
            ("rss_anon_bytes_per_connection", r.get("rss_anon_bytes_per_connection"),
             "<= 512 (at 1M)", lambda v: v <= 512),
            ("store_bytes_per_connection", r.get("store_bytes_per_connection"), "", None),
            ("startup_reschedule_s", r.get("startup_reschedule_s"), "<= 3 (at 1M)",
             lambda v: v <= 3),
            ("tls_handshakes", r.get("tls_handshakes"), "", None),
            ("allocs_per_refresh", r.get("allocs_per_refresh"), "", None),
        ]
        self.log("")
        self.log("%-32s %14s  %-16s %s" % ("metric (N=%d)" % self.a.n, "value", "target", ""))
        for name, v, target, ok in rows:
            verdict = "" if ok is None or v is None else ("ok" if ok(v) else "MISSED")
            self.log("%-32s %14s  %-16s %s" % (name, v, target, verdict))
        self.log("detail: " + json.dumps({k: v for k, v in sorted(r.items())
                                          if k not in dict((x[0], 0) for x in rows)}))
        path = self.a.json or "refresh_bench_%d.json" % self.a.n
        with open(path, "w") as f:
            json.dump(r, f, indent=2, sort_keys=True)
        self.log("wrote " + path)

    def cleanup(self):
        for p in (self.g, self.mock):
            stop(p)
        if not self.a.keep and not self.a.workdir:
            shutil.rmtree(self.work, ignore_errors=True)


def rnd2(v):
    return None if v is None else round(v, 2)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="release build dir (grantd, mock_provider)")
    ap.add_argument("-n", type=int, default=10000, help="connections (default 10000)")
    ap.add_argument("--duration", type=int, default=30, help="measured seconds (default 30)")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds between the import and the window (default 0.6 lifetime, 3-10 s);"
                         " at 1M a longer one lets the import's overdue refreshes drain first")
    ap.add_argument("--rate", type=float, default=20000,
                    help="refresh demand the lifetime is chosen for (default 20000/s)")
    ap.add_argument("--lifetime", type=int, default=0, help="token lifetime in s (overrides --rate)")
    ap.add_argument("--json", help="result file (default refresh_bench_N.json)")
    ap.add_argument("--perf", help="also run perf record -g on grantd over the window into FILE")
    ap.add_argument("--count-allocs", action="store_true",
                    help="count grantd's malloc/calloc/realloc/free calls over the window with perf"
                         " uprobes on libc (needs root; adds the probes if missing) and report"
                         " allocations per refresh")
    ap.add_argument("--perf-call-graph", default="fp",
                    help="perf --call-graph mode: fp (default) or dwarf (callers of libc's malloc"
                         " too; use a RelWithDebInfo build)")
    ap.add_argument("--map-size", default="16G", help="grantd --map-size (default 16G)")
    ap.add_argument("--grantd-arg", action="append", default=[],
                    help="extra grantd serve arguments, e.g. '--refresh-batch 1024' (repeatable)")
    ap.add_argument("--endpoint", choices=("mock", "nginx"), default="mock",
                    help="token endpoint: the mock provider or Debian's nginx (default mock)")
    ap.add_argument("--import-spread", type=int, default=0,
                    help="import expiries uniform over [1, S] s from now (default: over one lifetime)")
    ap.add_argument("--lead-min", type=int, default=86400,
                    help="provider refresh_lead_min in s (default 86400: refresh at half-life)")
    ap.add_argument("--fail-every", type=int, default=0,
                    help="mock only: after the import, every K-th refresh gets invalid_grant (a "
                    "permanent failure: needs_reauth and its event; 100 = 1 %%)")
    ap.add_argument("--skip-idle", action="store_true",
                    help="stop after the measured window (no idle settle and restart)")
    ap.add_argument("--workdir", help="directory for data and logs (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    for b in ("grantd",) + (("mock_provider",) if a.endpoint == "mock" else ()):
        if not os.access(os.path.join(a.build, b), os.X_OK):
            sys.exit("%s/%s not found: cmake -S . -B %s -DCMAKE_BUILD_TYPE=Release && "
                     "cmake --build %s -j2 --target grantd mock_provider" % (a.build, b, a.build, a.build))
    b = Bench(a)
    try:
        b.setup()
        b.do_import()
        if a.fail_every:
            if a.endpoint != "mock":
                sys.exit("--fail-every needs --endpoint mock")
            b.mock_config(fault="invalid_grant", fault_every=a.fail_every)
        b.measure()
        if not a.skip_idle:
            b.settle_idle()
            b.restart()
        b.report()
    finally:
        b.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
