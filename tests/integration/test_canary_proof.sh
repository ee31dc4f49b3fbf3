#!/bin/bash
# A canary check-in proves trust in the staged CA only when the canary listener
# really serves the staged certificate. With a reload that silently does
# nothing (nginx -s reload exits 0 even when it keeps the old files), the
# canary still serves the active certificate: an agent that trusts only the
# old CA gets through, and must not be counted as verified.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
t_init
make_active_set
nginx_write_daemon_config
# The reload the daemon runs does nothing: nginx keeps serving what it had.
sed -i "s|^reload = .*|reload = /bin/true|" "$CONF"
start_daemon
nginx_start
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")


tls_req "$NGINX_PORT" "$SSL_DIR/ca.crt" POST /carotate/v1/link -H "Authorization: Bearer $KEY" \
	-H "X-Agent-Id: old-only" --data-binary ''
assert_eq 200 "$CODE" "link"
TOKEN=$(hdr X-Agent-Token)
ETAG=$(hdr ETag | tr -d '"')

ctl generate >/dev/null || fail "generate"
# The agent fetches the new bundle but keeps trusting only the old CA.
tls_req "$NGINX_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle -H "Authorization: Bearer $TOKEN" \
	-H "X-Agent-Id: old-only" -H "If-None-Match: \"$ETAG\""
assert_eq 200 "$CODE" "check-in after generate: the new bundle"
NEW_ETAG=$(hdr ETag | tr -d '"')

# The daemon's own TLS check of the canary fails (it still serves the active certificate).
wait_until 15000 grep -q "does not serve the staged certificate" "$DAEMON_LOG" ||
	fail "the daemon did not notice that the canary serves the old certificate"
ok "the daemon noticed the canary still serves the old certificate"

tls_req "$NGINX_CANARY_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle \
	-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: old-only" -H "If-None-Match: \"$NEW_ETAG\""
assert_eq 304 "$CODE" "the old-CA-only agent gets through the stale canary"
ctl --json report >"$T/r.json"
assert_eq 0 "$(json_get verified "$T/r.json")" "...and is not counted as verified"
assert_eq false "$(json_get canary_confirmed "$T/r.json")" "report: canary not confirmed"
assert_eq 1 "$(json_get acknowledged "$T/r.json")" "it did acknowledge the bundle"

# Once nginx really serves the staged certificate (a real reload) and the daemon checks
# again (SIGHUP), a canary check-in by an agent trusting the new bundle counts.
nginx_reload
kill -HUP "$DAEMON_PID"
wait_until 15000 grep -q "serves the staged certificate: canary check-ins now count" "$DAEMON_LOG" ||
	fail "the daemon did not confirm the canary after a real reload"
cp "$SSL_DIR/ca-bundle.pem" "$T/new-trust.pem"
tls_req "$NGINX_CANARY_PORT" "$T/new-trust.pem" GET /carotate/v1/ca-bundle \
	-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: old-only" -H "If-None-Match: \"$NEW_ETAG\""
assert_eq 304 "$CODE" "canary check-in trusting the new bundle"
ctl --json report >"$T/r.json"
assert_eq true "$(json_get canary_confirmed "$T/r.json")" "report: canary confirmed"
assert_eq 1 "$(json_get verified "$T/r.json")" "now verified"
tls_req "$NGINX_CANARY_PORT" "$SSL_DIR/ca.crt" GET /carotate/v1/ca-bundle \
	-H "Authorization: Bearer $TOKEN" -H "X-Agent-Id: old-only"
case "$CODE" in curl-*) ok "the old CA alone no longer gets through the canary ($CODE)" ;;
*) fail "an agent trusting only the old CA got through the real canary" "HTTP $CODE" ;; esac
