#!/bin/bash
# Staging is atomic: a crash (SIGKILL at an injected point) anywhere in
# generate or discard leaves either no staged set or a complete, valid one, and
# the next start removes the debris and re-publishes the bundle and canary files.
#
# And the change is credited to its caller (issue 19): generate renamed the new
# set into new/ and published the bundle, but its audit record was committed
# only when the reply was sent, after the proxy's reload. A kill -9 (or a power
# cut) in between (stage-after-rename, publish-after-bundle, stage-after-reload;
# discard-after-remove for discard) left a staged set, or a discarded one, with
# no record: the next start's audit_adopt wrote "adopt ... the staged set
# changed outside carotated" as uid 0, pid 0, user carotated. The caller was
# lost and monitoring that watches for hand-made changes raised a false alarm.
# Now the call writes an intent note (state_dir/call.pending) first, and the
# next start records the call as its caller's: no adopt record after any crash
# point, and the newest generate or discard record names the test's user and
# ctl's pid. Before the fix this test failed at stage-after-rename,
# replace-before-rename (then the bundle's write), replace-before-rename@2,
# publish-after-bundle, publish-between-canary-files, stage-after-reload and the
# three discard points, each with "adopt: the staged set changed outside
# carotated since audit record N; adopted as found".
. "$(dirname "$0")/lib.sh"

FAULTY="$CAROTATE_BUILD/carotated-faults"
[ -x "$FAULTY" ] || t_skip "no $FAULTY (make $CAROTATE_BUILD/carotated-faults)"

t_init
make_active_set
write_config

# check_set DIR: a whole set whose server certificate chains to its CA and whose key matches.
check_set() {
	local d=$1
	for f in ca.crt server.crt server.key; do
		[ -s "$d/$f" ] || fail "staged set incomplete: $d/$f missing or empty"
	done
	openssl verify -x509_strict -purpose sslserver -CAfile "$d/ca.crt" "$d/server.crt" \
		>/dev/null 2>&1 || fail "staged server certificate does not verify against its CA"
	[ "$(openssl x509 -in "$d/server.crt" -noout -pubkey | sha256sum)" = \
		"$(openssl pkey -in "$d/server.key" -pubout | sha256sum)" ] ||
		fail "staged key does not match the staged certificate"
}

ME=$(id -un)

# audit_seq: the newest audit record's seq (0 when the log is empty); the daemon runs.
audit_seq() {
	ctl --json audit --limit 1 >"$T/seq.json"
	json_get records.0.seq "$T/seq.json" 2>/dev/null | grep -E '^[0-9]+$' || echo 0
}

# check_audit POINT CALL SINCE CHANGED: the records after seq SINCE hold no adopt (the
# crash explained nothing changed outside carotated); the newest record of CALL names the
# caller (this user, a pid, not the daemon's own events); when CHANGED is yes it says OK.
# No intent note is left. The daemon runs.
check_audit() {
	local point=$1 call=$2 since=$3 changed=$4
	ctl --json audit --limit 50 >"$T/audit.json"
	"$PY" - "$T/audit.json" "$since" "$call" "$ME" "$changed" >"$T/audit.verdict" <<'PY' ||
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
since, call, me, changed = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
new = [r for r in recs if int(r["seq"]) > since]
bad = [r for r in new if r["call"] == "adopt" or "outside carotated" in r["detail"]]
if bad:
    print("adopt: %s" % bad[0]["detail"]); sys.exit(1)
mine = [r for r in new if r["call"] == call]
if changed == "yes" and not mine:
    print("no %s record after the crash" % call); sys.exit(1)
if mine:
    r = max(mine, key=lambda r: int(r["seq"]))
    if r["user"] != me or int(r["pid"]) == 0:
        print("%s record by user %s pid %s" % (call, r["user"], r["pid"])); sys.exit(1)
    if changed == "yes" and r["result"] != "OK":
        print("%s record result %s: %s" % (call, r["result"], r["detail"])); sys.exit(1)
    print("%s %s by %s pid %s" % (call, r["result"], r["user"], r["pid"]))
else:
    print("no %s record" % call)
PY
		fail "$point: the audit log after the crash: $(cat "$T/audit.verdict")" \
			"$(ctl audit --limit 6)"
	ok "$point: audit: $(cat "$T/audit.verdict"); no adopt"
	[ ! -e "$STATE_DIR/call.pending" ] || fail "$point: the intent note outlived the start"
	[ ! -e "$STATE_DIR/.call.pending.tmp" ] || fail "$point: a half-written note was left"
}

# replace-before-rename is reached first by the intent note's write, @2 by the bundle's.
points="stage-after-ca-key stage-after-mkdir stage-after-ca stage-after-cert stage-after-key
stage-before-rename stage-after-rename replace-before-rename replace-before-rename@2
publish-after-bundle publish-between-canary-files stage-after-reload"

# A log with records: audit_adopt compares the sets on disk with the newest one's after.
start_daemon
assert_exit 0 "a first generate" -- ctl generate
assert_exit 0 "and its discard" -- ctl discard
stop_daemon

# crash_in CALL POINT: the faulty daemon runs CALL and dies at POINT; the client is told.
crash_in() {
	CAROTATED=$FAULTY CAROTATE_CRASH_AT=$2 start_daemon
	run ctl "$1"
	[ "$RC" -eq 2 ] || fail "$1 with a crash at $2: expected exit 2 (daemon gone)" \
		"got $RC: $OUT $ERR"
	wait_until 5000 bash -c "! kill -0 $DAEMON_PID 2>/dev/null" ||
		fail "the daemon did not die at $2"
	{ wait "$DAEMON_PID" || true; } 2>/dev/null
	assert_file_contains "fault_point: crashing here" "$DAEMON_LOG" "crashed at $2"
}

for point in $points; do
	t_log "--- crash at $point"
	rm -rf "$SSL_DIR/new" "$SSL_DIR"/discarded-* "$SSL_DIR"/.staging-* "$STATE_DIR/ca-keys"
	active_before=$(cat "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" | sha256sum)
	# Published files current first, so the crash comes from generate, not from start-up.
	start_daemon
	since=$(audit_seq)
	stop_daemon

	crash_in generate "$point"

	# The invariant, before any recovery: no staged set, or a whole valid one.
	if [ -e "$SSL_DIR/new" ]; then
		check_set "$SSL_DIR/new"
		ok "$point: a complete staged set"
	else
		ok "$point: no staged set"
	fi
	assert_eq "$active_before" \
		"$(cat "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" | sha256sum)" \
		"$point: the active set is untouched"

	# A normal start recovers: debris removed, bundle and canary re-derived.
	rm -f "$SOCK"
	start_daemon
	assert_eq "" "$(find "$SSL_DIR" -maxdepth 1 -name '.staging-*' -o -maxdepth 1 -name '.*.tmp')" \
		"$point: no debris after restart"
	ctl --json status >"$T/st.json"
	if [ -e "$SSL_DIR/new" ]; then
		assert_eq staged "$(json_get phase "$T/st.json")" "$point: phase staged"
		assert_eq 2 "$(grep -c 'BEGIN CERTIFICATE' "$SSL_DIR/ca-bundle.pem")" \
			"$point: bundle holds old and new CA"
		cmp -s "$SSL_DIR/canary.crt" "$SSL_DIR/new/server.crt" ||
			fail "$point: canary.crt is not the staged server certificate"
		cmp -s "$SSL_DIR/canary.key" "$SSL_DIR/new/server.key" ||
			fail "$point: canary.key is not the staged server key"
	else
		assert_eq steady "$(json_get phase "$T/st.json")" "$point: phase steady"
		assert_eq 1 "$(grep -c 'BEGIN CERTIFICATE' "$SSL_DIR/ca-bundle.pem")" \
			"$point: bundle holds the active CA"
		cmp -s "$SSL_DIR/canary.crt" "$SSL_DIR/server.crt" ||
			fail "$point: canary.crt is not the active server certificate"
		cmp -s "$SSL_DIR/canary.key" "$SSL_DIR/server.key" ||
			fail "$point: canary.key is not the active server key"
	fi
	assert_eq true "$(json_get bundle.published "$T/st.json")" "$point: bundle published"
	check_audit "$point" generate "$since" "$([ -e "$SSL_DIR/new" ] && echo yes || echo no)"
	stop_daemon
	assert_eq 0 "$DAEMON_STATUS" "$point: clean stop"
done

# discard: new/ becomes a discarded-... backup and the CA key goes, then the bundle and the
# proxy follow; a crash after the move must not leave a change no one is credited with.
for point in discard-after-remove publish-after-bundle stage-after-reload; do
	t_log "--- crash in discard at $point"
	rm -rf "$SSL_DIR/new" "$SSL_DIR"/discarded-* "$SSL_DIR"/.staging-* "$STATE_DIR/ca-keys"
	start_daemon
	assert_exit 0 "generate before the discard" -- ctl generate
	since=$(audit_seq)
	stop_daemon

	crash_in discard "$point"
	[ ! -e "$SSL_DIR/new" ] || fail "$point: the staged set is still there"
	[ -n "$(find "$SSL_DIR" -maxdepth 1 -name 'discarded-*')" ] ||
		fail "$point: no discarded-... backup"

	rm -f "$SOCK"
	start_daemon
	ctl --json status >"$T/st.json"
	assert_eq steady "$(json_get phase "$T/st.json")" "$point: phase steady"
	assert_eq 1 "$(grep -c 'BEGIN CERTIFICATE' "$SSL_DIR/ca-bundle.pem")" \
		"$point: bundle holds the active CA"
	check_audit "$point (discard)" discard "$since" yes
	stop_daemon
	assert_eq 0 "$DAEMON_STATUS" "$point: clean stop"
done

# A note that is not ours (damaged, or written by hand) is removed at start and credits
# nothing: the sets are then judged by audit_adopt as before.
start_daemon
since=$(audit_seq)
stop_daemon
printf 'carotate-stage-pending 1\naudit.call generate\naudit.uid 0\naudit.pid 77\n' \
	>"$STATE_DIR/call.pending"
printf 'audit.unchanged x\naudit.expect y\n' >>"$STATE_DIR/call.pending"
start_daemon
check_audit "a note matching neither state" generate "$since" no
assert_eq "" "$(ctl --json audit --limit 1 | json_get records.0.pid | grep -x 77 || true)" \
	"a note that matches no state records nothing"
printf 'garbage\n' >"$STATE_DIR/call.pending"
stop_daemon
start_daemon
[ ! -e "$STATE_DIR/call.pending" ] || fail "a foreign note was not removed"
assert_file_contains "call.pending: not the note of a generate, install or discard; removed" \
	"$DAEMON_LOG" "the foreign note is named in the log"
stop_daemon
