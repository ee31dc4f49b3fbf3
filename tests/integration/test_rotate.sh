#!/bin/bash
# The operator's whole procedure (issue 5), end to end: real nginx running
# packaging/nginx/carotate.conf, the real daemon, the agent simulator, curl as an agent.
#
#  - a fleet links; generate; the fleet receives and acknowledges the new CA except one agent
#    -> rotate is refused (exit 3) with the figures and the pending agent, and nothing on disk
#    changes; --force without --reason is a usage error (exit 1);
#  - the last agent acknowledges -> 100 % -> rotate --dry-run changes nothing -> rotate: the
#    old set is in certs-YYYYMMDD-HHMMSS/ with a manifest, nginx serves the new certificate,
#    agents holding the bundle connect (curl --cacert and the whole simulated fleet), an agent
#    that trusts only the old CA fails; a TLS connection opened before the rotation, with its
#    request in flight, completes it after; the old CA stays in the bundle (retained);
#  - restore of that backup: the old certificate is served again and the old-only agent
#    connects again; the set restored away is itself in a new backup; bad backup ids are
#    refused without touching anything;
#  - the manual recovery of the proxy's own documentation (cp certs-<date>-<time>/* ssl/ and
#    a proxy restart) leaves a working proxy, and the daemon adopts it on SIGHUP: audited as
#    an external change, the bundle re-derived.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init

SIM_AGENTS=${CAROTATE_ROTATE_AGENTS:-200}
AGENTSIM="$CAROTATE_BUILD/agentsim"
[ -x "$AGENTSIM" ] || fail "$AGENTSIM is missing (make builds it)"

make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
cp "$SSL_DIR/ca.crt" "$T/old-ca.pem"
OLD_SRV=$(nginx_served_sha256 "$NGINX_PORT")
assert_eq "$(openssl x509 -in "$SSL_DIR/server.crt" -outform DER | sha256sum | cut -d' ' -f1)" \
	"$OLD_SRV" "nginx serves the active certificate"

# serves_now PORT SHA WHAT: new handshakes on PORT get the leaf SHA within 10 s (after a
# reload an old nginx worker may still accept for a moment).
serves_now() {
	wait_until 10000 _nginx_serving "$1" "$2" ||
		fail "$3" "want $2" "served $(nginx_served_sha256 "$1")"
	ok "$3"
}

# An agent's HTTPS request with curl trusting TRUST; sets CURL_RC (0, or 60 for an untrusted
# certificate).
agent_curl() {
	CURL_RC=0
	curl -sS --max-time 15 --cacert "$1" --resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" \
		-o /dev/null "https://$NGINX_SERVER_NAME:$NGINX_PORT/carotate/v1/ca-bundle" \
		2>"$T/curl.err" || CURL_RC=$?
}

# Everything in the SSL and state directories that a refused call must leave alone.
disk_state() {
	(cd "$SSL_DIR" && find . -path ./new -prune -o -print | LC_ALL=C sort &&
		find . -type f ! -name '.*.tmp' -exec sha256sum {} + | LC_ALL=C sort)
	ls -A "$STATE_DIR" | grep -v '^ledger' | LC_ALL=C sort
}

SIM_DIR="$T/fleet"
sim() {
	"$AGENTSIM" --dir "$SIM_DIR" --port "$NGINX_PORT" --canary-port "$NGINX_CANARY_PORT" \
		--server-name "$NGINX_SERVER_NAME" --agents "$SIM_AGENTS" --initial-ca "$T/old-ca.pem" \
		--concurrency 16 --report "$@"
}

echo "-- the fleet links, the new set is staged, all but one agent acknowledge it"
run sim --link --linking-key "$LINKING_KEY" --rounds 1 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: $SIM_AGENTS agents link" "exit $RC: $ERR"
assert_exit 0 "generate" -- ctl --json generate
printf '%s' "$OUT" | jsave "$T/gen.json"
NEW_SRV=$(jget staged.server.sha256 "$T/gen.json")
NEW_CA=$(jget staged.ca.sha256 "$T/gen.json")
OLD_CA=$(openssl x509 -in "$T/old-ca.pem" -outform DER | sha256sum | cut -d' ' -f1)
run sim --rounds 2 --never-update 1 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the fleet picks up the new bundle" "exit $RC: $ERR"
printf '%s' "$OUT" | jsave "$T/sim.json"
NEVER_ID=$(jget agents_by_role.never_update.0 "$T/sim.json")
ctl --json report | jsave "$T/rep.json"
assert_eq "$((SIM_AGENTS - 1))" "$(jget acknowledged "$T/rep.json")" "report: all but one acknowledged"
assert_eq 99 "$(jget percent "$T/rep.json")" "report: 99 %"

echo "-- the gate"
before=$(disk_state)
run ctl --json rotate
assert_eq 3 "$RC" "rotate below 100 % exits 3"
printf '%s' "$OUT" | jsave "$T/refused.json"
assert_eq failed_precondition "$(jget error.status "$T/refused.json")" "the refusal is FAILED_PRECONDITION"
assert_contains "$((SIM_AGENTS - 1)) of $SIM_AGENTS active agents" "$ERR" "the refusal gives the figures"
assert_eq "$NEVER_ID" "$(jget pending_agents.0.id "$T/refused.json")" "the refusal names the pending agent"
assert_eq "$before" "$(disk_state)" "a refused rotate changes nothing on disk"
run ctl rotate
assert_eq 3 "$RC" "rotate (human) below 100 % exits 3"
assert_contains "$NEVER_ID" "$OUT" "human output lists the pending agent"
run ctl rotate --force
assert_eq 1 "$RC" "rotate --force without --reason is a usage error"
assert_contains "--reason" "$ERR" "the usage error names --reason"
run ctl rotate --force --reason "$(printf 'bad\001reason')"
assert_eq 5 "$RC" "a reason with a control character is invalid input"
assert_eq "$before" "$(disk_state)" "refused calls change nothing on disk"

echo "-- 100 %: the last agent acknowledges"
run sim --rounds 2 --expect-all-ok
[ "$RC" -eq 0 ] || fail "agentsim: the last agent acknowledges" "exit $RC: $ERR"
ctl --json report | jsave "$T/rep.json"
assert_eq 100 "$(jget percent "$T/rep.json")" "report: 100 %"
assert_exit 0 "rotate --dry-run at 100 %" -- ctl --json rotate --dry-run
printf '%s' "$OUT" | jsave "$T/dry.json"
assert_eq true "$(jget dry_run "$T/dry.json")" "dry run says so"
assert_eq "$NEW_SRV" "$(jget would_become_active.server.sha256 "$T/dry.json")" "dry run names the staged certificate"
assert_eq "$before" "$(disk_state)" "a dry run changes nothing on disk"

# A keep-alive connection to the proxy opened before the rotation: one request answered,
# the next in flight (headers not finished) when the rotation happens; nginx's old worker
# finishes it on the old certificate after the reload. (An idle keep-alive connection is
# closed by the old worker at a reload; the agent then reconnects with a new handshake.)
"$PY" - "$NGINX_PORT" "$NGINX_SERVER_NAME" "$T/old-ca.pem" "$T/go" >"$T/inflight.out" 2>&1 <<'EOF' &
import hashlib, os, socket, ssl, sys, time
port, name, ca, go = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30), server_hostname=name)
print("cert", hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest(), flush=True)
# A first whole request, kept alive: the connection is in use before the rotation.
buf = b""
s.sendall(b"GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: " + name.encode() + b"\r\nX-Agent-Id: inflight\r\n\r\n")
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, body = buf.split(b"\r\n\r\n", 1)
length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
while len(body) < (length[0] if length else 0):
    body += s.recv(65536)
print("first", head.split(b"\r\n", 1)[0].decode(errors="replace"), flush=True)
# The second one starts before the rotation and ends after it.
s.sendall(b"GET /carotate/v1/ca-bundle HTTP/1.1\r\nHost: " + name.encode() + b"\r\n")
print("sent", flush=True)
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.05)
s.sendall(b"X-Agent-Id: inflight\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print("status", data.split(b"\r\n", 1)[0].decode(errors="replace"), flush=True)
EOF
INFLIGHT=$!
wait_until 10000 grep -q '^sent' "$T/inflight.out" || fail "the in-flight connection started" "$(cat "$T/inflight.out")"

echo "-- rotate"
# A reason of LIMITS_MAX_REASON (256) bytes, all of it kept: the rotate accepted 256
# bytes, then the manifest kept the first 200 and `backups` showed 255 of those at most.
LONG_REASON="$(printf 'r%.0s' $(seq 1 248)) end=256"
assert_eq 256 "${#LONG_REASON}" "the reason is 256 bytes"
assert_exit 0 "rotate at 100 %" -- ctl --json rotate --reason "$LONG_REASON"
printf '%s' "$OUT" | jsave "$T/rot.json"
assert_eq true "$(jget verified "$T/rot.json")" "rotate: verified over TLS"
assert_eq "$NEW_SRV" "$(jget served "$T/rot.json")" "rotate: the proxy served the new certificate"
assert_eq false "$(jget rolled_back "$T/rot.json")" "rotate: no roll back"
BACKUP=$(jget backup "$T/rot.json")
assert_match '^certs-[0-9]{8}-[0-9]{6}(-[0-9]+)?$' "$BACKUP" "rotate: the old set went to certs-YYYYMMDD-HHMMSS"
t_log "rotate took $(jget rotate_ms "$T/rot.json") ms (RPC to verified certificate)"
serves_now "$NGINX_PORT" "$NEW_SRV" "nginx serves the new certificate"
[ ! -e "$SSL_DIR/new" ] || fail "the staging directory is gone after rotate"
[ ! -e "$STATE_DIR/swap.journal" ] || fail "no swap journal is left"
cmp -s "$T/old-ca.pem" "$SSL_DIR/$BACKUP/ca.crt" || fail "the backup holds the old CA"
for f in ca.crt server.crt server.key; do [ -f "$SSL_DIR/$BACKUP/$f" ] || fail "the backup holds $f"; done
assert_eq "reason=$LONG_REASON" "$(grep '^reason=' "$SSL_DIR/$BACKUP/.manifest")" \
	"the manifest keeps all 256 bytes of the reason"
ctl --json backups | jsave "$T/bk.json"
assert_eq "$BACKUP" "$(jget backups.0.id "$T/bk.json")" "backups: the rotate's backup comes first"
assert_eq "$LONG_REASON" "$(jget backups.0.detail "$T/bk.json")" \
	"backups --json: the detail is all 256 bytes of the reason"
assert_exit 0 "backups (human)" -- ctl backups
assert_contains "$LONG_REASON" "$OUT" "backups: the row shows all 256 bytes of the reason"
[ -f "$SSL_DIR/$BACKUP/.manifest" ] || fail "the backup has a manifest"
(cd "$SSL_DIR/$BACKUP" && grep '  ' .manifest | awk '{print $1 "  " $3}' | sha256sum -c --quiet) ||
	fail "the manifest's sums match the backup's files"
ok "the backup holds the old set, with a manifest of SHA-256 sums"
assert_eq 700 "$(stat -c %a "$SSL_DIR/$BACKUP")" "the backup directory is 0700"
openssl verify -x509_strict -purpose sslserver -CAfile "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" >/dev/null ||
	fail "the new active certificate verifies against the new active CA"
ctl --json status | jsave "$T/st.json"
assert_eq steady "$(jget phase "$T/st.json")" "status: steady after rotate"
assert_eq "$(printf '%s\n%s\n' "$OLD_CA" "$NEW_CA" | LC_ALL=C sort)" "$(jlines bundle.cas "$T/st.json")" \
	"the bundle keeps the old CA (retained) beside the new one"

touch "$T/go"
wait "$INFLIGHT" || fail "the in-flight connection" "$(cat "$T/inflight.out")"
assert_contains "cert $OLD_SRV" "$(cat "$T/inflight.out")" "the in-flight connection was on the old certificate"
assert_match 'first HTTP/1.1 [0-9]{3}' "$(grep '^first' "$T/inflight.out")" \
	"a keep-alive connection opened before the rotation answered a first request"
assert_match 'status HTTP/1.1 [0-9]{3}' "$(grep '^status' "$T/inflight.out")" \
	"its next request, begun before the rotation, completed after it on the same TLS connection"

agent_curl "$SIM_DIR/$NEVER_ID/trust.pem"
assert_eq 0 "$CURL_RC" "curl --cacert with the bundle (old + new CA) connects after the rotation"
agent_curl "$T/old-ca.pem"
assert_eq 60 "$CURL_RC" "curl --cacert with only the old CA fails after the rotation"
run sim --rounds 1 --expect-all-ok
[ "$RC" -eq 0 ] || fail "every simulated agent connects after the rotation" "exit $RC: $ERR"
printf '%s' "$OUT" | jsave "$T/sim2.json"
assert_eq 0 "$(jget tls_failures "$T/sim2.json")" "agentsim: no TLS failure after the rotation"

echo "-- restore"
run ctl restore ../x
assert_eq 5 "$RC" "restore ../x is refused as invalid"
for bad in /etc a/b "certs-$(printf '%0200d' 0)" "$(printf 'certs-20240101-000000\t')" certs-2024-01-01; do
	run ctl restore "$bad"
	assert_eq 5 "$RC" "restore '$bad' is refused (exit 5)"
done
# The daemon's own check, past the CLI's: an existing backup's exact name followed by a NUL
# and more, encoded by hand (Request{version 1, restore{backup}}); the reply's status code.
raw_restore() {
	"$PY" - "$SOCK" "$1" <<'EOF'
import socket, struct, sys
sock, backup = sys.argv[1], sys.argv[2].encode() + b"\0junk"
def ld(tag, b):
    return bytes([tag, len(b)]) + b
body = b"\x08\x01" + ld(0x7a, ld(0x0a, backup))
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(struct.pack(">I", len(body)) + body)
n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
r = s.recv(n, socket.MSG_WAITALL)
print(r[1] if r[:1] == b"\x08" else 0)
EOF
}
active_sum=$(cat "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" | sha256sum)
assert_eq 1 "$(raw_restore "$BACKUP")" "restore of '$BACKUP<NUL>junk', sent raw, is INVALID_ARGUMENT"
assert_eq "$active_sum" "$(cat "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" | sha256sum)" \
	"and the active set is untouched"
run ctl restore certs-20000101-000000
assert_eq 5 "$RC" "restore of a backup that does not exist is refused"
assert_contains "no backup" "$ERR" "and says there is no such backup"
run ctl restore
assert_eq 1 "$RC" "restore without an id is a usage error"
run ctl restore --latest "$BACKUP"
assert_eq 1 "$RC" "restore with an id and --latest is a usage error"

before=$(disk_state)
assert_exit 0 "restore --dry-run" -- ctl --json restore --dry-run "$BACKUP"
printf '%s' "$OUT" | jsave "$T/rdry.json"
assert_eq "$OLD_SRV" "$(jget would_become_active.server.sha256 "$T/rdry.json")" "restore --dry-run shows the backup's certificate"
assert_eq "$NEW_SRV" "$(jget before.server.sha256 "$T/rdry.json")" "and the active one"
assert_eq "$before" "$(disk_state)" "restore --dry-run changes nothing"

assert_exit 0 "restore $BACKUP" -- ctl --json restore "$BACKUP"
printf '%s' "$OUT" | jsave "$T/res.json"
assert_eq true "$(jget verified "$T/res.json")" "restore: verified over TLS"
serves_now "$NGINX_PORT" "$OLD_SRV" "nginx serves the old certificate again"
BACKUP2=$(jget backup "$T/res.json")
assert_match '^certs-' "$BACKUP2" "restore backed up the set it replaced"
assert_ne "$BACKUP" "$BACKUP2" "into a new backup"
[ -d "$SSL_DIR/$BACKUP" ] || fail "the restored backup is still there"
assert_eq "$NEW_SRV" "$(openssl x509 -in "$SSL_DIR/$BACKUP2/server.crt" -outform DER | sha256sum | cut -d' ' -f1)" \
	"the set restored away (the rotated one) is in $BACKUP2"
agent_curl "$T/old-ca.pem"
assert_eq 0 "$CURL_RC" "the old-only agent connects again after the restore"
agent_curl "$SIM_DIR/$NEVER_ID/trust.pem"
assert_eq 0 "$CURL_RC" "an agent with the bundle connects after the restore too"
ctl --json status | jsave "$T/st.json"
assert_eq "$(printf '%s\n%s\n' "$OLD_CA" "$NEW_CA" | LC_ALL=C sort)" "$(jlines bundle.cas "$T/st.json")" \
	"after the restore the bundle still holds both CAs"

echo "-- restore --latest undoes the restore"
assert_exit 0 "restore --latest" -- ctl --json restore --latest
printf '%s' "$OUT" | jsave "$T/res2.json"
assert_eq "$BACKUP2" "$(jget restored "$T/res2.json")" "--latest picked the newest backup"
serves_now "$NGINX_PORT" "$NEW_SRV" "nginx serves the rotated certificate again"

echo "-- the manual recovery, by hand, is adopted"
cp "$SSL_DIR/$BACKUP"/* "$SSL_DIR/"
nginx_reload
assert_eq "$OLD_SRV" "$(nginx_served_sha256 "$NGINX_PORT")" "after cp certs-*/* and a reload nginx serves the backup's certificate"
agent_curl "$T/old-ca.pem"
assert_eq 0 "$CURL_RC" "and the old-only agent connects"
kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "outside carotated" "$DAEMON_LOG" || fail "the daemon notices the change on SIGHUP"
ok "the daemon logs the change made outside it"
wait_until 5000 bash -c "'$CAROTATECTL' --socket '$SOCK' --json audit --limit 1 | grep -q '\"adopt\"'" ||
	fail "the manual change is audited as adopt" "$(ctl audit --limit 3)"
ok "the manual change is in the audit log as adopt"
ctl --json status | jsave "$T/st.json"
assert_eq "$OLD_CA" "$(jget active.ca.sha256 "$T/st.json")" "status shows the adopted set"
assert_eq "$(printf '%s\n%s\n' "$OLD_CA" "$NEW_CA" | LC_ALL=C sort)" "$(jlines bundle.cas "$T/st.json")" \
	"the bundle keeps the CA the manual change replaced"
ctl audit --verify >/dev/null || fail "the audit chain is intact after the whole procedure"
ok "audit --verify: the chain is intact"
assert_daemon_alive
