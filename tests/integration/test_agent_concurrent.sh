#!/bin/bash
# Two runs of carotate-agent at once on one host: the timer's check-in and an operator's
# manual one (or a second timer after a slow run) share state_dir, bundle and hook.
# Reproduction, on the agent of its first version: a linked agent holding bundle B1; the
# proxy (build/fakeproxy, answering in 1 s: 200 with B2, or 304 once the request holds B2's
# id, as carotated does) gets 6 check-ins started together. Each run sent B1's id, took the
# 200, did unlink(.prev) + link(bundle, .prev) + rename: the hook ran 6 times for one change,
# and <bundle>.prev ended up holding B2, the old bundle lost.
# Expected: the bundle is B2, .prev is B1, the hook ran exactly once for the change, no
# temporary file is left; every run exits 0, or (refused because another run holds the
# state) non-zero with one line saying so; a check-in afterwards is a plain 304.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

t_init

agent_require
fakeproxy_require
RUNS=6

agent_proxy_pki "concurrency test" a b
agent_bundles

A="$T/agent"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho "$$" >>"$1"\n' >"$T/hook.sh"
chmod 0755 "$T/hook.sh"
agent_dir "$A" id=concurrent-agent "hook=$T/hook.sh $A/hook.log" timeout=20s
AGENT_CONF="$A/agent.conf"
agent_join_token "$T/join-token"

fp_start --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link" -- "$AGENT" -c "$A/agent.conf" link --server "https://127.0.0.1:$FP_PORT" \
	--ca-file "$PKI_DIR/a/ca.crt" --join-token-file "$T/join-token"
assert_eq 1 "$(hook_runs "$A/hook.log")" "the hook ran for the first bundle"

fp_start --sleep 1 --status 200 --header "ETag: \"$ID2\"" --body "$B2" --if-none-match "$ID2"
pids=()
for i in $(seq 1 "$RUNS"); do
	"$AGENT" -c "$A/agent.conf" check-in >"$T/out.$i" 2>"$T/err.$i" </dev/null &
	pids+=($!)
done
for i in $(seq 1 "$RUNS"); do
	rc=0
	wait "${pids[$((i - 1))]}" || rc=$?
	if [ "$rc" -ne 0 ]; then
		if [ "$(wc -l <"$T/err.$i")" -ne 1 ] ||
			! grep -Eqi '^carotate-agent: .*(busy|lock|running|progress|another)' "$T/err.$i"; then
			fail "run $i: exit 0, or one line saying another run holds the state" "exit $rc: $(cat "$T/err.$i")"
		fi
	fi
	t_log "run $i: exit $rc $(cat "$T/err.$i")"
done
cmp -s "$B2" "$A/etc/ca-bundle.pem" || fail "the bundle is the new one"
ok "the bundle is the new one"
cmp -s "$B1" "$A/etc/ca-bundle.pem.prev" ||
	fail "$RUNS check-ins at once: ca-bundle.pem.prev is still the old bundle" \
		"it holds $(pem_bundle_id "$A/etc/ca-bundle.pem.prev" | head -c 12) (new: ${ID2:0:12}, old: ${ID1:0:12})"
ok "$RUNS check-ins at once: ca-bundle.pem.prev is the old bundle"
assert_eq 2 "$(hook_runs "$A/hook.log")" "$RUNS check-ins at once: the hook ran once for the one change"
assert_eq "" "$(find "$A" -name '*.tmp*')" "no temporary file is left"
: >"$T/fp.log"
assert_exit 0 "a check-in afterwards" -- "$AGENT" -c "$A/agent.conf" check-in
assert_file_contains "If-None-Match: \"$ID2\"" "$T/fp.log" "it presents the new bundle's id"
assert_eq 2 "$(hook_runs "$A/hook.log")" "and runs no hook"
