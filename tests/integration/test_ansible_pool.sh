#!/bin/bash
# timeout: 300
# The pool playbook (packaging/ansible/examples/pool.yml, issue 20 point 7) run for real by
# Debian's ansible-core against two members on one machine (pool.sh: each its own carotated,
# nginx, SSL and state directories and sockets) and a PostgreSQL started by the test (pg.sh).
# The inventory's two hosts are local, their paths under $T.
#
#  - play 1 (--tags ledger): from vaulted variables, the connection string and the pool key as
#    root 0600 files, the [ledger] keys set in each member's carotated.conf (the others kept),
#    checked by carotated --check-config; a member still on SQLite fails the status check
#    and stops the run before the next member; once restarted, a run changes nothing and
#    both statuses show the PostgreSQL ledger, reachable, under the member's name;
#  - plays 2 and 3 (--tags rotate): one custom set copied to and staged on both members;
#    the wait fails while the agents have not acknowledged it, and nothing is rotated; a
#    member whose nginx refuses the set rolls back and the run stops before the other's
#    rotation; run again, that member stages the set anew and the wait holds the run until
#    the agents acknowledged it again; then each member rotates in turn, both nginx serve
#    the new certificate, and the report is the same on both; run again, nothing changes.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "the playbook drives carotatectl through calls that test_pool_ledger, test_install and test_rotate run under ASan"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=pg.sh
. "$(dirname "$0")/pg.sh"
# shellcheck source-path=SCRIPTDIR source=pool.sh
. "$(dirname "$0")/pool.sh"

if ! command -v ansible-playbook >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	"$REPO_ROOT/packaging/install-deps" test >&2 || true
fi
command -v ansible-playbook >/dev/null 2>&1 ||
	t_skip "ansible-core is not installed (make deps installs it, as root)"
[ "$(id -u)" -eq 0 ] || t_skip "the playbook writes root's files (run as root)"
AGENTSIM="$CAROTATE_BUILD/agentsim"
[ -x "$AGENTSIM" ] || fail "$AGENTSIM is missing (make integration builds it)"
PLAYBOOK="$REPO_ROOT/packaging/ansible/examples/pool.yml"
MEMBERS="a b"
SIM_AGENTS=8

t_init
pg_require
nginx_setup

# Ansible keeps everything under $T: no ~/.ansible, no configuration file of the machine.
mkdir -p "$T/ansible/tmp" "$T/ansible/remote"
: >"$T/ansible.cfg"
export ANSIBLE_CONFIG="$T/ansible.cfg" ANSIBLE_HOME="$T/ansible"
export ANSIBLE_LOCAL_TEMP="$T/ansible/tmp" ANSIBLE_REMOTE_TEMP="$T/ansible/remote"
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_RETRY_FILES_ENABLED=False
export ANSIBLE_LIBRARY="$REPO_ROOT/packaging/ansible/library"

echo "-- the playbook parses"
run ansible-playbook --syntax-check -i "a,b," "$PLAYBOOK"
[ "$RC" -eq 0 ] || fail "pool.yml parses and names the module" "$OUT" "$ERR"
ok "pool.yml parses and names the module"

echo "-- two proxies on SQLite, one PostgreSQL"
pg_start
pool_key_write
for m in $MEMBERS; do
	pool_member_init "$m"
	# pool.sh appends [ledger] last: the playbook is to write it. Keep a copy to compare.
	sed -i '/^\[ledger\]$/,$d' "$CONF"
	cp "$CONF" "$T/$m.conf.before"
	pool_save "$m"
done
pool_active_set "$T/ca-old.pem"
OLD=$(leaf_sha "$SSL_DIR/server.crt")
pool_start
for m in $MEMBERS; do
	assert_eq sqlite "$(pool_ctl "$m" --json status | json_get ledger.backend)" "member $m starts on SQLite"
done

# The secrets as an operator keeps them: in the vault.
openssl rand -hex 16 >"$T/vault.pass"
{
	ansible-vault encrypt_string --vault-password-file "$T/vault.pass" \
		--name carotate_ledger_dsn "$PG_DSN"
	echo # it ends without a newline
	ansible-vault encrypt_string --vault-password-file "$T/vault.pass" \
		--name carotate_pool_key "$(cat "$POOL_KEY")"
	echo
} >"$T/vault.yml" 2>"$T/vault.err" || fail "ansible-vault encrypt_string" "$(cat "$T/vault.err")"
grep -qF "$PG_PASSWORD" "$T/vault.yml" && fail "the vault file holds the password in clear"

# inventory [EXTRA_VARS_YAML]: the two members, local, every path under $T.
inventory() {
	local m src
	{
		printf 'carotate_pool:\n  hosts:\n'
		for m in $MEMBERS; do
			src="_POOL_${m}_SOCK"
			printf '    %s:\n' "$m"
			printf '      carotate_conf: %s\n' "$T/$m/carotated.conf"
			printf '      carotate_dsn_file: %s\n' "$T/$m/ledger.dsn"
			printf '      carotate_pool_key_file: %s\n' "$T/$m/pool.key"
			printf '      carotate_socket: %s\n' "${!src}"
			printf '      carotate_set_dest: %s\n' "$T/$m/incoming"
		done
		printf '  vars:\n'
		printf '    ansible_connection: local\n'
		printf '    ansible_python_interpreter: %s\n' "$PY"
		printf '    ansible_become: false\n' # root already, and no sudo needed
		printf '    carotated: %s\n' "$CAROTATED"
		printf '    carotatectl: %s\n' "$CAROTATECTL"
		printf '    carotate_restart: false\n' # no systemd here: the test restarts them
		printf '    carotate_status_retries: 2\n'
		printf '    carotate_status_delay: 1\n'
		printf '    carotate_set_src: %s\n' "$T/newset"
		printf '    carotate_wait_retries: 2\n'
		printf '    carotate_wait_delay: 1\n'
	} >"$T/inventory.yml"
}
inventory

# play TAGS [ARGS...]: ansible-playbook pool.yml --tags TAGS ARGS, output in $T/play-N.out;
# $RC, and the recap line of each member in $T/recap-N (host ok=.. changed=.. failed=..).
N=0
play() {
	local tags=$1
	shift
	N=$((N + 1))
	run ansible-playbook -i "$T/inventory.yml" -e "@$T/vault.yml" \
		--vault-password-file "$T/vault.pass" --tags "$tags" "$@" "$PLAYBOOK"
	printf '%s\n%s\n' "$OUT" "$ERR" >"$T/play-$N.out"
	printf '%s\n' "$OUT" | sed -n '/^PLAY RECAP/,$p' >"$T/recap-$N"
}
# recap M FIELD: a member's count in the last run's recap (absent host: "none").
recap() {
	sed -n "s/^$1 *: .*$2=\([0-9]*\).*/\1/p" "$T/recap-$N" | grep . || echo none
}

# ---------------------------------------------------------------- play 1: the ledger
echo "-- play 1 in check mode: would change both members, writes nothing"
play ledger --check
[ "$RC" -eq 0 ] || fail "play 1 runs in check mode" "$(tail -n 40 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_ne 0 "$(recap "$m" changed)" "member $m: check mode says it would change something"
	assert_eq "$(cat "$T/$m.conf.before")" "$(cat "$T/$m/carotated.conf")" "member $m: carotated.conf unchanged"
	if [ -e "$T/$m/ledger.dsn" ] || [ -e "$T/$m/pool.key" ]; then
		fail "member $m: check mode wrote a file"
	fi
	ok "member $m: no file written"
done

echo "-- play 1: the ledger files and carotated.conf"
play ledger
[ "$RC" -eq 0 ] || fail "play 1 runs" "$(tail -n 40 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_ne 0 "$(recap "$m" changed)" "member $m: play 1 changed something"
	for f in ledger.dsn pool.key; do
		assert_eq "600 root root" "$(stat -c '%a %U %G' "$T/$m/$f")" "member $m: $f is root's, 0600"
	done
	assert_eq "$PG_DSN" "$(cat "$T/$m/ledger.dsn")" "member $m: the connection string from the vault"
	assert_eq "$(cat "$POOL_KEY")" "$(cat "$T/$m/pool.key")" "member $m: the pool's key from the vault"
	sed -n '/^\[ledger\]$/,$p' "$T/$m/carotated.conf" >"$T/$m.ledger"
	assert_eq "[ledger]
backend = postgresql
dsn_file = $T/$m/ledger.dsn
pool_key = $T/$m/pool.key
member = $m" "$(cat "$T/$m.ledger")" "member $m: the [ledger] section"
	assert_eq "$(cat "$T/$m.conf.before")" "$(sed '/^\[ledger\]$/,$d' "$T/$m/carotated.conf")" \
		"member $m: the rest of carotated.conf is kept"
	assert_exit 0 "member $m: carotated --check-config takes it" -- "$CAROTATED" --check-config -c "$T/$m/carotated.conf"
done
if grep -qF "$PG_PASSWORD" "$T/play-$N.out"; then
	fail "the playbook's output shows the database password"
fi
ok "the playbook's output does not show the database password"

echo "-- play 1 again, carotated not restarted: the status check fails on the first member"
play ledger
assert_ne 0 "$RC" "play 1 fails while member a runs on SQLite"
grep -q "'backend': 'sqlite'" "$T/play-$N.out" ||
	fail "the failure shows the ledger status says" "$(tail -n 30 "$T/play-$N.out")"
ok "the failure shows the status's ledger (sqlite)"
assert_eq 1 "$(recap a failed)" "member a failed"
assert_eq 0 "$(recap a changed)" "nothing changed on member a"
assert_eq none "$(recap b failed)" "member b was not reached: serial 1 stops at the first failure"

echo "-- carotated restarted on each member: play 1 changes nothing and checks the status"
for m in $MEMBERS; do
	pool_use "$m"
	stop_daemon
	start_daemon
	pool_save "$m"
done
play ledger
[ "$RC" -eq 0 ] || fail "play 1 passes once both members run on the pool's ledger" "$(tail -n 40 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_eq 0 "$(recap "$m" changed)" "member $m: nothing changed"
	assert_eq 0 "$(recap "$m" failed)" "member $m: the status check passed"
	pool_ctl "$m" --json status | jsave "$T/st-$m.json"
	assert_eq postgresql "$(jget ledger.backend "$T/st-$m.json")" "member $m: status shows the PostgreSQL ledger"
	assert_eq "$m" "$(jget ledger.member "$T/st-$m.json")" "member $m: under its name"
done
assert_contains "ledger: postgresql, member b, reachable" "$(cat "$T/play-$N.out")" "the play says so"

# ---------------------------------------------------------------- plays 2 and 3: a rotation
echo "-- agents link through member a and check in through member b"
SIM_DIR="$T/fleet"
sim() {
	local m=$1
	shift
	run "$AGENTSIM" --dir "$SIM_DIR" --port "$(pool_port "$m")" --canary-port "$(pool_canary_port "$m")" \
		--server-name "$NGINX_SERVER_NAME" --agents "$SIM_AGENTS" --initial-ca "$T/ca-old.pem" \
		--concurrency 4 --report --expect-all-ok "$@"
	[ "$RC" -eq 0 ] || fail "agentsim through member $m ($*)" "exit $RC" "$ERR" "$OUT"
}
sim a --link --linking-key "$LINKING_KEY" --rounds 1
sim b --rounds 1
make_cert_set "$T/newset" pool-new
NEW=$(leaf_sha "$T/newset/server.crt")

echo "-- plays 2 and 3 before the agents acknowledged: staged on both, the wait fails, nothing rotated"
play rotate
assert_ne 0 "$RC" "the rotation stops while the agents have not acknowledged the new CA"
assert_contains "below min_percent 100" "$(cat "$T/play-$N.out")" "the wait says why"
for m in $MEMBERS; do
	assert_eq "0600" "$(stat -c '%04a' "$T/$m/incoming/server.key")" "member $m: the key copied root 0600"
	pool_ctl "$m" --json status | jsave "$T/st-$m.json"
	assert_eq staged "$(jget phase "$T/st-$m.json")" "member $m: the set is staged"
	assert_eq "$(cert_sha256 "$T/newset/ca.crt")" "$(jget staged.ca.sha256 "$T/st-$m.json")" \
		"member $m: the staged CA is the set's"
	pool_use "$m"
	assert_eq "$OLD" "$(served)" "member $m: nginx still serves the old certificate"
done
grep -q "Rotate (carotated" "$T/play-$N.out" && fail "no member was rotated" "$(cat "$T/play-$N.out")"
ok "the rotation play did not start"

echo "-- the agents fetch the new bundle through member b and acknowledge it through member a"
sim b --rounds 1
sim a --rounds 1
for m in $MEMBERS; do
	assert_eq 100 "$(pool_ctl "$m" --json report | json_get percent)" "member $m reports 100 %"
done

echo "-- member a's nginx refuses the set: its rotation rolls back and the run stops there"
pool_use a
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/wrong.key" 2>/dev/null
cp "$T/wrong.key" "$SSL_DIR/new/server.key"
chmod 0600 "$SSL_DIR/new/server.key"
play rotate
assert_ne 0 "$RC" "the run fails"
assert_contains "rotate rolled back" "$(cat "$T/play-$N.out")" "member a's rotation rolled back"
assert_eq 1 "$(recap a failed)" "member a failed"
assert_eq 0 "$(recap b failed)" "member b did not fail"
sed -n '/^TASK \[Rotate/,/^TASK\|^PLAY/p' "$T/play-$N.out" | grep -q '\[b\]' &&
	fail "member b's rotation did not run" "$(cat "$T/play-$N.out")"
ok "member b's rotation did not run: serial 1 stops at the first failure"
pool_use a
assert_eq "$OLD" "$(served)" "member a: nginx serves the old certificate again"
pool_use b
assert_eq "$OLD" "$(served)" "member b: nginx still serves the old certificate"
assert_eq staged "$(pool_ctl b --json status | json_get phase)" "member b: the set is still staged"
t_log "reports after the roll back: a: $(pool_ctl a --json report | json_get percent) %, b: $(pool_ctl b --json report | json_get percent) %"

echo "-- plays 2 and 3 again: member a stages the set again, a new staging the agents have not acknowledged"
play rotate
assert_ne 0 "$RC" "the run stops at the wait"
assert_contains "below min_percent 100" "$(cat "$T/play-$N.out")" "the wait says why"
assert_eq 1 "$(recap a changed)" "member a staged the set again (one change)"
assert_eq 0 "$(recap b changed)" "member b: nothing changed"
assert_eq staged "$(pool_ctl a --json status | json_get phase)" "member a: the set is staged again"
pool_use b
assert_eq "$OLD" "$(served)" "member b: nginx still serves the old certificate"
# Member b kept the set staged: it counts the new staging member a opened, with no reload.
same_percent() { [ "$(pool_ctl a --json report | json_get percent)" = "$(pool_ctl b --json report | json_get percent)" ]; }
same_percent || fail "members a and b report the same after a staged the set again" \
	"a: $(pool_ctl a --json report | json_get percent) %, b: $(pool_ctl b --json report | json_get percent) %"
ok "members a and b report the same percentage, with no reload"
# Delivered through b, acknowledged through a (twice: the first round may only deliver).
sim b --rounds 1
sim a --rounds 1
sim b --rounds 1
sim a --rounds 1
for m in $MEMBERS; do
	assert_eq 100 "$(pool_ctl "$m" --json report | json_get percent)" "member $m reports 100 %"
done

echo "-- plays 2 and 3: the wait passes, each member rotates in turn"
play rotate
[ "$RC" -eq 0 ] || fail "the rotation runs" "$(tail -n 60 "$T/play-$N.out")"
# Staging found the set staged: only the rotation changed something, once per member.
for m in $MEMBERS; do
	assert_eq 1 "$(recap "$m" changed)" "member $m: one change, its rotation"
	pool_use "$m"
	serves_now "$NEW" "member $m: nginx serves the new certificate"
	assert_eq steady "$(pool_ctl "$m" --json status | json_get phase)" "member $m: nothing is staged"
done
grep -n "TASK \[Rotate\|^changed: \[" "$T/play-$N.out" | grep -A1 "Rotate" | grep -o 'changed: \[[ab]\]' |
	tr -d '\n' >"$T/order"
assert_eq "changed: [a]changed: [b]" "$(cat "$T/order")" "member a rotated, then member b"
counts() {
	pool_ctl "$1" --json report | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join("%s=%s" % (k, r.get(k)) for k in
      ("linked", "active", "acknowledged", "verified", "pending", "excluded", "percent", "staged_ca")))'
}
RA=$(counts a)
assert_eq "$RA" "$(counts b)" "the report is the same on both members ($RA)"
assert_contains "linked=$SIM_AGENTS " "$RA" "and counts the pool's agents"
for m in $MEMBERS; do
	assert_exit 0 "member $m: curl with the new CA connects" -- curl -sS -o /dev/null --max-time 10 \
		--cacert "$T/newset/ca.crt" --resolve "$NGINX_SERVER_NAME:$(pool_port "$m"):127.0.0.1" \
		"https://$NGINX_SERVER_NAME:$(pool_port "$m")/"
done

echo "-- plays 2 and 3 again: nothing to do, nor in check mode"
play rotate
[ "$RC" -eq 0 ] || fail "the rotation runs again" "$(tail -n 60 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_eq 0 "$(recap "$m" changed)" "member $m: nothing changed"
	pool_use "$m"
	assert_eq "$NEW" "$(served)" "member $m: nginx still serves the new certificate"
done
play ledger,rotate --check
[ "$RC" -eq 0 ] || fail "every play runs in check mode" "$(tail -n 60 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_eq 0 "$(recap "$m" changed)" "member $m: check mode, nothing would change"
done
for m in $MEMBERS; do
	assert_exit 0 "member $m: the pool's audit chain verifies" -- pool_ctl "$m" audit --verify
done
