#!/bin/bash
# worker: the agent workers as the daemon runs them, one per agent socket (`--worker agents` on
# agent.sock, `--worker canary` on agent-canary.sock), both named by `status`. Link and check-in
# over their Unix sockets with curl; what a worker refuses by itself (404, 405 + Allow, 400, 401,
# 413); their identity (the agent user, no capabilities, no_new_privs, socket modes, each holding
# its own socket only); a slowloris client and 1000 concurrent connections; and the restart of
# either after kill -9 (the other one keeps its pid and keeps answering) or after sending the
# parent garbage, while the control socket keeps answering.
# Before each socket had its own worker, one worker held both sockets: no canary worker was
# found, and status named no worker at all.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || t_skip "curl is not installed"

t_init
make_active_set
write_config
start_daemon
AGENT="$RUN_DIR/agent.sock"
CANARY="$RUN_DIR/agent-canary.sock"
KEY=$(tr -d ' \n' <"$LINKING_KEY")
BUNDLE_ID=$(cert_der_sha256 "$SSL_DIR/ca.crt")

worker_is() { [ "$(worker_pid)" = "$1" ]; }
worker_up() { [ -n "$(worker_pid)" ] && [ -n "$(worker_pid canary)" ]; }
# worker_replaced OLD [SITE]
worker_replaced() { local p; p=$(worker_pid "${2:-agents}") && [ -n "$p" ] && [ "$p" != "$1" ]; }
# socket_inode PATH: the inode of the listening socket bound at PATH (/proc/net/unix).
socket_inode() { awk -v p="$1" '$NF == p && $4 == "00010000" { print $7 }' /proc/net/unix | head -n 1; }
# holds PID INODE: the process has that socket open.
holds() { local fd; for fd in /proc/"$1"/fd/*; do [ "$(readlink "$fd")" = "socket:[$2]" ] && return 0; done; return 1; }

# req SOCKET CURL_ARGS... -> prints the status code; headers in $T/h, body in $T/b.
req() {
	local sock=$1
	shift
	curl -s --max-time 20 --unix-socket "$sock" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" || true
}
URL=http://agent/carotate/v1

wait_until 5000 worker_up || fail "the two agent workers do not run" "log: $(tail -n 20 "$DAEMON_LOG")"
WPID=$(worker_pid)
CPID=$(worker_pid canary)
assert_match '^[0-9]+$' "$WPID" "one agent worker serves agent.sock (pid $WPID)"
assert_match '^[0-9]+$' "$CPID" "one agent worker serves agent-canary.sock (pid $CPID)"
assert_ne "$WPID" "$CPID" "they are two processes"

# ---- status names both
ctl --json status >"$T/st.json"
assert_eq "$WPID" "$(json_get worker_pid "$T/st.json")" "status --json: worker_pid"
assert_eq "$CPID" "$(json_get canary_worker_pid "$T/st.json")" "status --json: canary_worker_pid"
assert_match "workers: +agent pid $WPID, canary pid $CPID" "$(ctl status)" "status names both workers"

# ---- each holds its own socket, never the other's
AINO=$(socket_inode "$AGENT")
CINO=$(socket_inode "$CANARY")
holds "$WPID" "$AINO" || fail "the agent.sock worker holds agent.sock"
holds "$CPID" "$CINO" || fail "the canary worker holds agent-canary.sock"
if holds "$WPID" "$CINO"; then fail "the agent.sock worker holds agent-canary.sock too"; fi
if holds "$CPID" "$AINO"; then fail "the canary worker holds agent.sock too"; fi
ok "each worker holds its own listening socket and not the other's"

# ---- the linking key stays with the parent: no worker has its file open, or the key in its
# argv, environment or memory (before any agent sent it; an agent's bearer necessarily
# passes through the worker that parses its HTTP). Checked again after a restart, below.
no_key() { # no_key PID WHAT
	local w=$1 fd
	for fd in /proc/"$w"/fd/*; do
		[ "$(readlink "$fd")" != "$(readlink -f "$LINKING_KEY")" ] || fail "$2 has the linking key file open"
	done
	if tr '\0' '\n' <"/proc/$w/cmdline" | grep -q -F -e "$KEY" -e "$LINKING_KEY"; then
		fail "$2: the linking key (or its path) is in its argv"
	fi
	if tr '\0' '\n' <"/proc/$w/environ" | grep -q -F -e "$KEY" -e "$LINKING_KEY"; then
		fail "$2: the linking key (or its path) is in its environment"
	fi
	if [ "$(id -u)" -eq 0 ]; then
		"$PY" - "$w" "$KEY" <<'EOF' || fail "$2 holds the linking key in its memory"
import re, sys
pid, key = sys.argv[1], sys.argv[2].encode()
with open("/proc/%s/maps" % pid) as maps, open("/proc/%s/mem" % pid, "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
        if not m:
            continue
        lo, hi = int(m.group(1), 16), int(m.group(2), 16)
        if hi - lo > 256 << 20:  # sanitizer shadow: never holds our data
            continue
        try:
            mem.seek(lo)
            if key in mem.read(hi - lo):
                sys.exit(1)
        except OSError:
            pass
EOF
	fi
	ok "$2 holds no linking key (file, argv, environment$([ "$(id -u)" -eq 0 ] && echo ", memory"))"
}
no_key "$WPID" "the agent.sock worker"
no_key "$CPID" "the canary worker"

# ---- link, then check in (the parent answers from the ledger)
assert_eq 200 "$(req "$AGENT" -X POST -H 'X-Agent-Id: it-agent-1' -H "Authorization: Bearer $KEY" \
	"$URL/link")" "link with the linking key: 200"
TOKEN=$(hdr X-Agent-Token)
assert_match '^[0-9a-f]{64}$' "$TOKEN" "link answers X-Agent-Token (64 hex)"
assert_eq "\"$BUNDLE_ID\"" "$(hdr ETag)" "link answers ETag = the bundle id (sha256 of the CA's DER)"
assert_eq "no-store" "$(hdr Cache-Control)" "link answers Cache-Control: no-store"
assert_eq "application/x-pem-file" "$(hdr Content-Type)" "the bundle is application/x-pem-file"
assert_file_contains "BEGIN CERTIFICATE" "$T/b" "link answers the PEM bundle"
assert_eq "$(openssl x509 -in "$SSL_DIR/ca.crt" -outform DER | sha256sum | cut -d' ' -f1)" \
	"$(openssl x509 -in "$T/b" -outform DER | sha256sum | cut -d' ' -f1)" "the bundle holds the active CA"

CHECKIN=(-H 'X-Agent-Id: it-agent-1' -H "Authorization: Bearer $TOKEN")
assert_eq 200 "$(req "$AGENT" "${CHECKIN[@]}" "$URL/ca-bundle")" "check-in without If-None-Match: 200"
assert_eq "\"$BUNDLE_ID\"" "$(hdr ETag)" "check-in answers the ETag"
assert_eq 304 "$(req "$AGENT" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"check-in with the current ETag: 304"
assert_eq 304 "$(req "$CANARY" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"check-in through the canary socket: 304"
assert_eq 401 "$(req "$AGENT" -H 'X-Agent-Id: it-agent-1' -H "Authorization: Bearer $(printf '%064d' 0)" \
	"$URL/ca-bundle")" "check-in with a wrong token: 401"
assert_eq 'Bearer realm="carotate"' "$(hdr WWW-Authenticate)" "401 carries WWW-Authenticate: Bearer"
assert_eq 401 "$(req "$AGENT" -X POST -H 'X-Agent-Id: it-agent-2' -H 'Authorization: Bearer not-the-key' \
	"$URL/link")" "link with a wrong key: 401"

# ---- what the worker refuses by itself
assert_eq 404 "$(req "$AGENT" "${CHECKIN[@]}" http://agent/)" "GET /: 404"
assert_eq 404 "$(req "$AGENT" "${CHECKIN[@]}" "$URL/ca-bundle/x")" "an unknown path: 404"
assert_eq 405 "$(req "$AGENT" "${CHECKIN[@]}" "$URL/link")" "GET link: 405"
assert_eq POST "$(hdr Allow)" "405 on link says Allow: POST"
assert_eq 405 "$(req "$AGENT" "${CHECKIN[@]}" -X POST "$URL/ca-bundle")" "POST ca-bundle: 405"
assert_eq GET "$(hdr Allow)" "405 on ca-bundle says Allow: GET"
assert_eq 400 "$(req "$AGENT" "${CHECKIN[@]}" "$URL/ca-bundle?x=1")" "a query string: 400"
assert_eq 400 "$(req "$AGENT" -H 'X-Agent-Id: a/b' -H "Authorization: Bearer $TOKEN" "$URL/ca-bundle")" \
	"an agent id with a slash: 400"
assert_eq 400 "$(req "$AGENT" -H "X-Agent-Id: $(printf 'a%.0s' $(seq 65))" -H "Authorization: Bearer $TOKEN" \
	"$URL/ca-bundle")" "an agent id of 65 characters: 400"
assert_eq 400 "$(req "$AGENT" "${CHECKIN[@]}" -H 'X-Agent-Id: other' "$URL/ca-bundle")" \
	"two X-Agent-Id headers: 400"
assert_eq 400 "$(req "$AGENT" "${CHECKIN[@]}" -H "If-None-Match: W/\"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"a weak If-None-Match: 400"
assert_eq 400 "$(req "$AGENT" "${CHECKIN[@]}" -H 'If-None-Match: *' "$URL/ca-bundle")" \
	"If-None-Match: *: 400"
assert_eq 401 "$(req "$AGENT" -H 'X-Agent-Id: it-agent-1' "$URL/ca-bundle")" "no Authorization: 401"
assert_eq 401 "$(req "$AGENT" -H 'X-Agent-Id: it-agent-1' -H 'Authorization: Basic YTpi' "$URL/ca-bundle")" \
	"Authorization: Basic: 401"
assert_eq 413 "$(req "$AGENT" -X POST -H 'X-Agent-Id: it-agent-1' -H "Authorization: Bearer $KEY" \
	--data-binary "@$SSL_DIR/server.crt" --data-binary "@$SSL_DIR/server.crt" \
	--data-binary "@$SSL_DIR/server.crt" --data-binary "@$SSL_DIR/server.crt" "$URL/link")" \
	"a body over 4 KiB: 413"
code=$(req "$AGENT" -H "X-Pad: $(head -c 9000 /dev/zero | tr '\0' p)" "$URL/ca-bundle")
case "$code" in 4??) ok "headers over 8 KiB: $code" ;; *) fail "headers over 8 KiB: a 4xx" "got $code" ;; esac
assert_eq "$WPID" "$(worker_pid)" "the same worker answered all of that"

# ---- the workers' identity and their sockets
uid=$(id -u "$AGENT_USER")
gid=$(getent group "$AGENT_GROUP" | cut -d: -f3)
for w in "$WPID" "$CPID"; do
	status=/proc/$w/status
	assert_eq "1" "$(awk '/^NoNewPrivs:/ {print $2}' "$status")" "worker $w runs with no_new_privs"
	for cap in CapInh CapPrm CapEff CapAmb; do
		assert_eq 0000000000000000 "$(awk "/^$cap:/ {print \$2}" "$status")" "worker $w: $cap is empty"
	done
	assert_eq "$uid $uid $uid $uid" "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "$status")" \
		"worker $w runs as $AGENT_USER (real, effective, saved, fs uid)"
	if [ "$(id -u)" -eq 0 ]; then
		pgid=$(id -g "$AGENT_USER")
		assert_eq "$pgid $pgid $pgid $pgid" "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "$status")" \
			"worker $w runs with $AGENT_USER's group"
		assert_eq "" "$(awk '/^Groups:/ {print $2}' "$status")" "worker $w has no supplementary groups"
	fi
	files=$(for fd in /proc/"$w"/fd/*; do readlink "$fd"; done | grep -v -E '^(socket|anon_inode|pipe):' |
		grep -v -E '^/dev/(null|pts/[0-9]+|tty.*)$' || true)
	assert_eq "" "$(printf '%s' "$files" | grep -v "$DAEMON_LOG" || true)" "worker $w holds no file of the daemon's"
done
if [ "$(id -u)" -eq 0 ]; then
	assert_eq "660 root $AGENT_GROUP" "$(stat -c '%a %U %G' "$AGENT")" "agent.sock is 0660 root:$AGENT_GROUP"
	assert_eq "660 root $AGENT_GROUP" "$(stat -c '%a %U %G' "$CANARY")" \
		"agent-canary.sock is 0660 root:$AGENT_GROUP"
else
	assert_eq "660" "$(stat -c '%a' "$AGENT")" "agent.sock is 0660"
	[ -n "$gid" ] || true
fi

# ---- a slowloris client: one header byte a second is dropped at the 10 s request deadline
took=$("$PY" - "$AGENT" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
start = time.monotonic()
req = b"GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: slow\r\nX-Padding: " + b"p" * 100 + b"\r\n\r\n"
s.settimeout(1.0)
for b in req:
    try:
        s.send(bytes([b]))
        if s.recv(4096) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
print(int((time.monotonic() - start) * 1000))
EOF
)
if [ "$took" -lt 9000 ] || [ "$took" -gt 13000 ]; then
	fail "a slowloris client is dropped after about 10 s" "it lasted $took ms"
fi
ok "a slowloris client was dropped after $took ms"

# ---- 1000 concurrent connections, a check-in on each
answered=$("$PY" - "$AGENT" "$TOKEN" "$BUNDLE_ID" <<'EOF'
import resource, selectors, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
path, token, etag = sys.argv[1:4]
req = ("GET /carotate/v1/ca-bundle HTTP/1.1\r\nX-Agent-Id: it-agent-1\r\n"
       "Authorization: Bearer %s\r\nIf-None-Match: \"%s\"\r\nConnection: close\r\n\r\n"
       % (token, etag)).encode()
sel = selectors.DefaultSelector()
socks = []
for _ in range(1000):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
for s in socks:
    s.sendall(req)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, bytearray())
ok, left = 0, len(socks)
while left:
    events = sel.select(timeout=30)
    if not events:
        break
    for key, _ in events:
        data = key.fileobj.recv(65536)
        if data:
            key.data.extend(data)
            continue
        ok += key.data.startswith(b"HTTP/1.1 304 ")
        sel.unregister(key.fileobj)
        key.fileobj.close()
        left -= 1
print(ok)
EOF
)
assert_eq 1000 "$answered" "1000 concurrent check-ins all answered 304"
assert_eq "$WPID" "$(worker_pid)" "the same worker served them"
assert_exit 0 "the control socket answers meanwhile" -- ctl status

# ---- kill -9: the parent logs it and restarts the worker, which answers again; the canary
# worker is not touched and answers meanwhile
kill -KILL "$WPID"
assert_eq 304 "$(req "$CANARY" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"the canary worker answers while the agent.sock worker is down"
wait_until 4000 worker_replaced "$WPID" || fail "a new worker within 4 s of kill -9" \
	"log: $(tail -n 20 "$DAEMON_LOG")"
NEW=$(worker_pid)
ok "worker $WPID killed, worker $NEW started"
assert_file_contains "agent worker (pid $WPID) killed by signal 9" "$DAEMON_LOG" "the parent logged the kill"
assert_eq 304 "$(req "$AGENT" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"the new worker answers (the ledger kept the agent)"
assert_eq "$CPID" "$(worker_pid canary)" "the canary worker kept its pid"
assert_daemon_alive "after the worker was killed"
WPID=$NEW

# ---- and the other way round: the canary worker killed, agent.sock keeps its worker
kill -KILL "$CPID"
assert_eq 304 "$(req "$AGENT" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"agent.sock answers while the canary worker is down"
wait_until 4000 worker_replaced "$CPID" canary || fail "a new canary worker within 4 s of kill -9" \
	"log: $(tail -n 20 "$DAEMON_LOG")"
NEW=$(worker_pid canary)
ok "canary worker $CPID killed, canary worker $NEW started"
assert_file_contains "canary worker (pid $CPID) killed by signal 9" "$DAEMON_LOG" \
	"the parent logged the canary worker's kill"
assert_eq 304 "$(req "$CANARY" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
	"the new canary worker answers"
assert_eq "$WPID" "$(worker_pid)" "the agent.sock worker kept its pid"
ctl --json status >"$T/st.json"
assert_eq "$WPID" "$(json_get worker_pid "$T/st.json")" "status --json: worker_pid after the restarts"
assert_eq "$NEW" "$(json_get canary_worker_pid "$T/st.json")" "status --json: the new canary_worker_pid"
CPID=$NEW
no_key "$CPID" "the restarted canary worker"

# ---- garbage from the worker: the parent kills it and carries on (root: pidfd_getfd)
if [ "$(id -u)" -eq 0 ]; then
	"$PY" - "$WPID" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, int(sys.argv[1]), 0)          # pidfd_open
fd = libc.syscall(438, pidfd, 3, 0)                     # pidfd_getfd: the worker's fd 3
if pidfd < 0 or fd < 0:
    sys.exit("pidfd: %s" % os.strerror(ctypes.get_errno()))
os.write(fd, b"\x7f\xff\xff\xff")                       # a frame of 2 GiB
EOF
	wait_until 8000 worker_replaced "$WPID" || fail "a new worker after garbage" \
		"log: $(tail -n 20 "$DAEMON_LOG")"
	assert_file_contains "agent worker (pid $WPID): sent a frame over the size limit; killing it" \
		"$DAEMON_LOG" "the parent logged the bad frame"
	assert_eq 304 "$(req "$AGENT" "${CHECKIN[@]}" -H "If-None-Match: \"$BUNDLE_ID\"" "$URL/ca-bundle")" \
		"the replacement worker answers"
else
	ok "(garbage injection needs root: skipped)"
fi
assert_daemon_alive "after the worker misbehaved"
assert_exit 0 "the control socket still answers" -- ctl status

# ---- shutdown: the workers go with the daemon, the socket files too
WPID=$(worker_pid)
CPID=$(worker_pid canary)
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "the daemon exits 0 on SIGTERM"
wait_until 2000 sh -c "! kill -0 $WPID 2>/dev/null && ! kill -0 $CPID 2>/dev/null" ||
	fail "the workers exit with the daemon"
ok "the workers are gone"
[ ! -e "$AGENT" ] && [ ! -e "$CANARY" ] || fail "the agent sockets are removed at exit"
ok "the agent sockets are removed at exit"
