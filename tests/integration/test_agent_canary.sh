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
#    bundle; a check-in after that sends nothing to the canary (everything proven);
#  - a canary serving a CA the bundle lacks (CA C): exit 2, no request sent to it (the
#    handshake trusting only the bundle fails), bundle untouched;
#  - X-Carotate-Canary from the proxy wins over the agent's own canary_url;
#  - an X-Carotate-Canary that is not https:// is refused: the address named gets no
#    connection at all.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init

AGENT="$CAROTATE_BUILD/carotate-agent"
[ -x "$AGENT" ] || fail "$AGENT is missing (make builds it)"
FAKEPROXY="$CAROTATE_BUILD/fakeproxy"
if [ ! -x "$FAKEPROXY" ]; then
	FAKEPROXY="$T/fakeproxy"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$FAKEPROXY" \
		"$REPO_ROOT/tests/fakeproxy/fakeproxy.c" -lssl -lcrypto || fail "building fakeproxy.c"
fi

for x in a b c; do
	pki_make_ca "$PKI_DIR/$x" "canary test CA $x"
	pki_make_server "$PKI_DIR/$x" "$PKI_DIR/$x" proxy.test "DNS:proxy.test,IP:127.0.0.1"
done
pem_bundle_id() {
	"$PY" -c '
import base64, hashlib, re, sys
t = open(sys.argv[1]).read()
ders = sorted(base64.b64decode("".join(m.split()))
              for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S))
print(hashlib.sha256(b"".join(ders)).hexdigest())' "$1"
}
B1="$T/b1.pem"
B2="$T/b2.pem"
cp "$PKI_DIR/a/ca.crt" "$B1"
cat "$PKI_DIR/a/ca.crt" "$PKI_DIR/b/ca.crt" >"$B2"
ID1=$(pem_bundle_id "$B1")
ID2=$(pem_bundle_id "$B2")
TOKEN=$(openssl rand -hex 32)

# fake proxies: NAME (main, canary) -> pid, port and log in $T/fp-NAME.*
declare -A FP_PID FP_PORT
FP_PORT[main]=0
FP_PORT[canary]=0
# fp NAME CA [FAKEPROXY_ARGS...]: (re)starts fake proxy NAME serving CA's leaf + CA.
fp() {
	local name=$1 ca=$2
	shift 2
	fp_stop "$name"
	: >"$T/fp-$name.log"
	rm -f "$T/fp-$name.port"
	"$FAKEPROXY" --cert "$PKI_DIR/$ca/server.crt" --key "$PKI_DIR/$ca/server.key" \
		--port "${FP_PORT[$name]}" --port-file "$T/fp-$name.port" --log "$T/fp-$name.log" "$@" \
		>/dev/null 2>>"$T/fakeproxy.err" </dev/null &
	FP_PID[$name]=$!
	t_track_pid "${FP_PID[$name]}"
	wait_until 5000 test -s "$T/fp-$name.port" || fail "fakeproxy $name starts" "$(cat "$T/fakeproxy.err")"
	FP_PORT[$name]=$(cat "$T/fp-$name.port")
}
fp_stop() {
	[ -n "${FP_PID[$1]:-}" ] || return 0
	kill -TERM "${FP_PID[$1]}" 2>/dev/null || true
	{ wait "${FP_PID[$1]}"; } 2>/dev/null || true
	FP_PID[$1]=""
}
requests() { grep -v '^#' "$T/fp-$1.log" || true; }

# A closed port for the canary at first: the canary fake proxy is not started yet.
fp canary b --status 304 --header "ETag: \"$ID2\""
CANARY_URL="https://127.0.0.1:${FP_PORT[canary]}"
fp_stop canary

HOOK="$T/hook.sh"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho run >>"$1"\n' >"$HOOK"
chmod 0755 "$HOOK"
A="$T/agent"
mkdir -p "$A/etc"
mkdir -m 0700 "$A/state"
cat >"$A/agent.conf" <<EOF
[agent]
id = canary-agent
state_dir = $A/state
bundle = $A/etc/ca-bundle.pem
hook = $HOOK $A/hook.log
timeout = 5s
canary_url = $CANARY_URL
EOF
agent() { "$AGENT" -c "$A/agent.conf" "$@"; }
hooks() { if [ -f "$A/hook.log" ]; then wc -l <"$A/hook.log"; else echo 0; fi; }
printf 'cj1.0123456789abcdef.%s\n' "$(openssl rand -hex 16)" >"$T/join-token"

# The link bundle (CA A) is proven by the link's own handshake: no canary needed yet.
fp main a --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link (CA A; the canary is down but nothing needs proving)" -- \
	agent link --server "https://127.0.0.1:${FP_PORT[main]}" --ca-file "$PKI_DIR/a/ca.crt" \
	--join-token-file "$T/join-token"

# ---------------------------------------------------------------- the canary unreachable
echo "-- the new bundle; the canary unreachable"
fp main a --status 200 --header "ETag: \"$ID2\"" --body "$B2"
assert_exit 2 "check-in: the new bundle, but the canary is unreachable: exit 2" -- agent check-in
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l)" "one line on stderr"
assert_match '^carotate-agent: .*canary' "$ERR" "the line names the canary"
cmp -s "$B2" "$A/etc/ca-bundle.pem" || fail "the valid new bundle stays installed"
cmp -s "$B1" "$A/etc/ca-bundle.pem.prev" || fail "the old one is .prev"
assert_eq 2 "$(hooks)" "the hook ran for the new bundle (link, then this one)"

echo "-- the canary back: the next check-in (a 304) proves the new bundle"
fp main a --status 304 --header "ETag: \"$ID2\""
fp canary b --status 304 --header "ETag: \"$ID2\""
assert_exit 0 "check-in: 304, then the canary proof" -- agent check-in
requests canary >"$T/canary.req"
assert_match '^GET /carotate/v1/ca-bundle HTTP/1\.1' "$(head -n 1 "$T/canary.req")" "the canary got a check-in"
assert_file_contains "Authorization: Bearer $TOKEN" "$T/canary.req" "with the agent's token"
assert_file_contains "X-Agent-Id: canary-agent" "$T/canary.req" "with its id"
assert_file_contains "If-None-Match: \"$ID2\"" "$T/canary.req" "presenting the new bundle's id"
assert_eq 2 "$(hooks)" "no hook for a 304"
assert_exit 0 "status --json" -- agent status --json
printf '%s' "$OUT" | jsave "$T/st.json"
assert_eq "$(printf '%s\n%s\n' "$(cert_der_sha256 "$PKI_DIR/a/ca.crt")" "$(cert_der_sha256 "$PKI_DIR/b/ca.crt")" | LC_ALL=C sort)" \
	"$(jlines proven "$T/st.json")" "status: CA A and CA B proven"
fp canary b --status 304 --header "ETag: \"$ID2\""
assert_exit 0 "the next check-in" -- agent check-in
assert_eq "" "$(requests canary)" "everything proven: nothing sent to the canary"

# ---------------------------------------------------------------- a canary the bundle does not trust
echo "-- a canary serving a CA the bundle lacks"
B3="$T/b3.pem"
cat "$PKI_DIR/a/ca.crt" "$PKI_DIR/b/ca.crt" "$PKI_DIR/c/ca.crt" >"$B3"
# The bundle A + B + C: C is new; the canary serves a leaf of a fourth CA: never trusted.
pki_make_ca "$PKI_DIR/d" "canary test CA d"
pki_make_server "$PKI_DIR/d" "$PKI_DIR/d" proxy.test "DNS:proxy.test,IP:127.0.0.1"
fp main a --status 200 --header "ETag: \"$(pem_bundle_id "$B3")\"" --body "$B3"
fp canary d --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\""
assert_exit 2 "the canary's certificate is not signed by the bundle: exit 2" -- agent check-in
assert_match '^carotate-agent: .*canary' "$ERR" "the line names the canary"
assert_eq "" "$(requests canary)" "nothing was sent to the untrusted canary"
cmp -s "$B3" "$A/etc/ca-bundle.pem" || fail "the valid bundle stays installed"
ok "the bundle A + B + C stays installed"

# ---------------------------------------------------------------- X-Carotate-Canary
echo "-- X-Carotate-Canary wins over canary_url"
fp_stop canary
fp canary c --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\""
# The configured canary is the closed port of before; the proxy announces the working one.
sed -i "s|^canary_url = .*|canary_url = https://127.0.0.1:1|" "$A/agent.conf"
fp main a --status 304 --header "ETag: \"$(pem_bundle_id "$B3")\"" \
	--header "X-Carotate-Canary: https://127.0.0.1:${FP_PORT[canary]}"
assert_exit 0 "check-in: the announced canary proves CA C" -- agent check-in
assert_match '^GET /carotate/v1/ca-bundle' "$(requests canary | head -n 1)" "the announced canary got the check-in"

echo "-- an announced canary that is not https"
B4="$T/b4.pem"
pki_make_ca "$PKI_DIR/e" "canary test CA e"
pki_make_server "$PKI_DIR/e" "$PKI_DIR/e" proxy.test "DNS:proxy.test,IP:127.0.0.1"
cat "$B3" "$PKI_DIR/e/ca.crt" >"$B4"
fp canary e --status 304
fp main a --status 200 --header "ETag: \"$(pem_bundle_id "$B4")\"" --body "$B4" \
	--header "X-Carotate-Canary: http://127.0.0.1:${FP_PORT[canary]}"
run agent check-in
assert_ne 0 "$RC" "an http:// canary is refused (exit $RC: $ERR)"
if grep -q '^# accepted' "$T/fp-canary.log"; then
	fail "the agent connected to an http:// canary" "$(cat "$T/fp-canary.log")"
fi
ok "the http:// address got no connection"
fp_stop main
fp_stop canary
