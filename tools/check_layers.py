#!/usr/bin/env python3
"""Checks the include structure of src/ (run by CTest as `layers`).

Usage: check_layers.py SRC_DIR LAYER=DEP,DEP ...

1. Layers. Every file in src/<layer>/ may include headers of its own layer
   and of the layers it links (the LAYER=DEPS arguments, taken from the
   CMake layer table, followed transitively). An include of a layer above
   its own, or of a sibling it does not link, is an error.
2. Modules. Inside a layer, a module is a file's name up to its first '_'
   or '.' (store.c, store.h, store_int.h and store_write.c are module
   "store"). Includes between modules must not form a cycle: data and
   control flow downward, and a module never includes a header of one
   that includes it, directly or through others.
Exit status 0 when both hold; otherwise one line per problem and 1.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def closure(deps, layer, seen=None):
    seen = set() if seen is None else seen
    for d in deps.get(layer, ()):
        if d not in seen:
            seen.add(d)
            closure(deps, d, seen)
    return seen


def module_of(name):
    return re.split(r'[_.]', name, maxsplit=1)[0]


def find_cycle(graph):
    """One cycle of the graph as a list of nodes, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: check_layers.py SRC_DIR LAYER=DEP,DEP ...")
    src = argv[1]
    deps = {}
    for a in argv[2:]:
        layer, _, ds = a.partition("=")
        deps[layer] = [d for d in ds.split(",") if d]
    problems = []
    for layer in sorted(os.listdir(src)):
        ldir = os.path.join(src, layer)
        if not os.path.isdir(ldir):
            continue
        if layer not in deps:
            problems.append("%s/: not a layer of the build (add it to CMakeLists.txt)" % layer)
            continue
        allowed = closure(deps, layer) | {layer}
        graph = {}
        for f in sorted(os.listdir(ldir)):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(ldir, f)
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            me = module_of(f)
            graph.setdefault(me, set())
            for inc in INCLUDE.findall(text):
                if "/" not in inc:
                    problems.append("%s/%s: includes \"%s\" (spell it layer/file.h)" % (layer, f, inc))
                    continue
                il, ifile = inc.split("/", 1)
                if il not in allowed:
                    problems.append("%s/%s: includes %s, but %s links only %s" %
                                    (layer, f, inc, layer,
                                     ", ".join(sorted(allowed - {layer})) or "nothing"))
                elif il == layer and module_of(ifile) != me:
                    graph[me].add(module_of(ifile))
        cycle = find_cycle(graph)
        if cycle:
            problems.append("%s/: include cycle between modules: %s" % (layer, " -> ".join(cycle)))
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
