#!/bin/bash
# The man pages (packaging/man/) agree with the programs: they render without warnings
# (mandoc -Tlint, man --warnings); every command and option of `carotatectl --help` and
# of each `carotatectl COMMAND --help` is in carotatectl(1), a command's own options in
# its entry; every option of carotated's usage is in carotated(8); every key of
# daemon/config.c's schema is in carotated.conf(5) under its section, with its default
# and limits (mancheck.py does the reading); carotate-protocol(7) renders too, and the
# reference the README used to carry is in the page and section it moved to (facts
# below). carotate-agent(8) the same way: the commands and options of
# `carotate-agent --help` (and `COMMAND --help`), each key client/agent/conf.c accepts with
# its default and limits (and packaging/carotate-agent.conf holding the same keys and
# defaults), every exit code of agent.h in EXIT STATUS, FILES as the sources' defaults.
# Then the checker is shown to notice: copies of the pages with an option, a command, a
# key, a default, a limit, an exit code, a file or a moved fact taken out (or a stale one
# put in), and sources that grew one, must each be refused, naming what is wrong. No
# daemon needed.
# Reproduction, for the facts: the README held the agents' HTTP protocol, the audit
# hash, the attacker model and the systemd hardening, and no installed page did; taking
# them out of the README would have lost them without a test noticing.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the man pages against the programs' --help"

t_init

MAN_DIR=$REPO_ROOT/packaging/man
CTL_PAGE=$MAN_DIR/carotatectl.1
DAEMON_PAGE=$MAN_DIR/carotated.8
CONF_PAGE=$MAN_DIR/carotated.conf.5
PROTO_PAGE=$MAN_DIR/carotate-protocol.7
CONFIG_C=$REPO_ROOT/daemon/config.c
PACKAGED_CONF=$REPO_ROOT/packaging/carotated.conf
AGENT=$CAROTATE_BUILD/carotate-agent
AGENT_PAGE=$MAN_DIR/carotate-agent.8
AGENT_SRC=$REPO_ROOT/client/agent
AGENT_CONF_C=$AGENT_SRC/conf.c
AGENT_CONF=$REPO_ROOT/packaging/carotate-agent.conf
MANCHECK=$IT_DIR/mancheck.py

renderers=()
command -v mandoc >/dev/null && renderers+=(mandoc)
command -v man >/dev/null && command -v groff >/dev/null && renderers+=(man)
[ ${#renderers[@]} -gt 0 ] || t_skip "neither mandoc nor man is installed (make deps)"
if [ "${renderers[0]}" != mandoc ]; then
	t_log "mandoc is not installed: no mandoc -Tlint, pages read through man -l only"
fi

# ---- the pages render cleanly
for page in "$CTL_PAGE" "$DAEMON_PAGE" "$CONF_PAGE" "$PROTO_PAGE" "$AGENT_PAGE"; do
	name=$(basename "$page")
	if command -v mandoc >/dev/null; then
		assert_exit 0 "mandoc -Tlint -W warning: $name is clean" -- \
			mandoc -Tlint -W warning "$page"
		assert_eq "" "$OUT$ERR" "mandoc -Tlint prints nothing for $name"
	fi
	if command -v man >/dev/null && command -v groff >/dev/null; then
		run env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page"
		assert_eq 0 "$RC" "man -l renders $name"
		assert_eq "" "$ERR" "man --warnings -l: no warning for $name"
		assert_contains "SEE ALSO" "$OUT" "$name renders with its sections"
	fi
done

# ---- the pages agree with the programs, read through every renderer available
# mancheck MODE ARGS... RENDERER: runs the checker, output in $OUT, exit status in $RC.
mancheck() { run "$PY" "$MANCHECK" "$@"; }

for r in "${renderers[@]}"; do
	mancheck ctl "$CAROTATECTL" "$CTL_PAGE" "$r"
	[ "$RC" -eq 0 ] || fail "carotatectl(1) agrees with carotatectl --help ($r)" \
		"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
	ok "carotatectl(1) agrees with carotatectl --help and COMMAND --help ($r):" \
		"$(printf '%s\n' "$OUT" | grep -c '^ok:') facts"
	# Not vacuous: the checker found the commands and their options.
	for fact in "command rotate has an entry" "rotate: its option --force is in its entry" \
		"audit: its option --verify is in its entry" "wait: its option --max-wait is in its entry" \
		"global option --socket is in DESCRIPTION" "global option -V is in DESCRIPTION"; do
		assert_contains "ok: $fact" "$OUT" "checked ($r): $fact"
	done

	mancheck daemon "$CAROTATED" "$DAEMON_PAGE" "$r"
	[ "$RC" -eq 0 ] || fail "carotated(8) agrees with carotated's usage ($r)" \
		"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
	for o in -c -d -f -V --version --check-config; do
		assert_contains "ok: carotated option $o is in DESCRIPTION" "$OUT" \
			"carotated(8) describes $o ($r)"
	done

	mancheck conf "$CONFIG_C" "$PACKAGED_CONF" "$CONF_PAGE" "$r"
	[ "$RC" -eq 0 ] || fail "carotated.conf(5) agrees with config.c ($r)" \
		"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
	keys=$(printf '%s\n' "$OUT" | grep -c '^ok: \[[a-z]*\] [a-z_]* has an entry$' || true)
	schema=$(grep -cE '^\s*\{ "[a-z]+", "[a-z_]+", config_set_' "$CONFIG_C")
	assert_eq "$schema" "$keys" "carotated.conf(5) has an entry for each of config.c's $schema keys ($r)"
	for fact in "[daemon] max_output: its limit 4194308 is given" \
		"[proxy] reload: its default /usr/bin/systemctl reload nginx is given" \
		"[agents] active_within: its limit 3650d is given"; do
		assert_contains "ok: $fact" "$OUT" "checked ($r): $fact"
	done

	# carotate-agent(8): each mancheck mode, then facts they must have found.
	facts=
	for m in "agent $AGENT $AGENT_PAGE" "agentconf $AGENT_CONF_C $AGENT_CONF $AGENT_PAGE" \
		"agentfiles $AGENT_SRC $AGENT_PAGE"; do
		# shellcheck disable=SC2086 # the mode and its arguments, none with blanks
		mancheck $m "$r"
		[ "$RC" -eq 0 ] || fail "carotate-agent(8) agrees with the sources (${m%% *}, $r)" \
			"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
		ok "carotate-agent(8) agrees with the sources (${m%% *}, $r):" \
			"$(printf '%s\n' "$OUT" | grep -c '^ok:') facts"
		facts+=$OUT$'\n'
	done
	for fact in "command link has an entry in COMMANDS" "command check-in has an entry in COMMANDS" \
		"link: its option --ca-pin is in its entry" "status: its option --json is in its entry" \
		"global option --config is in DESCRIPTION" "option --linking-key-file is in the page" \
		"[agent] state_dir: its default /var/lib/carotate-agent is given" \
		"[agent] timeout: its limit 24h is given" "[agent] hook has an entry" \
		"[agent] hook_timeout is in $AGENT_CONF with conf.c's default" \
		"exit code 4 (AGENT_EREFUSED) has an entry in EXIT STATUS" \
		"exit code 6 (AGENT_EINTERNAL) has an entry in EXIT STATUS" \
		"FILES lists /var/lib/carotate-agent/token" \
		"FILES lists /etc/carotate-agent/ca-bundle.pem.prev"; do
		assert_contains "ok: $fact" "$facts" "checked ($r): $fact"
	done
	keys=$(printf '%s\n' "$facts" | grep -c '^ok: \[agent\] [a-z_]* has an entry$' || true)
	accepted=$(grep -oE 'strcmp\(key, "[a-z_]+"\) == 0' "$AGENT_CONF_C" | sort -u | wc -l)
	assert_eq "$accepted" "$keys" \
		"carotate-agent(8) has an entry for each of conf.c's $accepted keys ($r)"
	codes=$(sed -n '/^enum agent_exit {/,/^};/p' "$AGENT_SRC/agent.h" | grep -c '= [0-9]*,')
	assert_eq "$codes" "$(printf '%s\n' "$facts" | grep -c '^ok: exit code ')" \
		"carotate-agent(8) has an entry for each of agent.h's $codes exit codes ($r)"
done

# ---- the reference moved out of the README: each page holds its facts, by section
# (SECTION|phrase, compared without white space, hyphens or quotes)
cat >"$T/facts.carotate-protocol.7" <<'EOF'
CONTROL PROTOCOL|a 4-byte big-endian length, then a Request
CONTROL PROTOCOL|Requests are at most 256 KiB and replies at most 4 MiB
CONTROL PROTOCOL|FAILED_PRECONDITION, ALREADY_EXISTS
CONTROL PROTOCOL|one of the last admin_reserved
CONTROL PROTOCOL|top min(32, limit/4) descriptors
AGENT PROTOCOL|POST /carotate/v1/link
AGENT PROTOCOL|GET /carotate/v1/ca-bundle
AGENT PROTOCOL|A link for an id that exists is refused with 409 and changes nothing
AGENT PROTOCOL|answers a link beyond it 429 with "Retry-After"
AGENT PROTOCOL|X-Carotate-Canary: url
AGENT PROTOCOL|over the DER of the bundle's certificates, sorted and concatenated
AGENT PROTOCOL|answered 505 and the connection closed
AGENT PROTOCOL|forged by an agent that was never sent the bundle does not count
EOF
cat >"$T/facts.carotated.8" <<'EOF'
START-UP|group:carotate-admin:rw-
SIGNALS|Package upgrades never restart nor stop the daemon
STAGING AND THE TRUST BUNDLE|random 128-bit serials
STAGING AND THE TRUST BUNDLE|A failed reload does not undo the staging
ROTATION|What is counted is what goes live
ROTATION|O_NOFOLLOW
ROTATION|exits 0 even when nginx refused the new files
BACKUPS|op=rotate|restore|renew|pool|rollback
BACKUPS|nor a backup made by hand or one whose manifest cannot be read
LEDGER|synchronous=FULL
PRIVILEGES AND ROLES|00000000000001e0
PRIVILEGES AND ROLES|the certificate job was killed by its syscall filter (signal 31)
AUDIT LOG|the 17 bytes "carotate-audit-v1" and a NUL byte
AUDIT LOG|as 8-byte big-endian integers
AUDIT LOG|triggers refuse "UPDATE" and "DELETE"
SYSTEMD|rates the unit 1.4
SYSTEMD|Before=nginx.service
SYSTEMD|RestrictAddressFamilies=AF_INET AF_INET6
PACKAGES|Purge never deletes the SSL directory or its backups
SECURITY CONSIDERATIONS|whoever holds an agent's token is that agent
SECURITY CONSIDERATIONS|Cannot mark an agent verified through the agent socket
EXAMPLES|build/carotated -f -c "$t/carotated.conf" &
EOF
cat >"$T/facts.carotatectl.1" <<'EOF'
COMMANDS|PEM only (no DER, NUL bytes or trailing garbage)
COMMANDS|a failed reload does not undo the staging
COMMANDS|never confirmed
JSON OUTPUT|never_confirmed
JSON OUTPUT|server_subject
SEE ALSO|carotate-protocol(7)
EOF
for r in "${renderers[@]}"; do
	for page in "$PROTO_PAGE" "$DAEMON_PAGE" "$CTL_PAGE"; do
		name=$(basename "$page")
		mancheck facts "$page" "$T/facts.$name" "$r"
		[ "$RC" -eq 0 ] || fail "$name holds the reference moved to it ($r)" \
			"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
		ok "$name holds the reference moved to it ($r):" "$(printf '%s\n' "$OUT" | grep -c '^ok:') facts"
	done
done

# ---- self-check: the checker notices what is missing or stale
r=${renderers[0]}
mkdir "$T/pages"

# broken NAME SED_SCRIPT PAGE: a copy of PAGE edited by SED_SCRIPT, as $T/pages/NAME.
broken() {
	local copy="$T/pages/$1"
	sed -e "$2" "$3" >"$copy"
	if cmp -s "$copy" "$3"; then
		fail "self-check $1: the edit '$2' changed nothing in $(basename "$3")"
	fi
	printf '%s\n' "$copy"
}

# refused WHAT EXPECTED_LINE MODE ARGS...: the checker exits 1 and prints EXPECTED_LINE.
refused() {
	local what=$1 want=$2
	shift 2
	mancheck "$@"
	if [ "$RC" -ne 1 ]; then
		fail "self-check: $what is noticed" "expected exit 1, got $RC" \
			"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
	fi
	assert_contains "$want" "$OUT" "self-check: $what is noticed"
}

page=$(broken no-verify '/-verify/d' "$CTL_PAGE")
refused "carotatectl.1 without audit --verify" \
	"missing: audit: option --verify (in \`carotatectl audit --help\`) is not in the page" \
	ctl "$CAROTATECTL" "$page" "$r"

# --limit stays in the entries of report and backups: only audit's entry lacks it.
page=$(broken audit-no-limit '/^\.Cm audit$/,/^\.Sh /{/Fl -limit/d;}' "$CTL_PAGE")
refused "carotatectl.1 with --limit taken out of audit's entry only" \
	"missing: audit: option --limit (in \`carotatectl audit --help\`) is not in the entry of audit" \
	ctl "$CAROTATECTL" "$page" "$r"
assert_eq "1" "$(printf '%s\n' "$OUT" | grep -c '^missing:')" \
	"self-check: that is the only problem reported (report and backups keep --limit)"

page=$(broken no-include '/^\.It Cm include Ar agent$/d' "$CTL_PAGE")
refused "carotatectl.1 without the include command" \
	"missing: command include (in \`carotatectl --help\`) has no entry in COMMANDS" \
	ctl "$CAROTATECTL" "$page" "$r"

page=$(broken no-socket '/^\.It Fl s Ar path , Fl -socket Ar path$/d' "$CTL_PAGE")
refused "carotatectl.1 without the global -s, --socket" \
	"missing: global option --socket (in \`carotatectl --help\`) is not in DESCRIPTION" \
	ctl "$CAROTATECTL" "$page" "$r"

page=$(broken stale-option '/^Pending agents to skip/a\
.It Fl -sort Ar key\
Sort the pending agents.' "$CTL_PAGE")
refused "carotatectl.1 describing a report option that does not exist" \
	"stale: report: the entry of report names --sort" ctl "$CAROTATECTL" "$page" "$r"

page=$(broken stale-command 's/^\.It Cm discard$/.It Cm obliterate/' "$CTL_PAGE")
refused "carotatectl.1 with an entry for a command that does not exist" \
	"stale: COMMANDS has an entry 'obliterate'" ctl "$CAROTATECTL" "$page" "$r"

page=$(broken no-check-config '/check-config/d' "$DAEMON_PAGE")
refused "carotated.8 without --check-config" \
	"missing: carotated option --check-config (in its usage) is not in DESCRIPTION" \
	daemon "$CAROTATED" "$page" "$r"

page=$(broken no-foreground '/^\.It Fl f$/,/^\.It Fl V/{/^\.It Fl V/!d;}' "$DAEMON_PAGE")
refused "carotated.8 without -f" \
	"missing: carotated option -f (in its usage) is not in DESCRIPTION" \
	daemon "$CAROTATED" "$page" "$r"

page=$(broken no-idle-timeout '/^\.It Ic idle_timeout /d' "$CONF_PAGE")
refused "carotated.conf.5 without idle_timeout" \
	"missing: [daemon] idle_timeout has no entry under [daemon]" \
	conf "$CONFIG_C" "$PACKAGED_CONF" "$page" "$r"

page=$(broken wrong-default '/^\.It Ic request_timeout /,/^\.It /s/^The default is 10s\.$/The default is 20s./' \
	"$CONF_PAGE")
refused "carotated.conf.5 with a wrong default for request_timeout" \
	'missing: [daemon] request_timeout: its entry does not say "The default is 10s"' \
	conf "$CONFIG_C" "$PACKAGED_CONF" "$page" "$r"

page=$(broken wrong-limit '/^\.It Ic request_timeout /,/^\.It /s/^1h, /2h, /' "$CONF_PAGE")
refused "carotated.conf.5 with a wrong limit for request_timeout" \
	"missing: [daemon] request_timeout: the limit 1h (config.c) is not in its entry" \
	conf "$CONFIG_C" "$PACKAGED_CONF" "$page" "$r"

page=$(broken key-elsewhere '/^\.It Ic retention /d' "$CONF_PAGE")
sed -i 's/^\.It Ic keep No = Ar count$/.It Ic retention No = Ar duration\
The default is 30d, 1s to 3650d.\
&/' "$page"
refused "carotated.conf.5 with retention under [backups] instead of [bundle]" \
	"missing: [bundle] retention has no entry under [bundle]" \
	conf "$CONFIG_C" "$PACKAGED_CONF" "$page" "$r"
assert_contains "stale: [backups] retention has an entry but is not a key" "$OUT" \
	"self-check: the misplaced key is reported under the section it is in"

page=$(broken no-409 '/refused with 409/d' "$PROTO_PAGE")
refused "carotate-protocol.7 without the 409 of a link for an existing id" \
	"missing: $(basename "$page") AGENT PROTOCOL does not say \"A link for an id that exists is refused with 409 and changes nothing\"" \
	facts "$page" "$T/facts.carotate-protocol.7" "$r"

# shellcheck disable=SC2016 # a sed address, not a shell expression
page=$(broken no-security '/^\.Sh SECURITY CONSIDERATIONS$/,$d' "$DAEMON_PAGE")
refused "carotated.8 without its attacker model" \
	"missing: $(basename "$page") has no section SECURITY CONSIDERATIONS" \
	facts "$page" "$T/facts.carotated.8" "$r"

# A program that grew an option or a command the page does not know: carotatectl whose
# report --help lists --frobnicate and whose --help lists a command "frob".
cat >"$T/pages/carotatectl" <<EOF
#!/bin/sh
"$CAROTATECTL" "\$@" | sed -e '/^  --offset N/a\\
  --frobnicate N            frobnicate the report' -e '/^  audit  /a\\
  frob         frobnicate'
EOF
chmod +x "$T/pages/carotatectl"
refused "a report option missing from carotatectl.1" \
	"missing: report: option --frobnicate (in \`carotatectl report --help\`) is not in the page" \
	ctl "$T/pages/carotatectl" "$CTL_PAGE" "$r"
assert_contains "missing: command frob (in \`carotatectl --help\`) has no entry in COMMANDS" \
	"$OUT" "self-check: a command missing from carotatectl.1 is noticed"

# The packaged configuration and config.c must list the same keys.
grep -v '^idle_timeout' "$PACKAGED_CONF" >"$T/pages/carotated.conf"
refused "a packaged configuration without idle_timeout" \
	"missing: [daemon] idle_timeout is not in $T/pages/carotated.conf" \
	conf "$CONFIG_C" "$T/pages/carotated.conf" "$CONF_PAGE" "$r"

# ---- self-check for carotate-agent(8): the page, the packaged configuration, the sources
page=$(broken agent-no-ca-pin '/^\.It Cm link$/,/^\.It Cm check-in$/{/ca-pin/d;}' "$AGENT_PAGE")
refused "carotate-agent.8 with --ca-pin taken out of link's entry only" \
	"missing: link: option --ca-pin (in \`carotate-agent --help\`) is not in the entry of link" \
	agent "$AGENT" "$page" "$r"
assert_eq "1" "$(printf '%s\n' "$OUT" | grep -c '^missing:')" \
	"self-check: that is the only problem reported (SYNOPSIS and ca_file keep --ca-pin)"

page=$(broken agent-no-config 's/^\.It Fl c Ar file , Fl -config Ar file$/.It Fl c Ar file/' \
	"$AGENT_PAGE")
refused "carotate-agent.8 without --config" \
	"missing: global option --config (in \`carotate-agent --help\`) is not in DESCRIPTION" \
	agent "$AGENT" "$page" "$r"

page=$(broken agent-no-status '/^\.It Cm status Op Fl -json$/d' "$AGENT_PAGE")
refused "carotate-agent.8 without the status command" \
	"missing: command status (in \`carotate-agent --help\`) has no entry in COMMANDS" \
	agent "$AGENT" "$page" "$r"

page=$(broken agent-stale-option '/^Linking again when linked renews the token\.$/a\
.Fl -retries Ar n\
retries.' "$AGENT_PAGE")
refused "carotate-agent.8 describing a link option that does not exist" \
	"stale: link: the entry of link names --retries, which link does not take" \
	agent "$AGENT" "$page" "$r"
assert_contains "stale: the page names --retries, which \`carotate-agent --help\` does not" \
	"$OUT" "self-check: the stale option is reported for the whole page too"

page=$(broken agent-stale-command 's/^\.It Cm check-in$/.It Cm unlink/' "$AGENT_PAGE")
refused "carotate-agent.8 with an entry for a command that does not exist" \
	"stale: COMMANDS has an entry 'unlink' that \`carotate-agent --help\` does not list" \
	agent "$AGENT" "$page" "$r"

# A program that grew an option and a command: status --retries N, and "unlink".
cat >"$T/pages/carotate-agent" <<EOF
#!/bin/sh
"$AGENT" "\$@" | sed -e 's/status \[--json\]\$/status [--json] [--retries N]/' \\
	-e '/ check-in\$/a\\
       carotate-agent [-c FILE] unlink'
EOF
chmod +x "$T/pages/carotate-agent"
run "$PY" "$MANCHECK" agenthelp "$T/pages/carotate-agent"
assert_contains "verb unlink --help" "$OUT" "self-check: the grown program's help lists unlink"
refused "a status option missing from carotate-agent.8" \
	"missing: status: option --retries (in \`carotate-agent --help\`) is not in the entry of status" \
	agent "$T/pages/carotate-agent" "$AGENT_PAGE" "$r"
assert_contains "missing: command unlink (in \`carotate-agent --help\`) has no entry in COMMANDS" \
	"$OUT" "self-check: a command missing from carotate-agent.8 is noticed"

page=$(broken agent-no-timeout '/^\.It Cm timeout$/d' "$AGENT_PAGE")
refused "carotate-agent.8 without the timeout key" \
	"missing: [agent] timeout has no entry in CONFIGURATION" \
	agentconf "$AGENT_CONF_C" "$AGENT_CONF" "$page" "$r"

page=$(broken agent-wrong-default \
	'/^\.It Cm hook_timeout$/,/^\.It /s/^The default is 30s,/The default is 60s,/' "$AGENT_PAGE")
refused "carotate-agent.8 with a wrong default for hook_timeout" \
	'missing: [agent] hook_timeout: its entry does not say "The default is 30s"' \
	agentconf "$AGENT_CONF_C" "$AGENT_CONF" "$page" "$r"

page=$(broken agent-wrong-limit '/^\.It Cm timeout$/,/^\.It /s/ to 24h\./ to 12h./' "$AGENT_PAGE")
refused "carotate-agent.8 with a wrong limit for timeout" \
	"missing: [agent] timeout: the limit 24h (conf.c) is not in its entry" \
	agentconf "$AGENT_CONF_C" "$AGENT_CONF" "$page" "$r"

page=$(broken agent-stale-key 's/^\.It Cm canary_url$/.It Cm canary/' "$AGENT_PAGE")
refused "carotate-agent.8 with an entry for a key conf.c does not take" \
	"stale: CONFIGURATION has an entry 'canary', which is not a key of $AGENT_CONF_C" \
	agentconf "$AGENT_CONF_C" "$AGENT_CONF" "$page" "$r"

grep -v '^hook_timeout' "$AGENT_CONF" >"$T/pages/agent.conf"
refused "a packaged agent.conf without hook_timeout" \
	"missing: [agent] hook_timeout is not in $T/pages/agent.conf" \
	agentconf "$AGENT_CONF_C" "$T/pages/agent.conf" "$AGENT_PAGE" "$r"

sed 's|^state_dir = .*|state_dir = /var/lib/elsewhere|' "$AGENT_CONF" >"$T/pages/agent.conf"
refused "a packaged agent.conf whose state_dir is not conf.c's default" \
	"missing: [agent] state_dir: $T/pages/agent.conf gives '/var/lib/elsewhere', conf.c's default is '/var/lib/carotate-agent'" \
	agentconf "$AGENT_CONF_C" "$T/pages/agent.conf" "$AGENT_PAGE" "$r"

# Sources that grew a key or changed a default and a limit.
mkdir "$T/src"
cp "$AGENT_SRC/agent.h" "$AGENT_SRC/conf.c" "$AGENT_SRC/state.c" "$AGENT_SRC/fsio.c" "$T/src/"
sed -i -e 's/^\telse if (strcmp(key, "ca_file") == 0)$/\telse if (strcmp(key, "retries") == 0)\
\t\tc->retries = 1;\
&/' -e 's/c->timeout_ms = 30000;/c->timeout_ms = 45000;/' \
	-e 's/^#define CONF_MAX_MS .*/#define CONF_MAX_MS (48ULL * 3600 * 1000)/' "$T/src/conf.c"
[ "$(diff "$AGENT_CONF_C" "$T/src/conf.c" | grep -c '^>')" = 4 ] ||
	fail "self-check: the edits of conf.c did not all apply" "$(diff "$AGENT_CONF_C" "$T/src/conf.c")"
refused "a conf.c that grew the key retries" "missing: [agent] retries has no entry in CONFIGURATION" \
	agentconf "$T/src/conf.c" "$AGENT_CONF" "$AGENT_PAGE" "$r"
for want in "missing: [agent] retries is not in $AGENT_CONF" \
	'missing: [agent] timeout: its entry does not say "The default is 45s"' \
	"missing: [agent] timeout: $AGENT_CONF gives '30s', conf.c's default is '45s'" \
	"missing: [agent] hook_timeout: the limit 2d (conf.c) is not in its entry"; do
	assert_contains "$want" "$OUT" "self-check: a changed conf.c is noticed: $want"
done

page=$(broken agent-no-exit-3 '/^\.It 3$/,/^\.It 4$/{/^\.It 4$/!d;}' "$AGENT_PAGE")
refused "carotate-agent.8 without exit code 3" \
	"missing: exit code 3 (AGENT_ENOTLINKED in agent.h) has no entry in EXIT STATUS" \
	agentfiles "$AGENT_SRC" "$page" "$r"

page=$(broken agent-stale-exit '/^Internal: disk full/a\
.It 7\
Timed out.' "$AGENT_PAGE")
refused "carotate-agent.8 with an exit code agent.h does not define" \
	"stale: EXIT STATUS has an entry for 7, which enum agent_exit does not define" \
	agentfiles "$AGENT_SRC" "$page" "$r"

page=$(broken agent-no-token '/^\.It Pa \/var\/lib\/carotate-agent\/token$/d' "$AGENT_PAGE")
refused "carotate-agent.8 without the token in FILES" \
	"missing: FILES does not list /var/lib/carotate-agent/token (the sources' default)" \
	agentfiles "$AGENT_SRC" "$page" "$r"

page=$(broken agent-stale-file \
	's|^\.It Pa /etc/carotate-agent/ca-bundle\.pem\.prev$|.It Pa /etc/carotate-agent/ca-bundle.old|' \
	"$AGENT_PAGE")
refused "carotate-agent.8 with a file the sources do not keep" \
	"stale: FILES lists /etc/carotate-agent/ca-bundle.old, which is not a default of the sources" \
	agentfiles "$AGENT_SRC" "$page" "$r"
assert_contains "missing: FILES does not list /etc/carotate-agent/ca-bundle.pem.prev" "$OUT" \
	"self-check: the file it replaced is reported missing"

# Sources that grew an exit code, renamed a state file and moved the bundle.
sed -i 's/^\tAGENT_EINTERNAL = 6, .*/&\n\tAGENT_ETIMEDOUT = 7,/' "$T/src/agent.h"
sed -i 's|"%s/token", dir)|"%s/secret", dir)|' "$T/src/state.c"
sed -i 's|"/etc/carotate-agent/ca-bundle.pem"|"/etc/carotate-agent/trust.pem"|' "$T/src/conf.c"
refused "an agent.h that grew exit code 7" \
	"missing: exit code 7 (AGENT_ETIMEDOUT in agent.h) has no entry in EXIT STATUS" \
	agentfiles "$T/src" "$AGENT_PAGE" "$r"
for want in "missing: FILES does not list /var/lib/carotate-agent/secret" \
	"stale: FILES lists /var/lib/carotate-agent/token, which is not a default" \
	"missing: FILES does not list /etc/carotate-agent/trust.pem.prev" \
	"stale: FILES lists /etc/carotate-agent/ca-bundle.pem, which is not a default"; do
	assert_contains "$want" "$OUT" "self-check: changed sources are noticed: $want"
done

echo "man pages: all checks passed"

