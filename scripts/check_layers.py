#!/usr/bin/python3
"""check_layers.py - the folder dependency rules of STYLE.md, checked on src/.

Fails (exit 1) when two folders of src/ include each other's headers, when core/ includes
anything outside core/, or when a folder includes one of a higher layer. Prints what each
folder leans on with --list.
"""
import os
import re
import sys

# Lower number = lower layer (STYLE.md "Layers"); folders of one layer may lean on each other
# one way only.
LAYER = {"core": 0, "conf": 1, "rewrite": 2, "dir": 2, "dns": 2, "smtp": 3, "queue": 3, "dsn": 3,
         "sieve": 2, "spf": 2, "dkim": 2, "policy": 4, "scan": 4, "tlsrpt": 4, "jobs": 5, "deliver": 5, "cli": 6, "main": 6}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.M)


def leans(src):
    """leans - {folder: {folder it includes}} for every folder of src."""
    out = {}
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        deps = set()
        for name in os.listdir(path):
            if name.endswith((".c", ".h")):
                with open(os.path.join(path, name), encoding="utf-8", errors="replace") as f:
                    deps.update(INCLUDE.findall(f.read()))
        deps.discard(folder)
        out[folder] = deps
    return out


def problems(graph):
    found = []
    for a, deps in graph.items():
        if a not in LAYER:
            found.append("src/%s: a folder with no layer in check_layers.py" % a)
            continue
        for b in sorted(deps):
            if a in graph.get(b, ()) and a < b:
                found.append("src/%s and src/%s include each other" % (a, b))
            if b in LAYER and LAYER[b] > LAYER[a]:
                found.append("src/%s (layer %d) includes src/%s (layer %d, higher)" % (a, LAYER[a], b, LAYER[b]))
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    graph = leans(src)
    if "--list" in sys.argv:
        for a, deps in graph.items():
            print("%-8s -> %s" % (a, " ".join(sorted(deps)) or "-"))
    found = problems(graph)
    for p in found:
        print(p)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
