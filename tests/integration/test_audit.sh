#!/bin/bash
# The audit log through the real daemon and CLI: state changes and refusals of them recorded
# with who, what, result and the certificate sets before and after; reads not recorded; a
# change made by hand adopted on SIGHUP; client strings sanitized; the hash chain checked by
# the daemon and, from the documented encoding, by Python; tampering with one record through
# the sqlite3 CLI makes `audit --verify` fail (exit 6) naming that record.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (packaging/install-deps test)"
command -v curl >/dev/null || fail "curl is not installed (packaging/install-deps test)"

# A second, unprivileged user (a reader) when we can make one (root and setpriv).
READ_GROUP=carotate-t
ADMIN_GRP=carotate-t-admin
READER=carotate-treader
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	t_group "$READ_GROUP" "$ADMIN_GRP"
	t_user "$READER" "$READ_GROUP"
	SOCKET_GROUP=$READ_GROUP
	ADMIN_GROUP=$ADMIN_GRP
	HAVE_READER=1
else
	t_log "not root (or no setpriv): the reader's refused call is not tried"
	HAVE_READER=0
fi

t_init
make_active_set
write_config
start_daemon
DB="$STATE_DIR/ledger.db"
AGENT_SOCK="$RUN_DIR/agent.sock"
wait_until 5000 test -S "$AGENT_SOCK" || fail "no agent socket"
ACTIVE_CA=$(cert_sha256 "$SSL_DIR/ca.crt")
ACTIVE_SRV=$(cert_sha256 "$SSL_DIR/server.crt")
STATE0="active=$ACTIVE_CA/$ACTIVE_SRV staged=-"

mkdir -m 0755 "$T/bin"
cp "$CAROTATECTL" "$T/bin/carotatectl"
cp "$IT_DIR/rawclient.py" "$T/bin/rawclient.py"
chmod 0755 "$T/bin/carotatectl" "$T/bin/rawclient.py"
as_reader() {
	setpriv --reuid="$(id -u "$READER")" --regid="$(id -g "$READER")" --init-groups \
		"$T/bin/carotatectl" --socket "$SOCK" "$@"
}

assert_exit 0 "an empty audit log" -- ctl --json audit --verify
printf '%s' "$OUT" | jsave "$T/a0.json"
assert_eq 0 "$(jget total "$T/a0.json")" "...holds no record"
assert_eq true "$(jget intact "$T/a0.json")" "...and its chain is intact"

# ---- the calls: 1 generate, 2 generate refused (staged), 3 exclude, 4 exclude refused
# (reader), 5 exclude with a hostile reason (refused by the daemon), 6 discard, 7 discard
# refused (steady). Reads in between are not recorded.
KEY=$(tr -d ' \t\r\n' <"$LINKING_KEY")
curl -sS --unix-socket "$AGENT_SOCK" -X POST -H "Authorization: Bearer $KEY" \
	-H "X-Agent-Id: web-01" -o /dev/null http://x/carotate/v1/link || fail "linking web-01"

assert_exit 0 "generate (admin)" -- ctl --json generate
STAGED_CA=$(cert_sha256 "$SSL_DIR/new/ca.crt")
assert_exit 3 "generate again: refused, a set is staged" -- ctl generate
assert_exit 0 "status (a read)" -- ctl status
assert_exit 0 "exclude web-01 with a reason" -- \
	ctl exclude web-01 --reason "decommissioned, see TICKET-7"
n=4
if [ "$HAVE_READER" = 1 ]; then
	assert_exit 4 "$READER: exclude is refused (permission denied)" -- \
		as_reader exclude web-01 --reason "not mine to do"
else
	# The same record, made by a call that is refused for another reason.
	assert_exit 5 "exclude of an unknown agent" -- ctl exclude nobody-here --reason "x"
fi
# Request{version 1, exclude {agent "web-01", reason "evil\naudit: seq=999 forged"}}: the
# CLI would refuse that reason; sent raw, the daemon refuses it and records it sanitized.
FRAME=$("$PY" -c '
import sys
def ld(tag, b):
    return bytes([tag, len(b)]) + b
body = ld(0x0a, b"web-01") + ld(0x12, b"evil\naudit: seq=999 forged")
sys.stdout.write((b"\x08\x01\xa2\x01" + bytes([len(body)]) + body).hex())')
assert_exit 0 "a hostile reason over the raw protocol is refused (INVALID_ARGUMENT)" -- \
	"$PY" "$T/bin/rawclient.py" "$SOCK" frame "$FRAME" 1
assert_exit 0 "discard" -- ctl discard
assert_exit 3 "discard again: refused, nothing is staged" -- ctl discard
assert_exit 0 "report (a read)" -- ctl report
assert_exit 0 "audit (a read)" -- ctl audit

assert_exit 0 "audit --json" -- ctl --json audit --verify
printf '%s' "$OUT" | jsave "$T/a.json"
assert_eq 7 "$(jget total "$T/a.json")" "7 records: the state changes and refusals, no read"
assert_eq true "$(jget intact "$T/a.json")" "the chain is intact"
assert_eq 0 "$(jget broken_at "$T/a.json")" "...broken nowhere"
assert_eq null "$(jget problem "$T/a.json")" "...no problem"
# Newest first: record i (1..7) is at index 7 - i.
rec() { jget "records.$((7 - $1)).$2" "$T/a.json"; }
for i in 1 2 3 4 5 6 7; do
	assert_eq "$i" "$(rec "$i" seq)" "record $i is in its place (newest first)"
done
assert_eq "generate OK 0 root" "$(rec 1 call) $(rec 1 result) $(rec 1 uid) $(rec 1 user)" \
	"1: generate, OK, by root"
assert_ne 0 "$(rec 1 pid)" "1: the caller's pid is recorded"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$(rec 1 time)" \
	"1: its time is RFC 3339 UTC"
assert_eq "$STATE0" "$(rec 1 before)" "1: before: the active set, nothing staged"
assert_eq "active=$ACTIVE_CA/$ACTIVE_SRV staged=$STAGED_CA" "$(rec 1 after)" \
	"1: after: the new CA is staged"
assert_contains 'key_type="ec-p256"' "$(rec 1 detail)" "1: the key type is recorded"
assert_eq "generate FAILED_PRECONDITION" "$(rec 2 call) $(rec 2 result)" \
	"2: generate refused (wrong phase)"
assert_eq "$(rec 2 before)" "$(rec 2 after)" "2: the refusal changed nothing"
assert_eq "exclude OK" "$(rec 3 call) $(rec 3 result)" "3: exclude, OK"
assert_contains 'agent="web-01" reason="decommissioned, see TICKET-7"' "$(rec 3 detail)" \
	"3: the agent and the reason are recorded"
if [ "$HAVE_READER" = 1 ]; then
	assert_eq "exclude PERMISSION_DENIED $(id -u "$READER") $READER" \
		"$(rec 4 call) $(rec 4 result) $(rec 4 uid) $(rec 4 user)" \
		"4: the reader's exclude: refused, with the reader's uid and name"
	assert_contains "needs the admin role" "$(rec 4 detail)" "4: ...and why"
else
	assert_eq "exclude NOT_FOUND" "$(rec 4 call) $(rec 4 result)" "4: exclude refused"
fi
assert_eq "exclude INVALID_ARGUMENT" "$(rec 5 call) $(rec 5 result)" \
	"5: the hostile exclude, refused"
assert_contains 'reason="evil\x0aaudit: seq=999 forged"' "$(rec 5 detail)" \
	"5: its reason is kept on one line, the newline escaped"
if grep -q '^carotated: audit: seq=999' "$DAEMON_LOG" ||
	grep -q '^audit: seq=999' "$DAEMON_LOG"; then
	fail "a client forged a line of the daemon's log"
fi
ok "no forged line in the daemon's log"
assert_eq "discard OK" "$(rec 6 call) $(rec 6 result)" "6: discard, OK"
assert_eq "$(rec 1 after)" "$(rec 6 before)" "6: before: what generate left"
assert_eq "$STATE0" "$(rec 6 after)" "6: after: nothing staged"
assert_contains 'kept_as="discarded-' "$(rec 6 detail)" "6: where the set was kept"
assert_eq "discard FAILED_PRECONDITION" "$(rec 7 call) $(rec 7 result)" \
	"7: discard refused (nothing staged)"
assert_contains "nothing is staged" "$(rec 7 detail)" "7: ...and why"

# Each record also went to the log (syslog, here stderr), with its seq and hash.
for i in 1 3 7; do
	assert_file_contains "audit: seq=$i hash=$(rec "$i" hash) uid=0 user=root" "$DAEMON_LOG" \
		"record $i is in the daemon's log with its hash"
done

# The chain from the JSON, recomputed with the encoding ledger.h documents.
assert_exit 0 "Python recomputes every hash and link from the documented encoding" -- \
	"$PY" -c '
import calendar, hashlib, json, struct, sys, time
recs = sorted(json.load(open(sys.argv[1]))["records"], key=lambda r: r["seq"])
prev = "0" * 64
for r in recs:
    t = calendar.timegm(time.strptime(r["time"], "%Y-%m-%dT%H:%M:%SZ"))
    m = hashlib.sha256(b"carotate-audit-v1\0")
    for v in (r["seq"], t, r["uid"], r["pid"]):
        m.update(struct.pack(">q", v))
    for k in ("user", "call", "result", "detail", "before", "after", "prev_hash"):
        b = r[k].encode()
        m.update(struct.pack(">I", len(b)) + b)
    assert r["prev_hash"] == prev, "record %d: prev_hash" % r["seq"]
    assert m.hexdigest() == r["hash"], "record %d: hash" % r["seq"]
    prev = r["hash"]
print("%d records check out" % len(recs))' "$T/a.json"

if [ "$HAVE_READER" = 1 ]; then
	assert_exit 0 "$READER may read the audit log" -- as_reader --json audit --limit 2
	assert_eq 7 "$(printf '%s' "$OUT" | json_get records.0.seq)" "...newest first"
fi

# Paging and the human form.
assert_exit 0 "a page of two from offset 2" -- ctl --json audit --limit 2 --offset 2
assert_eq "5 4" "$(printf '%s' "$OUT" | json_get records.0.seq) $(printf '%s' "$OUT" |
	json_get records.1.seq)" "...holds records 5 and 4"
assert_exit 1 "audit with an argument is a usage error" -- ctl audit extra
assert_exit 5 "--limit 1001 is refused" -- ctl audit --limit 1001
assert_exit 0 "human audit --verify" -- ctl audit --verify --limit 3
assert_match '^#7 [0-9T:Z-]+ root\(0\) pid [0-9]+ discard FAILED_PRECONDITION ' \
	"$(printf '%s\n' "$OUT" | sed -n 2p)" "human: one line per record: seq, time, user(uid), pid, call, result, detail"
assert_contains "hash chain: intact (7 records checked)" "$OUT" "human: the chain's verdict"

# ---- a manual restore (cp of a backup, carotated(8) FILES) noticed on SIGHUP: "adopt".
KEPT=$(find "$SSL_DIR" -maxdepth 1 -name 'discarded-*' | head -n 1)
[ -n "$KEPT" ] || fail "no discarded set to copy back"
cp "$KEPT/ca.crt" "$KEPT/server.crt" "$SSL_DIR/"
cp "$KEPT/server.key" "$SSL_DIR/server.key"
kill -HUP "$DAEMON_PID"
wait_until 5000 sh -c "'$CAROTATECTL' --socket '$SOCK' --json audit --limit 1 | grep -q '\"adopt\"'" ||
	fail "no adopt record after SIGHUP" "$(ctl audit --limit 2)"
ctl --json audit --limit 1 | jsave "$T/adopt.json"
assert_eq "8 adopt OK carotated 0" "$(jget records.0.seq "$T/adopt.json") $(jget records.0.call \
	"$T/adopt.json") $(jget records.0.result "$T/adopt.json") $(jget records.0.user \
	"$T/adopt.json") $(jget records.0.pid "$T/adopt.json")" \
	"8: the change made by hand, recorded as the daemon's own event"
assert_eq "$STATE0" "$(jget records.0.before "$T/adopt.json")" "8: before: what the log knew"
assert_eq "active=$STAGED_CA/$(cert_sha256 "$SSL_DIR/server.crt") staged=-" \
	"$(jget records.0.after "$T/adopt.json")" "8: after: the set copied in by hand"
kill -HUP "$DAEMON_PID"
sleep 0.5
assert_eq 8 "$(ctl --json audit --limit 1 | json_get total)" "a second SIGHUP adopts nothing new"

# ---- tampering
stop_daemon
run sqlite3 "$DB" "UPDATE audit SET result = 'OK' WHERE seq = 4"
assert_ne 0 "$RC" "the table refuses an UPDATE (trigger)"
assert_contains "append-only" "$ERR" "...saying the log is append-only"
run sqlite3 "$DB" "DELETE FROM audit WHERE seq = 4"
assert_ne 0 "$RC" "...and a DELETE"
sqlite3 "$DB" "DROP TRIGGER audit_no_update; UPDATE audit SET result = 'OK' WHERE seq = 4" ||
	fail "tampering through the sqlite3 CLI"
ok "record 4 turned into a success by hand, triggers dropped"
start_daemon
assert_file_contains "triggers that keep the audit log append-only were removed" "$DAEMON_LOG" \
	"the daemon says the triggers were removed (and puts them back)"
assert_exit 6 "audit --verify fails (exit 6)" -- ctl audit --verify
assert_contains "broken at record 4" "$ERR" "...naming record 4 on stderr"
assert_contains "record 4 was changed" "$ERR" "...and saying what is wrong"
assert_contains "hash chain: BROKEN at record 4" "$OUT" "...and in its output"
assert_exit 6 "audit --json --verify fails too" -- ctl --json audit --verify
printf '%s' "$OUT" | jsave "$T/t.json"
assert_eq "false 4" "$(jget intact "$T/t.json") $(jget broken_at "$T/t.json")" \
	"JSON: intact false, broken_at 4"
assert_contains "record 4 was changed" "$(jget problem "$T/t.json")" "JSON: the problem"
assert_exit 0 "without --verify the log is still shown (exit 0)" -- ctl audit

# Record 4 put back as it was: the chain checks out again, so the check is exact.
sqlite3 "$DB" "DROP TRIGGER audit_no_update;
	UPDATE audit SET result = '$(rec 4 result)' WHERE seq = 4"
assert_exit 0 "record 4 restored by hand: audit --verify passes" -- ctl audit --verify

# Record 2 removed: the chain says so, while the daemon runs.
sqlite3 "$DB" "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 2"
assert_exit 6 "record 2 deleted: audit --verify fails" -- ctl audit --verify
assert_contains "broken at record 2: record 2 is missing" "$ERR" "...naming the missing record"

# New records still chain onto the newest one.
assert_exit 3 "one more refused call" -- ctl discard
assert_eq "9 discard" "$(ctl --json audit --limit 1 | json_get records.0.seq) $(ctl --json audit \
	--limit 1 | json_get records.0.call)" "it is record 9"
assert_daemon_alive "at the end"
