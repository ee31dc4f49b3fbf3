#!/bin/bash
# carotate-agent against the real daemon and nginx (issue 16, "The program"): link by CA
# file, link by pin (a wrong pin sends nothing: exit 5 and no link in the ledger or the
# audit log), check-in 304, generate, check-in 200 whose bundle verifies the proxy, the
# canary proof (report: verified), the hook run exactly when the bundle changed, status.
# Before the agent existed every step here failed: there was no program to run.
set -eu
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/nginx.sh"

agent_require
t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
SERVER="https://127.0.0.1:$NGINX_PORT"
CANARY="https://127.0.0.1:$NGINX_CANARY_PORT"

# agent_conf NAME: a config with its own state, bundle and a hook that counts its runs.
agent_conf() {
	mkdir -p "$T/$1"
	cat >"$T/$1/hook" <<HOOK
#!/bin/sh
echo "\$CAROTATE_BUNDLE_ID \$CAROTATE_BUNDLE" >>"$T/$1/hook.log"
HOOK
	chmod 0755 "$T/$1/hook"
	agent_conf_write "$T/$1/agent.conf" "state_dir=$T/$1/state" "bundle=$T/$1/ca-bundle.pem" \
		"hook=$T/$1/hook" hook_timeout=10s "canary_url=$CANARY" timeout=15s
}
agent() { local n=$1; shift; run "$AGENT" -c "$T/$n/agent.conf" "$@"; }
join_token() { ctl --json join-token create --uses 1 | json_get token >"$T/$1"; }

echo "-- link with --ca-file"
agent_conf a
join_token jt-a
agent a link --server "$SERVER" --ca-file "$SSL_DIR/ca.crt" --join-token-file "$T/jt-a" --id agent-a
assert_eq 0 "$RC" "link --ca-file exits 0 ($ERR)"
assert_eq "600" "$(stat -c %a "$T/a/state/token")" "the token file is 0600"
assert_eq "644" "$(stat -c %a "$T/a/ca-bundle.pem")" "the bundle is 0644"
curl -sS --cacert "$T/a/ca-bundle.pem" --resolve "proxy.test:$NGINX_PORT:127.0.0.1" \
	-o /dev/null "https://proxy.test:$NGINX_PORT/" || fail "curl --cacert the agent's bundle reaches the proxy"
ok "curl trusting the bundle the agent wrote reaches the proxy"
assert_eq 1 "$(hook_runs "$T/a/hook.log")" "the hook ran once (new bundle)"

echo "-- link with --ca-pin"
PIN=$(openssl x509 -in "$SSL_DIR/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)
agent_conf b
join_token jt-b
agent b link --server "$SERVER" --ca-pin "sha256:$PIN" --join-token-file "$T/jt-b" --id agent-b
assert_eq 0 "$RC" "link --ca-pin with the right pin exits 0 ($ERR)"
agent_conf c
join_token jt-c
BAD=$(printf '%s' "$PIN" | tr '0-9a-f' '1-9a-f0')
agent c link --server "$SERVER" --ca-pin "sha256:$BAD" --join-token-file "$T/jt-c" --id agent-c
assert_eq 5 "$RC" "a wrong pin exits 5"
assert_contains "carotate-agent: pin mismatch" "$ERR" "...saying pin mismatch"
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "...in one line"
[ ! -e "$T/c/ca-bundle.pem" ] || fail "a wrong pin wrote no bundle"
ctl --json audit --limit 100 >"$T/audit.json"
if grep -q 'agent-c' "$T/audit.json"; then fail "a wrong pin left no trace of agent-c in the audit log"; fi
ctl --json report >"$T/r.json"
assert_eq 2 "$(json_get linked "$T/r.json")" "the ledger holds agent-a and agent-b only"

echo "-- check-in: 304"
agent a check-in
assert_eq 0 "$RC" "check-in exits 0 ($ERR)"
assert_eq 1 "$(hook_runs "$T/a/hook.log")" "no hook on 304"

echo "-- generate: check-in 200 and the canary proof"
ctl generate >/dev/null || fail "generate"
cp "$T/a/ca-bundle.pem" "$T/a-before.pem"
wait_until 15000 grep -q "serves the staged certificate: canary check-ins now count" "$DAEMON_LOG" ||
	fail "the canary listener serves the staged certificate"
agent a check-in
assert_eq 0 "$RC" "check-in after generate exits 0 ($ERR)"
assert_eq 2 "$(pem_count "$T/a/ca-bundle.pem")" "the new bundle holds both CAs"
cmp -s "$T/a-before.pem" "$T/a/ca-bundle.pem.prev" || fail "the previous bundle is kept as .prev"
ok "the previous bundle is kept as .prev"
assert_eq 2 "$(hook_runs "$T/a/hook.log")" "the hook ran for the new bundle"
ctl --json report >"$T/r.json"
assert_eq 1 "$(json_get verified "$T/r.json")" "report: agent-a verified through the canary"
agent a check-in
assert_eq 0 "$RC" "check-in again: 304"
assert_eq 2 "$(hook_runs "$T/a/hook.log")" "no hook on 304"

echo "-- status"
agent a status --json
assert_eq 0 "$RC" "status --json exits 0"
printf '%s' "$OUT" >"$T/s.json"
assert_eq true "$(json_get linked "$T/s.json")" "status: linked"
assert_eq agent-a "$(json_get id "$T/s.json")" "status: id"
assert_eq 1 "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["proven"]))' "$T/s.json")" \
	"status: one CA proven, the active one (the staged one is proven through the canary at every run until it is live)"
agent a status
assert_contains "linked: yes" "$OUT" "status (human)"

echo "-- errors"
agent_conf d
agent d check-in
assert_eq 3 "$RC" "check-in before link exits 3"
printf 'version=1\nserver=\x1b[31m\n' >"$T/a/state/state.bad"
cp "$T/a/state/state" "$T/a/state/state.good"
mv "$T/a/state/state.bad" "$T/a/state/state"
cp "$T/a/ca-bundle.pem" "$T/a-keep.pem"
agent a check-in
assert_eq 6 "$RC" "a corrupt state file exits 6"
assert_contains "corrupt state" "$ERR" "...and says so"
cmp -s "$T/a-keep.pem" "$T/a/ca-bundle.pem" || fail "the bundle is unchanged"
mv "$T/a/state/state.good" "$T/a/state/state"
printf 'ff%.0s' $(seq 32) >"$T/a/state/token"
agent a check-in
assert_eq 4 "$RC" "a refused token exits 4"
assert_contains "carotate-agent: token refused: relink" "$ERR" "...token refused: relink"
cmp -s "$T/a-keep.pem" "$T/a/ca-bundle.pem" || fail "the bundle is unchanged"
ok "the bundle is unchanged after each error"
