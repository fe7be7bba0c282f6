#!/usr/bin/env python3
"""Integration test: connection events (the durable outbox) and the pull
feed GET /v1/events, against the real grantd and the mock provider.

  - lifecycle: created + authorized (client_credentials), created (import),
    refresh_failing (500) then recovered, needs_reauth (invalid_grant),
    deleted; routine refreshes make no event; each event in the Standard
    Webhooks shape (type, timestamp, data with connection, tenant,
    provider, status, previous_status, last_error, metadata), ids evt_...,
    sequence numbers increasing; no token or secret anywhere in the feed;
  - feed: pages with after/limit resume where they stopped; types and
    tenant filters; bad cursor / limit / wait / type pattern -> 400 with an
    error code;
  - long-poll: a wait=30 request parked after the last event is answered
    with the next event (a delete) instead of an empty page;
  - kill -9 and restart: every event answered before is still there, in
    the same order, and numbering goes on; retention (--events-keep 3)
    prunes the oldest at the next commit, and a cursor before the kept
    ones answers 410 cursor_expired.

No timed assertions: conditions are waited for with generous deadlines.
"""
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, cleanup_dir,  # noqa: E402
                     make_certs, stop_process, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
WAIT = 90


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


def mint(mock):
    import base64
    c = mock.new_client()
    auth = "Basic " + base64.b64encode(("%s:%s" % CLIENT).encode()).decode()
    r = c.post("/token", form={"grant_type": "password", "username": "alice",
                               "password": "wonderland"}, headers={"Authorization": auth})
    j = r.json() or {}
    c.close()
    if r.status != 200 or "refresh_token" not in j:
        raise RuntimeError("mock password grant failed: HTTP %s" % r.status)
    T.secret(j["access_token"], j["refresh_token"])
    return j["access_token"], j["refresh_token"]


def import_one(g, cid, tenant, provider, at, rt):
    line = {"id": cid, "tenant": tenant, "provider": provider, "grant": "refresh_token",
            "access_token": at, "refresh_token": rt, "expires_in": 3600,
            "metadata": {"plan": "gold"}}
    r = g.client.post("/v1/connections:import", body=json.dumps(line) + "\n",
                      headers={"Content-Type": "application/x-ndjson"})
    T.eq("import %s: 200" % cid, 200, r.status)


def conn(g, cid):
    r = g.client.get("/v1/connections/" + cid)
    return r.json() if r.status == 200 else None


def feed(g, query=""):
    r = g.client.get("/v1/events" + query)
    return r.status, (r.json() or {}), r.text()


def all_events(g):
    evs, cur = [], "0"
    for _ in range(1000):
        st, j, _ = feed(g, "?after=%s&limit=2" % cur)
        if st != 200:
            T.ok("feed page answers 200", False, 200, st)
            return evs
        evs += j.get("events", [])
        if not j.get("events"):
            return evs
        cur = j["next_cursor"]
    return evs


def of(evs, cid):
    return [e["type"] for e in evs if e["data"].get("connection") == cid]


def phase_lifecycle(g, mock, secrets_seen):
    r = g.client.put("/v1/connections/cc0", json_body={"tenant": "t1", "provider": "pb",
                                                       "grant": "client_credentials"})
    T.ok("client_credentials PUT -> 200/201", r.status in (200, 201), "200/201", r.status)
    at, rt = mint(mock)
    secrets_seen += [at, rt]
    import_one(g, "tr0", "t2", "pb", at, rt)
    # Routine refresh: no event.
    r = g.client.post("/v1/connections/tr0/refresh", body=b"")
    T.eq("routine forced refresh answers 200", 200, r.status)
    mock.config(fault="500", fault_count=0)
    r = g.client.post("/v1/connections/tr0/refresh", body=b"")
    T.eq("transient: forced refresh answered 502", 502, r.status)
    mock.config(fault="none", fault_count=0)
    wait_until("tr0 active again", lambda: (conn(g, "tr0") or {}).get("status") == "active")
    at2, rt2 = mint(mock)
    secrets_seen += [at2, rt2]
    import_one(g, "pm0", "t2", "pb", at2, rt2)
    mock.config(fault="invalid_grant", fault_count=1)
    g.client.post("/v1/connections/pm0/refresh", body=b"")
    mock.config(fault="none", fault_count=0)
    wait_until("pm0 needs_reauth",
               lambda: (conn(g, "pm0") or {}).get("status") == "needs_reauth")
    r = g.client.delete("/v1/connections/cc0")
    T.ok("delete cc0 -> 200/204", r.status in (200, 204), "200/204", r.status)

    evs = wait_until("recovered event in the feed",
                     lambda: (lambda e: e if "connection.recovered" in of(e, "tr0") else None)
                     (all_events(g))) or []
    T.eq("cc0 events", ["connection.created", "connection.authorized", "connection.deleted"],
         of(evs, "cc0"))
    T.eq("tr0 events (routine refreshes make none)",
         ["connection.created", "connection.refresh_failing", "connection.recovered"],
         of(evs, "tr0"))
    pm = wait_until("pm0 needs_reauth event", lambda: (lambda e: e if "connection.needs_reauth"
                                                       in of(e, "pm0") else None)(all_events(g)))
    if pm:
        T.eq("pm0 events", ["connection.created", "connection.needs_reauth"], of(pm, "pm0"))
        evs = pm
    seqs = [e["seq"] for e in evs]
    T.ok("sequence numbers strictly increasing", seqs == sorted(set(seqs)), "increasing", seqs)
    T.ok("ids are evt_ and unique", all(e["id"].startswith("evt_") for e in evs)
         and len({e["id"] for e in evs}) == len(evs))
    fail = [e for e in evs if e["type"] == "connection.refresh_failing"]
    if fail:
        d = fail[0]["data"]
        T.ok("refresh_failing data: status, previous_status, last_error http 500, metadata",
             d["status"] == "refresh_failing" and d["previous_status"] == "active"
             and d["last_error"] and d["last_error"].get("http_status") == 500
             and d["metadata"] == {"plan": "gold"} and d["tenant"] == "t2"
             and d["provider"] == "pb", "shape", d)
        T.ok("timestamp is RFC 3339", isinstance(fail[0]["timestamp"], str)
             and fail[0]["timestamp"].endswith("Z"))
        T.eq("Standard Webhooks members", {"id", "seq", "type", "timestamp", "data"},
             set(fail[0].keys()))
    rec = [e for e in evs if e["type"] == "connection.recovered"]
    T.ok("recovered: previous_status refresh_failing, last_error null",
         rec and rec[0]["data"]["previous_status"] == "refresh_failing"
         and rec[0]["data"]["last_error"] is None)
    _, _, text = feed(g, "?limit=1000")
    T.ok("no token or secret in the feed", not any(s in text for s in secrets_seen + [CLIENT[1]]))
    return evs


def phase_filters(g, evs):
    st, j, _ = feed(g, "?types=connection.needs_reauth,connection.deleted&limit=1000")
    T.eq("types filter", ["connection.deleted", "connection.needs_reauth"],
         sorted(e["type"] for e in j.get("events", [])))
    st, j, _ = feed(g, "?tenant=t1&limit=1000")
    T.ok("tenant filter", st == 200 and j["events"]
         and all(e["data"]["tenant"] == "t1" for e in j["events"]))
    st, j, _ = feed(g, "?types=connection.*&limit=1000")
    T.eq("connection.* matches all", len(evs), len(j.get("events", [])))
    last = evs[-1]["seq"] if evs else 0
    for q, code in (("?after=abc", "invalid_cursor"), ("?after=%d" % (last + 1000), "invalid_cursor"),
                    ("?limit=0", "invalid_query"), ("?limit=5000", "invalid_query"),
                    ("?wait=61", "invalid_query"), ("?types=connection.bogus", "invalid_event_type"),
                    ("?types=webhook.*", "invalid_event_type")):
        st, j, _ = feed(g, q)
        T.ok("bad query %s -> 400 %s" % (q, code), st == 400 and j.get("error") == code,
             "400 %s" % code, "%s %s" % (st, j))


def phase_long_poll(g, cur):
    out = {}

    def poll():
        from harness import HttpClient
        c = HttpClient("127.0.0.1", g.port, headers={"Authorization": "Bearer " + g.api_key},
                       timeout=90)
        r = c.get("/v1/events?after=%s&wait=30&types=connection.deleted" % cur)
        out["status"], out["json"] = r.status, r.json()
        c.close()
    t = threading.Thread(target=poll)
    t.start()
    time.sleep(1.0)  # let it park; if it has not, it answers at once anyway
    r = g.client.delete("/v1/connections/tr0")
    T.ok("delete tr0", r.status in (200, 204), "200/204", r.status)
    t.join(120)
    evs = (out.get("json") or {}).get("events", [])
    T.ok("long-poll answered with the delete event", out.get("status") == 200 and len(evs) == 1
         and evs[0]["type"] == "connection.deleted" and evs[0]["data"]["connection"] == "tr0",
         "200 with connection.deleted", out)


def main():
    tmp = test_tmpdir("events-")
    certs = make_certs(os.path.join(tmp, "pki"))
    mock = g = None
    try:
        mock = MockProvider(tmp, certs).start()
        mock.config(expires_in=7200, reuse_grace_s=0, rotate_refresh_tokens=True)
        g = GrantdProc(tmp, ca_file=certs.ca).start()
        body = {"token_url": "https://localhost:%d/token" % mock.port, "client_id": CLIENT[0],
                "client_secret": CLIENT[1]}
        r = g.client.put("/v1/providers/pb", json_body=body)
        T.ok("PUT provider", r.status in (200, 201), "200/201", r.status)
        st, j, _ = feed(g)
        T.ok("empty feed", st == 200 and j.get("events") == [] and j.get("next_cursor") == "0",
             "200 [] 0", (st, j))
        seen = []
        evs = phase_lifecycle(g, mock, seen)
        phase_filters(g, evs)
        mt = g.client.get("/metrics").text()
        T.ok("/metrics counts events by type",
             'grantd_events_total{type="connection.created"} 3' in mt
             and 'grantd_events_total{type="connection.recovered"} 1' in mt, "counted",
             [l for l in mt.splitlines() if l.startswith("grantd_events")])
        before = all_events(g)
        phase_long_poll(g, before[-1]["seq"] if before else 0)
        before = all_events(g)
        # kill -9, restart on the same data: everything is still there.
        stop_process(g.proc, signal.SIGKILL)
        # Restarted with a small retention: pruning happens at the next
        # commit with events, so everything is still there first.
        g.start(extra_args=["--events-keep", "3"])
        after = all_events(g)
        T.eq("after kill -9: the same events in the same order",
             [(e["seq"], e["type"]) for e in before], [(e["seq"], e["type"]) for e in after])
        r = g.client.delete("/v1/connections/pm0")
        T.ok("delete pm0", r.status in (200, 204), "200/204", r.status)
        last = all_events(g)
        T.ok("numbering goes on after restart", last and before
             and last[-1]["seq"] == before[-1]["seq"] + 1
             and last[-1]["type"] == "connection.deleted", "next seq", last[-1:] if last else None)
        T.eq("retention: 3 events kept", 3, len(last))
        st, j, _ = feed(g, "?after=1")
        T.ok("cursor older than retention -> 410 cursor_expired",
             st == 410 and j.get("error") == "cursor_expired", "410 cursor_expired", (st, j))
        st, j, _ = feed(g, "?after=%d" % last[0]["seq"])
        T.eq("cursor at the oldest kept event still works", 2, len(j.get("events", [])))
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        T.ok("test ran to completion", False, "no exception", "%s: %s" % (type(e).__name__, e))
        if g is not None:
            print("grantd log tail:\n" + T.scrub(g.log()[-2000:]))
        # A parked long-poll does not hold shutdown: SIGTERM answers it.
        out = {}

        def poll():
            from harness import HttpClient
            c = HttpClient("127.0.0.1", g.port,
                           headers={"Authorization": "Bearer " + g.api_key}, timeout=120)
            try:
                r = c.get("/v1/events?after=%d&wait=60" % last[-1]["seq"])
                out["status"], out["json"] = r.status, r.json()
            except Exception as e:  # noqa: BLE001
                out["error"] = repr(e)
            c.close()
        t = threading.Thread(target=poll)
        t.start()
        time.sleep(1.0)
        st = g.stop()
        t.join(120)
        g = None
        T.ok("SIGTERM with a parked long-poll: exit 0", st == 0, 0, st)
        T.ok("the parked long-poll was answered (empty page)", out.get("status") == 200
             and (out.get("json") or {}).get("events") == [], "200 []", out)
    finally:
        if g is not None:
            st = g.stop()
            T.ok("grantd exits 0 on SIGTERM at the end", st == 0, 0, st)
        if mock is not None:
            mock.stop()
    rc = T.finish()
    if rc == 0:
        cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
