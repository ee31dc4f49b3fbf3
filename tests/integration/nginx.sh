# shellcheck shell=bash disable=SC2034 # variables here are used by the tests that source it
# A private nginx for the integration tests, running the shipped packaging/nginx/ files
# themselves (carotate.conf, which includes carotate-locations.conf, and carotate-canary.conf)
# with test ports, names and paths. Source it after lib.sh and t_init:
#
#   . "$(dirname "$0")/nginx.sh"
#   nginx_setup            # paths, ports, $NGINX_RELOAD (write it into the daemon's config)
#   nginx_start            # needs $SSL_DIR/{server,canary}.{crt,key}; waits for TLS on both
#   nginx_wait_serving PORT CERT [MS]   # until a new TLS handshake on PORT shows CERT's leaf
#   nginx_reload           # runs $NGINX_RELOAD, then waits for the files' certs to be served
#   nginx_stop             # graceful quit, waits
#
# After nginx_setup: $NGINX_DIR ($NGINX_HOME when set, else $T/nginx: conf, logs, temp dirs), $NGINX_CONF, $NGINX_PORT (main
# listener), $NGINX_CANARY_PORT, $NGINX_CHECK_SOCK (the `listen unix:... ssl` of the main
# server block, for [proxy] address = unix:...), $NGINX_CANARY_CHECK_SOCK (the canary's),
# both in $NGINX_CHECK_DIR ($RUN_DIR/check, 0700 like /run/carotate/check), $NGINX_RELOAD (an executable script: the
# daemon's [proxy] reload), $NGINX_ERROR_LOG ($T/$NGINX_LOG_NAME.log, default $T/nginx.log: lib.sh's trap prints it when a
# test fails), $NGINX_ACCESS_LOG, $NGINX_SERVER_NAME (proxy.test), $NGINX_PID.
# Also: nginx_check_config (nginx -t of the rendered files), nginx_served_sha256 PORT (sha256
# of the served leaf's DER), nginx_write_daemon_config
# (lib.sh's write_config, with reload and address pointing at this nginx).
#
# As root the workers run as nobody:nogroup (lib.sh's AGENT_GROUP as root is nogroup, so
# they can open the agent sockets); otherwise as the current user. Ports: two free loopback
# ports picked by the kernel; if nginx still meets "Address already in use", new ones.
# The links' per-address rate limit (limit_req, 10/s) is lifted to 100000/s: every simulated
# agent comes from 127.0.0.1. NGINX_LINK_LIMIT=shipped before nginx_start keeps it.

NGINX=${CAROTATE_NGINX:-/usr/sbin/nginx}
NGINX_SNIPPET="$REPO_ROOT/packaging/nginx/carotate.conf"
NGINX_SNIPPET_LOCATIONS="$REPO_ROOT/packaging/nginx/carotate-locations.conf"
NGINX_SNIPPET_CANARY="$REPO_ROOT/packaging/nginx/carotate-canary.conf"
NGINX_LINK_LIMIT=${NGINX_LINK_LIMIT:-relaxed}
NGINX_SERVER_NAME=proxy.test
NGINX_DIR=""
NGINX_PID=""
NGINX_PORT=""
NGINX_CANARY_PORT=""

# nginx_setup: paths and the reload script (no nginx yet). Idempotent.
nginx_setup() {
	[ -n "$T" ] || fail "nginx_setup: call t_init first"
	[ -x "$NGINX" ] || t_skip "nginx is not installed ($NGINX; make deps installs it)"
	for f in "$NGINX_SNIPPET" "$NGINX_SNIPPET_LOCATIONS" "$NGINX_SNIPPET_CANARY"; do
		[ -f "$f" ] || fail "nginx_setup: $f is missing"
	done
	[ -n "$NGINX_DIR" ] && return 0
	NGINX_DIR="${NGINX_HOME:-$T/nginx}"
	NGINX_CONF="$NGINX_DIR/nginx.conf"
	NGINX_ERROR_LOG="$T/${NGINX_LOG_NAME:-nginx}.log"
	NGINX_ACCESS_LOG="$NGINX_DIR/access.log"
	NGINX_CHECK_DIR="$RUN_DIR/check"
	NGINX_CHECK_SOCK="$NGINX_CHECK_DIR/proxy-check.sock"
	NGINX_CANARY_CHECK_SOCK="$NGINX_CHECK_DIR/canary-check.sock"
	NGINX_RELOAD="$NGINX_DIR-reload.sh"
	mkdir -m 0755 "$NGINX_DIR" "$NGINX_DIR/tmp"
	mkdir -p "$RUN_DIR"
	mkdir -m 0700 "$NGINX_CHECK_DIR"
	# [proxy] reload: argv, no shell, so a script. Like `systemctl reload nginx` it fails
	# on a configuration nginx would refuse (`nginx -s reload` alone exits 0 even then).
	cat >"$NGINX_RELOAD" <<EOF
#!/bin/sh
# The test nginx's reload, for carotated's [proxy] reload (tests/integration/nginx.sh).
echo "reload \$\$ \$(date +%s.%N)" >>"$NGINX_DIR/reload.calls"
"$NGINX" -q -t -p "$NGINX_DIR/" -c "$NGINX_CONF" || exit 1
exec "$NGINX" -p "$NGINX_DIR/" -c "$NGINX_CONF" -s reload
EOF
	chmod 0755 "$NGINX_RELOAD"
}

# The number of times the reload script ran.
nginx_reload_count() {
	if [ -f "$NGINX_DIR/reload.calls" ]; then wc -l <"$NGINX_DIR/reload.calls"; else echo 0; fi
}

# nginx_write_daemon_config [FILE] [EXTRA_DAEMON_LINE...]: write_config, then [proxy] reload
# = $NGINX_RELOAD, address = unix:$NGINX_CHECK_SOCK (the main server block's unix listener)
# and canary_address = unix:$NGINX_CANARY_CHECK_SOCK (the canary block's).
nginx_write_daemon_config() {
	local file=${1:-$CONF}
	nginx_setup
	write_config "$@"
	sed -i -e "s|^reload = .*|reload = $NGINX_RELOAD|" \
		-e "s|^address = .*|address = unix:$NGINX_CHECK_SOCK\ncanary_address = unix:$NGINX_CANARY_CHECK_SOCK|" \
		-e "s|^server_name = .*|server_name = $NGINX_SERVER_NAME|" "$file"
	grep -q "^reload = $NGINX_RELOAD\$" "$file" || fail "the daemon config names the nginx reload script"
	grep -q "^address = unix:$NGINX_CHECK_SOCK\$" "$file" || fail "the daemon config names the check socket"
}

# Two free TCP ports on 127.0.0.1, chosen by the kernel ("PORT1 PORT2").
_nginx_free_ports() {
	"$PY" -c '
import socket
ss = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# _nginx_render SRC DST: a shipped file with test ports, names and paths.
_nginx_render() {
	local leftover
	sed -e "s|^\([[:space:]]*listen\) 443 ssl;|\1 127.0.0.1:$NGINX_PORT ssl;|" \
		-e "s|^\([[:space:]]*listen\) 8443 ssl;|\1 127.0.0.1:$NGINX_CANARY_PORT ssl;|" \
		-e '/^[[:space:]]*listen \[::\]:/d' \
		-e "s|/usr/local/etc/nginx/ssl/|$SSL_DIR/|g" \
		-e "s|include /etc/nginx/snippets/carotate-locations.conf;|include $NGINX_DIR/carotate-locations.conf;|" \
		-e "s|unix:/run/carotate/check/proxy-check.sock|unix:$NGINX_CHECK_SOCK|g" \
		-e "s|unix:/run/carotate/check/canary-check.sock|unix:$NGINX_CANARY_CHECK_SOCK|g" \
		-e "s|/run/carotate/|$RUN_DIR/|g" \
		-e "s|server_name proxy.example.com;|server_name $NGINX_SERVER_NAME;|" \
		"$1" >"$2"
	if [ "$NGINX_LINK_LIMIT" != shipped ]; then
		sed -i 's|^\(limit_req_zone .* rate=\)10r/s;|\1100000r/s;|' "$2"
	fi
	# Every production path and port must have been replaced (comments aside).
	leftover=$(grep -v '^[[:space:]]*#' "$2" |
		grep -nE '/run/carotate|/usr/local/etc/nginx|/etc/nginx|listen (\[::\]:)?(443|8443)[ ;]|proxy\.example\.com' || true)
	[ -z "$leftover" ] || fail "nginx.sh: $1 has production values the test did not replace" "$leftover"
}

# Writes $NGINX_CONF: the shipped files with test ports, names and paths, in a minimal main
# config.
_nginx_write_conf() {
	local user_line=""
	if [ "$(id -u)" -eq 0 ]; then
		user_line="user nobody nogroup;"
	fi
	_nginx_render "$NGINX_SNIPPET_LOCATIONS" "$NGINX_DIR/carotate-locations.conf"
	_nginx_render "$NGINX_SNIPPET_CANARY" "$NGINX_DIR/carotate-canary.conf"
	_nginx_render "$NGINX_SNIPPET" "$NGINX_DIR/carotate.conf"
	if [ "$NGINX_LINK_LIMIT" != shipped ] && grep -q 'rate=10r/s' "$NGINX_DIR/carotate-canary.conf"; then
		fail "nginx.sh: the link rate limit of carotate-canary.conf was not lifted for the test"
	fi
	cat >"$NGINX_CONF" <<EOF
# The test nginx (tests/integration/nginx.sh); the server blocks are packaging/nginx/'s.
$user_line
worker_processes 2;
daemon off;
master_process on;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_ERROR_LOG info;
worker_rlimit_nofile 8192;
events {
    worker_connections 4096;
}
http {
    access_log $NGINX_ACCESS_LOG combined buffer=64k flush=1s;
    client_body_temp_path $NGINX_DIR/tmp/body;
    proxy_temp_path $NGINX_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DIR/tmp/scgi;
    server_tokens off;
    include $NGINX_DIR/carotate-canary.conf;
    include $NGINX_DIR/carotate.conf;
}
EOF
}

# nginx_check_config: writes $NGINX_CONF with two free ports and runs `nginx -t` on it, as an
# operator would before a reload; its status, its output in $NGINX_DIR/t.out.
nginx_check_config() {
	nginx_setup
	read -r NGINX_PORT NGINX_CANARY_PORT < <(_nginx_free_ports)
	_nginx_write_conf
	"$NGINX" -t -p "$NGINX_DIR/" -c "$NGINX_CONF" >"$NGINX_DIR/t.out" 2>&1
}

# nginx_served_sha256 PORT|unix:PATH: sha256 (lower-case hex) of the DER of the leaf certificate
# a new TLS handshake gets (SNI $NGINX_SERVER_NAME); empty when the handshake fails.
nginx_served_sha256() {
	local target=$1 pem
	case "$target" in
	unix:*) pem=$(openssl s_client -unix "${target#unix:}" -servername "$NGINX_SERVER_NAME" \
		</dev/null 2>/dev/null) || true ;;
	*) pem=$(openssl s_client -connect "127.0.0.1:$target" -servername "$NGINX_SERVER_NAME" \
		</dev/null 2>/dev/null) || true ;;
	esac
	printf '%s\n' "$pem" | openssl x509 -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1 |
		grep -v '^e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$' || true
}

_nginx_serving() { [ "$(nginx_served_sha256 "$1")" = "$2" ]; }

# nginx_wait_serving PORT|unix:PATH CERT_FILE [TIMEOUT_MS]: waits until new handshakes get
# CERT_FILE's first certificate (after a reload old workers may still answer for a moment).
nginx_wait_serving() {
	local target=$1 want ms=${3:-10000}
	want=$(openssl x509 -in "$2" -outform DER | sha256sum | cut -d' ' -f1)
	if ! wait_until "$ms" _nginx_serving "$target" "$want"; then
		fail "nginx serves $2 on $target within $ms ms" "want leaf sha256: $want" \
			"served:           $(nginx_served_sha256 "$target")" \
			"nginx log: $(tail -n 5 "$NGINX_ERROR_LOG" 2>/dev/null)"
	fi
}

# nginx_start: starts nginx in the foreground (daemon off) in the background, tracked by the
# cleanup trap; waits until both listeners (and the check socket) serve the certificates of
# $SSL_DIR. Retries with other ports when one was taken meanwhile.
nginx_start() {
	local attempt st deadline
	nginx_setup
	for f in server.crt server.key canary.crt canary.key; do
		[ -f "$SSL_DIR/$f" ] || fail "nginx_start: $SSL_DIR/$f is missing (start the daemon first)"
	done
	for attempt in 1 2 3 4 5; do
		read -r NGINX_PORT NGINX_CANARY_PORT < <(_nginx_free_ports)
		_nginx_write_conf
		: >"$NGINX_ERROR_LOG.start"
		"$NGINX" -q -t -p "$NGINX_DIR/" -c "$NGINX_CONF" >"$NGINX_ERROR_LOG.start" 2>&1 ||
			fail "nginx -t refuses the test configuration" "$(cat "$NGINX_ERROR_LOG.start")" \
				"$(cat "$NGINX_CONF")"
		"$NGINX" -p "$NGINX_DIR/" -c "$NGINX_CONF" >>"$NGINX_ERROR_LOG.start" 2>&1 </dev/null &
		NGINX_PID=$!
		t_track_pid "$NGINX_PID"
		deadline=$(($(ms_now) + 10000))
		while ! _nginx_serving "$NGINX_PORT" "$(openssl x509 -in "$SSL_DIR/server.crt" -outform DER | sha256sum | cut -d' ' -f1)"; do
			if ! daemon_alive "$NGINX_PID"; then
				st=0
				{ wait "$NGINX_PID" || st=$?; } 2>/dev/null
				if grep -q 'Address already in use' "$NGINX_ERROR_LOG" "$NGINX_ERROR_LOG.start" 2>/dev/null; then
					t_log "nginx: a port was taken ($NGINX_PORT/$NGINX_CANARY_PORT), attempt $attempt; new ports"
					rm -f "$NGINX_CHECK_SOCK" "$NGINX_CANARY_CHECK_SOCK"
					continue 2
				fi
				fail "nginx exited (status $st) instead of starting" \
					"$(tail -n 20 "$NGINX_ERROR_LOG" 2>/dev/null)" "$(cat "$NGINX_ERROR_LOG.start")"
			fi
			[ "$(ms_now)" -lt "$deadline" ] ||
				fail "nginx did not serve TLS on 127.0.0.1:$NGINX_PORT within 10 s" \
					"$(tail -n 20 "$NGINX_ERROR_LOG" 2>/dev/null)"
			sleep 0.05
		done
		nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/canary.crt"
		nginx_wait_serving "unix:$NGINX_CHECK_SOCK" "$SSL_DIR/server.crt"
		t_log "nginx: pid $NGINX_PID, main 127.0.0.1:$NGINX_PORT, canary 127.0.0.1:$NGINX_CANARY_PORT, check unix:$NGINX_CHECK_SOCK"
		return 0
	done
	fail "nginx: no free ports after 5 attempts"
}

# nginx_reload: the reload the daemon would run; then waits until new handshakes get the
# certificates now in $SSL_DIR (main: server.crt, canary: canary.crt).
nginx_reload() {
	"$NGINX_RELOAD" >>"$NGINX_ERROR_LOG" 2>&1 || fail "nginx reload failed" "$(tail -n 10 "$NGINX_ERROR_LOG")"
	nginx_wait_serving "$NGINX_PORT" "$SSL_DIR/server.crt"
	nginx_wait_serving "$NGINX_CANARY_PORT" "$SSL_DIR/canary.crt"
}

# nginx_stop: graceful quit (SIGQUIT), then waits up to 10 s (then SIGKILL).
nginx_stop() {
	local n=100
	[ -n "$NGINX_PID" ] || return 0
	kill -QUIT "$NGINX_PID" 2>/dev/null || true
	while daemon_alive "$NGINX_PID" && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	if daemon_alive "$NGINX_PID"; then
		kill -KILL "$NGINX_PID" 2>/dev/null || true
	fi
	{ wait "$NGINX_PID"; } 2>/dev/null || true
	NGINX_PID=""
}

# tls_req PORT TRUST METHOD PATH [ARGS...]: curl as an agent over TLS to proxy.test on
# 127.0.0.1:PORT, trusting only the PEM file TRUST; sets CODE (or curl-EXIT), saves the
# headers in $T/h (read them with hdr), the body in $T/body and curl's errors in $T/err.
tls_req() {
	local port=$1 trust=$2 method=$3 path=$4
	shift 4
	CODE=$(curl -sS --max-time 15 --cacert "$trust" --resolve "proxy.test:$port:127.0.0.1" \
		-X "$method" -D "$T/h" -o "$T/body" -w '%{http_code}' "$@" \
		"https://proxy.test:$port$path" 2>"$T/err") || CODE="curl-$?"
}

# served: the SHA-256 of the leaf the main listener serves to a new handshake.
served() { nginx_served_sha256 "$NGINX_PORT"; }
# serves_now SHA WHAT: new handshakes on the main listener get the leaf SHA within 10 s
# (after a reload an old nginx worker may still accept for a moment).
serves_now() {
	wait_until 10000 _nginx_serving "$NGINX_PORT" "$1" || fail "$2" "want $1" "served $(served)"
	ok "$2"
}
# leaf_sha FILE: the SHA-256 of the DER of the first certificate in FILE.
leaf_sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
