#!/bin/bash
# carotated --migrate-ledger (carotated(8) MIGRATING TO A POOL): a single proxy's ledger copied
# into a pool's PostgreSQL ledger.
#  - a single proxy (SQLite) with three agents linked through its nginx, one excluded, and a
#    join token; its ledger is refused while its daemon runs, and once stopped is copied:
#    "agents: 3 copied", the join token, the source's audit chain verified and linked to the
#    pool's by one record; a second run copies nothing and exits 0;
#  - a pool member serving the same CA then answers the agents' own tokens (the bundle sent
#    once, then 304), reports the excluded agent as excluded, and links a new agent with the
#    join token; its audit chain verifies and holds the migrate-ledger record;
#  - bad inputs, each exit 1 with a message and nothing copied: a missing file, a file that is
#    not SQLite, a truncated ledger, a configuration whose backend is sqlite.
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
pg_require
t_init

# areq PORT TRUST METHOD PATH [CURL_ARGS...]: one HTTPS request as an agent; CODE, CURL_RC,
# the headers in $T/r.head.
CODE=""
CURL_RC=0
areq() {
	local port=$1 trust=$2 method=$3 path=$4
	shift 4
	CURL_RC=0
	CODE=$(curl -sS --max-time 15 --cacert "$trust" --resolve "$NGINX_SERVER_NAME:$port:127.0.0.1" \
		-X "$method" -D "$T/r.head" -o "$T/r.body" -w '%{http_code}' "$@" \
		"https://$NGINX_SERVER_NAME:$port$path" 2>"$T/r.err") || CURL_RC=$?
}
rhdr() { tr -d '\r' <"$T/r.head" | sed -n "s/^$1: *//Ip" | head -n1; }
# link PORT ID BEARER (the linking key or a join token)
link() {
	areq "$1" "$TRUST" POST /carotate/v1/link -H "Authorization: Bearer $3" -H "X-Agent-Id: $2" \
		--data-binary ''
}
# checkin PORT ID TOKEN ETAG
checkin() {
	areq "$1" "$TRUST" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $3" \
		-H "X-Agent-Id: $2" -H "If-None-Match: \"$4\""
}
expect_code() {
	if [ "$CURL_RC" -ne 0 ] || [ "$CODE" != "$1" ]; then
		fail "$2: HTTP $1" "got HTTP $CODE, curl exit $CURL_RC: $(cat "$T/r.err")"
	fi
	ok "$2: HTTP $1"
}
# migrate CONF FROM: carotated --migrate-ledger; RC, OUT, ERR.
migrate() { run "$CAROTATED" -c "$1" --migrate-ledger "$2"; }
# refused WHAT CONF FROM PATTERN: exit 1, a message matching PATTERN.
refused() {
	migrate "$2" "$3"
	assert_eq 1 "$RC" "$1: exit 1 ($ERR)"
	assert_match "$4" "$ERR" "$1: says why"
	assert_eq "" "$OUT" "$1: prints no counts"
}

pg_start
pool_key_write

# ---------------------------------------------------------------- the single proxy
echo "-- a single proxy with three agents, one excluded, and a join token"
make_active_set
TRUST="$T/trust.pem"
cp "$SSL_DIR/ca.crt" "$TRUST"
nginx_write_daemon_config
start_daemon
wait_until 5000 test -S "$RUN_DIR/agent.sock" || fail "the agent socket exists"
nginx_start
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
declare -A TOKEN ETAG
for a in agent-a agent-b agent-c; do
	link "$NGINX_PORT" "$a" "$KEY"
	expect_code 200 "single proxy: link $a"
	TOKEN[$a]=$(rhdr X-Agent-Token)
	ETAG[$a]=$(rhdr ETag | tr -d '"')
	checkin "$NGINX_PORT" "$a" "${TOKEN[$a]}" "${ETAG[$a]}"
	expect_code 304 "single proxy: $a checks in"
done
run ctl exclude agent-c --reason "retired host"
assert_eq 0 "$RC" "single proxy: exclude agent-c ($ERR)"
JOIN=$(ctl --json join-token create --uses 2 --description "rack 9" | json_get token)
assert_match '.' "$JOIN" "single proxy: a join token"
SRC="$STATE_DIR/ledger.db"
SINGLE_CONF=$CONF
SINGLE_SSL=$SSL_DIR
POOL_CUR=single
pool_save single

pool_member_init m1
cp "$SINGLE_SSL/ca.crt" "$SINGLE_SSL/server.crt" "$SSL_DIR/"
(umask 077 && cp "$SINGLE_SSL/server.key" "$SSL_DIR/")
pool_save m1
M1_CONF=$CONF

echo "-- refused while the single proxy's daemon runs"
refused "a running daemon's ledger" "$M1_CONF" "$SRC" "is open in another process.*stop the carotated"

pool_use single
nginx_stop
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "single proxy: its daemon stopped"
# The source chain's length and head, as any SQLite reader sees them.
read -r SRC_SEQ SRC_HEAD < <("$PY" -c '
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
print(*db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone())' "$SRC")
assert_match '^[0-9a-f]{64}$' "$SRC_HEAD" "the source's audit head"

# ---------------------------------------------------------------- bad inputs
echo "-- bad inputs: exit 1, nothing copied"
refused "a missing file" "$M1_CONF" "$T/nothing.db" "nothing.db: No such file"
head -c 4096 /dev/urandom >"$T/random.db"
refused "a file that is not SQLite" "$M1_CONF" "$T/random.db" "is not an SQLite database"
cp "$SRC" "$T/truncated.db"
truncate -s 3072 "$T/truncated.db"
refused "a truncated ledger" "$M1_CONF" "$T/truncated.db" "is corrupt"
refused "a configuration whose backend is sqlite" "$SINGLE_CONF" "$SRC" \
	"backend is sqlite: --migrate-ledger copies into a pool"

# ---------------------------------------------------------------- the migration
echo "-- migrate, then again"
migrate "$M1_CONF" "$SRC"
assert_eq 0 "$RC" "migrate exits 0 ($ERR)"
printf '%s\n' "$OUT"
assert_contains "agents: 3 copied, 0 already in the pool, 0 conflicts" "$OUT" "three agents copied"
assert_contains "join tokens: 1 copied, 0 already in the pool, 0 conflicts" "$OUT" \
	"the join token copied"
assert_contains "audit: source chain of $SRC_SEQ records verified, head $SRC_HEAD, recorded as pool record #1" \
	"$OUT" "the source's chain verified and linked"
assert_contains "not copied: acknowledgements and verifications" "$OUT" "says what is not copied"
migrate "$M1_CONF" "$SRC"
assert_eq 0 "$RC" "a second run exits 0 ($ERR)"
assert_contains "agents: 0 copied, 3 already in the pool, 0 conflicts" "$OUT" "again: nothing copied"
assert_contains "join tokens: 0 copied, 1 already in the pool" "$OUT" "again: no join token copied"
assert_contains "recorded as pool record #2" "$OUT" "again: recorded"

# ---------------------------------------------------------------- a pool member
echo "-- a pool member answers the migrated agents"
pool_use m1
start_daemon
wait_until 5000 test -S "$RUN_DIR/agent.sock" || fail "m1: the agent socket exists"
nginx_start
pool_save m1
for a in agent-a agent-b; do
	checkin "$NGINX_PORT" "$a" "${TOKEN[$a]}" "${ETAG[$a]}"
	expect_code 200 "m1: $a's own token works (the bundle is sent once)"
	checkin "$NGINX_PORT" "$a" "${TOKEN[$a]}" "${ETAG[$a]}"
	expect_code 304 "m1: $a checks in"
done
checkin "$NGINX_PORT" agent-a "${TOKEN[agent-b]}" "${ETAG[agent-a]}"
expect_code 401 "m1: another agent's token is refused"
ctl --json report | jsave "$T/rep.json"
assert_eq 3 "$(jget linked "$T/rep.json")" "m1: report linked 3"
assert_eq 1 "$(jget excluded "$T/rep.json")" "m1: report excluded 1 (agent-c stays excluded)"
link "$NGINX_PORT" agent-d "$JOIN"
expect_code 200 "m1: the migrated join token links agent-d"
run ctl audit --verify
assert_eq 0 "$RC" "m1: the pool's audit chain verifies ($OUT $ERR)"
run ctl --json audit
assert_contains "migrate-ledger" "$OUT" "m1: the audit log holds the migration"
assert_contains "source_head=$SRC_HEAD" "$OUT" "m1: the record names the source's head"
if printf '%s' "$OUT" | grep -q '"adopt"'; then
	fail "m1: its start adopts nothing (the migration recorded the sets it serves)" "$OUT"
fi
ok "m1: its start adopts nothing"
