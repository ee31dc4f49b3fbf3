#!/bin/bash
# Staging is atomic: a crash (SIGKILL at an injected point) anywhere in
# generate leaves either no staged set or a complete, valid one, and the next
# start removes the debris and re-publishes the bundle and canary files.
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

points="stage-after-ca-key stage-after-mkdir stage-after-ca stage-after-cert stage-after-key
stage-before-rename stage-after-rename replace-before-rename publish-after-bundle
publish-between-canary-files"

for point in $points; do
	t_log "--- crash at $point"
	rm -rf "$SSL_DIR/new" "$SSL_DIR"/discarded-* "$SSL_DIR"/.staging-* "$STATE_DIR/ca-keys"
	active_before=$(cat "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" | sha256sum)
	# Published files current first, so the crash comes from generate, not from start-up.
	start_daemon
	stop_daemon

	CAROTATED=$FAULTY CAROTATE_CRASH_AT=$point start_daemon
	run ctl generate
	[ "$RC" -eq 2 ] || fail "generate with a crash at $point: expected exit 2 (daemon gone)" \
		"got $RC: $OUT $ERR"
	wait_until 5000 bash -c "! kill -0 $DAEMON_PID 2>/dev/null" ||
		fail "the daemon did not die at $point"
	{ wait "$DAEMON_PID" || true; } 2>/dev/null
	assert_file_contains "fault_point: crashing here" "$DAEMON_LOG" "crashed at $point"

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
	stop_daemon
	assert_eq 0 "$DAEMON_STATUS" "$point: clean stop"
done
