"""The daemon's module graph, read from its object files, against its layers.

Usage: layers.py BUILD_DIR [--extra FROM:TO]...

A module is one object file of daemon/ (and its directories) or common/. Module A depends on module B when A
refers to a symbol B defines (nm: A's undefined symbols, B's defined global ones): what
the linker sees, whatever the #include lines say. Each module has a layer; a module may
use its own layer or a lower one, never a higher one, and no group of modules may
depend on each other in a circle. Prints the layers and the number of edges, and exits
1 naming every upward edge and every circle. --extra adds an edge by hand, which the
test uses to show that the check notices one.
"""
import collections
import glob
import os
import subprocess
import sys

# Lowest first: a module's layer is its directory (daemon/README.md), the same directories whose
# include flags the Makefile gives. daemon/ itself holds the configuration (config.c, read by
# every layer) and main (carotated.c, above everything).
LAYERS = [
    ("common", ["common"]),
    ("config", ["daemon"]),
    ("pki", ["daemon/pki"]),
    ("worker", ["daemon/worker"]),
    ("sys", ["daemon/sys"]),
    ("store", ["daemon/store"]),
    ("engine", ["daemon/engine"]),
    ("rpc", ["daemon/rpc"]),
    ("main", ["daemon/carotated"]),
]


def layer_of(build, obj):
    """The index in LAYERS of an object file's layer, from its directory under build/."""
    rel = os.path.relpath(obj, build)[:-2]
    if rel == "daemon/carotated":
        return len(LAYERS) - 1
    for n, (_, dirs) in enumerate(LAYERS):
        if os.path.dirname(rel) in dirs:
            return n
    return None


def nm(args, paths):
    out = subprocess.run(["nm"] + args + paths, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def graph(build):
    defs, uses = {}, collections.defaultdict(list)
    objs = sorted(glob.glob(os.path.join(build, "daemon", "**", "*.o"), recursive=True))
    objs += sorted(glob.glob(os.path.join(build, "common", "*.o")))
    if not objs:
        return [], {}, {}
    mod = {obj: os.path.basename(obj)[:-2] for obj in objs}
    # One nm per question for every object: "FILE.o:VALUE TYPE NAME" or "FILE.o:   U NAME".
    for line in nm(["-A", "--defined-only", "-g"], objs):
        path, _, rest = line.partition(".o:")
        path += ".o"
        fields = rest.split()
        if len(fields) == 3:
            defs.setdefault(fields[2], mod[path])
    for line in nm(["-A", "-u"], objs):
        path, _, rest = line.partition(".o:")
        path += ".o"
        uses[mod[path]].append(rest.split()[-1])
    layers = {}
    for obj in objs:
        uses.setdefault(mod[obj], [])
        layers[mod[obj]] = layer_of(build, obj)
    edges = collections.defaultdict(dict)
    for m, syms in uses.items():
        for sym in syms:
            to = defs.get(sym)
            if to is not None and to != m:
                edges[m].setdefault(to, sym)
    return list(uses.keys()), edges, layers


def circles(mods, edges):
    """Strongly connected components of two or more modules (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def main():
    build = sys.argv[1]
    mods, edges, layer = graph(build)
    if not mods:
        print(f"no object files in {build}/daemon or {build}/common")
        return 1
    args = sys.argv[2:]
    while args:
        if args[0] != "--extra" or len(args) < 2:
            print("usage: layers.py BUILD_DIR [--extra FROM:TO]...")
            return 2
        frm, to = args[1].split(":")
        edges[frm][to] = "(added by hand)"
        args = args[2:]
    bad = 0
    for mod in sorted(mods):
        if layer[mod] is None:
            print(f"{mod}: in no layer (its directory is not in LAYERS in {__file__})")
            bad = 1
    for mod in sorted(edges):
        for to, sym in sorted(edges[mod].items()):
            if layer[mod] is not None and layer[to] is not None and layer[to] > layer[mod]:
                print(f"upward: {mod} ({LAYERS[layer[mod]][0]}) uses {to} "
                      f"({LAYERS[layer[to]][0]}): {sym}")
                bad = 1
    for comp in circles(mods, edges):
        print("circle: " + " -> ".join(comp))
        bad = 1
    count = sum(len(v) for v in edges.values())
    print(f"{len(mods)} modules, {count} edges, layers: "
          + " < ".join(f"{name} ({sum(1 for m in mods if LAYERS[layer[m] or 0][0] == name)})"
                       for name, _ in LAYERS))
    return bad


if __name__ == "__main__":
    sys.exit(main())
