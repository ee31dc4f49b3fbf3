#!/bin/bash
# carotatectl renew (issue 18), with real nginx. Before it, the only way to replace a server
# certificate that expires in ten days was a whole CA rotation through the agent gate: the
# call did not exist (carotatectl: unknown command). Now:
#  - a custom active set (made with the openssl CLI; carotated holds no CA key): renew alone
#    exits 3 and says to use --cert/--key; a leaf signed by another CA, a key that is not the
#    leaf's, or an expired leaf exit 5 with the SSL and state directories unchanged; a good
#    leaf under the active CA given with --cert/--key goes live (nginx serves it);
#  - generate --server-days 10, rotate to it: check is WARNING; renew --dry-run shows the
#    certificate that would be made and changes nothing; renew --if-expires-within 30d renews:
#    nginx serves a new leaf issued by the same CA, the bundle id is the same, curl with the
#    agents' unchanged bundle connects, check is OK, the backup is labelled renew, the audit
#    record carries verified=yes rolled_back=no; a second renew --if-expires-within 30d
#    changes nothing and says when the certificate expires;
#  - a reload command that does nothing: the proxy keeps serving the old leaf, renew rolls
#    back by itself (exit 6, "rolled back"), and nginx still serves the previous leaf.
#  - the Prometheus textfile: before, it had no metric for renewals, so a failing renewal
#    timer was invisible to the monitoring that reads it. Now refusals, dry runs and skipped
#    renewals leave no carotate_last_renew_* sample (nothing changed); a renewal that went
#    live writes carotate_last_renew_success 1 and its time, one rolled back writes 0; after
#    a restart (the textfile removed) the daemon writes them again from the audit log.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"

t_init
make_active_set
nginx_write_daemon_config
mkdir -m 0755 "$T/metrics"
PROM="$T/metrics/carotate.prom"
sed -i "s|^textfile =.*|textfile = $PROM|" "$CONF"
start_daemon
nginx_start

# serving SHA WHAT: nginx serves the leaf SHA within 10 s.
serving() {
	wait_until 10000 _nginx_serving "$NGINX_PORT" "$1" ||
		fail "$2" "want $1" "served $(served)"
	ok "$2"
}
# renew_metrics SUCCESS AFTER: the textfile shows carotate_last_renew_success SUCCESS with a
# timestamp of AFTER or later (rewritten at most once a second after a change).
renew_metrics() {
	grep -qx "carotate_last_renew_success $1" "$PROM" 2>/dev/null &&
		[ "$(awk '$1 == "carotate_last_renew_timestamp_seconds" {print $2}' "$PROM")" -ge "$2" ] \
			2>/dev/null
}
assert_renew_metrics() {
	wait_until 5000 renew_metrics "$1" "$2" ||
		fail "$3" "$(grep last_renew "$PROM" 2>/dev/null)"
	ok "$3"
}
bundle_id() { ctl --json status >"$T/st.json" && json_get bundle.id "$T/st.json"; }
active_leaf() { ctl --json status >"$T/st.json" && json_get active.server.sha256 "$T/st.json"; }

echo "-- a custom set: carotated holds no CA key"
snapshot_disk >"$T/before"
run ctl renew
assert_eq 3 "$RC" "renew of a custom set without --cert/--key exits 3"
assert_contains "--cert FILE --key FILE" "$ERR" "the message says what to do"
assert_unchanged "$T/before" "renew refused"

echo "-- bad leaves exit 5, the tree unchanged"
W="$PKI_DIR/renew"
pki_make_ca "$W/other" "another CA"
pki_make_server "$W/foreign" "$W/other" proxy.test "DNS:proxy.test,IP:127.0.0.1"
pki_make_server "$W/good" "$PKI_DIR/active" proxy.test "DNS:proxy.test,IP:127.0.0.1"
pki_make_server "$W/good2" "$PKI_DIR/active" proxy.test "DNS:proxy.test,IP:127.0.0.1"
# Expired: valid from 3 days ago for 1 day.
mkdir -p "$W/expired"
(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$W/expired/server.key" 2>/dev/null)
openssl req -new -key "$W/expired/server.key" -subj /CN=proxy.test -out "$W/expired/csr" \
	-config "$PKI_DIR/active/ca.ext" 2>/dev/null
openssl x509 -req -in "$W/expired/csr" -CA "$PKI_DIR/active/ca.crt" -CAkey "$PKI_DIR/active/ca.key" \
	-set_serial 0x1234 -not_before "$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)" \
	-not_after "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" -sha256 \
	-extfile "$W/good/server.ext" -extensions v3_srv -out "$W/expired/server.crt" 2>/dev/null ||
	openssl x509 -req -in "$W/expired/csr" -CA "$PKI_DIR/active/ca.crt" \
		-CAkey "$PKI_DIR/active/ca.key" -set_serial 0x1234 -days -1 -sha256 \
		-extfile "$W/good/server.ext" -extensions v3_srv -out "$W/expired/server.crt"
run ctl renew --cert "$W/foreign/server.leaf.crt" --key "$W/foreign/server.key"
assert_eq 5 "$RC" "a leaf signed by another CA exits 5"
assert_unchanged "$T/before" "foreign leaf refused"
run ctl renew --cert "$W/good/server.leaf.crt" --key "$W/good2/server.key"
assert_eq 5 "$RC" "a key that is not the leaf's exits 5"
assert_unchanged "$T/before" "mismatched key refused"
run ctl renew --cert "$W/expired/server.crt" --key "$W/expired/server.key"
assert_eq 5 "$RC" "an expired leaf exits 5"
assert_unchanged "$T/before" "expired leaf refused"
assert_eq "renew INVALID_ARGUMENT" "$(last_audit)" "the refusal is audited"
wait_until 5000 test -s "$PROM" || fail "no metrics textfile"
sleep 1.2 # a rewrite after the refusals would come by now
assert_file_contains "# TYPE carotate_last_renew_success gauge" "$PROM" "metrics: the TYPE line"
assert_file_contains "# HELP carotate_last_renew_timestamp_seconds " "$PROM" "metrics: the HELP line"
if grep -q '^carotate_last_renew' "$PROM"; then
	fail "refused renewals changed nothing, yet the textfile has a last renewal" \
		"$(grep last_renew "$PROM")"
fi
ok "metrics: no last renewal after refusals only"

echo "-- a good custom leaf under the active CA"
bid=$(bundle_id)
t0=$(date +%s)
assert_exit 0 "renew --cert --key" -- ctl renew --cert "$W/good/server.leaf.crt" --key "$W/good/server.key"
serving "$(leaf_sha "$W/good/server.leaf.crt")" "nginx serves the custom renewed leaf"
assert_eq "$bid" "$(bundle_id)" "the bundle id is unchanged"
assert_renew_metrics 1 "$t0" "metrics: the custom renewal succeeded"

echo "-- a generated set with 10 days left"
assert_exit 0 "generate --server-days 10" -- ctl generate --server-days 10
assert_exit 0 "rotate --force" -- ctl rotate --force --reason "renew test"
run ctl check
assert_eq 1 "$RC" "check is WARNING with 10 days left"
assert_contains "server_days=" "$OUT" "perfdata present"
cp "$SSL_DIR/ca-bundle.pem" "$T/agent-bundle.pem"
old=$(active_leaf)
bid=$(bundle_id)
ca_before=$(cert_der_sha256 "$SSL_DIR/ca.crt")

echo "-- dry run"
snapshot_disk >"$T/before"
assert_exit 0 "renew --dry-run" -- ctl renew --dry-run --server-days 90
assert_contains "would become active:" "$OUT" "it shows the certificate that would be made"
assert_unchanged "$T/before" "dry run"

echo "-- renew --if-expires-within 30d renews"
sleep 1.1 # the timestamp must move
t0=$(date +%s)
assert_exit 0 "renew --if-expires-within 30d" -- ctl --json renew --if-expires-within 30d
assert_eq true "$(json_get verified <<<"$OUT")" "verified"
new=$(active_leaf)
assert_ne "$old" "$new" "a new leaf is active"
serving "$new" "nginx serves the new leaf"
openssl s_client -connect "127.0.0.1:$NGINX_PORT" -servername proxy.test </dev/null 2>/dev/null |
	openssl x509 -noout -issuer -nameopt RFC2253 >"$T/issuer"
assert_eq "issuer=$(cert_subject "$SSL_DIR/ca.crt")" "$(cat "$T/issuer")" "its issuer is the same CA"
assert_eq "$ca_before" "$(cert_der_sha256 "$SSL_DIR/ca.crt")" "ca.crt is the same certificate"
assert_eq "$bid" "$(bundle_id)" "the bundle id is the same before and after"
agent_curl() {
	CURL_RC=0
	curl -sS --max-time 15 --cacert "$1" --resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" \
		-o /dev/null "https://$NGINX_SERVER_NAME:$NGINX_PORT/" 2>"$T/curl.err" || CURL_RC=$?
}
agent_curl "$T/agent-bundle.pem"
assert_eq 0 "$CURL_RC" "curl with the agents' unchanged bundle connects ($(cat "$T/curl.err"))"
assert_exit 0 "check is OK" -- ctl check
assert_match '^CAROTATE OK - ' "$OUT" "OK line"
ctl --json backups >"$T/b.json"
assert_eq renew "$(json_get backups.0.reason "$T/b.json")" "the backup is labelled renew"
ctl --json audit --limit 1 >"$T/a.json"
assert_contains "verified=yes rolled_back=no" "$(json_get records.0.detail "$T/a.json")" \
	"the audit detail carries the outcome"
assert_renew_metrics 1 "$t0" "metrics: success 1 and the renewal's time"
openssl x509 -in "$SSL_DIR/server.crt" -noout -checkend $((380 * 86400)) >/dev/null ||
	fail "the renewed leaf has the default 397 days"
ok "the renewed leaf has the default 397 days"

echo "-- a second renew does nothing"
snapshot_disk >"$T/before"
assert_exit 0 "renew --if-expires-within 30d again" -- ctl renew --if-expires-within 30d
assert_contains "expires" "$OUT" "it says when the certificate expires"
assert_contains "nothing to renew" "$OUT" "and that nothing was done"
assert_unchanged "$T/before" "not due"

echo "-- renew --if-due: the window is the daemon's [renew] before"
assert_exit 0 "renew --if-due with [renew] before at its default (30d): not due" -- ctl renew --if-due
assert_contains "([renew] before): nothing to renew" "$OUT" "it says whose window it used"
assert_unchanged "$T/before" "--if-due, not due"
assert_exit 1 "--if-due with --if-expires-within: a usage error" -- \
	ctl renew --if-due --if-expires-within 30d
printf '\n[renew]\nbefore = 400d\n' >>"$CONF"
kill -HUP "$DAEMON_PID"
sleep 1
leaf_before=$(active_leaf)
assert_exit 0 "renew --if-due with [renew] before = 400d renews the 397-day leaf" -- ctl renew --if-due
assert_ne "$leaf_before" "$(active_leaf)" "a new leaf is active"
ctl --json audit --limit 1 >"$T/a.json"
assert_contains "if_due=yes" "$(json_get records.0.detail "$T/a.json")" "the audit record says --if-due"
sed -i '/^\[renew\]$/,$d' "$CONF"
kill -HUP "$DAEMON_PID"
sleep 1

echo "-- roll back when the reload does nothing"
sed -i "s|^reload = .*|reload = /bin/true|" "$CONF"
kill -HUP "$DAEMON_PID"
sleep 1
old=$(active_leaf)
t0=$(date +%s)
run ctl renew
assert_eq 6 "$RC" "renew whose leaf the proxy does not serve exits 6"
assert_contains "rolled back" "$ERR" "the report says it rolled back"
assert_eq "$old" "$(active_leaf)" "the previous leaf is active again"
serving "$old" "nginx still serves the previous leaf"
ctl --json audit --limit 1 >"$T/a.json"
assert_contains "rolled_back=yes" "$(json_get records.0.detail "$T/a.json")" "the roll back is audited"
assert_renew_metrics 0 "$t0" "metrics: success 0 after the roll back"

echo "-- after a restart, the last renewal comes from the audit log"
stop_daemon
rm -f "$PROM"
start_daemon
when=$(date -u -d "$(json_get records.0.time "$T/a.json")" +%s)
assert_renew_metrics 0 "$when" "metrics: success 0 again after the restart"
assert_file_contains "carotate_last_renew_timestamp_seconds $when" "$PROM" \
	"metrics: the time of the audit record"

