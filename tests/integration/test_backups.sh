#!/bin/bash
# backups and retire through the real daemon and CLI. Backups on disk: certs-* directories
# with a manifest as the swap writes it (sha256, mode, name; reason=, op=, created=), one
# made by hand (no manifest), a tampered one, one whose key belongs to another set, a
# symlink named like one, and a discarded-* set made by the daemon's own generate + discard.
# retire: a retained CA enters the bundle on SIGHUP; --dry-run changes nothing; retire drops
# it from ca-bundle.pem and from what an agent receives at its next check-in; refused while
# staged (exit 3) and to a reader (exit 4, root only).
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init
make_active_set

# manifest DIR REASON OP CREATED: DIR/.manifest as backup.c writes it (OP "" = before op=).
manifest() {
	local dir=$1 reason=$2 op=$3 created=$4 f
	{
		printf 'reason=%s\n' "$reason"
		[ -z "$op" ] || printf 'op=%s\n' "$op"
		printf 'created=%s\n' "$created"
		for f in ca.crt server.crt server.key; do
			printf '%s  %s  %s\n' "$(sha256sum "$dir/$f" | cut -d' ' -f1)" \
				"$(stat -c %04a "$dir/$f")" "$f"
		done
	} >"$dir/.manifest"
	chmod 0600 "$dir/.manifest"
}

# backup ID SETNAME [REASON OP CREATED]: a complete set in $SSL_DIR/ID; a manifest when
# REASON is given.
backup() {
	local dir="$SSL_DIR/$1"
	make_cert_set "$dir" "$2"
	chmod 0700 "$dir"
	[ $# -lt 3 ] || manifest "$dir" "$3" "$4" "$5"
}

epoch() { date -u -d "$1" +%s; }

backup certs-20250101-000000 b1 rotate rotate "$(epoch 2025-01-01T00:00:00Z)"
backup certs-20250201-000000 b2 "restore of certs-20250101-000000" restore \
	"$(epoch 2025-02-01T00:00:00Z)"
# A manifest from before op= existed, with a forced rotation's reason.
backup certs-20250301-000000 b3 "forced: maintenance window" "" \
	"$(epoch 2025-03-01T00:00:00Z)"
# Same second, two backups: -2 is the later one.
backup certs-20250301-000000-2 b4 rotate rotate "$(epoch 2025-03-01T00:00:00Z)"
# By hand, as PROCEDURE.txt's operators make them: no manifest.
backup certs-20241201-000000 manual
# Tampered after the fact.
backup certs-20250401-000000 b5 rotate rotate "$(epoch 2025-04-01T00:00:00Z)"
cp "$SSL_DIR/certs-20250101-000000/server.crt" "$SSL_DIR/certs-20250401-000000/server.crt"
# By hand, with the key of another set.
backup certs-20250115-000000 b6
cp "$PKI_DIR/b1/server.key" "$SSL_DIR/certs-20250115-000000/server.key"
# Not backups: a symlink named like one, a plain file named like one.
ln -s certs-20250101-000000 "$SSL_DIR/certs-20250501-000000"
echo x >"$SSL_DIR/certs-20250601-000000"

write_config
start_daemon

# ---- a discarded set, made by the daemon's own flow
assert_exit 0 "generate stages a set" -- ctl generate
assert_exit 0 "discard keeps it as discarded-*" -- ctl --json discard
kept=$(json_get kept_as <<<"$OUT")
assert_match '^discarded-[0-9]{8}-[0-9]{6}$' "$kept" "discard names its directory ($kept)"

# ---- backups --json: newest first, the carotatectl(1) keys
assert_exit 0 "backups --json exits 0" -- ctl --json backups
jsave "$T/b.json" <<<"$OUT"
want="$kept certs-20250401-000000 certs-20250301-000000-2 certs-20250301-000000 certs-20250201-000000 certs-20250115-000000 certs-20250101-000000 certs-20241201-000000"
got=""
for i in 0 1 2 3 4 5 6 7; do
	got="$got${got:+ }$(jget "backups.$i.id" "$T/b.json")"
done
assert_eq "$want" "$got" "backups are listed newest first; symlinks and files are not backups"
assert_eq 8 "$(jget total "$T/b.json")" "total counts every backup"
assert_eq 10 "$(jget keep "$T/b.json")" "keep is [backups] keep"
if grep -q '^backups\.8\.id' "$T/b.json.flat"; then
	fail "no ninth backup" "$(cat "$T/b.json")"
fi

# check_backup INDEX ID REASON RESTORABLE: the fields of one entry against the files on disk.
check_backup() {
	local i=$1 id=$2 reason=$3 restorable=$4 dir="$SSL_DIR/$2" created
	assert_eq "$reason" "$(jget "backups.$i.reason" "$T/b.json")" "$id: reason $reason"
	assert_eq "$restorable" "$(jget "backups.$i.restorable" "$T/b.json")" \
		"$id: restorable $restorable"
	assert_eq "$(cert_sha256 "$dir/ca.crt")" "$(jget "backups.$i.ca_sha256" "$T/b.json")" \
		"$id: ca_sha256 is the fingerprint of its ca.crt"
	assert_eq "$(cert_sha256 "$dir/server.crt")" \
		"$(jget "backups.$i.server_sha256" "$T/b.json")" "$id: server_sha256"
	assert_eq "$(cert_not_after_epoch "$dir/server.crt")" \
		"$(rfc3339_to_epoch "$(jget "backups.$i.server_not_after" "$T/b.json")")" \
		"$id: server_not_after is its server certificate's notAfter"
	created=$(jget "backups.$i.created" "$T/b.json")
	assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$created" \
		"$id: created is RFC 3339 UTC"
	case "$id" in
	certs-*)
		assert_eq "${id:6:4}-${id:10:2}-${id:12:2}T${id:15:2}:${id:17:2}:${id:19:2}Z" \
			"$created" "$id: created matches its name"
		;;
	esac
}
check_backup 0 "$kept" discard false
check_backup 1 certs-20250401-000000 rotate false
check_backup 2 certs-20250301-000000-2 rotate true
check_backup 3 certs-20250301-000000 rotate true
check_backup 4 certs-20250201-000000 restore true
check_backup 5 certs-20250115-000000 manual false
check_backup 6 certs-20250101-000000 rotate true
check_backup 7 certs-20241201-000000 manual true
assert_contains "discarded staged set" "$(jget backups.0.problem "$T/b.json")" \
	"a discarded set is not restorable, and says why"
assert_contains "does not match its manifest" "$(jget backups.1.problem "$T/b.json")" \
	"the tampered backup is not restorable: its file does not match the manifest"
assert_contains "key: does not match" "$(jget backups.5.problem "$T/b.json")" \
	"the backup whose key belongs to another set is not restorable"
assert_eq "forced: maintenance window" "$(jget backups.3.detail "$T/b.json")" \
	"detail is the manifest's reason"
assert_eq "restore of certs-20250101-000000" "$(jget backups.4.detail "$T/b.json")" \
	"a restore's detail names what was restored"
assert_eq null "$(jget backups.7.detail "$T/b.json")" "a backup made by hand has no detail"
assert_eq null "$(jget backups.2.problem "$T/b.json")" "a restorable backup has no problem"
assert_contains "carotate test CA b4" "$(jget backups.2.ca_subject "$T/b.json")" \
	"ca_subject is the backup CA's subject"

# ---- paging
assert_exit 0 "backups --limit 2 --offset 3" -- ctl --json backups --limit 2 --offset 3
jsave "$T/p.json" <<<"$OUT"
assert_eq "certs-20250301-000000 certs-20250201-000000" \
	"$(jget backups.0.id "$T/p.json") $(jget backups.1.id "$T/p.json")" \
	"a page holds the backups at its offset"
assert_eq 8 "$(jget total "$T/p.json")" "a page still counts them all"
assert_exit 0 "backups past the end" -- ctl --json backups --offset 100
assert_eq "[]" "$(json_get backups <<<"$OUT")" "past the end: an empty list"

# ---- human output
assert_exit 0 "backups (human) exits 0" -- ctl backups
assert_contains "RESTORABLE" "$OUT" "the human table has a header"
assert_match "certs-20250201-000000 +2025-02-01T00:00:00Z +restore +CN=carotate test CA b2" \
	"$OUT" "a row: id, created, reason, CA subject"
assert_contains "no: certs-20250401-000000/server.crt does not match its manifest" "$OUT" \
	"a row says why a backup cannot be restored"
assert_contains "8 backups" "$OUT" "the total is printed"

# ---- bad arguments
assert_exit 5 "backups --limit 0 is invalid input" -- ctl backups --limit 0
assert_exit 5 "backups --limit 1001 is invalid input" -- ctl backups --limit 1001
assert_exit 1 "backups takes no operands" -- ctl backups certs-20250101-000000
assert_exit 1 "backups --bogus is a usage error" -- ctl backups --bogus

# ---- retire: a retained CA enters the bundle at SIGHUP
pki_make_ca "$PKI_DIR/old" "carotate test CA old"
old_sha=$(cert_der_sha256 "$PKI_DIR/old/ca.crt")
active_sha=$(cert_der_sha256 "$SSL_DIR/ca.crt")
mkdir -m 0700 "$STATE_DIR/retained"
{
	printf '# replaced %s\n' "$(date +%s)"
	cat "$PKI_DIR/old/ca.crt"
} >"$STATE_DIR/retained/$old_sha.crt"
kill -HUP "$DAEMON_PID"
bundle_has_old() { pem_shas "$SSL_DIR/ca-bundle.pem" | grep -qx "$old_sha"; }
wait_until 5000 bundle_has_old ||
	fail "after SIGHUP, ca-bundle.pem holds the retained CA" "$(pem_shas "$SSL_DIR/ca-bundle.pem")"
ok "after SIGHUP, ca-bundle.pem holds the retained CA"
assert_eq 2 "$(pem_count "$SSL_DIR/ca-bundle.pem")" "ca-bundle.pem holds two CAs"
ctl --json status | jsave "$T/s.json"
assert_eq "$(printf '%s\n%s\n' "$active_sha" "$old_sha" | LC_ALL=C sort)" \
	"$(jlines bundle.cas "$T/s.json")" "status: bundle.cas is the active and the retained CA"

# An agent links now and receives both CAs.
command -v curl >/dev/null || t_skip "curl is not installed"
URL=http://agent/carotate/v1
agent_req() {
	curl -s --max-time 20 --unix-socket "$RUN_DIR/agent.sock" -D "$T/h" -o "$T/ab" \
		-w '%{http_code}' "$@" || true
}
assert_eq 200 "$(agent_req -X POST -H 'X-Agent-Id: bk-agent' \
	-H "Authorization: Bearer $(cat "$LINKING_KEY")" "$URL/link")" "an agent links"
TOKEN=$(hdr X-Agent-Token)
OLD_ETAG=$(hdr ETag)
assert_eq 2 "$(pem_count "$T/ab")" "the agent receives both CAs"

cp "$SSL_DIR/ca-bundle.pem" "$T/bundle.before"
assert_exit 0 "retire --dry-run exits 0" -- ctl --json retire --dry-run
jsave "$T/r.json" <<<"$OUT"
assert_eq true "$(jget dry_run "$T/r.json")" "dry_run is true"
assert_eq "$old_sha" "$(jget retired.0.sha256 "$T/r.json")" "the dry run lists the retained CA"
assert_contains "carotate test CA old" "$(jget retired.0.subject "$T/r.json")" \
	"with its subject"
assert_match '^[0-9]{4}-.*Z$' "$(jget retired.0.retained_until "$T/r.json")" \
	"and when its retention would have ended"
cmp -s "$T/bundle.before" "$SSL_DIR/ca-bundle.pem" ||
	fail "retire --dry-run leaves ca-bundle.pem alone"
ok "retire --dry-run leaves ca-bundle.pem alone"
[ -f "$STATE_DIR/retained/$old_sha.crt" ] || fail "retire --dry-run leaves the retained file"
ok "retire --dry-run leaves the retained file"

# ---- retire as a reader: refused (root only: needs a second user)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	READER=carotate-treader
	READ_GROUP=carotate-t
	t_group "$READ_GROUP"
	t_user "$READER" "$READ_GROUP"
	chgrp "$READ_GROUP" "$SOCK"
	mkdir -m 0755 "$T/bin"
	cp "$CAROTATECTL" "$T/bin/carotatectl"
	chmod 0755 "$T/bin/carotatectl"
	as_reader() {
		setpriv --reuid="$(id -u "$READER")" --regid="$(id -g "$READER")" --init-groups \
			"$T/bin/carotatectl" --socket "$SOCK" "$@"
	}
	# The daemon's configuration names the test's own group; a reader needs its own.
	SOCKET_GROUP=$READ_GROUP write_config
	kill -HUP "$DAEMON_PID"
	reader_can_list() { as_reader backups >/dev/null 2>&1; }
	wait_until 5000 reader_can_list || fail "a reader may list backups" "$(as_reader backups 2>&1)"
	ok "a reader may list backups"
	assert_exit 4 "retire as a reader: permission denied (exit 4)" -- as_reader retire
	assert_contains "needs the admin role" "$ERR" "the reader is told retire needs the admin role"
	[ -f "$STATE_DIR/retained/$old_sha.crt" ] || fail "a refused retire changes nothing"
	ok "a refused retire changes nothing"
else
	t_log "not root: the reader part of the retire test is skipped"
fi

# ---- retire
assert_exit 0 "retire exits 0" -- ctl --json retire
jsave "$T/r.json" <<<"$OUT"
assert_eq false "$(jget dry_run "$T/r.json")" "dry_run is false"
assert_eq "$old_sha" "$(jget retired.0.sha256 "$T/r.json")" "retire lists the CA it dropped"
assert_eq "$active_sha" "$(jlines bundle.cas "$T/r.json")" "the bundle now holds the active CA only"
[ ! -e "$STATE_DIR/retained/$old_sha.crt" ] || fail "retire removes the retained file"
ok "retire removes the retained file"
assert_eq "$active_sha" "$(pem_shas "$SSL_DIR/ca-bundle.pem")" \
	"ca-bundle.pem no longer holds the retired CA"
ctl --json status | jsave "$T/s.json"
assert_eq "$active_sha" "$(jlines bundle.cas "$T/s.json")" "status: bundle.cas is the active CA"
assert_eq true "$(jget bundle.published "$T/s.json")" "status: the bundle is published"
assert_eq 200 "$(agent_req -H 'X-Agent-Id: bk-agent' -H "Authorization: Bearer $TOKEN" \
	-H "If-None-Match: $OLD_ETAG" "$URL/ca-bundle")" \
	"the agent's next check-in with the old bundle id gets a new bundle (200)"
assert_eq "$active_sha" "$(pem_shas "$T/ab")" "the agent's new bundle holds the active CA only"
assert_eq "\"$(jget bundle.id "$T/r.json")\"" "$(hdr ETag)" "its ETag is the new bundle id"
assert_exit 0 "retire with nothing left exits 0" -- ctl retire
assert_contains "nothing to retire" "$OUT" "and says there is nothing to retire"

# ---- retire while a set is staged: the phase error, exit 3
assert_exit 0 "generate stages a set again" -- ctl generate
assert_exit 3 "retire while staged exits 3" -- ctl retire
assert_contains "staged" "$ERR" "the refusal says a set is staged"
assert_exit 3 "retire --dry-run while staged exits 3 too" -- ctl retire --dry-run
assert_exit 0 "backups still lists while staged" -- ctl --json backups
assert_eq 8 "$(json_get total <<<"$OUT")" "staging adds no backup"

assert_daemon_alive "at the end"
