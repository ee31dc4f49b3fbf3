#!/bin/bash
# report, wait, exclude and include through the real CLI, and the Prometheus
# textfile: agents check in straight into agent.sock (no nginx needed here).
# One duration grammar: `carotatectl --timeout 1h status` was refused ("invalid timeout":
# the common --timeout took only s and m) while `wait --timeout 2d` took h and d and meant
# the whole wait. Now every duration takes s, m, h and d; wait's overall limit is
# --max-wait, and `wait --timeout` still works with a deprecation note on stderr.
. "$(dirname "$0")/lib.sh"

BENCH="$CAROTATE_BUILD/bench/ingest_bench"
[ -x "$BENCH" ] || t_skip "no $BENCH (make $CAROTATE_BUILD/bench/ingest_bench)"
command -v curl >/dev/null || t_skip "curl is not installed"

t_init
make_active_set
mkdir -m 0755 "$T/metrics"
write_config
sed -i "s|^textfile =.*|textfile = $T/metrics/carotate.prom|" "$CONF"
start_daemon
AGENT_SOCK="$RUN_DIR/agent.sock"
wait_until 5000 test -S "$AGENT_SOCK" || fail "no agent socket"

assert_exit 3 "wait with nothing staged is a precondition failure" -- ctl wait --percent 50 --max-wait 2s
assert_contains "nothing is staged" "$ERR" "...and says so"

# ---- one duration grammar for --timeout
for d in 45s 2m 1h 1d; do
	assert_exit 0 "--timeout $d before the command" -- ctl --timeout "$d" status
	assert_exit 0 "--timeout $d after the command" -- ctl status --timeout "$d"
done
assert_exit 1 "--timeout beyond what one call can wait (24 days) is refused" -- ctl --timeout 30d status
assert_contains "invalid timeout: 30d (expected digits with an optional s, m, h or d suffix, up to 24d)" \
	"$ERR" "...and says which grammar and limit apply"
assert_exit 1 "--timeout with an unknown unit" -- ctl --timeout 5w status
assert_exit 1 "--timeout with a sign" -- ctl --timeout -5s status

# Ten agents that will migrate, one that will not.
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
curl -sS --unix-socket "$AGENT_SOCK" -X POST -H "Authorization: Bearer $KEY" \
	-H "X-Agent-Id: late" -o /dev/null http://x/carotate/v1/link || fail "linking late"
ctl generate >/dev/null || fail "generate"
# Each fleet agent links (a re-link of an existing id is refused: the bench links once, in
# the run that checks in) and is sent the new bundle, then presents it back.
"$BENCH" -s "$AGENT_SOCK" -k "$LINKING_KEY" -n 10 -p fleet -c 2 -t 1 -i >/dev/null ||
	fail "check-ins"

ctl --json report >"$T/r.json"
assert_eq 11 "$(json_get active "$T/r.json")" "11 active agents"
assert_eq 10 "$(json_get acknowledged "$T/r.json")" "10 acknowledged"
assert_eq 90 "$(json_get percent "$T/r.json")" "10 of 11 is 90 %, rounded down"
ctl --json report --pending >"$T/p.json"
assert_eq late "$(json_get pending_agents.0.id "$T/p.json")" "the pending agent is listed"
assert_exit 0 "a page past the end is empty, not an error" -- ctl --json report --pending --offset 5
assert_eq "[]" "$(printf '%s' "$OUT" | json_get pending_agents)" "...and lists nobody"

# A single proxy has no pool members: no split, and --member is refused.
assert_eq null "$(json_get members "$T/r.json")" "a single proxy's report has no members"
assert_exit 5 "report --member on a single proxy exits 5" -- ctl report --member a
assert_contains "report --member is for a pool" "$ERR" "...and says why"
ctl --json status >"$T/s.json"
assert_eq null "$(json_get pool "$T/s.json")" "a single proxy's status has no pool"

assert_exit 0 "wait for 90 % returns at once" -- ctl wait --percent 90 --max-wait 10s
case "$ERR" in *deprecated*) fail "--max-wait gets a deprecation note" "$ERR" ;; esac
ok "--max-wait gets no deprecation note"
assert_exit 3 "wait for 100 % times out" -- ctl wait --percent 100 --max-wait 2s --interval 1s
assert_contains "timed out after 2s" "$ERR" "...and says so"
assert_exit 3 "wait --timeout (the old name) still bounds the whole wait" -- \
	ctl wait --percent 100 --timeout 2s --interval 1s
assert_contains "wait: --timeout after the command is deprecated: use --max-wait" "$ERR" \
	"...with a deprecation note"
assert_contains "timed out after 2s" "$ERR" "...and times out as --max-wait would"
assert_exit 3 "--timeout before wait bounds each call, --max-wait the whole wait" -- \
	ctl --timeout 1h wait --percent 100 --max-wait 1s --interval 1s
assert_exit 1 "--max-wait and wait --timeout together are refused" -- \
	ctl wait --percent 90 --max-wait 5s --timeout 5s
assert_contains "--max-wait given more than once" "$ERR" "...as one option given twice"
assert_exit 5 "--max-wait with an unknown unit" -- ctl wait --percent 90 --max-wait 2w
assert_contains "--max-wait 2w: expected a duration" "$ERR" "...names --max-wait"

assert_exit 1 "exclude without a reason is a usage error" -- ctl exclude late
assert_exit 5 "exclude of an unknown agent" -- ctl exclude nobody-here --reason "gone"
assert_exit 5 "exclude with a malformed id" -- ctl exclude "../x" --reason "gone"
assert_exit 0 "exclude a decommissioned agent" -- ctl --json exclude late --reason "decommissioned"
assert_eq decommissioned "$(printf '%s' "$OUT" | json_get reason)" "the reason is kept"
ctl --json report >"$T/r.json"
assert_eq 1 "$(json_get excluded "$T/r.json")" "excluded 1"
assert_eq 10 "$(json_get active "$T/r.json")" "the excluded agent is not counted"
assert_eq 100 "$(json_get percent "$T/r.json")" "10 of 10 is 100 %"
assert_exit 0 "wait for 100 % now returns" -- ctl wait --percent 100 --max-wait 10s
assert_exit 0 "include it again" -- ctl include late
assert_eq 90 "$(ctl --json report | json_get percent)" "back to 90 %"

# The textfile: rewritten at most once a second after a change. The state between exclude
# and include also shows 11 linked agents (with a ratio of 1.0): wait for the ratio too.
metrics_after_include() {
	grep -q 'carotate_agents{state="linked"} 11' "$T/metrics/carotate.prom" &&
		grep -q 'carotate_migration_ratio 0.909' "$T/metrics/carotate.prom"
}
wait_until 5000 metrics_after_include ||
	fail "the metrics textfile does not show 11 linked agents, 10 of them acknowledged" \
		"$(cat "$T/metrics/carotate.prom" 2>/dev/null)"
ok "metrics: 11 linked agents"
assert_file_contains 'carotate_agents{state="acknowledged"} 10' "$T/metrics/carotate.prom" \
	"metrics: 10 acknowledged"
assert_file_contains 'carotate_migration_ratio 0.909' "$T/metrics/carotate.prom" \
	"metrics: the migration ratio"
assert_file_contains 'carotate_staged 1' "$T/metrics/carotate.prom" "metrics: a set is staged"
assert_file_contains 'carotate_certificate_not_after_seconds{set="staged",cert="ca"}' \
	"$T/metrics/carotate.prom" "metrics: the staged CA's expiry"
assert_eq 644 "$(stat -c %a "$T/metrics/carotate.prom")" "metrics: mode 0644"
assert_eq "" "$(find "$T/metrics" -name '.*')" "metrics: no temporary file left behind"
