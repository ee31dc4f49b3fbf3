#!/bin/bash
# first day: what a new operator's mistakes must produce, instead of a daemon that looks
# healthy and is not.
# Reproductions, on the code before this test:
# - the README's temporary configuration, as root: socket_group carotate and admin_group
#   carotate-admin did not exist and `carotated --check-config` said "configuration OK";
# - `[agents] user = $(id -un)` as root: the daemon started, reported ready and restarted
#   its agent workers for ever ("never runs as root" in the log), while `status` showed
#   nothing wrong but "agent restarting";
# - an SSL directory on a read-only file system (systemd's ReadWritePaths= covers only the
#   default path): the daemon reported ready, and the first generate failed with EROFS;
# - a worker that died and was restarted left no trace in `status`.
# Here: --check-config names each missing group, a root worker user and a directory the
# daemon cannot write (exit 1), as root and as an unprivileged user; the daemon refuses to
# start on a root worker user and on a read-only SSL or state directory, naming the
# `systemctl edit` drop-in; status (human and --json) shows each worker's restarts and
# last error.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (groups, users, read-only bind mounts)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"
command -v unshare >/dev/null || t_skip "unshare (util-linux) is not installed"

t_init
make_active_set
write_config
OPERATOR=carotate-t-first
t_user "$OPERATOR"

# as_operator CMD...: runs CMD as the unprivileged test user.
as_operator() {
	setpriv --reuid="$(id -u "$OPERATOR")" --regid="$(id -g "$OPERATOR")" --init-groups "$@"
}

# ---- --check-config, as root
assert_exit 0 "--check-config accepts the test configuration" -- \
	"$CAROTATED" -c "$CONF" --check-config
assert_contains "configuration OK" "$OUT" "and says so"

SOCKET_GROUP=carotate-t-no-such-group ADMIN_GROUP=carotate-t-no-such-admin \
	write_config "$T/groups.conf"
assert_exit 1 "--check-config refuses groups that do not exist" -- \
	"$CAROTATED" -c "$T/groups.conf" --check-config
assert_contains "socket_group carotate-t-no-such-group does not exist" "$ERR" "names socket_group"
assert_contains "admin_group carotate-t-no-such-admin does not exist" "$ERR" "names admin_group"
assert_contains "syntax OK" "$OUT" "the syntax itself is fine"
case "$OUT" in *"configuration OK"*) fail "--check-config still says configuration OK" "$OUT" ;; esac
ok "no 'configuration OK' with problems"

AGENT_GROUP=carotate-t-no-such-agents write_config "$T/agroup.conf"
assert_exit 1 "--check-config refuses an [agents] group that does not exist" -- \
	"$CAROTATED" -c "$T/agroup.conf" --check-config
assert_contains "[agents] group carotate-t-no-such-agents does not exist" "$ERR" "names it"

AGENT_USER=carotate-t-no-such-user write_config "$T/nouser.conf"
assert_exit 1 "--check-config refuses an [agents] user that does not exist" -- \
	"$CAROTATED" -c "$T/nouser.conf" --check-config
assert_contains "[agents] user carotate-t-no-such-user does not exist" "$ERR" "names it"

AGENT_USER=root write_config "$T/root.conf"
assert_exit 1 "--check-config refuses a root worker user" -- \
	"$CAROTATED" -c "$T/root.conf" --check-config
assert_contains "the agent worker never runs as root" "$ERR" "says why"

# ---- the daemon refuses a root worker user at once, instead of restarting workers for ever
run_daemon_bg "$T/root.conf" "$T/root.log"
wait_until 5000 eval '! daemon_alive' || fail "carotated with [agents] user = root keeps running" \
	"log: $(tail -n 5 "$T/root.log")"
assert_ne 0 "$({ wait "$DAEMON_PID" && echo 0; } || echo $?)" "carotated exits non-zero"
assert_file_contains "the agent worker never runs as root" "$T/root.log" "and says why"
[ ! -S "$SOCK" ] || fail "the control socket exists although the daemon refused to start"
ok "no control socket was left behind"

# ---- as an unprivileged user: no group check, but the directories it cannot write
assert_exit 1 "--check-config as another user refuses directories it cannot write" -- \
	as_operator "$CAROTATED" -c "$CONF" --check-config
assert_contains "not run as root" "$OUT" "says the users and groups are not checked"
case "$ERR" in *"does not exist"*) fail "groups checked as an unprivileged user" "$ERR" ;; esac
ok "groups and users are not checked as an unprivileged user"
assert_contains "SSL directory $SSL_DIR must be owned by uid $(id -u "$OPERATOR")" "$ERR" \
	"names the SSL directory"
assert_contains "state directory $STATE_DIR must be owned" "$ERR" "names the state directory"

OP="$T/op"
mkdir -m 0755 "$OP" "$OP/ssl" "$OP/run"
chown "$OPERATOR" "$OP/ssl" "$OP/run"
chmod 0755 "$OP"
SOCK="$OP/run/carotated.sock" SSL_DIR="$OP/ssl" STATE_DIR="$OP/state" RUN_DIR="$OP/run" \
	write_config "$T/op.conf"
assert_exit 1 "--check-config as another user: a state directory it cannot create" -- \
	as_operator "$CAROTATED" -c "$T/op.conf" --check-config
assert_contains "the directory that would hold the state directory $OP is not writable" "$ERR" \
	"names the parent of the missing state directory"
chown "$OPERATOR" "$OP"
assert_exit 0 "--check-config as another user, in directories of its own" -- \
	as_operator "$CAROTATED" -c "$T/op.conf" --check-config
[ ! -e "$OP/state" ] || fail "--check-config created the state directory"
ok "--check-config creates nothing"

# ---- read-only SSL or state directory: refused at start, with the drop-in to add
# ro_run DIR CMD...: runs CMD in a mount namespace where DIR is a read-only bind mount.
ro_run() {
	local dir=$1
	shift
	unshare -m sh -c 'mount --bind -o ro "$1" "$1" && shift && exec "$@"' sh "$dir" "$@"
}
assert_exit 1 "--check-config refuses a read-only SSL directory" -- \
	ro_run "$SSL_DIR" "$CAROTATED" -c "$CONF" --check-config
assert_contains "SSL directory $SSL_DIR is on a read-only file system" "$ERR" "says read-only"
assert_exit 1 "carotated refuses to start on a read-only SSL directory" -- \
	ro_run "$SSL_DIR" "$CAROTATED" -f -c "$CONF"
assert_contains "SSL directory $SSL_DIR is on a read-only file system" "$ERR" "says read-only"
assert_contains 'systemctl edit carotated' "$ERR" "names the command"
assert_contains "$(printf '[Service]\nReadWritePaths=%s' "$SSL_DIR")" "$ERR" "names the drop-in"
case "$ERR" in *"started (pid"*) fail "carotated said it started" "$ERR" ;; esac
ok "it never said it started"
assert_exit 1 "carotated refuses to start on a read-only state directory" -- \
	ro_run "$STATE_DIR" "$CAROTATED" -f -c "$CONF"
assert_contains "$(printf '[Service]\nReadWritePaths=%s' "$STATE_DIR")" "$ERR" "names the drop-in"

# ---- status: the workers' health
start_daemon
wait_until 5000 worker_up || fail "the agent workers did not start"
assert_exit 0 "status --json" -- ctl --json status
printf '%s' "$OUT" | jsave "$T/status.json"
assert_eq "agents canary" "$(jget workers.0.name "$T/status.json") $(jget workers.1.name "$T/status.json")" \
	"status --json lists both workers"
assert_eq "true" "$(jget workers.0.running "$T/status.json")" "the agents worker runs"
assert_eq "0" "$(jget workers.0.restarts "$T/status.json")" "and never restarted"
assert_eq "null" "$(jget workers.0.last_error "$T/status.json")" "with no last error"
old=$(worker_pid)
kill -KILL "$old"
wait_until 10000 eval '[ -n "$(worker_pid)" ] && [ "$(worker_pid)" != "$old" ]' ||
	fail "the agents worker was not restarted"
assert_exit 0 "status --json after the worker was killed" -- ctl --json status
printf '%s' "$OUT" | jsave "$T/status.json"
assert_eq "1" "$(jget workers.0.restarts "$T/status.json")" "status counts the restart"
assert_match "killed by signal 9" "$(jget workers.0.last_error "$T/status.json")" "and its cause"
assert_match '^[0-9]{4}-' "$(jget workers.0.last_error_at "$T/status.json")" "with its time"
assert_eq "0" "$(jget workers.1.restarts "$T/status.json")" "the canary worker did not restart"
assert_exit 0 "status" -- ctl status
assert_match "agents: running, 1 restart; last error [0-9-]+.*killed by signal 9" "$OUT" \
	"human status shows the restart and the last error"
case "$OUT" in *"canary: "*) fail "a healthy worker got a health line" "$OUT" ;; esac
ok "a healthy worker gets no health line"
