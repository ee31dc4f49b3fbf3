#!/bin/bash
# load_hostile: the daemon keeps serving under load and hostile clients (tests/load/ctlload,
# tests/load/agentload: one process, one epoll loop each).
#
#  (1) control socket: 64 clients make mixed read calls (status, report, backups, audit), each
#      reply checked against the known state (phase, fingerprints, counts), while 1000 idle
#      connections are held, slow-drip clients send a request one byte a second and
#      never-reading clients pipeline requests: zero wrong answers, p99 < 100 ms, every
#      hostile connection closed by the daemon's own timeouts, daemon RSS flat;
#  (2) control socket at ulimit -n 64: 200 connections pile up on top of a few readers; the
#      readers' answers stay right (descriptors are kept for the daemon's own work), each of
#      the 200 is answered or refused with UNAVAILABLE, the daemon's CPU stays under 10 % of a
#      core and its log holds a line per 10 s about refusals, not one per connection;
#  (3) agent socket: 2000 concurrent check-in clients (a new connection each, as nginx
#      connects) with slowloris, unfinished-body and idle clients: every check-in answered
#      right, p99 bounded, hostile connections closed at the 10 s request deadline, worker
#      RSS flat; then (3b) never-reading clients, which pipeline check-ins as fast as their
#      socket takes them: the worker reads ahead at most 24 KiB of each (its RSS stays flat),
#      costs no CPU once they stall, serves the check-ins beside them, and closes them at the
#      request deadline;
#  (4) agent worker at ulimit -n 64 (32 connections): 40 slowloris clients hold the slots;
#      the worker sheds those without a request after 1 s, check-ins keep completing (p99
#      under 2.5 s, not the 10 s deadline), the worker's CPU stays low.
# CAROTATE_LOAD_SCALE: percent of the client counts (default 100, 25 for a sanitizer build);
# every assertion holds at any scale.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CTLLOAD="$CAROTATE_BUILD/load/ctlload"
AGENTLOAD="$CAROTATE_BUILD/load/agentload"
for f in "$CTLLOAD" "$AGENTLOAD"; do
	[ -x "$f" ] || fail "$f is missing (make $f)"
done

scale=100
case "$CAROTATE_BUILD" in */asan*) scale=25 ;; esac
scale=${CAROTATE_LOAD_SCALE:-$scale}
# RSS may grow by RSS_KB over a run. A sanitizer build keeps freed memory in quarantine
# (256 MiB by default), which reads as growth: there it is cut to 4 MiB and allowed for.
RSS_KB=2048
case "$CAROTATE_BUILD" in
*/asan*)
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
	RSS_KB=$((RSS_KB + 4096))
	;;
esac
n() { # n COUNT [MIN]: COUNT scaled, at least MIN (default 1)
	local v=$(($1 * scale / 100))
	[ "$v" -ge "${2:-1}" ] || v=${2:-1}
	echo "$v"
}

IDLE_S=4    # idle_timeout
REQUEST_S=2 # request_timeout: a whole request, and unread replies, within this
WORKER_REQUEST_MS=10000
WORKER_SHED_MS=1000
SLACK_MS=3000 # timers fire late on a loaded machine
EARLY_MS=250  # or a little early: libevent arms them from the time its loop cached
READERS=$(n 64 8)
CALLS=$(n 2000 100)
IDLE=$(n 1000 50)
HOSTILE=$(n 20 4)
CHECKINS=$(n 2000 50)
AGENT_HOSTILE=$(n 100 10)
AGENT_IDLE=$(n 1000 50)
AGENTS=300
echo "scale $scale %: $READERS readers x $CALLS calls, $IDLE idle, $HOSTILE drip and noread;" \
	"$CHECKINS check-in clients, $AGENT_HOSTILE slowloris and body, $AGENT_IDLE idle"

# field FILE TAG KEY: the value of KEY on the line of FILE whose second word is TAG
# ("kind=readers", "proc=daemon"); fails the test when absent.
field() {
	local v
	v=$(awk -v tag="$2" -v key="$3" '$2 == tag { for (i = 3; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == key) { print substr($i, length(key) + 2); exit } } }' "$1")
	[ -n "$v" ] || fail "no $3 for $2 in $1" "$(cat "$1")"
	echo "$v"
}
# check WHAT A OP B: a numeric comparison (floats allowed), asserted.
check() {
	if ! awk -v a="$2" -v b="$4" -v op="$3" 'BEGIN { exit !((op == "<" && a < b) ||
		(op == "<=" && a <= b) || (op == ">" && a > b) || (op == ">=" && a >= b) ||
		(op == "==" && a == b)) }'; then
		fail "$1" "expected: $2 $3 $4"
	fi
	ok "$1 ($2 $3 $4)"
}
show() { sed 's/^/    /' "$1"; }
# rss_flat FILE PROC WHAT [NOTE]: PROC's RSS over the run in FILE grew at most RSS_KB.
rss_flat() {
	local s e
	s=$(field "$1" "proc=$2" rss_start_kb)
	e=$(field "$1" "proc=$2" rss_end_kb)
	check "$3 (start $s KiB, end $e KiB${4:+; $4})" $((e - s)) "<=" "$RSS_KB"
}
# rss_peak_flat WARM FILE PROC WHAT: PROC's peak RSS over the run in FILE (sampled every
# 100 ms) is at most RSS_KB above its peak over WARM, a run of the same load before it. A leak
# raises the second peak by what it keeps; the heap trimmed between the runs does not (its
# RSS at the start of the second run may be lower than where the load takes it again).
rss_peak_flat() {
	local w m
	w=$(field "$1" "proc=$3" rss_max_kb)
	m=$(field "$2" "proc=$3" rss_max_kb)
	check "$4 (peak $w KiB in the first run, $m KiB in the second)" $((m - w)) "<=" "$RSS_KB"
}

# nofile_daemon ULIMIT_ARGS: the daemon started under `ulimit ULIMIT_ARGS` (-n 64: soft
# and hard; -S -n 256: soft only).
nofile_daemon() {
	printf '#!/bin/sh\nulimit %s || exit 1\nexec %s "$@"\n' "$1" "$CAROTATED" >"$T/carotated-nofile"
	chmod +x "$T/carotated-nofile"
	local real=$CAROTATED
	CAROTATED="$T/carotated-nofile"
	start_daemon
	CAROTATED=$real
}
# Open descriptors of a process; fds_back PID N: at most N again.
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fds_back() { [ "$(fds "$1")" -le "$2" ]; }

t_init
make_active_set
write_config "$CONF" "max_clients = $((IDLE + READERS + 4 * HOSTILE + 64))" \
	"idle_timeout = ${IDLE_S}s" "request_timeout = ${REQUEST_S}s"
# The reload command notes the descriptor limit it was given.
printf '#!/bin/sh\nulimit -S -n >"%s"\n' "$T/reload-nofile" >"$T/reload.sh"
chmod +x "$T/reload.sh"
sed -i "s|^reload = .*|reload = $T/reload.sh|" "$CONF"
# systemd starts services with a soft limit of 1024 (here 256, under the $IDLE idle
# connections): the daemon raises it to the hard limit, programs it runs get 256 back.
nofile_daemon "-S -n 256"
assert_file_contains "soft limit raised from 256" "$DAEMON_LOG" "the daemon raised its soft descriptor limit"

# ---------------------------------------------------------------- the known state
# Staged, with one discarded set kept, three audit records, $AGENTS agents that
# acknowledged the staged CA.
ctl generate >/dev/null
ctl discard >/dev/null
ctl generate >/dev/null
assert_eq 256 "$(cat "$T/reload-nofile")" "the reload command ran with the soft limit the daemon was given"
wait_until 5000 worker_up || fail "no agent worker"
"$AGENTLOAD" -s "$RUN_DIR/agent.sock" -k "$LINKING_KEY" -n "$AGENTS" --tokens "$T/agents.tokens" -t 30 --checkin 4 --rounds 2 \
	>"$T/ack.out" || fail "agentload could not link $AGENTS agents" "$(cat "$T/ack.out")"
ctl --json status | jsave "$T/status.json"
ctl --json report | jsave "$T/report.json"
ctl --json backups | jsave "$T/backups.json"
ctl --json audit | jsave "$T/audit.json"
assert_eq staged "$(jget phase "$T/status.json")" "the phase is staged"
ACTIVE_CA=$(cert_der_sha256 "$SSL_DIR/ca.crt")
ACTIVE_SERVER=$(cert_der_sha256 "$SSL_DIR/server.crt")
STAGED_CA=$(cert_der_sha256 "$SSL_DIR/new/ca.crt")
BUNDLE_ID=$(jget bundle.id "$T/status.json")
assert_eq "$ACTIVE_CA $STAGED_CA" "$(jget active.ca.sha256 "$T/status.json") $(jget staged.ca.sha256 "$T/status.json")" \
	"status names the CAs openssl sees on disk"
assert_eq "$BUNDLE_ID" "$(sed -n 's/.* etag=//p' "$T/ack.out")" "agents were served the bundle status names"
assert_eq "$AGENTS $AGENTS $AGENTS" "$(jget linked "$T/report.json") $(jget active "$T/report.json") $(jget acknowledged "$T/report.json")" \
	"$AGENTS agents linked, active and acknowledged"
BACKUPS=$(jget backups "$T/backups.json" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
BACKUP0=$(jget backups.0.id "$T/backups.json")
assert_match '^discarded-' "$BACKUP0" "the newest backup is the discarded set ($BACKUPS in all)"
AUDIT=$(jget total "$T/audit.json")
AUDIT0=$(jget records.0.hash "$T/audit.json")
check "audit records of generate, discard, generate" "$AUDIT" ">=" 3
EXPECT=(-e phase=staged -e "active_ca=$ACTIVE_CA" -e "active_server=$ACTIVE_SERVER"
	-e "staged_ca=$STAGED_CA" -e "bundle_id=$BUNDLE_ID" -e "linked=$AGENTS" -e "active=$AGENTS"
	-e "acknowledged=$AGENTS" -e "backups=$BACKUPS" -e "backup0=$BACKUP0" -e "audit=$AUDIT"
	-e "audit0=$AUDIT0")

# ---------------------------------------------------------------- (1) control socket
echo "-- (1) control socket: $READERS readers, $IDLE idle, $HOSTILE drip, $HOSTILE noread"
D_FDS=$(fds "$DAEMON_PID")
ctlrun() { "$CTLLOAD" -s "$SOCK" "${EXPECT[@]}" -p "daemon=$DAEMON_PID" "$@"; }
# The same readers alone first: what this machine gives them now.
ctlrun -t 30 --readers "$READERS" --calls "$(n 500 50)" >"$T/ctl-base.out"
check "alone: no wrong answers" "$(field "$T/ctl-base.out" kind=readers wrong)" == 0
BASE_P99=$(field "$T/ctl-base.out" kind=readers p99_ms)
# A first round, the same as the measured one, grows every pool the daemon has to its size
# under this load: the measured round's peak RSS is compared with it. Comparing the measured
# round's own start and end failed with no leak behind it: a shorter warm-up (5 s, fewer
# calls) left part of the heap's growth to it, and the heap trimmed between the rounds starts
# it lower (+2.1 to +3.5 MiB; five such rounds in a row: +5.9 MiB in the first, then flat).
ctlrun -t 60 --min $((IDLE_S + 3)) --readers "$READERS" --calls "$CALLS" --idle "$IDLE" \
	--drip "$HOSTILE" --drip-interval 1000 --noread "$HOSTILE" >"$T/ctl-warm.out"
check "warm-up: no wrong answers" "$(field "$T/ctl-warm.out" kind=readers wrong)" == 0
check "warm-up: all $IDLE idle connections held at once" \
	"$(field "$T/ctl-warm.out" kind=idle held_max)" == "$IDLE"
# At least long enough for every hostile client to meet its timeout.
ctlrun -t 60 --min $((IDLE_S + 3)) --readers "$READERS" --calls "$CALLS" --idle "$IDLE" --drip "$HOSTILE" \
	--drip-interval 1000 --noread "$HOSTILE" >"$T/ctl.out"
show "$T/ctl.out"
o=$T/ctl.out
check "every call completed" "$(field "$o" kind=readers calls)" == $((READERS * CALLS))
check "every answer right (phase, fingerprints, counts)" "$(field "$o" kind=readers ok)" == $((READERS * CALLS))
check "no wrong answers" "$(field "$o" kind=readers wrong)" == 0
check "no I/O errors or dropped readers" "$(($(field "$o" kind=readers errors) + $(field "$o" kind=readers closed_by_daemon)))" == 0
check "no reader refused" "$(field "$o" kind=readers refused)" == 0
p99=$(field "$o" kind=readers p99_ms)
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v p="$p99" -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(p >= 100 && l > n) }'; then
	# Other processes hold the cores (load $load on $(nproc)): the hostile clients must
	# still cost the readers little next to what they got alone.
	echo "  note: p99 $p99 ms on an overloaded machine (load $load on $(nproc) cores)"
	check "call p99 within 3x that of the readers alone ($BASE_P99 ms)" "$p99" "<=" \
		"$(awk -v b="$BASE_P99" 'BEGIN { print 3 * b }')"
else
	check "call p99 under 100 ms (alone: $BASE_P99 ms)" "$p99" "<" 100
fi
check "all $IDLE idle connections held at once" "$(field "$o" kind=idle held_max)" == "$IDLE"
check "idle connections closed by the daemon" "$(field "$o" kind=idle closed_by_daemon)" ">=" "$IDLE"
check "none refused" "$(field "$o" kind=idle refused)" == 0
check "no idle connection closed before idle_timeout" "$(field "$o" kind=idle life_min_ms)" ">=" $((IDLE_S * 1000 - EARLY_MS))
check "every idle connection closed soon after idle_timeout" "$(field "$o" kind=idle life_max_ms)" "<=" $((IDLE_S * 1000 + SLACK_MS))
check "drip clients closed by the daemon" "$(field "$o" kind=drip closed_by_daemon)" ">=" "$HOSTILE"
check "each with the 'not complete' reply" "$(field "$o" kind=drip timeout_replies)" == "$(field "$o" kind=drip closed_by_daemon)"
check "no dripped request ever completed" "$(field "$o" kind=drip completed)" == 0
check "drip closed at request_timeout, not before" "$(field "$o" kind=drip life_min_ms)" ">=" $((REQUEST_S * 1000 - EARLY_MS))
check "drip closed soon after request_timeout" "$(field "$o" kind=drip life_max_ms)" "<=" $((REQUEST_S * 1000 + SLACK_MS))
check "never-reading clients dropped by the daemon" "$(field "$o" kind=noread closed_by_daemon)" ">=" "$HOSTILE"
check "dropped within request_timeout of stalling" "$(field "$o" kind=noread life_max_ms)" "<=" $((REQUEST_S * 1000 + SLACK_MS))
# 2 MiB (RSS_KB): at full scale, one allocation leaked a call (32 bytes at least with glibc) adds
# 4 MiB over 128000 calls, and 700 bytes a closed connection 2 MiB over the 3000 or so;
# allocator noise stays well below. (A sanitizer build also reports leaks at exit.)
rss_peak_flat "$T/ctl-warm.out" "$o" daemon "daemon RSS flat over a second run of the same load"
assert_daemon_alive "after the control load"
wait_until 5000 fds_back "$DAEMON_PID" "$D_FDS" ||
	fail "the daemon's descriptors go back to the $D_FDS it had before the load" "now $(fds "$DAEMON_PID")"
ok "no descriptor leaked: the daemon holds $(fds "$DAEMON_PID") as before the load"
assert_exit 0 "status answers after the control load" -- ctl status
if grep -q 'Too many open files' "$DAEMON_LOG"; then
	fail "the daemon ran out of descriptors" "$(grep -m3 'Too many open files' "$DAEMON_LOG")"
fi
ok "the daemon never ran out of descriptors"
stop_daemon

# ---------------------------------------------------------------- (2) control at ulimit -n 64
echo "-- (2) control socket at ulimit -n 64: 200 connections pile up on 4 readers"
mark=$(wc -l <"$DAEMON_LOG")
nofile_daemon "-n 64"
log_since() { tail -n +$((mark + 1)) "$DAEMON_LOG"; }
assert_eq 64 "$(awk '/^Max open files/ {print $4}' "/proc/$DAEMON_PID/limits")" "the daemon runs with 64 descriptors"
assert_contains "the descriptor limit (64) allows about" "$(log_since)" "the daemon says how many connections 64 descriptors allow"
ctlrun -t 10 --readers 4 --interval 100 --pile 200 --pile-at 1000 >"$T/starve.out"
show "$T/starve.out"
o=$T/starve.out
check "the readers kept calling" "$(field "$o" kind=readers calls)" ">=" 100
check "every answer right while starved" "$(field "$o" kind=readers ok)" == "$(field "$o" kind=readers calls)"
check "no reader refused or dropped" "$(($(field "$o" kind=readers refused) + $(field "$o" kind=readers errors) + $(field "$o" kind=readers closed_by_daemon)))" == 0
check "reader p99 under 100 ms while starved" "$(field "$o" kind=readers p99_ms)" "<" 100
check "each of the 200 answered (status) or refused (UNAVAILABLE)" \
	"$(($(field "$o" kind=pile calls) + $(field "$o" kind=pile refused)))" == 200
check "some of the 200 were refused: the limit was reached" "$(field "$o" kind=pile refused)" ">" 0
check "the answers to the pile were right" "$(field "$o" kind=pile wrong)" == 0
check "none closed without an answer" "$(field "$o" kind=pile closed_no_reply)" == 0
check "none left hanging: all closed by the daemon" "$(field "$o" kind=pile closed_by_daemon)" == 200
check "daemon CPU while starved under 10 % of a core" "$(field "$o" proc=daemon cpu_pct)" "<" 10
refusals=$(log_since | grep -c -E 'control: (refusing connections|[0-9]+ more connections refused)' || true)
check "the log tells of the refusals" "$refusals" ">=" 1
check "one line per 10 s, not one per refusal" "$refusals" "<=" 3
if grep -q 'Too many open files' "$DAEMON_LOG"; then
	fail "the daemon ran out of descriptors" "$(grep -m3 'Too many open files' "$DAEMON_LOG")"
fi
ok "the daemon never ran out of descriptors"
assert_exit 0 "status answers afterwards" -- ctl status
stop_daemon

# ---------------------------------------------------------------- (3) agent socket
echo "-- (3) agent socket: $CHECKINS check-in clients, $AGENT_HOSTILE slowloris, $AGENT_HOSTILE body, $AGENT_IDLE idle"
start_daemon
wait_until 5000 worker_up || fail "no agent worker"
WPID=$(worker_pid)
W_FDS=$(fds "$WPID")
agentrun() {
	"$AGENTLOAD" -s "$RUN_DIR/agent.sock" -k "$LINKING_KEY" -n "$AGENTS" --tokens "$T/agents.tokens" -e "etag=$BUNDLE_ID" \
		-e certs=2 -p "worker=$WPID" -p "daemon=$DAEMON_PID" "$@"
}
agentrun -t 4 --checkin "$CHECKINS" --slowloris "$AGENT_HOSTILE" --body "$AGENT_HOSTILE" \
	--idle "$AGENT_IDLE" >"$T/agent-warm.out"
check "warm-up: no wrong answers" "$(field "$T/agent-warm.out" kind=checkin wrong)" == 0
agentrun -t 13 --checkin "$CHECKINS" --slowloris "$AGENT_HOSTILE" --body "$AGENT_HOSTILE" \
	--idle "$AGENT_IDLE" >"$T/agent.out"
show "$T/agent.out"
o=$T/agent.out
answered=$(field "$o" kind=checkin answered)
check "check-ins completed" "$answered" ">=" "$CHECKINS"
check "every check-in answered right (304/200, the ETag, the bundle)" "$(field "$o" kind=checkin ok)" == "$answered"
check "no wrong answers, no 503" "$(($(field "$o" kind=checkin wrong) + $(field "$o" kind=checkin busy)))" == 0
check "no check-in lost to an I/O error" "$(field "$o" kind=checkin errors)" == 0
# Each client has one check-in in flight: the wait is the queue of $CHECKINS before it,
# about 0.3 s at 7000 check-ins/s; 3 s leaves room for a loaded machine, while a queue held
# up by the hostile clients would wait for their 10 s deadline.
check "check-in p99 bounded (3 s for $CHECKINS concurrent clients)" "$(field "$o" kind=checkin p99_ms)" "<" 3000
for k in slowloris body idle; do
	check "$k clients closed by the worker" "$(field "$o" "kind=$k" closed_by_daemon)" ">=" "$(field "$o" "kind=$k" conns)"
	check "$k: at the request deadline, not before" "$(field "$o" "kind=$k" life_min_ms)" ">=" $((WORKER_REQUEST_MS - 2 * EARLY_MS))
	check "$k: soon after the deadline" "$(field "$o" "kind=$k" life_max_ms)" "<=" $((WORKER_REQUEST_MS + SLACK_MS))
done
# 2 MiB (RSS_KB): at full scale, one allocation leaked a check-in (a connection each) adds more
# than 2 MiB over the 90000 or so.
rss_flat "$o" worker "worker RSS flat over the run"
assert_eq "$WPID" "$(worker_pid)" "the same worker served it all"
if [ "$W_FDS" -gt 0 ]; then
	wait_until 5000 fds_back "$WPID" "$W_FDS" ||
		fail "the worker's descriptors go back to the $W_FDS it had before the load" "now $(fds "$WPID")"
	ok "no descriptor leaked: the worker holds $(fds "$WPID") as before the load"
else
	ok "(the worker's descriptors are not readable by uid $(id -u): not counted)"
fi
assert_exit 0 "status answers after the agent load" -- ctl status

# ---------------------------------------------------------------- (3b) never-reading clients
echo "-- (3b) agent socket: 20 never-reading clients, alone and beside 50 check-in clients"
# Alone first: once their pipelined check-ins have filled both socket buffers, nothing more
# moves, and a worker that kept waking for them (a write or read event it cannot act on)
# would show as CPU. Beside check-in clients, the worker's CPU is theirs: it says nothing.
agentrun -t 5 --noread 20 >"$T/noread-alone.out"
show "$T/noread-alone.out"
o=$T/noread-alone.out
check "alone: worker CPU low while they stall (under 10 % of a core)" "$(field "$o" proc=worker cpu_pct)" "<" 10
check "alone: none closed before the request deadline" "$(field "$o" kind=noread closed_by_daemon)" == 0
rss_flat "$o" worker "alone: worker RSS flat" "they sent $(field "$o" kind=noread sent_kb) KiB"
agentrun -t 15 --checkin 50 --noread 20 >"$T/noread.out"
show "$T/noread.out"
o=$T/noread.out
check "every check-in answered right beside them" "$(field "$o" kind=checkin ok)" == "$(field "$o" kind=checkin answered)"
check "no wrong answers, no 503, no I/O error" "$(($(field "$o" kind=checkin wrong) + $(field "$o" kind=checkin busy) + $(field "$o" kind=checkin errors)))" == 0
# Their pipelined check-ins are served until a response cannot be written; the worker then
# reads no further than its read-ahead, the next request never arrives whole, and the
# request deadline closes them like a slowloris client.
check "never-reading clients closed by the worker" "$(field "$o" kind=noread closed_by_daemon)" ">=" 20
check "noread: at the request deadline, not before" "$(field "$o" kind=noread life_min_ms)" ">=" $((WORKER_REQUEST_MS - 2 * EARLY_MS))
check "noread: soon after the deadline" "$(field "$o" kind=noread life_max_ms)" "<=" $((WORKER_REQUEST_MS + SLACK_MS))
rss_flat "$o" worker "worker RSS flat while they push" "they sent $(field "$o" kind=noread sent_kb) KiB"
stop_daemon

# ---------------------------------------------------------------- (4) worker at ulimit -n 64
echo "-- (4) agent worker at ulimit -n 64: 50 check-in clients, 40 slowloris"
mark=$(wc -l <"$DAEMON_LOG")
nofile_daemon "-n 64"
wait_until 5000 worker_up || fail "no agent worker"
WPID=$(worker_pid)
assert_contains "at most 32 connections" "$(log_since)" "the worker holds 32 connections at 64 descriptors"
# A fresh worker: one check-in per agent first, as their links once warmed it, so that
# its RSS is measured from the state it serves in, not from its first allocations.
agentrun -t 10 --checkin 4 --rounds 1 >"$T/wstarve-warm.out"
agentrun -t 10 --checkin 50 --slowloris 40 >"$T/wstarve.out"
show "$T/wstarve.out"
o=$T/wstarve.out
answered=$(field "$o" kind=checkin answered)
check "check-ins kept completing" "$answered" ">=" 100
check "every one right" "$(field "$o" kind=checkin ok)" == "$answered"
check "no wrong answers, no errors" "$(($(field "$o" kind=checkin wrong) + $(field "$o" kind=checkin errors)))" == 0
check "check-in p99 under 2.5 s, not the 10 s deadline" "$(field "$o" kind=checkin p99_ms)" "<" 2500
check "slowloris clients shed" "$(field "$o" kind=slowloris closed_by_daemon)" ">=" 40
check "none shed before 1 s" "$(field "$o" kind=slowloris life_min_ms)" ">=" $((WORKER_SHED_MS - EARLY_MS))
assert_contains "at the cap of 32 connections: closed" "$(log_since)" "the worker logs what it shed"
shed_lines=$(log_since | grep -c 'at the cap of 32 connections' || true)
check "one such line per 10 s" "$shed_lines" "<=" 3
check "worker CPU while starved under 10 % of a core" "$(field "$o" proc=worker cpu_pct)" "<" 10
rss_flat "$o" worker "worker RSS flat while starved"
assert_eq "$WPID" "$(worker_pid)" "the same worker throughout"
assert_exit 0 "status answers afterwards" -- ctl status
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "the daemon exits 0"
