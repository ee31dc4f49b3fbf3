# shellcheck shell=bash disable=SC2034 # variables here are used by the tests that source it
# A pool of proxies on one machine for the integration tests: every member its own carotated,
# nginx, SSL directory, state directory and sockets, all sharing one PostgreSQL ledger
# (pg.sh). Source it after lib.sh, nginx.sh and pg.sh, then:
#
#   t_init; pg_require; pg_start
#   pool_key_write                 # $POOL_KEY: the pool key every member holds
#   pool_member_init a             # dirs, nginx paths and a config with [ledger] for member a
#   pool_active_set "$T/ca-old.pem"  # one active set in every member's SSL directory
#   pool_start                     # every member's carotated and nginx, in turn
#   pool_use a                     # lib.sh's and nginx.sh's globals now name member a
#   ... start_daemon, nginx_start, ctl, tls_req ... act on member a
#   pool_save a                    # after starting something: keep member a's pids and ports
#
# lib.sh and nginx.sh keep one daemon's and one nginx's paths, ports and pids in globals;
# pool_use swaps in a member's set, pool_save stores what changed (pids, ports). Member a's
# logs are $T/daemon-a.log and $T/nginx-a.log, so lib.sh's trap prints them when a test fails.

POOL_MEMBERS=""
POOL_KEY=""
POOL_CUR=""
# The globals that differ per member.
_POOL_VARS="SSL_DIR STATE_DIR RUN_DIR CONF SOCK DAEMON_LOG DAEMON_PID NGINX_DIR NGINX_CONF
NGINX_ERROR_LOG NGINX_ACCESS_LOG NGINX_CHECK_DIR NGINX_CHECK_SOCK NGINX_CANARY_CHECK_SOCK
NGINX_RELOAD NGINX_PORT NGINX_CANARY_PORT NGINX_PID"

# pool_key_write: $T/pool.key, 32 random bytes in hex, root 0600.
pool_key_write() {
	POOL_KEY="$T/pool.key"
	(umask 077 && openssl rand -hex 32 >"$POOL_KEY")
}

# pool_save NAME: stores the current globals as member NAME's.
pool_save() {
	local v
	for v in $_POOL_VARS; do
		printf -v "_POOL_${1}_$v" '%s' "${!v}"
	done
}

# pool_use NAME: the globals become member NAME's (saving the current member's first).
pool_use() {
	local v src
	[ -n "$POOL_CUR" ] && pool_save "$POOL_CUR"
	for v in $_POOL_VARS; do
		src="_POOL_${1}_$v"
		printf -v "$v" '%s' "${!src}"
	done
	POOL_CUR=$1
}

# pool_member_init NAME [EXTRA_DAEMON_LINE...]: member NAME's directories, nginx paths and
# configuration ([ledger] backend = postgresql on $PG_DSN_FILE, pool_key $POOL_KEY, member
# NAME). Leaves the globals on NAME.
pool_member_init() {
	local name=$1 dir="$T/$1"
	shift
	[ -n "$POOL_CUR" ] && pool_save "$POOL_CUR"
	mkdir -m 0755 "$dir"
	SSL_DIR="$dir/ssl"
	STATE_DIR="$dir/state"
	RUN_DIR="$dir/run"
	CONF="$dir/carotated.conf"
	SOCK="$RUN_DIR/carotated.sock"
	DAEMON_LOG="$T/daemon-$name.log"
	DAEMON_PID=""
	mkdir -m 0755 "$SSL_DIR" "$RUN_DIR"
	mkdir -m 0700 "$STATE_DIR"
	NGINX_DIR=""
	NGINX_PID=""
	NGINX_PORT=""
	NGINX_CANARY_PORT=""
	NGINX_HOME="$dir/nginx" NGINX_LOG_NAME="nginx-$name" nginx_setup
	nginx_write_daemon_config "$CONF" "$@"
	{
		printf '\n[ledger]\n'
		printf 'backend = postgresql\n'
		printf 'dsn_file = %s\n' "$PG_DSN_FILE"
		printf 'pool_key = %s\n' "$POOL_KEY"
		printf 'member = %s\n' "$name"
	} >>"$CONF"
	POOL_MEMBERS="$POOL_MEMBERS $name"
	POOL_CUR=$name
	pool_save "$name"
}

# pool_ctl NAME ARGS...: carotatectl against member NAME's socket.
pool_ctl() {
	local name=$1 src="_POOL_${1}_SOCK"
	shift
	"$CAROTATECTL" --socket "${!src}" "$@"
}

# pool_port NAME: member NAME's nginx main port.
pool_port() {
	local src="_POOL_${1}_NGINX_PORT"
	printf '%s\n' "${!src}"
}

# pool_canary_port NAME: member NAME's nginx canary port.
pool_canary_port() {
	local src="_POOL_${1}_NGINX_CANARY_PORT"
	printf '%s\n' "${!src}"
}

# pool_active_set [CA_COPY]: one active set (lib.sh's make_active_set) in every member's SSL
# directory, its CA also copied to CA_COPY; leaves the globals on the first member.
pool_active_set() {
	local first m
	first=${POOL_MEMBERS# }
	first=${first%% *}
	pool_use "$first"
	make_active_set
	[ -z "${1:-}" ] || cp "$SSL_DIR/ca.crt" "$1"
	for m in $POOL_MEMBERS; do
		[ "$m" = "$first" ] && continue
		cp -p "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$T/$m/ssl/"
	done
}

# pool_start: starts every member's carotated, then its nginx, one member after another.
pool_start() {
	local m
	for m in $POOL_MEMBERS; do
		pool_use "$m"
		start_daemon
		nginx_start >&2
		pool_save "$m"
	done
}

# pool_counts M: member M's report as one line of key=value (the counts every member shares).
pool_counts() {
	pool_ctl "$1" --json report | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
print(" ".join("%s=%s" % (k, r.get(k)) for k in
      ("linked", "active", "acknowledged", "verified", "pending", "excluded", "percent", "staged_ca")))'
}

# pool_same_report WHAT [EXPECTED]: every member's report is the same (and holds EXPECTED,
# a key=value, when given); the line is left in REPORT.
pool_same_report() {
	local what=$1 want=${2:-} first="" m c
	for m in $POOL_MEMBERS; do
		c=$(pool_counts "$m") || fail "$what: report on member $m"
		[ -n "$first" ] || first=$c
		[ "$c" = "$first" ] || fail "$what: member $m reports what the first member reports" \
			"first: $first" "$m: $c"
	done
	if [ -n "$want" ]; then
		case " $first " in
		*" $want "*) ;;
		*) fail "$what: the report has $want" "got: $first" ;;
		esac
	fi
	ok "$what: every member reports $first"
	REPORT=$first
}

# pool_pin_nginx M: member M's nginx reads copies of the server certificate and key it serves
# now, so that a set put live on M is not served (its TLS check fails); pool_unpin_nginx M
# points it back at the SSL directory. Both reload that nginx.
pool_pin_nginx() {
	pool_use "$1"
	mkdir -p -m 0700 "$T/$1/pinned"
	cp -p "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$T/$1/pinned/"
	cp -p "$NGINX_DIR/carotate.conf" "$T/$1/carotate.conf.orig"
	sed -i -e "s|$SSL_DIR/server.crt;|$T/$1/pinned/server.crt;|" \
		-e "s|$SSL_DIR/server.key;|$T/$1/pinned/server.key;|" "$NGINX_DIR/carotate.conf"
	grep -q "$T/$1/pinned/server.key;" "$NGINX_DIR/carotate.conf" ||
		fail "member $1's nginx reads the pinned files"
	nginx_reload
	pool_save "$1"
}
pool_unpin_nginx() {
	pool_use "$1"
	cp -p "$T/$1/carotate.conf.orig" "$NGINX_DIR/carotate.conf"
	nginx_reload
	pool_save "$1"
}

# pool_canaries_confirmed: waits (20 s) until every member's daemon has seen its canary serve
# the staged certificate: only then does a canary check-in prove anything (report's
# canary_confirmed).
_pool_canaries() {
	local m
	for m in $POOL_MEMBERS; do
		[ "$(pool_ctl "$m" --json report | json_get canary_confirmed)" = true ] || return 1
	done
}
pool_canaries_confirmed() {
	wait_until 20000 _pool_canaries || fail "every member confirms its canary serves the staged certificate"
}
