#!/bin/bash
# End to end, agents' side (carotate-protocol(7) AGENT PROTOCOL, issue 4): the real daemon, real nginx on loopback high
# ports running packaging/nginx/carotate.conf, real curl as an agent, then the agent simulator.
#
#  - link -> 200, the bundle is the active CA, ETag = status bundle.id, a 64-hex token;
#    check-in with that ETag -> 304;
#  - generate (the daemon reloads nginx through the reload script; the canary listener then
#    serves the staged certificate) -> check-in -> 200 with old + new CA (= status
#    bundle.cas); next check-in with the new ETag -> 304 and acknowledged; a check-in
#    through the canary listener, verifying it with the new bundle -> verified; the old
#    trust store is refused by the canary listener;
#  - gate truthfulness: wrong / missing token, another agent's token, unknown agent id, a
#    forged If-None-Match, replays: never counted; the report exact at every step;
#  - agentsim: 1000 agents link before the generate, get the new bundle, acknowledge it,
#    prove it through the canary; one never updates -> 99 %, pending 1, listed by --pending.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init

SIM_AGENTS=${CAROTATE_E2E_AGENTS:-1000}

# ---------------------------------------------------------------- local helpers

# The agent simulator: $CAROTATE_BUILD/agentsim (make builds it), else built here.
AGENTSIM="$CAROTATE_BUILD/agentsim"
if [ ! -x "$AGENTSIM" ]; then
	AGENTSIM="$T/agentsim"
	t_log "agentsim: $CAROTATE_BUILD/agentsim is missing; building $AGENTSIM"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$AGENTSIM" "$REPO_ROOT/tests/agentsim/agentsim.c" \
		-lssl -lcrypto -lpthread || fail "building tests/agentsim/agentsim.c"
fi

# status --json into $T/st.json
load_status() {
	ctl --json status | jsave "$T/st.json" || fail "status --json"
}

# One HTTPS request as an agent, with curl verifying the proxy against TRUST:
# areq PORT TRUST METHOD PATH [CURL_ARGS...]. Sets CODE (HTTP status, 000 when none), CURL_RC;
# the response headers are in $T/r.head, the body in $T/r.body, curl's stderr in $T/r.err.
CODE=""
CURL_RC=0
areq() {
	local port=$1 trust=$2 method=$3 path=$4
	shift 4
	rm -f "$T/r.head" "$T/r.body"
	CURL_RC=0
	CODE=$(curl -sS --max-time 15 --cacert "$trust" --resolve "$NGINX_SERVER_NAME:$port:127.0.0.1" \
		-X "$method" -D "$T/r.head" -o "$T/r.body" -w '%{http_code}' "$@" \
		"https://$NGINX_SERVER_NAME:$port$path" 2>"$T/r.err") || CURL_RC=$?
	[ -f "$T/r.body" ] || : >"$T/r.body"
	[ -f "$T/r.head" ] || : >"$T/r.head"
}
# A response header's value (case-insensitive name), CR stripped; empty when absent.
hdr() { tr -d '\r' <"$T/r.head" | awk -v n="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" '
	{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'; }

KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")

# link ID [TRUST] [KEY]
link() {
	areq "$NGINX_PORT" "${2:-$SSL_DIR/ca.crt}" POST /carotate/v1/link \
		-H "Authorization: Bearer ${3-$KEY}" -H "X-Agent-Id: $1" --data-binary ''
}
# checkin PORT TRUST ID TOKEN [ETAG]: a check-in; ETAG "" sends no If-None-Match.
checkin() {
	local port=$1 trust=$2 id=$3 token=$4 etag=${5:-}
	if [ -n "$etag" ]; then
		areq "$port" "$trust" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $token" \
			-H "X-Agent-Id: $id" -H "If-None-Match: \"$etag\""
	else
		areq "$port" "$trust" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $token" \
			-H "X-Agent-Id: $id"
	fi
}

# expect_code WANT WHAT: the last areq answered WANT (CURL_RC 0).
expect_code() {
	if [ "$CURL_RC" -ne 0 ] || [ "$CODE" != "$1" ]; then
		fail "$2: HTTP $1" "got HTTP $CODE, curl exit $CURL_RC: $(cat "$T/r.err")" \
			"headers: $(tr -d '\r' <"$T/r.head" | tr '\n' '|')" "body: $(head -c 300 "$T/r.body")" \
			"nginx log: $(tail -n 3 "$NGINX_ERROR_LOG")"
	fi
	ok "$2: HTTP $1"
}

# The ETag of the last response, unquoted; fails unless it is "<64 hex>".
etag_of_response() {
	local e
	e=$(hdr ETag)
	case "$e" in
	\"*\") e=${e#\"} && e=${e%\"} ;;
	*) fail "ETag is a quoted string" "got: '$e'" ;;
	esac
	printf '%s' "$e" | grep -Eq '^[0-9a-f]{64}$' || fail "ETag is 64 lower-case hex" "got: '$e'"
	printf '%s' "$e"
}

# report_is LINKED ACTIVE ACKNOWLEDGED VERIFIED PENDING PERCENT STAGED_CA WHAT
# `report --json` has every carotatectl(1) key, with exactly these values (and inactive_lacking
# 0, excluded 0: nobody here is inactive or excluded).
report_is() {
	local what=$8 k v want
	run ctl --json report
	[ "$RC" -eq 0 ] || fail "$what: report --json exits 0" "exit $RC: $ERR"
	printf '%s' "$OUT" | jsave "$T/rep.json"
	for k in linked active acknowledged verified pending inactive_lacking excluded percent staged_ca; do
		awk -F'\t' -v k="$k" '$1 == k { f = 1 } END { exit !f }' "$T/rep.json.flat" ||
			fail "$what: report --json has the key '$k' (carotatectl(1))" "$OUT"
	done
	set -- "$1" "$2" "$3" "$4" "$5" "$6" "$7"
	for k in linked active acknowledged verified pending percent staged_ca; do
		want=$1
		shift
		v=$(jget "$k" "$T/rep.json")
		[ "$v" = "$want" ] || fail "$what: report $k = $want" "got $k = $v" "report: $OUT"
	done
	for k in inactive_lacking excluded; do
		v=$(jget "$k" "$T/rep.json")
		[ "$v" = 0 ] || fail "$what: report $k = 0" "got $k = $v" "report: $OUT"
	done
	ok "$what: report linked $(jget linked "$T/rep.json") active $(jget active "$T/rep.json") acknowledged $(jget acknowledged "$T/rep.json") verified $(jget verified "$T/rep.json") pending $(jget pending "$T/rep.json") percent $(jget percent "$T/rep.json")"
}
# The report's counters, one string, to prove that something changed nothing.
report_counts() {
	ctl --json report | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join("%s=%s" % (k, r.get(k)) for k in
      ("linked", "active", "acknowledged", "verified", "pending", "inactive_lacking", "excluded", "percent")))'
}
# unchanged BEFORE WHAT
unchanged() {
	local now
	now=$(report_counts)
	[ "$now" = "$1" ] || fail "$2: the report is unchanged" "before: $1" "after:  $now"
	ok "$2: report unchanged ($now)"
}

# ---------------------------------------------------------------- daemon and nginx

make_active_set
OLD_CA="$SSL_DIR/ca.crt"
cp "$OLD_CA" "$T/old-ca.pem"
OLD_CA_SHA=$(cert_der_sha256 "$OLD_CA")
nginx_write_daemon_config
start_daemon

wait_until 5000 test -S "$RUN_DIR/agent.sock" ||
	fail "carotated creates the agent socket $RUN_DIR/agent.sock" "$(tail -n 20 "$DAEMON_LOG")"
wait_until 5000 test -S "$RUN_DIR/agent-canary.sock" ||
	fail "carotated creates the canary socket $RUN_DIR/agent-canary.sock" "$(tail -n 20 "$DAEMON_LOG")"
for s in agent.sock agent-canary.sock; do
	assert_eq "660 $AGENT_GROUP" "$(stat -c '%a %G' "$RUN_DIR/$s")" "$s is mode 0660, group $AGENT_GROUP"
done
[ -f "$SSL_DIR/canary.crt" ] || fail "the daemon published canary.crt"

nginx_start
if [ "$(id -u)" -eq 0 ]; then
	workers=$(ps -o user=,group= --ppid "$NGINX_PID" | sort -u | tr -s ' ')
	assert_eq "nobody nogroup" "$workers" "nginx workers run as nobody:nogroup (the agent sockets' group)"
fi
reloads0=$(nginx_reload_count)

# ---------------------------------------------------------------- link and check in (steady)
echo "-- steady: link and check in"
load_status
BUNDLE1=$(jget bundle.id "$T/st.json")
assert_eq "$OLD_CA_SHA" "$BUNDLE1" "steady: bundle.id = sha256 of the active CA's DER"

link agent-a
expect_code 200 "link agent-a"
TOKEN_A=$(hdr X-Agent-Token)
assert_match '^[0-9a-f]{64}$' "$TOKEN_A" "link: X-Agent-Token is 64 lower-case hex"
ETAG_A=$(etag_of_response)
assert_eq "$BUNDLE1" "$ETAG_A" "link: ETag = status bundle.id"
assert_eq 1 "$(pem_count "$T/r.body")" "link: the bundle holds one certificate"
assert_eq "$OLD_CA_SHA" "$(pem_shas "$T/r.body")" "link: the bundle is the active CA"
cp "$T/r.body" "$T/a-trust.pem"

checkin "$NGINX_PORT" "$T/a-trust.pem" agent-a "$TOKEN_A" "$ETAG_A"
expect_code 304 "agent-a checks in with the current ETag"
assert_eq 0 "$(stat -c %s "$T/r.body")" "304: no body"

link agent-b
expect_code 200 "link agent-b"
TOKEN_B=$(hdr X-Agent-Token)
ETAG_B=$(etag_of_response)
assert_ne "$TOKEN_A" "$TOKEN_B" "each agent gets its own token"
cp "$T/r.body" "$T/b-trust.pem"
checkin "$NGINX_PORT" "$T/b-trust.pem" agent-b "$TOKEN_B" "$ETAG_B"
expect_code 304 "agent-b checks in with the current ETag"

# A wrong linking key links nobody.
link agent-x "$OLD_CA" "$(openssl rand -hex 32)"
expect_code 401 "link with a wrong linking key"
assert_eq "" "$(hdr X-Agent-Token)" "no token for a wrong linking key"
link agent-x "$OLD_CA" ""
case "$CODE" in 400 | 401) ok "link with an empty linking key: HTTP $CODE" ;;
*) fail "link with an empty linking key: 400 or 401" "got $CODE" ;; esac

run ctl --json report
[ "$RC" -eq 0 ] || fail "report --json (steady) exits 0" "exit $RC: $ERR"
printf '%s' "$OUT" | jsave "$T/rep.json"
assert_eq 2 "$(jget linked "$T/rep.json")" "steady: report linked 2 (agent-x never linked)"
assert_eq 2 "$(jget active "$T/rep.json")" "steady: report active 2"
assert_eq null "$(jget staged_ca "$T/rep.json")" "steady: report staged_ca is null"
assert_eq 0 "$(jget excluded "$T/rep.json")" "steady: report excluded 0"
t_log "steady report: $(printf '%s' "$OUT" | tr -d ' \n' | head -c 400)"

# ---------------------------------------------------------------- the simulator links its fleet
echo "-- agentsim: $SIM_AGENTS agents link (steady)"
SIM_DIR="$T/fleet"
NEVER_ID=""
sim() {
	"$AGENTSIM" --dir "$SIM_DIR" --port "$NGINX_PORT" --canary-port "$NGINX_CANARY_PORT" \
		--server-name "$NGINX_SERVER_NAME" --agents "$SIM_AGENTS" --never-update 1 \
		--initial-ca "$T/old-ca.pem" --concurrency 16 --report "$@"
}
start=$(ms_now)
run sim --link --linking-key "$LINKING_KEY" --rounds 1 --expect-all-ok
ms=$(($(ms_now) - start))
[ "$RC" -eq 0 ] || fail "agentsim: $SIM_AGENTS agents link and check in" "exit $RC" "$ERR" "$OUT" \
	"nginx log: $(tail -n 5 "$NGINX_ERROR_LOG")"
printf '%s' "$OUT" | jsave "$T/sim1.json"
assert_eq "$SIM_AGENTS" "$(jget linked "$T/sim1.json")" "agentsim: $SIM_AGENTS agents linked through nginx ($ms ms)"
assert_eq "$SIM_AGENTS" "$(jget checked_in "$T/sim1.json")" "agentsim: every agent checked in"
assert_eq $((SIM_AGENTS - 1)) "$(jget status.304 "$T/sim1.json")" "agentsim: every updating agent got 304"
assert_eq 0 "$(jget tls_failures "$T/sim1.json")" "agentsim: no TLS failure"
NEVER_ID=$(jget agents_by_role.never_update.0 "$T/sim1.json")
t_log "agentsim (link + 1 round): $(jget requests "$T/sim1.json") requests in $(jget elapsed_ms "$T/sim1.json") ms: $(jget requests_per_s "$T/sim1.json") TLS requests/s, p50 $(jget latency_ms.p50 "$T/sim1.json") ms, p99 $(jget latency_ms.p99 "$T/sim1.json") ms"
N=$((SIM_AGENTS + 2))

# ---------------------------------------------------------------- generate
echo "-- generate: the daemon reloads nginx; the canary serves the staged certificate"
assert_exit 0 "generate exits 0" -- ctl --json generate
printf '%s' "$OUT" | jsave "$T/gen.json"
assert_eq true "$(jget reload.ran "$T/gen.json")" "generate: the reload ran"
assert_eq true "$(jget reload.ok "$T/gen.json")" "generate: the reload succeeded"
assert_eq $((reloads0 + 1)) "$(nginx_reload_count)" "generate: the daemon ran the nginx reload script once"
NEW_CA_SHA=$(jget staged.ca.sha256 "$T/gen.json")
cmp -s "$SSL_DIR/canary.crt" "$SSL_DIR/new/server.crt" || fail "canary.crt is the staged server certificate"
nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/new/server.crt"
ok "nginx's canary listener serves the staged server certificate"
nginx_wait_serving "$NGINX_PORT" "$SSL_DIR/server.crt"
ok "nginx's main listener still serves the active server certificate"
load_status
assert_eq staged "$(jget phase "$T/st.json")" "status: phase staged"
BUNDLE2=$(jget bundle.id "$T/st.json")
assert_ne "$BUNDLE1" "$BUNDLE2" "the bundle id changed"
assert_eq "$(printf '%s\n%s\n' "$OLD_CA_SHA" "$NEW_CA_SHA" | LC_ALL=C sort)" "$(jlines bundle.cas "$T/st.json")" \
	"status: bundle.cas = the active and the staged CA"

report_is "$N" "$N" 0 0 "$N" 0 "$NEW_CA_SHA" "right after generate (nobody confirmed anything)"

# ---------------------------------------------------------------- agent-a: delivered, acknowledged, verified
echo "-- agent-a: the new bundle, acknowledged, verified"
checkin "$NGINX_PORT" "$T/a-trust.pem" agent-a "$TOKEN_A" "$ETAG_A"
expect_code 200 "agent-a with the old ETag gets the new bundle"
ETAG_A2=$(etag_of_response)
assert_eq "$BUNDLE2" "$ETAG_A2" "its ETag = status bundle.id"
assert_eq 2 "$(pem_count "$T/r.body")" "the bundle holds two certificates"
assert_eq "$(jlines bundle.cas "$T/st.json")" "$(pem_shas "$T/r.body")" "the bundle's sha256s = status bundle.cas (old + new CA)"
assert_eq "$ETAG_A2" "$(pem_bundle_id "$T/r.body")" "ETag = SHA-256 of the bundle's sorted DERs (carotate-protocol(7) AGENT PROTOCOL)"
cp "$T/r.body" "$T/new-bundle.pem"
report_is "$N" "$N" 0 0 "$N" 0 "$NEW_CA_SHA" "delivered is not acknowledged"

checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-a "$TOKEN_A" "$ETAG_A2"
expect_code 304 "agent-a presents the new ETag"
assert_eq "$BUNDLE2" "$(etag_of_response)" "304 carries the current ETag"
report_is "$N" "$N" 1 0 $((N - 1)) 0 "$NEW_CA_SHA" "agent-a acknowledged, not verified"

# The canary listener refuses the old trust store: the outage it detects before rotation.
checkin "$NGINX_CANARY_PORT" "$T/old-ca.pem" agent-a "$TOKEN_A" "$ETAG_A2"
[ "$CURL_RC" -eq 60 ] || fail "curl trusting only the old CA fails the canary handshake (exit 60)" \
	"curl exit $CURL_RC, HTTP $CODE: $(cat "$T/r.err")"
ok "the canary listener is untrusted with the old CA alone (curl exit 60)"
report_is "$N" "$N" 1 0 $((N - 1)) 0 "$NEW_CA_SHA" "a failed canary handshake verifies nothing"

# A canary check-in proves something only once the daemon saw the canary serve the staged
# certificate (its own TLS check after the reload, slow under valgrind): wait for it.
canary_confirmed() { [ "$(ctl --json report | json_get canary_confirmed)" = true ]; }
wait_until 30000 canary_confirmed || fail "the daemon confirms the canary serves the staged certificate"
checkin "$NGINX_CANARY_PORT" "$T/new-bundle.pem" agent-a "$TOKEN_A" "$ETAG_A2"
expect_code 304 "agent-a checks in through the canary listener, trusting the new bundle"
report_is "$N" "$N" 1 1 $((N - 1)) 0 "$NEW_CA_SHA" "agent-a verified"

# ---------------------------------------------------------------- gate truthfulness
echo "-- gate truthfulness"
before=$(report_counts)
checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-b "$(openssl rand -hex 32)" "$BUNDLE2"
expect_code 401 "a wrong token"
unchanged "$before" "a wrong token"
areq "$NGINX_PORT" "$T/new-bundle.pem" GET /carotate/v1/ca-bundle -H "X-Agent-Id: agent-b" \
	-H "If-None-Match: \"$BUNDLE2\""
expect_code 401 "no Authorization header"
unchanged "$before" "no token"
checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-b "$TOKEN_A" "$BUNDLE2"
expect_code 401 "agent-b presenting agent-a's token"
unchanged "$before" "another agent's token"
checkin "$NGINX_CANARY_PORT" "$T/new-bundle.pem" agent-b "$TOKEN_A" "$BUNDLE2"
expect_code 401 "agent-b presenting agent-a's token, through the canary"
unchanged "$before" "another agent's token through the canary"
checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-zz "$TOKEN_A" "$BUNDLE2"
expect_code 401 "an unknown agent id (with a valid token of another agent)"
checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-zz "$(openssl rand -hex 32)" "$BUNDLE2"
expect_code 401 "an unknown agent id"
unchanged "$before" "unknown agent ids"
checkin "$NGINX_PORT" "$T/new-bundle.pem" 'agent/b' "$TOKEN_B" "$BUNDLE2"
expect_code 400 "a malformed agent id"
checkin "$NGINX_PORT" "$T/new-bundle.pem" "$(printf 'a%.0s' $(seq 1 65))" "$TOKEN_B" "$BUNDLE2"
expect_code 400 "an agent id of 65 characters"
areq "$NGINX_PORT" "$T/new-bundle.pem" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $TOKEN_B" \
	-H "X-Agent-Id: agent-b" -H "If-None-Match: not-an-etag"
expect_code 400 "a malformed If-None-Match"
unchanged "$before" "malformed requests"

# agent-b never received the new bundle: presenting its id (learnt elsewhere) proves nothing.
checkin "$NGINX_PORT" "$T/b-trust.pem" agent-b "$TOKEN_B" "$BUNDLE2"
case "$CODE" in
200 | 304) ok "a forged If-None-Match from agent-b: HTTP $CODE" ;;
*) fail "a forged If-None-Match: 200 or 304" "got HTTP $CODE, curl exit $CURL_RC" ;;
esac
FORGED_CODE=$CODE
unchanged "$before" "a forged If-None-Match (agent-b never received the new bundle)"
if [ "$FORGED_CODE" = 304 ]; then
	checkin "$NGINX_PORT" "$T/b-trust.pem" agent-b "$TOKEN_B" "$BUNDLE2"
	unchanged "$before" "the forged If-None-Match again"
fi

# Replays of agent-a's acknowledgement and verification count once.
for i in 1 2 3; do
	checkin "$NGINX_PORT" "$T/new-bundle.pem" agent-a "$TOKEN_A" "$BUNDLE2"
	expect_code 304 "agent-a replays its acknowledgement ($i)"
	checkin "$NGINX_CANARY_PORT" "$T/new-bundle.pem" agent-a "$TOKEN_A" "$BUNDLE2"
	expect_code 304 "agent-a replays its canary check-in ($i)"
done
unchanged "$before" "replays"
report_is "$N" "$N" 1 1 $((N - 1)) 0 "$NEW_CA_SHA" "after the gate tests"

# agent-b, honestly: old ETag -> the new bundle, then its id -> acknowledged.
checkin "$NGINX_PORT" "$T/b-trust.pem" agent-b "$TOKEN_B" "$ETAG_B"
expect_code 200 "agent-b with the bundle it holds gets the new one"
assert_eq "$BUNDLE2" "$(etag_of_response)" "agent-b: ETag = the new bundle id"
cp "$T/r.body" "$T/b-trust.pem"
checkin "$NGINX_PORT" "$T/b-trust.pem" agent-b "$TOKEN_B" "$BUNDLE2"
expect_code 304 "agent-b presents the new ETag"
report_is "$N" "$N" 2 1 $((N - 2)) $((2 * 100 / N)) "$NEW_CA_SHA" "agent-b acknowledged"

# ---------------------------------------------------------------- the fleet takes the new bundle
echo "-- agentsim: the fleet gets the new bundle, acknowledges it, proves it through the canary"
start=$(ms_now)
run sim --rounds 3 --canary-every 3 --expect-all-ok
ms=$(($(ms_now) - start))
[ "$RC" -eq 0 ] || fail "agentsim: 3 rounds (main, main, canary)" "exit $RC" "$ERR" "$OUT" \
	"nginx log: $(tail -n 5 "$NGINX_ERROR_LOG")"
printf '%s' "$OUT" | jsave "$T/sim2.json"
assert_eq $((SIM_AGENTS - 1)) "$(jget updated "$T/sim2.json")" "agentsim: every updating agent installed the new bundle"
assert_eq 2 "$(jget refused_updates "$T/sim2.json")" "agentsim: the never-update agent refused it in both main rounds"
assert_eq 1 "$(jget expected_failures "$T/sim2.json")" "agentsim: the canary refused the never-update agent"
assert_eq $((SIM_AGENTS - 1)) "$(jget canary_checked_in "$T/sim2.json")" "agentsim: every updating agent got through the canary"
assert_eq 0 "$(jget tls_failures "$T/sim2.json")" "agentsim: no TLS failure on the main listener"
t_log "agentsim (3 rounds): $(jget requests "$T/sim2.json") requests in $(jget elapsed_ms "$T/sim2.json") ms: $(jget requests_per_s "$T/sim2.json") TLS requests/s, p50 $(jget latency_ms.p50 "$T/sim2.json") ms, p99 $(jget latency_ms.p99 "$T/sim2.json") ms"
ACK=$((N - 1))
report_is "$N" "$N" "$ACK" $((N - 2)) 1 $((ACK * 100 / N)) "$NEW_CA_SHA" \
	"$ACK of $N acknowledged (1 never updates)"
assert_eq 99 "$(jget percent "$T/rep.json")" "percent is 99, not 100, with one agent pending"

run ctl --json report --pending
[ "$RC" -eq 0 ] || fail "report --json --pending exits 0" "exit $RC: $ERR"
printf '%s' "$OUT" | jsave "$T/pend.json"
assert_eq 1 "$(jget pending_agents "$T/pend.json" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" \
	"report --pending lists one agent"
assert_eq "$NEVER_ID" "$(jget pending_agents.0.id "$T/pend.json")" "the pending agent is the never-update one ($NEVER_ID)"
last_seen=$(jget pending_agents.0.last_seen "$T/pend.json")
if [ -z "$last_seen" ] || [ "$last_seen" = null ]; then
	fail "pending_agents[0].last_seen is set" "got '$last_seen'"
fi
ok "pending_agents[0].last_seen = $last_seen"

# A second pass changes nothing: replays again.
before=$(report_counts)
run sim --rounds 1 --canary --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: a canary round again" "exit $RC" "$ERR"
unchanged "$before" "the whole fleet checking in again through the canary"

assert_daemon_alive "at the end"
if grep -q 'Permission denied' "$NGINX_ERROR_LOG"; then
	fail "nginx could open the agent sockets" "$(grep 'Permission denied' "$NGINX_ERROR_LOG" | head -n 3)"
fi
nginx_stop
