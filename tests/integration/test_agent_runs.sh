#!/bin/bash
# carotate-agent's command line and runs, against build/fakeproxy (issue 16, "The program"
# and "Errors"). Reproductions, on the agent of its first version:
#  - `carotate-agent -c BROKEN check-in --help` (and link --help, status --help) printed
#    the agent.conf syntax error and exited 1: a broken configuration broke --help;
#  - `link` without a bearer said "--join-token-file FILE is required" although
#    --linking-key-file is the other bearer link takes;
#  - a proxy announcing `X-Carotate-Canary: http://...` saw the announcement dropped without
#    a word: the operator never learnt the proxy's canary_url is wrong;
#  - a run while another held state_dir did not wait for it (test_agent_concurrent): now a
#    run that cannot get the lock within `timeout` exits 2 with one line, and status reads
#    without the lock;
#  - an install cut short between the bundle's rename and the state's (a crash, or the state's
#    rename failing) leaves the new bundle in place, .prev the old one and the state naming
#    the old id; the next check-in got the same 200 and linked the new bundle as .prev: the
#    old bundle was lost. Expected: .prev stays the old bundle, the hook runs once.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

t_init

agent_require
fakeproxy_require

agent_proxy_pki "runs test" a b
agent_bundles

A="$T/agent"
BUNDLE="$A/etc/ca-bundle.pem"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho "$CAROTATE_BUNDLE_ID" >>"$1"\n' >"$T/hook.sh"
chmod 0755 "$T/hook.sh"
agent_dir "$A" id=runs-agent "hook=$T/hook.sh $A/hook.log" timeout=2s
AGENT_CONF="$A/agent.conf"
agent_join_token "$T/join-token"

# ---------------------------------------------------------------- --help
echo "-- --help with a broken agent.conf"
printf '[agent]\nno such key = 1\nserver = http://not-https\n' >"$T/broken.conf"
assert_exit 1 "the broken configuration is refused by a real command" -- "$AGENT" -c "$T/broken.conf" check-in
assert_match '^carotate-agent: .*broken\.conf' "$ERR" "with a line naming the file"
for cmd in "link --help" "check-in --help" "status --help" "status --json --help" \
	"link --server https://x --help" "--help"; do
	# shellcheck disable=SC2086 # the words are the command's
	assert_exit 0 "carotate-agent -c broken.conf $cmd: exit 0" -- "$AGENT" -c "$T/broken.conf" $cmd
	assert_match '^usage: carotate-agent' "$OUT" "$cmd: the usage on stdout"
	assert_eq "" "$ERR" "$cmd: nothing on stderr"
done
assert_exit 1 "check-in with a stray argument is a usage error before the configuration" -- \
	"$AGENT" -c "$T/broken.conf" check-in --bogus
assert_match '^usage: carotate-agent' "$ERR" "the usage on stderr"

# ---------------------------------------------------------------- link without a bearer
echo "-- link without a bearer"
assert_exit 1 "link without a bearer" -- agent link --server "https://127.0.0.1:1" --ca-file "$PKI_DIR/a/ca.crt"
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line"
assert_match '^carotate-agent: .*--join-token-file FILE' "$ERR" "it names --join-token-file"
assert_match '^carotate-agent: .*--linking-key-file FILE' "$ERR" "and --linking-key-file"

fp_start --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link" -- agent link --server "https://127.0.0.1:$FP_PORT" \
	--ca-file "$PKI_DIR/a/ca.crt" --join-token-file "$T/join-token"
assert_eq 1 "$(hook_runs "$A/hook.log")" "the hook ran for the first bundle"

# ---------------------------------------------------------------- X-Carotate-Canary http://
echo "-- an announced canary that is not https"
fp_start --status 304 --header "ETag: \"$ID1\"" --header "X-Carotate-Canary: http://127.0.0.1:9/x"
assert_exit 0 "a 304 announcing an http:// canary: the run's result is unchanged" -- agent check-in
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line on stderr"
assert_match '^carotate-agent: warning: .*X-Carotate-Canary.*http://127\.0\.0\.1:9/x.*https' "$ERR" \
	"it warns that the announced canary is not https and names it"
fp_start --status 304 --header "ETag: \"$ID1\"" --header "X-Carotate-Canary: https://127.0.0.1:9"
assert_exit 0 "a 304 announcing an https:// canary" -- agent check-in
assert_eq "" "$ERR" "no warning for an https:// canary (nothing to prove)"

# ---------------------------------------------------------------- the lock
echo "-- another run holds state_dir"
command -v flock >/dev/null || fail "flock (util-linux) is needed"
fp_start --status 304 --header "ETag: \"$ID1\""
flock -o "$A/state" sleep 6 &
LOCKER=$!
t_track_pid "$LOCKER"
wait_until 3000 sh -c "! flock -n '$A/state' true" || fail "flock holds $A/state"
start=$(ms_now)
assert_exit 2 "check-in while another run holds state_dir for longer than timeout (2s)" -- agent check-in
took=$(($(ms_now) - start))
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line"
assert_match '^carotate-agent: another run holds the lock on .*gave up after 2 s' "$ERR" "saying another run holds the lock"
[ "$took" -ge 1900 ] || fail "it waited for the timeout" "$took ms"
ok "it waited $took ms (timeout 2 s) before giving up"
assert_eq "" "$(cat "$T/fp.log")" "nothing was sent"
assert_exit 0 "status reads while the lock is held" -- agent status
assert_match "bundle_id: $ID1" "$OUT" "status shows the bundle id"
assert_match "last_result: unchanged" "$OUT" "the failed run wrote no state (it never held the lock)"
assert_exit 2 "link waits for the lock too" -- agent link --server "https://127.0.0.1:$FP_PORT" \
	--ca-file "$PKI_DIR/a/ca.crt" --join-token-file "$T/join-token"
assert_match '^carotate-agent: another run holds the lock' "$ERR" "link: the same line"
kill "$LOCKER" 2>/dev/null || true
wait "$LOCKER" 2>/dev/null || true
flock -o "$A/state" sleep 1 &
LOCKER=$!
t_track_pid "$LOCKER"
wait_until 3000 sh -c "! flock -n '$A/state' true" || fail "flock holds $A/state"
assert_exit 0 "a check-in waits for a run shorter than timeout, then checks in" -- agent check-in
grep -q '^GET /carotate/v1/ca-bundle' "$T/fp.log" || fail "the waiting run checked in afterwards" "$(cat "$T/fp.log")"
ok "the waiting run checked in afterwards"
wait "$LOCKER" 2>/dev/null || true

# ---------------------------------------------------------------- an install cut short
echo "-- an install cut short between the bundle's rename and the state's"
# What a crash between the two renames leaves: the new bundle in place, the old one as
# .prev, the state naming the old bundle (and owing no hook).
cp "$B1" "$BUNDLE.prev"
cp "$B2" "$BUNDLE"
hooks_before=$(hook_runs "$A/hook.log")
fp_start --status 200 --header "ETag: \"$ID2\"" --body "$B2" --if-none-match "$ID2"
assert_exit 0 "the next check-in gets the same 200" -- agent check-in
grep -q "If-None-Match: \"$ID1\"" "$T/fp.log" || fail "it presented the old id" "$(cat "$T/fp.log")"
cmp -s "$B2" "$BUNDLE" || fail "the new bundle stays installed"
cmp -s "$B1" "$BUNDLE.prev" ||
	fail "the second install of the same bundle: .prev is still the old bundle" \
		"it holds $(pem_bundle_id "$BUNDLE.prev" | head -c 12) (old ${ID1:0:12}, new ${ID2:0:12})"
ok "the second install of the same bundle keeps the old bundle as .prev"
assert_eq $((hooks_before + 1)) "$(hook_runs "$A/hook.log")" "the hook ran once for the change"
assert_eq "$ID2" "$(tail -n 1 "$A/hook.log")" "with the new bundle's id"
: >"$T/fp.log"
assert_exit 0 "a check-in afterwards" -- agent check-in
assert_file_contains "If-None-Match: \"$ID2\"" "$T/fp.log" "presents the new id"
assert_eq "" "$(find "$A" -name '*.tmp*')" "no temporary file is left"
fp_stop
