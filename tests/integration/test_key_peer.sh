#!/bin/bash
# `install` sends a private key only to a socket served by root, by the invoking user, or by
# the uid the operator named with --daemon-uid. Reproduction of what this test guards
# against: CAROTATE_SOCKET pointed at a listener run by another user (`nobody`), and
# `carotatectl install` wrote the whole InstallRequest, "BEGIN PRIVATE KEY" included, to it.
# Now the CLI reads the listener's uid with SO_PEERCRED after connecting and, for anyone
# else, sends nothing and exits 2. As root, with a second user (t_user): a python listener
# run as that user gets no key bytes, by --socket or CAROTATE_SOCKET, nor with
# --daemon-uid naming another uid; with --daemon-uid naming it, it gets the request. The
# real daemon run by that user takes an install from that user (peer uid == euid) and from
# root only with --daemon-uid. As a normal user, the daemon run by that user takes it.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

PEER=carotate-tpeer
ROOT=0
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && command -v useradd >/dev/null; then
	ROOT=1
	t_user "$PEER"
	PEER_UID=$(id -u "$PEER")
	PEER_GID=$(id -g "$PEER")
	as_peer() { setpriv --reuid="$PEER_UID" --regid="$PEER_GID" --init-groups "$@"; }
fi

t_init
pki_make_ca "$T/set" "key peer test CA"
pki_make_server "$T/set" "$T/set" proxy.test "DNS:proxy.test,IP:127.0.0.1"
chmod 0644 "$T/set/server.key" "$T/set/ca.key" # the peer user installs the same files
chmod 0755 "$T/set"
grep -q 'BEGIN PRIVATE KEY' "$T/set/server.key" || fail "the test key is a PKCS#8 PEM"
INSTALL_ARGS=(install --ca "$T/set/ca.crt" --cert "$T/set/server.crt" --key "$T/set/server.key")

if [ "$ROOT" = 1 ]; then
	echo "-- a listener run by $PEER (uid $PEER_UID)"
	FAKE_DIR="$T/fake"
	mkdir -m 0755 "$FAKE_DIR"
	chown "$PEER" "$FAKE_DIR"
	FAKE="$FAKE_DIR/fake.sock"
	GOT="$FAKE_DIR/got"
	# Appends every byte any client sends to GOT, then one byte to GOT.n; closes each connection
# after its frame.
	cat >"$T/listener.py" <<'EOF'
import os, socket, struct, sys
path, got = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
open(got, "wb").close()
while True:
    c, _ = s.accept()
    c.settimeout(5)
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    with open(got, "ab") as f:
        f.write(data)
    c.close()
    with open(got + ".n", "ab") as f:
        f.write(b"x")
EOF
	as_peer "$PY" "$T/listener.py" "$FAKE" "$GOT" &
	t_track_pid $!
	wait_until 5000 test -S "$FAKE" || fail "the listener is up"
	assert_eq "$PEER_UID" "$(stat -c %u "$FAKE")" "the socket belongs to $PEER"

	got_key() { grep -aq 'PRIVATE KEY' "$GOT"; }
	# seen N: the listener is done with its Nth connection (so GOT holds all it got).
	NCONN=0
	seen() {
		NCONN=$((NCONN + 1))
		# shellcheck disable=SC2016 # expanded by the inner sh
		wait_until 5000 sh -c '[ "$(wc -c <"$1" 2>/dev/null)" -ge "$2" ]' sh "$GOT.n" "$NCONN" ||
			fail "the listener saw connection $NCONN"
	}

	assert_exit 2 "install to $PEER's socket by --socket: exit 2" -- \
		"$CAROTATECTL" --socket "$FAKE" "${INSTALL_ARGS[@]}"
	seen
	! got_key || fail "the listener received no key" "$(od -c "$GOT" | head)"
	ok "the listener received no key"
	assert_contains "refusing to send the private key to $FAKE: it is served by uid $PEER_UID" \
		"$ERR" "the message names the socket and its uid"
	assert_contains "--daemon-uid $PEER_UID" "$ERR" "the message says how to name the uid"

	assert_exit 2 "install to $PEER's socket by CAROTATE_SOCKET: exit 2" -- \
		env CAROTATE_SOCKET="$FAKE" "$CAROTATECTL" "${INSTALL_ARGS[@]}"
	seen
	assert_exit 2 "install --json to $PEER's socket: exit 2" -- \
		"$CAROTATECTL" --json --socket "$FAKE" "${INSTALL_ARGS[@]}"
	seen
	assert_eq unavailable "$(printf '%s' "$OUT" | json_get error.status /dev/stdin)" \
		"JSON error status unavailable"
	assert_exit 2 "install --daemon-uid 0 to $PEER's socket: exit 2" -- \
		"$CAROTATECTL" --socket "$FAKE" "${INSTALL_ARGS[@]}" --daemon-uid 0
	seen
	assert_contains "not by --daemon-uid 0" "$ERR" "the message names the uid expected"
	assert_exit 1 "--daemon-uid must be numeric" -- \
		"$CAROTATECTL" --socket "$FAKE" "${INSTALL_ARGS[@]}" --daemon-uid "$PEER"
	assert_exit 1 "--daemon-uid 4294967295 (no uid) is refused" -- \
		"$CAROTATECTL" --socket "$FAKE" "${INSTALL_ARGS[@]}" --daemon-uid 4294967295
	if [ -s "$GOT" ]; then
		fail "the listener received nothing at all" "$(od -c "$GOT" | head)"
	fi
	ok "the listener received nothing at all"

	# Calls without key material are not held back: status goes out (and gets no reply).
	run "$CAROTATECTL" --timeout 3 --socket "$FAKE" status
	seen
	[ -s "$GOT" ] || fail "status is sent to any socket"
	ok "status is sent to any socket"
	: >"$GOT"

	run "$CAROTATECTL" --timeout 5 --socket "$FAKE" "${INSTALL_ARGS[@]}" --daemon-uid "$PEER_UID"
	seen
	got_key || fail "with --daemon-uid $PEER_UID the request is sent" \
		"exit $RC: $ERR"
	ok "with --daemon-uid $PEER_UID the request (with the key) is sent"
	assert_ne 0 "$RC" "the listener's missing reply is still a failure"
fi

# The real daemon, run by USER: the user's install works (peer uid == euid).
if [ "$ROOT" = 1 ]; then
	echo "-- carotated run by $PEER"
	SOCKET_GROUP=$(id -gn "$PEER")
	ADMIN_GROUP=$SOCKET_GROUP
	AGENT_USER=$PEER
	AGENT_GROUP=$SOCKET_GROUP
	make_active_set
	write_config "$CONF"
	chown -R "$PEER" "$SSL_DIR" "$STATE_DIR" "$RUN_DIR"
	as_peer "$CAROTATED" -f -c "$CONF" >>"$DAEMON_LOG" 2>&1 </dev/null &
	DAEMON_PID=$!
	t_track_pid "$DAEMON_PID"
	wait_until 10000 as_peer "$CAROTATECTL" --socket "$SOCK" status ||
		fail "carotated run by $PEER answers" "$(tail -n 20 "$DAEMON_LOG")"
	assert_exit 2 "root's install to the daemon run by $PEER: exit 2" -- \
		ctl "${INSTALL_ARGS[@]}"
	assert_contains "served by uid $PEER_UID" "$ERR" "root is told who serves the socket"
	assert_exit 0 "$PEER's install to its own daemon" -- as_peer "$CAROTATECTL" --socket "$SOCK" \
		"${INSTALL_ARGS[@]}"
	assert_exit 0 "discard" -- as_peer "$CAROTATECTL" --socket "$SOCK" discard
	assert_exit 0 "root's install with --daemon-uid $PEER_UID" -- \
		ctl "${INSTALL_ARGS[@]}" --daemon-uid "$PEER_UID"
	assert_contains "staged" "$OUT" "it is staged"
else
	echo "-- carotated run by $(id -un)"
	make_active_set
	write_config "$CONF"
	start_daemon
	assert_exit 0 "install to our own daemon" -- ctl "${INSTALL_ARGS[@]}"
	assert_exit 2 "--daemon-uid naming someone else is refused" -- \
		ctl "${INSTALL_ARGS[@]}" --daemon-uid "$(($(id -u) + 1))"
fi
assert_daemon_alive
