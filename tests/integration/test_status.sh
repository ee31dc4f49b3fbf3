#!/bin/bash
# status: what an operator sees with no active set, with one, and with a staged directory;
# carotatectl's --version/--help, usage errors and an unreachable daemon.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init
write_config
start_daemon

# ---- no active set
assert_exit 0 "status with no active set exits 0" -- ctl status
assert_contains "none" "$OUT" "human status says 'none' with no active set"
assert_exit 0 "status --json with no active set exits 0" -- ctl --json status
echo "$OUT" >"$T/none.json"
assert_eq "null" "$(json_get active "$T/none.json")" "JSON active is null"
assert_eq "steady" "$(json_get phase "$T/none.json")" "JSON phase is steady"
assert_eq "null" "$(json_get staged "$T/none.json")" "JSON staged is null"
assert_eq "$DAEMON_PID" "$(json_get pid "$T/none.json")" "JSON pid is the daemon's"
assert_eq "$SSL_DIR" "$(json_get ssl_dir "$T/none.json")" "JSON ssl_dir is the configured one"
assert_contains "$PROJECT_VERSION" "$(json_get version "$T/none.json")" "JSON version is the daemon's ($PROJECT_VERSION)"
bundle=$(json_get bundle "$T/none.json")
case "$bundle" in
null | *'"cas":[]'*) ok "no bundle (or an empty one) without a CA: $bundle" ;;
*) fail "bundle without an active CA" "expected: null or no cas" "got: $bundle" ;;
esac

# ---- an active set, created with the openssl CLI; restart so that no caching can matter
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "daemon exits 0 on SIGTERM"
make_active_set
start_daemon
ca="$SSL_DIR/ca.crt"
leaf="$PKI_DIR/active/server.leaf.crt"
assert_exit 0 "status --json with an active set exits 0" -- ctl --json status
echo "$OUT" >"$T/active.json"
j() { json_get "$1" "$T/active.json"; }

assert_eq "steady" "$(j phase)" "phase is steady with only an active set"
assert_eq "$(cert_sha256 "$ca")" "$(j active.ca.sha256)" "active.ca.sha256 = openssl fingerprint of ca.crt"
assert_eq "$(cert_subject "$ca")" "$(j active.ca.subject)" "active.ca.subject = openssl's RFC 2253 subject"
assert_eq "$(cert_sha256 "$leaf")" "$(j active.server.sha256)" "active.server.sha256 = fingerprint of the leaf"
assert_eq "$(cert_subject "$leaf")" "$(j active.server.subject)" "active.server.subject = openssl's (CN=proxy.test)"
want_sans=$(cert_sans "$leaf" | "$PY" -c 'import json,sys; print(json.dumps([l.strip() for l in sys.stdin if l.strip()],separators=(",",":")))')
assert_eq '["DNS:proxy.test","IP:127.0.0.1"]' "$want_sans" "openssl sees the SANs we asked for"
assert_eq "$want_sans" "$(j active.server.sans)" "active.server.sans = openssl's view"

for who in ca server; do
	f=$ca
	[ "$who" = server ] && f=$leaf
	na=$(j "active.$who.not_after")
	assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$' \
		"$na" "active.$who.not_after is RFC 3339"
	assert_eq "$(cert_not_after_epoch "$f")" "$(rfc3339_to_epoch "$na")" "active.$who.not_after = openssl's notAfter"
done
days=$(j active.server_days_left)
want_days=$((($(cert_not_after_epoch "$leaf") - $(date +%s)) / 86400))
if [ "$days" -lt $((want_days - 1)) ] || [ "$days" -gt $((want_days + 1)) ]; then
	fail "active.server_days_left" "expected: $want_days (+-1)" "got: $days"
fi
ok "active.server_days_left = $days"

der_sum=$(cert_der_sha256 "$ca")
assert_eq "$der_sum" "$(j bundle.id)" "bundle.id = sha256 of the CA's DER"
assert_eq "[\"$der_sum\"]" "$(j bundle.cas)" "bundle.cas lists the active CA"
assert_eq "null" "$(j staged)" "staged is null with nothing staged"

assert_exit 0 "human status with an active set exits 0" -- ctl status
assert_contains "steady" "$OUT" "human status shows the phase"
assert_contains "carotate test CA active" "$OUT" "human status shows the CA's subject"

# ---- a staged directory flips the phase; removing it flips it back
mkdir -m 0700 "$SSL_DIR/new"
assert_exit 0 "status --json with ssl/new/ exits 0" -- ctl --json status
assert_eq "staged" "$(echo "$OUT" | json_get phase)" "phase is staged when ssl/new/ exists"
assert_eq "$(cert_sha256 "$ca")" "$(echo "$OUT" | json_get active.ca.sha256)" "active set unchanged while staged"
rmdir "$SSL_DIR/new"
assert_exit 0 "status --json after removing ssl/new/" -- ctl --json status
assert_eq "steady" "$(echo "$OUT" | json_get phase)" "phase back to steady without ssl/new/"

# ---- the CLI itself
assert_exit 0 "carotatectl --version exits 0" -- "$CAROTATECTL" --version
assert_contains "$PROJECT_VERSION" "$OUT$ERR" "--version prints the version ($PROJECT_VERSION)"
assert_exit 0 "carotatectl --help exits 0" -- "$CAROTATECTL" --help
assert_contains "status" "$OUT$ERR" "--help mentions the status command"
assert_exit 1 "unknown command exits 1 (usage)" -- ctl frobnicate
assert_exit 1 "no command exits 1 (usage)" -- ctl
assert_exit 1 "unknown option exits 1 (usage)" -- ctl --no-such-option status

assert_exit 2 "socket path that does not exist: exit 2 (unreachable)" -- \
	"$CAROTATECTL" --socket "$T/nothing-here.sock" status
# A socket file nobody listens on (ECONNREFUSED).
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/dead.sock"
assert_exit 2 "socket file with nobody listening: exit 2 (unreachable)" -- \
	"$CAROTATECTL" --socket "$T/dead.sock" status
assert_contains "$T/dead.sock" "$ERR" "the unreachable error names the socket"
assert_exit 2 "--json status, nobody listening: exit 2" -- \
	"$CAROTATECTL" --socket "$T/dead.sock" --json status

# ---- the client against a daemon that hangs or misbehaves: it gives up cleanly
kill -STOP "$DAEMON_PID"
start=$(ms_now)
assert_exit 2 "a stopped (hung) daemon with --timeout 1s: exit 2" -- ctl --timeout 1s status
took=$(($(ms_now) - start))
kill -CONT "$DAEMON_PID"
[ "$took" -lt 3000 ] || fail "carotatectl --timeout 1s gives up within 3 s" "took $took ms"
ok "carotatectl --timeout 1s gave up after $took ms"
assert_exit 0 "the daemon answers again after SIGCONT" -- ctl status

# fake_server NAME REPLY_HEX: a one-shot server that reads a request, sends REPLY_HEX, closes.
fake_server() {
	"$PY" -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
if os.fork() == 0:
    s.settimeout(10)
    c, _ = s.accept()
    c.recv(100)
    c.sendall(bytes.fromhex(sys.argv[2]))
    c.close()
os._exit(0)' "$T/$1.sock" "$2"
}
fake_server closes ""
assert_exit 2 "a server that closes without replying: exit 2" -- \
	"$CAROTATECTL" --socket "$T/closes.sock" status
fake_server garbage "00000005ffffffffff"
run "$CAROTATECTL" --socket "$T/garbage.sock" status
case "$RC" in
2 | 6) ok "an undecodable reply: exit $RC ($ERR)" ;;
*) fail "an undecodable reply: exit 2 or 6, no crash" "got exit $RC: $ERR" ;;
esac
# An OK reply must carry the result the command asked for: none at all (an empty body), or
# another call's (report_reply, field 13, for status), is an internal error, not a crash
# and not an empty status printed as if it were one.
fake_server noresult "00000000"
assert_exit 6 "an OK reply without a result: exit 6" -- "$CAROTATECTL" --socket "$T/noresult.sock" status
assert_contains "carries no status result" "$ERR" "and says so"
fake_server otherresult "000000026a00"
assert_exit 6 "an OK reply with another call's result: exit 6" -- \
	"$CAROTATECTL" --socket "$T/otherresult.sock" status
assert_contains "carries no status result" "$ERR" "and says so"
fake_server huge "ffffffff$(printf '78%.0s' $(seq 1 64))"
run "$CAROTATECTL" --socket "$T/huge.sock" status
case "$RC" in
2 | 6) ok "a reply announcing 4 GiB: exit $RC ($ERR)" ;;
*) fail "a reply announcing 4 GiB: exit 2 or 6, no crash" "got exit $RC: $ERR" ;;
esac

assert_daemon_alive "at the end"
