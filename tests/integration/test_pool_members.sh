#!/bin/bash
# A pool's members (carotatectl(1) status and report, carotated.conf(5) [ledger] heartbeat):
# three carotated on one PostgreSQL, each with its own nginx, heartbeat every 2 s.
#
#  - status on every member lists every member, with a fresh heartbeat and what each serves
#    (the SHA-256 of its CA and server certificate, read from its own SSL directory);
#  - agents check in through different members: report splits the counts by the member each
#    last came through, report --member gives one member's share, the totals stay the pool's;
#    an unknown or malformed member name is refused (exit 5);
#  - a member killed with SIGKILL goes stale after three intervals: status says so on the
#    others, and rotate refuses (exit 3) naming it and its heartbeat's age, audited; with
#    --force --reason that check passes;
#  - a member started again is fresh again.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=pg.sh
. "$(dirname "$0")/pg.sh"
# shellcheck source-path=SCRIPTDIR source=pool.sh
. "$(dirname "$0")/pool.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init
pg_require
nginx_setup

MEMBERS="a b c"
BEAT=2
STALE_AFTER=$((3 * BEAT))

sha_of() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# One HTTPS request as an agent to member M's nginx: areq M METHOD PATH [CURL_ARGS...].
# Sets CODE and CURL_RC; headers in $T/r.head.
CODE=""
CURL_RC=0
areq() {
	local m=$1 method=$2 path=$3 port
	shift 3
	port=$(pool_port "$m")
	rm -f "$T/r.head"
	CURL_RC=0
	CODE=$(curl -sS --max-time 15 --cacert "$T/ca.pem" --resolve "$NGINX_SERVER_NAME:$port:127.0.0.1" \
		-X "$method" -D "$T/r.head" -o /dev/null -w '%{http_code}' "$@" \
		"https://$NGINX_SERVER_NAME:$port$path" 2>"$T/r.err") || CURL_RC=$?
	[ -f "$T/r.head" ] || : >"$T/r.head"
}
rhdr() { tr -d '\r' <"$T/r.head" | sed -n "s/^$1: *//Ip" | head -n1; }
expect_code() {
	if [ "$CURL_RC" -ne 0 ] || [ "$CODE" != "$1" ]; then
		fail "$2: HTTP $1" "got HTTP $CODE, curl exit $CURL_RC: $(cat "$T/r.err")"
	fi
	ok "$2: HTTP $1"
}

KEY=""
# link M ID: the agent's token and bundle id in TOK_<ID> and ETAG_<ID>.
link() {
	areq "$1" POST /carotate/v1/link -H "Authorization: Bearer $KEY" -H "X-Agent-Id: $2" \
		--data-binary ''
	expect_code 200 "$2 links through member $1"
	printf -v "TOK_$2" '%s' "$(rhdr X-Agent-Token)"
	printf -v "ETAG_$2" '%s' "$(rhdr ETag | tr -d '"')"
}
# checkin M ID: a check-in presenting the bundle it was given.
checkin() {
	local tok="TOK_$2" etag="ETAG_$2"
	areq "$1" GET /carotate/v1/ca-bundle -H "Authorization: Bearer ${!tok}" -H "X-Agent-Id: $2" \
		-H "If-None-Match: \"${!etag}\""
	expect_code 304 "$2 checks in through member $1"
}

# The pool as member M's status shows it: "name stale active_ca active_server staged_ca" lines.
pool_lines() {
	pool_ctl "$1" --json status | "$PY" -c '
import json, sys
st = json.load(sys.stdin)
for m in st["pool"]:
    print(m["member"], "stale" if m["stale"] else "fresh", m["heartbeat_age"], m["active_ca"],
          m["active_server"], m["staged_ca"], m["last_reload_ok"], m["last_error"])'
}
# The split of member M's report as "name:active/acknowledged/verified/pending" words.
split_of() {
	local m=$1
	shift
	pool_ctl "$m" --json report "$@" | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join("%s:%d/%d/%d/%d" % (x["member"], x["active"], x["acknowledged"], x["verified"],
               x["pending"]) for x in (r["members"] or [])), "total:%d/%d" % (r["linked"], r["active"]))'
}

# ---------------------------------------------------------------- the pool
echo "-- three members on one PostgreSQL, heartbeat every ${BEAT}s"
pg_start
pool_key_write
for m in $MEMBERS; do
	pool_member_init "$m"
	printf 'heartbeat = %ss\n' "$BEAT" >>"$CONF"
done
pool_active_set "$T/ca.pem"
CA_SHA=$(sha_of "$SSL_DIR/ca.crt")
SRV_SHA=$(sha_of "$SSL_DIR/server.crt")
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
pool_start

echo "-- status on every member lists every member, fresh, with what it serves"
for m in $MEMBERS; do
	pool_lines "$m" >"$T/pool-$m.txt" || fail "status --json on member $m"
	assert_eq "a b c" "$(cut -d' ' -f1 "$T/pool-$m.txt" | tr '\n' ' ' | sed 's/ $//')" \
		"member $m's status lists members a, b and c"
	while read -r name fresh age ca srv staged _; do
		assert_eq fresh "$fresh" "member $m sees $name fresh (heartbeat ${age}s ago)"
		[ "$age" -le "$STALE_AFTER" ] || fail "member $m: $name's heartbeat age $age is within $STALE_AFTER s"
		assert_eq "$CA_SHA" "$ca" "member $m sees the CA $name serves"
		assert_eq "$SRV_SHA" "$srv" "member $m sees the server certificate $name serves"
		assert_eq None "$staged" "member $m sees nothing staged on $name"
	done <"$T/pool-$m.txt"
done
run pool_ctl b status
assert_eq 0 "$RC" "human status on member b"
assert_contains "3 members" "$OUT" "the human status counts the members"
assert_match "a: heartbeat [0-9]+s ago; serves CA ${CA_SHA:0:16}" "$OUT" "one line for member a with what it serves"
[ "$(printf '%s\n' "$OUT" | grep -c ': heartbeat ')" -eq 3 ] || fail "one line per member" "$OUT"
ok "one line per member"

# ---------------------------------------------------------------- report --member
echo "-- agents check in through different members; report splits the counts"
for id in ag1 ag2 ag3 ag4; do
	link a "$id"
done
checkin b ag1
checkin b ag2
checkin c ag3
checkin c ag3
# ag4 never came back: it stays with member a, pending (it never presented its bundle).
for m in $MEMBERS; do
	assert_eq "a:1/0/0/1 b:2/0/0/0 c:1/0/0/0 total:4/4" "$(split_of "$m")" \
		"member $m's report splits the pool's four agents by member"
done
assert_eq "b:2/0/0/0 total:4/4" "$(split_of c --member b)" "report --member b on member c: b's share, the pool's totals"
assert_eq "c:1/0/0/0 total:4/4" "$(split_of a --member c)" "report --member c on member a"
checkin a ag1
assert_eq "a:2/0/0/1 b:1/0/0/0 c:1/0/0/0 total:4/4" "$(split_of b)" "ag1 back through member a moves to a"
run pool_ctl a report --member b
assert_eq 0 "$RC" "human report --member b"
assert_contains "member b: active 1" "$OUT" "the human report shows member b's share"
run pool_ctl a report --member nosuch
assert_eq 5 "$RC" "report --member of a name no member has exits 5"
assert_contains "no member nosuch" "$ERR" "and says so"
run pool_ctl a report --member 'bad/name'
assert_eq 5 "$RC" "report --member of a malformed name exits 5"

# ---------------------------------------------------------------- the stale gate
echo "-- member c killed: stale after three intervals, rotate refused unless forced"
pool_use a
assert_exit 0 "generate on member a" -- ctl --json generate
pool_save a
pool_use c
C_PID=$DAEMON_PID
kill -KILL "$C_PID"
{ wait "$C_PID"; } 2>/dev/null || true
pool_save c
ok "member c's carotated killed (SIGKILL)"
stale_on_a() { pool_lines a | grep -q '^c stale '; }
wait_until $(((STALE_AFTER + 6) * 1000)) stale_on_a || fail "member a sees member c stale" "$(pool_lines a)"
pool_lines a >"$T/pool-stale.txt"
age=$(awk '$1 == "c" { print $3 }' "$T/pool-stale.txt")
[ "$age" -gt "$STALE_AFTER" ] || fail "c's heartbeat age ($age) is over $STALE_AFTER s"
ok "member a sees member c stale, heartbeat ${age}s ago"
if ! grep -q '^a fresh ' "$T/pool-stale.txt" || ! grep -q '^b fresh ' "$T/pool-stale.txt"; then
	fail "members a and b stay fresh" "$(cat "$T/pool-stale.txt")"
fi
ok "members a and b stay fresh"
run pool_ctl b status
assert_match "c: STALE, heartbeat [0-9]+s ago" "$OUT" "member b's human status calls member c stale"
assert_contains "1 STALE" "$OUT" "and counts it"

pool_use a
run ctl rotate
assert_eq 3 "$RC" "rotate on member a exits 3 while member c is stale"
assert_match "member of the pool is stale: c \(heartbeat [0-9]+s ago\)" "$ERR" \
	"the refusal names member c and its heartbeat's age"
t_log "refusal: $ERR"
assert_eq "rotate FAILED_PRECONDITION" "$(last_audit)" "the refusal is audited"
assert_contains "c (heartbeat" "$(json_get records.0.detail "$T/last-audit.json")" \
	"the audit record names member c"
assert_eq "$CA_SHA" "$(sha_of "$SSL_DIR/ca.crt")" "nothing rotated on member a"
assert_eq "$CA_SHA" "$(pool_lines b | awk '$1 == "a" { print $4 }')" "and the pool sees a serve its old CA"

run ctl rotate --force --reason "member c was decommissioned"
assert_eq 0 "$RC" "rotate --force --reason on member a passes the stale check and rotates"
grep -q "rotate forced with 1 stale pool member: c (heartbeat" "$DAEMON_LOG" ||
	fail "member a's log records the forced rotate past the stale member" "$(tail -n 20 "$DAEMON_LOG")"
ok "member a's log records the forced rotate past the stale member"
NEW_CA=$(sha_of "$SSL_DIR/ca.crt")
assert_ne "$CA_SHA" "$NEW_CA" "member a serves a new CA"
pool_save a
# The beat after the call: the pool sees a's new set at once, not a heartbeat later.
assert_eq "$NEW_CA" "$(pool_lines b | awk '$1 == "a" { print $4 }')" \
	"member b sees the CA member a serves now"
assert_eq True "$(pool_lines b | awk '$1 == "a" { print $7 }')" "and a's last reload went well"

echo "-- member c started again is fresh again"
pool_use c
start_daemon
pool_save c
fresh_on_b() { pool_lines b | grep -q '^c fresh '; }
wait_until $((STALE_AFTER * 1000)) fresh_on_b || fail "member b sees member c fresh again" "$(pool_lines b)"
ok "member b sees member c fresh again"
for f in "$T"/daemon-*.log; do
	if grep -qF "$PG_PASSWORD" "$f"; then
		fail "the database password appears in $f"
	fi
done
ok "the database password appears in no member's log"

echo "-- PostgreSQL stops: a failed heartbeat is said once per outage, never fatal"
pg_stop
sleep $((3 * BEAT + 1))
for m in $MEMBERS; do
	n=$(grep -c "pool heartbeat: cannot write this member's state" "$T/daemon-$m.log" || true)
	assert_eq 1 "$n" "member $m logs the failed heartbeat once for the whole outage"
done
pool_use a
daemon_alive || fail "member a keeps running while its heartbeat fails"
ok "member a keeps running while its heartbeat fails"
assert_eq null "$(pool_ctl a --json status | json_get pool)" "status: the pool's members are unknown (null)"
assert_contains "members unknown" "$(pool_ctl a status)" "the human status says the members are unknown"
pg_start
written_again() { grep -q "pool heartbeat: this member's state is written again" "$T/daemon-a.log"; }
wait_until 40000 written_again || fail "member a writes its heartbeat again once PostgreSQL is back"
ok "member a writes its heartbeat again once PostgreSQL is back"
all_fresh() { [ "$(pool_lines b | grep -c ' fresh ')" -eq 3 ]; }
wait_until $((STALE_AFTER * 1000)) all_fresh ||
	fail "every member is fresh again" "$(pool_lines b)"
ok "every member is fresh again"
