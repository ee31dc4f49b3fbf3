#!/bin/bash
# carotate-renew.service and carotate-renew.timer (issue 18): before them nothing renewed the
# server certificate without an operator. Now `make install` installs both (0644), the
# service runs `carotatectl renew --if-due` (the daemon's [renew] before, default 30d) as
# carotate-renew, a system user that sysusers.d puts in carotate-admin; the timer is daily,
# with a random delay, Persistent=; `systemd-analyze verify` is silent on both and
# `systemd-analyze security` rates the service 2.0 or better; Debian ships the timer with
# --no-enable and RPM never presets it.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it checks the systemd units with systemd-analyze"
command -v systemd-analyze >/dev/null || t_skip "systemd-analyze is not installed"

t_init
ROOT="$T/root"
mkdir -p "$ROOT/usr/lib/systemd" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/etc"
ln -s usr/lib "$ROOT/lib"
ln -s usr/bin "$ROOT/bin"
cp -a /lib/systemd/system "$ROOT/usr/lib/systemd/"
rm -f "$ROOT"/usr/lib/systemd/system/carotate*
extra=()
case "$CAROTATE_BUILD" in */asan*) extra=(SANITIZE=1) ;; esac
assert_exit 0 "make install" -- env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$REPO_ROOT" \
	--no-print-directory -s install DESTDIR="$ROOT" PREFIX=/usr O="$CAROTATE_BUILD" "${extra[@]}"
for u in carotate-renew.service carotate-renew.timer; do
	[ -f "$ROOT/lib/systemd/system/$u" ] || fail "make install installs $u"
	assert_eq 644 "$(stat -c %a "$ROOT/lib/systemd/system/$u")" "$u installed 0644"
done
SVC="$ROOT/lib/systemd/system/carotate-renew.service"
TMR="$ROOT/lib/systemd/system/carotate-renew.timer"
assert_eq "ExecStart=/usr/bin/carotatectl renew --if-due" \
	"$(grep '^ExecStart=' "$SVC")" "the service renews within [renew] before's default"
assert_eq "User=carotate-renew" "$(grep '^User=' "$SVC")" "as the carotate-renew user"
grep -q '^m carotate-renew carotate-admin$' "$ROOT/usr/lib/sysusers.d/carotate.conf" ||
	fail "sysusers.d puts carotate-renew in the admin group"
ok "sysusers.d puts carotate-renew in the admin group"
for kv in OnCalendar=daily RandomizedDelaySec=1h Persistent=yes; do
	grep -qx "$kv" "$TMR" || fail "the timer has $kv"
done
ok "the timer is daily, randomized, persistent"

run systemd-analyze verify --man=no --root="$ROOT" /lib/systemd/system/carotate-renew.timer \
	/lib/systemd/system/carotate-renew.service
if [ "$RC" -ne 0 ] || [ -n "$OUT$ERR" ]; then
	fail "systemd-analyze verify is clean" "exit $RC" "$OUT" "$ERR"
fi
ok "systemd-analyze verify: exit 0, not a word"

run systemd-analyze security --offline=true --no-pager "$REPO_ROOT/systemd/carotate-renew.service"
EXPOSURE=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for carotate-renew\.service: \([0-9.]*\).*/\1/p')
assert_match '^[0-9]+\.[0-9]+$' "$EXPOSURE" "the exposure level is reported"
awk -v e="$EXPOSURE" 'BEGIN { exit !(e <= 2.0) }' || fail "exposure at most 2.0" "got $EXPOSURE"
ok "exposure $EXPOSURE <= 2.0"

grep -q -- '--no-enable --no-start carotate-renew.timer' "$REPO_ROOT/packaging/debian/rules" ||
	fail "Debian ships the timer disabled"
ok "Debian ships the timer disabled"
if grep -q '%systemd_post.*carotate-renew' "$REPO_ROOT"/packaging/rpm/*.spec; then
	fail "RPM does not preset the timer"
fi
ok "RPM does not preset the timer"
