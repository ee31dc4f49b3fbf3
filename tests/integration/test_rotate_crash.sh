#!/bin/bash
# rotate, restore and renew are crash-safe (issues 5 and 18): the daemon is killed (SIGKILL at
# an injected point, carotated-faults) at every step of the journaled swap and of what follows
# it (bundle, reload); renew also just before its swap, with renew/ written. After a restart,
# whatever the point:
#  - the active set is exactly the old one or exactly the new one, its key matches its
#    certificate (same public key), and `nginx -t` accepts the files;
#  - no temporary file or directory is left, no renew/, the journal is gone, every backup
#    directory holds a whole set that matches its manifest;
#  - rotate: the staged set is still staged exactly when the old set is active;
#  - renew: the CA is the same one and issued the active leaf; the audit log tells the truth:
#    no renew recorded as done while the old leaf is active, and a renewed leaf is accounted
#    for (a renew record that verified it, or the recovery of its journal); a crash after the
#    swap is finished at the restart: reload, TLS check, one renew record with verified=yes;
#  - the daemon answers and the bundle holds the active CA.
# Before renew had its crash walk, none of its crash points (renew-before-swap, swap-renew-N,
# and the reload that follows) was exercised: a renew/ left behind, a leaf without its key or
# an unaudited swap would have gone unseen.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
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
	points="$points rotate-after-swap rotate-after-publish rotate-after-reload"
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
		ok "$op: crash at $point -> $([ "$cur" = "$old" ] && echo old || echo new) set, consistent"
		stop_daemon
	done
}

crash_loop rotate swap-rotate staged "$OLD" "$NEW" rotate --force --reason crash

# A finished rotate, as the state to restore from.
reset_to staged
start_daemon
assert_exit 0 "rotate" -- ctl --json rotate --force --reason "before restore"
printf '%s' "$OUT" | jsave "$T/rot.json"
B=$(jget backup "$T/rot.json")
stop_daemon
cp -a "$SSL_DIR" "$T/ssl.rotated"
cp -a "$STATE_DIR" "$T/state.rotated"
crash_loop restore swap-restore rotated "$NEW" "$OLD" restore "$B"

# renew_audited: the audit log holds a renew record (the resumed call ended).
renew_audited() { ctl --json audit --limit 20 | "$PY" -c '
import json, sys
sys.exit(not any(r["call"] == "renew" for r in json.load(sys.stdin)["records"]))'; }

# renew_consistent POINT CUR: after a renew crashed at POINT and a restart (set_sum CUR).
renew_consistent() {
	local point=$1 cur=$2 ca want
	ca=$(cert_der_sha256 "$SSL_DIR/ca.crt")
	assert_eq "$RENEW_CA" "$ca" "renew $point: the CA is the same"
	openssl verify -CAfile "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" >/dev/null 2>&1 ||
		fail "renew $point: the active CA issued the active leaf"
	case $point in
	rotate-after-*)
		# The swap was done: the restart finishes the call, which the proxy serves.
		[ "$cur" != "$RENEW_OLD" ] || fail "renew $point: past the swap, the renewed set stays"
		wait_until 15000 renew_audited ||
			fail "renew $point: the restart finishes and audits the renew" "$(ctl audit --limit 5)"
		want="renew OK" ;;
	*) want="" ;;
	esac
	ctl --json audit --limit 50 >"$T/audit.json"
	"$PY" - "$T/audit.json" "$([ "$cur" = "$RENEW_OLD" ] && echo old || echo new)" "$want" <<'PYEOF' ||
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
state, want = sys.argv[2], sys.argv[3]
renew = [r for r in recs if r["call"] == "renew"]
recover = [r for r in recs if r["call"] == "recover"]
done = [r for r in renew if r["result"] == "OK"]
def bad(msg):
    print(msg, json.dumps(recs[:6], indent=1))
    sys.exit(1)
if len(renew) > 1:
    bad("one call, at most one renew record")
if any(r["result"] != "OK" for r in recover):
    bad("the journal was replayed")
if state == "old" and done:
    bad("the old leaf is active, yet a renew is recorded as done")
if state == "new" and not done and not recover:
    bad("the renewed leaf is active, yet neither a renew nor a recovery is recorded")
if want == "renew OK" and (not done or "verified=yes" not in done[0].get("detail", "")):
    bad("the finished renew is recorded as verified")
PYEOF
		fail "renew $point: the audit log is consistent" "$(head -c 1500 "$T/audit.json")"
	ok "renew $point: the audit log is consistent"
}

# renew, from the rotated (generated, so carotated holds its CA key) set, as the last one.
reset_to rotated
RENEW_OLD=$(set_sum "$SSL_DIR")
RENEW_CA=$(cert_der_sha256 "$SSL_DIR/ca.crt")
crash_loop renew swap-renew rotated "$RENEW_OLD" any renew
