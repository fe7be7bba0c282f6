#!/usr/bin/env python3
"""Checks that src/ opens files only where the file rule allows it (run by
CTest as `file_reads`).

The rule (base/file.h): every file grantd is told to read - a provider's
ca_file, trust bundles, catalog files, key files, on start or on reload -
is read through file_read() / file_read_async(): regular files only, a
size limit, a clear error, and never on the event loop at run time. So a
direct open(), openat(), fopen(), freopen(), creat() or opendir() in src/
is an error unless its file and call are listed in ALLOWED below, with the
reason it is not such a read.

Usage: check_file_reads.py SRC_DIR     (exit 0, or one line per call and 1)
       check_file_reads.py --selftest  (the check finds a call it must)
"""
import os
import re
import sys
import tempfile

CALL = re.compile(r'(?<![A-Za-z0-9_.>])(open|openat|fopen|freopen|creat|opendir)\s*\(')
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*', re.S)
STRING = re.compile(r'"(?:\\.|[^"\\\n])*"')

# file (relative to src/) -> {call: reason}
ALLOWED = {
    "base/file.c": {"open": "the file rule itself (O_NONBLOCK, fstat regular, size limit)"},
    "app/lock.c": {"open": "the data directory's lock file: created, locked, never read"},
    "app/keys.c": {"open": "writes a generated key file (O_EXCL, 0600); reads use file_read"},
    "app/main.c": {"fopen": "writes the --port-file"},
    "app/catalog_dir.c": {"opendir": "lists --catalog-dir at start; each file via file_read"},
    "app/cmd_backup.c": {"open": "grantd backup (a CLI command, not the server) copies data.mdb"},
    "app/cmd_healthcheck.c": {"fopen": "grantd healthcheck (a CLI command) reads --port-file"},
}


def calls(text):
    text = STRING.sub('""', COMMENT.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text))
    for m in CALL.finditer(text):
        yield m.group(1), text.count("\n", 0, m.start()) + 1


def check(src):
    problems = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for call, line in calls(text):
                if call not in ALLOWED.get(rel, {}):
                    problems.append("%s:%d: %s() outside the file rule: read files with "
                                    "file_read()/file_read_async() (base/file.h), or list the "
                                    "call in tools/check_file_reads.py with why it is not a read"
                                    % (rel, line, call))
    return problems


def selftest():
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "app"))
        with open(os.path.join(d, "app", "x.c"), "w") as f:
            f.write('/* open(a) in a comment */\nstatic const char *s = "fopen(";\n'
                    'int f(void) { return open("k", 0) + seal_open(1) + x.open(2); }\n')
        with open(os.path.join(d, "app", "main.c"), "w") as f:
            f.write('void w(void) { fopen("p", "w"); }\nvoid r(void) { opendir("d"); }\n')
        got = check(d)
        want = ["app/main.c:2: opendir()", "app/x.c:3: open()"]
        got_short = [p.split(" outside")[0] for p in got]
        if got_short != want:
            print("selftest: expected %s, got %s" % (want, got_short))
            return 1
    print("selftest ok")
    return 0


def main(argv):
    if argv[1:] == ["--selftest"]:
        return selftest()
    if len(argv) != 2:
        print(__doc__)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
