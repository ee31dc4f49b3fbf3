#!/usr/bin/python3
"""Do the man pages say what the programs do? Used by test_manpages.sh.

    mancheck.py ctl CAROTATECTL PAGE RENDERER
    mancheck.py daemon CAROTATED PAGE RENDERER
    mancheck.py conf CONFIG_C PACKAGED_CONF PAGE RENDERER
    mancheck.py agent AGENT PAGE RENDERER
    mancheck.py agentconf CONF_C PACKAGED_CONF PAGE RENDERER
    mancheck.py agentfiles AGENT_DIR PAGE RENDERER
    mancheck.py agenthelp AGENT
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
agent: every verb of the usage lines of `carotate-agent --help` has an entry in COMMANDS
naming the options of its usage line, and no entry there is for another verb or names an
option its verb does not take (--help only where `VERB --help` succeeds); the global
options of --help are in DESCRIPTION; every option of --help and of `VERB --help` is in
the page, and the page names no other.
agentconf: every key client/agent/conf.c accepts has an entry in CONFIGURATION, with the
default and the duration limits conf.c gives; packaging/carotate-agent.conf holds the same
keys in [agent], each with conf.c's default (empty where conf.c has none).
agentfiles: AGENT_DIR is client/agent. Every exit code of enum agent_exit (agent.h) has an
entry in EXIT STATUS and no other number has one; FILES lists the default configuration
(agent.h), the default bundle and its .prev (fsio.c), and the files state.c keeps in the
default state_dir (conf.c), and names no other file under those directories.
agenthelp: what agent mode reads from --help, one line each: "verb VERB OPTION...",
"global OPTION...", "file OPTION..." (options whose argument is a FILE), "value
OPTION..." (options whose argument is something else).
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


# ---- carotate-agent: its usage lines, client/agent/conf.c, agent.h, state.c and fsio.c

AGENT_ARG = re.compile(r"(--?[A-Za-z][\w-]*)[ =]([A-Za-z][\w:]*)")


def agent_help(agent):
    """What `carotate-agent --help` defines: {verb: options of its usage line (with --help
    when `VERB --help` succeeds)}, the global options, {option: its argument's name}, and
    every option any help text names."""
    text = run_help([agent, "--help"])
    hs = help_sections(text)
    usages = []
    for line in hs["usage"].splitlines():
        m = re.match(r"^(?:usage:)?\s*carotate-agent(?:\s+|$)(.*)$", line)
        if m:
            usages.append(m.group(1))
        elif usages and line.strip():
            usages[-1] += " " + line.strip()  # a usage line's continuation
    verbs, globals_, args = {}, set(), {}
    for u in usages:
        # The verb: the first bare word after the leading [options].
        m = re.match(r"^((?:\[[^\]]*\]\s*)*)([a-z][a-z-]*)(?=\s|$)(.*)$", u.strip())
        if m:
            globals_ |= options(m.group(1))
            verbs[m.group(2)] = options(m.group(3))
        else:
            globals_ |= options(u)
        args.update(AGENT_ARG.findall(u))
    for line in hs.get("options:", "").splitlines():
        spec = re.split(r"\s{2,}", line.strip())[0]  # "-c, --config FILE", not its text
        globals_ |= options(spec)
        for o in options(spec):
            m = re.search(r"\s([A-Za-z][\w:]*)$", spec)
            if m:
                args[o] = m.group(1)
    every = options(text)
    for v in verbs:
        p = subprocess.run([agent, v, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if p.returncode == 0:
            verbs[v].add("--help")
        every |= options(p.stdout.decode() + p.stderr.decode())
    return verbs, globals_, args, every


def print_agent_help(agent):
    verbs, globals_, args, _ = agent_help(agent)
    for v in sorted(verbs):
        print("verb %s %s" % (v, " ".join(sorted(verbs[v]))))
    print("global " + " ".join(sorted(globals_)))
    print("file " + " ".join(sorted(o for o, a in args.items() if a == "FILE")))
    print("value " + " ".join(sorted(o for o, a in args.items() if a != "FILE")))


def check_agent(agent, page, renderer):
    verbs, globals_, _, every = agent_help(agent)
    if len(verbs) < 3 or len(globals_) < 2:
        bad("missing", "fewer than 3 commands or 2 options found in `%s --help`: the "
            "extractor is broken" % agent)
        return
    secs = sections(render(page, renderer))
    desc = options("\n".join(secs.get("DESCRIPTION", [])))
    whole = options("\n".join(l for s in secs.values() for l in s))
    cmd_lines = secs.get("COMMANDS", [])
    entries = blocks(cmd_lines, 5, set(verbs))
    for word in re.findall(r"^ {5}([a-z][a-z-]*)(?: |$)", "\n".join(cmd_lines), re.M):
        if word not in verbs:
            bad("stale", "COMMANDS has an entry %r that `carotate-agent --help` does not "
                "list as a command" % word)
    for v in sorted(verbs):
        if v not in entries:
            bad("missing", "command %s (in `carotate-agent --help`) has no entry in COMMANDS" % v)
            continue
        ok("command %s has an entry in COMMANDS" % v)
        entry = options("\n".join(entries[v]))
        for o in sorted(verbs[v] - {"--help"}):
            if o in entry:
                ok("%s: its option %s is in its entry" % (v, o))
            else:
                bad("missing", "%s: option %s (in `carotate-agent --help`) is not in the entry of %s"
                    % (v, o, v))
        for o in sorted(entry - verbs[v]):
            bad("stale", "%s: the entry of %s names %s, which %s does not take" % (v, v, o, v))
    for o in sorted(globals_):
        if o in desc:
            ok("global option %s is in DESCRIPTION" % o)
        else:
            bad("missing", "global option %s (in `carotate-agent --help`) is not in DESCRIPTION" % o)
    for o in sorted(every):
        if o in whole:
            ok("option %s is in the page" % o)
        else:
            bad("missing", "option %s (in `carotate-agent --help`) is not in the page" % o)
    for o in sorted(whole - every):
        bad("stale", "the page names %s, which `carotate-agent --help` does not" % o)


def agent_ms(ms):
    """Milliseconds as agent.conf writes a duration: 30000 -> 30s, 86400000 -> 24h (as
    conf.c's messages say), 172800000 -> 2d."""
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000)):
        if ms % size == 0 and (unit != "d" or ms > 86400000):
            return "%d%s" % (ms // size, unit)
    return "%dms" % ms


def agent_conf_schema(conf_c):
    """([keys] of conf_set(), {key: default} of conf_load(), {key: (min, max)})."""
    src = open(conf_c).read()

    def body(name):
        m = re.search(r"^%s\(.*?^\}$" % name, src, re.M | re.S)
        if m is None:
            raise SystemExit("mancheck: no function %s() in %s" % (name, conf_c))
        return m.group(0)

    setter, loader = body("conf_set"), body("conf_load")
    keys = list(dict.fromkeys(re.findall(r'strcmp\(key, "(\w+)"\) == 0', setter)))
    defaults = dict(re.findall(r'c->(\w+) = xstrdup\("([^"]*)"\);', loader))
    for field, ms in re.findall(r"c->(\w+)_ms = (\d+);", loader):
        defaults[field] = agent_ms(int(ms))
    macros = {n: int(eval(re.sub(r"(\d+)U?L*L*\b", r"\1", e), {}))
              for n, e in re.findall(r"^#define\s+(CONF_\w+)\s+(.+)$", src, re.M)}
    limits = {}
    for cond, lo, hi in re.findall(
            r"if \(([^{]*)\) \{\s*if \(duration_parse_ms\(value, &ms, &\w+\) == -1 \|\| "
            r"ms < (\w+) \|\| ms > (\w+)\)", setter):
        lo, hi = (agent_ms(macros[x] if x in macros else int(x)) for x in (lo, hi))
        for k in re.findall(r'strcmp\(key, "(\w+)"\)', cond):
            limits[k] = (lo, hi)
    for k in list(defaults) + list(limits):
        if k not in keys:
            raise SystemExit("mancheck: %s: a default or limit for %r, which conf_set() does "
                             "not take: the extractor is broken" % (conf_c, k))
    return keys, defaults, limits


def check_agent_conf(conf_c, conf, page, renderer):
    keys, defaults, limits = agent_conf_schema(conf_c)
    if len(keys) < 5 or len(defaults) < 2 or not limits:
        bad("missing", "fewer than 5 keys, 2 defaults or no limits found in %s: the extractor "
            "is broken" % conf_c)
        return
    packaged_vals = packaged(conf)
    for (sec, key), value in sorted(packaged_vals.items()):
        if sec != "agent" or key not in keys:
            bad("stale", "[%s] %s of %s is not a key of %s" % (sec, key, conf, conf_c))
    for key in keys:
        if ("agent", key) not in packaged_vals:
            bad("missing", "[agent] %s is not in %s" % (key, conf))
        elif packaged_vals[("agent", key)] != defaults.get(key, ""):
            bad("missing", "[agent] %s: %s gives %r, conf.c's default is %r"
                % (key, conf, packaged_vals[("agent", key)], defaults.get(key, "")))
        else:
            ok("[agent] %s is in %s with conf.c's default" % (key, conf))
    lines = sections(render(page, renderer)).get("CONFIGURATION", [])
    for word in re.findall(r"^ {5}([a-z_]+)(?: |$)", "\n".join(lines), re.M):
        if word not in keys:
            bad("stale", "CONFIGURATION has an entry %r, which is not a key of %s" % (word, conf_c))
    entries = blocks(lines, 5, set(keys))
    for key in keys:
        if key not in entries:
            bad("missing", "[agent] %s has no entry in CONFIGURATION" % key)
            continue
        ok("[agent] %s has an entry" % key)
        text = " ".join(l.strip() for l in entries[key])
        if key in defaults:
            said = re.escape(squeeze("The default is " + defaults[key])) + r"(?![\w/])"
            if re.search(said, squeeze(text)):
                ok("[agent] %s: its default %s is given" % (key, defaults[key]))
            else:
                bad("missing", "[agent] %s: its entry does not say \"The default is %s\""
                    % (key, defaults[key]))
        for v in limits.get(key, ()):
            if re.search(r"(?<![\w.])%s(?![\w])" % re.escape(v), text):
                ok("[agent] %s: its limit %s is given" % (key, v))
            else:
                bad("missing", "[agent] %s: the limit %s (conf.c) is not in its entry" % (key, v))


def check_agent_files(agent_dir, page, renderer):
    src = {f: open(os.path.join(agent_dir, f)).read()
           for f in ("agent.h", "conf.c", "state.c", "fsio.c")}
    enum = re.search(r"enum agent_exit \{(.*?)\};", src["agent.h"], re.S)
    codes = re.findall(r"\b(AGENT_\w+)\s*=\s*(\d+)", enum.group(1) if enum else "")
    _, defaults, _ = agent_conf_schema(os.path.join(agent_dir, "conf.c"))
    conf = re.search(r'^#define\s+AGENT_DEFAULT_CONF\s+"([^"]+)"', src["agent.h"], re.M)
    kept = sorted(set(re.findall(r'xasprintf\(&path, "%s/(\w+)", dir\)', src["state.c"])))
    prev = re.search(r'xasprintf\(&\w+, "%s(\.\w+)", path\)', src["fsio.c"])
    if len(codes) < 5 or conf is None or len(kept) < 2 or prev is None or \
            "bundle" not in defaults or "state_dir" not in defaults:
        bad("missing", "fewer than 5 exit codes or no default paths found in %s: the extractor "
            "is broken" % agent_dir)
        return
    secs = sections(render(page, renderer))
    lines = secs.get("EXIT STATUS", [])
    names = {n for _, n in codes}
    entries = blocks(lines, 5, names)
    for word in re.findall(r"^ {5}(\d+)(?:\s|$)", "\n".join(lines), re.M):
        if word not in names:
            bad("stale", "EXIT STATUS has an entry for %s, which enum agent_exit does not define"
                % word)
    for name, n in codes:
        text = " ".join(l.strip() for l in entries.get(n, []))
        if re.match(r"^%s\s+\S" % n, text):
            ok("exit code %s (%s) has an entry in EXIT STATUS" % (n, name))
        else:
            bad("missing", "exit code %s (%s in agent.h) has no entry in EXIT STATUS" % (n, name))
    state_dir, bundle = defaults["state_dir"], defaults["bundle"]
    want = [conf.group(1), bundle, bundle + prev.group(1)] + \
        ["%s/%s" % (state_dir, f) for f in kept]
    listed = [re.sub(r"[.,;:]$", "", w) for w in
              re.findall(r"^ {5}(/\S+)", "\n".join(secs.get("FILES", [])), re.M)]
    for path in want:
        if path in listed:
            ok("FILES lists %s" % path)
        else:
            bad("missing", "FILES does not list %s (the sources' default)" % path)
    ours = {os.path.dirname(p) for p in want}
    for path in listed:
        if path.rstrip("/") not in want and path.rstrip("/") not in ours and \
                any(path.startswith(d + "/") for d in ours):
            bad("stale", "FILES lists %s, which is not a default of the sources" % path)


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


MODES = {"ctl": (5, check_ctl), "daemon": (5, check_daemon), "conf": (6, check_conf),
         "facts": (5, check_facts),
         "agent": (5, check_agent), "agentconf": (6, check_agent_conf),
         "agentfiles": (5, check_agent_files), "agenthelp": (3, print_agent_help)}


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode not in MODES or MODES[mode][0] != len(argv):
        print(__doc__, file=sys.stderr)
        return 2
    if mode != "agenthelp" and (argv[-1] not in ("mandoc", "man") or shutil.which(argv[-1]) is None):
        print("mancheck: no renderer %r" % argv[-1], file=sys.stderr)
        return 2
    MODES[mode][1](*argv[2:])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
