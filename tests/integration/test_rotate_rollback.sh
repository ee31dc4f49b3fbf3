#!/bin/bash
# rotate's edges, with real nginx (issue 5):
#  - no agent ever checked in: refused (exit 3, "is the agent endpoint wired?"); forced with a
#    reason: done, and the reason is in the backup's manifest. The refusal printed "active
#    now:" followed by the staged CA and its JSON "after" was the staged set (issue 15):
#    now "would become active:" and "would_become_active", no "active now", no "after";
#  - a staged set nginx rejects (its key belongs to another certificate) with a reload
#    command that, like `nginx -s reload`, exits 0 anyway: only the TLS check sees it; the
#    previous set is put back by itself, nginx still serves the previous certificate, exit 6
#    says so, and the set that failed is kept in a backup;
#  - files planted in the SSL directory: a symlinked staged key refuses the rotate; a symlink
#    and a hard link planted as ca-bundle.pem are replaced, their targets untouched; a
#    symlink named like a backup is not restored from;
#  - a fresh proxy (no active set): the staged set is simply activated;
#  - after such a roll back (issue 15): the backup of the set that failed is labelled
#    `rollback` (backups, human and --json), and `restore --latest` skips it. Before, it was
#    labelled `restore` and, being the newest, `restore --latest` put the failed set back live
#    (nginx refused it again: a second roll back) instead of the set that was live before.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

t_init
make_active_set
nginx_write_daemon_config
# `nginx -s reload` alone: exits 0 even when nginx refuses the new files.
BLIND="$T/reload-blind.sh"
printf '#!/bin/sh\nexec "%s" -p "%s/" -c "%s" -s reload\n' "$NGINX" "$NGINX_DIR" "$NGINX_CONF" >"$BLIND"
chmod 0755 "$BLIND"
sed -i "s|^reload = .*|reload = $BLIND|" "$CONF"
start_daemon
nginx_start


echo "-- no agent has checked in"
assert_exit 0 "generate" -- ctl generate
run ctl rotate
assert_eq 3 "$RC" "rotate with no active agent exits 3"
assert_contains "no agent has checked in" "$ERR" "and asks whether the agent endpoint is wired"
# Nothing changed: the staged set is what would become active, never "active now".
case $OUT in *"active now"*) fail "a refused rotate prints no 'active now:' line" "$OUT" ;; esac
ok "a refused rotate prints no 'active now:' line"
assert_contains "would become active:" "$OUT" "it names the staged set as what would become active"
run ctl --json rotate
assert_eq 3 "$RC" "rotate --json with no active agent exits 3"
printf '%s' "$OUT" | jsave "$T/refused.json"
if grep -Eq '^after([.]|	)' "$T/refused.json.flat"; then fail "the refusal's JSON has no after"; fi
ok "the refusal's JSON has no after"
assert_eq "$(leaf_sha "$SSL_DIR/new/server.crt")" "$(jget would_become_active.server.sha256 "$T/refused.json")" \
	"its would_become_active is the staged set"
assert_eq "$(leaf_sha "$SSL_DIR/server.crt")" "$(jget before.server.sha256 "$T/refused.json")" \
	"its before is the active set"
assert_eq "$(leaf_sha "$SSL_DIR/server.crt")" "$(served)" "nothing changed"
STAGED=$(leaf_sha "$SSL_DIR/new/server.crt")
assert_exit 0 "rotate --force --reason" -- ctl --json rotate --force --reason "lab proxy, no agents yet"
printf '%s' "$OUT" | jsave "$T/rot.json"
assert_eq true "$(jget forced "$T/rot.json")" "the reply says forced"
serves_now "$STAGED" "nginx serves the new certificate"
B1=$(jget backup "$T/rot.json")
assert_file_contains "reason=lab proxy, no agents yet" "$SSL_DIR/$B1/.manifest" "the reason is in the manifest"
assert_file_contains "forced below the gate" "$DAEMON_LOG" "the daemon logged the forced rotation"
ctl --json audit --limit 2 | jsave "$T/audit.json"
assert_eq rotate "$(jget records.0.call "$T/audit.json")" "audit: the forced rotate is recorded"
assert_eq OK "$(jget records.0.result "$T/audit.json")" "audit: with its result"
assert_contains "lab proxy, no agents yet" "$(jget records.0.detail "$T/audit.json")" "audit: and its reason"
assert_contains "force" "$(jget records.0.detail "$T/audit.json")" "audit: and that it was forced"
assert_ne "$(jget records.0.before "$T/audit.json")" "$(jget records.0.after "$T/audit.json")" \
	"audit: the fingerprints before and after differ"
assert_eq rotate "$(jget records.1.call "$T/audit.json")" "audit: the refused rotate is recorded too"
assert_eq FAILED_PRECONDITION "$(jget records.1.result "$T/audit.json")" "audit: as refused"
GOOD=$(served)

echo "-- a staged set nginx rejects: automatic roll back"
assert_exit 0 "generate" -- ctl generate
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
cp "$T/other.key" "$SSL_DIR/new/server.key"
chmod 0600 "$SSL_DIR/new/server.key"
BAD=$(leaf_sha "$SSL_DIR/new/server.crt")
t0=$(ms_now)
run ctl --json rotate --force --reason "rollback test"
ms=$(($(ms_now) - t0))
assert_eq 6 "$RC" "a rotate nginx does not take exits 6"
printf '%s' "$OUT" | jsave "$T/rb.json"
assert_contains "rolled back" "$ERR" "the error says it rolled back"
assert_contains "did not serve the new certificate" "$ERR" "and why"
assert_eq true "$(jget rolled_back "$T/rb.json")" "rolled_back is true"
assert_eq false "$(jget verified "$T/rb.json")" "verified is false"
assert_eq "$GOOD" "$(jget served "$T/rb.json")" "the last check saw the previous certificate"
assert_eq "$GOOD" "$(served)" "nginx still serves the previous certificate"
assert_eq "$GOOD" "$(leaf_sha "$SSL_DIR/server.crt")" "the previous set is on disk again"
[ "$(openssl x509 -in "$SSL_DIR/server.crt" -noout -pubkey | sha256sum)" = \
	"$(openssl pkey -in "$SSL_DIR/server.key" -pubout | sha256sum)" ] || fail "the active key matches the active certificate"
ok "the active key matches the active certificate"
"$NGINX" -q -t -p "$NGINX_DIR/" -c "$NGINX_CONF" 2>"$T/t.err" || fail "nginx -t passes after the roll back" "$(cat "$T/t.err")"
ok "nginx -t passes after the roll back"
n=0
for d in "$SSL_DIR"/certs-*; do
	[ "$(leaf_sha "$d/server.crt")" = "$BAD" ] && n=$((n + 1))
done
assert_eq 1 "$n" "the set that failed is kept in one backup"
ctl --json status | jsave "$T/st.json"
assert_eq steady "$(jget phase "$T/st.json")" "steady after the roll back"
ctl --json audit --limit 1 | jsave "$T/audit.json"
assert_eq INTERNAL "$(jget records.0.result "$T/audit.json")" "audit: the rolled-back rotate is recorded as failed"
assert_contains "rolled back" "$(jget records.0.detail "$T/audit.json")" "audit: with what happened"
t_log "rotate + failed check + roll back took $ms ms (check_timeout 5s)"
[ ! -e "$STATE_DIR/swap.journal" ] || fail "no journal left after the roll back"

echo "-- the way back after a roll back: restore --latest skips the set that failed"
ctl --json backups | jsave "$T/bk.json"
assert_eq rollback "$(jget backups.0.reason "$T/bk.json")" "backups --json: the failed set's backup is labelled rollback"
RBK=$(jget backups.0.id "$T/bk.json")
assert_eq "$BAD" "$(leaf_sha "$SSL_DIR/$RBK/server.crt")" "that backup holds the set that failed"
assert_file_contains "op=rollback" "$SSL_DIR/$RBK/.manifest" "its manifest says rollback"
assert_exit 0 "backups" -- ctl backups
assert_contains "rollback" "$OUT" "backups (human) shows the rollback label"
assert_exit 0 "restore --latest after the roll back" -- ctl restore --latest
PICK=$(printf '%s\n' "$OUT" | awk '$1 == "restored:" { print $2 }')
assert_match "^certs-" "$PICK" "restore says which backup it picked"
assert_ne "$RBK" "$PICK" "and it is not the rollback backup"
serves_now "$GOOD" "nginx serves the set that was live before the failed rotate"
assert_eq "$GOOD" "$(leaf_sha "$SSL_DIR/server.crt")" "that set is on disk"
run ctl --json restore --latest --dry-run
printf '%s' "$OUT" | jsave "$T/rl.json"
assert_ne "$RBK" "$(jget restored "$T/rl.json")" "restore --latest --dry-run does not pick the rollback backup either"

echo "-- files planted in the SSL directory"
assert_exit 0 "generate" -- ctl generate
mv "$SSL_DIR/new/server.key" "$T/staged.key"
ln -s "$T/staged.key" "$SSL_DIR/new/server.key"
before=$(cd "$SSL_DIR" && find . | LC_ALL=C sort)
run ctl rotate --force --reason "symlink test"
assert_ne 0 "$RC" "rotate with a symlinked staged key is refused"
assert_eq "$before" "$(cd "$SSL_DIR" && find . | LC_ALL=C sort)" "and changes nothing"
assert_eq "$GOOD" "$(served)" "nginx still serves the active certificate"
rm "$SSL_DIR/new/server.key"
ln "$T/staged.key" "$SSL_DIR/new/server.key"
run ctl rotate --force --reason "hard link test"
assert_ne 0 "$RC" "rotate with a staged key that has another hard link is refused"
assert_contains "hard link" "$ERR" "and says why"
assert_eq "$before" "$(cd "$SSL_DIR" && find . | LC_ALL=C sort)" "and changes nothing"
rm "$SSL_DIR/new/server.key"
mv "$T/staged.key" "$SSL_DIR/new/server.key"

echo "victim" >"$T/victim-sym"
echo "victim" >"$T/victim-hard"
ln -sf "$T/victim-sym" "$SSL_DIR/ca-bundle.pem"
assert_exit 0 "rotate (staged key back)" -- ctl rotate --force --reason "planted links"
assert_eq victim "$(cat "$T/victim-sym")" "a symlink planted as ca-bundle.pem: its target is untouched"
if [ -L "$SSL_DIR/ca-bundle.pem" ]; then fail "ca-bundle.pem is a regular file again"; fi
rm -f "$SSL_DIR/ca-bundle.pem"
ln "$T/victim-hard" "$SSL_DIR/ca-bundle.pem" 2>/dev/null || cp "$T/victim-hard" "$SSL_DIR/ca-bundle.pem"
kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "BEGIN CERTIFICATE" "$SSL_DIR/ca-bundle.pem" || fail "the bundle is re-published on SIGHUP"
assert_eq victim "$(cat "$T/victim-hard")" "a hard link planted as ca-bundle.pem: the other name's file is untouched"

mkdir -m 0700 "$T/evil"
cp "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$T/evil/"
ln -s "$T/evil" "$SSL_DIR/certs-20200101-000000"
run ctl restore certs-20200101-000000
assert_ne 0 "$RC" "a symlink named like a backup is not restored from"
rm "$SSL_DIR/certs-20200101-000000"

echo "-- a fresh proxy: no active set"
stop_daemon
rm -f "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$SSL_DIR/.carotate-set"
start_daemon
assert_exit 0 "generate on a fresh proxy" -- ctl generate
FRESH=$(leaf_sha "$SSL_DIR/new/server.crt")
assert_exit 0 "rotate on a fresh proxy needs no gate" -- ctl --json rotate
printf '%s' "$OUT" | jsave "$T/fresh.json"
assert_eq null "$(jget before "$T/fresh.json")" "there was no active set"
assert_eq null "$(jget backup "$T/fresh.json")" "so no backup"
serves_now "$FRESH" "nginx serves the activated set"
assert_daemon_alive
