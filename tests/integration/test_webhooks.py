#!/usr/bin/env python3
"""Integration test: webhook endpoints and their delivery (Standard
Webhooks), against the real grantd and local receivers on 127.0.0.1.

  - API: PUT (create 201 with a generated secret shown once; replace 200),
    GET one / list (never a secret), DELETE, POST .../test; bad input ->
    422/409 with an error code and nothing stored: relative / ftp:// URL,
    http:// without --allow-insecure-http, a loopback IP literal under the
    default SSRF policy, bad secret encoding / length, unknown event type
    pattern, unknown field, too many endpoints;
  - delivery: every matching event arrives signed; the signatures are
    checked here against the specification AND, independently, by the
    official `standardwebhooks` npm library (tests/node/verify.js; skipped
    with a message when node or the package is missing); https receivers
    are verified against the test CA; patterns filter;
  - flapping receivers: 5xx, timeouts and connection resets are retried
    until delivered; the endpoint view shows the last error class and
    status; a connection whose events keep failing does not hold back the
    others, and its own events arrive in order; 410 Gone disables the
    endpoint until it is PUT again;
  - receiver down, then up: nothing lost, in order per connection;
  - kill -9 of grantd during a delivery storm: after the restart every
    event is delivered (re-sends allowed, with the same webhook-id), none
    skipped, first deliveries in order per connection;
  - secret rotation: during the overlap each request carries a v1
    signature under the new and one under the old secret, then only the
    new one;
  - giving up: with a short --webhook-retry-total-s an unreachable
    endpoint's events fail for good and are counted.

No timed assertions: conditions are waited for with generous deadlines.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, ApiChecks, GrantdProc, cleanup_dir, make_certs,  # noqa: E402
                     stop_process, test_tmpdir)

T = ApiChecks()
WAIT = 120
NODE_DIR = os.path.join(REPO, "tests", "node")


def wait_until(label, fn, timeout=WAIT, interval=0.1):
    deadline = time.monotonic() + timeout
    v = None
    while time.monotonic() < deadline:
        v = fn()
        if v:
            T.ok(label, True)
            return v
        time.sleep(interval)
    T.ok(label, False, "within %ss" % timeout, "not reached (last: %r)" % (v,))
    return v


def new_secret(n=32):
    return "whsec_" + base64.b64encode(os.urandom(n)).decode()


def spec_sigs(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, b"%s.%s.%s" % (msg_id.encode(), ts.encode(), body), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


# ---------------------------------------------------------------------------
# A receiver: records every request; per-request behaviour from a policy
# ---------------------------------------------------------------------------

class Receiver:
    """HTTP/1.1 keep-alive receiver on 127.0.0.1. policy(path, event) ->
    "ok" | "500" | "410" | "timeout" | "reset" decides each answer (event
    is the parsed body). Every request is kept as dict(path, headers, body,
    event, answer)."""

    def __init__(self, certs=None, port=0):
        self.lock = threading.Lock()
        self.got = []
        self.policy = lambda path, ev: "ok"
        self.certs = certs
        self.srv = None
        self.port = port
        self.start()

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    ev = json.loads(body)
                except ValueError:
                    ev = None
                with outer.lock:
                    ans = outer.policy(self.path, ev)
                    outer.got.append({"path": self.path, "headers": dict(self.headers.items()),
                                      "body": body, "event": ev, "answer": ans})
                if ans == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if ans == "timeout":
                    time.sleep(2.5)  # grantd runs with --webhook-timeout 1000
                    self.close_connection = True
                    return
                code = {"ok": 200, "500": 500, "410": 410}[ans]
                out = b"{}"
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # grantd closing a connection (timeouts, kill -9) is expected

        self.srv = Server(("127.0.0.1", self.port), Handler)
        if self.certs is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.certs.cert, self.certs.key)
            self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % ("https" if self.certs else "http", self.port, path)

    def requests(self, path=None, answer=None):
        with self.lock:
            return [r for r in self.got if (path is None or r["path"] == path)
                    and (answer is None or r["answer"] == answer)]

    def delivered(self, path):
        """Events answered 2xx at path, in arrival order."""
        return [r["event"] for r in self.requests(path, "ok")]


def conn_of(ev):
    return (ev.get("data") or {}).get("connection")


def first_seen(events):
    seen, out = set(), []
    for e in events:
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out


def in_order_per_conn(events):
    last = {}
    for e in events:
        c = conn_of(e)
        if c in last and e["seq"] <= last[c]:
            return False
        last[c] = e["seq"]
    return True


# ---------------------------------------------------------------------------
# Signature checks: ours (the specification) and the official library's
# ---------------------------------------------------------------------------

VERIFY_LOG = []  # (secrets, request) for the Node verifier


def check_sigs(label, reqs, secrets):
    """Every request carries a valid v1 signature under each secret, and
    only v1 signatures; queued for the independent verifier too."""
    bad = []
    for r in reqs:
        h = {k.lower(): v for k, v in r["headers"].items()}
        sigs = h.get("webhook-signature", "").split(" ")
        for s in secrets:
            if spec_sigs(s, h.get("webhook-id", ""), h.get("webhook-timestamp", ""),
                         r["body"]) not in sigs:
                bad.append(h.get("webhook-id"))
        if not all(x.startswith("v1,") for x in sigs):
            bad.append(("not v1", h.get("webhook-signature")))
        VERIFY_LOG.append((list(secrets), r))
    T.ok(label + ": spec signatures valid (%d requests)" % len(reqs), not bad and reqs,
         "all valid", bad[:5] or "no requests")


def node_verify(tmp):
    node = shutil.which("node")
    lib = os.path.join(NODE_DIR, "node_modules", "standardwebhooks", "package.json")
    if node is None or not os.path.exists(lib):
        print("SKIP: independent verification with the standardwebhooks npm package: %s" %
              ("node not found" if node is None else "tests/node not installed (deps/install.sh)"))
        return
    path = os.path.join(tmp, "verify.jsonl")
    with open(path, "w") as f:
        for secrets, r in VERIFY_LOG:
            hdr = {k.lower(): v for k, v in r["headers"].items()
                   if k.lower().startswith("webhook-")}
            f.write(json.dumps({"secrets": secrets, "headers": hdr,
                                "body": r["body"].decode()}) + "\n")
    out = subprocess.run([node, os.path.join(NODE_DIR, "verify.js"), path],
                         capture_output=True, text=True, timeout=120)
    try:
        res = json.loads(out.stdout)
    except ValueError:
        T.ok("node verifier ran", False, "JSON", out.stdout[-300:] + out.stderr[-300:])
        return
    T.ok("standardwebhooks (npm) accepts every request under every secret (%d)" % len(VERIFY_LOG),
         res["verified"] == len(VERIFY_LOG) and not res["failed"], len(VERIFY_LOG), res)


# ---------------------------------------------------------------------------
# grantd helpers
# ---------------------------------------------------------------------------

def setup_provider(g):
    r = g.client.put("/v1/providers/pb", json_body={
        "token_url": "https://127.0.0.1:9/token", "client_id": "c", "client_secret": "s"})
    T.ok("provider PUT", r.status in (200, 201), "200/201", (r.status, r.text()[:200]))


def import_conns(g, ids, tenant="t1"):
    lines = "".join(json.dumps({"id": i, "tenant": tenant, "provider": "pb",
                                "grant": "refresh_token", "access_token": "at-" + i,
                                "refresh_token": "rt-" + i, "expires_in": 86400}) + "\n"
                    for i in ids)
    r = g.client.post("/v1/connections:import", body=lines,
                      headers={"Content-Type": "application/x-ndjson"})
    T.eq("import %d connections" % len(ids), 200, r.status)


def delete_conn(g, cid):
    r = g.client.delete("/v1/connections/" + cid)
    return r.status in (200, 204)


def put_wh(g, name, url, events=("connection.*",), secret=None):
    body = {"url": url, "events": list(events)}
    if secret is not None:
        body["secret"] = secret
    return g.client.put("/v1/webhooks/" + name, json_body=body)


def view(g, name):
    r = g.client.get("/v1/webhooks/" + name)
    return r.json() if r.status == 200 else None


def feed_seqs(g):
    r = g.client.get("/v1/events?limit=1000")
    return [e for e in (r.json() or {}).get("events", [])]


def metric(g, name, contains):
    text = g.client.get("/metrics").text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(c in line for c in contains):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------

def phase_guarded(tmp, rcv):
    """Without --allow-insecure-http and with the default SSRF policy."""
    g = GrantdProc(os.path.join(tmp, "guarded"), endpoint_args=())
    os.makedirs(g.workdir)
    g.start()
    try:
        r = put_wh(g, "a", rcv.url("/x"))
        T.error("http:// without --allow-insecure-http", 422, r, "insecure_url")
        r = put_wh(g, "a", "https://127.0.0.1:1/x")
        T.error("loopback IP literal under the default policy", 422, r, "endpoint_forbidden")
        T.eq("nothing stored", [], (g.client.get("/v1/webhooks").json() or {}).get("webhooks"))
    finally:
        T.ok("guarded grantd exits 0", g.stop() == 0)


def phase_api(g, rcv):
    bad = [
        ({"url": "/relative", "events": ["connection.*"]}, 422, "invalid_url"),
        ({"url": "ftp://127.0.0.1/x", "events": ["connection.*"]}, 422, "invalid_url"),
        ({"events": ["connection.*"]}, 422, "invalid_field"),
        ({"url": rcv.url("/a"), "events": ["connection.bogus"]}, 422, "invalid_event_type"),
        ({"url": rcv.url("/a"), "events": ["*"]}, 422, "invalid_event_type"),
        ({"url": rcv.url("/a"), "events": []}, 422, "invalid_field"),
        ({"url": rcv.url("/a"), "events": ["connection.*"], "extra": 1}, 422, "invalid_field"),
        ({"url": rcv.url("/a"), "events": ["connection.*"], "secret": "abc"}, 422, "invalid_secret"),
        ({"url": rcv.url("/a"), "events": ["connection.*"], "secret": "whsec_!!!"}, 422,
         "invalid_secret"),
        ({"url": rcv.url("/a"), "events": ["connection.*"], "secret": new_secret(16)}, 422,
         "invalid_secret"),
        ({"url": rcv.url("/a"), "events": ["connection.*"], "secret": new_secret(65)}, 422,
         "invalid_secret"),
    ]
    for body, st, code in bad:
        T.error("bad PUT %s" % code, st, g.client.put("/v1/webhooks/bad", json_body=body), code)
    T.status("nothing stored after bad input", 404, g.client.get("/v1/webhooks/bad"))

    r = put_wh(g, "gen", rcv.url("/gen"))
    T.status("create without a secret -> 201", 201, r)
    j = r.json() or {}
    sec = j.get("secret", "")
    T.secret(sec)
    T.ok("generated secret shown once: whsec_ + base64 of 32 bytes",
         sec.startswith("whsec_") and len(base64.b64decode(sec[6:])) == 32)
    v = view(g, "gen")
    T.ok("GET shows url, events, status, never the secret",
         v and v["url"] == rcv.url("/gen") and v["events"] == ["connection.*"]
         and "secret" not in v and v["status"]["state"] == "active", "view", v)
    r = put_wh(g, "gen", rcv.url("/gen"), events=["connection.deleted"])
    T.status("replace -> 200", 200, r)
    T.ok("replace without a secret keeps it and shows none", "secret" not in (r.json() or {}))
    lst = (g.client.get("/v1/webhooks").json() or {}).get("webhooks") or []
    T.ok("list holds it, without secrets", [w["name"] for w in lst] == ["gen"]
         and all("secret" not in w for w in lst), "list", lst)
    r = g.client.post("/v1/webhooks/gen/test", body=b"")
    tj = r.json() or {}
    T.ok("POST test -> delivered", r.status == 200 and tj.get("delivered") is True
         and tj.get("http_status") == 200, "delivered", (r.status, tj))
    tr = [x for x in rcv.requests("/gen") if (x["event"] or {}).get("type") == "webhook.test"]
    T.ok("receiver got webhook.test", len(tr) == 1)
    check_sigs("test event", tr, [sec])
    T.status("test of an unknown endpoint -> 404", 404, g.client.post("/v1/webhooks/nope/test",
                                                                       body=b""))
    for i in range(3):
        T.status("endpoint %d of 4" % (i + 2), 201, put_wh(g, "fill%d" % i, rcv.url("/f")))
    r = put_wh(g, "onetoomany", rcv.url("/f"))
    T.error("fifth endpoint (limit 4)", 409, r, "too_many_webhooks")
    T.status("nothing stored for it", 404, g.client.get("/v1/webhooks/onetoomany"))
    for n in ("gen", "fill0", "fill1", "fill2"):
        T.status("delete " + n, 200, g.client.delete("/v1/webhooks/" + n))
    T.status("deleted one is gone", 404, g.client.get("/v1/webhooks/gen"))
    T.status("delete unknown -> 404", 404, g.client.delete("/v1/webhooks/gen"))


def phase_delivery(g, rcv, trcv):
    sec = new_secret()
    T.secret(sec)
    T.status("PUT main", 201, put_wh(g, "main", rcv.url("/main"), secret=sec))
    T.status("PUT dels", 201, put_wh(g, "dels", rcv.url("/dels"), events=["connection.deleted"],
                                      secret=sec))
    T.status("PUT tls", 201, put_wh(g, "tls", trcv.url("/tls"), secret=sec))
    import_conns(g, ["d1", "d2", "d3"])
    T.ok("delete d1", delete_conn(g, "d1"))
    got = wait_until("main got 3 created + 1 deleted",
                     lambda: len(rcv.delivered("/main")) >= 4 and rcv.delivered("/main"))
    T.eq("main: types in order", ["connection.created"] * 3 + ["connection.deleted"],
         [e["type"] for e in (got or [])][:4])
    T.ok("bodies are the feed's events (ids evt_, same ids as the feed)",
         {e["id"] for e in got or []} <= {e["id"] for e in feed_seqs(g)})
    h = {k.lower(): v for k, v in rcv.requests("/main")[0]["headers"].items()}
    T.ok("webhook-id is the event id", h.get("webhook-id") == (got or [{}])[0].get("id"))
    T.ok("content-type JSON", h.get("content-type") == "application/json")
    check_sigs("main", rcv.requests("/main"), [sec])
    d = wait_until("dels got only the deleted event", lambda: rcv.delivered("/dels"))
    T.eq("pattern filter", ["connection.deleted"], [e["type"] for e in d or []])
    t = wait_until("https receiver (test CA) got 4", lambda: len(trcv.delivered("/tls")) >= 4)
    if t:
        check_sigs("tls", trcv.requests("/tls"), [sec])
    v = view(g, "main")
    T.ok("view: delivered 4, backlog 0, last_delivery_at",
         v and v["status"]["delivered"] >= 4 and v["status"]["backlog"] == 0
         and v["status"]["last_delivery_at"], "status", v and v["status"])
    T.ok("metric deliveries delivered", metric(g, "grantd_webhook_deliveries_total",
                                               ['endpoint="main"', 'outcome="delivered"']) >= 4)
    T.ok("metric latency histogram", metric(g, "grantd_webhook_delivery_seconds_count",
                                            ['endpoint="main"']) >= 4)
    for n in ("dels", "tls"):
        g.client.delete("/v1/webhooks/" + n)
    return sec


def phase_flapping(g, rcv, sec):
    seq = {"n": 0}
    script = ["500", "timeout", "reset"]

    def policy(path, ev):
        if path == "/flap":
            if ev and ev.get("type") == "connection.created" and conn_of(ev) == "f1":
                i = seq["n"]
                seq["n"] += 1
                if i < len(script):
                    return script[i]
            return "ok"
        if path == "/stuck":
            return "500" if conn_of(ev or {}) == "s1" and not STUCK_OK.is_set() else "ok"
        if path == "/gone":
            return "ok" if GONE_OK.is_set() else "410"
        return "ok"

    with rcv.lock:
        rcv.policy = policy
    T.status("PUT flap", 201, put_wh(g, "flap", rcv.url("/flap"), secret=sec))
    T.status("PUT stuck", 201, put_wh(g, "stuck", rcv.url("/stuck"), secret=sec))
    import_conns(g, ["f1", "s1", "s2"])
    T.ok("delete f1", delete_conn(g, "f1"))
    T.ok("delete s1", delete_conn(g, "s1"))
    T.ok("delete s2", delete_conn(g, "s2"))
    ok = wait_until("flap: f1 delivered after 500, timeout, reset",
                    lambda: [e["type"] for e in rcv.delivered("/flap") if conn_of(e) == "f1"]
                    == ["connection.created", "connection.deleted"])
    T.ok("flap: f1's deleted not sent before its created succeeded",
         ok and [r["event"]["type"] for r in rcv.requests("/flap")
                 if conn_of(r["event"]) == "f1"] == ["connection.created"] * 4
         + ["connection.deleted"], "created x4 then deleted",
         [(r["event"]["type"], r["answer"]) for r in rcv.requests("/flap")])
    v = view(g, "flap")
    le = (v or {}).get("status", {}).get("last_error") or {}
    T.ok("flap: view shows the last error class", le.get("class") in (
        "http_5xx", "timeout", "connection_closed"), "an error class", le)
    T.ok("metric retry outcomes", metric(g, "grantd_webhook_deliveries_total",
                                         ['endpoint="flap"', 'outcome="retry"']) >= 3)
    # s1 keeps failing: s2's events are delivered meanwhile, s1's none.
    wait_until("stuck: s2 created+deleted delivered while s1 fails",
               lambda: [e["type"] for e in rcv.delivered("/stuck") if conn_of(e) == "s2"]
               == ["connection.created", "connection.deleted"])
    wait_until("stuck: s1 retried", lambda: len(rcv.requests("/stuck", "500")) >= 2)
    T.ok("stuck: s1's deleted never sent while its created fails",
         all(r["event"]["type"] == "connection.created" for r in rcv.requests("/stuck")
             if conn_of(r["event"]) == "s1"))
    v = view(g, "stuck")
    T.ok("stuck: view shows http_5xx / 500 and a backlog",
         v and v["status"]["last_error"] and v["status"]["last_error"]["http_status"] == 500
         and v["status"]["last_error"]["class"] == "http_5xx" and v["status"]["backlog"] > 0
         and v["status"]["oldest_undelivered_at"], "status", v and v["status"])
    STUCK_OK.set()
    wait_until("stuck: s1 created then deleted once the receiver heals",
               lambda: [e["type"] for e in rcv.delivered("/stuck") if conn_of(e) == "s1"]
               == ["connection.created", "connection.deleted"])
    # 410 Gone disables the endpoint.
    T.status("PUT gone", 201, put_wh(g, "gone", rcv.url("/gone"), secret=sec))
    import_conns(g, ["g1"])
    wait_until("gone: disabled after 410", lambda: (view(g, "gone") or {}).get(
        "status", {}).get("state") == "disabled")
    n410 = len(rcv.requests("/gone"))
    T.ok("delete g1", delete_conn(g, "g1"))
    time.sleep(1.0)  # not an assertion on time: nothing may be sent at all
    T.eq("disabled: nothing more sent", n410, len(rcv.requests("/gone")))
    T.ok("metric gone", metric(g, "grantd_webhook_deliveries_total",
                               ['endpoint="gone"', 'outcome="gone"']) >= 1)
    GONE_OK.set()
    T.status("PUT gone again enables it", 200, put_wh(g, "gone", rcv.url("/gone")))
    wait_until("gone: pending events delivered after re-enable",
               lambda: [e["type"] for e in rcv.delivered("/gone")]
               == ["connection.created", "connection.deleted"])
    for n in ("flap", "stuck", "gone"):
        g.client.delete("/v1/webhooks/" + n)


STUCK_OK = threading.Event()
GONE_OK = threading.Event()


def phase_down_up(g, tmp, sec):
    down = Receiver()
    port = down.port
    T.status("PUT down", 201, put_wh(g, "down", down.url("/down"), secret=sec))
    down.stop()
    ids = ["u%d" % i for i in range(20)]
    import_conns(g, ids)
    for i in ids[:10]:
        delete_conn(g, i)
    wait_until("down: attempts fail (connect_failed)", lambda: ((view(g, "down") or {}).get(
        "status", {}).get("last_error") or {}).get("class") == "connect_failed")
    up = Receiver(port=port)
    try:
        evs = wait_until("down->up: all 30 events delivered",
                         lambda: (lambda d: d if len({e["id"] for e in d}) >= 30 else None)(
                             up.delivered("/down")))
        evs = first_seen(evs or [])
        T.ok("down->up: in order per connection", in_order_per_conn(evs))
        T.eq("down->up: nothing lost", 30, len(evs))
        check_sigs("down->up", up.requests("/down")[:5], [sec])
    finally:
        up.stop()
        g.client.delete("/v1/webhooks/down")


def phase_storm(g, rcv, sec):
    T.status("PUT storm", 201, put_wh(g, "storm", rcv.url("/storm"), secret=sec))
    base = (feed_seqs(g) or [{"seq": 0}])[-1]["seq"] if feed_seqs(g) else 0
    ids = ["k%03d" % i for i in range(300)]
    import_conns(g, ids)
    for i in ids[:100]:
        delete_conn(g, i)
    wait_until("storm: deliveries under way", lambda: len(rcv.delivered("/storm")) >= 20,
               interval=0.01)
    stop_process(g.proc, signal.SIGKILL)
    n_before = len(rcv.delivered("/storm"))
    g.start()
    evs = wait_until("storm: every event delivered after kill -9 and restart",
                     lambda: (lambda d: d if len({e["id"] for e in d}) >= 400 else None)(
                         rcv.delivered("/storm")), timeout=300)
    allev = rcv.delivered("/storm")
    uniq = first_seen(allev)
    seqs = sorted(e["seq"] for e in uniq)
    T.ok("storm: no event skipped (400 distinct, contiguous seqs)",
         len(seqs) == 400 and seqs == list(range(seqs[0], seqs[0] + 400)) and seqs[0] > base,
         "400 contiguous", (len(seqs), seqs[:3], seqs[-3:]))
    T.ok("storm: first deliveries in order per connection", in_order_per_conn(uniq))
    print("storm: %d delivered before kill -9, %d requests in all, %d re-sent" %
          (n_before, len(allev), len(allev) - len(uniq)))
    g.client.delete("/v1/webhooks/storm")
    _ = evs


def phase_rotation(g, rcv):
    s1, s2 = new_secret(), new_secret(48)
    T.secret(s1, s2)
    T.status("PUT rot", 201, put_wh(g, "rot", rcv.url("/rot"), secret=s1))
    import_conns(g, ["r1"])
    wait_until("rot: r1 created delivered", lambda: len(rcv.delivered("/rot")) >= 1)
    check_sigs("rot before rotation", rcv.requests("/rot"), [s1])
    T.status("PUT rot with a new secret", 200, put_wh(g, "rot", rcv.url("/rot"), secret=s2))
    v = view(g, "rot")
    T.ok("view: previous secret valid until ...", v and v["previous_secret_valid_until"])
    n = len(rcv.requests("/rot"))
    T.ok("delete r1", delete_conn(g, "r1"))
    wait_until("rot: r1 deleted delivered", lambda: len(rcv.requests("/rot")) > n)
    during = rcv.requests("/rot")[n:]
    T.ok("rot: two signatures during the overlap", all(
        len(r["headers"].get("webhook-signature", "").split(" ")) == 2 for r in during))
    check_sigs("rot during overlap (new and old)", during, [s2, s1])
    # --webhook-secret-overlap-s 3: then only the new one signs.
    wait_until("overlap over", lambda: not (view(g, "rot") or {}).get(
        "previous_secret_valid_until"), timeout=60, interval=0.5)
    n = len(rcv.requests("/rot"))
    import_conns(g, ["r2"])
    wait_until("rot: r2 delivered", lambda: len(rcv.requests("/rot")) > n)
    after = rcv.requests("/rot")[n:]
    T.ok("rot: one signature after the overlap", all(
        len(r["headers"].get("webhook-signature", "").split(" ")) == 1 for r in after))
    check_sigs("rot after overlap", after, [s2])
    g.client.delete("/v1/webhooks/rot")


def phase_give_up(g):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    T.status("PUT dead", 201, put_wh(g, "dead", "http://127.0.0.1:%d/x" % port))
    import_conns(g, ["x1"])
    v = wait_until("dead: the event failed for good", lambda: (lambda v: v if v and v["status"][
        "failed"] >= 1 else None)(view(g, "dead")))
    T.ok("dead: backlog 0 once failed", v and v["status"]["backlog"] == 0, 0, v and v["status"])
    T.ok("metric failed", metric(g, "grantd_webhook_deliveries_total",
                                 ['endpoint="dead"', 'outcome="failed"']) >= 1)
    T.ok("log webhook_delivery_failed", "webhook_delivery_failed" in g.log())


def timed(name, fn, *a):
    t0 = time.monotonic()
    r = fn(*a)
    print("phase %s: %.1f s" % (name, time.monotonic() - t0))
    return r


def main():
    tmp = test_tmpdir("webhooks-")
    certs = make_certs(os.path.join(tmp, "pki"))
    rcv = Receiver()
    trcv = Receiver(certs=certs)
    g = None
    args = ["--allow-insecure-http", "--webhook-max-endpoints", "4", "--webhook-timeout", "1000",
            "--webhook-retry-base-ms", "100", "--webhook-secret-overlap-s", "3"]
    try:
        timed("guarded", phase_guarded, tmp, rcv)
        g = GrantdProc(tmp, ca_file=certs.ca, args=args)
        g.start()
        setup_provider(g)
        timed("api", phase_api, g, rcv)
        sec = timed("delivery", phase_delivery, g, rcv, trcv)
        timed("flapping", phase_flapping, g, rcv, sec)
        timed("down_up", phase_down_up, g, tmp, sec)
        timed("storm", phase_storm, g, rcv, sec)
        timed("rotation", phase_rotation, g, rcv)
        node_verify(tmp)
        T.ok("no secret in the log", not any(s in g.log() for s in T.secrets if s))
        g.stop()
        g.start(extra_args=["--webhook-retry-total-s", "1"])
        phase_give_up(g)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        T.ok("test ran to completion", False, "no exception", "%s: %s" % (type(e).__name__, e))
        if g is not None:
            print("grantd log tail:\n" + T.scrub(g.log()[-3000:]))
    finally:
        if g is not None and g.proc is not None and g.proc.poll() is None:
            st = g.stop()
            T.ok("grantd exits 0 on SIGTERM at the end", st == 0, 0, st)
        rcv.stop()
        trcv.stop()
    rc = T.finish()
    if rc == 0:
        cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
