#!/bin/bash
# A pool of three proxies sharing one ledger on a real PostgreSQL (carotated.conf(5) [ledger]):
# three carotated, each with its own nginx, SSL and state directories and sockets, one
# database started by the test (pg.sh), agents sent through all three in turn as a load
# balancer would send them.
#
#  - a token issued by one member is accepted by the others; a join token made on one links
#    on another; a token renewed through one is refused, old, by the others;
#  - the report is the same on every member, at every step: each counts the pool's agents
#    wherever they checked in;
#  - gate truth across members: a forged If-None-Match, another agent's token, a wrong token,
#    an unknown agent, an excluded agent: never counted, on any member;
#  - one audit chain for the pool, every record naming its member, verified on each;
#  - a wrong pool key or a missing DSN file: the member refuses to start and says why.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"
# shellcheck source-path=SCRIPTDIR source=pg.sh
. "$(dirname "$0")/pg.sh"
# shellcheck source-path=SCRIPTDIR source=pool.sh
. "$(dirname "$0")/pool.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init
pg_require
nginx_setup

SIM_AGENTS=${CAROTATE_POOL_AGENTS:-60}
AGENTSIM="$CAROTATE_BUILD/agentsim"
[ -x "$AGENTSIM" ] || fail "$AGENTSIM is missing (make integration builds it)"
MEMBERS="a b c"

# One HTTPS request as an agent to member M's nginx (main listener, or canary with
# PORT_KIND=canary): areq M TRUST METHOD PATH [CURL_ARGS...], nginx.sh's tls_req (CODE; the
# headers for lib.sh's hdr, the body in $T/body).
PORT_KIND=main
areq() {
	local m=$1 port
	shift
	if [ "$PORT_KIND" = canary ]; then port=$(pool_canary_port "$m"); else port=$(pool_port "$m"); fi
	tls_req "$port" "$@"
}
expect_code() {
	[ "$CODE" = "$1" ] || fail "$2: HTTP $1" "got $CODE: $(cat "$T/err")" "body: $(head -c 300 "$T/body")"
	ok "$2: HTTP $1"
}
etag() { hdr ETag | tr -d '"'; }

KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
# link M ID [TRUST] [BEARER]
link() {
	areq "$1" "${3:-$T/ca-old.pem}" POST /carotate/v1/link -H "Authorization: Bearer ${4-$KEY}" \
		-H "X-Agent-Id: $2" --data-binary ''
}
# checkin M TRUST ID TOKEN [ETAG]
checkin() {
	local m=$1 trust=$2 id=$3 token=$4 e=${5:-}
	if [ -n "$e" ]; then
		areq "$m" "$trust" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $token" \
			-H "X-Agent-Id: $id" -H "If-None-Match: \"$e\""
	else
		areq "$m" "$trust" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $token" \
			-H "X-Agent-Id: $id"
	fi
}

# ---------------------------------------------------------------- the pool
echo "-- three members on one PostgreSQL"
pg_start
pool_key_write
for m in $MEMBERS; do
	pool_member_init "$m"
done
pool_active_set "$T/ca-old.pem"
pool_start
for m in $MEMBERS; do
	pool_ctl "$m" --json status | jsave "$T/st-$m.json"
	assert_eq postgresql "$(jget ledger.backend "$T/st-$m.json")" "member $m: status shows the PostgreSQL ledger"
	assert_eq "$m" "$(jget ledger.member "$T/st-$m.json")" "member $m: status names the member"
	if grep -q "$(sed -n 's/.*host=\([^ ]*\).*/\1/p' "$PG_DSN_FILE")" "$T/st-$m.json" "$T/daemon-$m.log"; then
		fail "member $m: neither status nor the log shows the connection string"
	fi
done
pool_same_report "empty pool" "linked=0"

# ---------------------------------------------------------------- tokens across members
echo "-- a token issued by one member is valid on the others"
link a agent-1
expect_code 200 "agent-1 links through member a"
TOK1=$(hdr X-Agent-Token)
E1=$(etag)
for m in b c; do
	checkin "$m" "$T/ca-old.pem" agent-1 "$TOK1" "$E1"
	expect_code 304 "agent-1 checks in through member $m with member a's token"
done
link b agent-1
expect_code 409 "agent-1 cannot link again through member b"
pool_same_report "one agent" "linked=1"

pool_ctl c --json join-token create --uses 1 >"$T/jt.json" || fail "join-token create on member c"
JT=$(json_get token <"$T/jt.json")
link a agent-j "$T/ca-old.pem" "$JT"
expect_code 200 "a join token made on member c links through member a"
TOKJ=$(hdr X-Agent-Token)
link b agent-j2 "$T/ca-old.pem" "$JT"
expect_code 401 "its one use is spent pool-wide: member b refuses it"

# A renewal is a re-link carrying the current token (carotate-protocol(7)).
areq b "$T/ca-old.pem" POST /carotate/v1/link -H "Authorization: Bearer $KEY" -H "X-Agent-Id: agent-j" \
	-H "X-Agent-Token: $TOKJ" --data-binary ''
expect_code 200 "agent-j renews its token through member b"
NEWJ=$(hdr X-Agent-Token)
checkin c "$T/ca-old.pem" agent-j "$TOKJ" "$E1"
expect_code 401 "the old token is refused by member c"
checkin a "$T/ca-old.pem" agent-j "$NEWJ" "$E1"
expect_code 304 "the new token works through member a"

echo "-- agentsim: $SIM_AGENTS agents link through member a, check in through b and c"
SIM_DIR="$T/fleet"
sim() {
	local m=$1
	shift
	"$AGENTSIM" --dir "$SIM_DIR" --port "$(pool_port "$m")" --canary-port "$(pool_canary_port "$m")" \
		--server-name "$NGINX_SERVER_NAME" --agents "$SIM_AGENTS" --initial-ca "$T/ca-old.pem" \
		--concurrency 8 --report "$@"
}
run sim a --link --linking-key "$LINKING_KEY" --rounds 1 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim links through member a" "exit $RC" "$ERR" "$OUT"
for m in b c; do
	run sim "$m" --rounds 1 --expect-all-ok
	[ "$RC" -eq 0 ] || fail "agentsim checks in through member $m" "exit $RC" "$ERR" "$OUT"
	printf '%s' "$OUT" | jsave "$T/sim-$m.json"
	assert_eq "$SIM_AGENTS" "$(jget status.304 "$T/sim-$m.json")" "every agent gets 304 through member $m"
done
N=$((SIM_AGENTS + 2))
pool_same_report "the fleet linked" "linked=$N"

# ---------------------------------------------------------------- staged on every member
# leaf_fp FILE: the SHA-256 fingerprint of the first certificate in FILE ("" when none).
leaf_fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" 2>/dev/null; }
echo "-- one install stages the set on every member; agents acknowledge through any of them"
make_cert_set "$T/newset" staged
assert_exit 0 "install on member a (the pool's call: every member stages the set)" -- \
	pool_ctl a --json install --ca "$T/newset/ca.crt" --cert "$T/newset/server.crt" \
	--key "$T/newset/server.key"
for m in $MEMBERS; do
	pool_use "$m"
	[ "$(leaf_fp "$SSL_DIR/new/server.crt")" = "$(leaf_fp "$T/newset/server.crt")" ] ||
		fail "member $m has the installed set staged"
	nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/new/server.crt"
done
ok "every member has the set staged and its canary serves it"
pool_same_report "staged, nobody acknowledged" "acknowledged=0"

checkin b "$T/ca-old.pem" agent-1 "$TOK1" "$E1"
expect_code 200 "agent-1 gets the new bundle from member b"
E2=$(etag)
cp "$T/body" "$T/bundle2.pem"
checkin c "$T/bundle2.pem" agent-1 "$TOK1" "$E2"
expect_code 304 "agent-1 acknowledges through member c"
pool_same_report "agent-1 delivered by b, acknowledged through c" "acknowledged=1"
pool_canaries_confirmed
PORT_KIND=canary checkin a "$T/bundle2.pem" agent-1 "$TOK1" "$E2"
expect_code 304 "agent-1 proves the new CA through member a's canary"
pool_same_report "agent-1 verified through a" "verified=1"

echo "-- gate truth across members"
before=$REPORT
checkin c "$T/bundle2.pem" agent-j "$(openssl rand -hex 32)" "$E2"
expect_code 401 "a wrong token on member c"
checkin a "$T/bundle2.pem" agent-j "$TOK1" "$E2"
expect_code 401 "agent-1's token for agent-j on member a"
checkin b "$T/bundle2.pem" agent-nobody "$TOK1" "$E2"
expect_code 401 "an unknown agent on member b"
# agent-j never received the new bundle: presenting its id through another member is forged.
checkin c "$T/bundle2.pem" agent-j "$NEWJ" "$E2"
expect_code 200 "a forged If-None-Match through member c gets the bundle, not a count"
pool_same_report "nothing above counted"
case "$REPORT" in *"acknowledged=1 "*) ok "still one acknowledgement" ;; *) fail "forged ETag counted" "$before" "$REPORT" ;; esac

run sim c --rounds 2 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet fetches and acknowledges through member c" "exit $RC" "$ERR" "$OUT"
pool_same_report "the fleet acknowledged through member c" "acknowledged=$((SIM_AGENTS + 1))"

assert_exit 0 "exclude agent-j on member b" -- pool_ctl b exclude agent-j --reason "decommissioned"
pool_same_report "agent-j excluded on b, excluded everywhere" "excluded=1"

# ---------------------------------------------------------------- one audit chain
echo "-- one audit chain for the pool"
for m in $MEMBERS; do
	assert_exit 0 "audit --verify on member $m" -- pool_ctl "$m" audit --verify
done
pool_ctl a --json audit --limit 100 >"$T/audit.json"
for m in $MEMBERS; do
	grep -q "member=$m" "$T/audit.json" || fail "the pool's chain has a record of member $m" "$(head -c 2000 "$T/audit.json")"
done
ok "the chain holds records of members a, b and c"
ta=$(pool_ctl a --json audit --limit 1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
tc=$(pool_ctl c --json audit --limit 1 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
assert_eq "$ta" "$tc" "members a and c see the same chain length"

# ---------------------------------------------------------------- cut off from PostgreSQL
echo "-- PostgreSQL stops: members answer check-ins from what they hold, count nothing, change nothing"
before=$REPORT
pg_stop
checkin b "$T/bundle2.pem" agent-1 "$TOK1" "$E2"
expect_code 304 "cut off, member b still answers agent-1 (its token is cached)"
checkin a "$T/bundle2.pem" agent-1 "$(openssl rand -hex 32)" "$E2"
case "$CODE" in 200 | 304) fail "cut off, a wrong token is still refused" "HTTP $CODE" ;; esac
ok "cut off, a wrong token is still refused (HTTP $CODE)"
pool_ctl b --json status | jsave "$T/st-off.json"
assert_eq false "$(jget ledger.reachable "$T/st-off.json")" "status on member b: the ledger is out of reach"
assert_ne "" "$(jget ledger.last_error "$T/st-off.json")" "status on member b says why"
run pool_ctl b report
assert_eq 2 "$RC" "report on member b is UNAVAILABLE (exit 2) while the ledger is out of reach"
t_log "report while cut off: $ERR"
run pool_ctl c rotate
assert_ne 0 "$RC" "rotate on member c is refused while the ledger is out of reach"
t_log "rotate while cut off (exit $RC): $ERR"
run pool_ctl a exclude agent-1 --reason "cut off"
assert_eq 2 "$RC" "exclude on member a is refused UNAVAILABLE (exit 2) while the ledger is out of reach"
assert_contains "ledger" "$ERR$OUT" "and the refusal names the ledger"
t_log "exclude while cut off: $ERR"
run pool_ctl c join-token create
assert_eq 2 "$RC" "join-token create on member c is refused UNAVAILABLE (exit 2)"
t_log "join-token create while cut off: $ERR"
pool_use b
serves_now "$(leaf_sha "$SSL_DIR/server.crt")" "member b's nginx serves its active set throughout"
pool_save b
pg_start
for m in $MEMBERS; do
	wait_until 40000 eval "pool_ctl $m report >/dev/null 2>&1" ||
		fail "member $m reaches the ledger again once PostgreSQL is back"
done
ok "every member reaches the ledger again"
pool_same_report "back: nothing was counted while cut off"
[ "$REPORT" = "$before" ] || fail "the report is what it was before the outage" "before: $before" "after:  $REPORT"
ok "the report is what it was before the outage"
pool_ctl b --json status | jsave "$T/st-on.json"
assert_eq true "$(jget ledger.reachable "$T/st-on.json")" "status on member b: the ledger answers again"
for m in $MEMBERS; do
	assert_exit 0 "audit --verify on member $m after the outage" -- pool_ctl "$m" audit --verify
done
for f in "$T"/daemon-*.log "$T"/st-*.json; do
	if grep -qF "$PG_PASSWORD" "$f"; then
		fail "the database password appears in $f"
	fi
done
ok "the database password appears in no member's log or status"

# ---------------------------------------------------------------- a burst cut short
echo "-- PostgreSQL stops in the middle of a burst of check-ins: nothing is counted that was not acknowledged"
assert_exit 0 "discard on member b (every member's staged set goes)" -- pool_ctl b discard
make_cert_set "$T/set3" third
assert_exit 0 "install a third set on member c" -- pool_ctl c --json install \
	--ca "$T/set3/ca.crt" --cert "$T/set3/server.crt" --key "$T/set3/server.key"
for m in $MEMBERS; do
	pool_use "$m"
	[ "$(leaf_fp "$SSL_DIR/new/server.crt")" = "$(leaf_fp "$T/set3/server.crt")" ] ||
		fail "member $m has the third set staged"
done
ok "every member has the third set staged"
BUNDLE3=$(pool_ctl a --json status | json_get bundle.id)
pool_same_report "the third set staged, nobody acknowledged it" "acknowledged=0"
sim c --rounds 8 --interval 250 --concurrency 4 >"$T/burst.json" 2>"$T/burst.err" &
burst=$!
sleep 1
pg_stop
sleep 2
pg_start
wait "$burst" || true
for m in $MEMBERS; do
	wait_until 40000 eval "pool_ctl $m report >/dev/null 2>&1" ||
		fail "member $m reaches the ledger again after the burst"
done
holders=0
for d in "$SIM_DIR"/*/; do
	[ "$(cat "$d/etag" 2>/dev/null)" = "$BUNDLE3" ] && holders=$((holders + 1))
done
acked=$(pool_ctl b --json report | json_get acknowledged)
t_log "burst: $holders agents hold the third bundle, the pool counts $acked acknowledged"
[ "$acked" -le "$holders" ] || fail "the pool counts no more acknowledgements than agents holding the bundle" \
	"acknowledged $acked, holders $holders"
ok "acknowledged $acked <= $holders agents that hold the third bundle"
run sim a --rounds 2 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet checks in through member a once PostgreSQL is back" "$ERR" "$OUT"
pool_same_report "the fleet converges once PostgreSQL is back" "acknowledged=$SIM_AGENTS"

# ---------------------------------------------------------------- damaged sealed data
echo "-- the pool's sealed key check damaged: a member refuses to start and says why"
pool_use a
stop_daemon
pg_psql -d carotate -c "UPDATE blobs SET blob = set_byte(blob, 20, get_byte(blob, 20) # 1) WHERE name = 'pool/keycheck'"
run "$CAROTATED" -f -c "$CONF"
assert_ne 0 "$RC" "member a over a damaged key check exits non-zero"
assert_contains "sealed data" "$ERR$OUT" "it says the pool's sealed data does not open"
pg_psql -d carotate -c "UPDATE blobs SET blob = set_byte(blob, 20, get_byte(blob, 20) # 1) WHERE name = 'pool/keycheck'"
start_daemon
pool_save a
ok "the key check repaired, member a starts again"

# ---------------------------------------------------------------- refusals at start-up
echo "-- a member with a wrong pool key or no DSN file refuses to start"
pool_use c
stop_daemon
cp "$CONF" "$T/c-good.conf"
(umask 077 && openssl rand -hex 32 >"$T/wrong.key")
sed -i "s|^pool_key = .*|pool_key = $T/wrong.key|" "$CONF"
run "$CAROTATED" -f -c "$CONF"
assert_ne 0 "$RC" "member c with a wrong pool key exits non-zero"
assert_contains "pool_key does not open" "$ERR$OUT" "it says the pool key is wrong"
sed -i "s|^dsn_file = .*|dsn_file = $T/missing.dsn|" "$T/c-good.conf"
run "$CAROTATED" -f -c "$T/c-good.conf"
assert_ne 0 "$RC" "member c with a missing DSN file exits non-zero"
assert_contains "dsn_file" "$ERR$OUT" "it names dsn_file"
