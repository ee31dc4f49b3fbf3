#!/bin/bash
# carotatectl check, the monitoring plugin (issue 18), with real nginx. Before it there was no
# way for Nagios or Icinga to learn that the proxy's certificate expires in ten days, that a
# migration stopped moving or that the last rotate was rolled back: an operator found out
# when agents failed. Now:
#  - a healthy proxy is OK (exit 0), one line "CAROTATE OK - ... | perfdata";
#  - bad options (an unknown one, a bad duration, --warn shorter than --critical, an operand)
#    exit 3, UNKNOWN by the plugin convention, with a message on stderr;
#  - a staged set whose acknowledged percentage does not move for [agents] active_within
#    (4s here) is WARNING, and the summary names it;
#  - generate --server-days 10, rotate to it: WARNING (exit 1) with server_days perfdata;
#    --warn 5d makes it OK, --critical 20d CRITICAL; --json has the same as keys;
#  - status shows "expires in 9 days" for that certificate, and --json its days as numbers;
#  - a refused rotate whose --reason reads "rolled_back=yes" is not taken for a roll back;
#  - a rotate rolled back (nginx refuses the staged key) is WARNING, naming it;
#  - the daemon stopped: UNKNOWN, exit 3, human and --json.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

t_init
make_active_set
nginx_write_daemon_config
sed -i 's/^active_within = .*/active_within = 4s/' "$CONF"
start_daemon
nginx_start

echo "-- a healthy proxy"
assert_exit 0 "check on a healthy proxy exits 0" -- ctl check
assert_match '^CAROTATE OK - .* \| server_days=39[0-9]\.[0-9];30\.0;7\.0 ca_days=36[0-9][0-9]\.[0-9];180\.0;30\.0$' \
	"$OUT" "one plugin line with perfdata"
assert_eq 1 "$(printf '%s\n' "$OUT" | wc -l)" "exactly one line"

echo "-- bad options are UNKNOWN (exit 3)"
for args in "--warn 1d --critical 2d" "--warn soon" "--critical 5x" "--bogus" "extra" \
	"--warn 1d --warn 2d" "--warn 36501d"; do
	# shellcheck disable=SC2086 # the words are the arguments
	run ctl check $args
	assert_eq 3 "$RC" "check $args exits 3"
	assert_contains "check:" "$ERR" "check $args says why on stderr"
done
assert_exit 0 "check --help" -- ctl check --help
assert_contains "3 UNKNOWN" "$OUT" "its help names the plugin exit codes"

echo "-- a staged migration that does not move for active_within"
assert_exit 0 "generate --server-days 10" -- ctl generate --server-days 10
stuck() {
	run ctl check
	[ "$RC" = 1 ] && case $OUT in *"stuck at 0 %"*) return 0 ;; esac
	return 1
}
wait_until 15000 stuck || fail "check turns WARNING once the percentage did not move for 4s" "$OUT"
ok "check turns WARNING once the percentage did not move for 4s"
assert_match '^CAROTATE WARNING - staged migration stuck at 0 % acknowledged' "$OUT" "the summary names it"
assert_contains "active_within 4s" "$OUT" "and the window it was judged by"
assert_contains "acked_pct=0%;;;0;100" "$OUT" "perfdata has the acknowledged percentage"
case $OUT in *"canary"*) fail "the canary listener was confirmed: no canary finding" "$OUT" ;; esac
ok "the canary listener was confirmed: no canary finding"

echo "-- a server certificate with 10 days left"
assert_exit 0 "rotate --force" -- ctl rotate --force --reason "check test"
assert_exit 1 "check exits 1 (WARNING)" -- ctl check
assert_match '^CAROTATE WARNING - server certificate expires in (9\.9|10\.0) days \(' "$OUT" "the summary says when"
assert_match ' \| server_days=(9\.9|10\.0);30\.0;7\.0 ca_days=' "$OUT" "perfdata: server_days with its thresholds"
case $OUT in *acked_pct*) fail "nothing staged: no acked_pct" "$OUT" ;; esac
ok "nothing staged: no acked_pct"
assert_exit 0 "--warn 5d: OK" -- ctl check --warn 5d
assert_match '^CAROTATE OK - ' "$OUT" "OK line"
assert_match 'server_days=(9\.9|10\.0);5\.0;' "$OUT" "the thresholds given are in the perfdata"
# The last swap is read from the audit log, whose records also hold an admin's --reason: a
# refused rotate whose reason spells an outcome must not be taken for a swap rolled back.
run ctl rotate --force --reason 'x" verified=no rolled_back=yes'
assert_eq 3 "$RC" "a rotate with nothing staged is refused (exit 3)"
assert_exit 0 "check is still OK: a reason that reads rolled_back=yes is not an outcome" -- \
	ctl check --warn 5d
assert_match '^CAROTATE OK - ' "$OUT" "OK line"
assert_exit 2 "--critical 20d: CRITICAL" -- ctl check --critical 20d
assert_match '^CAROTATE CRITICAL - server certificate expires' "$OUT" "CRITICAL line"
assert_exit 1 "--json: exit 1" -- ctl --json check
printf '%s' "$OUT" | jsave "$T/check.json"
assert_eq WARNING "$(jget state "$T/check.json")" "json: state"
assert_eq 1 "$(jget exit_code "$T/check.json")" "json: exit_code"
assert_eq server_certificate "$(jget findings.0.check "$T/check.json")" "json: the finding"
assert_eq WARNING "$(jget findings.0.state "$T/check.json")" "json: its state"
assert_match '^(9\.9|10\.0)' "$(jget perfdata.server_days "$T/check.json")" "json: perfdata.server_days"
assert_eq null "$(jget perfdata.acked_pct "$T/check.json")" "json: no acked_pct when nothing is staged"
assert_eq 2592000 "$(jget thresholds.warn "$T/check.json")" "json: thresholds.warn in seconds"
assert_eq 15552000 "$(jget thresholds.ca_warn "$T/check.json")" "json: thresholds.ca_warn ([renew] ca_warn)"

echo "-- status: expires in N days"
assert_exit 0 "status" -- ctl status
assert_match 'warning: +server certificate expires in (9|10) days' "$OUT" "status warns of the server certificate"
case $OUT in *"CA expires"*) fail "the CA is outside ca_warn: no warning" "$OUT" ;; esac
ok "the CA is outside ca_warn: no warning"
ctl --json status | jsave "$T/st.json"
assert_eq server "$(jget expiring.0.certificate "$T/st.json")" "status --json: expiring names the server certificate"
assert_match '^(9|10)$' "$(jget expiring.0.days_left "$T/st.json")" "status --json: its days as a number"
assert_match '^36[0-9][0-9]$' "$(jget active.ca_days_left "$T/st.json")" "status --json: active.ca_days_left"

echo "-- status: the windows of [renew]"
stop_daemon
printf '\n[renew]\nbefore = 5d\nca_warn = 3650d\n' >>"$CONF"
start_daemon
assert_exit 0 "status with [renew] before = 5d, ca_warn = 3650d" -- ctl status
assert_match 'warning: +CA expires in 36[0-9][0-9] days' "$OUT" "status warns of the CA inside ca_warn"
case $OUT in *"server certificate expires"*) fail "the server certificate is outside before: no warning" "$OUT" ;; esac
ok "the server certificate is outside [renew] before: no warning"
stop_daemon
sed -i '/^\[renew\]$/,$d' "$CONF"
start_daemon

echo "-- a rotate rolled back"
assert_exit 0 "generate" -- ctl generate
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$SSL_DIR/new/server.key.tmp" 2>/dev/null
mv "$SSL_DIR/new/server.key.tmp" "$SSL_DIR/new/server.key"
chmod 0600 "$SSL_DIR/new/server.key"
run ctl rotate --force --reason "rollback for check"
assert_eq 6 "$RC" "the rotate nginx refuses exits 6"
assert_exit 1 "check after the roll back: WARNING" -- ctl check --warn 5d
assert_match '^CAROTATE WARNING - last rotate \(.*\) was rolled back' "$OUT" "the summary names the roll back"
ctl --json check --warn 5d | jsave "$T/rb.json" || true
assert_eq last_swap "$(jget findings.0.check "$T/rb.json")" "json: the finding is last_swap"

echo "-- the daemon stopped"
stop_daemon
assert_exit 3 "check without a daemon exits 3" -- ctl check
assert_match '^CAROTATE UNKNOWN - ' "$OUT" "UNKNOWN line on stdout"
assert_contains "check:" "$ERR" "and why on stderr"
run ctl --json check
assert_eq 3 "$RC" "--json without a daemon exits 3"
printf '%s' "$OUT" | jsave "$T/unk.json"
assert_eq UNKNOWN "$(jget state "$T/unk.json")" "json: state UNKNOWN"
assert_eq 3 "$(jget exit_code "$T/unk.json")" "json: exit_code 3"
