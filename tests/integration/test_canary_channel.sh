#!/bin/bash
# canary channel: a check-in counts as verified only when it really came through nginx's canary
# TLS listener, as the parent sees it, whatever the worker behind agent.sock says.
#
# Repro (before each agent socket had its own worker): one worker served agent.sock and
# agent-canary.sock and told the parent, in AgentRequest.canary, which one a check-in came in
# on; the parent believed it. An agent linked and acknowledged the staged bundle through nginx's
# main listener only (never a TLS handshake with the canary certificate). Then, as a worker
# taken over through agent.sock would (here: root takes a copy of that worker's fd 3 with
# pidfd_getfd), one AgentRequest frame was written to the parent with that agent's token and
# canary = true: `report --json` went from verified 0 to verified 1, and with `[agents] gate =
# verified` the rotate gate opened (rotate --dry-run exit 0 instead of 3).
#
# Now the parent decides "canary" from the socketpair a request arrived on: the forged frame is
# a check-in like any other on the main channel (verified stays 0, rotate stays at exit 3), and
# the worker of agent.sock never holds agent-canary.sock. Any process of the proxy's group can
# talk to agent.sock directly (curl --unix-socket): no header it sends makes a check-in a canary
# one. A real check-in through nginx's canary listener, with curl trusting only the new CA,
# counts (verified 1, the gate opens).
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init
make_active_set
nginx_write_daemon_config
sed -i "s|^gate = .*|gate = verified|" "$CONF"
start_daemon
nginx_start
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")

# ureq SOCKET [ARGS...]: curl straight to an agent socket, as any process of the proxy's group.
ureq() {
	local sock=$1
	shift
	CODE=$(curl -s --max-time 15 --unix-socket "$sock" -D "$T/h" -o "$T/body" -w '%{http_code}' \
		"$@" http://agent/carotate/v1/ca-bundle) || CODE="curl-$?"
}
# serving SOCKET_PATH: the daemon's child holding the listening socket bound at that path.
serving() {
	local ino d fd
	ino=$(awk -v p="$1" '$NF == p && $4 == "00010000" { print $7 }' /proc/net/unix | head -n 1)
	for d in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$d/stat" 2>/dev/null)" = "$DAEMON_PID" ] || continue
		for fd in "$d"/fd/*; do
			if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$ino]" ]; then
				basename "$d"
				break
			fi
		done
	done
}
verified() { ctl --json report >"$T/r.json" && json_get verified "$T/r.json"; }

# ---- an agent links and acknowledges the staged bundle through the main listener only
tls_req "$NGINX_PORT" "$SSL_DIR/ca.crt" POST /carotate/v1/link -H "Authorization: Bearer $KEY" \
	-H "X-Agent-Id: victim" --data-binary ''
assert_eq 200 "$CODE" "link through nginx's main listener"
TOKEN=$(hdr X-Agent-Token)
ETAG=$(hdr ETag | tr -d '"')
assert_exit 0 "generate" -- ctl generate
wait_until 15000 grep -q "serves the staged certificate: canary check-ins now count" "$DAEMON_LOG" ||
	fail "the daemon confirmed the canary listener" "$(tail -n 20 "$DAEMON_LOG")"
ok "the canary listener serves the staged certificate (confirmed by the daemon)"
CHECKIN=(-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: victim")
tls_req "$NGINX_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle "${CHECKIN[@]}" -H "If-None-Match: \"$ETAG\""
assert_eq 200 "$CODE" "check-in through the main listener: the new bundle"
NEW_ETAG=$(hdr ETag | tr -d '"')
tls_req "$NGINX_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle "${CHECKIN[@]}" -H "If-None-Match: \"$NEW_ETAG\""
assert_eq 304 "$CODE" "it presents the new bundle id back (main listener)"
ctl --json report >"$T/r.json"
assert_eq 1 "$(json_get acknowledged "$T/r.json")" "acknowledged"
assert_eq 0 "$(json_get verified "$T/r.json")" "not verified"
assert_eq true "$(json_get canary_confirmed "$T/r.json")" "canary confirmed"
run ctl rotate --dry-run
assert_eq 3 "$RC" "gate = verified: rotate --dry-run refused at 0 verified"

# ---- the proxy's group on agent.sock: nothing in a request makes it a canary check-in
for h in "X-Carotate-Canary: 1" "X-Canary: true" "Host: canary" "X-Forwarded-Port: $NGINX_CANARY_PORT" \
	"Forwarded: for=127.0.0.1;host=proxy.test:$NGINX_CANARY_PORT;proto=https" \
	"X-Forwarded-Server: canary"; do
	ureq "$RUN_DIR/agent.sock" "${CHECKIN[@]}" -H "If-None-Match: \"$NEW_ETAG\"" -H "$h"
	assert_eq 304 "$CODE" "agent.sock with '$h': an ordinary check-in"
done
assert_eq 0 "$(verified)" "no header on agent.sock counts as a canary check-in"

# ---- a worker taken over through agent.sock claims the canary
WPID=$(serving "$RUN_DIR/agent.sock")
[ -n "$WPID" ] && [ "$(echo "$WPID" | wc -l)" -eq 1 ] || fail "one worker serves agent.sock" "'$WPID'"
if [ "$(id -u)" -eq 0 ]; then
	# An AgentRequest a worker would send: seq 1 << 40, a check-in (call 0), the agent's id,
	# its token, the bundle id it holds, and field 6 (once `bool canary`) = true.
	"$PY" - "$WPID" "$TOKEN" "$NEW_ETAG" <<'EOF'
import ctypes, os, struct, sys
pid, token, etag = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
def varint(n):
    out = b""
    while True:
        b, n = n & 0x7f, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data
msg = (varint(1 << 3) + varint(1 << 40) + field(3, b"victim") + field(4, token) +
       field(5, etag) + varint(6 << 3) + varint(1))
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, pid, 0)                        # pidfd_open
fd = libc.syscall(438, pidfd, 3, 0) if pidfd >= 0 else -1 # pidfd_getfd: the worker's fd 3
if fd < 0:
    sys.exit("pidfd: %s" % os.strerror(ctypes.get_errno()))
os.write(fd, struct.pack(">I", len(msg)) + msg)
EOF
	# The parent reads its worker's channel in order: once a later check-in on agent.sock is
	# answered, the forged frame has been decided.
	ureq "$RUN_DIR/agent.sock" "${CHECKIN[@]}" -H "If-None-Match: \"$NEW_ETAG\""
	assert_eq 304 "$CODE" "a check-in after the forged frame"
	assert_eq "$WPID" "$(serving "$RUN_DIR/agent.sock")" "the worker that sent it still runs (a well-formed frame)"
	assert_eq 0 "$(verified)" "a canary claim from agent.sock's worker does not count as verified"
	run ctl rotate --dry-run
	assert_eq 3 "$RC" "gate = verified: rotate --dry-run still refused"
	run ctl rotate
	assert_eq 3 "$RC" "gate = verified: rotate still refused (exit 3)"
else
	ok "(taking over the worker's channel needs root: skipped)"
fi

# ---- and it could not even take a canary check-in itself: it does not hold agent-canary.sock
CPID=$(serving "$RUN_DIR/agent-canary.sock")
[ -n "$CPID" ] && [ "$(echo "$CPID" | wc -l)" -eq 1 ] || fail "one worker serves agent-canary.sock" "'$CPID'"
assert_ne "$WPID" "$CPID" "agent.sock's worker ($WPID) does not serve agent-canary.sock ($CPID)"
assert_eq "$WPID" "$(worker_pid)" "worker_pid names agent.sock's worker"
assert_eq "$CPID" "$(worker_pid canary)" "worker_pid canary names agent-canary.sock's worker"

# ---- the real thing: a TLS handshake with the canary listener, trusting only the new CA
cp "$SSL_DIR/new/ca.crt" "$T/new-ca-only.pem"
tls_req "$NGINX_CANARY_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle "${CHECKIN[@]}" \
	-H "If-None-Match: \"$NEW_ETAG\""
case "$CODE" in curl-*) ok "trusting only the old CA, the canary listener refuses the handshake ($CODE)" ;;
*) fail "an agent trusting only the old CA got through the canary listener" "HTTP $CODE" ;; esac
assert_eq 0 "$(verified)" "still not verified"
tls_req "$NGINX_CANARY_PORT" "$T/new-ca-only.pem" GET /carotate/v1/ca-bundle "${CHECKIN[@]}" \
	-H "If-None-Match: \"$NEW_ETAG\""
assert_eq 304 "$CODE" "check-in through nginx's canary listener, trusting only the new CA"
assert_eq 1 "$(verified)" "now verified"
assert_eq "$CPID" "$(worker_pid canary)" "the canary worker served it"
assert_exit 0 "gate = verified: rotate --dry-run passes at 1 of 1 verified" -- ctl rotate --dry-run
