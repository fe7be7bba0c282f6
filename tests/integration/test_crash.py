#!/usr/bin/env python3
"""Integration test: crash safety of refresh-token rotation.

Thousands of connections (GRANTD_CRASH_N, default 2000) with lifetimes of a
few seconds refresh continuously against the mock provider, which rotates
refresh tokens. grantd is killed with SIGKILL at random moments
(GRANTD_CRASH_CYCLES, default 10, per mode) and restarted each time on the
same data directory. Two modes, each with its own mock, data and grantd:

  grace     the mock accepts a rotated refresh token for 30 s (reuse grace
            window). No connection may be lost: after the last restart every
            connection is active with a token refreshed after that restart,
            which the provider accepts, and none is needs_reauth.
  no-grace  a replayed refresh token revokes the grant. Only refreshes in
            flight at a kill (request sent or result not yet committed) may
            be affected: every affected connection must be explained by a
            replay the mock detected, their number must stay within what can
            be in flight (per kill: the per-host request limit plus
            responses awaiting their commit), and they must be reported with
            their own reason, not a generic error, i.e. not as a plain
            provider invalid_grant.

Figures (in flight sampled just before each kill, affected connections,
mock counters) are printed for the report. GRANTD_CRASH_SEED fixes the
random kill moments. No timed assertions: conditions are waited for with
generous deadlines.
"""
import base64
import calendar
import json
import os
import random
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, GrantdProc, MockProvider, cleanup_dir,  # noqa: E402
                     make_certs, test_tmpdir)

T = Checks()
CLIENT = ("test-client", "test-secret")
N = int(os.environ.get("GRANTD_CRASH_N", "2000"))
CYCLES = int(os.environ.get("GRANTD_CRASH_CYCLES", "10"))
SEED = int(os.environ.get("GRANTD_CRASH_SEED", str(int(time.time()) % 100000)))
MAX_PER_HOST = 32   # --refresh-max-per-host: bounds requests in flight at a kill
LIFETIME_S = 4      # the mock's expires_in: refreshed about every 3 s
WAIT = 180


def now_ms():
    return int(time.time() * 1000)


def parse_time(s):
    if s is None:
        return None
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z$", s)
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = (m.group(7) or "0")[:3].ljust(3, "0")
    return calendar.timegm((y, mo, d, h, mi, se)) * 1000 + int(frac)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def metrics(client):
    out = {}
    for line in client.get("/metrics").text().splitlines():
        m = METRIC_RE.match(line)
        if m and not line.startswith("#"):
            out[(m.group(1), (m.group(2) or "{}")[1:-1])] = float(m.group(3))
    return out


def mint(mock, n):
    c = mock.new_client()
    auth = "Basic " + base64.b64encode(("%s:%s" % CLIENT).encode()).decode()
    out = []
    for _ in range(n):
        r = c.post("/token", form={"grant_type": "password", "username": "alice",
                                   "password": "wonderland"}, headers={"Authorization": auth})
        j = r.json() or {}
        if r.status != 200 or "refresh_token" not in j:
            raise RuntimeError("mock password grant failed: HTTP %s" % r.status)
        out.append((j["access_token"], j["refresh_token"]))
    c.close()
    return out


def list_all(g):
    """Every connection record (paged listing)."""
    out, cursor = [], None
    while True:
        q = "/v1/connections?limit=1000" + ("&cursor=" + cursor if cursor else "")
        r = g.client.get(q)
        if r.status != 200:
            raise RuntimeError("listing failed: HTTP %s" % r.status)
        j = r.json()
        out.extend(j["connections"])
        cursor = j.get("next_cursor")
        if not cursor:
            return out


def service_open(g):
    """The fields of the service_open log line of the current process."""
    for line in g.log().splitlines():
        if '"event":"service_open"' in line:
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def run_mode(tmp, certs, mode, rnd):
    grace = mode == "grace"
    label = mode
    mock = MockProvider(tmp, certs).start()
    g = None
    try:
        mock.config(expires_in=LIFETIME_S, rotate_refresh_tokens=True,
                    reuse_grace_s=30 if grace else 0)
        g = GrantdProc(tmp, data_dir=os.path.join(tmp, "data-" + mode), ca_file=certs.ca,
                       args=["--refresh-max-per-host", str(MAX_PER_HOST)]).start()
        r = g.client.put("/v1/providers/p", json_body={
            "token_url": "https://localhost:%d/token" % mock.port, "client_id": CLIENT[0],
            "client_secret": CLIENT[1], "refresh_lead_min": 1})
        T.ok("%s: provider put" % label, r.status in (200, 201), "200", r.status)
        pairs = mint(mock, N)
        # Expiries spread to the millisecond: refreshes are spread evenly
        # (no bursts a kill could fall between).
        t0 = now_ms()
        for p in pairs:
            T.secret(*p)
        body = "".join(json.dumps({"id": "c%05d" % i, "tenant": "t", "provider": "p",
                                   "grant": "refresh_token", "access_token": at,
                                   "refresh_token": rt,
                                   "expires_at": rfc3339(t0 + rnd.randint(2000, 1000 * (LIFETIME_S + 1)))})
                       + "\n" for i, (at, rt) in enumerate(pairs))
        r = g.client.post("/v1/connections:import", body=body,
                          headers={"Content-Type": "application/x-ndjson"})
        summ = json.loads(r.text().strip().splitlines()[-1]).get("summary", {})
        T.ok("%s: import of %d" % (label, N), r.status == 200 and summ.get("imported") == N,
             "200 / %d" % N, "HTTP %s %s" % (r.status, summ))

        kills = []
        for cyc in range(CYCLES):
            # Let refreshes run (the first cycles include start-up ramp-in).
            time.sleep(rnd.uniform(0.3, 2.5))
            m = metrics(g.client)
            inflight = sum(v for (n, l), v in m.items() if n == "grantd_refresh_inflight")
            pending = m.get(("grantd_store_pending_ops", ""), 0.0)
            ok = m.get(("grantd_refreshes_total", 'outcome="ok"'), 0.0)
            g.proc.send_signal(signal.SIGKILL)
            g.proc.wait()
            g.client.close()
            kills.append({"inflight": int(inflight), "pending_commits": int(pending),
                          "refreshed_ok_in_process": int(ok)})
            g.start()
            so = service_open(g)
            T.ok("%s: restart %d: all %d connections loaded, no decode errors" % (label, cyc + 1, N),
                 so is not None and so.get("connections") == N and so.get("decode_errors") == 0,
                 "connections %d, decode_errors 0" % N, so)
        t_last = now_ms()
        print("%s: kills (sampled just before each SIGKILL): %s" % (label, kills), flush=True)

        # After the last restart: every connection either refreshed since
        # then, or (no-grace only) given up.
        deadline = time.monotonic() + WAIT
        recs = []
        while time.monotonic() < deadline:
            recs = list_all(g)
            fresh = [c for c in recs if c["status"] == "active" and c["refreshed_at"]
                     and parse_time(c["refreshed_at"]) > t_last]
            final_bad = [c for c in recs if c["status"] in ("needs_reauth", "error", "revoked")]
            if len(fresh) + (0 if grace else len(final_bad)) == N:
                break
            time.sleep(1)
        statuses = {}
        for c in recs:
            statuses[c["status"]] = statuses.get(c["status"], 0) + 1
        fresh = [c for c in recs if c["status"] == "active" and c["refreshed_at"]
                 and parse_time(c["refreshed_at"]) > t_last]
        affected = [c for c in recs if c["status"] != "active"]
        ctr = mock.counters()
        print("%s: N %d, statuses %s, refreshed since the last restart %d; mock: refreshes %d, "
              "rotations %d, grace reuses %d, replays %d, families revoked %d"
              % (label, N, statuses, len(fresh), ctr["refreshes"], ctr["rotations"],
                 ctr["grace_reuses"], ctr["replays_detected"], ctr["families_revoked"]),
              flush=True)
        T.eq("%s: no connection record lost" % label, N, len(recs))
        if grace:
            T.ok("%s: every connection active and refreshed after the last restart" % label,
                 len(fresh) == N, "%d" % N, "%d fresh, statuses %s" % (len(fresh), statuses))
            T.eq("%s: no needs_reauth" % label, 0, statuses.get("needs_reauth", 0))
            T.eq("%s: no replay detected at the mock" % label, 0, ctr["replays_detected"])
            # Every token is live at the provider.
            rc = mock.new_client()
            bad = 0
            for c in recs:
                r = g.client.get("/v1/connections/%s/token?min_ttl=1" % c["id"])
                if r.status != 200:
                    bad += 1
                    continue
                j = r.json()
                if parse_time(j["expires_at"]) <= now_ms():
                    bad += 1
                    continue
                rr = rc.get("/resource", headers={"Authorization": "Bearer " + j["access_token"]})
                if rr.status != 200:
                    bad += 1
            rc.close()
            T.eq("%s: every token read (min_ttl=1) gives a token the provider accepts" % label, 0, bad)
        else:
            T.ok("%s: every connection settled (fresh or needs_reauth)" % label,
                 len(fresh) + statuses.get("needs_reauth", 0) == N, N,
                 "%d fresh, statuses %s" % (len(fresh), statuses))
            reauth = [c for c in recs if c["status"] == "needs_reauth"]
            others = [c for c in recs if c["status"] not in ("active", "needs_reauth")]
            T.eq("%s: no other failure status" % label, [], [(c["id"], c["status"]) for c in others])
            T.eq("%s: every needs_reauth is explained by a replay the mock detected" % label,
                 ctr["replays_detected"], len(reauth))
            bound = sum(MAX_PER_HOST + k["pending_commits"] for k in kills)
            T.ok("%s: affected connections within what can be in flight at the kills" % label,
                 len(affected) <= bound, "<= %d (%d kills x (%d per-host + pending commits))"
                 % (bound, len(kills), MAX_PER_HOST), len(affected))
            codes = {}
            for c in reauth:
                le = c["last_error"] or {}
                key = (le.get("code"), le.get("http_status"), le.get("message"))
                codes[key] = codes.get(key, 0) + 1
            print("%s: last_error of the affected: %s" % (label, codes), flush=True)
            generic = [c["id"] for c in reauth if (c["last_error"] or {}).get("code") == "invalid_grant"]
            T.ok("%s: affected connections carry their own reason, not the generic invalid_grant"
                 % label, not generic, "a crash/unknown-outcome reason (e.g. refresh_outcome_unknown)",
                 "%d of %d recorded as plain invalid_grant (%s)" % (len(generic), len(reauth), codes))
        return kills, len(affected)
    finally:
        if g is not None:
            st = g.stop()
            T.ok("%s: grantd exits 0 on SIGTERM" % label, st == 0, 0, st)
        mock.stop()


def main():
    print("seed %d, N %d, cycles %d" % (SEED, N, CYCLES), flush=True)
    rnd = random.Random(SEED)
    tmp = test_tmpdir("crash-")
    certs = make_certs(os.path.join(tmp, "pki"))
    try:
        for mode in ("grace", "no-grace"):
            run_mode(tmp, certs, mode, rnd)
    except Exception as e:  # noqa: BLE001 - a crash of the test is a failure
        import traceback
        traceback.print_exc()
        T.ok("test ran to completion", False, "no exception", "%s: %s" % (type(e).__name__, e))
    rc = T.finish()
    if rc == 0:
        cleanup_dir(tmp)
    return rc


if __name__ == "__main__":
    sys.exit(main())
