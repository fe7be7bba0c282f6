#!/usr/bin/env python3
"""Integration test: grantd's proactive refresh engine against the mock
provider (real binaries, TLS on loopback).

  - proactive refresh: imported tokens living ~6 s are refreshed before they
    expire without any token read; refreshed_at / next_refresh_at /
    failures in GET; GET token?min_ttl=1 always answers a non-expired token
    that the provider accepts;
  - single-flight against a rotating mock without a reuse grace window
    (replaying a refresh token revokes the grant): 50 concurrent reads with
    min_ttl=3600 -> one refresh at the mock, one new token for all; 20
    concurrent forced refreshes coalesce into one request;
  - transient failures (500 x3) -> refresh_failing with backoff, the old
    token still served, then active again; 429 + Retry-After is honoured;
  - invalid_grant -> needs_reauth, schedule stopped, no further requests;
  - client_credentials renews by re-running its grant;
  - no expiry + refresh token -> keep-alive schedule (provider interval or
    the 24 h default); no expiry and no refresh token -> not scheduled;
  - per-provider rate limit (3 per 5 s): the mock sees at most 3 token
    requests in the first 5 s of 10 forced refreshes;
  - /metrics: refreshes by outcome, latency and lag histograms, scheduled,
    connections by status;
  - restart (SIGTERM, start again on the same data): next_refresh_at kept,
    overdue connections ramp in and refresh, nothing replayed.

No timed assertions: conditions are waited for with generous deadlines;
the only time-bounded observation (the rate-limit window) can only become
easier to pass on a slow machine.
"""
import calendar
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, HttpClient, MockProvider,  # noqa: E402
                     cleanup_dir, make_certs, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
WAIT = 90  # generous deadline for anything that should happen in seconds


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def now_ms():
    return int(time.time() * 1000)


def parse_time(s):
    """RFC 3339 UTC ('2026-11-29T05:39:57.458Z') -> epoch ms; None -> None."""
    if s is None:
        return None
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$", s)
    if not m:
        raise ValueError("not an RFC 3339 UTC time: %r" % s)
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "0")[:3].ljust(3, "0")
    return calendar.timegm((y, mo, d, h, mi, se)) * 1000 + int(frac)


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def metrics(client):
    """/metrics as {(name, labels-text): value}; labels-text is '' or the
    text between the braces."""
    r = client.get("/metrics")
    out = {}
    for line in r.text().splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if m:
            out[(m.group(1), (m.group(2) or "{}")[1:-1])] = float(m.group(3))
    return out


def mval(ms, name, labels=""):
    return ms.get((name, labels), 0.0)


def wait_until(label, fn, timeout=WAIT, interval=0.1):
    """Polls fn() until it returns a truthy value; records a check. Returns
    the last value."""
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


def mint(mock, n):
    """n fresh (access, refresh) pairs from the mock's password grant (each
    its own grant family at the mock)."""
    c = mock.new_client()
    out = []
    import base64
    auth = "Basic " + base64.b64encode(("%s:%s" % CLIENT).encode()).decode()
    for _ in range(n):
        r = c.post("/token", form={"grant_type": "password", "username": "alice",
                                   "password": "wonderland"},
                   headers={"Authorization": auth})
        j = r.json() or {}
        if r.status != 200 or "refresh_token" not in j:
            raise RuntimeError("mock password grant failed: HTTP %s" % r.status)
        T.secret(j["access_token"], j["refresh_token"])
        out.append((j["access_token"], j["refresh_token"]))
    c.close()
    return out


def import_lines(g, lines):
    """POST /v1/connections:import; returns (status, per-line results,
    summary)."""
    import json
    body = "".join(json.dumps(l) + "\n" for l in lines)
    r = g.client.post("/v1/connections:import", body=body,
                      headers={"Content-Type": "application/x-ndjson"})
    results, summary = [], None
    for line in r.text().splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        if "summary" in o:
            summary = o["summary"]
        else:
            results.append(o)
    return r.status, results, summary


def import_tokens(g, prefix, provider, pairs, expires_in=None):
    lines = []
    for i, (at, rt) in enumerate(pairs):
        l = {"id": "%s%d" % (prefix, i), "tenant": "t-" + prefix, "provider": provider,
             "grant": "refresh_token", "access_token": at, "refresh_token": rt}
        if expires_in is not None:
            l["expires_in"] = expires_in
        lines.append(l)
    st, res, summ = import_lines(g, lines)
    T.ok("import %s*: 200, %d imported" % (prefix, len(pairs)),
         st == 200 and summ and summ.get("imported") == len(pairs),
         "200 and %d imported" % len(pairs), "HTTP %s %r" % (st, summ))
    return ["%s%d" % (prefix, i) for i in range(len(pairs))]


def conn(g, cid):
    r = g.client.get("/v1/connections/" + cid)
    return r.json() if r.status == 200 else None


def resource_ok(mock, client, access_token):
    """True when the mock accepts the access token at /resource."""
    r = client.get("/resource", headers={"Authorization": "Bearer " + access_token})
    return r.status == 200


def mock_url(mock, path):
    # BearSSL matches the certificate's DNS name, not its IP SAN.
    return "https://localhost:%d%s" % (mock.port, path)


def put_provider(g, name, mock, **extra):
    body = {"token_url": mock_url(mock, "/token"), "client_id": CLIENT[0],
            "client_secret": CLIENT[1]}
    body.update(extra)
    r = g.client.put("/v1/providers/" + name, json_body=body)
    T.ok("PUT provider %s" % name, r.status in (200, 201), "200/201",
         "HTTP %s %s" % (r.status, r.text()[:200]))


def run_threads(n, fn):
    """Runs fn(i) in n threads started together; returns their results."""
    res = [None] * n
    barrier = threading.Barrier(n)

    def body(i):
        try:
            res[i] = fn(i, barrier)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            res[i] = e
    ts = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


# ---------------------------------------------------------------------------
# phases
# ---------------------------------------------------------------------------

def phase_proactive(g, mockA, pro):
    """pro: ids imported with expires_in 6 on provider pa (lead_min 2)."""
    first = {cid: conn(g, cid) for cid in pro}
    exp0 = {cid: parse_time(c["expires_at"]) for cid, c in first.items()}
    T.ok("proactive: imported records carry expires_at and next_refresh_at before it",
         all(c and c["expires_at"] and c["next_refresh_at"] and
             parse_time(c["next_refresh_at"]) < parse_time(c["expires_at"]) for c in first.values()),
         "next_refresh_at < expires_at", [(k, v and v.get("next_refresh_at")) for k, v in first.items()][:3])

    ref0 = {cid: c["refreshed_at"] for cid, c in first.items()}

    def all_refreshed():
        cs = {cid: conn(g, cid) for cid in pro}
        return cs if all(c and c["refreshed_at"] and c["refreshed_at"] != ref0[cid]
                         for c, cid in ((cs[i], i) for i in pro)) else None
    cs = wait_until("proactive: every connection refreshed without a read", all_refreshed)
    if not cs:
        return
    early = [cid for cid, c in cs.items() if parse_time(c["refreshed_at"]) >= exp0[cid]]
    T.ok("proactive: refreshed before the imported token expired", not early,
         "refreshed_at < old expires_at", "late: %s" % early)
    bad = [cid for cid, c in cs.items()
           if not (c["status"] == "active" and c["failures"] == 0 and c["last_error"] is None
                   and c["next_refresh_at"] and parse_time(c["expires_at"]) > exp0[cid])]
    T.ok("proactive: active, failures 0, new expiry, next_refresh_at set", not bad, "all",
         "bad: %s" % [(k, cs[k]["status"], cs[k]["failures"]) for k in bad])
    m = metrics(g.client)
    reads = sum(v for (n, l), v in m.items() if n == "grantd_http_requests_total"
                and 'route="/v1/connections/{id}/token"' in l)
    T.eq("proactive: no token read was made so far", 0, reads)
    ctr = mockA.counters()
    T.ok("proactive: the mock saw >= 1 refresh per connection, no replay",
         ctr["refreshes"] >= len(pro) and ctr["replays_detected"] == 0,
         ">= %d refreshes, 0 replays" % len(pro),
         "%s refreshes, %s replays" % (ctr["refreshes"], ctr["replays_detected"]))

    # Reads with min_ttl=1 for a while: every answer is a live token.
    rc = mockA.new_client()
    end = time.monotonic() + 7
    n = expired = rejected = non200 = 0
    while time.monotonic() < end:
        for cid in pro:
            r = g.client.get("/v1/connections/%s/token?min_ttl=1" % cid)
            t = now_ms()
            n += 1
            if r.status != 200:
                non200 += 1
                continue
            j = r.json()
            if parse_time(j["expires_at"]) <= t:
                expired += 1
            if not resource_ok(mockA, rc, j["access_token"]):
                rejected += 1
    rc.close()
    T.ok("min_ttl=1 reads (%d): all 200, none expired, all accepted by the provider" % n,
         n > 0 and non200 == 0 and expired == 0 and rejected == 0, "0 bad",
         "%d non-200, %d expired, %d rejected" % (non200, expired, rejected))
    # They keep refreshing: the ~7 s above span at least one more refresh each.
    later = {cid: conn(g, cid) for cid in pro}
    stale = [cid for cid in pro if later[cid]["refreshed_at"] == cs[cid]["refreshed_at"]]
    T.ok("proactive: refreshed again (continuous)", not stale, "all refreshed again",
         "not: %s" % stale)


def phase_single_flight(g, mockB, pb):
    (at, rt), = mint(mockB, 1)
    import_tokens(g, "sf", pb, [(at, rt)], expires_in=600)
    mockB.config(expires_in=7200, latency_ms=1000)
    c0 = mockB.counters()

    def reader(i, barrier):
        cl = HttpClient("127.0.0.1", g.port, headers={"Authorization": "Bearer " + g.api_key},
                        timeout=120)
        cl.get("/healthz")  # connected before the barrier
        barrier.wait()
        r = cl.get("/v1/connections/sf0/token?min_ttl=3600")
        cl.close()
        return r.status, (r.json() or {}).get("access_token")
    res = run_threads(50, reader)
    c1 = mockB.counters()
    mockB.config(latency_ms=0)
    errs = [r for r in res if isinstance(r, Exception) or r[0] != 200]
    T.ok("single-flight: 50 concurrent reads (min_ttl=3600) all 200", not errs, "all 200",
         "%d failed: %s" % (len(errs), [r if isinstance(r, Exception) else r[0] for r in errs][:3]))
    toks = {r[1] for r in res if not isinstance(r, Exception)}
    T.ok("single-flight: all 50 got the same token", len(toks) == 1, "1 distinct token",
         "%d distinct" % len(toks))
    T.ok("single-flight: it is a new token", at not in toks, "new", "the imported one")
    T.eq("single-flight: exactly one refresh at the mock", 1, c1["refreshes"] - c0["refreshes"])
    T.eq("single-flight: no replay at the mock", 0, c1["replays_detected"] - c0["replays_detected"])
    c = conn(g, "sf0")
    T.ok("single-flight: connection stays active", c and c["status"] == "active", "active",
         c and c["status"])
    tok = next(iter(toks)) if len(toks) == 1 else ""
    rc = mockB.new_client()
    T.ok("single-flight: the new token is live at the provider", tok and resource_ok(mockB, rc, tok))
    rc.close()

    # Forced refreshes coalesce: one request in flight (held 3 s by the
    # mock), then 19 more forced refreshes join it.
    mockB.config(latency_ms=3000)
    c0 = mockB.counters()
    host = 'host="https://localhost:%d"' % mockB.port
    first = {}

    def first_post():
        cl = HttpClient("127.0.0.1", g.port, headers={"Authorization": "Bearer " + g.api_key},
                        timeout=120)
        r = cl.post("/v1/connections/sf0/refresh", body=b"")
        first["r"] = r
        cl.close()
    t0 = threading.Thread(target=first_post)
    t0.start()
    wait_until("coalesce: the first forced refresh is in flight",
               lambda: mval(metrics(g.client), "grantd_refresh_inflight", host) >= 1,
               interval=0.02)

    def forcer(i, barrier):
        cl = HttpClient("127.0.0.1", g.port, headers={"Authorization": "Bearer " + g.api_key},
                        timeout=120)
        cl.get("/healthz")
        barrier.wait()
        r = cl.post("/v1/connections/sf0/refresh", body=b"")
        cl.close()
        return r.status, (r.json() or {}).get("revision")
    res = run_threads(19, forcer)
    t0.join()
    c1 = mockB.counters()
    mockB.config(latency_ms=0)
    fr = first.get("r")
    res.append((fr.status, (fr.json() or {}).get("revision")) if fr else Exception("no answer"))
    errs = [r for r in res if isinstance(r, Exception) or r[0] != 200]
    T.ok("coalesce: 20 forced refreshes all 200", not errs, "all 200", errs[:3])
    revs = {r[1] for r in res if not isinstance(r, Exception)}
    T.ok("coalesce: all answered with the same committed revision", len(revs) == 1,
         "1 revision", sorted(revs, key=str))
    T.eq("coalesce: one token request at the mock", 1, c1["refreshes"] - c0["refreshes"])
    T.eq("coalesce: no replay", 0, c1["replays_detected"] - c0["replays_detected"])
    c = conn(g, "sf0")
    T.ok("coalesce: connection active", c and c["status"] == "active", "active", c and c["status"])


def backoff_window(failures):
    """The retry delay (ms) policy_backoff picks after `failures` transient
    failures: base 1 s doubled per failure, capped at 5 min, jittered in
    [base/2, base]."""
    base = min(1000 << max(failures - 1, 0), 300000)
    return base // 2, base


def phase_transient(g, mockB, pb):
    # The faults last until the failing state has been checked, then are
    # lifted: the engine retries on its own clock, so a fixed number of
    # faults could be used up (and the record moved on) before a check reads
    # it on a slow machine. Each check reads one record and compares its
    # fields with each other, never with an earlier read.
    (at, rt), = mint(mockB, 1)
    import_tokens(g, "tr", pb, [(at, rt)], expires_in=3600)
    m0 = metrics(g.client)
    c0 = mockB.counters()
    mockB.config(fault="500", fault_count=0)
    r = g.client.post("/v1/connections/tr0/refresh", body=b"")
    T.eq("transient: forced refresh answered 502", 502, r.status)
    T.eq("transient: the answer says refresh_failing", "refresh_failing", (r.json() or {}).get("status"))
    c = conn(g, "tr0")
    T.ok("transient: refresh_failing, failures >= 1, last_error http 500",
         c and c["status"] == "refresh_failing" and c["failures"] >= 1 and c["last_error"]
         and c["last_error"].get("http_status") == 500,
         "refresh_failing/>=1/http 500",
         c and (c["status"], c["failures"], c["last_error"]))
    if c and c["last_error"] and c["next_refresh_at"]:
        err_at = parse_time(c["last_error"]["at"])
        nxt = parse_time(c["next_refresh_at"])
        lo, hi = backoff_window(c["failures"])
        T.ok("transient: retry scheduled by backoff after the failure (failures %d: %d-%d ms)"
             % (c["failures"], lo, hi), lo <= nxt - err_at <= hi, "%d..%d ms" % (lo, hi),
             "%d ms" % (nxt - err_at))
    r = g.client.get("/v1/connections/tr0/token")
    T.ok("transient: the still-valid token is served while failing",
         r.status == 200 and (r.json() or {}).get("access_token") == at, "200 with the old token",
         "HTTP %s" % r.status)
    mockB.config(fault="none", fault_count=0)
    c = wait_until("transient: back to active after the faults",
                   lambda: (lambda c: c if c and c["status"] == "active" else None)(conn(g, "tr0")))
    if c:
        T.ok("transient: recovered record: failures 0, no last_error",
             c["failures"] == 0 and c["last_error"] is None, "0/null",
             (c["failures"], c["last_error"]))
    # The record is readable once its commit is durable, a moment before
    # the loop runs the commit's completion (index, metrics, the end of the
    # op that a forced refresh would otherwise join): wait for the counter.
    healed = 'from="refresh_failing",to="active"'
    m1 = wait_until("transient: status change refresh_failing -> active counted",
                    lambda: (lambda m: m if mval(m, "grantd_status_changes_total", healed)
                             > mval(m0, "grantd_status_changes_total", healed) else None)
                    (metrics(g.client)))
    m1 = m1 or metrics(g.client)
    c1 = mockB.counters()
    faults = c1["faults_injected"] - c0["faults_injected"]
    T.ok("transient: the mock injected faults", faults >= 1, ">= 1", faults)
    T.eq("transient: one transient outcome counted per injected fault", faults,
         mval(m1, "grantd_refreshes_total", 'outcome="transient"')
         - mval(m0, "grantd_refreshes_total", 'outcome="transient"'))

    # 429 with Retry-After: 3 -> no retry earlier than 3 s after a failure.
    mockB.config(fault="429", fault_count=0, retry_after=3)
    r = g.client.post("/v1/connections/tr0/refresh", body=b"")
    T.eq("retry-after: forced refresh answered 502", 502, r.status)
    c = conn(g, "tr0")
    if T.ok("retry-after: refresh_failing with http 429",
            c and c["status"] == "refresh_failing" and c["last_error"]
            and c["last_error"].get("http_status") == 429, "refresh_failing/429",
            c and (c["status"], c["last_error"])):
        err_at = parse_time(c["last_error"]["at"])
        nxt = parse_time(c["next_refresh_at"])
        T.ok("retry-after: next attempt >= 3 s after the failure", nxt - err_at >= 3000,
             ">= 3000 ms", "%d ms" % (nxt - err_at))
        mockB.config(fault="none", fault_count=0)
        c2 = wait_until("retry-after: active again",
                        lambda: (lambda c: c if c and c["status"] == "active" else None)(conn(g, "tr0")))
        if c2:
            # Failures after the one read above only push the successful
            # retry later: it follows that one by >= 3 s as well.
            T.ok("retry-after: the retry came no earlier than Retry-After",
                 parse_time(c2["refreshed_at"]) >= err_at + 3000, ">= failure + 3 s",
                 "%d ms after" % (parse_time(c2["refreshed_at"]) - err_at))
    mockB.config(fault="none", fault_count=0, retry_after=1)


def phase_permanent(g, mockB, pperm):
    """pperm: provider on mockB with refresh_lead_min 2: the 5 s import is
    refreshed proactively and gets invalid_grant."""
    (at, rt), = mint(mockB, 1)
    c0 = mockB.counters()
    mockB.config(fault="invalid_grant", fault_count=1)
    import_tokens(g, "pm", pperm, [(at, rt)], expires_in=5)
    exp = parse_time(conn(g, "pm0")["expires_at"])
    c = wait_until("permanent: needs_reauth after invalid_grant",
                   lambda: (lambda c: c if c and c["status"] == "needs_reauth" else None)(conn(g, "pm0")))
    mockB.config(fault="none", fault_count=0)
    if not c:
        return
    T.ok("permanent: last_error invalid_grant, no next_refresh_at",
         c["last_error"] and c["last_error"]["code"] == "invalid_grant" and c["next_refresh_at"] is None,
         "invalid_grant/null", (c["last_error"], c["next_refresh_at"]))
    c1 = mockB.counters()
    T.eq("permanent: exactly one token request at the mock", 1,
         c1["requests"]["token"] - c0["requests"]["token"])
    # Past the old expiry (plus margin): nothing more is sent.
    while now_ms() < exp + 3000:
        time.sleep(0.2)
    r = g.client.get("/v1/connections/pm0/token?min_ttl=1")
    T.eq("permanent: token read answers 409", 409, r.status)
    r = g.client.get("/v1/connections/pm0/token?min_ttl=0")
    T.eq("permanent: token read (min_ttl=0) answers 409", 409, r.status)
    c2 = mockB.counters()
    T.eq("permanent: no further token requests (counters flat)", c1["requests"]["token"],
         c2["requests"]["token"])
    c = conn(g, "pm0")
    T.ok("permanent: still needs_reauth, unscheduled",
         c and c["status"] == "needs_reauth" and c["next_refresh_at"] is None)


def phase_keepalive(g, mockB, pka, pdef):
    pairs = mint(mockB, 3)
    t0 = now_ms()
    import_tokens(g, "ka", pka, pairs[:1])
    import_tokens(g, "kd", pdef, pairs[1:2])
    st, res, summ = import_lines(g, [{"id": "kn0", "tenant": "t", "provider": pdef,
                                      "grant": "refresh_token", "access_token": pairs[2][0]}])
    T.eq("keep-alive: access-token-only import accepted", 200, st)
    t1 = now_ms()
    c = conn(g, "ka0")
    if T.ok("keep-alive: no expiry, refresh token, scheduled", c and c["expires_at"] is None
            and c["next_refresh_at"], "expires null, next set", c and (c["expires_at"], c["next_refresh_at"])):
        n = parse_time(c["next_refresh_at"])
        T.ok("keep-alive: next_refresh_at = now + keepalive_interval (600 s, -10% jitter)",
             t0 + 540000 - 1000 <= n <= t1 + 600000 + 1000, "in [now+540 s, now+600 s]",
             "now + %.1f s" % ((n - t0) / 1000.0))
    c = conn(g, "kd0")
    if T.ok("keep-alive default: scheduled", c and c["next_refresh_at"]):
        n = parse_time(c["next_refresh_at"])
        T.ok("keep-alive default: next_refresh_at = now + 24 h (-10% jitter)",
             t0 + 77760000 - 1000 <= n <= t1 + 86400000 + 1000, "in [now+21.6 h, now+24 h]",
             "now + %.2f h" % ((n - t0) / 3600000.0))
    c = conn(g, "kn0")
    T.ok("no expiry, no refresh token: not scheduled", c and c["next_refresh_at"] is None,
         "null", c and c["next_refresh_at"])


def phase_rate_limit(g, mockC, ids, out):
    """10 forced refreshes of `ids` through a 3-per-5-s limit. Runs in a
    thread with its own connections (records no checks); fills out[]."""
    ctr = mockC.new_client()

    def refreshes():
        return ctr.get("/_mock/counters").json()["refreshes"]
    c0 = refreshes()
    samples = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            samples.append((time.monotonic(), refreshes() - c0))
            time.sleep(0.05)
    wt = threading.Thread(target=watch)
    t_start = time.monotonic()
    wt.start()

    def forcer(i, barrier):
        cl = HttpClient("127.0.0.1", g.port, headers={"Authorization": "Bearer " + g.api_key},
                        timeout=300)
        r = cl.post("/v1/connections/%s/refresh" % ids[i], body=b"")
        cl.close()
        return r.status
    res = run_threads(len(ids), forcer)
    done.set()
    wt.join()
    out["statuses"] = [r if isinstance(r, int) else repr(r) for r in res]
    out["first_window"] = max([n for t, n in samples if t - t_start < 4.9] or [0])
    out["total"] = refreshes() - c0
    # when the count first reached each value (s after the start)
    first = {}
    for t, n in samples:
        first.setdefault(n, round(t - t_start, 2))
    out["timeline"] = sorted(first.items())
    ctr.close()


def phase_metrics(g):
    m = metrics(g.client)
    outcomes = {l: v for (n, l), v in m.items() if n == "grantd_refreshes_total"}
    T.ok("metrics: refreshes by outcome (ok, transient, reauth)",
         outcomes.get('outcome="ok"', 0) > 0 and outcomes.get('outcome="transient"', 0) >= 2
         and outcomes.get('outcome="reauth"', 0) >= 1, "ok>0 transient>=2 reauth>=1", outcomes)
    for h in ("grantd_refresh_latency_ms", "grantd_scheduler_lag_ms"):
        buckets = sorted(((float(re.search(r'le="([^"]+)"', l).group(1).replace("+Inf", "inf")), v)
                          for (n, l), v in m.items() if n == h + "_bucket"))
        cnt = mval(m, h + "_count")
        mono = all(buckets[i][1] <= buckets[i + 1][1] for i in range(len(buckets) - 1))
        T.ok("metrics: %s histogram: buckets cumulative, +Inf == count > 0" % h,
             buckets and mono and buckets[-1][0] == float("inf") and buckets[-1][1] == cnt and cnt > 0,
             "valid histogram", "count %s, %d buckets, monotonic %s" % (cnt, len(buckets), mono))
    total_ok_tr = sum(outcomes.values())
    T.ok("metrics: latency observations cover the requests made",
         mval(m, "grantd_refresh_latency_ms_count") >= outcomes.get('outcome="ok"', 0),
         ">= ok refreshes", (mval(m, "grantd_refresh_latency_ms_count"), total_ok_tr))
    by_status = {re.search(r'status="([^"]+)"', l).group(1): v for (n, l), v in m.items()
                 if n == "grantd_connections"}
    # The listing gives the same numbers (statuses here are stable: the
    # short-lived connections stay active while refreshing).
    listed = {}
    cursor = None
    while True:
        q = "/v1/connections?limit=1000" + ("&cursor=" + cursor if cursor else "")
        j = g.client.get(q).json() or {}
        for c in j.get("connections", []):
            listed[c["status"]] = listed.get(c["status"], 0) + 1
        cursor = j.get("next_cursor")
        if not cursor:
            break
    T.ok("metrics: connections by status match the listing",
         all(by_status.get(s, 0) == listed.get(s, 0) for s in set(by_status) | set(listed)),
         listed, by_status)
    T.eq("metrics: needs_reauth gauge", 1.0, by_status.get("needs_reauth"))
    sched = mval(m, "grantd_scheduled")
    T.ok("metrics: scheduled within (0, active + refresh_failing]",
         0 < sched <= by_status.get("active", 0) + by_status.get("refresh_failing", 0),
         "0 < scheduled <= schedulable", (sched, by_status))
    T.ok("metrics: queued and in-flight gauges present",
         ("grantd_refresh_queued", "") in m and any(n == "grantd_refresh_inflight" for n, _ in m))


def phase_restart(g, mockA, mockB, pro, stable_ids):
    snap = {cid: conn(g, cid) for cid in stable_ids}
    T.eq("restart: SIGTERM exits 0", 0, g.stop())
    # Stay down past the short tokens' expiry: they come back overdue.
    time.sleep(7)
    cA0 = mockA.counters()
    t_start = now_ms()
    g.start()
    log = g.log()
    m = re.search(r'"event":"service_open".*', log)
    T.ok("restart: service_open logged", m is not None)
    after = {cid: conn(g, cid) for cid in stable_ids}
    changed = [cid for cid in stable_ids
               if not after[cid] or after[cid]["next_refresh_at"] != snap[cid]["next_refresh_at"]
               or after[cid]["status"] != snap[cid]["status"]]
    T.ok("restart: next_refresh_at and status kept exactly", not changed, "unchanged",
         [(cid, snap[cid] and snap[cid]["next_refresh_at"],
           after[cid] and after[cid]["next_refresh_at"]) for cid in changed][:4])

    def all_after():
        cs = {cid: conn(g, cid) for cid in pro}
        return cs if all(c and c["refreshed_at"] and parse_time(c["refreshed_at"]) > t_start
                         and c["status"] == "active" for c in cs.values()) else None
    cs = wait_until("restart: overdue short-lived connections refreshed and active", all_after)
    if cs:
        bad = []
        for cid in pro:
            r = g.client.get("/v1/connections/%s/token?min_ttl=1" % cid)
            if r.status != 200 or parse_time(r.json()["expires_at"]) <= now_ms():
                bad.append(cid)
        T.ok("restart: min_ttl=1 reads give live tokens", not bad, "all", bad)
    cA1 = mockA.counters()
    T.eq("restart: no replay at the mock", 0, cA1["replays_detected"] - cA0["replays_detected"])
    c = conn(g, "pm0")
    T.ok("restart: needs_reauth connection stays unscheduled",
         c and c["status"] == "needs_reauth" and c["next_refresh_at"] is None)


def phase_client_credentials_start(g):
    r = g.client.put("/v1/connections/cc0", json_body={"tenant": "t", "provider": "pa",
                                                       "grant": "client_credentials"})
    j = r.json() or {}
    T.ok("client_credentials: PUT -> active, no refresh token",
         r.status in (200, 201) and j.get("status") == "active" and not j.get("has_refresh_token"),
         "active", "HTTP %s %s" % (r.status, j.get("status")))
    return j.get("refreshed_at")


def phase_client_credentials_check(g, mockA, first_refreshed):
    c = wait_until("client_credentials: renewed by re-running the grant",
                   lambda: (lambda c: c if c and c["refreshed_at"] != first_refreshed
                            and c["status"] == "active" else None)(conn(g, "cc0")))
    ctr = mockA.counters()
    T.ok("client_credentials: the mock saw >= 2 client_credentials grants",
         ctr["token_requests"]["client_credentials"] >= 2, ">= 2",
         ctr["token_requests"]["client_credentials"])
    if c:
        r = g.client.get("/v1/connections/cc0/token?min_ttl=1")
        T.ok("client_credentials: min_ttl=1 read gives a live token",
             r.status == 200 and parse_time(r.json()["expires_at"]) > now_ms())


# ---------------------------------------------------------------------------

def main():
    tmp = test_tmpdir("refresh-")
    certs = make_certs(os.path.join(tmp, "pki"))
    mocks = []
    g = None
    try:
        mockA = MockProvider(tmp, certs).start()   # short lifetimes
        mockB = MockProvider(tmp, certs).start()   # long lifetimes, faults
        mockC = MockProvider(tmp, certs).start()   # rate limit
        mocks = [mockA, mockB, mockC]
        mockA.config(expires_in=6, reuse_grace_s=0, rotate_refresh_tokens=True)
        mockB.config(expires_in=7200, reuse_grace_s=0, rotate_refresh_tokens=True)
        mockC.config(expires_in=7200)
        g = GrantdProc(tmp, ca_file=certs.ca).start()
        put_provider(g, "pa", mockA, refresh_lead_min=2)
        put_provider(g, "pb", mockB)
        put_provider(g, "pperm", mockB, refresh_lead_min=2)
        put_provider(g, "pka", mockB, keepalive_interval=600)
        put_provider(g, "pdef", mockB)
        put_provider(g, "prl", mockC, rate_limit_count=3, rate_limit_window=5)

        pro = import_tokens(g, "pro", "pa", mint(mockA, 20), expires_in=6)
        cc_first = phase_client_credentials_start(g)
        rl_ids = import_tokens(g, "rl", "prl", mint(mockC, 10), expires_in=3600)
        rl = {}
        rl_thread = threading.Thread(target=phase_rate_limit, args=(g, mockC, rl_ids, rl))
        # The rate-limit phase uses its own grantd connections and mock.
        phase_proactive(g, mockA, pro)
        rl_thread.start()
        phase_single_flight(g, mockB, "pb")
        phase_transient(g, mockB, "pb")
        phase_permanent(g, mockB, "pperm")
        phase_keepalive(g, mockB, "pka", "pdef")
        phase_client_credentials_check(g, mockA, cc_first)
        rl_thread.join()
        sts = rl.get("statuses") or []
        T.ok("rate limit: 10 forced refreshes all 200", len(sts) == 10 and all(s == 200 for s in sts),
             "10 x 200", sts)
        T.ok("rate limit (3 per 5 s): <= 3 token requests in the first window",
             rl.get("first_window", 99) <= 3, "<= 3",
             "%s (count reached at s: %s)" % (rl.get("first_window"), rl.get("timeline")))
        T.eq("rate limit: all 10 eventually sent", 10, rl.get("total"))
        phase_metrics(g)
        stable = ["sf0", "tr0", "pm0", "ka0", "kd0", "kn0"] + ["rl%d" % i for i in range(10)]
        phase_restart(g, mockA, mockB, pro, stable)
    except Exception as e:  # noqa: BLE001 - a crash is a failure, with context
        import traceback
        traceback.print_exc()
        T.ok("test ran to completion", False, "no exception", "%s: %s" % (type(e).__name__, e))
        if g is not None:
            print("grantd log tail:\n" + T.scrub(g.log()[-2000:]))
    finally:
        if g is not None:
            st = g.stop()
            T.ok("grantd exits 0 on SIGTERM at the end", st == 0, 0, st)
        for m in mocks:
            m.stop()
    rc = T.finish()
    if rc == 0:
        cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
