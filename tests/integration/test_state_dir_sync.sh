#!/bin/bash
# A state directory the daemon creates survives a power cut (issue 19 item 4).
# Reproduction, on the code before this test: the daemon's first start with state_dir missing
# made it with mkdir(2) and never fsynced its parent. The new directory's entry lived only in
# the parent's page cache: the ledger, the CA keys and a swap journal written and fsynced in
# it since could all vanish at the next power cut with the directory (ext4's single journal
# usually commits the entry along with the first fsync inside; XFS and others need not).
# Here: the daemon's first start under strace. After the mkdir that creates the state
# directory, its parent is opened and fsynced before anything is created in the directory.
# A state directory that exists already costs no fsync of its parent. Also: a state
# directory whose parent is missing still stops the start with the reason.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || t_skip "strace is not installed (make deps installs it)"
t_init
make_active_set
rmdir "$STATE_DIR"
STATE_DIR="$T/var/lib/carotate"
mkdir -p "$T/var/lib"
write_config

# traced_start TRACE: the daemon started under strace (main process only: the state directory
# is made before any fork), until status answers; then stopped.
traced_start() {
	local st=0 pid=""
	# LeakSanitizer cannot run under ptrace (the ASan pass checks leaks in the other tests).
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -qq -o "$1" -e trace=mkdir,mkdirat,open,openat,fsync,fdatasync \
		"$CAROTATED" -f -c "$CONF" >>"$DAEMON_LOG" 2>&1 </dev/null &
	TRACER=$!
	t_track_pid "$TRACER"
	wait_until 20000 socket_answers || fail "carotated started under strace" "$(tail -n 20 "$DAEMON_LOG")"
	pid=$(pgrep -P "$TRACER" -x carotated | head -n 1)
	[ -n "$pid" ] || fail "the daemon's pid under strace"
	stop_daemon TERM "$pid"
	wait "$TRACER" || st=$?
	[ "$st" -eq 0 ] || fail "carotated under strace exited 0 on TERM" "status $st; $(tail -n 5 "$DAEMON_LOG")"
}

# sync_of_parent TRACE: prints "ok" when, after the mkdir of $STATE_DIR, an open of its parent
# is fsynced before anything under $STATE_DIR is opened; else what happened.
sync_of_parent() {
	awk -v dir="$STATE_DIR" -v parent="$T/var/lib" '
	function arg(s) { sub(/^[^"]*"/, "", s); sub(/".*$/, "", s); return s }
	!made && /mkdir(at)?\(/ && arg($0) == dir && / = 0$/ { made = 1; next }
	!made { next }
	/open(at)?\(/ && arg($0) == parent && / = [0-9]+$/ { fd[$NF] = 1; next }
	/fsync\(/ { n = $0; sub(/^[^(]*\(/, "", n); sub(/\).*$/, "", n); if (n in fd) { print "ok"; exit } }
	/open(at)?\(/ && index(arg($0), dir "/") == 1 { print "opened " arg($0) " first"; exit }
	END { if (!made) print "no mkdir of " dir }' "$1"
}

# The first start makes the state directory, fsyncs its parent, then writes in it.
[ ! -e "$STATE_DIR" ] || fail "the state directory is missing before the first start"
traced_start "$T/trace1"
[ -d "$STATE_DIR" ] || fail "the first start made the state directory"
assert_eq "700" "$(stat -c %a "$STATE_DIR")" "the state directory is made 0700"
assert_eq "ok" "$(sync_of_parent "$T/trace1")" \
	"the parent of a new state directory is fsynced before anything is written in it"
ok "first start: $STATE_DIR made, $T/var/lib fsynced before the ledger"

# The second start finds it: no mkdir succeeds, nothing to sync.
traced_start "$T/trace2"
grep -q "mkdir(\"$STATE_DIR\".* = 0$" "$T/trace2" && fail "the second start made the state directory again"
ok "second start: the state directory is there"

# A state directory under a missing parent: the start stops with the reason.
rm -rf "${T:?}/var"
STATE_DIR="$T/var/lib/carotate"
: >"$DAEMON_LOG"
assert_exit 1 "the daemon refuses a state directory whose parent is missing" -- \
	timeout 20 "$CAROTATED" -f -c "$CONF"
assert_contains "cannot create state directory $STATE_DIR" "$ERR" "the reason is named"
