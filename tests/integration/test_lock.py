#!/usr/bin/env python3
"""Integration test: one `grantd serve` per data directory.

A second serve on a directory in use exits 2 at once with one line naming
the holder's pid, and the first keeps serving; the lock dies with its
holder, so after a SIGTERM stop and after kill -9 a new serve starts on the
same directory with its data.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ApiChecks, ServeProc, cleanup_dir, rand_key,  # noqa: E402
                     rand_master_key, test_tmpdir)

T = ApiChecks()


def second_refused(label, tmp, data, holder, key, mk):
    other = ServeProc(tmp, data, api_key=key, master_key=mk)
    other.spawn()
    rc = other.wait_exit(60)
    T.eq(label + ": second serve exits 2", 2, rc)
    lines = [l for l in other.log().splitlines() if l.strip()]
    want = "grantd: data directory %s is in use by pid %d" % (data, holder.proc.pid)
    T.eq(label + ": one line naming the holder", [want], lines)
    r = holder.client.get("/healthz", auth=False)
    T.status(label + ": holder still serves", 200, r)


def main():
    tmp = test_tmpdir("lock-")
    data = os.path.join(tmp, "data")
    key = T.secret(rand_key())
    mk = T.secret(rand_master_key())
    at = T.secret(rand_key())
    rt = T.secret(rand_key())

    g = ServeProc(tmp, data, api_key=key, master_key=mk).start()
    r = g.client.put("/v1/providers/p", {"token_url": "https://127.0.0.1:9/token", "client_id": "c"})
    T.status("PUT provider", 200, r)
    r = g.client.put("/v1/connections/c1", {"tenant": "t", "provider": "p", "grant": "refresh_token",
                                            "access_token": at, "refresh_token": rt,
                                            "expires_in": 86400})
    T.status("PUT connection", 200, r)
    with open(os.path.join(data, "serve.lock")) as f:
        T.eq("lock file holds the holder's pid", str(g.proc.pid), f.read().strip())
    second_refused("running holder", tmp, data, g, key, mk)

    # kill -9: the kernel drops the lock; a new serve takes it and has the data.
    T.eq("kill -9 of the holder", -9, g.kill9())
    g2 = ServeProc(tmp, data, api_key=key, master_key=mk).start()
    r = g2.client.get("/v1/connections/c1/token")
    T.status("after kill -9: new holder serves the stored token", 200, r)
    T.eq("after kill -9: same token", at, (r.json() or {}).get("access_token"))
    with open(os.path.join(data, "serve.lock")) as f:
        T.eq("after kill -9: lock file holds the new pid", str(g2.proc.pid), f.read().strip())
    second_refused("holder after kill -9", tmp, data, g2, key, mk)

    # Orderly stop releases it too.
    T.eq("SIGTERM stop exits 0", 0, g2.stop())
    g3 = ServeProc(tmp, data, api_key=key, master_key=mk).start()
    T.status("after SIGTERM: a new serve starts", 200, g3.client.get("/healthz", auth=False))
    T.eq("last holder stops with 0", 0, g3.stop())

    code = T.finish()
    if code == 0:
        cleanup_dir(tmp)
    return code


if __name__ == "__main__":
    sys.exit(main())
