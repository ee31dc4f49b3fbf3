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
#  - plays 2 and 3 (--tags rotate), every change made once, on member a, for the pool: in
#    check mode nothing is copied, staged or published; the set is copied to member a only
#    and staged once, which stages it on both members (one generation); the wait fails while
#    the agents have not acknowledged it, and nothing is rotated; member b's nginx pinned to
#    the old files makes the rotation fail naming b, and the pool rolls back: both members
#    serve the old certificate, the new one staged; once b is fixed and the agents
#    acknowledged, one run rotates the pool: both nginx serve the new certificate (curl with
#    the new CA connects to both), both show one pool_state (one generation more, rotate on
#    a) applied well by each member, and the same report; run again, or in check mode,
#    nothing changes, and the pool's audit chain verifies on both.
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
# pool_state M: member M's status --json as one line, "generation ACTIVE STAGED CALL MEMBER"
# (STAGED "-" when empty), then " | NAME APPLIED_GENERATION APPLIED_OK" for each pool row.
pool_state() {
	pool_ctl "$1" --json status | "$PY" -c '
import json, sys
st = json.load(sys.stdin)
ps = st.get("pool_state") or {}
out = "%s %s %s %s %s" % (ps.get("generation"), ps.get("active"), ps.get("staged") or "-",
                          ps.get("call"), ps.get("member"))
for r in sorted(st.get("pool") or [], key=lambda r: r.get("member")):
    out += " | %s %s %s" % (r.get("member"), r.get("applied_generation"), r.get("applied_ok"))
print(out)'
}
# pool_same WHAT: both members show one pool_state, every row at its generation and applied
# well; POOL_GEN is that generation.
POOL_GEN=""
pool_same() {
	local sa sb
	sa=$(pool_state a)
	sb=$(pool_state b)
	assert_eq "$sa" "$sb" "$1: members a and b show the same pool_state"
	POOL_GEN=${sa%% *}
	assert_eq "| a $POOL_GEN True | b $POOL_GEN True" "${sa#* * * * * }" \
		"$1: each member applied generation $POOL_GEN well"
}
# snapshots NAME: both members' SSL and state directories in $T/NAME-M.snap.
snapshots() {
	local m
	for m in $MEMBERS; do
		{ snapshot_dir "$T/$m/ssl" && echo "--- state" && snapshot_dir "$T/$m/state"; } >"$T/$1-$m.snap"
	done
}

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
GEN0=$(pool_state a)
GEN0=${GEN0%% *}

echo "-- plays 2 and 3 in check mode: nothing written"
snapshots before
play rotate --check
[ "$RC" -eq 0 ] || fail "plays 2 and 3 run in check mode" "$(tail -n 40 "$T/play-$N.out")"
assert_ne 0 "$(recap a changed)" "member a: check mode says it would copy the set"
for m in $MEMBERS; do
	snapshots after
	cmp -s "$T/before-$m.snap" "$T/after-$m.snap" ||
		fail "member $m: check mode leaves its SSL and state directories as they were" \
			"$(diff "$T/before-$m.snap" "$T/after-$m.snap" | head -n 20)"
	ok "member $m: SSL and state directories unchanged"
	[ ! -e "$T/$m/incoming" ] || fail "member $m: check mode copied nothing" "$(ls -la "$T/$m/incoming")"
	ok "member $m: nothing copied"
done
for m in $MEMBERS; do
	assert_eq "$GEN0" "$(pool_state "$m" | cut -d' ' -f1)" "member $m: check mode published no generation"
done

echo "-- before the agents acknowledged: staged once for the pool, the wait fails, nothing rotated"
play rotate
assert_ne 0 "$RC" "the rotation stops while the agents have not acknowledged the new CA"
assert_contains "below min_percent 100" "$(cat "$T/play-$N.out")" "the wait says why"
assert_eq "0600" "$(stat -c '%04a' "$T/a/incoming/server.key")" "member a: the key copied root 0600"
[ ! -e "$T/b/incoming" ] || fail "the set is copied to member a only" "$(ls -la "$T/b/incoming")"
ok "the set is copied to member a only"
assert_eq none "$(recap b changed)" "member b ran no task: one member answers for the pool"
for m in $MEMBERS; do
	pool_ctl "$m" --json status | jsave "$T/st-$m.json"
	assert_eq staged "$(jget phase "$T/st-$m.json")" "member $m: the set is staged"
	assert_eq "$(cert_sha256 "$T/newset/ca.crt")" "$(jget staged.ca.sha256 "$T/st-$m.json")" \
		"member $m: the staged CA is the set's"
	pool_use "$m"
	assert_eq "$OLD" "$(served)" "member $m: nginx still serves the old certificate"
done
pool_same "staged"
assert_eq $((GEN0 + 1)) "$POOL_GEN" "one generation published: the set staged once"
assert_contains " $OLD $NEW install a |" "$(pool_state a)" "pool_state: install on member a staged the new leaf"
grep -q "TASK \[Rotate" "$T/play-$N.out" && fail "nothing was rotated" "$(cat "$T/play-$N.out")"
ok "the rotation play did not start"

echo "-- the agents fetch the new bundle through member b and acknowledge it through member a"
sim b --rounds 1
sim a --rounds 1
for m in $MEMBERS; do
	assert_eq 100 "$(pool_ctl "$m" --json report | json_get percent)" "member $m reports 100 %"
done

echo "-- member b's nginx cannot serve the set: the pool rolls back, both serve the old certificate"
# b's server block reads copies of the files it serves now: its reload works, its TLS check
# sees the old leaf.
pool_pin_nginx b
play rotate
assert_ne 0 "$RC" "the run fails"
assert_contains "rotate rolled back" "$(cat "$T/play-$N.out")" "the rotation rolled back"
assert_contains "member b failed" "$(sed -n '/^TASK \[Rotate/,/^PLAY RECAP/p' "$T/play-$N.out")" \
	"the rotation's failure names member b"
for m in $MEMBERS; do
	pool_use "$m"
	assert_eq "$OLD" "$(served)" "member $m: nginx serves the old certificate"
done
pool_same "rolled back"
assert_contains " $OLD $NEW rollback a |" "$(pool_state a)" "pool_state: the old leaf active, the new one staged"
t_log "report after the roll back: $(pool_ctl a --json report | json_get percent) %"

echo "-- member b's nginx fixed, the agents check in again: one run rotates the pool"
pool_unpin_nginx b
# The roll back staged the set anew, a new count: delivered through b, acknowledged through a
# (twice: the first round may only deliver).
sim b --rounds 1
sim a --rounds 1
sim b --rounds 1
sim a --rounds 1
for m in $MEMBERS; do
	assert_eq 100 "$(pool_ctl "$m" --json report | json_get percent)" "member $m reports 100 %"
done
GEN1=$POOL_GEN
play rotate
[ "$RC" -eq 0 ] || fail "the rotation runs" "$(tail -n 60 "$T/play-$N.out")"
# The set is staged already: only the rotation changed something.
assert_eq 1 "$(recap a changed)" "one change, the rotation, on member a"
assert_eq none "$(recap b changed)" "member b ran no task"
for m in $MEMBERS; do
	pool_use "$m"
	serves_now "$NEW" "member $m: nginx serves the new certificate"
	assert_eq steady "$(pool_ctl "$m" --json status | json_get phase)" "member $m: nothing is staged"
	assert_exit 0 "member $m: curl with the new CA connects" -- curl -sS -o /dev/null --max-time 10 \
		--cacert "$T/newset/ca.crt" --resolve "$NGINX_SERVER_NAME:$(pool_port "$m"):127.0.0.1" \
		"https://$NGINX_SERVER_NAME:$(pool_port "$m")/"
done
pool_same "rotated"
assert_eq $((GEN1 + 1)) "$POOL_GEN" "one generation published: the pool rotated once"
RA=$(pool_counts a)
assert_eq "$RA" "$(pool_counts b)" "the report is the same on both members ($RA)"
assert_contains "linked=$SIM_AGENTS " "$RA" "and counts the pool's agents"

echo "-- plays 2 and 3 again: nothing to do, nor in check mode"
snapshots rotated
play rotate
[ "$RC" -eq 0 ] || fail "the rotation runs again" "$(tail -n 60 "$T/play-$N.out")"
assert_eq 0 "$(recap a changed)" "nothing changed"
play ledger,rotate --check
[ "$RC" -eq 0 ] || fail "every play runs in check mode" "$(tail -n 60 "$T/play-$N.out")"
for m in $MEMBERS; do
	assert_eq 0 "$(recap "$m" changed)" "member $m: check mode, nothing would change"
	pool_use "$m"
	assert_eq "$NEW" "$(served)" "member $m: nginx still serves the new certificate"
	assert_eq "$POOL_GEN" "$(pool_state "$m" | cut -d' ' -f1)" "member $m: no generation published"
	snapshots again
	cmp -s "$T/rotated-$m.snap" "$T/again-$m.snap" ||
		fail "member $m: the SSL and state directories are as the rotation left them" \
			"$(diff "$T/rotated-$m.snap" "$T/again-$m.snap" | head -n 20)"
	ok "member $m: SSL and state directories unchanged"
	assert_exit 0 "member $m: the pool's audit chain verifies" -- pool_ctl "$m" audit --verify
done
