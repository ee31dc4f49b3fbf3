#!/bin/bash
# Lifecycle: --check-config, start-up refusals (second instance, unsafe socket directory),
# stale socket, socket permissions, SIGHUP (good and bad configuration), SIGTERM and SIGINT.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init
make_active_set
write_config

# ---- --check-config
assert_exit 0 "--check-config accepts the test configuration" -- \
	"$CAROTATED" -c "$CONF" --check-config

# check_bad NAME EXTRA_DAEMON_LINE MARKER: a config with one bad line is refused as PATH:LINE.
check_bad() {
	local name=$1 extra=$2 marker=$3 bad line
	bad="$T/$name.conf"
	write_config "$bad" "$extra"
	line=$(grep -n -F -- "$marker" "$bad" | head -n1 | cut -d: -f1)
	assert_exit 1 "--check-config refuses $name" -- "$CAROTATED" -c "$bad" --check-config
	assert_contains "$bad:$line:" "$OUT$ERR" "--check-config names $bad:$line ($name)"
}
check_bad unknown-key "bogus_key = 1" "bogus_key"
check_bad bad-duration "request_timeout = 10x" "request_timeout"
assert_exit 1 "--check-config on a missing file exits 1" -- \
	"$CAROTATED" -c "$T/no-such.conf" --check-config
assert_contains "$T/no-such.conf" "$OUT$ERR" "the error names the missing file"

# ---- start; socket file permissions
start_daemon
first_pid=$DAEMON_PID
assert_eq "660" "$(stat -c %a "$SOCK")" "socket file mode is 0660"
assert_eq "socket" "$(stat -c %F "$SOCK")" "socket path is a socket"
if [ "$(id -u)" -eq 0 ]; then
	assert_eq "$SOCKET_GROUP" "$(stat -c %G "$SOCK")" "socket group is socket_group ($SOCKET_GROUP)"
fi

# ---- a second daemon on the same socket refuses; the first keeps serving
assert_exit 1 "a second daemon on the same socket exits 1" -- \
	timeout 10 "$CAROTATED" -f -c "$CONF"
assert_contains "already running" "$OUT$ERR" "the second daemon says 'already running'"
assert_eq "socket" "$(stat -c %F "$SOCK" 2>&1)" "the socket file is still there"
assert_daemon_alive "(first daemon, after the second one gave up)" "$first_pid"
assert_exit 0 "the first daemon still answers status" -- ctl status
assert_eq "$first_pid" "$(ctl --json status | json_get pid)" "it is the first daemon that answers"

# ---- SIGHUP with [ssl] dir changed: a restart is needed; logged, the running one kept
# (issue 14: the gate's counts, the journal and the bundle belong to one directory).
mkdir -m 0755 "$T/ssl2"
make_cert_set "$T/ssl2" second
log_lines=$(wc -l <"$DAEMON_LOG")
SSL_DIR="$T/ssl2" write_config "$CONF"
kill -HUP "$first_pid"
logged_restart() { tail -n +"$((log_lines + 1))" "$DAEMON_LOG" | grep -q "\[ssl\] dir.*takes a restart"; }
if ! wait_until 5000 logged_restart; then
	fail "SIGHUP with [ssl] dir changed logs that a restart is needed" \
		"log since the SIGHUP: $(tail -n +"$((log_lines + 1))" "$DAEMON_LOG")"
fi
wait_until 5000 grep -q "reload: configuration re-read" "$DAEMON_LOG" ||
	fail "the rest of the configuration is re-read"
assert_eq "$T/ssl" "$(ctl --json status | json_get ssl_dir)" "status still shows the running ssl_dir"
assert_eq "$(cert_sha256 "$T/ssl/ca.crt")" "$(ctl --json status | json_get active.ca.sha256)" \
	"the active CA is still read from the running ssl dir"
assert_daemon_alive "after SIGHUP" "$first_pid"

# ---- SIGHUP with a broken configuration: logged, the old configuration kept
log_lines=$(wc -l <"$DAEMON_LOG")
SSL_DIR="$T/ssl" write_config "$CONF" "bogus_key = 1"
kill -HUP "$first_pid"
logged_error() { tail -n +"$((log_lines + 1))" "$DAEMON_LOG" | grep -q -e bogus_key -e "$CONF:"; }
if ! wait_until 5000 logged_error; then
	fail "SIGHUP with a broken configuration logs an error naming the bad key or $CONF:LINE" \
		"log since the SIGHUP: $(tail -n +"$((log_lines + 1))" "$DAEMON_LOG")"
fi
ok "SIGHUP with a broken configuration is logged: $(tail -n +"$((log_lines + 1))" "$DAEMON_LOG" | grep -e bogus_key -e "$CONF:" | head -n1)"
assert_daemon_alive "after SIGHUP with a broken configuration" "$first_pid"
assert_exit 0 "status still answers after the broken SIGHUP" -- ctl --json status
assert_eq "$T/ssl" "$(echo "$OUT" | json_get ssl_dir)" "the old (last good) configuration is kept"
write_config "$CONF" # back to a good one (ssl dir $T/ssl)

# ---- SIGTERM: exit 0, socket removed
stop_daemon TERM "$first_pid"
assert_eq 0 "$DAEMON_STATUS" "SIGTERM: carotated exits with status 0"
if [ -e "$SOCK" ]; then fail "SIGTERM: the socket file is removed" "it is still there: $SOCK"; fi
ok "SIGTERM: the socket file is removed"

# ---- SIGINT: same
start_daemon
stop_daemon INT
assert_eq 0 "$DAEMON_STATUS" "SIGINT: carotated exits with status 0"
if [ -e "$SOCK" ]; then fail "SIGINT: the socket file is removed" "it is still there: $SOCK"; fi
ok "SIGINT: the socket file is removed"

# ---- a stale socket file (daemon killed with SIGKILL) is replaced
start_daemon
stop_daemon KILL
assert_eq "socket" "$(stat -c %F "$SOCK")" "SIGKILL leaves a stale socket file"
start_daemon
ok "a new daemon starts over the stale socket"
assert_eq "$DAEMON_PID" "$(ctl --json status | json_get pid)" "the new daemon answers on it"
stop_daemon

# ---- unsafe socket directories: refuse to start, say why
# refuse_dir WHAT DIR: a daemon whose socket is DIR/c.sock must exit 1 naming DIR.
refuse_dir() {
	local what=$1 dir=$2 conf="$T/refuse.conf"
	SOCK="$dir/c.sock" write_config "$conf"
	assert_exit 1 "refuses to start: socket directory $what" -- timeout 10 "$CAROTATED" -f -c "$conf"
	assert_contains "$dir" "$OUT$ERR" "the refusal names the directory ($what)"
	if [ -e "$dir/c.sock" ]; then fail "no socket is created in an unsafe directory ($what)"; fi
}
mkdir "$T/open" && chmod 0777 "$T/open"
refuse_dir "world-writable (0777)" "$T/open"
mkdir "$T/gw" && chmod 0775 "$T/gw"
refuse_dir "group-writable (0775)" "$T/gw"
mkdir -m 0755 "$T/real"
ln -s "$T/real" "$T/link"
refuse_dir "is a symlink" "$T/link"
if [ "$(id -u)" -eq 0 ]; then
	mkdir -m 0755 "$T/foreign"
	chown nobody "$T/foreign"
	refuse_dir "owned by another user (nobody)" "$T/foreign"
fi

# ---- a missing socket directory is created, safely
SOCK="$T/created/sub.sock" write_config "$T/created.conf"
start_daemon "$T/created.conf" "$T/created/sub.sock"
assert_eq "$(id -u)" "$(stat -c %u "$T/created")" "the created socket directory is ours"
mode=$(stat -c %a "$T/created")
if [ $((0$mode & 022)) -ne 0 ]; then
	fail "the created socket directory is not group/world writable" "mode: $mode"
fi
ok "the created socket directory has mode $mode"
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "that daemon exits 0 on SIGTERM too"
