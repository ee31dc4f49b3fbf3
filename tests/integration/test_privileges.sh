#!/bin/bash
# Least privilege (issue 6), read from /proc/<pid>/status of a daemon started as root:
#  - the parent keeps CAP_SETUID, CAP_SETGID, CAP_KILL and CAP_SETPCAP only (permitted,
#    effective and bounding), no inheritable or ambient capability, NoNewPrivs 1;
#  - both agent workers (agent.sock's and agent-canary.sock's) hold nothing at all (every set
#    empty, the bounding set too), NoNewPrivs 1, and run as the agents' user;
#  - and the daemon still does its work with that: generate (a certificate job and the
#    reload command), each killed worker restarted as its own user, a clean stop.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "capabilities are only dropped by a daemon started as root"
t_init
make_active_set
write_config
start_daemon

# The hex mask of capability numbers, as /proc/PID/status prints it.
mask() {
	local m=0 c
	for c in "$@"; do m=$((m | (1 << c))); done
	printf '%016x' "$m"
}

# CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_SETPCAP 8.
KEPT=$(mask 5 6 7 8)
wait_until 5000 grep -q "capabilities:" "$DAEMON_LOG" || fail "the daemon says which capabilities it kept"
for f in CapPrm CapEff CapBnd; do
	assert_eq "$KEPT" "$(proc_status "$DAEMON_PID" $f)" "the daemon's $f is CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_SETPCAP"
done
for f in CapInh CapAmb; do
	assert_eq 0000000000000000 "$(proc_status "$DAEMON_PID" $f)" "the daemon's $f is empty"
done
assert_eq 1 "$(proc_status "$DAEMON_PID" NoNewPrivs)" "the daemon runs with no_new_privs"

check_worker() {
	local w=$1 f
	for f in CapInh CapPrm CapEff CapBnd CapAmb; do
		assert_eq 0000000000000000 "$(proc_status "$w" $f)" "$2: the worker's $f is empty"
	done
	assert_eq 1 "$(proc_status "$w" NoNewPrivs)" "$2: the worker runs with no_new_privs"
	assert_eq "$(id -u "$AGENT_USER")" "$(awk '/^Uid:/ {print $2}' "/proc/$w/status")" "$2: the worker runs as $AGENT_USER"
}
# replaced OLD SITE: a worker for SITE runs, and it is not OLD.
replaced() { local w; w=$(worker_pid "$2") && [ -n "$w" ] && [ "$w" != "$1" ]; }
wait_until 5000 worker_up || fail "both workers run"
W1=$(worker_pid)
C1=$(worker_pid canary)
check_worker "$W1" "first agent.sock worker"
check_worker "$C1" "first canary worker"

# The work still gets done with those capabilities.
assert_exit 0 "generate (a certificate job, then the reload command) after the drop" -- ctl generate
kill -KILL "$W1" "$C1"
wait_until 10000 replaced "$W1" agents ||
	fail "a killed worker is restarted (CAP_SETUID, CAP_SETGID kept for that)" "$(tail -n 5 "$DAEMON_LOG")"
wait_until 10000 replaced "$C1" canary ||
	fail "a killed canary worker is restarted (CAP_SETUID, CAP_SETGID kept for that)" "$(tail -n 5 "$DAEMON_LOG")"
W2=$(worker_pid)
C2=$(worker_pid canary)
check_worker "$W2" "restarted agent.sock worker"
check_worker "$C2" "restarted canary worker"
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "the daemon stops cleanly (it stops its workers: CAP_KILL)"
if kill -0 "$W2" 2>/dev/null || kill -0 "$C2" 2>/dev/null; then
	fail "the workers are gone after the daemon stopped"
fi
ok "the workers are gone after the daemon stopped"
