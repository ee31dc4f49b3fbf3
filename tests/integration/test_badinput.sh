#!/bin/bash
# Hostile and broken clients on the control socket. After each one the daemon is alive and
# a status RPC on a fresh connection answers within 100 ms. Raw bytes: rawclient.py.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

REQUEST_TIMEOUT=2
IDLE_TIMEOUT=3
MAX_CLIENTS=8
MAX_OUTPUT=4198400 # the smallest max_output the daemon accepts: one 4 MiB reply + 4 KiB
PING_MAX_MS=100

t_init
make_active_set # bigger status replies: the flood fills max_output sooner
write_config "$CONF" \
	"request_timeout = ${REQUEST_TIMEOUT}s" \
	"idle_timeout = ${IDLE_TIMEOUT}s" \
	"max_clients = $MAX_CLIENTS" \
	"max_output = $MAX_OUTPUT"
start_daemon

raw() { "$PY" "$IT_DIR/rawclient.py" "$SOCK" "$@"; }

# scenario WHAT RAWCLIENT_ARGS...: runs one rawclient scenario, then checks the daemon.
scenario() {
	local what=$1 rc=0
	shift
	echo "-- $what"
	raw "$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$what: the daemon did not behave as expected (rawclient exit $rc, see above)"
	fi
	ok "$what"
	after "$what"
}

# after WHAT: alive, status RPC within PING_MAX_MS, carotatectl status exits 0.
after() {
	assert_daemon_alive "after: $1"
	raw ping "$PING_MAX_MS" || fail "after $1: a status RPC answers within $PING_MAX_MS ms"
	assert_exit 0 "after $1: carotatectl status exits 0" -- ctl status
}

after "start-up"

# Frames that announce more than 256 KiB: INVALID_ARGUMENT from the header alone, then close.
scenario "length 262145 (cap + 1)" bigframe 262145
scenario "length 2^31" bigframe 2147483648
scenario "length 2^32-1" bigframe 4294967295

# A frame of exactly the cap is served (unknown fields are ignored, as protobuf wants).
scenario "a status request of exactly 262144 bytes" capframe

scenario "truncated frame, then close" truncated-close
scenario "truncated frame kept open (request_timeout ${REQUEST_TIMEOUT}s)" truncated-open "$REQUEST_TIMEOUT"
scenario "4 KiB of random bytes" random
scenario "a frame of 4092 random bytes" random-body

# Hand-encoded requests: field 1 (version) varint, field 10 (status) empty message.
scenario "version 2 (08 02 52 00)" frame 08025200 1 close
scenario "version 0 (an empty frame)" frame "" 1 close
scenario "version 1, no call set (08 01)" frame 0801 1
scenario "version 1, an unknown call (field 30, empty: 08 01 f2 01 00)" frame 0801f20100 1
scenario "version 1 status, with an unknown field 99 (ignored)" frame 08015200980601 0

scenario "slow drip, one byte a second (request_timeout ${REQUEST_TIMEOUT}s)" slowdrip "$REQUEST_TIMEOUT"
scenario "pipelined requests answered in order on one connection" pipeline 50
scenario "idle connection (idle_timeout ${IDLE_TIMEOUT}s)" idle "$IDLE_TIMEOUT"
# While one client floods, every status RPC of another client is answered within 1 s.
scenario "flood of status requests, never reading (max_output $MAX_OUTPUT); others served within 1 s" \
	flood "$DAEMON_PID" 1000
scenario "20 connections with max_clients = $MAX_CLIENTS" maxclients "$MAX_CLIENTS" 20

# Everything at once, in parallel with normal clients.
echo "-- all of it again, concurrently"
pids=""
for s in "bigframe 262145" "random" "random-body" "truncated-close" "frame 08025200 1 close"; do
	# shellcheck disable=SC2086 # word splitting of the scenario is intended
	raw $s >"$T/par.$$.${s%% *}.out" 2>&1 &
	pids="$pids $!"
done
for _ in 1 2 3 4 5; do
	raw ping 1000 >/dev/null || fail "status answers while bad clients are being handled"
done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
if [ "$rc" -ne 0 ]; then
	cat "$T"/par.*.out
	fail "concurrent bad clients: a scenario failed (see above)"
fi
ok "concurrent bad clients"
after "the concurrent round"

grep -i -E 'error|warn|drop|invalid|timeout|too many' "$DAEMON_LOG" | tail -n 20 | sed 's/^/  daemon log: /' || true
