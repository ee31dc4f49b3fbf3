#!/bin/bash
# status never answers from a stale cache. The daemon reuses its last status reply within
# the same second while nothing it was read from has changed (inotify on the SSL directory,
# its staging directory, the set's files, the published bundle and the retained CAs). Each
# case here calls status, changes one of those files, and calls status again, within one
# second of the daemon's clock when the machine allows (the case is retried until both
# calls fall in one second); the second reply must show the change:
#
#  - the active set replaced by renames (what a manual recovery does) and rewritten in place;
#  - a staged set written by generate, a staged file rewritten by hand, the set discarded;
#  - a retained CA added (its directory created with it), rewritten in place with a
#    replacement time past the retention window, and removed. The in-place rewrite is the
#    reproduction: the reply used to be validated by the identity of the retained
#    directory alone, which an in-place write leaves unchanged, so for the rest of that
#    second status still listed a CA the bundle no longer held;
#  - the published ca-bundle.pem rewritten (published turns false);
#  - a reload (SIGHUP) naming another key file: nothing on disk changes, the answer does;
#  - a swap: rotate (forced, no agents) through a real nginx; status right after it shows
#    the new active set and nothing staged;
#  - the state directory's other entries (the ledger's files) churn without a wrong answer.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

t_init
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start

make_cert_set "$T/other" other
RET="$STATE_DIR/retained"
SAME=0

# next_second: waits for the clock to turn, so that the calls after it share a second.
next_second() {
	local s
	s=$(date +%s)
	while [ "$(date +%s)" = "$s" ]; do sleep 0.005; done
}

# pair CMD...: status into $T/a.json, CMD, status into $T/b.json (flattened after, so that
# python's start-up does not come between the calls). 0 when both calls had the same now.
pair() {
	local a b
	next_second
	a=$(ctl --json status)
	"$@"
	b=$(ctl --json status)
	printf '%s' "$a" | jsave "$T/a.json"
	printf '%s' "$b" | jsave "$T/b.json"
	[ "$(jget now "$T/a.json")" = "$(jget now "$T/b.json")" ]
}

# fresh WHAT CMD...: pair, retried (CMD must be repeatable) until both calls share a second.
fresh() {
	local what=$1 i
	shift
	for i in 1 2 3 4 5; do
		if pair "$@"; then
			SAME=$((SAME + 1))
			return 0
		fi
		t_log "$what: the two calls fell in different seconds; again ($i)"
	done
	t_log "$what: never within one second; checked across seconds"
}

leaf() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
b() { jget "$1" "$T/b.json"; }

# replace_by_rename SRC DST: a new file moved over DST, as a manual cp to a temporary + mv does.
replace_by_rename() {
	cp "$1" "$2.tmp"
	chmod --reference="$2" "$2.tmp"
	mv -f "$2.tmp" "$2"
}
# rewrite_in_place SRC DST: the same inode, truncated and written again.
rewrite_in_place() { cat "$1" >"$2"; }

echo "-- the active set"
swap_active() {
	replace_by_rename "$1/ca.crt" "$SSL_DIR/ca.crt"
	replace_by_rename "$1/server.crt" "$SSL_DIR/server.crt"
	replace_by_rename "$1/server.key" "$SSL_DIR/server.key"
}
cp -p "$SSL_DIR/ca.crt" "$SSL_DIR/server.crt" "$SSL_DIR/server.key" "$T/"
mkdir -p "$T/first"
cp -p "$T/ca.crt" "$T/server.crt" "$T/server.key" "$T/first/"
rm -f "$T/ca.crt" "$T/server.crt" "$T/server.key"
flip_active() {
	if [ "$(leaf "$SSL_DIR/server.crt")" = "$(leaf "$T/first/server.crt")" ]; then
		swap_active "$T/other"
	else
		swap_active "$T/first"
	fi
}
fresh "active set replaced by renames" flip_active
assert_eq "$(leaf "$SSL_DIR/server.crt")" "$(b active.server.sha256)" "status shows the renamed-in server certificate"
assert_eq "$(cert_sha256 "$SSL_DIR/ca.crt")" "$(b active.ca.sha256)" "and the renamed-in CA"
assert_ne "$(jget active.server.sha256 "$T/a.json")" "$(b active.server.sha256)" "which the call before did not show"

flip_in_place() {
	if [ "$(leaf "$SSL_DIR/server.crt")" = "$(leaf "$T/first/server.crt")" ]; then
		rewrite_in_place "$T/other/server.crt" "$SSL_DIR/server.crt"
	else
		rewrite_in_place "$T/first/server.crt" "$SSL_DIR/server.crt"
	fi
}
fresh "active server.crt rewritten in place" flip_in_place
assert_eq "$(leaf "$SSL_DIR/server.crt")" "$(b active.server.sha256)" "status shows server.crt rewritten in place"
assert_ne "$(jget active.server.sha256 "$T/a.json")" "$(b active.server.sha256)" "which the call before did not show"
# Back to one consistent set for what follows.
swap_active "$T/first"

echo "-- the staged set"
# The daemon's own changes: once each (a second generate would be refused), within one
# second or not.
pair ctl generate || t_log "generate: the two calls fell in different seconds"
assert_eq steady "$(jget phase "$T/a.json")" "before generate: steady"
assert_eq staged "$(b phase)" "after generate: staged"
assert_eq "$(cert_sha256 "$SSL_DIR/new/ca.crt")" "$(b staged.ca.sha256)" "status shows the staged CA"
cp "$SSL_DIR/new/ca.crt" "$T/staged-ca.crt"
flip_staged_ca() {
	if [ "$(cert_sha256 "$SSL_DIR/new/ca.crt")" = "$(cert_sha256 "$T/staged-ca.crt")" ]; then
		rewrite_in_place "$T/other/ca.crt" "$SSL_DIR/new/ca.crt"
	else
		rewrite_in_place "$T/staged-ca.crt" "$SSL_DIR/new/ca.crt"
	fi
}
fresh "staged ca.crt rewritten in place" flip_staged_ca
assert_eq "$(cert_sha256 "$SSL_DIR/new/ca.crt")" "$(b staged.ca.sha256)" "status shows new/ca.crt rewritten in place"
assert_ne "$(jget staged.ca.sha256 "$T/a.json")" "$(b staged.ca.sha256)" "which the call before did not show"
rewrite_in_place "$T/staged-ca.crt" "$SSL_DIR/new/ca.crt"
pair ctl discard || t_log "discard: the two calls fell in different seconds"
assert_eq staged "$(jget phase "$T/a.json")" "before discard: staged"
assert_eq steady "$(b phase)" "after discard: steady"
assert_eq null "$(b staged)" "and nothing staged"

echo "-- retained CAs"
RET_CA="$RET/$(cert_der_sha256 "$T/other/ca.crt").crt"
retained_text() { printf '# replaced %s\n' "$1" && cat "$T/other/ca.crt"; }
retained_text "$(date +%s)" >"$T/ret-now.crt"
retained_text "$(($(date +%s) - 40 * 86400))" >"$T/ret-old.crt"
add_retained() {
	rm -rf "$RET"
	mkdir -m 0700 "$RET"
	cp "$T/ret-now.crt" "$RET_CA"
}
fresh "retained directory and CA created" add_retained
assert_contains "$(cert_der_sha256 "$T/other/ca.crt")" "$(b bundle.cas)" "status lists the retained CA"
flip_retained() {
	if cmp -s "$RET_CA" "$T/ret-now.crt"; then
		rewrite_in_place "$T/ret-old.crt" "$RET_CA"
	else
		rewrite_in_place "$T/ret-now.crt" "$RET_CA"
	fi
}
for round in 1 2; do
	fresh "retained CA rewritten in place ($round)" flip_retained
	if cmp -s "$RET_CA" "$T/ret-now.crt"; then
		assert_contains "$(cert_der_sha256 "$T/other/ca.crt")" "$(b bundle.cas)" \
			"a retained CA rewritten in place within retention: listed ($round)"
	else
		case "$(b bundle.cas)" in
		*"$(cert_der_sha256 "$T/other/ca.crt")"*)
			fail "a retained CA rewritten in place past retention is still listed ($round)" \
				"before: $(jget bundle.cas "$T/a.json")" "after: $(b bundle.cas)"
			;;
		esac
		ok "a retained CA rewritten in place past retention: no longer listed ($round)"
	fi
	assert_ne "$(jget bundle.id "$T/a.json")" "$(b bundle.id)" "the bundle id moved with it ($round)"
done
rewrite_in_place "$T/ret-now.crt" "$RET_CA"
fresh "retained CA removed" rm -f "$RET_CA"
case "$(b bundle.cas)" in
*"$(cert_der_sha256 "$T/other/ca.crt")"*) fail "a removed retained CA is still listed" "$(b bundle.cas)" ;;
esac
ok "a removed retained CA is no longer listed"

echo "-- the published bundle and the directory itself"
cp "$SSL_DIR/ca-bundle.pem" "$T/published.pem"
flip_published() {
	if cmp -s "$SSL_DIR/ca-bundle.pem" "$T/published.pem"; then
		rewrite_in_place "$T/other/ca.crt" "$SSL_DIR/ca-bundle.pem"
	else
		rewrite_in_place "$T/published.pem" "$SSL_DIR/ca-bundle.pem"
	fi
}
fresh "ca-bundle.pem rewritten" flip_published
if cmp -s "$SSL_DIR/ca-bundle.pem" "$T/published.pem"; then want=true; else want=false; fi
assert_eq "$want" "$(b bundle.published)" "bundle.published follows ca-bundle.pem"
assert_ne "$(jget bundle.published "$T/a.json")" "$(b bundle.published)" "which the call before did not show"
rewrite_in_place "$T/published.pem" "$SSL_DIR/ca-bundle.pem"

# The ledger's files come and go at every batch: status stays right (and cached, unseen).
churn() { for i in 1 2 3 4 5 6 7 8; do : >"$STATE_DIR/churn.$i" && rm -f "$STATE_DIR/churn.$i"; done; }
fresh "state directory churn" churn
assert_eq "$(jget bundle.id "$T/a.json")" "$(b bundle.id)" "unrelated state files change nothing"
assert_eq "$(leaf "$SSL_DIR/server.crt")" "$(b active.server.sha256)" "and the active set is still right"

echo "-- a reload naming another key file"
# Nothing on disk changes (the daemon has nothing to publish either): only the answer does.
reloads() { grep -c "reload: configuration re-read" "$DAEMON_LOG" || true; }
reloaded_since() { [ "$(reloads)" -gt "$1" ]; }
flip_key_name() {
	local n
	n=$(reloads)
	if grep -q '^key = server.key$' "$CONF"; then
		sed -i 's/^key = server.key$/key = absent.key/' "$CONF"
	else
		sed -i 's/^key = absent.key$/key = server.key/' "$CONF"
	fi
	kill -HUP "$DAEMON_PID"
	wait_until 5000 reloaded_since "$n" || fail "no reload within 5 s" "$(tail -n 5 "$DAEMON_LOG")"
}
fresh "reload with [ssl] key changed" flip_key_name
if grep -q '^key = server.key$' "$CONF"; then want=true; else want=false; fi
assert_eq "$want" "$(b active.key_present)" "status looks for the key file the configuration names now"
assert_ne "$(jget active.key_present "$T/a.json")" "$(b active.key_present)" "which the call before did not"
grep -q '^key = server.key$' "$CONF" || flip_key_name

echo "-- a swap: rotate"
assert_exit 0 "generate" -- ctl generate
STAGED=$(leaf "$SSL_DIR/new/server.crt")
a=$(ctl --json status)
assert_exit 0 "rotate --force" -- ctl --json rotate --force --reason "status freshness test"
b=$(ctl --json status)
printf '%s' "$a" | jsave "$T/a.json"
printf '%s' "$b" | jsave "$T/b.json"
assert_eq "$STAGED" "$(jget staged.server.sha256 "$T/a.json")" "before rotate: the new set is staged"
assert_eq "$STAGED" "$(b active.server.sha256)" "right after rotate: status shows it active"
assert_eq steady "$(b phase)" "and the phase steady"
assert_eq null "$(b staged)" "and nothing staged"
assert_eq "$(cert_sha256 "$SSL_DIR/ca.crt")" "$(b active.ca.sha256)" "and the active CA on disk"

[ "$SAME" -gt 0 ] || fail "no case ran within one second: the machine is too slow to tell"
ok "$SAME cases had both calls within one second"
assert_daemon_alive
