#!/bin/bash
# Section (i) of `make bench`, runnable alone: pools on PostgreSQL. A private server
# (tests/integration/pg.sh: initdb in a temporary directory, a Unix socket only, fsync and
# synchronous_commit on), then:
#  (i.1) durable check-ins per second for one member on PostgreSQL against SQLite, the same
#        code through the ledger API, batches of 256 per transaction, each made as the
#        daemon makes a batch (one ledger_checkin_run), changing and steady check-ins apart (ledger_bench -p, on a database of
#        its own); goal >= 10,000/s on PostgreSQL;
#  (i.2) `report` at 1M agents on PostgreSQL: ledger_count and a first pending page, p50 and
#        p99 over 50 calls; the agents beyond (i.1)'s are filled by one INSERT ... SELECT of
#        the bench (the daemon has no bulk path; ledger_bench prints how long linking them
#        through the API would take); goal p50 <= 50 ms;
#  (i.3) connections each member holds: three carotated members with their nginx
#        (tests/integration/pool.sh), each member's connection string naming it in
#        application_name; agents (agentsim) link through a, check in through b and c,
#        `report` on each; pg_stat_activity counted per member, idle and after the load;
#        goal <= 2;
#  (i.4) the pool-wide rotate: one install on a stages the set on the three members, the
#        fleet acknowledges, then one `rotate` on c: the wall time of the call, which answers
#        once every member serves the new certificate (each verified over TLS by the bench
#        too). Goal <= 3 s.
# Environment: CAROTATE_BUILD (set by make); BENCH_POOL_AGENTS (agents of (i.1), default
# 100000), BENCH_POOL_SECONDS (seconds per engine and phase, default 3), BENCH_REPORT_AGENTS
# (default 1000000), BENCH_REPORT_CALLS (default 50), BENCH_POOL_FLEET (agentsim agents of
# (i.3) and (i.4), default 300).
# shellcheck disable=SC2119 # lib.sh helpers take optional arguments
set -eu

here=$(cd "$(dirname "$0")" && pwd)
: "${CAROTATE_BUILD:=$(cd "$here/../.." && pwd)/build}"
export CAROTATE_BUILD
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../integration/nginx.sh
. "$here/../integration/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=../integration/pg.sh
. "$here/../integration/pg.sh"
# shellcheck source-path=SCRIPTDIR source=../integration/pool.sh
. "$here/../integration/pool.sh"

ledger_bench="$CAROTATE_BUILD/bench/ledger_bench"
agentsim="$CAROTATE_BUILD/agentsim"
fleet=${BENCH_POOL_FLEET:-300}
members="a b c"

section() { printf '\n==== %s\n' "$*"; }

for f in "$CAROTATED" "$CAROTATECTL" "$ledger_bench" "$agentsim"; do
	[ -x "$f" ] || fail "$f is missing: run make bench"
done

t_init
pg_require
pg_start
section "(i) pools on PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}'), a private server (fsync, synchronous_commit on)"

# ---------------------------------------------------------------- (i.1), (i.2) the ledger
section "(i.1) check-ins per member, PostgreSQL vs SQLite; (i.2) report at ${BENCH_REPORT_AGENTS:-1000000} agents (ledger_bench -p)"
pg_psql -d postgres -c "CREATE DATABASE bench OWNER $PG_ROLE" >/dev/null
mkdir -p "${TMPDIR:-/var/tmp}"
"$ledger_bench" -p "${PG_DSN/dbname=$PG_DB/dbname=bench}" -n "${BENCH_POOL_AGENTS:-100000}" \
	-s "${BENCH_POOL_SECONDS:-3}" -R "${BENCH_REPORT_AGENTS:-1000000}" \
	-c "${BENCH_REPORT_CALLS:-50}" "${TMPDIR:-/var/tmp}" 2>"$T/ledger_bench.err" ||
	{
		echo "ledger_bench -p failed (exit $?):"
		tail -n 20 "$T/ledger_bench.err"
	}
pg_psql -d postgres -c "DROP DATABASE bench" >/dev/null

# ---------------------------------------------------------------- (i.3) connections
section "(i.3) connections held per member: 3 members, $fleet agents (agentsim)"
nginx_setup
pool_key_write
for m in $members; do
	pool_member_init "$m"
	# The engine's fallback application_name is "carotated"; one of its own names the member.
	(umask 077 && printf '%s application_name=carotated-%s\n' "$PG_DSN" "$m" >"$T/pg-$m.dsn")
	sed -i "s|^dsn_file = .*|dsn_file = $T/pg-$m.dsn|" "$CONF"
	pool_save "$m"
done
pool_active_set "$T/ca-old.pem"
pool_start 2>/dev/null

sim() {
	local m=$1
	shift
	"$agentsim" --dir "$T/fleet" --port "$(pool_port "$m")" --canary-port "$(pool_canary_port "$m")" \
		--server-name "$NGINX_SERVER_NAME" --agents "$fleet" --initial-ca "$T/ca-old.pem" \
		--concurrency 8 --report --quiet "$@"
}
# backends: "a=N b=N c=N" from pg_stat_activity, by the members' application_name.
backends() {
	local m n out=""
	for m in $members; do
		n=$(pg_psql -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'carotated-$m'")
		out="$out $m=$n"
	done
	echo "${out# }"
}
idle=$(backends)
sim a --link --linking-key "$LINKING_KEY" --rounds 1 >"$T/sim-link.json" 2>/dev/null ||
	echo "agentsim: linking through member a failed (exit $?)"
for m in b c; do
	sim "$m" --rounds 2 >"$T/sim-$m.json" 2>/dev/null || echo "agentsim through member $m failed (exit $?)"
done
for m in $members; do
	pool_ctl "$m" --json report >"$T/report-$m.json"
done
loaded=$(backends)
echo "linked in the pool (report on a): $(json_get linked "$T/report-a.json")"
echo "backends per member (pg_stat_activity by application_name): idle $idle; after link," \
	"check-ins and report on each: $loaded"
"$PY" - "$idle $loaded" <<'EOF'
import sys
n = [int(kv.split("=")[1]) for kv in sys.argv[1].split()]
print("goal: <= 2 connections held per member: %s (at most %d)" % ("met" if max(n) <= 2 else "NOT met", max(n)))
EOF

# ---------------------------------------------------------------- (i.4) the pool-wide rotate
section "(i.4) the pool-wide rotate: one call on member c, three members"
make_cert_set "$T/newset" staged
pool_ctl a --json install --ca "$T/newset/ca.crt" --cert "$T/newset/server.crt" \
	--key "$T/newset/server.key" >/dev/null 2>"$T/install.err" ||
	fail "install on member a" "$(cat "$T/install.err")"
for m in $members; do
	sim "$m" --rounds 1 >"$T/sim-ack-$m.json" 2>/dev/null || true
done
echo "acknowledged before the rotate: $(pool_ctl a --json report | json_get acknowledged) of $fleet"
forced="" t0=$(ms_now)
if ! pool_ctl c --json rotate >"$T/rot.json" 2>"$T/rot.err"; then
	forced=yes t0=$(ms_now)
	pool_ctl c --json rotate --force --reason "bench: the gate refused" >"$T/rot.json" 2>"$T/rot.err" ||
		fail "the pool-wide rotate on member c" "$(cat "$T/rot.err")"
fi
wall=$(($(ms_now) - t0))
[ -z "$forced" ] || echo "rotated with --force --reason (the gate refused)"
want=$(openssl x509 -in "$T/newset/server.crt" -outform DER | sha256sum | cut -d' ' -f1)
served_all=yes
for m in $members; do
	got=$(nginx_served_sha256 "$(pool_port "$m")")
	[ "$got" = "$want" ] || served_all=no
	echo "member $m serves the new certificate: $([ "$got" = "$want" ] && echo yes || echo "NO ($got)")"
done
echo "rotate on c: $wall ms wall, $(json_get rotate_ms "$T/rot.json") ms on c from the RPC to its own verified certificate"
echo "backends per member after the rotate: $(backends)"
if [ "$served_all" = yes ]; then
	echo "goal: pool rotate with 3 members <= 3000 ms: $([ "$wall" -le 3000 ] && echo met || echo "NOT met") ($wall ms)"
else
	echo "goal: pool rotate with 3 members <= 3000 ms: NOT measured (a member does not serve the new set)"
fi
for m in $members; do
	pool_use "$m"
	nginx_stop >/dev/null 2>&1 || true
	stop_daemon
	pool_save "$m"
done
