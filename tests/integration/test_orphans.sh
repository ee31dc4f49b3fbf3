#!/bin/bash
# A daemon killed outright leaves no child behind: its two agent workers die with it, and so
# does the TLS check of the canary, which keeps retrying for [proxy] check_timeout and holds
# the daemon's descriptors (its listening sockets among them), so that a restart finds the
# sockets free at once.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init
make_active_set
write_config
# A canary address nothing listens on: the check child retries for the whole check_timeout.
sed -i -e "s|^address = .*|address = unix:$RUN_DIR/nothing.sock\ncanary_address = unix:$RUN_DIR/nothing-canary.sock|" \
	-e "s|^check_timeout = .*|check_timeout = 60s|" "$CONF"
start_daemon
assert_exit 0 "generate" -- ctl generate
children() { pgrep -P "$DAEMON_PID" -f -- "-c $CONF" | grep -v -x "$(pgrep -P "$DAEMON_PID" -f -- --worker || echo none)" || true; }
wait_until 5000 bash -c "[ -n \"\$(pgrep -P $DAEMON_PID -f -- '-c $CONF' | grep -v -x \"\$(pgrep -P $DAEMON_PID -f -- --worker || echo none)\")\" ]" ||
	fail "the canary check runs in a child of the daemon"
kids=$(children)
ok "the canary check runs in a child ($kids)"
wait_until 5000 worker_up || fail "both agent workers run"
workers="$(worker_pid) $(worker_pid canary)"
kill -KILL "$DAEMON_PID"
{ wait "$DAEMON_PID" || true; } 2>/dev/null
for k in $kids; do
	wait_until 3000 bash -c "! kill -0 $k 2>/dev/null" || fail "the check child $k outlived the killed daemon"
done
ok "the check child died with the daemon"
for k in $workers; do
	wait_until 3000 bash -c "! kill -0 $k 2>/dev/null" || fail "agent worker $k outlived the killed daemon"
done
ok "both agent workers died with the daemon"
start_daemon
ok "a new daemon starts at once on the same sockets"
