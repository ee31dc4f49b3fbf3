#!/bin/bash
# The PostgreSQL server of the pool tests (pg.sh), checked before any test relies on it:
#  - pg_start: a server run by carotate-pg (not root), on a Unix socket in the test's
#    directory and no TCP socket, fsync and synchronous_commit on, password authentication;
#    PG_DSN reaches the database carotate as the role carotate through psql, and PG_DSN_FILE
#    holds that DSN, owned by root, mode 0600;
#  - pg_stop, pg_restart and pg_kill (SIGKILL to the postmaster) each leave no process of the
#    cluster, and pg_start brings back every committed row, after the kill by crash recovery;
#  - the cleanup trap: a test that ends (passing, failing or terminated) leaves no process of
#    its cluster and no directory behind.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=pg.sh
. "$(dirname "$0")/pg.sh"

t_plain_only "it tests the PostgreSQL harness (pg.sh); no program of this build runs"
pg_require
t_init

# q SQL: one query through PG_DSN, as the daemon will connect (root, by password).
q() { "$PG_BIN/psql" "$PG_DSN" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }

# The inodes of TCP sockets listening on this machine, and those the postmaster holds.
tcp_listening() { awk 'NR > 1 && $4 == "0A" { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u; }
pid_sockets() {
	local f
	for f in /proc/"$1"/fd/*; do
		readlink "$f" 2>/dev/null
	done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | sort -u
}

pg_start
assert_match '^[0-9]+$' "$PG_PID" "PG_PID is the postmaster's pid"
if [ "$(id -u)" -eq 0 ]; then
	assert_eq carotate-pg "$(ps -o user= -p "$PG_PID")" "the server runs as carotate-pg"
	assert_eq "carotate-pg" "$(stat -c %U "$PG_DATA")" "the cluster belongs to carotate-pg"
fi
assert_eq "0 600" "$(stat -c '%u %a' "$PG_DSN_FILE")" "the DSN file is root's, mode 0600"
assert_eq "$PG_DSN" "$(cat "$PG_DSN_FILE")" "the DSN file holds PG_DSN"
assert_eq 1 "$(wc -l <"$PG_DSN_FILE")" "the DSN file is one line"
assert_contains "host=$PG_DIR " "$PG_DSN" "the DSN names the socket directory"
[ -S "$PG_DIR/.s.PGSQL.$PG_PORT" ] || fail "no socket $PG_DIR/.s.PGSQL.$PG_PORT"
ok "the socket is in the test's directory"

assert_eq "carotate|carotate" "$(q 'SELECT current_user, current_database()')" \
	"psql reaches the database carotate as carotate through PG_DSN"
assert_eq on "$(q 'SHOW fsync')" "fsync is on"
assert_eq on "$(q 'SHOW synchronous_commit')" "synchronous_commit is on"
assert_eq "" "$(q 'SHOW listen_addresses')" "listen_addresses is empty"
assert_eq "" "$(comm -12 <(tcp_listening) <(pid_sockets "$PG_PID"))" \
	"the postmaster holds no listening TCP socket"
assert_exit 2 "a wrong password is refused" -- "$PG_BIN/psql" \
	"host=$PG_DIR port=$PG_PORT dbname=carotate user=carotate password=wrong" -X -c 'SELECT 1'
assert_contains "password authentication failed" "$ERR" "... by password authentication"

q 'CREATE TABLE t (n int PRIMARY KEY)'
q 'INSERT INTO t VALUES (1)'

# Stop: nothing of the cluster runs, the socket refuses; start: the row is there.
old=$PG_PID
pg_stop
assert_eq "" "$(pg_pids)" "pg_stop leaves no process of the cluster"
assert_exit 2 "a stopped server refuses connections" -- "$PG_BIN/psql" "$PG_DSN" -X -c 'SELECT 1'
pg_start
assert_ne "$old" "$PG_PID" "pg_start after pg_stop runs a new postmaster"
assert_eq 1 "$(q 'SELECT count(*) FROM t')" "the row survives a stop and start"

q 'INSERT INTO t VALUES (2)'
old=$PG_PID
pg_restart
assert_ne "$old" "$PG_PID" "pg_restart runs a new postmaster"
daemon_alive "$old" && fail "the old postmaster $old still runs after pg_restart"
assert_eq 2 "$(q 'SELECT count(*) FROM t')" "the rows survive a restart"

# Kill: a committed row is durable through a crash (synchronous_commit, fsync).
q 'INSERT INTO t VALUES (3)'
old=$PG_PID
kids=$(pg_pids | grep -vx "$old" | tr '\n' ' ')
[ -n "$kids" ] || fail "the postmaster has no children to outlive it"
pg_kill
daemon_alive "$old" && fail "pg_kill left the postmaster $old running"
for pid in $kids; do
	daemon_alive "$pid" && fail "pg_kill left the postmaster's child $pid running"
done
assert_eq "" "$(pg_pids)" "pg_kill leaves no process of the cluster"
pg_start
assert_file_contains "was interrupted" "$PG_LOG" "pg_start after pg_kill recovers from a crash"
assert_eq "1 2 3" "$(q 'SELECT string_agg(n::text, $$ $$ ORDER BY n) FROM t')" \
	"every committed row survives the kill"

# The cleanup trap, in a test of its own that passes, fails, or is terminated.
cat >"$T/child.sh" <<'EOF2'
set -eu
. "$IT_DIR/lib.sh"
. "$IT_DIR/pg.sh"
pg_require
t_init
pg_start
printf '%s %s %s\n' "$PG_DATA" "$PG_PID" "$T" >"$CHILD_OUT"
case "$MODE" in
pass) exit 0 ;;
fail) fail "a failing test" ;;
term) kill -TERM $$ ;;
esac
sleep 30
EOF2
mkdir -m 0755 "$T/children"
for mode in pass fail term; do
	rc=0
	TMPDIR="$T/children" CHILD_OUT="$T/child.out" MODE=$mode IT_DIR="$IT_DIR" \
		timeout 120 bash "$T/child.sh" >"$T/child.log" 2>&1 || rc=$?
	case "$mode" in
	pass) want=0 ;;
	fail) want=1 ;;
	term) want=143 ;;
	esac
	[ "$rc" = "$want" ] || fail "$mode: the child exited $rc, not $want" "$(tail -n 20 "$T/child.log")"
	read -r data pid dir <"$T/child.out"
	daemon_alive "$pid" && fail "$mode: the postmaster $pid outlived its test"
	left=$(PG_DATA=$data pg_pids)
	assert_eq "" "$left" "$mode: no process of the test's cluster is left after its cleanup"
	[ ! -e "$dir" ] || fail "$mode: the test's directory $dir is left"
	ok "$mode: the test's directory is removed"
done
