"""Every function carries its file's prefix: a function of foo.c is foo or foo_*.
A module split over several files that share a private header is one module: its parts use
the module's prefix. The header is foo_int.h, or foo.h when only foo*.c files include it
(the ledger's SQLite engine: ledger_sqlite.c, ledger_sqlite_agents.c, ledger_sqlite_audit.c
share ledger_sqlite.h and use ledger_sqlite_*).

Usage: names.py REPO_ROOT [FILE.c]...

Reads the C files of daemon/ (and its subdirectories), common/ and client/ (not
client/agent/), or the files named, and prints each function definition, static or not,
whose name does not start with its file's name. Exits 1 when there is one. The names
are read from the source, not from the object files: the compiler inlines most static
functions, and a static named like another file's function misleads the reader all the
same (rpc_rotate.c once had swap_op_* next to swap.c's swap_*).
"""
import glob
import os
import re
import sys

# Names older than the rule, kept because every C programmer knows them: main, and the
# OpenBSD names of log.c and xmalloc.c (STYLE.md §8).
EXEMPT = {
    "*": {"main"},
    "log": {"fatal", "fatalx"},
    # ledger.h's opener of a pool member's ledger lives with the PostgreSQL engine, so that a
    # build without libpq (no ledger_pg.c) still links the front.
    "ledger_pg": {"ledger_open_pg"},
    "xmalloc": {"xmalloc", "xcalloc", "xreallocarray", "xstrdup", "xstrndup", "xmemdupz", "xasprintf",
                "xfreezero"},
}

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip(text):
    """The text without comments, string and character literals, and preprocessor lines,
    read left to right in one pass (so '"' and "/*" are literals, not openings)."""
    token = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)

    def blank(m):
        t = m.group()
        return " " if t[0] == "/" else t[0] * 2

    text = token.sub(blank, text)
    return re.sub(r"^[ \t]*#([^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)


def definitions(text):
    """Names of the functions defined in text: at brace depth 0, a declaration whose last
    parenthesised group is followed by '{' (so `static STACK_OF(X509) *f(...) {` and
    `static void __attribute__((noreturn)) f(...) {` both give f)."""
    out, depth, start = [], 0, 0
    for m in re.finditer(r"[{};]", text):
        c = m.group()
        if c == "{":
            if depth == 0:
                name = function_name(text[start:m.start()])
                if name:
                    out.append(name)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = m.end()
        elif depth == 0:
            start = m.end()
    return out


def function_name(decl):
    """The identifier before the last top-level (...) of decl, if decl is a function head."""
    groups, level, open_at = [], 0, None
    for i, c in enumerate(decl):
        if c == "(":
            if level == 0:
                open_at = i
            level += 1
        elif c == ")":
            level -= 1
            if level == 0:
                groups.append((open_at, i))
        elif c == "=" and level == 0:
            return None  # an initialiser: struct x y = { ... }
    if not groups or decl[groups[-1][1] + 1:].strip():
        return None
    head = decl[:groups[-1][0]].rstrip()
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)$", head)
    return m.group(1) if m else None


def files(root):
    out = glob.glob(os.path.join(root, "daemon", "**", "*.c"), recursive=True)
    out += glob.glob(os.path.join(root, "common", "*.c"))
    out += glob.glob(os.path.join(root, "client", "*.c"))
    return sorted(out)


def includers(root, header):
    """The C files and headers under root that #include "header"."""
    pat = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"' + re.escape(header) + '"', re.M)
    out = []
    for path in glob.glob(os.path.join(root, "**", "*.[ch]"), recursive=True):
        if os.path.relpath(path, root).split(os.sep)[0] == "build":
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            if pat.search(f.read()):
                out.append(os.path.basename(path))
    return out


def private(root, directory, base):
    """base_int.h is there, or base.h is there and only base*.c files include it."""
    if os.path.exists(os.path.join(directory, base + "_int.h")):
        return True
    if not os.path.exists(os.path.join(directory, base + ".h")):
        return False
    users = includers(root, base + ".h")
    return bool(users) and all(
        u.endswith(".c") and (u == base + ".c" or u.startswith(base + "_")) for u in users)


def split_module(root, path):
    """The module a file belongs to: the longest foo, foo_bar.c being foo_bar.c or a part of
    a split module foo (foo's private header beside it); the file's own name otherwise."""
    mod = os.path.basename(path)[:-2]
    parts = mod.split("_")
    for i in range(len(parts) - 1, 0, -1):
        base = "_".join(parts[:i])
        if private(root, os.path.dirname(path), base):
            return base
    return mod


def main():
    if len(sys.argv) < 2:
        print("usage: names.py REPO_ROOT [FILE.c]...")
        return 2
    root = sys.argv[1]
    paths = sys.argv[2:] or files(root)
    bad = count = 0
    for path in paths:
        mod = split_module(root, path)
        exempt = EXEMPT["*"] | EXEMPT.get(mod, set())
        with open(path, encoding="utf-8") as f:
            names = definitions(strip(f.read()))
        for name in names:
            count += 1
            if name == mod or name.startswith(mod + "_") or name in exempt:
                continue
            print(f"{os.path.relpath(path, sys.argv[1])}: {name} does not start with {mod}_")
            bad += 1
    print(f"{count} functions in {len(paths)} files, {bad} without their file's prefix")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
