# shellcheck shell=bash disable=SC2034
# What the fault tests (test_io_faults.sh, test_disk_full.sh) check after a generate, rotate
# or restore that met a failing file system. Source it after lib.sh, nginx.sh and t_init,
# once the daemon and nginx run: set_sums DIR, backups_list, ca_keys, leftovers, key_matches
# DIR, agent_link, agent_checkin_ok, check_serving WHAT, run_op OP (OP_RC, OP_ERR), prepare OP,
# expected_after OP, check_complete OP WHAT WANT_SUMS.

LEDGER="$STATE_DIR/ledger.db"

# The sums of a set's files in DIR ("- NAME" for an absent file); one sha256sum, no subshells
# beyond the caller's: these run several times per faulted run.
set_sums() {
	local f have=()
	for f in ca.crt server.crt server.key .carotate-set; do
		if [ -f "$1/$f" ]; then have+=("$f"); else printf -- '- %s\n' "$f"; fi
	done
	[ "${#have[@]}" -eq 0 ] || (cd "$1" && sha256sum -- "${have[@]}")
}
backups_list() {
	local d
	for d in "$SSL_DIR"/certs-*; do [ -e "$d" ] && printf '%s ' "${d##*/}"; done
	return 0
}
ca_keys() {
	local k
	for k in "$STATE_DIR"/ca-keys/*; do [ -e "$k" ] && printf '%s ' "${k##*/}"; done
	return 0
}
leftovers() {
	find "$SSL_DIR" "$STATE_DIR" \( -name '.*.tmp' -o -name '.staging-*' -o -name 'swap.journal' \) \
		-print 2>/dev/null
}
key_matches() {
	[ "$(openssl x509 -in "$1/server.crt" -noout -pubkey 2>/dev/null | sha256sum)" = \
		"$(openssl pkey -in "$1/server.key" -pubout 2>/dev/null | sha256sum)" ]
}

# An agent linked once; each check-in through nginx must answer 200 or 304. It trusts the
# published bundle and the live CA: dozens of rotations in a minute push CAs out of the
# bundle (16 at most), and a restore may bring back one of those.
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
# The answers that count as served; with a full state directory the daemon answers 503
# ("ledger unavailable": a check-in is answered only once it is recorded; agents retry).
CHECKIN_CODES="200 304"
AGENT_TOKEN=""
agent_req() {
	cat "$SSL_DIR/ca-bundle.pem" "$SSL_DIR/ca.crt" >"$T/trust.pem" 2>/dev/null || true
	curl -sS --max-time 15 --cacert "$T/trust.pem" \
		--resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" -D "$T/agent.head" -o /dev/null \
		-w '%{http_code}' "$@" 2>"$T/agent.err" || true
}
agent_link() {
	local code
	code=$(agent_req -X POST -H "Authorization: Bearer $KEY" -H "X-Agent-Id: fault-agent" \
		--data-binary '' "https://$NGINX_SERVER_NAME:$NGINX_PORT/carotate/v1/link")
	[ "$code" = 200 ] || fail "the agent links (HTTP 200)" "got $code: $(cat "$T/agent.err")"
	AGENT_TOKEN=$(tr -d '\r' <"$T/agent.head" | awk -F': ' 'tolower($1) == "x-agent-token" { print $2 }')
	[ -n "$AGENT_TOKEN" ] || fail "the link answer carries a token"
}
agent_checkin_ok() {
	local code
	code=$(agent_req -H "Authorization: Bearer $AGENT_TOKEN" -H "X-Agent-Id: fault-agent" \
		"https://$NGINX_SERVER_NAME:$NGINX_PORT/carotate/v1/ca-bundle")
	case " $CHECKIN_CODES " in
	*" $code "*) return 0 ;;
	esac
	t_log "check-in: HTTP $code: $(cat "$T/agent.err")"
	return 1
}

# The checks after every faulted run, whatever its outcome.
check_serving() {
	local what=$1 r
	daemon_alive || fail "$what: carotated is still running" "log: $(tail -n 20 "$DAEMON_LOG")"
	r=$(sqlite3 "$LEDGER" 'PRAGMA integrity_check' 2>&1) || true
	[ "$r" = ok ] || fail "$what: the ledger passes integrity_check" "got: $r"
	socket_answers || fail "$what: the daemon answers status"
	# After a reload, nginx's old workers may accept on TCP for a moment and present the
	# set just replaced, whose CA the trust above may no longer hold when a fault kept it
	# from being retained: poll, as the rotate tests do.
	wait_until 10000 agent_checkin_ok || agent_checkin_ok ||
		fail "$what: an agent check-in through nginx is answered"
	"$NGINX" -q -t -p "$NGINX_DIR/" -c "$NGINX_CONF" 2>"$T/nginx-t.err" ||
		fail "$what: nginx -t passes" "$(cat "$T/nginx-t.err")"
	[ -z "$(leftovers)" ] || fail "$what: no temporary file, staging directory or journal is left" \
		"$(leftovers)"
}

# ---------------------------------------------------------------- one operation

OP_RC=0
OP_ERR=""
# run_op OP: the CLI, under a time limit (exit 124: it hung).
run_op() {
	case "$1" in
	generate) run timeout 120 "$CAROTATECTL" --socket "$SOCK" generate ;;
	rotate) run timeout 120 "$CAROTATECTL" --socket "$SOCK" rotate --force --reason "fault walk" ;;
	restore) run timeout 120 "$CAROTATECTL" --socket "$SOCK" restore --latest ;;
	esac
	OP_RC=$RC
	OP_ERR=$ERR
}

# The state an operation starts from, made without faults.
prepare() {
	case "$1" in
	generate)
		if [ -d "$SSL_DIR/new" ]; then
			run ctl discard
			[ "$RC" -eq 0 ] || fail "discard before generate" "$ERR"
			rm -rf "$SSL_DIR"/discarded-*
		fi
		;;
	rotate)
		if [ ! -d "$SSL_DIR/new" ]; then
			run ctl generate
			[ "$RC" -eq 0 ] || fail "generate before rotate" "$ERR"
		fi
		;;
	restore) ;;
	esac
}

# The sums the operation must leave when it succeeds.
expected_after() {
	case "$1" in
	generate) set_sums "$SSL_DIR" ;;
	rotate) set_sums "$SSL_DIR/new" ;;
	restore)
		set_sums "$SSL_DIR/$(ctl --json restore --latest --dry-run |
			grep -o '"restored": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')"
		;;
	esac
}

# Every file of the op's result is in place: the staged set (generate) or the live one.
check_complete() {
	local op=$1 what=$2 want=$3
	if [ "$op" = generate ]; then
		if ! [ -f "$SSL_DIR/new/ca.crt" ] || ! [ -f "$SSL_DIR/new/server.crt" ] ||
			! [ -f "$SSL_DIR/new/server.key" ] || ! [ -f "$SSL_DIR/new/.carotate-set" ]; then
			fail "$what: the staged set is complete" "$(ls -la "$SSL_DIR/new" 2>&1)"
		fi
		key_matches "$SSL_DIR/new" || fail "$what: the staged key matches the staged certificate"
		[ "$(set_sums "$SSL_DIR")" = "$want" ] || fail "$what: the live set is unchanged"
		# Agents are offered the new CA and the canary serves the staged certificate, or the
		# operator is told they are not.
		if ! grep -qF -- "$(sed -n 2p "$SSL_DIR/new/ca.crt")" "$SSL_DIR/ca-bundle.pem" ||
			! cmp -s "$SSL_DIR/new/server.crt" "$SSL_DIR/canary.crt"; then
			printf '%s' "$OP_ERR" | grep -Fq "could not be published" ||
				fail "$what: the bundle and canary are published, or the CLI warns" \
					"stderr: $OP_ERR"
		fi
	else
		[ "$(set_sums "$SSL_DIR")" = "$want" ] || fail "$what: the live set is the complete new set" \
			"want: $want" "got: $(set_sums "$SSL_DIR")"
		[ ! -e "$SSL_DIR/new" ] || fail "$what: no staged set is left"
	fi
}

# snapshot_state: records what check_unchanged compares ($live, $staged, $backups, $keys; the
# caller declares them local).
snapshot_state() {
	live=$(set_sums "$SSL_DIR")
	staged=$(set_sums "$SSL_DIR/new")
	backups=$(backups_list)
	keys=$(ca_keys)
}

# check_unchanged WHAT: after a failed run, the live and staged sets, the backups and the CA
# keys are as they were before it ($live, $staged, $backups, $keys).
check_unchanged() {
	local what=$1
	[ "$(set_sums "$SSL_DIR")" = "$live" ] || fail "$what: the live set is unchanged" \
		"before: $live" "after:  $(set_sums "$SSL_DIR")" "error: $OP_ERR"
	[ "$(set_sums "$SSL_DIR/new")" = "$staged" ] || fail "$what: the staged set is unchanged" \
		"before: $staged" "after:  $(set_sums "$SSL_DIR/new")" "error: $OP_ERR"
	[ "$(backups_list)" = "$backups" ] || fail "$what: the backups are unchanged" \
		"before: $backups" "after:  $(backups_list)"
	[ "$(ca_keys)" = "$keys" ] || fail "$what: no CA key of an unstaged set is kept" \
		"before: $keys" "after:  $(ca_keys)"
}
