#!/bin/bash
# The certificate sets, the backups and the ledger survive a power cut, not only a kill
# (issue 19). A kill keeps the page cache; a power cut loses every write not yet flushed, and
# the disk may have done the writes between two flushes in any order.
#
# The SSL and state directories live on a small ext4 (then XFS) image on a loop device over
# logfs (tests/powerloss/logfs.c), which logs every block write and flush. Recorded, with a
# MARK in the log after each reply reached the client: the daemon's first start on an empty
# state directory, agents linking through nginx, generate, a burst of check-ins that
# acknowledge the staged CA (each "ack-sent ID" before the request, "ack-ok ID" once answered),
# the gated rotate, renew, restore, generate and discard, retire, and backups pruned past
# [backups] keep = 2. Then for every flush point (the log replayed up to and including a FLUSH:
# what the disk held when the power went just after it) the image is rebuilt
# (tests/powerloss/replay), repaired as a reboot does (e2fsck -fy; XFS: its log replayed by a
# mount, then xfs_repair -n), mounted, and the daemon started on it. It must recover, and:
#  - the active set is whole and one of the two the cut lies between (the state after the last
#    answered operation, or after the one in flight), its key matches its certificate;
#  - the staged set is whole (one the run staged) or absent;
#  - every certs-* backup matches its manifest; no journal or temporary file is left;
#  - the ledger passes PRAGMA integrity_check; the bundle holds the active CA;
#  - an operation whose reply reached the client survives (the first point above);
#  - (the ledger under power loss) every acknowledgement answered to an agent before the cut is
#    in the ledger, and the report counts no acknowledgement that was not sent before it.
# With CAROTATE_POWERLOSS_FULL=1 (make powerloss), also each single dropped write of each flush
# epoch of two writes or more (the cut just before that flush, that one write lost).
# The audit log must credit every change to its caller: an `adopt` "outside carotated" after a
# cut between a change of the sets and its audit record was the defect of issue 19 item 3 (the
# swap's note, written before its commit, and the intent note of generate, install and discard
# fixed it); such a point fails the test (PL_CHECK_AUDIT=0 only counts them).
# Without logfs's log, the points would be where a kill lands: page cache kept, no lost writes.
# timeout: 600 (make powerloss sets its own: the full walk takes longer)
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"
# shellcheck source-path=SCRIPTDIR source=../powerloss/lib.sh
. "$(dirname "$0")/../powerloss/lib.sh"

FULL=${CAROTATE_POWERLOSS_FULL:-0}
PL_CHECK_AUDIT=${PL_CHECK_AUDIT:-1}
# In `make check`: at most this many flush points per file system, evenly spaced, plus the
# last flush before each reply (the points that decide survival). 0: every one.
PL_MAX_POINTS=${PL_MAX_POINTS:-$([ "$FULL" = 1 ] && echo 0 || echo 60)}
# In `make powerloss`: about this many dropped-write images per file system (of about 200;
# each costs one to two seconds), so that the full walk ends in about 20 minutes. 0: every one.
PL_MAX_DROPS=${PL_MAX_DROPS:-150}
PL_AGENTS=6

t_plain_only "it starts the daemon on a replayed image hundreds of times; its recovery code runs under ASan in test_stage_crash, test_swap-faults and test_rotate_stop"
t_init
pl_require
command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
trap 'rc=$?; pl_cleanup; (exit $rc); _t_cleanup' EXIT

PL_FS="$T/fs"
PL_FUSE="$T/fuse"
PL_IMG="$T/replayed.img"
SSL_DIR="$PL_FS/ssl"
STATE_DIR="$PL_FS/state"
rmdir "$T/ssl" "$T/state"
mkdir -p "$PL_FS"
nginx_write_daemon_config
sed -i 's/^keep = .*/keep = 2/' "$CONF"

set_sum() { cat "$1/ca.crt" "$1/server.crt" "$1/server.key" 2>/dev/null | sha256sum | cut -c1-16; }
# The state a power cut must leave whole: active set, staged set or -.
pl_state() {
	local s=-
	[ ! -e "$SSL_DIR/new" ] || s=$(set_sum "$SSL_DIR/new")
	echo "A=$(set_sum "$SSL_DIR") S=$s"
}
# done_mark OP: OP's reply reached the client. The operations that pruned backups past
# [backups] keep (the daemon logs each removal) are noted for the table (PRUNED: "fs:op ...").
PRUNED=""
done_mark() {
	local n
	pl_mark "done $1 $(pl_state)"
	n=$(grep -c 'removed by the retention rule' "$DAEMON_LOG" || true)
	[ "$n" -eq "${PRUNE_SEEN:-0}" ] || PRUNED="$PRUNED ${CUR_FS:-}:$1"
	PRUNE_SEEN=$n
}

# ---------------------------------------------------------------- agents (curl through nginx)
CODE=""
areq() {
	local method=$1 path=$2
	shift 2
	CODE=$(curl -sS -k --max-time 15 --resolve "$NGINX_SERVER_NAME:$NGINX_PORT:127.0.0.1" \
		-X "$method" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" \
		"https://$NGINX_SERVER_NAME:$NGINX_PORT$path" 2>"$T/curl.err") || CODE="curl-$?"
}
# etag: the ETag of the last answer, without its quotes (hdr: lib.sh).
etag() { hdr ETag | tr -d '"'; }
agents_link() {
	local i id
	for i in $(seq 1 "$PL_AGENTS"); do
		id=plagent$i
		areq POST /carotate/v1/link -H "Authorization: Bearer $(cat "$LINKING_KEY")" \
			-H "X-Agent-Id: $id" --data-binary ''
		[ "$CODE" = 200 ] || fail "link $id" "$CODE $(cat "$T/b" "$T/curl.err")"
		hdr X-Agent-Token >"$T/agent.$id.token"
		etag >"$T/agent.$id.etag"
	done
}
# checkin ID: one check-in with the bundle id the agent holds; a 200 gives it the new one.
checkin() {
	areq GET /carotate/v1/ca-bundle -H "Authorization: Bearer $(cat "$T/agent.$1.token")" \
		-H "X-Agent-Id: $1" -H "If-None-Match: \"$(cat "$T/agent.$1.etag")\""
	case $CODE in
	200) etag >"$T/agent.$1.etag" ;;
	304) ;;
	*) fail "check-in $1" "$CODE $(cat "$T/b" "$T/curl.err")" ;;
	esac
}
# The burst: each agent fetches the staged bundle, then presents its id: that answer (304) is
# the acknowledgement the agent was told about.
agents_ack() {
	local i id
	for i in $(seq 1 "$PL_AGENTS"); do
		checkin "plagent$i"
	done
	for i in $(seq 1 "$PL_AGENTS"); do
		id=plagent$i
		pl_mark "ack-sent $id"
		checkin "$id"
		[ "$CODE" = 304 ] || fail "check-in $id with the staged bundle's id answers 304"
		pl_mark "ack-ok $id"
	done
	for i in $(seq 1 "$PL_AGENTS"); do
		checkin "plagent$i"
	done
}

# ---------------------------------------------------------------- recording
# record FS: the base image (the active set, an empty state directory) and the log of the run.
record() {
	local fs=$1 b
	pl_mkfs "$fs" "$T/$fs.base"
	pl_attach "$T/$fs.base" "$PL_FS"
	mkdir -m 0755 "$SSL_DIR"
	mkdir -m 0700 "$STATE_DIR"
	make_active_set "$fs"
	INIT_STATE=$(pl_state)
	pl_detach "$PL_FS"
	cp --sparse=always "$T/$fs.base" "$T/$fs.disk"
	pl_log_start "$T/$fs.disk" "$T/$fs.wlog"
	pl_mark "start"
	: >"$DAEMON_LOG"
	CUR_FS=$fs
	PRUNE_SEEN=0
	start_daemon
	done_mark start
	if [ -z "$NGINX_PID" ]; then
		nginx_start
	else
		nginx_reload_files
	fi
	agents_link
	pl_mark "linked"
	assert_exit 0 "$fs: generate" -- ctl generate
	done_mark generate
	agents_ack
	assert_exit 0 "$fs: rotate, gated: every agent acknowledged" -- ctl rotate
	done_mark rotate
	assert_exit 0 "$fs: renew" -- ctl renew
	done_mark renew
	assert_exit 0 "$fs: restore --latest" -- ctl restore --latest --force --reason power
	done_mark restore
	assert_exit 0 "$fs: generate again" -- ctl generate
	done_mark generate2
	assert_exit 0 "$fs: discard" -- ctl discard
	done_mark discard
	assert_exit 0 "$fs: retire" -- ctl retire
	done_mark retire
	b=$(find "$SSL_DIR" -maxdepth 1 -name 'certs-*' | wc -l)
	[ "$b" -le 2 ] || fail "$fs: backups pruned to [backups] keep = 2" "$(ls "$SSL_DIR")"
	stop_daemon
	pl_mark "stopped"
	pl_log_stop
	"$PL_BIN/replay" --list "$T/$fs.wlog" >"$T/$fs.list"
	t_log "$fs: $(grep -c ' WRITE ' "$T/$fs.list") writes, $(grep -c ' FLUSH$' "$T/$fs.list") flushes"
}

# nginx re-reads the files of the new image (a reload keeps the old ones when it fails).
nginx_reload_files() { "$NGINX_RELOAD" >/dev/null 2>&1 || true; }

# ---------------------------------------------------------------- the walk
FAILS=0
AUDIT_HITS=0
POINTS=0
bad() {
	FAILS=$((FAILS + 1))
	t_log "FAIL: $*"
}

# The table of the walk: per file system and step, the flush points and dropped-write images
# walked, the points that broke an invariant, and those that recorded an adopt apart.
declare -A TAB_FLUSH TAB_DROP TAB_FAIL TAB_ADOPT
TAB_ROWS=""
ROW=""
tab_row() {
	ROW="$1:$2"
	case " $TAB_ROWS " in
	*" $ROW "*) ;;
	*)
		TAB_ROWS="$TAB_ROWS $ROW"
		TAB_FLUSH[$ROW]=0 TAB_DROP[$ROW]=0 TAB_FAIL[$ROW]=0 TAB_ADOPT[$ROW]=0
		;;
	esac
}
tab_print() {
	local row op
	printf '\n| file system | step | flush points | dropped writes | failures | adopt records |\n'
	printf '|---|---|---|---|---|---|\n'
	for row in $TAB_ROWS; do
		op=${row#*:}
		case " $PRUNED " in *" $row "*) op="$op (prunes)" ;; esac
		printf '| %s | %s | %d | %d | %d | %d |\n' "${row%%:*}" "$op" "${TAB_FLUSH[$row]}" \
			"${TAB_DROP[$row]}" "${TAB_FAIL[$row]}" "${TAB_ADOPT[$row]}"
	done
	printf '\n'
}

# expect N: from the list, what the cut before record N allows: EXP_LAST (the last answered
# operation), EXP_STATES (the states after it and after the next), ACK_OK and ACK_SENT (agent
# ids, comma-separated), EXP_OP (the step the cut lies in: the first mark after it).
expect() {
	read -r EXP_LAST EXP_STATES ACK_OK ACK_SENT EXP_OP < <(awk -v n="$1" -v init="$INIT_STATE" '
	$1 >= n && $2 == "MARK" && op == "" {
		op = $3
		if ($3 == "done") op = $4 == "start" ? "first-start" : $4
		else if ($3 == "linked") op = "link"
		else if ($3 ~ /^ack-/) op = "burst"
		else if ($3 == "stopped") op = "stop"
		else if ($3 == "start") op = "mount"
	}
	$1 >= n && $2 == "MARK" && $3 == "done" && !nx { nx = $5 " " $6 }
	$1 >= n { next }
	$2 == "MARK" && $3 == "done" { last = $4; st = $5 " " $6 }
	$2 == "MARK" && $3 == "ack-ok" { ok = ok "," $4 }
	$2 == "MARK" && $3 == "ack-sent" { sent = sent "," $4 }
	END {
		if (st == "") st = init
		if (nx == "") nx = st
		gsub(" ", "_", st); gsub(" ", "_", nx)
		printf "%s %s|%s ,%s ,%s %s\n", last == "" ? "-" : last, st, nx, ok, sent, op == "" ? "unmount" : op
	}' "$LIST")
}

# check_ledger WHAT: the acknowledgements of the burst, where the cut lies inside it.
check_ledger() {
	local what=$1 acked id n_ok n_sent
	[ "$EXP_LAST" = generate ] || return 0
	ctl --json report --pending >"$T/rep.json" || { bad "$what: report answers"; return; }
	# The rotate that follows the burst went through (its gate read every acknowledgement).
	[ "$(json_get staged_ca "$T/rep.json")" != null ] || return 0
	acked=$(json_get acknowledged "$T/rep.json")
	n_ok=$(printf '%s' "$ACK_OK" | tr ',' '\n' | grep -c . || true)
	n_sent=$(printf '%s' "$ACK_SENT" | tr ',' '\n' | grep -c . || true)
	[ "$acked" -ge "$n_ok" ] || bad "$what: $n_ok acknowledgements answered, the ledger has $acked"
	[ "$acked" -le "$n_sent" ] || bad "$what: $acked acknowledgements counted, only $n_sent sent"
	for id in $(printf '%s' "$ACK_OK" | tr ',' ' '); do
		! grep -q "\"$id\"" "$T/rep.json" || bad "$what: $id was answered its acknowledgement, yet is pending"
	done
}

# check_point FS N [DROP]: the image after the first N records (less the write DROP).
check_point() {
	local fs=$1 n=$2 drop=${3:-}
	expect "$n"
	tab_row "$fs" "$EXP_OP"
	FAILS_BEFORE=$FAILS
	ADOPT_BEFORE=$AUDIT_HITS
	check_point_1 "$@"
	if [ -n "$drop" ]; then
		TAB_DROP[$ROW]=$((TAB_DROP[$ROW] + 1))
	else
		TAB_FLUSH[$ROW]=$((TAB_FLUSH[$ROW] + 1))
	fi
	[ "$FAILS" -eq "$FAILS_BEFORE" ] || TAB_FAIL[$ROW]=$((TAB_FAIL[$ROW] + 1))
	[ "$AUDIT_HITS" -eq "$ADOPT_BEFORE" ] || TAB_ADOPT[$ROW]=$((TAB_ADOPT[$ROW] + 1))
}

check_point_1() {
	local fs=$1 n=$2 drop=${3:-} what cur d
	what="$fs $n${drop:+ -$drop} ($EXP_OP)"
	POINTS=$((POINTS + 1))
	if ! pl_image "$fs" "$T/$fs.base" "$T/$fs.wlog" "$n" "$drop"; then
		bad "$what: the file system is damaged: $PL_WHY"
		return
	fi
	rm -f "$SOCK"
	: >"$DAEMON_LOG"
	run_daemon_bg "$CONF" "$DAEMON_LOG"
	if ! wait_until 15000 socket_answers; then
		bad "$what (after $EXP_LAST): the daemon starts and recovers: $(tail -n 5 "$DAEMON_LOG")"
		pl_cleanup
		return
	fi
	# A swap cut after its journal's commit is finished after the daemon answers (reload, TLS
	# check, backups pruned, audit): what is checked is what it leaves. Seen: a backup being
	# pruned, half removed, failed its manifest (ext4, a write inside restore dropped).
	if grep -q 'finishing it now' "$DAEMON_LOG" &&
		! wait_until 60000 grep -q 'finished at start-up' "$DAEMON_LOG"; then
		bad "$what (after $EXP_LAST): the operation cut short is finished at start-up: $(tail -n 5 "$DAEMON_LOG")"
	fi
	cur=$(pl_state | tr ' ' _)
	case "|$EXP_STATES|" in
	*"|$cur|"*) ;;
	*) bad "$what (after $EXP_LAST): the state is $cur, not one of $EXP_STATES" ;;
	esac
	[ "$(openssl x509 -in "$SSL_DIR/server.crt" -noout -pubkey | sha256sum)" = \
		"$(openssl pkey -in "$SSL_DIR/server.key" -pubout 2>/dev/null | sha256sum)" ] ||
		bad "$what: the active key matches the active certificate"
	[ ! -e "$STATE_DIR/swap.journal" ] || bad "$what: the journal is gone"
	d=$(find "$SSL_DIR" "$STATE_DIR" \( -name '.*.tmp' -o -name '.staging-*' -o -name '.swap-*' -o -name renew \) -print)
	[ -z "$d" ] || bad "$what (after $EXP_LAST): no temporary file is left: $d"
	for d in "$SSL_DIR"/certs-*; do
		[ -d "$d" ] || continue
		(cd "$d" && [ -f .manifest ] && grep '  ' .manifest | awk '{print $1 "  " $3}' |
			sha256sum -c --quiet >/dev/null 2>&1) || bad "$what: $d matches its manifest"
	done
	if ctl --json status >"$T/st.json"; then
		grep -q "$(cert_der_sha256 "$SSL_DIR/ca.crt")" "$T/st.json" ||
			bad "$what: the bundle holds the active CA"
	else
		bad "$what: status answers"
	fi
	check_ledger "$what"
	if ctl --json audit --limit 100 >"$T/audit.json" && grep -q '"call": *"adopt"' "$T/audit.json"; then
		AUDIT_HITS=$((AUDIT_HITS + 1))
		t_log "audit: $what (after $EXP_LAST): an adopt \"outside carotated\" was recorded"
		[ "$PL_CHECK_AUDIT" != 1 ] || bad "$what: every change is credited to its caller (no adopt record)"
	fi
	stop_daemon
	[ "$(sqlite3 "$STATE_DIR/ledger.db" 'PRAGMA integrity_check' 2>&1)" = ok ] ||
		bad "$what: the ledger passes PRAGMA integrity_check"
	pl_detach "$PL_FS"
}

# flush_points: the record counts N that end with a FLUSH, sampled down to PL_MAX_POINTS (the
# last flush before each MARK always kept).
flush_points() {
	awk -v max="$PL_MAX_POINTS" '
	$2 == "FLUSH" { f[++nf] = $1 + 1 }
	$2 == "MARK" && nf > 0 { keep[f[nf]] = 1 }
	END {
		step = (max > 0 && nf > max) ? nf / max : 1
		for (x = 1; x <= nf; x += step) keep[f[int(x)]] = 1
		keep[f[nf]] = 1
		for (i = 1; i <= nf; i++) if (f[i] in keep) print f[i]
	}' "$LIST"
}

# dropped_points: "N I": the cut just before a FLUSH at N, write I of that epoch lost, for every
# write of every epoch of two writes or more; sampled down to about PL_MAX_DROPS of them (each
# kept with the same probability, a fixed seed: every run walks the same images). 0: every one.
dropped_points() {
	awk -v max="$PL_MAX_DROPS" '
	$2 == "WRITE" { w[++nw] = $1 }
	$2 == "FLUSH" { if (nw >= 2) for (i = 1; i <= nw; i++) c[++nc] = $1 " " w[i]; nw = 0 }
	END {
		srand(19)
		p = (max > 0 && nc > max) ? max / nc : 1
		for (i = 1; i <= nc; i++) if (rand() < p) print c[i]
	}' "$LIST"
}

walk() {
	local fs=$1 n i start=$SECONDS f0=$FAILS p0=$POINTS a0=$AUDIT_HITS
	LIST="$T/$fs.list"
	# PL_POINTS="N ...": only those (to look at one point again).
	for n in ${PL_POINTS:-$(flush_points)}; do
		check_point "$fs" "$n"
	done
	t_log "$fs: $((POINTS - p0)) flush points of $(grep -c ' FLUSH$' "$LIST"), $((SECONDS - start)) s"
	if [ "$FULL" = 1 ]; then
		start=$SECONDS
		p0=$POINTS
		while read -r n i; do
			check_point "$fs" "$n" "$i"
		done < <(dropped_points)
		t_log "$fs: $((POINTS - p0)) dropped-write points of $(PL_MAX_DROPS=0 dropped_points | wc -l), $((SECONDS - start)) s"
	fi
	[ "$FAILS" -eq "$f0" ] || t_log "$fs: $((FAILS - f0)) failures"
	ok "$fs: $((POINTS - p0)) points walked; $((AUDIT_HITS - a0)) adopt records (issue 19 item 3)"
}

for fs in ${PL_FILESYSTEMS:-ext4 xfs}; do
	if ! pl_fs_usable "$fs"; then
		t_log "$fs: skipped: $PL_WHY"
		continue
	fi
	record "$fs"
	walk "$fs"
done
[ "$POINTS" -gt 0 ] || t_skip "neither ext4 nor XFS is usable here"
# The table in the CI log, passing or not (tests/integration/run shows $CAROTATE_IT_REPORT).
tab_print | tee -a "${CAROTATE_IT_REPORT:-/dev/null}"
[ "$FAILS" -eq 0 ] || fail "$FAILS of $POINTS power-loss points break an invariant (above)"
ok "$POINTS power-loss points keep every invariant; $AUDIT_HITS adopt records (PL_CHECK_AUDIT=$PL_CHECK_AUDIT)"
