#!/bin/bash
# The shipped nginx files (packaging/nginx/) as an operator meets them, with real nginx.
#
# First day (issue 15, item 6). Reproduction: an operator wired nginx by the README before
# carotated had ever run; `nginx -t` failed ("cannot load certificate .../canary.crt"),
# because only a running daemon published the canary pair. And the snippet's own `listen
# 443` clashed with the agents' server block the proxy already had. Now:
#  - `carotated --init` (run by the packages) makes canary.crt/canary.key: a copy of the
#    active server pair (what start-up publishes) or, with no server set yet, a throwaway
#    placeholder; key 0600; a second run and the daemon's first start leave it alone;
#  - the rendered files pass `nginx -t` after --init, before the daemon ever ran, and not
#    before it;
#  - carotate-locations.conf goes into an operator's existing server block beside its own
#    locations, and that configuration passes `nginx -t`.
# Hardening (item 7). Reproduction: nginx created the `listen unix:` check sockets 0666 in
# /run/carotate (0755), so any local user reached the agents' TLS server block through
# them; the agents' block answered whatever its other locations served; TLS 1.2 took CBC
# and SHA-1 suites; links were limited only inside the daemon; and an agent's own
# X-Forwarded-For reached the worker. Now, against a stub agent socket that records what
# nginx passes on:
#  - the check sockets' directory is 0700: another user cannot connect (root only);
#  - `/` and any other path on the agents' block get nginx's 404;
#  - beyond the burst, links get 429 from nginx on both listeners;
#  - TLS 1.1 and a TLS 1.2 CBC/SHA-1 suite are refused, an ECDHE AEAD suite is accepted;
#  - an X-Forwarded-For an agent sends does not reach the worker.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_init
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
nginx_setup

# ---------------------------------------------------------------- --init, before any start
make_active_set
write_config
if nginx_check_config; then
	fail "nginx -t passes without canary.crt: the test cannot show what --init fixes"
fi
assert_file_contains "canary.crt" "$NGINX_DIR/t.out" "without --init, nginx -t fails on the missing canary.crt"

run "$CAROTATED" --init -c "$CONF"
assert_eq 0 "$RC" "carotated --init succeeds ($ERR)"
assert_contains "written" "$OUT" "and says it wrote the pair"
assert_eq "$(cat "$SSL_DIR/server.crt")" "$(cat "$SSL_DIR/canary.crt")" \
	"with an active set, the canary is the active certificate (what start-up publishes)"
assert_eq "600" "$(stat -c %a "$SSL_DIR/canary.key")" "canary.key is 0600"
assert_eq "644" "$(stat -c %a "$SSL_DIR/canary.crt")" "canary.crt is 0644"
assert_exit 0 "nginx -t passes after --init, before the daemon ever ran" -- nginx_check_config
before=$(stat -c '%i %Y' "$SSL_DIR/canary.crt" "$SSL_DIR/canary.key")
run "$CAROTATED" --init -c "$CONF"
assert_eq 0 "$RC" "a second --init succeeds"
assert_contains "already current" "$OUT" "and changes nothing"
assert_eq "$before" "$(stat -c '%i %Y' "$SSL_DIR/canary.crt" "$SSL_DIR/canary.key")" \
	"a second --init leaves the files alone"
assert_exit 1 "--init with --check-config is a usage error" -- "$CAROTATED" --init --check-config -c "$CONF"
start_daemon
stop_daemon
assert_eq "$before" "$(stat -c '%i %Y' "$SSL_DIR/canary.crt" "$SSL_DIR/canary.key")" \
	"the daemon's first start keeps what --init wrote"

# A proxy without any server set yet: a placeholder no agent trusts, and nginx accepts it.
mkdir -m 0755 "$T/ssl-empty"
sed "s|^dir = .*|dir = $T/ssl-empty|" "$CONF" >"$T/empty.conf"
run "$CAROTATED" --init -c "$T/empty.conf"
assert_eq 0 "$RC" "--init on an empty SSL directory succeeds ($ERR)"
assert_eq "canary.crt canary.key" "$(ls "$T/ssl-empty" | tr '\n' ' ' | sed 's/ $//')" \
	"and writes the canary pair only"
assert_eq "600" "$(stat -c %a "$T/ssl-empty/canary.key")" "the placeholder key is 0600"
assert_eq "$(openssl x509 -in "$T/ssl-empty/canary.crt" -noout -pubkey)" \
	"$(openssl pkey -in "$T/ssl-empty/canary.key" -pubout)" "the placeholder key matches its certificate"
assert_contains "placeholder.carotate.invalid" "$(cert_subject "$T/ssl-empty/canary.crt")" \
	"the placeholder names no real host"
run openssl verify -CAfile "$SSL_DIR/ca.crt" "$T/ssl-empty/canary.crt"
assert_ne 0 "$RC" "the placeholder is not trusted by the active CA"
mkdir -m 0755 "$T/ssl-bad"
chmod 0777 "$T/ssl-bad"
sed "s|^dir = .*|dir = $T/ssl-bad|" "$CONF" >"$T/bad.conf"
run "$CAROTATED" --init -c "$T/bad.conf"
assert_eq 1 "$RC" "--init refuses an SSL directory others may write"
assert_eq "" "$(ls "$T/ssl-bad")" "and writes nothing there"
run "$CAROTATED" --init -c "$T/missing.conf"
assert_eq 1 "$RC" "--init without a configuration fails"

# ---------------------------------------------------------------- an existing proxy
# The operator's own agents' server block, with its own locations, includes
# carotate-locations.conf; carotate-canary.conf sits at the http level.
cat >"$T/existing.conf" <<EOF
server {
    listen 127.0.0.1:PORT ssl;
    server_name $NGINX_SERVER_NAME;
    ssl_certificate     $SSL_DIR/server.crt;
    ssl_certificate_key $SSL_DIR/server.key;
    location /app/ { return 200 "the operator's app\n"; }
    include $NGINX_DIR/carotate-locations.conf;
}
EOF
nginx_check_config || fail "nginx -t of the shipped files" "$(cat "$NGINX_DIR/t.out")"
sed -i "s|PORT|$NGINX_PORT|" "$T/existing.conf"
sed -i "s|include $NGINX_DIR/carotate.conf;|include $T/existing.conf;|" "$NGINX_CONF"
assert_file_contains "include $T/existing.conf;" "$NGINX_CONF" "the operator's block replaces carotate.conf"
run "$NGINX" -t -p "$NGINX_DIR/" -c "$NGINX_CONF"
assert_eq 0 "$RC" "an existing server block with carotate-locations.conf passes nginx -t ($ERR)"
if grep -q 'listen unix:.*proxy-check' "$NGINX_DIR/carotate.conf"; then
	fail "carotate.conf has its own check listener: it would clash with the include's"
fi

# ---------------------------------------------------------------- hardening, with a stub worker
# A stub for both agent sockets: records each request's headers, answers 401 as the worker
# does to a bad bearer.
cat >"$T/stub.py" <<'EOF'
import os, socketserver, sys
class H(socketserver.StreamRequestHandler):
    def handle(self):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = self.rfile.readline()
            if not line:
                return
            head += line
        with open(sys.argv[2], "ab") as f:
            f.write(head)
        self.wfile.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 512
for p in sys.argv[1].split(","):
    if os.path.exists(p):
        os.unlink(p)
servers = [S(p, H) for p in sys.argv[1].split(",")]
for p in sys.argv[1].split(","):
    os.chmod(p, 0o666)
import threading
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
EOF
"$PY" "$T/stub.py" "$RUN_DIR/agent.sock,$RUN_DIR/agent-canary.sock" "$T/stub.requests" &
t_track_pid $!
wait_until 5000 test -S "$RUN_DIR/agent-canary.sock" || fail "the stub agent sockets listen"
NGINX_LINK_LIMIT=shipped
nginx_start
assert_file_contains "rate=10r/s;" "$NGINX_DIR/carotate-canary.conf" "the shipped link rate is in force"
URL="https://127.0.0.1:$NGINX_PORT"
CURL=(curl -sk --resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" -o /dev/null -w '%{http_code}')

assert_eq 401 "$("${CURL[@]}" "$URL/carotate/v1/ca-bundle")" "/carotate/ reaches the worker"
# nginx's default root (html/ under its prefix) holds a page, as /usr/share/nginx/html does.
mkdir -p "$NGINX_DIR/html/admin"
echo "a page nginx would serve" | tee "$NGINX_DIR/html/index.html" >"$NGINX_DIR/html/admin/index.html"
for path in / /index.html /admin/ /carotatex; do
	assert_eq 404 "$("${CURL[@]}" "$URL$path")" "$path on the agents' block: nginx's 404"
done

: >"$T/stub.requests"
code=$("${CURL[@]}" -H 'X-Forwarded-For: 203.0.113.9' -H 'X-Agent-Id: a1' "$URL/carotate/v1/ca-bundle")
assert_eq 401 "$code" "a check-in with its own X-Forwarded-For reaches the worker"
assert_file_contains "X-Agent-Id: a1" "$T/stub.requests" "the worker got the agent's headers"
if grep -qi '^X-Forwarded-For' "$T/stub.requests"; then
	fail "X-Forwarded-For reached the worker" "$(cat "$T/stub.requests")"
fi
ok "no X-Forwarded-For reaches the worker (the agent's is dropped, none is added)"

# Links: 10/s per address with bursts of 100; 200 at once get 429s, from nginx.
for port in "$NGINX_PORT" "$NGINX_CANARY_PORT"; do
	: >"$T/stub.requests"
	curl -sk -Z --parallel-max 50 -X POST -o /dev/null -w '%{http_code}\n' \
		"https://127.0.0.1:$port/carotate/v1/link?n=[1-200]" >"$T/codes" 2>/dev/null || true
	n429=$(grep -c '^429$' "$T/codes" || true)
	n401=$(grep -c '^401$' "$T/codes" || true)
	other=$(grep -cvE '^(429|401)$' "$T/codes" || true)
	t_log "port $port: 200 links at once: $n401 x 401 (worker), $n429 x 429 (nginx), $other other"
	[ "$other" -eq 0 ] || fail "every link got 401 from the worker or 429 from nginx" "$(sort "$T/codes" | uniq -c)"
	[ "$n429" -ge 50 ] || fail "links beyond the burst get 429 from nginx (port $port)" "$(sort "$T/codes" | uniq -c)"
	assert_eq "$n401" "$(grep -c '^POST /carotate/v1/link' "$T/stub.requests")" \
		"the refused links never reached the worker"
done
ok "links beyond the burst get 429 from nginx on both listeners"
assert_eq 401 "$("${CURL[@]}" "$URL/carotate/v1/ca-bundle")" "check-ins are not rate-limited"

for port in "$NGINX_PORT" "$NGINX_CANARY_PORT"; do
	run openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null
	assert_ne 0 "$RC" "TLS 1.1 is refused on port $port"
	run openssl s_client -connect "127.0.0.1:$port" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA </dev/null
	assert_ne 0 "$RC" "a TLS 1.2 CBC/SHA-1 suite is refused on port $port"
	run openssl s_client -connect "127.0.0.1:$port" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 </dev/null
	assert_eq 0 "$RC" "TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256 is accepted on port $port"
done

assert_eq "700" "$(stat -c %a "$NGINX_CHECK_DIR")" "the check sockets' directory is 0700"
for sock in "$NGINX_CHECK_SOCK" "$NGINX_CANARY_CHECK_SOCK"; do
	[ -S "$sock" ] || fail "nginx listens on $sock"
	[ -n "$(nginx_served_sha256 "unix:$sock")" ] || fail "its owner reaches $sock"
done
if [ "$(id -u)" -ne 0 ]; then
	ok "(another user's access to the check sockets needs root: skipped)"
else
	OTHER=carotate-t-other
	t_user "$OTHER"
	for sock in "$NGINX_CHECK_SOCK" "$NGINX_CANARY_CHECK_SOCK"; do
		run setpriv --reuid "$OTHER" --regid "$OTHER" --clear-groups \
			openssl s_client -unix "$sock" -servername "$NGINX_SERVER_NAME" </dev/null
		assert_ne 0 "$RC" "user $OTHER cannot connect to $sock"
		assert_contains "Permission denied" "$ERR$OUT" "refused by the directory's mode"
	done
fi
nginx_stop
