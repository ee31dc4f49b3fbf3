#!/bin/bash
# messages: what carotatectl tells an operator must point the right way.
# Reproductions, on the code before this test:
# - the only agent excluded, rotate said "no agent has checked in within 7d: is the agent
#   endpoint wired?" although the agent had checked in a second before;
# - a first activation (no active set) printed "gate: 0 of 0 active agents acknowledged",
#   right after report said 1 of 1: the gate is not counted when no active set exists;
# - a caller outside the socket's group got "are you in the carotate group?" whatever the
#   group was called;
# - report blamed the canary listener ("has not been seen serving the staged certificate")
#   when [proxy] canary_address was simply not set;
# - after generate with a failing reload: "agents will not receive the new bundle"; they do
#   (the daemon serves it), what cannot happen is the canary proof;
# - a reader refused an admin call was told "needs the admin role", not which group grants it.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (test groups and users)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"
BENCH="$CAROTATE_BUILD/bench/ingest_bench"
[ -x "$BENCH" ] || t_skip "no $BENCH (make $CAROTATE_BUILD/bench/ingest_bench)"

t_init
READERS=carotate-t-msg-readers
ADMINS=carotate-t-msg-admins
t_group "$READERS" "$ADMINS"
READER=carotate-t-msg-reader
OUTSIDER=carotate-t-msg-outsider
t_user "$READER" "$READERS"
t_user "$OUTSIDER"
SOCKET_GROUP=$READERS
ADMIN_GROUP=$ADMINS
write_config
start_daemon
AGENT_SOCK="$RUN_DIR/agent.sock"
wait_until 5000 test -S "$AGENT_SOCK" || fail "no agent socket"

# as USER CMD...: runs CMD as USER with its groups.
as() {
	local u=$1
	shift
	setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups "$@"
}

# ---- the socket's group, named from the socket file
assert_exit 4 "a caller outside the socket's group is refused" -- \
	as "$OUTSIDER" "$CAROTATECTL" --socket "$SOCK" status
assert_contains "its group $READERS" "$ERR" "the refusal names the socket's actual group"
assert_contains "usermod -aG $READERS" "$ERR" "...and how to join it"
case "$ERR" in *"the carotate group"*) fail "still names the carotate group" "$ERR" ;; esac
ok "no mention of a group that is not the socket's"

# ---- a denied call names the group that grants it
assert_exit 4 "a reader may not generate" -- as "$READER" "$CAROTATECTL" --socket "$SOCK" generate
assert_contains "members of group $ADMINS have it" "$ERR" "the denial names admin_group"
assert_contains "usermod -aG $ADMINS" "$ERR" "...and how to join it"

# ---- first activation: no active set; the gate line agrees with report
ctl generate >/dev/null 2>&1 || fail "generate"
"$BENCH" -s "$AGENT_SOCK" -k "$LINKING_KEY" -n 1 -p fleet -c 1 -t 1 -i >/dev/null ||
	fail "check-ins"
ctl --json report | jsave "$T/r.json"
active=$(jget active "$T/r.json")
acked=$(jget acknowledged "$T/r.json")
assert_exit 0 "rotate --dry-run on a first activation" -- ctl rotate --dry-run
assert_contains "gate:" "$OUT" "the gate line is printed"
assert_match "gate: +$acked of $active active agents acknowledged the staged CA \(no active set before" \
	"$OUT" "it counts what report counted ($acked of $active) and says the gate does not apply"

# ---- canary_address not set: report says so, instead of blaming the listener
assert_exit 0 "report" -- ctl report
assert_contains "[proxy] canary_address is not set" "$OUT" "report says canary_address is not set"
case "$OUT" in *"has not been seen serving"*) fail "report blames the canary listener" "$OUT" ;; esac
ok "report does not blame the canary listener"
assert_exit 0 "report --json" -- ctl --json report
assert_eq true "$(printf '%s' "$OUT" | json_get canary_check_unset)" "canary_check_unset in --json"
ctl discard >/dev/null || fail "discard"

# ---- the only agent excluded: rotate says so
make_active_set
ctl generate >/dev/null 2>&1 || fail "generate over an active set"
assert_exit 0 "exclude the only agent" -- ctl exclude fleet-0 --reason "decommissioned"
assert_exit 3 "rotate with every agent excluded is refused" -- ctl rotate
assert_contains "every agent is excluded (1 of 1)" "$ERR" "the refusal says every agent is excluded"
case "$ERR" in *"endpoint wired"*) fail "still asks whether the endpoint is wired" "$ERR" ;; esac
ok "no question about the agent endpoint"
ctl include fleet-0 >/dev/null || fail "include"
ctl discard >/dev/null || fail "discard"

# ---- a failing reload after generate: the warning names what cannot happen
sed -i 's|^reload = .*|reload = /bin/false|' "$CONF"
kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "reload: configuration re-read" "$DAEMON_LOG" || fail "SIGHUP not applied"
assert_exit 0 "generate with a failing reload" -- ctl generate
assert_contains "the proxy reload failed: agents still receive the new bundle" "$ERR" \
	"the warning says agents get the bundle"
assert_contains "no agent can prove (verified)" "$ERR" "...and that the canary proof cannot happen"
case "$ERR" in *"will not receive the new bundle"*) fail "the old wrong warning" "$ERR" ;; esac
ok "no claim that agents miss the bundle"
