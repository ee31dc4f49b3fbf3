#!/bin/bash
# Refused admin calls are coalesced in the audit log ([daemon] audit_coalesce), exactly.
#
# Repro on the old code: a member of the socket group (a reader) sent `discard` 1,000 times
# on one connection. Each refusal wrote its own fully synced audit record and syslog line:
# 0.46 s of the daemon's loop and 1,000 rows, so a loop of refused calls could fill the state
# directory and slow every check-in.
#
# Now: the first refusal of a uid, call and result is recorded at once; the others within
# the interval are counted and become one "count=N" record when it ends (timer) or at
# shutdown. The log gains a handful of records, their counts add up to exactly the
# refusals, `audit --verify` holds, and `audit` shows the count (human "xN", JSON "count").
# Needs root: runs the client as a second user.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (creates a user, runs the client as it)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"

READ_GROUP=carotate-t
READER=carotate-treader
DISCARD=08018a0100 # Request{version 1, discard {}}
t_group "$READ_GROUP"
t_user "$READER" "$READ_GROUP"
READER_UID=$(id -u "$READER")

t_init
make_active_set
SOCKET_GROUP=$READ_GROUP
write_config "$CONF" "audit_coalesce = 60s"
start_daemon
mkdir -m 0755 "$T/bin"
cp "$IT_DIR/rawclient.py" "$T/bin/rawclient.py"
chmod 0755 "$T/bin/rawclient.py"

# refuse N: the reader sends discard N times on one connection; each is PERMISSION_DENIED.
refuse() {
	setpriv --reuid="$READER_UID" --regid="$(id -g "$READER")" --init-groups \
		"$PY" "$T/bin/rawclient.py" "$SOCK" repeat "$DISCARD" 2 "$1" >"$T/refuse.out" 2>&1 ||
		fail "the reader's $1 discards were not all refused" "$(cat "$T/refuse.out")"
}
total() { ctl --json audit --limit 1 | json_get total; }
# sum_counts FROM: the counts of the reader's discard records after record FROM.
sum_counts() {
	ctl --json audit --limit 1000 | "$PY" -c '
import json, sys
recs = json.load(sys.stdin)["records"]
print(sum(r["count"] for r in recs
          if r["seq"] > int(sys.argv[1]) and r["uid"] == int(sys.argv[2]) and r["call"] == "discard"
          and r["result"] == "PERMISSION_DENIED"))' "$1" "$READER_UID"
}
syslog_lines() { grep -c "audit: seq=[0-9]* .*uid=$READER_UID .*call=discard" "$DAEMON_LOG" || true; }

# N refusals (1,000; 100 under valgrind, where each costs the daemon milliseconds and 1,000
# would outlast the 60 s interval): one record now, the rest counted.
N=1000
[ "$CAROTATE_VALGRIND" = 1 ] && N=100
M=$((N * 3 / 10))
base=$(total)
t0=$(ms_now)
refuse "$N"
ms=$(($(ms_now) - t0))
t_log "$N refused discards took $ms ms (connection, round trips and all)"
added=$(($(total) - base))
assert_eq 1 "$added" "$N refusals in one interval: one record so far (not $N)"
assert_eq 1 "$(sum_counts "$base")" "it stands for the first refusal"
assert_eq 1 "$(syslog_lines)" "one syslog line so far"

# ---- shutdown writes the count: nothing is lost
stop_daemon
start_daemon
added=$(($(total) - base))
[ "$added" -ge 2 ] && [ "$added" -le 4 ] || fail "after SIGTERM: 2 records expected" "got $added"
ok "after SIGTERM the log gained $added records for $N refusals"
assert_eq "$N" "$(sum_counts "$base")" "their counts add up to exactly $N"
assert_exit 0 "audit --verify: the chain holds" -- ctl --json audit --verify
assert_eq true "$(json_get intact <<<"$OUT")" "intact"
assert_eq 2 "$(syslog_lines)" "two syslog lines for $N refusals"
ctl --json audit --limit 5 >"$T/a.json"
"$PY" - "$T/a.json" "$READER_UID" "$((N - 1))" <<'EOF' || fail "the summary record does not carry count $((N - 1)) (detail count=$((N - 1)))"
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
n = int(sys.argv[3])
s = [r for r in recs if r["uid"] == int(sys.argv[2]) and r["count"] == n]
assert s and s[0]["detail"].startswith("count=%d refusals since record " % n), recs
EOF
ok "the summary says count $((N - 1)) in --json and in its hashed detail"
assert_exit 0 "human audit" -- ctl audit --limit 5
assert_contains "PERMISSION_DENIED x$((N - 1)) count=$((N - 1)) refusals since record" "$OUT" \
	"the human form shows the count"

# ---- the interval's end: the timer writes the count without a shutdown
stop_daemon
write_config "$CONF" "audit_coalesce = 1s"
start_daemon
base=$(total)
refuse "$M"
wait_until 5000 sh -c "[ \$(( \$('$CAROTATECTL' --socket '$SOCK' --json audit --limit 1 | '$PY' -c 'import json,sys; print(json.load(sys.stdin)[\"total\"])') - $base )) -ge 2 ]" ||
	fail "no count record within 5 s of a 1 s interval" "$(ctl audit --limit 3)"
refuse 1 # a new interval: recorded at once
assert_eq $((M + 1)) "$(sum_counts "$base")" "the timer's record and the new interval add up to $((M + 1))"
assert_exit 0 "audit --verify still holds" -- ctl audit --verify
assert_contains "hash chain: intact" "$OUT" "the chain is intact"

# Admin calls that run are recorded one by one as before.
base=$(total)
ctl retire --dry-run >/dev/null
ctl retire --dry-run >/dev/null
assert_eq 2 "$(($(total) - base))" "two admin calls that ran: two records"
assert_daemon_alive "at the end"
