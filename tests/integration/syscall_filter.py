"""System calls traced by strace against a unit's SystemCallFilter=.

Usage: syscall_filter.py SETS FILTER STRACE [--ignore CALL,...] [--what TEXT]

SETS is `systemd-analyze syscall-filter` (the @set names and their calls), FILTER the
unit's SystemCallFilter= values, one a line (a leading ~ denies), STRACE strace -f output.
Exits 1 naming every traced call the filter does not let through (--ignore: calls the
test's own sandbox set-up makes, which systemd makes itself), or when nothing was traced.
Shared by test_systemd (the daemon's unit) and test_agent_unit (the agent's).
"""
import argparse
import re
import sys


def filter_sets(path):
    sets, cur = {}, None
    for line in open(path):
        if line.startswith("@"):
            cur = sets.setdefault(line.split()[0], [])
        elif cur is not None and line.strip() and not line.strip().startswith("#"):
            cur.append(line.strip())
    return sets


def expand(sets, item, seen=()):
    if not item.startswith("@"):
        return {item}
    if item not in sets or item in seen:
        sys.exit("unknown or recursive syscall set %s" % item)
    return set().union(*(expand(sets, i, seen + (item,)) for i in sets[item]))


def allowed_calls(sets, path):
    allow, deny = set(), set()
    for value in open(path).read().split("\n"):
        for word in value.lstrip("~").split():
            (deny if value.startswith("~") else allow).update(expand(sets, word))
    return allow - deny


def traced_calls(path):
    made = set()
    for line in open(path):
        m = re.match(r"\d+\s+([a-z0-9_]+)\(", line)
        if m:
            made.add(m.group(1))
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sets")
    ap.add_argument("filter")
    ap.add_argument("strace")
    ap.add_argument("--ignore", default="")
    ap.add_argument("--what", default="")
    a = ap.parse_args()
    allowed = allowed_calls(filter_sets(a.sets), a.filter)
    made = traced_calls(a.strace)
    if not made:
        sys.exit("no system call traced")
    bad = sorted(made - allowed - set(filter(None, a.ignore.split(","))))
    if bad:
        sys.exit("outside SystemCallFilter=: %s" % " ".join(bad))
    print("  ok: %d distinct system calls traced%s, all in the unit's filter"
          % (len(made), " (%s)" % a.what if a.what else ""))


if __name__ == "__main__":
    main()
