#!/bin/bash
# timeout: 480 (about 40 crash points, each a restart; a call finished at start-up reloads and checks)
# rotate, restore and renew are crash-safe (issues 5 and 18): the daemon is killed (SIGKILL at
# an injected point, carotated-faults) at every step of the journaled swap and of what follows
# it (bundle, reload); renew also just before its swap, with renew/ written. After a restart,
# whatever the point:
#  - the active set is exactly the old one or exactly the new one, its key matches its
#    certificate (same public key), and `nginx -t` accepts the files;
#  - no temporary file or directory is left, no renew/, the journal is gone, every backup
#    directory holds a whole set that matches its manifest;
#  - rotate: the staged set is still staged exactly when the old set is active;
#  - renew: the CA is the same one and issued the active leaf; a crash after the swap is
#    finished at the restart: reload, TLS check, one renew record with verified=yes;
#  - the daemon answers and the bundle holds the active CA;
#  - every call (rotate, restore, renew) is credited to its caller in the audit log: no
#    `adopt` "changed outside carotated" record appears; when the new set is live, the one
#    record of the call is OK and verified, names the caller (the ctl user's uid, a pid that
#    is not 0), carries the reason given and the backup the swap made (which exists); when
#    the old set is live, no record of the call exists.
# Before renew had its crash walk, none of its crash points (renew-before-swap, swap-renew-N,
# and the reload that follows) was exercised: a renew/ left behind, a leaf without its key or
# an unaudited swap would have gone unseen.
# Issue 19: the pending note that lets the next start finish a call was written only after
# the swap's journal was gone. A kill -9 (or a power cut) between the two left the new set
# live with neither journal nor note: the restart audited an `adopt` "changed outside
# carotated" (uid 0, pid 0) and the caller, the reason and the backup id were lost. The
# points <op>-after-journal (right after the swap returns) and the last swap-<op>-N points
# hit that window; the journal now writes the note before its commit.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "about 50 restarts after SIGKILL (250 s under ASan); the same journal crash points run in-process under ASan in test_swap-faults, and a rotate finished by the next start in test_rotate_stop"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

FAULTY="$CAROTATE_BUILD/carotated-faults"
[ -x "$FAULTY" ] || t_skip "no $FAULTY (make $CAROTATE_BUILD/carotated-faults)"

t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
assert_exit 0 "generate" -- ctl generate
stop_daemon

set_sum() { cat "$1/ca.crt" "$1/server.crt" "$1/server.key" | sha256sum | cut -d' ' -f1; }
OLD=$(set_sum "$SSL_DIR")
NEW=$(set_sum "$SSL_DIR/new")
cp -a "$SSL_DIR" "$T/ssl.staged"
cp -a "$STATE_DIR" "$T/state.staged"

reset_to() {
	rm -rf "$SSL_DIR" "$STATE_DIR"
	cp -a "$T/ssl.$1" "$SSL_DIR"
	cp -a "$T/state.$1" "$STATE_DIR"
}

# check_invariants WHAT OLD_SUM NEW_SUM: after a crash and a restart.
check_invariants() {
	local what=$1 old=$2 new=$3 cur d
	cur=$(set_sum "$SSL_DIR")
	# renew's new set is not known in advance (a new key each time): any set, checked below.
	if [ "$cur" != "$old" ] && [ "$cur" != "$new" ] && [ "$new" != any ]; then
		fail "$what: the active set is exactly the old or the new one" "$(ls -la "$SSL_DIR")"
	fi
	[ "$(openssl x509 -in "$SSL_DIR/server.crt" -noout -pubkey | sha256sum)" = \
		"$(openssl pkey -in "$SSL_DIR/server.key" -pubout | sha256sum)" ] ||
		fail "$what: the active key matches the active certificate"
	"$NGINX" -q -t -p "$NGINX_DIR/" -c "$NGINX_CONF" 2>"$T/t.err" ||
		fail "$what: nginx -t accepts the files" "$(cat "$T/t.err")"
	[ ! -e "$SSL_DIR/renew" ] || fail "$what: no renew/ is left" "$(ls -la "$SSL_DIR/renew")"
	[ ! -e "$STATE_DIR/swap.journal" ] || fail "$what: the journal is gone" "$(cat "$STATE_DIR/swap.journal")"
	assert_eq "" "$(find "$SSL_DIR" "$STATE_DIR" -name '.*.tmp' -o -name '.staging-*' -o -name '.swap-*')" \
		"$what: no temporary files"
	for d in "$SSL_DIR"/certs-*; do
		[ -d "$d" ] || continue
		[ -f "$d/.manifest" ] || fail "$what: $d has a manifest" "$(ls -la "$d")"
		(cd "$d" && grep '  ' .manifest | awk '{print $1 "  " $3}' | sha256sum -c --quiet) ||
			fail "$what: $d matches its manifest"
	done
	ctl --json status | jsave "$T/st.json"
	grep -q "$(openssl x509 -in "$SSL_DIR/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)" "$T/st.json" ||
		fail "$what: the bundle holds the active CA"
	CUR=$cur
}

# crash_loop OP PREFIX STATE OLD_SUM NEW_SUM CMD...: for N = 1, 2, ... crash at PREFIX-N until
# the call completes without reaching the point; then the fixed points after the swap.
CUR=""
crash_loop() {
	local op=$1 prefix=$2 state=$3 old=$4 new=$5 point n cur points=""
	shift 5
	[ "$op" != renew ] || points="renew-before-swap"
	for n in $(seq 1 40); do points="$points $prefix-$n"; done
	points="$points $op-after-journal rotate-after-swap rotate-after-publish rotate-after-reload"
	local swap_done=0
	for point in $points; do
		case $point in "$prefix"-*) [ "$swap_done" -eq 0 ] || continue ;; esac
		reset_to "$state"
		: >"$DAEMON_LOG"
		CAROTATED=$FAULTY CAROTATE_CRASH_AT=$point start_daemon
		run ctl "$@"
		if [ "$RC" -eq 0 ] && ! grep -q "fault_point: crashing here" "$DAEMON_LOG"; then
			stop_daemon
			case $point in
			"$prefix"-*) t_log "$op: $((${point##*-} - 1)) swap crash points"
				[ "${point##*-}" -gt 5 ] || fail "$op: the swap has crash points"
				swap_done=1
				continue ;;
			*) fail "$op: the crash point $point is reached" ;;
			esac
		fi
		wait_until 5000 bash -c "! kill -0 $DAEMON_PID 2>/dev/null" || fail "$op: the daemon died at $point"
		{ wait "$DAEMON_PID" || true; } 2>/dev/null
		assert_file_contains "fault_point: crashing here" "$DAEMON_LOG" "$op: crashed at $point"
		rm -f "$SOCK"
		if [ "$point" = renew-before-swap ]; then
			[ -d "$SSL_DIR/renew" ] || fail "renew: crashed with renew/ written, before its swap"
		fi
		start_daemon
		check_invariants "$op $point" "$old" "$new"
		cur=$CUR
		if [ "$op" = rotate ]; then
			if [ "$cur" = "$OLD" ]; then
				[ -d "$SSL_DIR/new" ] && [ "$(set_sum "$SSL_DIR/new")" = "$NEW" ] ||
					fail "rotate $point: undone, so the staged set is still staged"
			else
				[ ! -e "$SSL_DIR/new" ] || fail "rotate $point: done, so nothing is staged"
			fi
		fi
		[ "$op" != renew ] || renew_consistent "$point" "$cur"
		audit_consistent "$op" "$point" "$([ "$cur" = "$old" ] && echo old || echo new)"
		ok "$op: crash at $point -> $([ "$cur" = "$old" ] && echo old || echo new) set, consistent"
		stop_daemon
	done
}

# op_audited OP: the audit log holds a record of OP (a resumed call ended).
op_audited() { ctl --json audit --limit 50 | "$PY" -c '
import json, sys
sys.exit(not any(r["call"] == sys.argv[1] for r in json.load(sys.stdin)["records"]))' "$1"; }

# audit_consistent OP POINT old|new: the audit log credits the call to its caller, or says
# nothing of it. REASON: the reason the call gave ("" none).
REASON=""
audit_consistent() {
	local op=$1 point=$2 state=$3
	if [ "$state" = new ]; then
		wait_until 15000 op_audited "$op" ||
			fail "$op $point: the restart finishes and audits the $op" "$(ctl audit --limit 5)"
	fi
	ctl --json audit --limit 50 >"$T/audit.json"
	"$PY" - "$T/audit.json" "$op" "$state" "$(id -u)" "$REASON" "$SSL_DIR" <<'PYEOF' ||
import json, os, re, sys
recs = json.load(open(sys.argv[1]))["records"]
op, state, uid, reason, ssl = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
def bad(msg):
    print(msg, json.dumps(recs[:6], indent=1))
    sys.exit(1)
adopt = [r for r in recs if r["call"] == "adopt" or "outside carotated" in r.get("detail", "")]
if adopt:
    bad("a change made outside carotated was adopted: the %s lost its caller" % op)
if any(r["result"] != "OK" for r in recs if r["call"] == "recover"):
    bad("the journal was replayed")
mine = [r for r in recs if r["call"] == op]
if len(mine) > 1:
    bad("one call, at most one %s record" % op)
if state == "old" and mine:
    bad("the old set is live, yet a %s is recorded" % op)
if state == "new":
    if not mine:
        bad("the new set is live, yet no %s is recorded" % op)
    r, d = mine[0], mine[0].get("detail", "")
    if r["result"] != "OK" or "verified=yes" not in d:
        bad("the %s is recorded as done and verified" % op)
    if r["uid"] != uid or r["pid"] == 0:
        bad("the %s is credited to its caller (uid %d, a pid)" % (op, uid))
    if reason and ('reason="%s"' % reason) not in d:
        bad("the %s record carries the reason %r" % (op, reason))
    m = re.search(r'backup_made="(certs-[0-9-]+)"', d)
    if not m or not os.path.isdir(os.path.join(ssl, m.group(1))):
        bad("the %s record names the backup its swap made, which exists" % op)
PYEOF
		fail "$op $point: the audit log credits the call" "$(head -c 1500 "$T/audit.json")"
}

REASON=crash
crash_loop rotate swap-rotate staged "$OLD" "$NEW" rotate --force --reason "$REASON"

# A finished rotate, as the state to restore from.
reset_to staged
start_daemon
assert_exit 0 "rotate" -- ctl --json rotate --force --reason "before restore"
printf '%s' "$OUT" | jsave "$T/rot.json"
B=$(jget backup "$T/rot.json")
stop_daemon
cp -a "$SSL_DIR" "$T/ssl.rotated"
cp -a "$STATE_DIR" "$T/state.rotated"
REASON="crash restore"
crash_loop restore swap-restore rotated "$NEW" "$OLD" restore "$B" --reason "$REASON"

# renew_consistent POINT CUR: after a renew crashed at POINT and a restart (set_sum CUR).
renew_consistent() {
	local point=$1 cur=$2 ca
	ca=$(cert_der_sha256 "$SSL_DIR/ca.crt")
	assert_eq "$RENEW_CA" "$ca" "renew $point: the CA is the same"
	openssl verify -CAfile "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" >/dev/null 2>&1 ||
		fail "renew $point: the active CA issued the active leaf"
	case $point in
	rotate-after-* | renew-after-journal)
		# The swap was done: the restart finishes the call, which the proxy serves.
		[ "$cur" != "$RENEW_OLD" ] || fail "renew $point: past the swap, the renewed set stays" ;;
	esac
}

# renew, from the rotated (generated, so carotated holds its CA key) set, as the last one.
reset_to rotated
RENEW_OLD=$(set_sum "$SSL_DIR")
RENEW_CA=$(cert_der_sha256 "$SSL_DIR/ca.crt")
REASON=""
crash_loop renew swap-renew rotated "$RENEW_OLD" any renew
