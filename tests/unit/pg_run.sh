#!/bin/sh
# Runs the unit test programs given against a PostgreSQL server of their own:
# initdb and pg_ctl in a temporary directory, as the unprivileged user
# carotate-pg when run as root (created if missing), listening only on a Unix
# socket in that directory. The programs get its connection string in
# CAROTATE_TEST_PG_DSN and the commands that stop and start it in
# CAROTATE_TEST_PG_STOP and CAROTATE_TEST_PG_START. Without the server's
# binaries (Debian package postgresql) the programs run without a server, and
# skip saying why. The server is stopped and its directory removed at exit.
# With --exec first, the rest is one command and its arguments (a program run
# under valgrind, say), run against the server the same way.
set -u

exec_one=0
if [ "${1:-}" = "--exec" ]; then
	exec_one=1
	shift
fi

pg_user=carotate-pg
bindir=""
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir=$d
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
	bindir=$(dirname "$(command -v initdb)")
fi

run_all() {
	if [ "$exec_one" = 1 ]; then
		"$@"
		return $?
	fi
	rc=0
	for t in "$@"; do
		"$t" || rc=1
	done
	return $rc
}

if [ -z "$bindir" ]; then
	echo "pg_run: no PostgreSQL server binaries (initdb, pg_ctl: Debian package postgresql);" \
		"the tests run without a server" >&2
	run_all "$@"
	exit $?
fi

tmp=$(mktemp -d /tmp/carotate-pg.XXXXXX) || exit 1
as_pg=""
if [ "$(id -u)" -eq 0 ]; then
	if ! id "$pg_user" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$pg_user" || exit 1
	fi
	chown "$pg_user" "$tmp"
	as_pg="runuser -u $pg_user --"
fi
chmod 700 "$tmp"

ctl="$as_pg $bindir/pg_ctl -D $tmp/data -l $tmp/server.log -w"
stop_server() {
	$ctl -m fast stop >/dev/null 2>&1
	rm -rf "$tmp"
}
trap stop_server EXIT
trap 'exit 1' INT TERM

if ! $as_pg "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --no-instructions \
	>"$tmp/initdb.log" 2>&1; then
	echo "pg_run: initdb failed:" >&2
	cat "$tmp/initdb.log" >&2
	exit 1
fi
cat >>"$tmp/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
fsync = on
synchronous_commit = on
max_connections = 40
CONF
if ! $ctl start >/dev/null; then
	echo "pg_run: the server did not start:" >&2
	cat "$tmp/server.log" >&2
	exit 1
fi
if ! $as_pg "$bindir/psql" -q -h "$tmp" -U postgres -d postgres -v ON_ERROR_STOP=1 \
	-c "CREATE ROLE carotate LOGIN" -c "CREATE DATABASE carotate OWNER carotate" >/dev/null; then
	echo "pg_run: cannot create the test database" >&2
	exit 1
fi

export CAROTATE_TEST_PG_DSN="host=$tmp dbname=carotate user=carotate"
export CAROTATE_TEST_PG_STOP="$ctl -m fast stop >/dev/null"
export CAROTATE_TEST_PG_START="$ctl start >/dev/null"
run_all "$@"
