#!/bin/bash
# Agent identity (issue 14, carotate-protocol(7) AGENT PROTOCOL), against the real daemon, real nginx and real curl.
#
# Repro of the take-over: agent A links and holds the active CA; a new set is staged
# (report 0 %). An attacker holding only the shared linking key POSTs /carotate/v1/link
# with X-Agent-Id: A. carotated used to replace A's token hash and mark the bundle
# delivered; one check-in with the returned ETag counted A as acknowledged (report 100 %,
# rotate would pass) and the real A got 401. Now: 409, nothing changes, A's token works.
#  - renewal with X-Agent-Token: a new token, the old one gets 401; a malformed one 400;
#  - forget A (audited), then A links again;
#  - [agents] link_rate: a burst beyond it gets 429 with Retry-After, refused links leave
#    no agent behind;
#  - [agents] max_agents: a new id beyond it is refused (403), a renewal is not;
#  - join tokens: create --uses 2 -> two links, the third 401; --ttl 2s expires; revoke;
#    list shows no secret; linking_key empty -> only join tokens link;
#  - forget --never-confirmed --older-than drops agents that never presented a bundle back,
#    and report counts them first (never_confirmed).
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init

CODE=""
# A request's time limit: the daemon and its workers are many times slower under valgrind.
MAX_TIME=15
[ "$CAROTATE_VALGRIND" = 1 ] && MAX_TIME=90
# areq METHOD PATH [CURL_ARGS...] through nginx's agent listener; CODE, $T/h, $T/b.
areq() {
	local method=$1 path=$2
	shift 2
	CODE=$(curl -sS --max-time "$MAX_TIME" --cacert "$SSL_DIR/ca.crt" \
		--resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" -X "$method" -D "$T/h" -o "$T/b" \
		-w '%{http_code}' "$@" "https://$NGINX_SERVER_NAME:$NGINX_PORT$path" 2>"$T/err") ||
		CODE="curl-$?"
}
# link ID BEARER [EXTRA CURL ARGS]
link() {
	local id=$1 bearer=$2
	shift 2
	areq POST /carotate/v1/link -H "Authorization: Bearer $bearer" -H "X-Agent-Id: $id" \
		--data-binary '' "$@"
}
# checkin ID TOKEN [ETAG]
checkin() {
	if [ -n "${3:-}" ]; then
		areq GET /carotate/v1/ca-bundle -H "Authorization: Bearer $2" -H "X-Agent-Id: $1" \
			-H "If-None-Match: \"$3\""
	else
		areq GET /carotate/v1/ca-bundle -H "Authorization: Bearer $2" -H "X-Agent-Id: $1"
	fi
}
code_is() { assert_eq "$1" "$CODE" "$2"; }
rep() { ctl --json report | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# restart_with KEY=VALUE...: the [agents] keys set, the daemon restarted (nginx stays).
restart_with() {
	local kv
	stop_daemon
	for kv in "$@"; do
		sed -i "/^${kv%%=*} = /d" "$CONF"
		sed -i "s|^\[agents\]\$|[agents]\n${kv%%=*} = ${kv#*=}|" "$CONF"
	done
	start_daemon
	wait_until 5000 test -S "$RUN_DIR/agent.sock" || fail "agent socket back after restart"
	wait_until 30000 worker_up || fail "the agent workers are back after restart"
}

make_active_set
nginx_write_daemon_config
sed -i 's/^link_rate = .*/link_rate = 1000/' "$CONF"
start_daemon
wait_until 5000 test -S "$RUN_DIR/agent.sock" || fail "the agent socket exists"
wait_until 30000 worker_up || fail "the agent workers run"
nginx_start
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")

echo "-- re-link of an existing id"
link agent-a "$KEY"
code_is 200 "agent-a links"
TOKEN_A=$(hdr X-Agent-Token)
ETAG_A=$(hdr ETag | tr -d '"')
ctl generate >/dev/null || fail "generate"
checkin agent-a "$TOKEN_A" "$ETAG_A"
code_is 200 "agent-a gets the new bundle"
assert_eq 0 "$(rep percent)" "report: 0 % before the real agent acknowledges"
link agent-a "$KEY"
code_is 409 "a link for agent-a with only the linking key is refused (409)"
assert_contains "X-Agent-Token" "$(cat "$T/b")" "...and says how to renew"
FORGED=$(hdr X-Agent-Token)
assert_eq "" "$FORGED" "...and issues no token"
NEW_ETAG=$(ctl --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["bundle"]["id"])')
assert_eq 0 "$(rep percent)" "report stays 0 % after the refused re-link"
assert_eq 0 "$(rep acknowledged)" "...nobody acknowledged"
checkin agent-a "$TOKEN_A" "$NEW_ETAG"
code_is 304 "agent-a's real token still checks in (and acknowledges)"
assert_eq 100 "$(rep percent)" "the real agent's acknowledgement counts: 100 %"

echo "-- renewal"
link agent-a "$KEY" -H "X-Agent-Token: $(openssl rand -hex 32)"
code_is 401 "renewal with a wrong current token: 401"
link agent-a "$KEY" -H "X-Agent-Token: not-hex"
code_is 400 "renewal with a malformed X-Agent-Token: 400"
link agent-a "$KEY" -H "X-Agent-Token: $TOKEN_A"
code_is 200 "renewal with the current token: 200"
TOKEN_A2=$(hdr X-Agent-Token)
assert_match '^[0-9a-f]{64}$' "$TOKEN_A2" "renewal answers a new token"
assert_ne "$TOKEN_A" "$TOKEN_A2" "...a different one"
checkin agent-a "$TOKEN_A" "$NEW_ETAG"
code_is 401 "the old token stops working"
checkin agent-a "$TOKEN_A2" "$NEW_ETAG"
code_is 304 "the new token works"
assert_eq 100 "$(rep percent)" "renewal keeps the acknowledgement"

echo "-- forget"
assert_exit 5 "forget an unknown agent: exit 5" -- ctl forget nobody
assert_exit 5 "forget a malformed id: exit 5" -- ctl forget 'bad id!'
assert_exit 1 "forget without AGENT: exit 1" -- ctl forget
assert_exit 0 "forget agent-a" -- ctl forget agent-a
checkin agent-a "$TOKEN_A2" "$NEW_ETAG"
code_is 401 "a forgotten agent's token no longer works"
link agent-a "$KEY"
code_is 200 "after forget, agent-a links again"
TOKEN_A3=$(hdr X-Agent-Token)
ctl --json audit --limit 20 >"$T/audit.json"
assert_file_contains '"call": "forget"' "$T/audit.json" "forget is in the audit log"
assert_file_contains 'agent=\"agent-a\" forgotten=1' "$T/audit.json" "...with the agent id"

echo "-- never confirmed"
link ghost-1 "$KEY"
code_is 200 "ghost-1 links and never checks in"
assert_eq 2 "$(rep never_confirmed)" "report: 2 never confirmed (ghost-1, and agent-a linked anew)"
checkin agent-a "$TOKEN_A3" "$NEW_ETAG"
code_is 304 "agent-a presents its bundle back"
assert_eq 1 "$(rep never_confirmed)" "report --json: never_confirmed = 1 (ghost-1)"
assert_contains "never confirmed 1" "$(ctl report)" "report (human) shows never confirmed"
assert_exit 5 "forget --never-confirmed --older-than 0: exit 5" -- \
	ctl forget --never-confirmed --older-than 0
assert_exit 5 "forget --never-confirmed --older-than 1y: exit 5" -- \
	ctl forget --never-confirmed --older-than 1y
assert_exit 1 "forget --never-confirmed without --older-than: exit 1" -- ctl forget --never-confirmed
assert_exit 0 "forget --never-confirmed --older-than 1h" -- ctl --json forget --never-confirmed --older-than 1h
assert_eq 0 "$(printf '%s' "$OUT" | json_get forgotten)" "...nobody linked an hour ago"
sleep 2
assert_exit 0 "forget --never-confirmed --older-than 1s" -- ctl forget --never-confirmed --older-than 1s
assert_contains "forgot 1 agent" "$OUT" "...forgets ghost-1"
assert_eq 0 "$(rep never_confirmed)" "report: nobody left unconfirmed"
assert_eq 1 "$(rep linked)" "agent-a stays"

echo "-- link_rate"
restart_with link_rate=5
linked0=$(rep linked)
mkdir "$T/burst"
pids=""
for i in $(seq 1 30); do
	curl -sS --max-time "$MAX_TIME" --cacert "$SSL_DIR/ca.crt" \
		--resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" -X POST \
		-H "Authorization: Bearer $KEY" -H "X-Agent-Id: burst-$i" --data-binary '' \
		-D "$T/burst/$i.h" -o /dev/null -w '%{http_code}' \
		"https://$NGINX_SERVER_NAME:$NGINX_PORT/carotate/v1/link" >"$T/burst/$i.code" 2>&1 &
	pids="$pids $!"
done
# shellcheck disable=SC2086 # the curls only: the daemon and nginx are children too
wait $pids
codes=$(for f in "$T/burst"/*.code; do cat "$f" && echo; done)
n200=$(printf '%s\n' "$codes" | grep -c '^200$' || true)
n429=$(printf '%s\n' "$codes" | grep -c '^429$' || true)
[ "$n429" -ge 1 ] || fail "a burst of 30 links at link_rate 5 gets 429s" "codes: $codes"
assert_eq 30 $((n200 + n429)) "every link of the burst got 200 or 429"
ok "a burst of 30 links at link_rate 5: $n200 x 200, $n429 x 429"
retry=$(cat "$T/burst"/*.h | tr -d '\r' | sed -n 's/^Retry-After: *//Ip' | head -n1)
assert_match '^[1-9][0-9]*$' "${retry:-}" "429 carries Retry-After in seconds"
assert_eq $((linked0 + n200)) "$(rep linked)" "refused links add no agent"

echo "-- max_agents"
restart_with link_rate=1000 max_agents=$((linked0 + n200 + 1))
link cap-1 "$KEY"
code_is 200 "a link up to max_agents"
link cap-2 "$KEY"
code_is 403 "a new id beyond max_agents is refused (403)"
link agent-a "$KEY" -H "X-Agent-Token: $TOKEN_A3"
code_is 200 "a renewal at max_agents is not refused"

echo "-- join tokens"
restart_with max_agents=1000000
assert_exit 0 "join-token create --uses 2" -- ctl --json join-token create --uses 2 --description "rack 7"
JT=$(printf '%s' "$OUT" | json_get token)
JID=$(printf '%s' "$OUT" | json_get id)
assert_match '^cj1\.[0-9a-f]{16}\.[0-9a-f]{64}$' "$JT" "a join token is cj1.<id>.<secret>"
link jt-1 "$JT"
code_is 200 "first link with the join token"
link jt-2 "$JT"
code_is 200 "second link with the join token"
link jt-3 "$JT"
code_is 401 "third link: the token is used up (401)"
assert_exit 0 "join-token list" -- ctl join-token list
assert_contains "$JID" "$OUT" "list shows the id"
assert_contains "rack 7" "$OUT" "list shows the description"
assert_exit 0 "join-token list --json" -- ctl --json join-token list
case "$OUT" in *"${JT##*.}"*) fail "list shows no secret" "$OUT" ;; *) ok "list shows no secret" ;; esac
ctl --json audit --limit 50 >"$T/audit2.json"
case "$(cat "$T/audit2.json")" in *"${JT##*.}"*) fail "the audit log never holds the token" ;; *) ok "the audit log never holds the token" ;; esac
assert_exit 0 "join-token create --ttl 2s" -- ctl --json join-token create --ttl 2s
JT2=$(printf '%s' "$OUT" | json_get token)
sleep 3
link jt-4 "$JT2"
code_is 401 "an expired join token: 401"
assert_exit 0 "join-token create" -- ctl --json join-token create --uses 5
JT3=$(printf '%s' "$OUT" | json_get token)
JID3=$(printf '%s' "$OUT" | json_get id)
assert_exit 0 "join-token revoke" -- ctl join-token revoke "$JID3"
link jt-5 "$JT3"
code_is 401 "a revoked join token: 401"
assert_exit 5 "revoke it again: exit 5 (not found)" -- ctl join-token revoke "$JID3"
assert_exit 5 "revoke a malformed id: exit 5" -- ctl join-token revoke ZZZ
assert_exit 5 "create --uses 0: exit 5" -- ctl join-token create --uses 0
assert_exit 5 "create --ttl 1x: exit 5" -- ctl join-token create --ttl 1x
assert_exit 5 "create --description with a control character: exit 5" -- \
	ctl join-token create --description "$(printf 'a\tb')"
assert_exit 1 "join-token without a sub-command: exit 1" -- ctl join-token
link jt-6 "cj1.${JID}.$(openssl rand -hex 32)"
code_is 401 "a join token with a wrong secret: 401"

echo "-- linking_key empty"
restart_with linking_key=
link lk-1 "$KEY"
code_is 401 "linking_key empty: the old linking key no longer links"
assert_exit 0 "join-token create" -- ctl --json join-token create
JT4=$(printf '%s' "$OUT" | json_get token)
link lk-2 "$JT4"
code_is 200 "linking_key empty: a join token links"
if grep -q "linking key.*agents cannot link" "$DAEMON_LOG"; then
	fail "an empty linking_key logs no warning" "$(grep 'linking key' "$DAEMON_LOG")"
fi
ok "an empty linking_key logs no warning"
assert_daemon_alive
