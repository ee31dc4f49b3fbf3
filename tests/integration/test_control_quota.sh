#!/bin/bash
# Readers must not starve admins ([daemon] max_clients_per_uid, admin_reserved).
#
# Repro on the old code: max_clients is one global pool. A member of the socket group (a
# reader) opened max_clients connections and kept them open; every other connection, root's
# and the admin group's included, got UNAVAILABLE "too many connections" until the reader
# let go: one reader account locked the operators out of the daemon they must run.
#
# Now: one reader uid holds at most max_clients_per_uid connections (the next is refused
# with UNAVAILABLE "too many connections from uid N"), another reader still connects, and
# the last admin_reserved slots are only for admins: when readers hold all of theirs, root
# and a member of admin_group still get `carotatectl status` answered.
# Needs root: creates test users and groups, runs clients as them.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (creates users and groups, runs the client as them)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"

READ_GROUP=carotate-t
ADMIN_GRP=carotate-t-admin
READER=carotate-treader
READER2=carotate-treader2
ADMIN=carotate-tadmin
MAX=8
RESERVED=3
PER_UID=3

t_group "$READ_GROUP" "$ADMIN_GRP"
t_user "$READER" "$READ_GROUP"
t_user "$READER2" "$READ_GROUP"
t_user "$ADMIN" "$ADMIN_GRP,$READ_GROUP"

t_init
make_active_set
SOCKET_GROUP=$READ_GROUP
ADMIN_GROUP=$ADMIN_GRP
write_config "$CONF" "max_clients = $MAX" "admin_reserved = $RESERVED" \
	"max_clients_per_uid = $PER_UID" "idle_timeout = 120s"
start_daemon

mkdir -m 0755 "$T/bin"
cp "$CAROTATECTL" "$T/bin/carotatectl"
cp "$IT_DIR/rawclient.py" "$T/bin/rawclient.py"
chmod 0755 "$T/bin/carotatectl" "$T/bin/rawclient.py"

# runas USER CMD...: CMD as USER, with USER's groups.
runas() {
	local user=$1
	shift
	setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups "$@"
}
as() {
	local user=$1
	shift
	runas "$user" "$T/bin/carotatectl" --socket "$SOCK" "$@"
}

# hold USER N OUT: USER opens N connections in the background and keeps the served ones;
# waits until it has said how many were served. Sets HOLD_PID.
hold() {
	runas "$1" "$PY" "$T/bin/rawclient.py" "$SOCK" hold "$2" 300 >"$3" 2>&1 &
	HOLD_PID=$!
	t_track_pid "$HOLD_PID"
	wait_until 10000 grep -q '^served=' "$3" || fail "$1 could not open its connections" "$(cat "$3")"
}

# ---- per uid: the reader tries max_clients connections, keeps PER_UID
hold "$READER" "$MAX" "$T/hold1.out"
assert_file_contains "served=$PER_UID refused=$((MAX - PER_UID))" "$T/hold1.out" \
	"$READER opening $MAX connections keeps $PER_UID of them (max_clients_per_uid)"
assert_file_contains "UNAVAILABLE" "$T/hold1.out" "the refused ones get an UNAVAILABLE reply"
assert_file_contains "too many connections from uid $(id -u "$READER") (limit $PER_UID per user)" \
	"$T/hold1.out" "the reply says the per-user limit was hit"
assert_exit 0 "another reader ($READER2) still connects" -- as "$READER2" status
assert_exit 2 "$READER's next connection is refused (exit 2: daemon unavailable)" -- \
	as "$READER" status
assert_contains "too many connections from uid" "$ERR" "carotatectl shows the per-user refusal"

# ---- reserved: a second reader takes the rest of the readers' slots
hold "$READER2" "$MAX" "$T/hold2.out"
assert_file_contains "served=$((MAX - RESERVED - PER_UID)) refused=" "$T/hold2.out" \
	"$READER2 gets only the readers' slots left ($((MAX - RESERVED - PER_UID)))"
assert_file_contains "kept for admins" "$T/hold2.out" "the refusal says the rest is kept for admins"
assert_exit 0 "readers hold all their slots: root's status is answered" -- ctl status
assert_exit 0 "readers hold all their slots: $ADMIN's status is answered" -- as "$ADMIN" status
assert_exit 0 "and $ADMIN's admin call works (retire --dry-run)" -- as "$ADMIN" retire --dry-run
# The admins' slots really hold admins: RESERVED of them at once, all served.
hold root "$RESERVED" "$T/hold3.out"
assert_file_contains "served=$RESERVED refused=0" "$T/hold3.out" \
	"root holds the $RESERVED reserved slots"
run ctl status
[ "$RC" -ne 0 ] || fail "max_clients ($MAX) still binds admins: connection $((MAX + 1)) was served"
ok "max_clients still binds admins (connection $((MAX + 1)) refused, exit $RC)"

# ---- the log is not spammed: one line, then a count
n=$(grep -c 'refusing connections' "$DAEMON_LOG" || true)
[ "$n" -le 2 ] || fail "refusals are logged once per 10 s, not per connection" "got $n lines"
ok "refusals logged $n time(s), not once per connection"

# ---- validation: readers need a slot
write_config "$T/bad.conf" "max_clients = 4" "admin_reserved = 4"
assert_exit 1 "admin_reserved = max_clients is refused" -- "$CAROTATED" -c "$T/bad.conf" --check-config
assert_contains "admin_reserved (4) must be less than max_clients (4)" "$OUT$ERR" \
	"the configuration error says why"
assert_daemon_alive "at the end"
