"""Reusable pieces for grantd's integration tests (Python 3 stdlib only).

The tests run under CTest (tests/tests.cmake), which sets:
  GRANTD_BIN       the grantd executable
  MOCK_BIN         the mock OAuth provider (tests/mock/)
  GRANTD_TEST_TMP  a scratch directory for this build

Pieces:
  test_tmpdir(prefix)          fresh directory under $GRANTD_TEST_TMP
  make_certs(dir, rsa=False)   test CA + localhost/127.0.0.1/::1 leaf (tests/mock/make_certs.sh)
  wait_port_file(path, proc)   the port a child wrote once listening
  stop_process(proc)           SIGTERM, wait, SIGKILL if it hangs; exit status
  HttpClient / HttpResponse    keep-alive HTTP(S) client with JSON and form helpers
  MockProvider                 start/stop the mock; its control endpoints
  GrantdProc                   start/stop `grantd serve` wired to a mock's CA
  Checks, expect_raises        count checks; print "N passed, M failed"

Every process is started on 127.0.0.1 port 0 and reports its port through a
port file, so tests never race for ports. Processes are stopped by PID.
Secrets registered with Checks.secret() are scrubbed from failure output.
"""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAKE_CERTS = os.path.join(REPO, "tests", "mock", "make_certs.sh")


def _env_bin(name):
    path = os.environ.get(name)
    if not path:
        raise SystemExit("%s is not set (run the test through ctest)" % name)
    return path


def test_tmpdir(prefix):
    """A fresh directory under $GRANTD_TEST_TMP (else the system temp dir)."""
    base = os.environ.get("GRANTD_TEST_TMP") or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)


class Certs:
    """Paths of a generated test PKI: ca (trust anchor), cert and key (the
    server's, for the mock's --cert/--key)."""

    def __init__(self, d):
        self.dir = d
        self.ca = os.path.join(d, "ca.pem")
        self.cert = os.path.join(d, "server.pem")
        self.key = os.path.join(d, "server.key")

    def ssl_context(self):
        """A client context trusting only this CA (hostname checked)."""
        return ssl.create_default_context(cafile=self.ca)


def make_certs(directory, rsa=False, no_ip=False):
    """Generates a CA and a leaf for localhost/127.0.0.1/::1 into directory
    (ECDSA P-256, or RSA 2048 with rsa=True; DNS:localhost only, without
    the IP addresses, with no_ip=True). Returns a Certs."""
    cmd = (["sh", MAKE_CERTS] + (["--rsa"] if rsa else []) + (["--no-ip"] if no_ip else [])
           + [directory])
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return Certs(directory)


def wait_port_file(path, proc=None, timeout=60):
    """Waits until `path` holds a port number (> 0) and returns it. Raises
    RuntimeError if proc exits first or nothing appears in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                s = f.read().strip()
            if s.isdigit() and int(s) > 0:
                return int(s)
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with status %s before listening"
                               % (os.path.basename(str(proc.args[0])), proc.returncode))
        if time.monotonic() > deadline:
            raise RuntimeError("no port in %s after %ss" % (path, timeout))
        time.sleep(0.02)


def stop_process(proc, sig=signal.SIGTERM, timeout=60):
    """Signals proc (by PID) and waits. Returns its exit status (negative =
    killed by a signal), or "timeout" after it had to be SIGKILLed."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return "timeout"
    return proc.returncode


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class HttpResponse:
    """status (int), headers (dict, lower-case names), body (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def form(self):
        """The body as an x-www-form-urlencoded dict (last value wins)."""
        return dict(urllib.parse.parse_qsl(self.text(), keep_blank_values=True))

    def __repr__(self):
        return "HTTP %s %s" % (self.status, self.text()[:200])


class HttpClient:
    """A keep-alive HTTP/1.1 client for one host:port, TLS when ssl_context
    is given. Reconnects when the server closed the connection; exceptions
    other than a stale keep-alive connection propagate (timeouts, cut-off
    bodies), after which the next request uses a new connection."""

    def __init__(self, host, port, ssl_context=None, timeout=30, headers=None):
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.default_headers = dict(headers or {})
        self.conn = None
        self.connections = 0  # connections opened so far

    def _connect(self):
        if self.ssl_context is not None:
            c = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                            context=self.ssl_context)
        else:
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.connections += 1
        return c

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, json_body=None, form=None, headers=None):
        """Sends one request. body: bytes/str as is; json_body: encoded as
        JSON; form: dict or list of pairs, form-encoded. Returns an
        HttpResponse."""
        hdrs = dict(self.default_headers)
        hdrs.update(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = urllib.parse.urlencode(form)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):
            fresh = self.conn is None
            if fresh:
                self.conn = self._connect()
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                r = self.conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    ssl.SSLEOFError) as e:
                self.close()
                if fresh or attempt == 1:
                    raise e
                continue  # a kept-alive connection the server had closed: once more
            except Exception:
                self.close()
                raise
            try:
                data = r.read()  # never retried: the request was answered
            except Exception:
                self.close()
                raise
            h = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close()
            return HttpResponse(r.status, h, data)
        raise AssertionError("unreachable")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


# ---------------------------------------------------------------------------
# The mock provider
# ---------------------------------------------------------------------------

class MockProvider:
    """One mock_provider process. Usage:

        certs = make_certs(os.path.join(tmp, "pki"))
        mock = MockProvider(tmp, certs).start(args=["--reuse-grace-s", "30"])
        mock.url("/token")            # https://127.0.0.1:PORT/token
        mock.client.post("/token", form={...}, headers={...})
        mock.config(fault="500", fault_count=1)
        mock.counters()["refreshes"]
        mock.stop()                   # SIGTERM; returns the exit status

    args are extra command-line options (--client ID:SECRET, --user N:P,
    --KNOB VALUE, --config JSON, --verbose). With certs=None the mock runs
    --plain (http). Its stderr goes to log_path."""

    counter = 0

    def __init__(self, workdir, certs=None, host="127.0.0.1"):
        self.workdir = workdir
        self.certs = certs
        self.host = host
        self.proc = None
        self.port = None
        self.client = None
        MockProvider.counter += 1
        n = MockProvider.counter
        self.port_file = os.path.join(workdir, "mock-port-%d" % n)
        self.log_path = os.path.join(workdir, "mock-%d.log" % n)

    @property
    def scheme(self):
        return "https" if self.certs is not None else "http"

    @property
    def base_url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def url(self, path):
        return self.base_url + path

    def start(self, args=(), timeout=60):
        cmd = [_env_bin("MOCK_BIN"), "--port-file", self.port_file]
        if self.certs is not None:
            cmd += ["--cert", self.certs.cert, "--key", self.certs.key]
        else:
            cmd += ["--plain"]
        cmd += list(args)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            self.port = wait_port_file(self.port_file, self.proc, timeout)
        except RuntimeError as e:
            stop_process(self.proc, signal.SIGKILL)
            raise RuntimeError("%s: %s" % (e, self.log()[-800:]))
        self.client = self.new_client()
        return self

    def new_client(self, timeout=30):
        """A new keep-alive client to the mock (own connection)."""
        ctx = self.certs.ssl_context() if self.certs is not None else None
        return HttpClient(self.host, self.port, ctx, timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.client is not None:
            self.client.close()
        return stop_process(self.proc, sig, timeout)

    def log(self):
        return read_text(self.log_path)

    # control endpoints
    def counters(self):
        return self.client.get("/_mock/counters").json()

    def config(self, **knobs):
        """Sets knobs (POST /_mock/config); returns the response."""
        return self.client.post("/_mock/config", json_body=knobs)

    def knobs(self):
        return self.client.get("/_mock/config").json()

    def reset(self):
        """Forgets all tokens, zeroes the counters, restores start knobs."""
        return self.client.post("/_mock/reset", body=b"")


def body_of(r):
    """An HttpResponse's JSON object body, or {} when it is none."""
    j = r.json()
    return j if isinstance(j, dict) else {}


def last_error(j):
    """A connection view's last_error object, or {}."""
    le = j.get("last_error")
    return le if isinstance(le, dict) else {}


# ---------------------------------------------------------------------------
# grantd
# ---------------------------------------------------------------------------

class GrantdProc:
    """One `grantd serve --listen 127.0.0.1:0 --data DIR --port-file F
    [--ca-file CA]` with GRANTD_API_KEY (and GRANTD_MASTER_KEY when given) in
    its environment; other GRANTD_* variables of the test's environment are
    not passed on. `client` is an HttpClient sending the API key."""

    counter = 0

    # The mock and every test server listen on loopback, which grantd's SSRF
    # guard refuses by default: the tests opt in exactly as an operator
    # would. Pass endpoint_args=() for the default (guarded) behaviour.
    LOOPBACK_ENDPOINTS = ("--allow-endpoint-cidr", "127.0.0.0/8,::1/128")

    def __init__(self, workdir, data_dir=None, api_key=None, master_key=None, ca_file=None,
                 args=(), env=None, endpoint_args=None):
        import secrets
        self.endpoint_args = list(self.LOOPBACK_ENDPOINTS if endpoint_args is None
                                  else endpoint_args)
        self.workdir = workdir
        self.data_dir = data_dir or os.path.join(workdir, "data")
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.master_key = master_key
        self.ca_file = ca_file
        self.args = list(args)
        self.env = dict(env or {})
        self.proc = None
        self.port = None
        self.client = None
        self.log_path = None

    def start(self, extra_args=(), timeout=90):
        GrantdProc.counter += 1
        n = GrantdProc.counter
        port_file = os.path.join(self.workdir, "grantd-port-%d" % n)
        self.log_path = os.path.join(self.workdir, "grantd-%d.log" % n)
        cmd = [_env_bin("GRANTD_BIN"), "serve", "--listen", "127.0.0.1:0", "--data",
               self.data_dir, "--port-file", port_file]
        if self.ca_file:
            cmd += ["--ca-file", self.ca_file]
        cmd += self.endpoint_args + self.args + list(extra_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
        env["GRANTD_API_KEY"] = self.api_key
        if self.master_key:
            env["GRANTD_MASTER_KEY"] = self.master_key
        env.update(self.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        try:
            self.port = wait_port_file(port_file, self.proc, timeout)
        except RuntimeError as e:
            stop_process(self.proc, signal.SIGKILL)
            raise RuntimeError("%s: %s" % (e, self.log()[-800:]))
        self.client = HttpClient("127.0.0.1", self.port,
                                 headers={"Authorization": "Bearer " + self.api_key})
        return self

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.client is not None:
            self.client.close()
        return stop_process(self.proc, sig, timeout)

    def log(self):
        return read_text(self.log_path) if self.log_path else ""


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

class Checks:
    """Counts checks. A failure prints its label with the expected and the
    actual value, with every registered secret scrubbed. finish() prints
    the final "N passed, M failed" line and returns the exit status."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.secrets = []

    def secret(self, *values):
        """Registers values never to be printed; returns them."""
        for v in values:
            if v:
                self.secrets.append(str(v))
        return values[0] if len(values) == 1 else values

    def scrub(self, v):
        s = v if isinstance(v, str) else repr(v)
        for sec in sorted(self.secrets, key=len, reverse=True):
            s = s.replace(sec, "[secret len %d]" % len(sec))
        if len(s) > 600:
            s = s[:600] + "...(%d chars)" % len(s)
        return s

    def ok(self, label, cond, expected="true", actual="false"):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL %s: expected %s, got %s" % (label, self.scrub(expected),
                                                    self.scrub(actual)), flush=True)
        return bool(cond)

    def eq(self, label, expected, actual):
        return self.ok(label, expected == actual, repr(expected), repr(actual))

    def status(self, label, expected, resp):
        """Checks an HTTP status; a failure shows the (scrubbed) body."""
        return self.ok(label, resp.status == expected, "HTTP %s" % expected,
                       "HTTP %s %s" % (resp.status, resp.text()[:300]))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0



def expect_raises(checks, label, exc_types, fn):
    """Records in `checks` whether fn() raises one of exc_types; returns the
    exception (or None)."""
    try:
        fn()
    except exc_types as e:
        checks.ok(label, True)
        return e
    except Exception as e:  # noqa: BLE001 - reported as a failure
        checks.ok(label, False, "one of %s" % (exc_types,), "%s: %s" % (type(e).__name__, e))
        return e
    checks.ok(label, False, "one of %s" % (exc_types,), "no exception")
    return None


def cleanup_dir(path):
    """Removes a test directory (ignore errors)."""
    shutil.rmtree(path, ignore_errors=True)


# ===========================================================================
# Added for test_api_crud.py, test_api_limits.py and test_persistence.py:
# an API client with per-request auth, grantd processes with or without
# preset keys (generated-key tests), kill -9 and per-start logs, raw-socket
# requests (malformed input, pipelining, limits), error-envelope checks and
# data-dir greps. Built on the pieces above; nothing above is changed.
# ===========================================================================
import re  # noqa: E402
import secrets as _secrets  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def rand_key(nbytes=24):
    """A random URL-safe secret (API keys, tokens, client secrets)."""
    return _secrets.token_urlsafe(nbytes)


def rand_master_key():
    """64 random hex digits: a valid GRANTD_MASTER_KEY."""
    return _secrets.token_hex(32)


def grantd_bin():
    return _env_bin("GRANTD_BIN")


class ApiChecks(Checks):
    """Checks plus error(): the JSON error envelope of an error answer."""

    def error(self, label, expected_status, resp, code=None, mentions=None):
        """Checks status, a JSON {"error": str, "message": str} body and
        optionally the error code and that the message names `mentions`."""
        good = self.status(label + " status", expected_status, resp)
        j = resp.json()
        shape = isinstance(j, dict) and isinstance(j.get("error"), str) and isinstance(j.get("message"), str)
        good &= self.ok(label + " JSON error body", shape, '{"error": str, "message": str}',
                        repr(resp.body[:300]))
        if shape and code is not None:
            good &= self.eq(label + " error code", code, j["error"])
        if shape and mentions is not None:
            good &= self.ok(label + " message names %r" % mentions, mentions in j["message"],
                            "message containing %r" % mentions, j["message"])
        return good


class ApiClient(HttpClient):
    """HttpClient for grantd's API: sends `Authorization: Bearer <api_key>`
    unless auth=False (key= sends another key); a non-bytes/str body is sent
    as JSON."""

    def __init__(self, port, api_key, timeout=60):
        HttpClient.__init__(self, "127.0.0.1", port, timeout=timeout)
        self.api_key = api_key

    def request(self, method, path, body=None, auth=True, key=None, headers=None, **kw):
        hdrs = dict(headers or {})
        if auth:
            hdrs["Authorization"] = "Bearer " + (key if key is not None else self.api_key)
        if body is not None and not isinstance(body, (bytes, str)):
            return HttpClient.request(self, method, path, json_body=body, headers=hdrs, **kw)
        return HttpClient.request(self, method, path, body=body, headers=hdrs, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)


class ServeProc(GrantdProc):
    """GrantdProc that may run without GRANTD_API_KEY / GRANTD_MASTER_KEY
    (api_key/master_key None: grantd generates or loads its own), keeps one
    log file per start (log() = the last, log_text() = all), can spawn
    without waiting for the port (start-up failures) and be SIGKILLed.
    `client` is an ApiClient."""

    def __init__(self, workdir, data_dir, api_key=None, master_key=None, args=(), env=None):
        GrantdProc.__init__(self, workdir, data_dir, api_key="-", master_key=master_key,
                            args=args, env=env)
        self.api_key = api_key
        self.logs = []
        self.port_file = None

    def spawn(self, extra_args=()):
        """Starts the process; does not wait for it to listen."""
        GrantdProc.counter += 1
        n = GrantdProc.counter
        self.port_file = os.path.join(self.workdir, "grantd-port-%d" % n)
        self.log_path = os.path.join(self.workdir, "grantd-%d.log" % n)
        self.logs.append(self.log_path)
        cmd = [grantd_bin(), "serve", "--listen", "127.0.0.1:0", "--data", self.data_dir,
               "--port-file", self.port_file] + self.endpoint_args + self.args + list(extra_args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTD_")}
        if self.api_key is not None:
            env["GRANTD_API_KEY"] = self.api_key
        if self.master_key is not None:
            env["GRANTD_MASTER_KEY"] = self.master_key
        env.update(self.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        return self.proc

    def start(self, extra_args=(), timeout=90):
        self.spawn(extra_args)
        try:
            self.port = wait_port_file(self.port_file, self.proc, timeout)
        except RuntimeError as e:
            stop_process(self.proc, signal.SIGKILL)
            raise RuntimeError("%s: %s" % (e, self.log()[-800:]))
        self.client = ApiClient(self.port, self.api_key)
        return self

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def wait_exit(self, timeout=60):
        """Waits for the process to exit by itself; its status, or "timeout"
        (then it was SIGKILLed)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc, signal.SIGKILL)
            return "timeout"

    def last_log(self):
        return self.log()

    def log_text(self):
        return "".join(read_text(p) for p in self.logs)


class RawConn:
    """A plain socket to 127.0.0.1:port for malformed requests, pipelining
    and limits; read_response() parses one HTTP/1.1 response
    (Content-Length, chunked, or until close) into an HttpResponse."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def close(self):
        self.sock.close()

    def _fill(self):
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            return False
        self.buf += d
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                return None
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self):
        """The next response, or None when the connection closed first.
        Raises socket.timeout when nothing arrives in time."""
        status_line = self._line()
        if status_line is None:
            return None
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        headers = {}
        while True:
            line = self._line()
            if line is None:
                return None
            if line == b"":
                break
            k, _, v = line.partition(b":")
            headers[k.decode().strip().lower()] = v.decode().strip()
        if "content-length" in headers:
            body = self._exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line() not in (b"", None):
                        pass
                    break
                body += self._exact(size)
                self._line()
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return HttpResponse(status, headers, body or b"")

    def closed_by_peer(self, timeout=30):
        """True when the server closes the connection (EOF or reset) within
        timeout seconds without sending anything more."""
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return d == b""

    def readable(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)


def find_in_dir(root, needles):
    """Every (path, needle) where a needle (str or bytes) occurs in a file
    under root."""
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            for n in needles:
                b = n if isinstance(n, bytes) else n.encode()
                if b and b in data:
                    hits.append((p, n))
    return hits


def mock_mint(mock, n, client=("test-client", "test-secret"), user=("alice", "wonderland")):
    """n fresh (access, refresh) token pairs from the mock's password grant,
    each its own grant family at the mock. Raises RuntimeError when the
    mock refuses."""
    import base64
    c = mock.new_client()
    auth = "Basic " + base64.b64encode(("%s:%s" % client).encode()).decode()
    out = []
    try:
        for _ in range(n):
            r = c.post("/token", form={"grant_type": "password", "username": user[0],
                                       "password": user[1]}, headers={"Authorization": auth})
            j = r.json() or {}
            if r.status != 200 or "refresh_token" not in j:
                raise RuntimeError("mock password grant failed: HTTP %s" % r.status)
            out.append((j["access_token"], j["refresh_token"]))
    finally:
        c.close()
    return out
