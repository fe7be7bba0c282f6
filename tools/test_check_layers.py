#!/usr/bin/env python3
"""Self-test of check_layers.py (CTest `layers_selftest`): a small tree that
follows the rules passes; an include of a layer not linked, an include of a
sibling layer, a bare include and a cycle between two modules of one layer
each fail with their own line."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "check_layers.py")
TABLE = ["base=", "model=base", "store=model", "net=base"]


def tree(root, files):
    for path, text in files.items():
        p = os.path.join(root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)


def run(files):
    with tempfile.TemporaryDirectory() as d:
        tree(d, files)
        r = subprocess.run([sys.executable, CHECK, d] + TABLE, capture_output=True, text=True)
        return r.returncode, r.stdout


GOOD = {
    "base/buf.h": "",
    "base/buf.c": '#include "base/buf.h"\n',
    "model/lists.h": '#include "base/buf.h"\n',
    "store/store.h": '#include "model/lists.h"\n',
    "store/store_int.h": '#include "store/store.h"\n',
    "store/store.c": '#include "store/store_int.h"\n#include "store/seal.h"\n',
    "store/seal.h": '#include "base/buf.h"\n',
    "net/tcp.c": '#include "base/buf.h"\n',
}

failures = 0


def expect(name, files, rc, needle):
    global failures
    got_rc, out = run(files)
    ok = got_rc == rc and (needle is None or needle in out)
    print("%s %s" % ("ok  " if ok else "FAIL", name))
    if not ok:
        print("  rc %d, output:\n%s" % (got_rc, out))
        failures += 1


expect("a tree that follows the rules passes", GOOD, 0, None)
expect("an include of a layer above fails",
       dict(GOOD, **{"model/lists.c": '#include "store/store.h"\n'}), 1,
       "model/lists.c: includes store/store.h, but model links only base")
expect("an include of a sibling not linked fails",
       dict(GOOD, **{"store/net_use.c": '#include "net/tcp.h"\n'}), 1,
       "store/net_use.c: includes net/tcp.h")
expect("a bare include fails",
       dict(GOOD, **{"base/x.c": '#include "buf.h"\n'}), 1, 'base/x.c: includes "buf.h"')
expect("an include cycle between two modules fails",
       dict(GOOD, **{"store/seal.c": '#include "store/store.h"\n',
                     "store/seal.h": '#include "store/store_int.h"\n'}), 1,
       "store/: include cycle between modules:")
expect("a directory that is no layer fails",
       dict(GOOD, **{"extra/a.c": ""}), 1, "extra/: not a layer")
sys.exit(1 if failures else 0)
