#!/bin/bash
# A stop must not cut a rotate in half (issue 15). Reproduced before the fix: SIGTERM (a
# package upgrade restarting the unit) arrived while the reload command ran; the daemon left
# at once: the new set was on disk while nginx still served the old one, with no TLS check,
# no roll back, no audit record and no answer to the client, and after the restart the
# daemon audited an `adopt` ("changed outside carotated"). With real nginx and a reload
# command that takes 2 s:
#  - SIGTERM during the reload: the rotate finishes first (reload, check), the client gets
#    its answer (exit 0), nginx serves the new certificate, then the daemon exits; after a
#    restart the audit log holds the rotate with its reason and backup, and no adopt;
#  - SIGTERM during a rotate whose TLS check fails: rolled back, the client gets exit 6,
#    nginx serves the previous certificate, the rotate is audited as rolled back;
#  - a second SIGTERM stops at once: the client is told, the record of what is left stays
#    in the state directory, and the next start reloads, checks and audits the rotate as a
#    rotate (caller, reason, backup), not as an adopt.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

t_init
make_active_set
nginx_write_daemon_config
# The real reload, 2 s late; the marker says it has started.
SLOW="$T/reload-slow.sh"
printf '#!/bin/sh\ntouch "%s/reloading"\nsleep 2\nexec "%s"\n' "$T" "$NGINX_RELOAD" >"$SLOW"
chmod 0755 "$SLOW"
sed -i "s|^reload = .*|reload = $SLOW|" "$CONF"
start_daemon
nginx_start

# wait_exit: the daemon has exited (by itself) within 60 s.
wait_exit() {
	wait_until 60000 sh -c "! kill -0 $DAEMON_PID 2>/dev/null || [ \"\$(awk '{print \$3}' /proc/$DAEMON_PID/stat 2>/dev/null)\" = Z ]" ||
		fail "$1" "$(tail -n 20 "$DAEMON_LOG")"
	{ wait "$DAEMON_PID" || true; } 2>/dev/null
	ok "$1"
}
# rotate_bg: starts a forced rotate in the background (pid in CPID, output in $T/c.*).
rotate_bg() {
	rm -f "$T/reloading"
	ctl --json rotate --force --reason "$1" >"$T/c.out" 2>"$T/c.err" &
	CPID=$!
	wait_until 10000 test -e "$T/reloading" || fail "the reload started" "$(cat "$T/c.err")"
}
no_adopt() {
	ctl --json audit --limit 50 | jsave "$T/audit-all.json"
	if grep -q '"adopt"' "$T/audit-all.json"; then
		fail "$1" "$(grep -o '"detail": *"[^"]*adopt[^"]*"' "$T/audit-all.json" | head -3)"
	fi
	ok "$1"
}

echo "-- SIGTERM while the reload runs: the rotate finishes first"
assert_exit 0 "generate" -- ctl generate
OLD=$(served)
NEW=$(leaf_sha "$SSL_DIR/new/server.crt")
rotate_bg "stop during reload"
kill -TERM "$DAEMON_PID"
RC=0
wait "$CPID" || RC=$?
assert_eq 0 "$RC" "the client gets a completed answer" "$(cat "$T/c.err")"
jsave "$T/c.json" <"$T/c.out"
assert_eq true "$(jget verified "$T/c.json")" "the proxy check ran and passed"
B1=$(jget backup "$T/c.json")
wait_exit "then the daemon exits"
assert_eq "$NEW" "$(served)" "nginx serves the new certificate"
[ ! -e "$STATE_DIR/swap.pending" ] || fail "nothing is left for the next start" "$(cat "$STATE_DIR/swap.pending")"
ok "nothing is left for the next start"
assert_file_contains "once the rotate in progress has finished" "$DAEMON_LOG" "the daemon said it waits"
start_daemon
ctl --json audit --limit 1 | jsave "$T/a1.json"
assert_eq rotate "$(jget records.0.call "$T/a1.json")" "audit: the rotate is the newest record"
assert_eq OK "$(jget records.0.result "$T/a1.json")" "audit: as done"
assert_contains "stop during reload" "$(jget records.0.detail "$T/a1.json")" "audit: with its reason"
assert_contains "backup_made=\"$B1\"" "$(jget records.0.detail "$T/a1.json")" "audit: and its backup"
no_adopt "no adopt after the restart"
GOOD=$NEW

echo "-- SIGTERM during a rotate whose TLS check fails: rolled back, audited"
assert_exit 0 "generate" -- ctl generate
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
cp "$T/other.key" "$SSL_DIR/new/server.key"
chmod 0600 "$SSL_DIR/new/server.key"
rotate_bg "stop during a failing rotate"
kill -TERM "$DAEMON_PID"
RC=0
wait "$CPID" || RC=$?
assert_eq 6 "$RC" "the client gets the roll back's answer (exit 6)"
jsave "$T/c2.json" <"$T/c.out"
assert_eq true "$(jget rolled_back "$T/c2.json")" "rolled_back is true"
wait_exit "then the daemon exits"
assert_eq "$GOOD" "$(served)" "nginx serves the previous certificate"
assert_eq "$GOOD" "$(leaf_sha "$SSL_DIR/server.crt")" "the previous set is on disk"
start_daemon
ctl --json audit --limit 1 | jsave "$T/a2.json"
assert_eq rotate "$(jget records.0.call "$T/a2.json")" "audit: the rotate is the newest record"
assert_eq INTERNAL "$(jget records.0.result "$T/a2.json")" "audit: as failed"
assert_contains "rolled_back=yes" "$(jget records.0.detail "$T/a2.json")" "audit: rolled back"
assert_contains "stop during a failing rotate" "$(jget records.0.detail "$T/a2.json")" "audit: with its reason"
no_adopt "no adopt after the restart"

echo "-- a second SIGTERM stops at once: the next start finishes the rotate"
assert_exit 0 "generate" -- ctl generate
NEW3=$(leaf_sha "$SSL_DIR/new/server.crt")
rotate_bg "stopped twice"
kill -TERM "$DAEMON_PID"
sleep 0.2
kill -TERM "$DAEMON_PID"
RC=0
wait "$CPID" || RC=$?
assert_ne 0 "$RC" "the client is told the rotate did not finish"
assert_contains "next start" "$(cat "$T/c.err")" "and that the next start finishes it"
wait_exit "the daemon exits at once"
[ -e "$STATE_DIR/swap.pending" ] || fail "what is left is written down"
ok "what is left is written down"
ctl_b3=$(sed -n 's/^backup //p' "$STATE_DIR/swap.pending")
start_daemon
wait_until 20000 test ! -e "$STATE_DIR/swap.pending" ||
	fail "the next start finishes the rotate" "$(tail -n 20 "$DAEMON_LOG")"
ok "the next start finishes the rotate"
serves_now "$NEW3" "nginx serves the new certificate"
ctl --json audit --limit 1 | jsave "$T/a3.json"
assert_eq rotate "$(jget records.0.call "$T/a3.json")" "audit: recorded as a rotate"
assert_eq OK "$(jget records.0.result "$T/a3.json")" "audit: done"
assert_eq "$(id -u)" "$(jget records.0.uid "$T/a3.json")" "audit: by the caller"
assert_contains "stopped twice" "$(jget records.0.detail "$T/a3.json")" "audit: with its reason"
assert_contains "backup_made=\"$ctl_b3\"" "$(jget records.0.detail "$T/a3.json")" "audit: and its backup"
assert_contains "finished at start-up" "$(jget records.0.detail "$T/a3.json")" "audit: says it was finished at start-up"
no_adopt "no adopt after the restart"
assert_daemon_alive
