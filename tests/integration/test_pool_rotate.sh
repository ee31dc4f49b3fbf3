#!/bin/bash
# timeout: 300 (member b restarted after SIGKILL at five points of a pool rotate, three nginx, PostgreSQL)
# Pool-wide mutations (carotatectl(1), carotated.conf(5) [ledger]): three members a, b and c,
# each its own carotated and nginx, on one PostgreSQL. Any member takes any call; the call
# returns once every live member applied it, or rolls the whole pool back naming the member
# that failed.
#
#  - generate on b stages the same set on a, b and c: each one's status shows it staged and
#    each one's ca-bundle.pem holds the old and the new CA;
#  - status --json has pool_state {generation, active, staged, call, member}; after each call
#    the generation is one more and every member's pool row shows it applied, without error;
#  - agents link through a, fetch through b, acknowledge through c and prove the new CA
#    through each member's canary: report is the same on every member;
#  - rotate on c (the gate at 100 %), restore on a, renew on b, discard on a after a
#    generate, install on c: each member's nginx serves what the call put live, a curl
#    trusting the agents' bundle connects to each, every member keeps a backup;
#  - member b's nginx pinned to copies of the old files: rotate on a exits 6 naming b, and
#    the pool serves the old leaf again, with its audit chain verified on every member;
#  - member b killed (SIGKILL, carotated-faults) at points of its part of a rotate on a, then
#    started again: the pool ends all old or all new, never a mix, and counts no more
#    acknowledgements than there are agents;
#  - PostgreSQL stopped during a rotate: exit 0 or 2; once it is back every member serves the
#    pool's active set, and none ever served a third one;
#  - a set sealed in the database damaged: member c, started again without its staged copy,
#    refuses to apply it, says why in its pool row and keeps serving what it served; a
#    rotate fails naming c.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "restarts a member's carotated after SIGKILL five times and three daemons and three nginx run at once; the pool's calls run under ASan in test_pool_ledger and test_pool_members"
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

SIM_AGENTS=${CAROTATE_POOL_AGENTS:-24}
AGENTSIM="$CAROTATE_BUILD/agentsim"
FAULTY="$CAROTATE_BUILD/carotated-faults"
[ -x "$AGENTSIM" ] || fail "$AGENTSIM is missing (make integration builds it)"
[ -x "$FAULTY" ] || fail "$FAULTY is missing (make integration builds it)"
MEMBERS="a b c"
BEAT=2
# The points of a member's part of a pool rotate: before and after its swap, every step of the
# swap's journal (swap-rotate-N, walked until one is not reached), and after its reload.
CRASH_POINTS="pool-apply-before-swap $(seq -f 'swap-rotate-%g' 1 30 | tr '\n' ' ')pool-apply-after-swap
pool-apply-after-reload"

# ---------------------------------------------------------------- helpers
# st M: member M's status --json, saved (and flattened for jget) in $T/st-M.json.
st() {
	pool_ctl "$1" --json status >"$T/st-$1.raw" || fail "status --json on member $1" "$(cat "$T/st-$1.raw")"
	jsave "$T/st-$1.json" <"$T/st-$1.raw"
}
# served_on M: the SHA-256 of the leaf member M's nginx serves to a new handshake.
served_on() { nginx_served_sha256 "$(pool_port "$1")"; }
_serves() { [ "$(served_on "$1")" = "$2" ]; }
# all_serve SHA WHAT: every member's nginx serves the leaf SHA within 10 s.
all_serve() {
	local m
	for m in $MEMBERS; do
		wait_until 10000 _serves "$m" "$1" ||
			fail "$2: member $m serves the leaf" "want   $1" "served $(served_on "$m")"
	done
	ok "$2: members $MEMBERS serve leaf ${1:0:16}"
}
# same_leaf: every member serves one leaf, printed.
same_leaf() {
	local m s first=""
	for m in $MEMBERS; do
		s=$(served_on "$m")
		[ -n "$s" ] || return 1
		[ -n "$first" ] || first=$s
		[ "$s" = "$first" ] || return 1
	done
	printf '%s\n' "$first"
}

# staged_on M: "CA_SHA LEAF_SHA" of the set member M shows staged, or "none".
staged_on() {
	st "$1"
	if [ "$(jget staged "$T/st-$1.json")" = null ]; then
		echo none
	else
		echo "$(jget staged.ca.sha256 "$T/st-$1.json") $(jget staged.server.sha256 "$T/st-$1.json")"
	fi
}
# all_staged WHAT: every member shows the same staged set; STAGED_CA and STAGED_LEAF.
STAGED_CA=""
STAGED_LEAF=""
all_staged() {
	local m s first=""
	for m in $MEMBERS; do
		s=$(staged_on "$m")
		[ "$s" != none ] || fail "$1: member $m shows a staged set" "its status: staged null, phase $(jget phase \
			"$T/st-$m.json")" "its pool rows: $(jget pool "$T/st-$m.json")"
		[ -n "$first" ] || first=$s
		assert_eq "$first" "$s" "$1: member $m shows the staged set member ${MEMBERS%% *} shows"
	done
	STAGED_CA=${first% *}
	STAGED_LEAF=${first#* }
}
# none_staged WHAT
none_staged() {
	local m
	for m in $MEMBERS; do
		assert_eq none "$(staged_on "$m")" "$1: member $m has no staged set"
	done
}
# bundle_cas M: the SHA-256 of each CA in member M's published ca-bundle.pem, sorted, one line.
bundle_cas() { pem_shas "$T/$1/ssl/ca-bundle.pem" | tr '\n' ' ' | sed 's/ $//'; }

# pool_view M: member M's pool_state and pool rows, one line each:
#   state GENERATION ACTIVE STAGED CALL MEMBER   (STAGED "-" when empty)
#   row NAME APPLIED_GENERATION APPLIED_OK APPLY_ERROR
# or "missing WHAT" where status --json lacks a key of them.
pool_view() {
	st "$1"
	"$PY" - "$T/st-$1.raw" <<'PYEOF'
import json, sys
st = json.load(open(sys.argv[1]))
ps = st.get("pool_state")
if not isinstance(ps, dict):
    print("missing pool_state")
    sys.exit(0)
for k in ("generation", "active", "staged", "call", "member"):
    if k not in ps:
        print("missing pool_state.%s" % k)
        sys.exit(0)
print("state", ps["generation"], ps["active"], ps["staged"] or "-", ps["call"], ps["member"])
for r in st.get("pool") or []:
    for k in ("applied_generation", "applied_ok", "apply_error"):
        if k not in r:
            print("missing pool[%s].%s" % (r.get("member"), k))
            sys.exit(0)
    print("row", r["member"], r["applied_generation"], r["applied_ok"], json.dumps(r["apply_error"]))
PYEOF
}
# pool_gen M: the generation in member M's pool_state, empty when it has none.
pool_gen() { pool_view "$1" | awk '$1 == "state" { print $2 }'; }
# pool_active M: pool_state.active on member M, empty when it has none.
pool_active() { pool_view "$1" | awk '$1 == "state" { print $3 }'; }

# pool_call_done CALL MEMBER ACTIVE STAGED: every member shows the same pool_state, one
# generation past $GEN, naming CALL made on MEMBER, with ACTIVE and STAGED ("-": none); every
# member's row shows that generation applied, without error. GEN becomes the new generation.
GEN=""
pool_call_done() {
	local call=$1 by=$2 active=$3 staged=$4 m v state first="" g got_active got_staged got_call got_by
	for m in $MEMBERS; do
		v=$(pool_view "$m")
		case "$v" in missing*) fail "$call on $by: member $m's status --json has the pool's state" "$v" ;; esac
		state=$(printf '%s\n' "$v" | grep '^state ')
		[ -n "$first" ] || first=$state
		[ "$state" = "$first" ] || fail "$call on $by: member $m shows member a's pool_state" "a: $first" "$m: $state"
		printf '%s\n' "$v" | awk -v g="${state#state }" -v m="$m" '
			BEGIN { split(g, s, " ") }
			$1 == "row" { n++; if ($3 != s[1] || $4 != "True" || $5 != "\"\"") { print "member " m " sees " $0; bad = 1 } }
			END { if (n != 3) { print "member " m " lists " n " rows"; bad = 1 } exit bad }' >"$T/rows.err" ||
			fail "$call on $by: every row shows generation ${state#state } applied, no error" "$(cat "$T/rows.err")" "$v"
	done
	read -r _ g got_active got_staged got_call got_by <<<"$first"
	if [ -n "$GEN" ]; then
		assert_eq $((GEN + 1)) "$g" "$call on $by: the pool's generation is one more"
	fi
	assert_eq "$active $staged $call $by" "$got_active $got_staged $got_call $got_by" "$call on $by: pool_state names the active and staged leaves, the call and the member"
	ok "$call on $by: members $MEMBERS applied generation $g"
	GEN=$g
}

# One HTTPS request trusting TRUST to member M's main listener: areq M TRUST METHOD PATH ...
areq() {
	local m=$1
	shift
	tls_req "$(pool_port "$m")" "$@"
}

# sim M [AGENTSIM_ARGS...]: the fleet (or --first/--agents of it) through member M.
SIM_DIR="$T/fleet"
sim() {
	local m=$1
	shift
	"$AGENTSIM" --dir "$SIM_DIR" --port "$(pool_port "$m")" --canary-port "$(pool_canary_port "$m")" \
		--server-name "$NGINX_SERVER_NAME" --initial-ca "$T/ca-old.pem" --concurrency 4 --report "$@"
}
# sim_ok WHAT M [AGENTSIM_ARGS...]: sim with --expect-all-ok, every agent unless told.
sim_ok() {
	local what=$1
	shift
	run sim "$@" --expect-all-ok
	[ "$RC" -eq 0 ] || fail "$what" "agentsim exit $RC" "$ERR" "$(printf '%s' "$OUT" | head -c 1500)"
	ok "$what"
}

# audit_verified WHAT: audit --verify passes on every member.
audit_verified() {
	local m
	for m in $MEMBERS; do
		assert_exit 0 "$1: audit --verify on member $m" -- pool_ctl "$m" audit --verify
	done
}
# names_member M TEXT: TEXT speaks of a member and has M as a word of its own ("member b
# failed", "members: b, c").
names_member() {
	printf '%s' "$2" | grep -qi member && printf '%s' "$2" | grep -Eq "(^|[^A-Za-z0-9_.-])$1([^A-Za-z0-9_.-]|\$)"
}
assert_names_member() {
	names_member "$1" "$2" || fail "$3" "expected to name member $1" "got: $(printf '%s' "$2" | head -c 1000)"
	ok "$3"
}
# ensure_staged BY: generate on member BY unless a set is staged already; OLD_L (the active
# leaf) and NEW_L (the staged one).
OLD_L=""
NEW_L=""
ensure_staged() {
	if [ "$(staged_on "$1")" = none ]; then
		assert_exit 0 "generate on member $1" -- pool_ctl "$1" generate
		all_staged "generate on $1"
	fi
	st "$1"
	OLD_L=$(jget active.server.sha256 "$T/st-$1.json")
	NEW_L=$(jget staged.server.sha256 "$T/st-$1.json")
}
# Member M's carotated stopped (SIGTERM, or SIGKILL with "kill"), then started again with
# CAROTATED (the normal binary unless the caller sets it) and CAROTATE_CRASH_AT as given.
member_restart() {
	pool_use "$1"
	stop_daemon "${2:-TERM}"
	rm -f "$SOCK"
	start_daemon
	pool_save "$1"
}

# ---------------------------------------------------------------- the pool
echo "-- three members on one PostgreSQL, heartbeat every ${BEAT}s; $SIM_AGENTS agents"
pg_start
pool_key_write
for m in $MEMBERS; do
	pool_member_init "$m"
	printf 'heartbeat = %ss\n' "$BEAT" >>"$CONF"
done
pool_active_set "$T/ca-old.pem"
OLD_CA=$(cert_der_sha256 "$T/ca-old.pem")
LEAF0=$(leaf_sha "$SSL_DIR/server.crt")
pool_start
all_serve "$LEAF0" "the first set"

sim_ok "agentsim: $SIM_AGENTS agents link through member a" a --agents "$SIM_AGENTS" --link \
	--linking-key "$LINKING_KEY" --rounds 1
for m in b c; do
	sim_ok "agentsim: the fleet checks in through member $m" "$m" --agents "$SIM_AGENTS" --rounds 1
done
pool_same_report "the fleet linked" "linked=$SIM_AGENTS"
# The agents' bundle: the first agent's trust store (agentsim: DIR/ID/trust.pem).
TRUST="$SIM_DIR/sim-00000/trust.pem"
[ -s "$TRUST" ] || fail "an agent of the fleet holds a trust bundle ($TRUST)"

# ---------------------------------------------------------------- generate on b
echo "-- generate on member b stages one set on every member"
GEN=$(pool_gen b)
assert_exit 0 "generate on member b" -- pool_ctl b generate
all_staged "generate on b"
NEW_CA=$STAGED_CA
NEW_LEAF=$STAGED_LEAF
assert_ne "$OLD_CA" "$NEW_CA" "the staged CA is a new one"
want=$(printf '%s\n' "$OLD_CA" "$NEW_CA" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
for m in $MEMBERS; do
	assert_eq "$want" "$(bundle_cas "$m")" "member $m's ca-bundle.pem holds the old and the new CA"
done
pool_call_done generate b "$LEAF0" "$NEW_LEAF"

echo "-- agents fetch through b, acknowledge through c, prove the new CA through every canary"
sim_ok "agentsim: the fleet gets the new bundle through member b" b --agents "$SIM_AGENTS" --rounds 1
sim_ok "agentsim: the fleet acknowledges through member c" c --agents "$SIM_AGENTS" --rounds 1
pool_same_report "the fleet acknowledged" "acknowledged=$SIM_AGENTS"
pool_canaries_confirmed
third=$((SIM_AGENTS / 3))
first=0
for m in $MEMBERS; do
	n=$third
	[ "$m" != c ] || n=$((SIM_AGENTS - 2 * third))
	sim_ok "agentsim: agents $first to $((first + n - 1)) prove the new CA through member $m's canary" \
		"$m" --first "$first" --agents "$n" --canary --rounds 1
	first=$((first + n))
done
pool_same_report "the fleet verified through the three canaries" "verified=$SIM_AGENTS"
assert_eq "$want" "$(pem_shas "$TRUST" | tr '\n' ' ' | sed 's/ $//')" "the agents' bundle holds the old and the new CA"

# ---------------------------------------------------------------- rotate on c
echo "-- rotate on member c: every nginx serves the new leaf"
assert_exit 0 "rotate on member c (every agent acknowledged)" -- pool_ctl c rotate
all_serve "$NEW_LEAF" "rotate on c"
for m in $MEMBERS; do
	areq "$m" "$TRUST" GET /carotate/v1/ca-bundle
	assert_match '^[0-9]{3}$' "$CODE" "curl trusting the agents' bundle connects to member $m (HTTP $CODE)"
	areq "$m" "$T/ca-old.pem" GET /carotate/v1/ca-bundle
	assert_match '^curl-' "$CODE" "curl trusting the old CA alone does not (member $m serves the new leaf)"
	ls -d "$T/$m/ssl"/certs-* >/dev/null 2>&1 || fail "member $m keeps a certs-* backup" "$(ls "$T/$m/ssl")"
	ok "member $m keeps a certs-* backup"
done
none_staged "rotate on c"
pool_call_done rotate c "$NEW_LEAF" -

# ---------------------------------------------------------------- restore on a
echo "-- restore --latest on member a: every nginx serves the old leaf again"
assert_exit 0 "restore --latest on member a" -- pool_ctl a restore --latest
all_serve "$LEAF0" "restore on a"
pool_call_done restore a "$LEAF0" -

# ---------------------------------------------------------------- renew on b
# The first set is the test's own (make_active_set): carotated holds no key of its CA, so the
# renewal brings its leaf (renew --cert --key), signed by that CA.
echo "-- renew on member b: every nginx serves one new leaf under the same CA"
pki_make_server "$T/renew" "$PKI_DIR/active" proxy.test "DNS:proxy.test,IP:127.0.0.1"
assert_exit 0 "renew --cert --key on member b" -- pool_ctl b renew --cert "$T/renew/server.leaf.crt" \
	--key "$T/renew/server.key"
LEAF1=$(leaf_sha "$T/renew/server.leaf.crt")
all_serve "$LEAF1" "renew on b"
for m in $MEMBERS; do
	assert_eq "$OLD_CA" "$(cert_der_sha256 "$T/$m/ssl/ca.crt")" "member $m keeps the CA"
done
pool_call_done renew b "$LEAF1" -

# ---------------------------------------------------------------- discard, install
echo "-- generate then discard on member a; install on member c"
assert_exit 0 "generate on member a" -- pool_ctl a generate
all_staged "generate on a"
pool_call_done generate a "$LEAF1" "$STAGED_LEAF"
assert_exit 0 "discard on member a" -- pool_ctl a discard
none_staged "discard on a"
pool_call_done discard a "$LEAF1" -
make_cert_set "$T/set3" third
assert_exit 0 "install on member c" -- pool_ctl c install --ca "$T/set3/ca.crt" \
	--cert "$T/set3/server.crt" --key "$T/set3/server.key"
all_staged "install on c"
assert_eq "$(cert_der_sha256 "$T/set3/ca.crt")" "$STAGED_CA" "install on c: the installed CA is staged"
SET3_LEAF=$(leaf_sha "$T/set3/server.crt")
assert_eq "$SET3_LEAF" "$STAGED_LEAF" "install on c: the installed leaf is staged"
pool_call_done install c "$LEAF1" "$SET3_LEAF"

# ---------------------------------------------------------------- a member that fails
# b's server block reads copies of the files it serves now: its reload works, its TLS check
# sees the old leaf. a's and c's pass.
echo "-- member b cannot serve the new set: rotate on member a rolls the pool back"
pool_pin_nginx b
run pool_ctl a --timeout 120s rotate --force --reason "member b cannot serve the new set"
t_log "rotate with member b pinned (exit $RC): $ERR"
assert_eq 6 "$RC" "rotate on member a exits 6 (internal) when member b fails"
assert_names_member b "$ERR$OUT" "the message names member b"
all_serve "$LEAF1" "rolled back"
for m in $MEMBERS; do
	assert_eq "$LEAF1" "$(pool_active "$m")" "member $m: pool_state.active is the old leaf"
done
audit_verified "rolled back"
pool_unpin_nginx b
GEN=$(pool_gen a)

# ---------------------------------------------------------------- kill -9 in a pool rotate
echo "-- member b killed at each point of its part of a rotate on member a"
_b_gone_or_done() { ! daemon_alive "$1" || ! kill -0 "$2" 2>/dev/null; }
journal_walked=0
for point in $CRASH_POINTS; do
	case $point in swap-rotate-*) [ "$journal_walked" -eq 0 ] || continue ;; esac
	ensure_staged a
	pool_use b
	: >"$T/b-crash.log"
	stop_daemon
	rm -f "$SOCK"
	DAEMON_LOG="$T/b-crash.log" CAROTATED=$FAULTY CAROTATE_CRASH_AT=$point start_daemon
	bpid=$DAEMON_PID
	pool_save b
	pool_ctl a --timeout 90s rotate --force --reason "crash at $point" >"$T/rot.out" 2>"$T/rot.err" &
	rpid=$!
	wait_until 60000 _b_gone_or_done "$bpid" "$rpid" || fail "$point: member b dies or the rotate ends within 60 s"
	crashed=0
	if ! daemon_alive "$bpid"; then
		{ wait "$bpid" || true; } 2>/dev/null
		crashed=1
		pool_use b
		rm -f "$SOCK"
		start_daemon
		pool_save b
	fi
	rc=0
	wait "$rpid" || rc=$?
	if [ "$crashed" -eq 0 ]; then
		member_restart b
		case $point in
		swap-rotate-1) fail "$point: member b's swap has journal steps" "$(tail -n 20 "$T/b-crash.log")" ;;
		swap-rotate-*)
			t_log "member b's swap has $((${point#swap-rotate-} - 1)) journal steps, each crashed at"
			journal_walked=1 ;;
		*) fail "$point: member b reaches the point in a pool rotate" "$(tail -n 20 "$T/b-crash.log")" ;;
		esac
	else
		grep -q "fault_point: crashing here" "$T/b-crash.log" ||
			fail "$point: member b died at the point" "$(tail -n 20 "$T/b-crash.log")"
	fi
	cat "$T/b-crash.log" >>"$T/daemon-b.log"
	leaf=""
	wait_until 20000 same_leaf || fail "$point: the three members serve one leaf within 20 s of b's restart" \
		"a $(served_on a)" "b $(served_on b)" "c $(served_on c)"
	leaf=$(same_leaf)
	if [ "$rc" -eq 0 ]; then
		assert_eq "$NEW_L" "$leaf" "$point: the rotate ended 0 and every member serves the new leaf"
	else
		assert_names_member b "$(cat "$T/rot.err" "$T/rot.out")" "$point: the rotate failed (exit $rc) naming member b"
		assert_eq "$OLD_L" "$leaf" "$point: the rotate failed and every member serves the old leaf"
	fi
	audit_verified "$point"
	for m in $MEMBERS; do
		n=$(pool_ctl "$m" --json report | json_get acknowledged)
		[ "$n" -le "$SIM_AGENTS" ] || fail "$point: member $m counts no more acknowledgements ($n) than agents ($SIM_AGENTS)"
	done
	ok "$point: crashed=$crashed, exit $rc, the pool serves the $([ "$leaf" = "$NEW_L" ] && echo new || echo old) leaf"
done

# ---------------------------------------------------------------- a member that stays down
echo "-- member b killed in its swap and left down: the pool rolls back once b is stale"
ensure_staged a
OLD_L=$(served_on a)
pool_use b
: >"$T/b-crash.log"
stop_daemon
rm -f "$SOCK"
DAEMON_LOG="$T/b-crash.log" CAROTATED=$FAULTY CAROTATE_CRASH_AT=swap-rotate-3 start_daemon
bpid=$DAEMON_PID
pool_save b
run pool_ctl a --timeout 90s rotate --force --reason "member b dies and stays down"
daemon_alive "$bpid" && fail "member b died in its swap"
{ wait "$bpid" || true; } 2>/dev/null
cat "$T/b-crash.log" >>"$T/daemon-b.log"
t_log "rotate with member b down (exit $RC): $ERR"
assert_eq 6 "$RC" "the rotate fails (exit 6)"
assert_names_member b "$ERR$OUT" "the message names member b"
assert_contains "heartbeat stopped" "$ERR" "and says its heartbeat stopped"
for m in a c; do
	assert_eq "$OLD_L" "$(served_on "$m")" "member $m serves the old leaf again"
done
pool_use b
rm -f "$SOCK"
start_daemon
pool_save b
all_serve "$OLD_L" "member b started again: it finished its journal and took the pool's sets"
audit_verified "member b down"

# ---------------------------------------------------------------- PostgreSQL stops
echo "-- PostgreSQL stopped while a rotate on member c runs"
ensure_staged c
pool_ctl c --timeout 90s rotate --force --reason "the database stops" >"$T/rot.out" 2>"$T/rot.err" &
rpid=$!
pg_stop
# While it is down: every member serves the old or the new leaf, nothing else.
empty=0
for _ in 1 2 3 4 5 6; do
	for m in $MEMBERS; do
		s=$(served_on "$m")
		case "$s" in
		"$OLD_L" | "$NEW_L") ;;
		"") empty=$((empty + 1)) ;;
		*) fail "PostgreSQL down: member $m serves the old or the new leaf" "served $s" ;;
		esac
	done
	sleep 0.5
done
[ "$empty" -eq 0 ] || fail "PostgreSQL down: every handshake succeeds" "$empty failed"
pg_start
rc=0
wait "$rpid" || rc=$?
t_log "rotate across the outage: exit $rc: $(cat "$T/rot.err")"
case "$rc" in 0 | 2) ok "the rotate across the outage exits $rc (0 or 2)" ;;
*) fail "the rotate across the outage exits 0 or 2" "exit $rc" "$(cat "$T/rot.err" "$T/rot.out")" ;;
esac
for m in $MEMBERS; do
	wait_until 40000 eval "pool_ctl $m report >/dev/null 2>&1" ||
		fail "member $m reaches the ledger again once PostgreSQL is back"
done
ACTIVE=$(pool_active a)
[ "$rc" -ne 0 ] || assert_eq "$NEW_L" "$ACTIVE" "the rotate ended 0: pool_state.active is the new leaf"
case "$ACTIVE" in
"$OLD_L" | "$NEW_L") ok "pool_state.active is the old or the new leaf" ;;
*) fail "pool_state.active is the old or the new leaf" "got '$ACTIVE'" ;;
esac
for m in $MEMBERS; do
	wait_until 20000 _serves "$m" "$ACTIVE" ||
		fail "member $m serves pool_state.active within 20 s" "want $ACTIVE" "served $(served_on "$m")"
done
ok "every member serves pool_state.active"
audit_verified "after the outage"
# The next call waits for every live member: each must beat again first.
all_beating() {
	st a
	"$PY" -c 'import json, sys; p = json.load(open(sys.argv[1]))["pool"]
sys.exit(0 if p and all(not m["stale"] for m in p) else 1)' "$T/st-a.raw"
}
wait_until 40000 all_beating || fail "every member beats again after the outage" "$(cat "$T/st-a.raw")"
ok "every member beats again after the outage"

# ---------------------------------------------------------------- a damaged sealed set
echo "-- the sealed set damaged in the database: member c refuses it, a rotate names c"
[ "$(staged_on a)" = none ] || assert_exit 0 "discard on member a" -- pool_ctl a discard
assert_exit 0 "generate on member b" -- pool_ctl b generate
all_staged "generate on b"
DAMAGED=$STAGED_LEAF
st a
ACTIVE=$(jget active.server.sha256 "$T/st-a.json")
n=$(pg_psql -d carotate -c "UPDATE blobs SET blob = set_byte(blob, 20, get_byte(blob, 20) # 1)
	WHERE name = 'set/$DAMAGED' RETURNING name" | grep -c . || true)
assert_eq 1 "$n" "one blob named set/$DAMAGED damaged"
C_SERVED=$(served_on c)
# Member c lost its staged set while it was down (a new disk, a member added): it must take
# the pool's sealed copy, which no longer opens.
pool_use c
stop_daemon TERM
rm -f "$SOCK"
rm -rf "$SSL_DIR/new"
start_daemon
pool_save c
c_refused() { pool_view a | grep -q '^row c .* False '; }
wait_until 20000 c_refused || fail "member c's pool row shows its apply failed" "$(pool_view a)"
err=$(pool_view a | awk '$1 == "row" && $2 == "c" { sub(/^row c [^ ]* [^ ]* /, ""); print }')
assert_contains "${DAMAGED:0:16}" "$err" "member c's apply_error names the set"
assert_eq "$C_SERVED" "$(served_on c)" "member c serves what it served"
assert_eq none "$(staged_on c)" "member c staged nothing it could not open"
run pool_ctl a --timeout 120s rotate --force --reason "member c holds a damaged set"
t_log "rotate with member c refusing (exit $RC): $ERR"
assert_ne 0 "$RC" "rotate on member a fails"
assert_names_member c "$ERR$OUT" "the message names member c"
all_serve "$ACTIVE" "the pool rolled back"
audit_verified "the damaged set"

# ---------------------------------------------------------------- a forged state
echo "-- a state written into the database without the pool key: every member refuses it"
CUR=$(served_on a)
FORGED=$(pg_psql -d carotate -Atc "SELECT substr(name, 5) FROM blobs WHERE name LIKE 'set/%'
	AND substr(name, 5) <> '$CUR' ORDER BY name LIMIT 1")
[ -n "$FORGED" ] || fail "an earlier sealed set to point the forged state at"
G=$(pg_psql -d carotate -Atc "UPDATE pool_state SET generation = generation + 1,
	active = '$FORGED', staged = '', call = 'rotate' RETURNING generation")
refused_all() {
	local m
	for m in $MEMBERS; do
		pool_view a | grep -q "^row $m $G False .*refused" || return 1
	done
}
wait_until 20000 refused_all || fail "every member records generation $G refused" "$(pool_view a)"
ok "every member records the forged generation $G as refused"
grep -q "only a member holding the pool key publishes a state" "$T/daemon-b.log" ||
	fail "member b's log says why it refused" "$(tail -n 5 "$T/daemon-b.log")"
ok "member b's log says why"
for m in $MEMBERS; do
	assert_eq "$CUR" "$(served_on "$m")" "member $m still serves ${CUR:0:16}, not the forged ${FORGED:0:16}"
done
run pool_ctl c --timeout 60s generate
assert_eq 0 "$RC" "a change made on member c replaces the forged state ($ERR)"
wait_until 20000 eval '[ "$(pool_view a | grep -c "^row .* True ")" -eq 3 ]' ||
	fail "every member applied the state that replaced it" "$(pool_view a)"
ok "every member applied the state that replaced the forged one"
audit_verified "the forged state"
