# shellcheck shell=bash disable=SC2034 # variables here are used by the tests that source it
# A private PostgreSQL server for the integration tests of pools: Debian's server programs,
# a cluster made by initdb in the test's scratch directory and run by pg_ctl as the
# unprivileged user carotate-pg (created when missing; as another user than root, as that
# user), listening on a Unix socket in that directory only. Source it after lib.sh:
#
#   . "$(dirname "$0")/pg.sh"
#   pg_require             # skips the test (t_skip) when initdb, pg_ctl, postgres or psql is missing
#   t_init
#   pg_start               # initdb the first time, start, wait; the role and database carotate
#   psql "$PG_DSN" -c ...  # as any local user: the DSN carries the role's password
#   pg_stop | pg_restart   # fast shutdown (and start again)
#   pg_kill                # SIGKILL the postmaster, as a crash would; pg_start starts it again
#
# After pg_start: $PG_DIR ($T/pg: the data directory $PG_DATA and the socket), $PG_PORT (names
# the socket only: no TCP), $PG_LOG ($T/postgresql.log, printed by lib.sh's trap when a test
# fails), $PG_DSN ("host=$PG_DIR port=... dbname=carotate user=carotate password=..."),
# $PG_DSN_FILE (that DSN in a file owned by root, mode 0600: [ledger] dsn_file), $PG_PASSWORD
# (the role's, random: grep logs and replies for it to show it never leaks), $PG_PID (the
# postmaster's pid). Also pg_pids (every process of the cluster: the postmaster and its
# children, which all run in $PG_DATA), pg_running, pg_psql ARGS (psql as the cluster's
# superuser, over the socket).
# The server runs with fsync and synchronous_commit on, as a pool needs it; the cleanup trap
# (t_on_exit) stops it and waits until no process of the cluster is left.

PG_BIN=""
PG_OS_USER=carotate-pg
PG_DIR=""
PG_DATA=""
PG_PORT=5432
PG_LOG=""
PG_DSN=""
PG_DSN_FILE=""
PG_PID=""
PG_ROLE=carotate
PG_DB=carotate
PG_PASSWORD=""
_PG_HOOKED=""

# pg_require: sets PG_BIN to the directory of the server programs, the newest of
# /usr/lib/postgresql/*/bin first (Debian's layout), else PATH's; skips the test without them.
pg_require() {
	local d p
	for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
		if _pg_has_programs "$d"; then
			PG_BIN=$d
			return 0
		fi
	done
	for p in initdb pg_ctl postgres psql; do
		command -v "$p" >/dev/null ||
			t_skip "PostgreSQL's $p is not installed (make deps installs postgresql)"
	done
	PG_BIN=$(dirname "$(command -v initdb)")
}

_pg_has_programs() {
	local p
	for p in initdb pg_ctl postgres psql; do
		[ -x "$1/$p" ] || return 1
	done
}

# _pg_as CMD...: CMD as the cluster's owner (root switches to $PG_OS_USER), in $PG_DIR.
_pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd "$PG_DIR" && setpriv --reuid="$(id -u "$PG_OS_USER")" \
			--regid="$(id -g "$PG_OS_USER")" --init-groups --reset-env -- "$@")
	else
		(cd "$PG_DIR" && "$@")
	fi
}

# pg_start: makes the cluster on the first call (initdb, configuration, the role and the
# database), then starts the server and waits until it accepts connections.
pg_start() {
	[ -n "$T" ] || fail "pg_start: call t_init first"
	[ -n "$PG_BIN" ] || pg_require
	if [ -z "$PG_DIR" ]; then
		_pg_setup
		_pg_ctl_start
		_pg_create_role
	else
		_pg_ctl_start
	fi
}

# The directory, the user, initdb, the server's settings. The cleanup hook is set before
# anything can start.
_pg_setup() {
	PG_DIR="$T/pg"
	PG_DATA="$PG_DIR/data"
	PG_LOG="$T/postgresql.log"
	PG_DSN_FILE="$T/pg.dsn"
	# sun_path holds 108 bytes: "$PG_DIR/.s.PGSQL.$PG_PORT" and its NUL must fit.
	[ $((${#PG_DIR} + 18)) -lt 108 ] ||
		fail "pg_start: $PG_DIR is too long for a Unix socket path (set TMPDIR shorter)"
	if [ -z "$_PG_HOOKED" ]; then
		t_on_exit _pg_cleanup
		_PG_HOOKED=1
	fi
	mkdir -m 0755 "$PG_DIR"
	: >"$PG_LOG"
	if [ "$(id -u)" -eq 0 ]; then
		t_user "$PG_OS_USER"
		chown "$PG_OS_USER:" "$PG_DIR" "$PG_LOG"
	else
		PG_OS_USER=$(id -un)
	fi
	_pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_OS_USER" --auth-local=peer \
		--auth-host=reject -E UTF8 --locale=C --no-instructions --no-sync \
		>>"$PG_LOG" 2>&1 || fail "initdb failed" "$(tail -n 20 "$PG_LOG")"
	_pg_configure
}

# Socket only, durable commits, small: several servers may run on 2 cores. Local
# connections: the superuser by peer (the OS user), the others by password.
_pg_configure() {
	_pg_as tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# tests/integration/pg.sh
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
unix_socket_permissions = 0777
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 40
shared_buffers = 16MB
logging_collector = off
EOF
	_pg_as tee "$PG_DATA/pg_hba.conf" >/dev/null <<EOF
# tests/integration/pg.sh: no TCP at all.
local all $PG_OS_USER peer
local all all scram-sha-256
EOF
}

_pg_ctl_start() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t $((60 * TIME_SCALE)) start \
		>/dev/null 2>&1 || fail "pg_ctl start failed" "$(tail -n 20 "$PG_LOG")"
	PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
}

# The role and database the daemon uses, with a password: PG_DSN and PG_DSN_FILE.
_pg_create_role() {
	PG_PASSWORD=$(openssl rand -hex 16)
	pg_psql -d postgres -c "CREATE ROLE $PG_ROLE LOGIN PASSWORD '$PG_PASSWORD'" \
		-c "CREATE DATABASE $PG_DB OWNER $PG_ROLE" >/dev/null ||
		fail "pg_start: cannot create the role and database $PG_DB"
	PG_DSN="host=$PG_DIR port=$PG_PORT dbname=$PG_DB user=$PG_ROLE password=$PG_PASSWORD"
	# Root's file in $T, not in $PG_DIR, which the server's user owns.
	(umask 077 && printf '%s\n' "$PG_DSN" >"$PG_DSN_FILE")
	chmod 0600 "$PG_DSN_FILE"
	export PG_DSN PG_DSN_FILE
}

# pg_psql ARGS...: psql as the cluster's superuser over the socket, quiet, unaligned.
pg_psql() {
	_pg_as "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" "$@"
}

# pg_stop: fast shutdown (sessions cut, a checkpoint written), waits until the cluster's
# processes are gone.
pg_stop() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t $((60 * TIME_SCALE)) stop \
		>/dev/null 2>&1 || fail "pg_ctl stop failed" "$(tail -n 20 "$PG_LOG")"
	_pg_wait_gone 10000 || fail "pg_stop: processes of $PG_DATA left: $(pg_pids | tr '\n' ' ')"
}

pg_restart() {
	pg_stop
	pg_start
}

# pg_kill: SIGKILL to the postmaster alone, as the OOM killer would; its children notice and
# exit by themselves (waited for, up to 10 s), and the next pg_start recovers from the WAL.
pg_kill() {
	[ -n "$PG_PID" ] || fail "pg_kill: no server started"
	kill -KILL "$PG_PID" || fail "pg_kill: no postmaster $PG_PID"
	_pg_wait_gone 10000 ||
		fail "pg_kill: the postmaster's children outlived it: $(pg_pids | tr '\n' ' ')"
	_pg_wait_reaped
}

# pg_ctl's postmaster is not our child: until whoever adopted it reaps it, it is a zombie that
# kill -0 still finds, and the next postmaster takes its postmaster.pid for a live server's.
# Up to 10 s for the reaping; then the lock file goes, since no process of the cluster is left.
_pg_wait_reaped() {
	wait_until 10000 _pg_postmaster_gone && return 0
	t_log "pg.sh: the killed postmaster $PG_PID is still a zombie; removing its postmaster.pid"
	rm -f "$PG_DATA/postmaster.pid"
}
_pg_postmaster_gone() { ! kill -0 "$PG_PID" 2>/dev/null; }

# pg_pids: the pids of every process of the cluster: all of them run in $PG_DATA (also once
# it is deleted), whatever their title says.
pg_pids() {
	local d cwd
	[ -n "$PG_DATA" ] || return 0
	for d in /proc/[0-9]*; do
		cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
		case "$cwd" in
		"$PG_DATA" | "$PG_DATA (deleted)") echo "${d#/proc/}" ;;
		esac
	done
}

# pg_running: the server answers a query on its socket.
pg_running() { pg_psql -d postgres -c 'SELECT 1' >/dev/null 2>&1; }

# _pg_wait_gone MS: until no process of the cluster is left; 1 on timeout.
_pg_wait_gone() { wait_until "$1" _pg_none_left; }
_pg_none_left() { [ -z "$(pg_pids)" ]; }

# The cleanup hook: an immediate stop (nothing of the cluster is kept), then SIGKILL for
# whatever is left after 10 s.
_pg_cleanup() {
	local pid
	[ -n "$PG_DATA" ] && [ -d "$PG_DATA" ] || return 0
	[ -z "$(pg_pids)" ] && return 0
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1
	if ! _pg_wait_gone 10000; then
		for pid in $(pg_pids); do
			kill -KILL "$pid" 2>/dev/null
		done
		_pg_wait_gone 5000
	fi
}
