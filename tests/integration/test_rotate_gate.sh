#!/bin/bash
# What rotate and restore install is what agents were counted for (issue 14, items 3, 4, 9,
# 10), against real nginx, the real daemon, the agent simulator.
#
# Repros (each failed on the code before the fix):
#  - agents acknowledged staged CA X to 100 %; root replaced new/ by hand with another set Y
#    (no SIGHUP); `rotate` passed the gate on X's count and installed Y, which no agent had:
#    now refused (exit 3), nothing changes on disk, and the report counts Y from 0 %. A
#    second hand-made replacement (Z) is refused even with --force: force overrides the
#    percentage, never the identity of the counted CA.
#  - rotate --expect-ca: a mismatch is refused (exit 3), a malformed one is invalid (exit 5),
#    the right one rotates.
#  - new/server.key was 0640: after rotate the live key stayed 0640 (now 0600).
#  - rotate, retire, restore the old backup: restore succeeded with exit 0 and cut every
#    agent off (the old CA was no longer in their bundle): now exit 3, --dry-run says so,
#    --force --reason restores and is audited.
#  - a hand-made backup with g+w/o+w files: restore put them live writable by others (now
#    no group or other write bits).
#  - discard left the generated CA's private key in the state directory (now removed).
#  - a group-writable SSL directory (or new/) was accepted at start (now refused); a SIGHUP
#    changing state_dir moved the daemon to another ledger (now refused, logged, kept).
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init

AGENTSIM="$CAROTATE_BUILD/agentsim"
[ -x "$AGENTSIM" ] || fail "$AGENTSIM is missing (make builds it)"

make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
cp "$SSL_DIR/ca.crt" "$T/old-ca.pem"

SIM_DIR="$T/fleet"
sim() {
	"$AGENTSIM" --dir "$SIM_DIR" --port "$NGINX_PORT" --canary-port "$NGINX_CANARY_PORT" \
		--server-name "$NGINX_SERVER_NAME" --agents 5 --initial-ca "$T/old-ca.pem" \
		--concurrency 4 --report "$@"
}

# The live set and everything else a refused call must leave alone.
disk_state() {
	(cd "$SSL_DIR" && find . -print | LC_ALL=C sort &&
		find . -type f ! -name '.*.tmp' -exec sha256sum {} + | LC_ALL=C sort)
}

# hand_stage NAME: a new set made with openssl copied over new/ by hand, no SIGHUP.
hand_stage() {
	make_cert_set "$T/hand-$1" "$1"
	cp "$T/hand-$1/ca.crt" "$T/hand-$1/server.crt" "$SSL_DIR/new/"
	cp "$T/hand-$1/server.key" "$SSL_DIR/new/server.key"
	chmod 0640 "$SSL_DIR/new/server.key"
	cert_sha256 "$T/hand-$1/ca.crt"
}

echo "-- agents acknowledge the staged CA X"
run sim --link --linking-key "$LINKING_KEY" --rounds 1 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet links" "exit $RC: $ERR"
assert_exit 0 "generate" -- ctl --json generate
printf '%s' "$OUT" | jsave "$T/gen.json"
X=$(jget staged.ca.sha256 "$T/gen.json")
run sim --rounds 2 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet acknowledges X" "exit $RC: $ERR"
ctl --json report | jsave "$T/rep.json"
assert_eq 100 "$(jget percent "$T/rep.json")" "report: 100 % for X"
assert_eq "$X" "$(jget staged_ca "$T/rep.json")" "report: the staged CA is X"

echo "-- new/ replaced by hand with Y: refused, nothing changes, the report tells the truth"
Y=$(hand_stage y)
before=$(disk_state)
run ctl --json rotate
assert_eq 3 "$RC" "rotate after new/ changed behind the daemon exits 3"
printf '%s' "$OUT" | jsave "$T/refused.json"
assert_eq failed_precondition "$(jget error.status "$T/refused.json")" "the refusal is FAILED_PRECONDITION"
assert_contains "replaced outside carotatectl" "$ERR" "the refusal says new/ was replaced"
assert_contains "$Y" "$ERR" "the refusal names the CA now staged"
assert_eq "$before" "$(disk_state)" "a refused rotate changes nothing on disk"
ctl --json report | jsave "$T/rep.json"
assert_eq "$Y" "$(jget staged_ca "$T/rep.json")" "report: the staged CA is now Y"
assert_eq 0 "$(jget percent "$T/rep.json")" "report: 0 % for Y"
run ctl rotate
assert_eq 3 "$RC" "rotate at 0 % for Y exits 3 (the gate)"

echo "-- --force does not install an uncounted CA"
Z=$(hand_stage z)
before=$(disk_state)
run ctl rotate --force --reason "drill"
assert_eq 3 "$RC" "rotate --force after new/ changed again exits 3"
assert_contains "$Z" "$ERR" "the refusal names Z"
assert_eq "$before" "$(disk_state)" "a refused forced rotate changes nothing on disk"
ctl --json report | jsave "$T/rep.json"
assert_eq "$Z" "$(jget staged_ca "$T/rep.json")" "report: the staged CA is now Z"

echo "-- --expect-ca"
run ctl rotate --expect-ca "$X"
assert_eq 3 "$RC" "rotate --expect-ca with another CA exits 3"
assert_contains "not the expected $X" "$ERR" "the refusal names the expected CA"
run ctl rotate --force --reason drill --expect-ca "$Y"
assert_eq 3 "$RC" "--force does not override --expect-ca"
run ctl rotate --expect-ca "$(printf '%s' "$Z" | tr a-f A-F)"
assert_eq 5 "$RC" "an upper-case --expect-ca is invalid input"
run ctl rotate --expect-ca abc
assert_eq 5 "$RC" "a short --expect-ca is invalid input"
assert_eq "$before" "$(disk_state)" "refused calls change nothing on disk"
run sim --rounds 2 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet acknowledges Z" "exit $RC: $ERR"
ctl --json report | jsave "$T/rep.json"
assert_eq 100 "$(jget percent "$T/rep.json")" "report: 100 % for Z"
assert_exit 0 "rotate --expect-ca Z at 100 %" -- ctl --json rotate --expect-ca "$Z"
printf '%s' "$OUT" | jsave "$T/rot.json"
assert_eq true "$(jget verified "$T/rot.json")" "rotate: nginx serves the new certificate"
assert_eq "$Z" "$(cert_sha256 "$SSL_DIR/ca.crt")" "the live CA is the one counted"
assert_eq 600 "$(stat -c %a "$SSL_DIR/server.key")" "the live key is 0600 although new/server.key was 0640"
BACKUP=$(jget backup "$T/rot.json")

echo "-- restore of a backup whose CA agents no longer trust"
assert_exit 0 "retire" -- ctl retire
before=$(disk_state)
run ctl --json restore --dry-run "$BACKUP"
assert_eq 3 "$RC" "restore --dry-run of a retired CA's backup exits 3"
printf '%s' "$OUT" | jsave "$T/rdry.json"
assert_eq failed_precondition "$(jget error.status "$T/rdry.json")" "--json: FAILED_PRECONDITION"
assert_contains "would be refused" "$(jget error.message "$T/rdry.json")" "--json: the dry run says it would be refused"
run ctl restore --dry-run "$BACKUP"
assert_eq 3 "$RC" "restore --dry-run (human) exits 3"
assert_contains "would be refused" "$ERR" "human: the dry run says it would be refused"
run ctl restore "$BACKUP"
assert_eq 3 "$RC" "restore of a retired CA's backup exits 3"
assert_contains "not in the trust bundle" "$ERR" "the refusal says why"
run ctl restore --force "$BACKUP"
assert_eq 1 "$RC" "restore --force without --reason is a usage error"
assert_eq "$before" "$(disk_state)" "refused restores change nothing on disk"
assert_exit 0 "restore --force --reason" -- ctl --json restore --force --reason "drill: old CA" "$BACKUP"
printf '%s' "$OUT" | jsave "$T/rst.json"
assert_eq true "$(jget verified "$T/rst.json")" "the forced restore is verified over TLS"
assert_eq "$(cert_sha256 "$T/old-ca.pem")" "$(cert_sha256 "$SSL_DIR/ca.crt")" "the old CA is live again"
ctl --json audit --limit 5 | jsave "$T/audit.json"
assert_contains 'reason=\"drill: old CA\"' "$(cat "$T/audit.json")" "the forced restore's reason is audited"
assert_contains 'forced=yes' "$(cat "$T/audit.json")" "the audit says it was forced"

echo "-- a hand-made backup with writable files is restored without group or other write"
HAND="$SSL_DIR/certs-20200101-000000"
mkdir -m 0700 "$HAND"
cp "$T/hand-z/ca.crt" "$T/hand-z/server.crt" "$T/hand-z/server.key" "$HAND/"
chmod 0666 "$HAND/ca.crt" "$HAND/server.crt"
chmod 0662 "$HAND/server.key"
assert_exit 0 "restore of the hand-made backup (its CA Z is trusted)" -- ctl restore "${HAND##*/}"
for f in ca.crt server.crt; do
	assert_eq 644 "$(stat -c %a "$SSL_DIR/$f")" "live $f has no group or other write bit"
done
assert_eq 600 "$(stat -c %a "$SSL_DIR/server.key")" "the live key is 0600"

echo "-- discard removes the generated CA's key"
assert_exit 0 "generate" -- ctl --json generate
printf '%s' "$OUT" | jsave "$T/gen2.json"
G=$(jget staged.ca.sha256 "$T/gen2.json")
[ -f "$STATE_DIR/ca-keys/$G.key" ] || fail "generate keeps the CA key in the state directory"
assert_exit 0 "discard" -- ctl discard
[ ! -e "$STATE_DIR/ca-keys/$G.key" ] || fail "discard removes the generated CA's key"
ok "discard removed $STATE_DIR/ca-keys/$G.key"

echo "-- SIGHUP that moves state_dir is refused"
sed -i "s|^state_dir = .*|state_dir = $T/state2|" "$CONF"
kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "state_dir.*takes a restart" "$DAEMON_LOG" ||
	fail "the refused state_dir change is logged" "$(tail -n 5 "$DAEMON_LOG")"
ok "SIGHUP: a new state_dir is refused with a log line"
assert_exit 0 "status after the refused SIGHUP" -- ctl status
[ ! -e "$T/state2/ledger.db" ] || fail "the daemon stays on its state directory"
assert_exit 0 "report still reads the ledger" -- ctl report
sed -i "s|^state_dir = .*|state_dir = $STATE_DIR|" "$CONF"

echo "-- an SSL directory others can write is refused at start"
stop_daemon
chmod g+w "$SSL_DIR"
run timeout 20 "$CAROTATED" -f -c "$CONF"
assert_ne 0 "$RC" "carotated refuses to start with a group-writable SSL directory"
assert_contains "SSL directory $SSL_DIR must be owned by uid" "$ERR" "the refusal names the SSL directory"
chmod g-w "$SSL_DIR"
mkdir -m 0777 "$SSL_DIR/new"
chmod 0777 "$SSL_DIR/new"
run timeout 20 "$CAROTATED" -f -c "$CONF"
assert_ne 0 "$RC" "carotated refuses to start with a world-writable new/"
assert_contains "staging directory $SSL_DIR/new must be owned" "$ERR" "the refusal names new/"
rmdir "$SSL_DIR/new"
start_daemon
ok "with the modes fixed, carotated starts"
