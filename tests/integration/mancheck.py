#!/usr/bin/python3
"""Do the man pages say what the programs do? Used by test_manpages.sh.

    mancheck.py ctl CAROTATECTL PAGE RENDERER
    mancheck.py daemon CAROTATED PAGE RENDERER
    mancheck.py conf CONFIG_C PACKAGED_CONF PAGE RENDERER
    mancheck.py facts PAGE FACTS RENDERER

RENDERER is "mandoc" (mandoc -Tascii) or "man" (man -l, groff). Each mode prints one
"ok:" line per fact checked and one "missing:" (or "stale:") line per disagreement, then
exits 1 if there was any, else 0.

ctl: every command listed by `carotatectl --help` has an entry in COMMANDS, and no entry
names a command that does not exist; every option of `carotatectl --help` is in the page's
DESCRIPTION; for each command, every option of `carotatectl COMMAND --help` is in the page,
its own options (its "options:" and usage lines) in its entry, and the entry names no
option the command does not take.
daemon: every option of `carotated --help` (usage on stderr) is in DESCRIPTION, and
DESCRIPTION names no other.
conf: every section and key of daemon/config.c's config_keys[] has an entry in the page
under its section's heading, with the default packaging/carotated.conf gives and with the
limits of the table; packaging/carotated.conf and the table hold the same keys.
facts: each line "SECTION|phrase" of the file FACTS (blank lines and lines starting with
# skipped) names a section the page must have and a phrase that section must hold,
compared without white space, hyphens or quotes: the reference the README used to carry,
kept where it moved.
"""
import os
import re
import shutil
import subprocess
import sys

WIDTH = "200"  # columns: few wrapped lines, so entries stay easy to find
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])(?![\w-])")
BUNDLED = re.compile(r"(?<![\w-])-([A-Za-z]{2,})(?![\w-])")

problems = 0


def ok(msg):
    print("ok: " + msg)


def bad(kind, msg):
    global problems
    problems += 1
    print("%s: %s" % (kind, msg))


def render(page, renderer):
    """The page as plain ASCII text, overstrikes removed."""
    if renderer == "mandoc":
        cmd = ["mandoc", "-Tascii", "-O", "width=" + WIDTH, page]
        env = dict(os.environ)
    else:
        cmd = ["man", "--nh", "--nj", "-l", page]
        env = dict(os.environ, LC_ALL="C", MANWIDTH=WIDTH, MANPAGER="cat", PAGER="cat")
        env.pop("MAN_KEEP_FORMATTING", None)
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE).stdout
    return re.sub(r".\x08", "", out.decode("ascii", "replace"))


def sections(text):
    """{SECTION NAME: [lines]} of a rendered page (headings start in column 0)."""
    secs, cur = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.upper() == line:
            cur = line.strip()
            secs[cur] = []
        elif cur is not None:
            secs[cur].append(line)
    return secs


def blocks(lines, indent, names):
    """Entries of a tag list: a line indented by exactly `indent` starts one, named by its
    first word if that is in names; an entry runs to the next such line or to a line
    indented less."""
    out, cur = {}, None
    for line in lines:
        if not line.strip():
            if cur is not None:
                out[cur].append(line)
            continue
        lead = len(line) - len(line.lstrip(" "))
        if lead == indent:
            word = line.split()[0]
            cur = word if word in names else None
            if cur is not None:
                out.setdefault(cur, [])
        elif lead < indent:
            cur = None
        if cur is not None:
            out[cur].append(line)
    return out


def options(text):
    """Option names in text; "-dfV" in a usage line counts as -d -f -V."""
    found = set(OPTION.findall(text))
    for line in text.splitlines():
        if line.lstrip().startswith("usage:") or line.lstrip().startswith("["):
            for group in BUNDLED.findall(line):
                found.update("-" + c for c in group)
    return found


def run_help(argv):
    """stdout and stderr of a --help, whatever its exit status."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.stdout.decode() + p.stderr.decode()


def help_sections(text):
    """{"usage": ..., "options:": ..., "common ...": ..., "commands:": ...} of a help text."""
    secs, cur = {"usage": []}, "usage"
    for line in text.splitlines():
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            cur = line.strip()
            secs[cur] = []
        elif not line.strip() and cur == "usage":
            cur = "prose"
            secs.setdefault(cur, [])
        else:
            secs.setdefault(cur, []).append(line)
    return {k: "\n".join(v) for k, v in secs.items()}


def check_ctl(ctl, page, renderer):
    main = run_help([ctl, "--help"])
    hs = help_sections(main)
    commands = re.findall(r"^  ([a-z][a-z-]*) +\S", hs.get("commands:", ""), re.M)
    if len(commands) < 5:
        bad("missing", "fewer than 5 commands found in `%s --help`: the extractor is broken" % ctl)
        return
    secs = sections(render(page, renderer))
    desc = "\n".join(secs.get("DESCRIPTION", []))
    cmd_lines = secs.get("COMMANDS", [])
    entries = blocks(cmd_lines, 5, set(commands))
    # An entry naming no command: one removed or renamed since the page was written.
    for word in re.findall(r"^ {5}([a-z][a-z-]*)(?: |$)", "\n".join(cmd_lines), re.M):
        if word not in commands:
            bad("stale", "COMMANDS has an entry %r that `carotatectl --help` does not list" % word)
    for c in commands:
        if c in entries:
            ok("command %s has an entry in COMMANDS" % c)
        else:
            bad("missing", "command %s (in `carotatectl --help`) has no entry in COMMANDS" % c)
    whole = options("\n".join(l for s in secs.values() for l in s))
    # The program's own options; the rest of --help (a command's summary) names others.
    globals_ = options(hs["usage"] + "\n" + hs.get("options:", ""))
    for o in sorted(globals_):
        if o in options(desc):
            ok("global option %s is in DESCRIPTION" % o)
        else:
            bad("missing", "global option %s (in `carotatectl --help`) is not in DESCRIPTION" % o)
    for o in sorted(options(main) - globals_ - whole):
        bad("missing", "option %s (in `carotatectl --help`) is not in the page" % o)
    for c in commands:
        text = run_help([ctl, c, "--help"])
        hs = help_sections(text)
        every = options(text)
        usage_args = hs["usage"].splitlines()[1:]  # the line after "usage: ... COMMAND"
        defs = [l for l in hs.get("options:", "").splitlines() if re.match(r"^  -", l)]
        own = options("\n".join(defs + usage_args))
        entry = options("\n".join(entries.get(c, [])))
        for o in sorted(every):
            if o in whole:
                ok("%s: option %s is in the page" % (c, o))
            else:
                bad("missing", "%s: option %s (in `carotatectl %s --help`) is not in the page" % (c, o, c))
        for o in sorted(own):
            if o in entry:
                ok("%s: its option %s is in its entry" % (c, o))
            else:
                bad("missing", "%s: option %s (in `carotatectl %s --help`) is not in the entry of %s" % (c, o, c, c))
        for o in sorted(entry - every):
            bad("stale", "%s: the entry of %s names %s, which `carotatectl %s --help` does not" % (c, c, o, c))


def check_daemon(daemon, page, renderer):
    usage = run_help([daemon, "--help"])
    opts = options(usage)
    if len(opts) < 3:
        bad("missing", "fewer than 3 options found in `%s --help`: the extractor is broken" % daemon)
        return
    desc = options("\n".join(sections(render(page, renderer)).get("DESCRIPTION", [])))
    for o in sorted(opts):
        if o in desc:
            ok("carotated option %s is in DESCRIPTION" % o)
        else:
            bad("missing", "carotated option %s (in its usage) is not in DESCRIPTION" % o)
    for o in sorted(desc - opts):
        bad("stale", "DESCRIPTION names %s, which the usage of carotated does not" % o)


def config_schema(config_c):
    """[(section, key, min, max)] of config_keys[], limits as written in the page (or None)."""
    src = open(config_c).read()
    macros = {}
    for name, expr in re.findall(r"^#define\s+(CONFIG_M(?:IN|AX)_OUTPUT)\s+(.+)$", src, re.M):
        macros[name] = str(eval(re.sub(r"\(uint64_t\)", "", expr), {}))
    units = {"SEC": "s", "MIN": "m", "HOUR": "h", "DAY": "d"}

    def limit(expr):
        expr = expr.strip()
        m = re.match(r"^(\d+)\s*\*\s*(SEC|MIN|HOUR|DAY)$", expr)
        if m:
            return m.group(1) + units[m.group(2)]
        if expr in macros:
            return macros[expr]
        if re.match(r"^\d+$", expr):
            return expr
        raise SystemExit("mancheck: cannot read the limit %r in %s" % (expr, config_c))

    table = src[src.index("config_keys[] = {"):]
    table = table[:table.index("};")]
    rows = re.findall(r'\{\s*"(\w+)",\s*"(\w+)",\s*\w+,\s*[^,]+,\s*([^,]+),\s*([^}]+?)\s*\}', table)
    out = []
    for sec, key, lo, hi in rows:
        lo, hi = limit(lo), limit(hi)
        out.append((sec, key, None if lo == hi == "0" else (lo, hi)))
    return out


def packaged(conf):
    """{(section, key): value} of the packaged configuration."""
    vals, sec = {}, None
    for line in open(conf):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            sec = m.group(1)
            continue
        key, _, value = line.partition("=")
        vals[(sec, key.strip())] = re.split(r"\s[#;]", value)[0].strip()
    return vals


def squeeze(s):
    """Without white space, hyphens or quotes: immune to where a line was broken or a word
    hyphenated, and to how quotes were rendered."""
    return re.sub(r"[\s\"'`-]", "", s)


def check_conf(config_c, conf, page, renderer):
    schema = config_schema(config_c)
    if len(schema) < 20:
        bad("missing", "fewer than 20 keys found in %s: the extractor is broken" % config_c)
        return
    defaults = packaged(conf)
    keys = {(s, k) for s, k, _ in schema}
    for sk in sorted(keys - set(defaults)):
        bad("missing", "[%s] %s is not in %s" % (sk[0], sk[1], conf))
    for sk in sorted(set(defaults) - keys):
        bad("stale", "[%s] %s of %s is not a key of %s" % (sk[0], sk[1], conf, config_c))
    secs = sections(render(page, renderer))
    lines = [l for s in ("DESCRIPTION",) for l in secs.get(s, [])]
    # Subsection headings ("   [daemon]") split DESCRIPTION; keys are tags at 5 columns.
    per_section, cur = {}, None
    for line in lines:
        m = re.match(r"^ {3}\[(\w+)\]\s*$", line)
        if m:
            cur = m.group(1)
            per_section[cur] = []
        elif re.match(r"^ {3}\S", line):
            cur = None
        elif cur is not None:
            per_section[cur].append(line)
    for sec in sorted({s for s, _, _ in schema}):
        if sec in per_section:
            ok("section [%s] has a heading" % sec)
        else:
            bad("missing", "section [%s] has no heading in the page" % sec)
    for sec, lines in sorted(per_section.items()):
        names = {k for s, k, _ in schema if s == sec}
        for word in re.findall(r"^ {5}([a-z_]+) = ", "\n".join(lines), re.M):
            if word not in names:
                bad("stale", "[%s] %s has an entry but is not a key of %s" % (sec, word, config_c))
    for sec, key, lim in schema:
        entries = blocks(per_section.get(sec, []), 5, {key})
        if key not in entries:
            bad("missing", "[%s] %s has no entry under [%s]" % (sec, key, sec))
            continue
        ok("[%s] %s has an entry" % (sec, key))
        text = " ".join(l.strip() for l in entries[key])
        value = defaults.get((sec, key), "")
        if value:
            said = re.escape(squeeze("The default is " + value)) + r"(?![\w/])"
            if re.search(said, squeeze(text)):
                ok("[%s] %s: its default %s is given" % (sec, key, value))
            else:
                bad("missing", "[%s] %s: its entry does not say \"The default is %s\"" % (sec, key, value))
        for v in lim or ():
            if re.search(r"(?<![\w.])%s(?![\w])" % re.escape(v), text):
                ok("[%s] %s: its limit %s is given" % (sec, key, v))
            else:
                bad("missing", "[%s] %s: the limit %s (config.c) is not in its entry" % (sec, key, v))


def check_facts(page, facts_file, renderer):
    secs = sections(render(page, renderer))
    name = os.path.basename(page)
    with open(facts_file, encoding="utf-8") as f:
        facts = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    for fact in facts:
        sec, _, phrase = fact.partition("|")
        if sec not in secs:
            bad("missing", "%s has no section %s (for \"%s\")" % (name, sec, phrase))
        elif squeeze(phrase) in squeeze(" ".join(secs[sec])):
            ok("%s %s says \"%s\"" % (name, sec, phrase))
        else:
            bad("missing", "%s %s does not say \"%s\"" % (name, sec, phrase))


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if (mode, len(argv)) not in (("ctl", 5), ("daemon", 5), ("conf", 6), ("facts", 5)):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[-1] not in ("mandoc", "man") or shutil.which(argv[-1]) is None:
        print("mancheck: no renderer %r" % argv[-1], file=sys.stderr)
        return 2
    if mode == "ctl":
        check_ctl(argv[2], argv[3], argv[4])
    elif mode == "daemon":
        check_daemon(argv[2], argv[3], argv[4])
    elif mode == "facts":
        check_facts(argv[2], argv[3], argv[4])
    else:
        check_conf(argv[2], argv[3], argv[4], argv[5])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
