#!/bin/bash
# `make demo` keeps working: tests/demo/run (a smaller fleet, no pauses) goes through every
# step, exits 0, shows the rotation verified, the old-only agent cut off and back after the
# restore, and stops what it started. Three real carotate-agent processes go through it beside
# the simulated fleet and count in the 100 %.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
[ -x /usr/sbin/nginx ] || t_skip "nginx is not installed (make deps installs it)"
t_init
run env DEMO_PAUSE=0 DEMO_AGENTS=60 TMPDIR="$T" "$REPO_ROOT/tests/demo/run"
sandbox=$(printf '%s\n' "$OUT" | sed -n 's/.*the sandbox stays in \(.*\) (rm -rf.*/\1/p')
[ "$RC" -eq 0 ] || fail "the demo exits 0" "exit $RC" "$OUT" "$ERR"
ok "the demo exits 0"
for want in "== 8. Done" "100 % of active agents acknowledged (63/63)" \
	"and 3 real carotate-agent processes" "linked: yes" "check:       the proxy serves the new certificate" \
	"curl exit 60" "0 TLS failures" "the proxy serves the restored certificate" \
	"the agent that trusts only the old CA connects again"; do
	printf '%s\n' "$OUT" | grep -q -- "$want" || fail "the demo shows: $want" "$OUT"
	ok "the demo shows: $want"
done
[ -n "$sandbox" ] && [ -s "$sandbox/daemon.log" ] || fail "the demo says where its logs are" "$OUT"
ok "the demo says where its logs are"
if pgrep -f -- "-c $sandbox/carotated.conf" >/dev/null; then fail "the demo stopped its daemon"; fi
ok "the demo stopped its daemon and nginx"
