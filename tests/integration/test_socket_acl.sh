#!/bin/bash
# A member of admin_group who is not in socket_group can use the daemon: the control socket
# carries a POSIX ACL entry granting the admin group read and write.
#
# Repro on the old code: the socket was root:socket_group 0660 and nothing else, so an
# operator in carotate-admin only got "Permission denied" from connect() (exit 2): the
# daemon would have made it an admin, but the file never let it in. Admins had to be put
# in both groups, which the documentation did not say.
# Needs root: creates test users and groups, runs the client as them.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (creates users and groups, runs the client as them)"
command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"

READ_GROUP=carotate-t
ADMIN_GRP=carotate-t-admin
ADMIN_ONLY=carotate-tadmonly
OTHER=carotate-tother

t_group "$READ_GROUP" "$ADMIN_GRP"
t_user "$ADMIN_ONLY" "$ADMIN_GRP"
t_user "$OTHER"
case " $(id -nG "$ADMIN_ONLY") " in
*" $READ_GROUP "*) fail "$ADMIN_ONLY must not be in $READ_GROUP" "got: $(id -nG "$ADMIN_ONLY")" ;;
esac
ok "user $ADMIN_ONLY: $(id "$ADMIN_ONLY")"

t_init
make_active_set
SOCKET_GROUP=$READ_GROUP
ADMIN_GROUP=$ADMIN_GRP
write_config
start_daemon

mkdir -m 0755 "$T/bin"
cp "$CAROTATECTL" "$T/bin/carotatectl"
chmod 0755 "$T/bin/carotatectl"

assert_eq "$READ_GROUP" "$(stat -c %G "$SOCK")" "the socket's group is still $READ_GROUP"
assert_exit 0 "$ADMIN_ONLY (only in $ADMIN_GRP) runs status" -- ctl_as "$ADMIN_ONLY" --json status
assert_eq steady "$(json_get phase <<<"$OUT")" "and gets the status"
assert_exit 0 "$ADMIN_ONLY runs an admin call (retire --dry-run)" -- ctl_as "$ADMIN_ONLY" retire --dry-run
assert_exit 0 "$ADMIN_ONLY generates a set" -- ctl_as "$ADMIN_ONLY" generate
assert_exit 0 "the audit log names $ADMIN_ONLY" -- ctl --json audit --limit 1
assert_eq "$ADMIN_ONLY" "$(json_get records.0.user <<<"$OUT")" "the generate is recorded as $ADMIN_ONLY's"
assert_exit 4 "$OTHER (in neither group) is still refused (exit 4)" -- ctl_as "$OTHER" status

if command -v getfacl >/dev/null; then
	getfacl --absolute-names "$SOCK" >"$T/facl" 2>&1 || fail "getfacl $SOCK" "$(cat "$T/facl")"
	assert_file_contains "group:$ADMIN_GRP:rw-" "$T/facl" "getfacl shows group:$ADMIN_GRP:rw-"
	assert_file_contains "group::rw-" "$T/facl" "the socket group keeps rw"
	assert_file_contains "mask::rw-" "$T/facl" "the mask lets both through"
	assert_file_contains "other::---" "$T/facl" "others get nothing"
else
	"$PY" -c 'import os,sys; os.getxattr(sys.argv[1], "system.posix_acl_access")' "$SOCK" ||
		fail "the socket carries no ACL (system.posix_acl_access)"
	ok "the socket carries an ACL (getfacl not installed: checked the xattr)"
fi

# When admin_group is the socket group, no ACL entry is needed and none is made.
stop_daemon
ADMIN_GROUP=$READ_GROUP
write_config
start_daemon
if command -v getfacl >/dev/null; then
	getfacl --absolute-names "$SOCK" >"$T/facl2" 2>&1
	grep -q "^group:$ADMIN_GRP" "$T/facl2" && fail "an ACL entry for $ADMIN_GRP was left" "$(cat "$T/facl2")"
	ok "admin_group = socket_group: no extra ACL entry"
fi
assert_exit 4 "$ADMIN_ONLY, no longer an admin, is refused" -- ctl_as "$ADMIN_ONLY" status
assert_daemon_alive "at the end"
