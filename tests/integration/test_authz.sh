#!/bin/bash
# Who may talk to the daemon: the socket file's mode and group (first gate) and the daemon's
# own peer-credential check (second gate). Needs root: creates test users and groups.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (creates users and groups, runs the client as them)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"

READ_GROUP=carotate-t
ADMIN_GRP=carotate-t-admin
READER=carotate-treader
ADMIN=carotate-tadmin
OTHER=carotate-tother

t_group "$READ_GROUP" "$ADMIN_GRP"
t_user "$READER" "$READ_GROUP"
t_user "$ADMIN" "$ADMIN_GRP,$READ_GROUP"
t_user "$OTHER" ""
for u in "$READER" "$ADMIN" "$OTHER"; do
	ok "user $u: $(id "$u")"
done
case " $(id -nG "$OTHER") " in
*" $READ_GROUP "* | *" $ADMIN_GRP "*)
	fail "$OTHER must be in neither test group" "got: $(id -nG "$OTHER")"
	;;
esac

t_init
make_active_set
SOCKET_GROUP=$READ_GROUP
ADMIN_GROUP=$ADMIN_GRP
write_config
start_daemon

# The client runs as other users: give them a copy they can reach whatever the build path.
mkdir -m 0755 "$T/bin"
cp "$CAROTATECTL" "$T/bin/carotatectl"
cp "$IT_DIR/rawclient.py" "$T/bin/rawclient.py"
chmod 0755 "$T/bin/carotatectl" "$T/bin/rawclient.py"


assert_eq "660" "$(stat -c %a "$SOCK")" "socket mode is 0660"
assert_eq "$READ_GROUP" "$(stat -c %G "$SOCK")" "socket group is $READ_GROUP"
assert_eq "root" "$(stat -c %U "$SOCK")" "socket owner is root"

# ---- first gate: the file's permissions
assert_exit 4 "$OTHER (in neither group): exit 4" -- ctl_as "$OTHER" status
assert_contains "permission denied" "$OUT$ERR" "$OTHER is told 'permission denied'"

assert_exit 0 "$READER (in $READ_GROUP): status exits 0" -- ctl_as "$READER" --json status
echo "$OUT" >"$T/reader.json"
assert_eq "$(cert_sha256 "$SSL_DIR/ca.crt")" "$(json_get active.ca.sha256 "$T/reader.json")" \
	"$READER gets a JSON status (active.ca.sha256 matches)"
assert_exit 0 "$READER: human status exits 0" -- ctl_as "$READER" status
assert_exit 0 "$READER: report exits 0" -- ctl_as "$READER" --json report
assert_exit 4 "$READER: exclude is for admins (exit 4)" -- ctl_as "$READER" exclude a1 --reason x
assert_contains "needs the admin role" "$ERR" "$READER is told exclude needs the admin role"
assert_exit 4 "$READER: include is for admins (exit 4)" -- ctl_as "$READER" include a1

assert_exit 0 "$ADMIN (in $ADMIN_GRP and $READ_GROUP): status exits 0" -- ctl_as "$ADMIN" --json status
json_get phase >/dev/null <<<"$OUT" || fail "$ADMIN's status is JSON" "got: $OUT"
ok "$ADMIN's status --json parses"

# A process whose primary (effective) group is the socket group, with no supplementary
# groups, is a member too: the file lets it in, and so must the daemon.
assert_exit 0 "$OTHER with egid $READ_GROUP and no supplementary groups: exit 0" -- \
	setpriv --reuid="$(id -u "$OTHER")" --regid="$(getent group "$READ_GROUP" | cut -d: -f3)" \
	--clear-groups "$T/bin/carotatectl" --socket "$SOCK" status

# ---- second gate: the daemon's own check, with the file opened to everyone
chmod 0666 "$SOCK"
assert_exit 4 "socket 0666: $OTHER is refused by the daemon itself (exit 4)" -- \
	ctl_as "$OTHER" status
assert_contains "permission denied" "$OUT$ERR" "the daemon's refusal says 'permission denied'"
assert_exit 4 "socket 0666: $OTHER --json status is refused too (exit 4)" -- \
	ctl_as "$OTHER" --json status
assert_exit 0 "socket 0666: $READER still allowed" -- ctl_as "$READER" status
assert_exit 0 "socket 0666: $ADMIN still allowed" -- ctl_as "$ADMIN" status
# nobody (no group at all) over the raw protocol: a PERMISSION_DENIED reply, then close.
rc=0
setpriv --reuid=nobody --regid=nogroup --clear-groups \
	"$PY" "$T/bin/rawclient.py" "$SOCK" frame 08015200 2 close || rc=$?
[ "$rc" -eq 0 ] || fail "nobody gets a PERMISSION_DENIED reply and is disconnected (rawclient exit $rc)"
ok "nobody gets a PERMISSION_DENIED reply and is disconnected"
chmod 0660 "$SOCK"

assert_exit 0 "root still allowed" -- ctl status
assert_daemon_alive "at the end"
