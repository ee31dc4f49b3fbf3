#!/bin/bash
# The Ansible module (packaging/ansible/library/carotate.py) run for real by Debian's
# ansible-core (`ansible localhost -m carotate`) against a sandbox daemon and real nginx
# (issue 6): every state, its idempotence, check mode leaving the disk untouched, the gate's
# refusal, and inputs refused before carotatectl is called. The example playbooks parse
# (rotate.yml; enroll-agents.yml, issue 16, with what it must do). state=renewed (renew,
# check mode its dry run, changed only when a new leaf went live, not when not due or rolled
# back) and state=checked (WARNING succeeds, CRITICAL fails), issue 18.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "the Ansible module drives carotatectl through calls that test_generate, test_install, test_rotate, test_renew and test_check run under ASan"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

if ! command -v ansible >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	"$REPO_ROOT/packaging/install-deps" test >&2 || true
fi
command -v ansible >/dev/null 2>&1 ||
	t_skip "ansible-core is not installed (make deps installs it, as root)"
LIB="$REPO_ROOT/packaging/ansible/library"

t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start

# Ansible keeps everything under $T: no ~/.ansible, no configuration file of the machine.
mkdir -p "$T/ansible/tmp" "$T/ansible/remote"
: >"$T/ansible.cfg"
export ANSIBLE_CONFIG="$T/ansible.cfg" ANSIBLE_HOME="$T/ansible"
export ANSIBLE_LOCAL_TEMP="$T/ansible/tmp" ANSIBLE_REMOTE_TEMP="$T/ansible/remote"
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False
export ANSIBLE_NOCOLOR=1 ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_RETRY_FILES_ENABLED=False

# ans [-C] KEY=VALUE...: one ad-hoc run of the module (-C: check mode), one line of output
# ("localhost | CHANGED => {...}"). Sets $ASTATE (SUCCESS, CHANGED or FAILED!) and saves
# the JSON in $T/a.json for jget. Every run names the sandbox's carotatectl and socket.
N=0
ans() {
	local check=()
	if [ "$1" = -C ]; then
		check=(-C)
		shift
	fi
	N=$((N + 1))
	run ansible localhost -i localhost, -c local -o "${check[@]}" \
		-e ansible_python_interpreter="$PY" -M "$LIB" -m carotate \
		-a "carotatectl=$CAROTATECTL socket=$SOCK $*"
	printf '%s\n%s\n' "$OUT" "$ERR" >"$T/ansible-$N.out"
	local line
	line=$(printf '%s\n' "$OUT" | grep -m1 '^localhost | ' || true)
	[ -n "$line" ] || fail "ansible printed no result line (run $N: $*)" "stdout: $OUT" "stderr: $ERR"
	ASTATE=$(printf '%s' "$line" | sed 's/^localhost | \([A-Z!]*\).*/\1/')
	printf '%s' "${line#* => }" | jsave "$T/a.json"
	case "$ASTATE" in
	FAILED!) [ "$RC" -ne 0 ] || fail "a failed task exits non-zero" ;;
	SUCCESS | CHANGED) [ "$RC" -eq 0 ] || fail "a task that succeeded exits 0 (run $N)" "$line" ;;
	*) fail "unexpected ansible state '$ASTATE' (run $N)" "$line" ;;
	esac
}
# mod JSON: the same module run by python directly (AnsibleModule reads its arguments from a
# file), for inputs that need no playbook machinery: a tenth of ansible's start-up time. Sets
# $ASTATE as ans does. JSON holds the task's arguments ("_ansible_check_mode": true for -C).
mod() {
	N=$((N + 1))
	"$PY" -c '
import json, sys
args = json.loads(sys.argv[1])
args.setdefault("carotatectl", sys.argv[2])
args.setdefault("socket", sys.argv[3])
json.dump({"ANSIBLE_MODULE_ARGS": args}, open(sys.argv[4], "w"))' "$1" "$CAROTATECTL" "$SOCK" "$T/args.json"
	run "$PY" "$LIB/carotate.py" "$T/args.json"
	printf '%s\n%s\n' "$OUT" "$ERR" >"$T/module-$N.out"
	printf '%s' "$OUT" | jsave "$T/a.json"
	ASTATE=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("FAILED!" if d.get("failed") else "CHANGED" if d.get("changed") else "SUCCESS")' "$T/a.json")
	case "$ASTATE" in
	FAILED!) [ "$RC" -ne 0 ] || fail "a failed module exits non-zero (run $N)" ;;
	*) [ "$RC" -eq 0 ] || fail "a module that succeeded exits 0 (run $N)" "$OUT" ;;
	esac
}
a() { jget "$1" "$T/a.json"; }
# The SSL and state directories as they are on disk: names, then each file's sum.
disk() {
	(cd "$SSL_DIR" && find . | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort)
	(cd "$STATE_DIR" && find . -path ./ledger.db\* -prune -o -print | LC_ALL=C sort)
}
audit_total() { ctl --json audit --limit 1 | json_get total; }

echo "-- the module's documentation"
run ansible-doc -M "$LIB" carotate
assert_eq 0 "$RC" "ansible-doc reads the module's documentation"
assert_contains "staged" "$OUT" "it lists the states"
run env ANSIBLE_LIBRARY="$LIB" ansible-playbook --syntax-check -i localhost, \
	"$REPO_ROOT/packaging/ansible/examples/rotate.yml"
[ "$RC" -eq 0 ] || fail "the example playbook parses and names the module" "$OUT" "$ERR"
ok "the example playbook parses and names the module"
# The enrolment example (issue 16): it parses, and it does what README says: install the
# package, a join token on the proxy for the hosts not linked yet, the CA pin, link once,
# the timer.
run ansible-playbook --syntax-check -i "agent1,agent2," \
	"$REPO_ROOT/packaging/ansible/examples/enroll-agents.yml"
[ "$RC" -eq 0 ] || fail "enroll-agents.yml parses" "$OUT" "$ERR"
ok "enroll-agents.yml parses"
ENROLL="$REPO_ROOT/packaging/ansible/examples/enroll-agents.yml"
for want in "name: \"{{ carotate_agent_package }}\"" "- join-token" "- --uses" "- --ttl" \
	'delegate_to: "{{ carotate_proxy }}"' "-outform DER | sha256sum" "- --ca-pin" \
	"- --join-token-file" 'creates: "{{ carotate_agent_state_dir }}/token"' \
	"name: carotate-agent.timer" "enabled: true" "dest: /etc/carotate-agent/agent.conf"; do
	assert_file_contains "$want" "$ENROLL" "enroll-agents.yml: $want"
done

OLD=$(leaf_sha "$SSL_DIR/server.crt")

echo "-- state=staged: generate, then nothing to do"
ans state=staged key_type=ec-p256 name=ansible
assert_eq CHANGED "$ASTATE" "staged: generated (changed)"
assert_eq staged "$(a phase)" "phase staged"
assert_eq "$(cert_sha256 "$SSL_DIR/new/ca.crt")" "$(a staged.ca.sha256)" "the staged CA is returned"
assert_eq 0 "$(a rc)" "rc 0"
assert_match '^CN=ansible CA ' "$(a staged.ca.subject)" "generate got name="
STAGED_CA=$(a staged.ca.sha256)
STAGED=$(leaf_sha "$SSL_DIR/new/server.crt")
ans state=staged key_type=ec-p256 name=ansible
assert_eq SUCCESS "$ASTATE" "staged again: nothing to do"
assert_eq false "$(a changed)" "changed false"
assert_eq "$STAGED_CA" "$(a staged.ca.sha256)" "the same staged set is returned"
assert_eq "$STAGED_CA" "$(cert_sha256 "$SSL_DIR/new/ca.crt")" "and it is still the one on disk"

echo "-- state=reported"
ans state=reported min_percent=100
assert_eq FAILED! "$ASTATE" "reported below min_percent fails"
assert_contains "0 % of active agents acknowledged the staged CA, below min_percent 100" \
	"$(a msg)" "the message gives the numbers"
assert_eq 0 "$(a report.active)" "the report is returned (no active agent)"
assert_eq false "$(a changed)" "reported never changes anything"
assert_eq failed_precondition "$(a status)" "status failed_precondition"
ans state=reported min_percent=0 active_within=1d
assert_eq SUCCESS "$ASTATE" "reported with min_percent 0 passes"
assert_eq false "$(a changed)" "changed false"
assert_eq 0 "$(a percent)" "percent 0"
assert_eq 86400 "$(a report.active_within)" "active_within reaches report"
assert_eq "$STAGED_CA" "$(a report.staged_ca)" "the report is about the staged CA"
mod '{"state": "reported", "min_percent": 50, "verified": true}'
assert_eq FAILED! "$ASTATE" "reported verified below min_percent fails"
assert_contains "verified the staged CA" "$(a msg)" "and says verified"

echo "-- state=rotated: the gate, check mode, force without reason"
BEFORE=$(disk)
AUDIT=$(audit_total)
ans -C state=rotated
assert_eq FAILED! "$ASTATE" "check mode: the gate refuses (no agent checked in)"
assert_eq failed_precondition "$(a status)" "status failed_precondition"
assert_eq 3 "$(a rc)" "rc 3"
assert_contains "refused by the gate" "$(a msg)" "the message says the gate refused"
assert_contains "no agent has checked in" "$(a msg)" "and why"
assert_eq 0 "$(a gate.active)" "the gate's figures are returned"
ans state=rotated
assert_eq FAILED! "$ASTATE" "rotate without force is refused by the gate"
assert_eq false "$(a changed)" "nothing changed"
assert_eq "$BEFORE" "$(disk)" "the SSL and state directories are unchanged"
AUDIT=$(audit_total)
ans state=rotated force=true
assert_eq FAILED! "$ASTATE" "force without reason fails"
assert_contains "reason" "$(a msg)" "and says a reason is needed"
mod '{"state": "rotated", "force": true, "reason": "bad\ttab"}'
assert_eq FAILED! "$ASTATE" "a reason that is not printable fails"
assert_contains "not printable ASCII" "$(a msg)" "and says why"
assert_eq "$AUDIT" "$(audit_total)" "neither reached the daemon (no audit record)"
ans -C state=rotated force=true "reason='no agents in the sandbox'"
assert_eq CHANGED "$ASTATE" "check mode, forced: would rotate (changed)"
assert_eq true "$(a result.dry_run)" "it ran rotate --dry-run"
assert_eq staged "$(a phase)" "still staged"
assert_eq "$BEFORE" "$(disk)" "check mode changed nothing on disk"
assert_eq "$OLD" "$(served)" "nginx still serves the active certificate"

echo "-- state=rotated, forced"
ans state=rotated force=true "reason='no agents in the sandbox'"
assert_eq CHANGED "$ASTATE" "rotated (changed)"
assert_eq steady "$(a phase)" "phase steady"
B1=$(a backup)
assert_match '^certs-[0-9]{8}-[0-9]{6}(-[0-9]+)?$' "$B1" "the backup is returned"
assert_eq true "$(a result.forced)" "the reply says forced"
serves_now "$STAGED" "nginx serves the new certificate"
assert_file_contains "reason=no agents in the sandbox" "$SSL_DIR/$B1/.manifest" "the reason is in the manifest"
ans state=rotated force=true "reason='no agents in the sandbox'"
assert_eq SUCCESS "$ASTATE" "rotated again: nothing to do"
assert_eq false "$(a changed)" "changed false"
assert_eq steady "$(a phase)" "phase steady"
ans state=rotated require_staged=true
assert_eq FAILED! "$ASTATE" "require_staged with nothing staged fails"
assert_contains "nothing is staged" "$(a msg)" "and says so"

echo "-- state=restored"
ans state=restored backup=../etc
assert_eq FAILED! "$ASTATE" "an invalid backup id fails"
assert_contains "not a backup id" "$(a msg)" "with a clear message"
assert_eq invalid_argument "$(a status)" "status invalid_argument"
ans state=restored backup=certs-20000101-000000
assert_eq FAILED! "$ASTATE" "a backup that does not exist fails"
assert_contains "no backup certs-20000101-000000" "$(a msg)" "and says so"
mod '{"state": "restored"}'
assert_eq FAILED! "$ASTATE" "restored without backup or latest fails"
BEFORE=$(disk)
ans -C state=restored latest=true
assert_eq CHANGED "$ASTATE" "check mode: would restore"
assert_eq true "$(a result.dry_run)" "it ran restore --dry-run"
assert_eq "$B1" "$(a backup)" "latest is the rotation's backup"
assert_eq "$BEFORE" "$(disk)" "check mode changed nothing on disk"
ans state=restored latest=true
assert_eq CHANGED "$ASTATE" "restored latest (changed)"
assert_eq "$B1" "$(a backup)" "from the rotation's backup"
assert_eq "$B1" "$(a result.restored)" "carotatectl restored it"
B2=$(a kept_as)
assert_ne "$B1" "$B2" "the set it replaced is kept in a new backup"
serves_now "$OLD" "nginx serves the old certificate again"
ans state=restored "backup=$B1"
assert_eq SUCCESS "$ASTATE" "restored the same backup: nothing to do"
assert_eq false "$(a changed)" "changed false"
ans state=restored latest=true
assert_eq SUCCESS "$ASTATE" "restored latest again: nothing to do (no swinging back)"
assert_eq "$B1" "$(a backup)" "latest is still the rotation's backup"
ans state=restored "backup=$B2"
assert_eq CHANGED "$ASTATE" "restoring the backup the restore made goes forward again"
serves_now "$STAGED" "nginx serves the rotated certificate"

echo "-- state=staged: check mode"
BEFORE=$(disk)
mod '{"state": "staged", "_ansible_check_mode": true}'
assert_eq CHANGED "$ASTATE" "check mode, nothing staged: would generate (changed)"
assert_eq steady "$(a phase)" "still steady"
assert_eq "$BEFORE" "$(disk)" "check mode changed nothing on disk"

echo "-- state=staged: install"
make_cert_set "$T/custom" custom
make_cert_set "$T/other" other
ans state=staged "ca=$T/custom/ca.crt" "cert=$T/custom/server.crt" "key=$T/custom/server.key"
assert_eq CHANGED "$ASTATE" "staged: installed (changed)"
assert_eq "$(cert_sha256 "$T/custom/ca.crt")" "$(a staged.ca.sha256)" "the custom CA is staged"
ans state=staged "ca=$T/custom/ca.crt" "cert=$T/custom/server.crt" "key=$T/custom/server.key"
assert_eq SUCCESS "$ASTATE" "the same files again: nothing to do"
ans state=staged "ca=$T/other/ca.crt" "cert=$T/other/server.crt" "key=$T/other/server.key"
assert_eq FAILED! "$ASTATE" "another set is staged than the one asked for: fails"
assert_contains "another set is staged" "$(a msg)" "and says so"
# Issue 15, item 13. Reproduction: a new leaf and key under the staged CA reported "a set
# is already staged", and the old leaf stayed staged. The leaf's sha256 is compared too.
pki_make_server "$T/custom-leaf2" "$PKI_DIR/custom" proxy.test "DNS:proxy.test,IP:127.0.0.1"
ans state=staged "ca=$T/custom/ca.crt" "cert=$T/custom-leaf2/server.crt" "key=$T/custom-leaf2/server.key"
assert_eq FAILED! "$ASTATE" "a new leaf under the staged CA is another set: fails"
assert_contains "another set is staged (server certificate sha256 $(cert_sha256 "$T/custom/server.crt")" \
	"$(a msg)" "and names the staged leaf"
assert_eq "$(cert_sha256 "$T/custom/server.crt")" "$(cert_sha256 "$SSL_DIR/new/server.crt")" \
	"the staged leaf is unchanged"
mod "{\"state\": \"staged\", \"key_type\": \"ec-p384\", \"ca\": \"$T/custom/ca.crt\", \"cert\": \"$T/custom/server.crt\", \"key\": \"$T/custom/server.key\"}"
assert_eq FAILED! "$ASTATE" "generate and install options together fail"
assert_contains "mutually exclusive" "$(a msg)" "and says so"

echo "-- state=rotated: nginx refuses the staged set, the daemon rolls back"
GOOD=$(served)
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/wrong.key" 2>/dev/null
cp "$T/wrong.key" "$SSL_DIR/new/server.key"
chmod 0600 "$SSL_DIR/new/server.key"
ans state=rotated force=true "reason='rollback test'"
assert_eq FAILED! "$ASTATE" "a rotation the proxy does not take fails"
assert_eq true "$(a rolled_back)" "rolled_back true"
assert_eq 6 "$(a rc)" "rc 6"
assert_contains "rolled back" "$(a msg)" "the message says it rolled back"
assert_eq true "$(a changed)" "changed: the staged set went into a backup of its own"
assert_eq steady "$(a phase)" "phase steady"
assert_eq "$GOOD" "$(served)" "nginx still serves the previous certificate"
# The failed set's backup is labelled rollback: latest=true must not put it back.
ctl --json backups | jsave "$T/bk.json"
RBK=$(jget backups.0.id "$T/bk.json")
assert_eq rollback "$(jget backups.0.reason "$T/bk.json")" "the failed set's backup is labelled rollback"
ans state=restored latest=true
assert_ne FAILED! "$ASTATE" "state=restored latest=true after the roll back succeeds"
assert_ne "$RBK" "$(a backup)" "and does not pick the rollback backup"
assert_eq "$GOOD" "$(served)" "nginx serves the set that was live before the failed rotate"

echo "-- state=checked and state=renewed (issue 18)"
# Before, the module had neither: choices were staged, reported, rotated, restored, and a
# playbook could not renew the server certificate or fail on carotatectl check's verdict.
ans state=checked
assert_eq SUCCESS "$ASTATE" "checked: a WARNING succeeds ($(a msg))"
assert_eq WARNING "$(a check.state)" "the check JSON is returned: WARNING"
assert_contains "was rolled back" "$(a msg)" "the last rotate was rolled back"
assert_contains "CAROTATE WARNING - " "$(a warnings.0)" "ansible shows the warning"
assert_eq false "$(a changed)" "checked never changes anything"
BEFORE=$(disk)
AUDIT=$(audit_total)
mod '{"state": "renewed", "cert": "/nonexistent"}'
assert_eq FAILED! "$ASTATE" "renewed: cert without key fails"
assert_contains "required together: cert, key" "$(a msg)" "and says so"
mod '{"state": "renewed", "key_type": "ec-p384"}'
assert_eq FAILED! "$ASTATE" "renewed: key_type fails (renew keeps the key type)"
assert_contains "not used by state=renewed" "$(a msg)" "and says so"
mod "{\"state\": \"renewed\", \"server_days\": 30, \"cert\": \"$T/other/server.crt\", \"key\": \"$T/other/server.key\"}"
assert_eq FAILED! "$ASTATE" "renewed: server_days with cert fails"
mod '{"state": "renewed", "if_expires_within": "30 days"}'
assert_eq FAILED! "$ASTATE" "renewed: a malformed if_expires_within fails"
mod '{"state": "staged", "if_expires_within": "30d"}'
assert_eq FAILED! "$ASTATE" "if_expires_within with another state fails"
assert_eq "$AUDIT" "$(audit_total)" "none reached the daemon (no audit record)"
ans state=renewed if_expires_within=30d
assert_eq SUCCESS "$ASTATE" "renewed, not due: nothing to do"
assert_eq true "$(a not_due)" "not_due true"
assert_eq false "$(a changed)" "changed false"
assert_contains "not due" "$(a msg)" "the message says it is not due"
ans -C state=renewed server_days=10
assert_eq CHANGED "$ASTATE" "check mode: would renew (changed)"
assert_eq true "$(a result.dry_run)" "it ran renew --dry-run"
assert_match '^[0-9a-f]{64}$' "$(a server.sha256)" "the leaf that would be made is returned"
assert_eq "$BEFORE" "$(disk)" "check mode changed nothing on disk"
ans state=renewed "cert=$T/other/server.crt" "key=$T/other/server.key"
assert_eq FAILED! "$ASTATE" "renewed with a leaf of another CA fails"
assert_eq 5 "$(a rc)" "rc 5"
assert_eq false "$(a changed)" "changed false"
assert_eq "$BEFORE" "$(disk)" "the refused leaf changed nothing on disk"
CA_NOW=$(cert_sha256 "$SSL_DIR/ca.crt")
ans state=renewed server_days=10
assert_eq CHANGED "$ASTATE" "renewed (changed)"
RENEWED=$(a server.sha256)
assert_eq "$RENEWED" "$(cert_sha256 "$SSL_DIR/server.crt")" "the new leaf is returned"
serves_now "$(leaf_sha "$SSL_DIR/server.crt")" "nginx serves the renewed certificate"
assert_eq "$CA_NOW" "$(cert_sha256 "$SSL_DIR/ca.crt")" "under the same CA"
ans state=checked
assert_eq SUCCESS "$ASTATE" "checked: WARNING with 10 days left succeeds"
assert_eq WARNING "$(a check.state)" "the check says WARNING"
ans state=renewed server_days=5
assert_eq CHANGED "$ASTATE" "renewed to 5 days"
ans state=checked
assert_eq FAILED! "$ASTATE" "checked: CRITICAL with 5 days left fails"
assert_eq CRITICAL "$(a check.state)" "the check says CRITICAL"
assert_eq 2 "$(a rc)" "rc 2"
assert_contains "CAROTATE CRITICAL - " "$(a msg)" "the message is the check's line"
ans state=renewed if_expires_within=30d
assert_eq CHANGED "$ASTATE" "renewed when due (changed)"
ans state=checked
assert_eq SUCCESS "$ASTATE" "checked: OK again"
assert_eq OK "$(a check.state)" "the check says OK"
# Roll back: the proxy keeps serving the old leaf. Nothing went live, so nothing changed.
GOOD=$(served)
sed -i "s|^reload = .*|reload = /bin/true|" "$CONF"
kill -HUP "$DAEMON_PID"
sleep 1
ans state=renewed
assert_eq FAILED! "$ASTATE" "a renewal the proxy does not serve fails"
assert_eq true "$(a rolled_back)" "rolled_back true"
assert_eq false "$(a changed)" "changed false: the previous certificate is live"
assert_eq 6 "$(a rc)" "rc 6"
assert_eq "$GOOD" "$(served)" "nginx still serves the previous certificate"
sed -i "s|^reload = .*|reload = $NGINX_RELOAD|" "$CONF"
kill -HUP "$DAEMON_PID"
sleep 1

echo "-- state=staged: a set already rotated is not staged again"
# A pool's playbook runs the same install on every member, then rotates them one at a time:
# run again, the members already rotated must not stage their active set once more.
make_cert_set "$T/again" again
SET_AGAIN="ca=$T/again/ca.crt cert=$T/again/server.crt key=$T/again/server.key"
# shellcheck disable=SC2086 # three arguments
ans state=staged $SET_AGAIN
assert_eq CHANGED "$ASTATE" "staged: installed the set (changed)"
ans state=rotated force=true "reason='staged again test'"
assert_eq CHANGED "$ASTATE" "rotated to it"
serves_now "$(leaf_sha "$T/again/server.crt")" "nginx serves the set"
AUDIT=$(audit_total)
# shellcheck disable=SC2086
ans state=staged $SET_AGAIN
assert_eq SUCCESS "$ASTATE" "the same files again once rotated: nothing to do"
assert_contains "already active" "$(a msg)" "and says the set is already active"
assert_eq steady "$(a phase)" "nothing is staged"
assert_eq "$AUDIT" "$(audit_total)" "no install reached the daemon (no audit record)"
ans state=staged "ca=$T/again/ca.crt" "cert=$T/other/server.crt" "key=$T/other/server.key"
assert_ne SUCCESS "$ASTATE" "the active CA with another leaf is not taken for the active set"

echo "-- carotated unreachable"
mod "{\"state\": \"reported\", \"socket\": \"$T/run/nothing.sock\"}"
assert_eq FAILED! "$ASTATE" "an unreachable daemon fails"
assert_eq unavailable "$(a status)" "with status unavailable"
assert_eq 2 "$(a rc)" "and rc 2"
assert_daemon_alive
