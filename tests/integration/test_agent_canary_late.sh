#!/bin/bash
# A canary proof made before the daemon has checked its canary listener must be made again
# (issue 16). The daemon counts a canary check-in as "verified" only once its own TLS check
# has seen the canary serve the staged certificate (after the reload that staged it). An
# agent that checked in in between used to mark the staged CA proven for good and never
# go through the canary again, so the report stayed below 100 % verified for it forever
# (seen in test_booted: the agent's first check-in came right after generate).
#
# Reproduction, made deterministic: the daemon's canary check points at the main listener
# (which serves the active certificate), so the check fails while nginx's canary does serve
# the staged certificate. The agent checks in: new bundle, canary check-in, not counted
# (0 verified). The canary check is pointed right and SIGHUP runs it again (confirmed).
# The next check-in must go through the canary again and be counted: 1 verified.
set -eu
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"
. "$(dirname "$0")/nginx.sh"

agent_require
t_init
make_active_set
nginx_write_daemon_config
# The canary check at first asks the main listener: it never serves the staged certificate.
sed -i "s|^canary_address = .*|canary_address = unix:$NGINX_CHECK_SOCK|" "$CONF"
start_daemon
nginx_start

A="$T/agent"
agent_dir "$A" id=late-agent "canary_url=https://127.0.0.1:$NGINX_CANARY_PORT" timeout=15s
AGENT_CONF="$A/agent.conf"
ctl --json join-token create --uses 1 | json_get token >"$T/jt"
assert_exit 0 "link" -- agent link --server "https://127.0.0.1:$NGINX_PORT" \
	--ca-file "$SSL_DIR/ca.crt" --join-token-file "$T/jt"

ctl generate >/dev/null || fail "generate"
wait_until 15000 grep -q "does not serve the staged certificate" "$DAEMON_LOG" ||
	fail "the daemon's canary check (pointed at the main listener) did not fail"
ok "the daemon has not confirmed its canary listener"

assert_exit 0 "check-in: the new bundle and a canary check-in" -- agent check-in
ctl --json report | jsave "$T/r1.json"
assert_eq "100 0" "$(jget percent "$T/r1.json") $(jget percent_verified "$T/r1.json")" \
	"acknowledged, but not verified: the canary was not confirmed yet"

# The canary check pointed right: SIGHUP re-reads the configuration and checks again.
sed -i "s|^canary_address = .*|canary_address = unix:$NGINX_CANARY_CHECK_SOCK|" "$CONF"
kill -HUP "$DAEMON_PID"
wait_until 15000 grep -q "serves the staged certificate" "$DAEMON_LOG" ||
	fail "the daemon did not confirm its canary listener after SIGHUP" "$(tail -n 5 "$DAEMON_LOG")"

assert_exit 0 "the next check-in (a 304)" -- agent check-in
ctl --json report | jsave "$T/r2.json"
assert_eq "100 100" "$(jget percent "$T/r2.json") $(jget percent_verified "$T/r2.json")" \
	"the next check-in made the canary proof again and was counted: verified"
