#!/bin/bash
# carotate-agent's canary proof against proxies that misbehave (issue 16, "check-in": "when
# the bundle holds a CA not yet proven, check in through the canary URL, trusting only the
# new bundle"). Two fake proxies (build/fakeproxy): the main one serves a leaf CA A signed,
# the canary one a leaf CA B signed (as nginx's canary listener serves the staged set). The
# agent links holding CA A, then gets the bundle A + B:
#
#  - the canary unreachable (its configured canary_url a closed port): exit 2, one line
#    naming the canary; the new bundle stays installed (it was valid), the hook ran once;
#    the next check-in (a 304) tries the canary again and proves it: exit 0, the canary got
#    GET /carotate/v1/ca-bundle with the bearer, X-Agent-Id and If-None-Match of the new
#    bundle; CA B stays "not proven" (the main listener has not served it), so the next
#    check-in makes the proof again: the proxy counts a canary check-in only once it has
#    checked its canary listener itself, and a proof made before that counted for nothing
#    (an agent that checked in right after generate was never counted as verified);
#  - a canary serving a CA the bundle lacks (CA C): exit 2, no request sent to it (the
#    handshake trusting only the bundle fails), bundle untouched;
#  - X-Carotate-Canary from the proxy wins over the agent's own canary_url;
#  - an X-Carotate-Canary that is not https:// is refused: the address named gets no
#    connection at all.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

t_init

agent_require
fakeproxy_require build

agent_proxy_pki "canary test" a b c
agent_bundles
TOKEN=$(openssl rand -hex 32)

# fake proxies: NAME (main, canary) -> pid, port and log in $T/fp-NAME.*
declare -A PROXY_PID PROXY_PORT
PROXY_PORT[main]=0
PROXY_PORT[canary]=0
# proxy NAME CA [FAKEPROXY_ARGS...]: (re)starts fake proxy NAME serving CA's leaf + CA.
proxy() {
	local name=$1 ca=$2
	shift 2
	proxy_stop "$name"
	fakeproxy_spawn "$T/fp-$name.log" "${PROXY_PORT[$name]}" "$PKI_DIR/$ca/server.crt" \
		"$PKI_DIR/$ca/server.key" "$@"
	PROXY_PID[$name]=$FAKEPROXY_PID
	PROXY_PORT[$name]=$FAKEPROXY_PORT
}
proxy_stop() {
	fakeproxy_kill "${PROXY_PID[$1]:-}"
	PROXY_PID[$1]=""
}
requests() { grep -v '^#' "$T/fp-$1.log" || true; }

# A closed port for the canary at first: the canary fake proxy is not started yet.
proxy canary b --status 304 --header "ETag: \"$ID2\""
CANARY_URL="https://127.0.0.1:${PROXY_PORT[canary]}"
proxy_stop canary

HOOK="$T/hook.sh"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho run >>"$1"\n' >"$HOOK"
chmod 0755 "$HOOK"
A="$T/agent"
agent_dir "$A" id=canary-agent "hook=$HOOK $A/hook.log" timeout=5s "canary_url=$CANARY_URL"
AGENT_CONF="$A/agent.conf"
agent_join_token "$T/join-token"

# The link bundle (CA A) is proven by the link's own handshake: no canary needed yet.
proxy main a --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link (CA A; the canary is down but nothing needs proving)" -- \
	agent link --server "https://127.0.0.1:${PROXY_PORT[main]}" --ca-file "$PKI_DIR/a/ca.crt" \
	--join-token-file "$T/join-token"

# ---------------------------------------------------------------- the canary unreachable
echo "-- the new bundle; the canary unreachable"
proxy main a --status 200 --header "ETag: \"$ID2\"" --body "$B2"
assert_exit 2 "check-in: the new bundle, but the canary is unreachable: exit 2" -- agent check-in
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line on stderr"
assert_match '^carotate-agent: .*canary' "$ERR" "the line names the canary"
cmp -s "$B2" "$A/etc/ca-bundle.pem" || fail "the valid new bundle stays installed"
cmp -s "$B1" "$A/etc/ca-bundle.pem.prev" || fail "the old one is .prev"
assert_eq 2 "$(hook_runs "$A/hook.log")" "the hook ran for the new bundle (link, then this one)"

echo "-- the canary back: the next check-in (a 304) proves the new bundle"
proxy main a --status 304 --header "ETag: \"$ID2\""
proxy canary b --status 304 --header "ETag: \"$ID2\""
assert_exit 0 "check-in: 304, then the canary proof" -- agent check-in
requests canary >"$T/canary.req"
assert_match '^GET /carotate/v1/ca-bundle HTTP/1\.1' "$(head -n 1 "$T/canary.req")" "the canary got a check-in"
assert_file_contains "Authorization: Bearer $TOKEN" "$T/canary.req" "with the agent's token"
assert_file_contains "X-Agent-Id: canary-agent" "$T/canary.req" "with its id"
assert_file_contains "If-None-Match: \"$ID2\"" "$T/canary.req" "presenting the new bundle's id"
assert_eq 2 "$(hook_runs "$A/hook.log")" "no hook for a 304"
assert_exit 0 "status --json" -- agent status --json
printf '%s' "$OUT" | jsave "$T/st.json"
assert_eq "$(cert_der_sha256 "$PKI_DIR/a/ca.crt")" "$(jlines proven "$T/st.json")" \
	"status: CA A proven (the main listener served it), CA B not (only the canary did)"
proxy canary b --status 304 --header "ETag: \"$ID2\""
assert_exit 0 "the next check-in" -- agent check-in
assert_match '^GET /carotate/v1/ca-bundle HTTP/1\.1' "$(requests canary | head -n 1)" \
	"the next check-in makes the canary proof again (CA B is not live yet)"
# Once the main listener serves a certificate of CA B (the rotate), CA B is proven there and
# the canary is left alone.
proxy main b --status 304 --header "ETag: \"$ID2\""
proxy canary b --status 304 --header "ETag: \"$ID2\""
assert_exit 0 "a check-in once the main listener serves CA B" -- agent check-in
assert_eq "" "$(requests canary)" "both CAs proven by the main listener: nothing sent to the canary"

# ---------------------------------------------------------------- a canary the bundle does not trust
echo "-- a canary serving a CA the bundle lacks"
B3="$T/b3.pem"
cat "$PKI_DIR/a/ca.crt" "$PKI_DIR/b/ca.crt" "$PKI_DIR/c/ca.crt" >"$B3"
# The bundle A + B + C: C is new; the canary serves a leaf of a fourth CA: never trusted.
agent_proxy_pki "canary test" d
proxy main a --status 200 --header "ETag: \"$(pem_bundle_id "$B3")\"" --body "$B3"
proxy canary d --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\""
assert_exit 2 "the canary's certificate is not signed by the bundle: exit 2" -- agent check-in
assert_match '^carotate-agent: .*canary' "$ERR" "the line names the canary"
assert_eq "" "$(requests canary)" "nothing was sent to the untrusted canary"
cmp -s "$B3" "$A/etc/ca-bundle.pem" || fail "the valid bundle stays installed"
ok "the bundle A + B + C stays installed"

# ---------------------------------------------------------------- X-Carotate-Canary
echo "-- X-Carotate-Canary wins over canary_url"
proxy_stop canary
proxy canary c --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\""
# The configured canary is the closed port of before; the proxy announces the working one.
sed -i "s|^canary_url = .*|canary_url = https://127.0.0.1:1|" "$A/agent.conf"
proxy main a --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\"" \
	--header "X-Carotate-Canary: https://127.0.0.1:${PROXY_PORT[canary]}"
assert_exit 0 "check-in: the announced canary proves CA C" -- agent check-in
assert_match '^GET /carotate/v1/ca-bundle' "$(requests canary | head -n 1)" "the announced canary got the check-in"

echo "-- an announced canary that is not https"
B4="$T/b4.pem"
agent_proxy_pki "canary test" e
cat "$B3" "$PKI_DIR/e/ca.crt" >"$B4"
proxy canary e --status 304
proxy main a --status 200 --header "ETag: \"$(pem_bundle_id "$B4")\"" --body "$B4" \
	--header "X-Carotate-Canary: http://127.0.0.1:${PROXY_PORT[canary]}"
run agent check-in
assert_ne 0 "$RC" "an http:// canary is refused (exit $RC: $ERR)"
if grep -q '^# accepted' "$T/fp-canary.log"; then
	fail "the agent connected to an http:// canary" "$(cat "$T/fp-canary.log")"
fi
ok "the http:// address got no connection"
proxy_stop main
proxy_stop canary
