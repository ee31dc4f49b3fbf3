#!/bin/bash
# systemd (issue 6): the unit, sysusers.d and tmpfiles.d files, checked offline with systemd's
# own tools (systemd is not PID 1 where the tests run), and the daemon run the way the unit
# runs it:
#  - `make install` into a throwaway root; `systemd-analyze verify` of the installed unit is
#    clean (and does complain about a broken copy, so that "clean" means something);
#  - `systemd-analyze security --offline=true` rates the unit at most 1.5;
#  - carotate-agent.service and .timer (issue 16): installed, verify clean, exposure at most
#    2.0, root without capabilities writing only its directories, the timer's schedule;
#  - the unit, the packaged carotated.conf, the nginx snippet, sysusers and tmpfiles agree on
#    every path, user and group;
#  - systemd-sysusers creates the users and groups in that root, systemd-tmpfiles the
#    directories with the owners and modes the daemon checks (and repairs loose ones);
#  - readiness: READY=1 reaches $NOTIFY_SOCKET only once an interrupted swap was recovered;
#    STOPPING=1 at SIGTERM;
#  - as root: the daemon under exactly the unit's capability bounding set, no_new_privs, a
#    network namespace of its own and UMask=0077 (setpriv, unshare): READY=1 through it, the
#    sockets handed to their groups, the worker as the agent user with nothing, an agent
#    linking, a set staged with the right file modes, a misbehaving worker killed, SIGHUP,
#    SIGTERM; the reload command does not inherit NOTIFY_SOCKET; every system call made is
#    in the unit's SystemCallFilter= (strace; not under sanitizers); and each capability of
#    the unit is needed: without it, what breaks.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	command -v "$tool" >/dev/null || t_skip "$tool is not installed (Debian package systemd)"
done

t_init
UNIT_SRC="$REPO_ROOT/systemd/carotated.service"
PACKAGED_CONF="$REPO_ROOT/packaging/carotated.conf"
NGINX_SNIPPET="$REPO_ROOT/packaging/nginx/carotate.conf"
NGINX_SNIPPETS_MORE="$REPO_ROOT/packaging/nginx"
ROOT="$T/root"
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1
ASAN=0
case "$CAROTATE_BUILD" in */asan*) ASAN=1 ;; esac

# unit_get KEY: the values of KEY= in the unit, one line each.
unit_get() { sed -n "s/^$1=//p" "$UNIT_SRC"; }
# conf_get SECTION KEY: a value of the packaged carotated.conf.
conf_get() {
	awk -v s="[$1]" -v k="$2" '
		/^\[/ { in_s = ($0 == s); next }
		in_s && $0 !~ /^[#;]/ && index($0, "=") {
			key = $0; sub(/[ \t]*=.*/, "", key)
			if (key == k) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); print v }
		}' "$PACKAGED_CONF"
}

# ---------------------------------------------------------------- make install
# The root holds the host's units too: verify loads sysinit.target and the like.
mkdir -p "$ROOT/usr/lib/systemd" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/etc"
ln -s usr/lib "$ROOT/lib"
ln -s usr/bin "$ROOT/bin"
cp -a /lib/systemd/system "$ROOT/usr/lib/systemd/"
rm -f "$ROOT/usr/lib/systemd/system/carotated.service"
cp /bin/kill "$ROOT/usr/bin/kill" # ExecReload's

# make_install DESTDIR [VAR=VALUE...]: the Makefile's install target, on our build directory.
make_install() {
	local dest=$1 extra=()
	shift
	[ "$ASAN" -eq 1 ] && extra=(SANITIZE=1)
	env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make -C "$REPO_ROOT" --no-print-directory -s \
		install DESTDIR="$dest" O="$CAROTATE_BUILD" "${extra[@]}" "$@"
}
assert_exit 0 "make install DESTDIR=root PREFIX=/usr" -- make_install "$ROOT" PREFIX=/usr
INSTALLED_UNIT="$ROOT/lib/systemd/system/carotated.service"
for f in "$INSTALLED_UNIT" "$ROOT/usr/lib/sysusers.d/carotate.conf" \
	"$ROOT/usr/lib/tmpfiles.d/carotate.conf"; do
	[ -f "$f" ] || fail "make install installs ${f#"$ROOT"}" "$(cd "$ROOT" && find . -newer "$T/ssl" -type f)"
	assert_eq 644 "$(stat -c %a "$f")" "${f#"$ROOT"} installed 0644"
done
cmp -s "$UNIT_SRC" "$INSTALLED_UNIT" || fail "with PREFIX=/usr the installed unit is systemd/carotated.service" \
	"$(diff "$UNIT_SRC" "$INSTALLED_UNIT")"
ok "with PREFIX=/usr the installed unit is systemd/carotated.service as it is"
if ! cmp -s "$REPO_ROOT/systemd/carotate.sysusers" "$ROOT/usr/lib/sysusers.d/carotate.conf" ||
	! cmp -s "$REPO_ROOT/systemd/carotate.tmpfiles" "$ROOT/usr/lib/tmpfiles.d/carotate.conf"; then
	fail "sysusers.d and tmpfiles.d files installed as they are"
fi
ok "sysusers.d/carotate.conf and tmpfiles.d/carotate.conf installed as they are"
assert_exit 0 "make install with the default PREFIX" -- make_install "$T/root-local"
assert_eq "ExecStart=/usr/local/sbin/carotated -f -c /etc/carotate/carotated.conf" \
	"$(grep '^ExecStart=' "$T/root-local/lib/systemd/system/carotated.service")" \
	"with PREFIX=/usr/local the unit starts /usr/local/sbin/carotated"

# ---------------------------------------------------------------- systemd-analyze verify
# Documentation= names man pages: checked against the root's when it has them (man(1) of
# the host does the looking), else left out of the check.
verify_env=()
verify_man=--man=no
if command -v man >/dev/null && ls "$ROOT"/usr/share/man/man8/carotated.8* >/dev/null 2>&1; then
	verify_env=("MANPATH=$ROOT/usr/share/man")
	verify_man=--man=yes
else
	t_log "note: no carotated(8) in the installed root or no man(1): Documentation= not checked"
fi
run env "${verify_env[@]}" systemd-analyze verify "$verify_man" --root="$ROOT" \
	/lib/systemd/system/carotated.service
if [ "$RC" -ne 0 ] || [ -n "$OUT$ERR" ]; then
	fail "systemd-analyze verify is clean" "exit $RC" "$OUT" "$ERR"
fi
ok "systemd-analyze verify --root: exit 0, not a word"

sed -e 's|^ExecStart=/usr/sbin/carotated|ExecStart=/usr/sbin/carotated-missing|' \
	-e 's|^\[Service\]|[Service]\nPrivateNetwrk=yes|' "$INSTALLED_UNIT" \
	>"$ROOT/lib/systemd/system/carotated-broken.service"
run systemd-analyze verify --man=no --root="$ROOT" /lib/systemd/system/carotated-broken.service
assert_contains "Unknown key 'PrivateNetwrk'" "$OUT$ERR" "verify reports a misspelt key in a broken copy"
assert_contains "carotated-missing is not executable" "$OUT$ERR" "verify reports a missing ExecStart binary"
rm "$ROOT/lib/systemd/system/carotated-broken.service"

# ---------------------------------------------------------------- systemd-analyze security
run systemd-analyze security --offline=true --no-pager "$UNIT_SRC"
assert_eq 0 "$RC" "systemd-analyze security --offline=true runs"
EXPOSURE=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for carotated\.service: \([0-9.]*\).*/\1/p')
assert_match '^[0-9]+\.[0-9]+$' "$EXPOSURE" "the exposure level is reported"
t_log "exposure $EXPOSURE; what still counts against it:"
printf '%s\n' "$OUT" | grep -E ' [0-9]+\.[0-9]+$' | sed 's/  */ /g; s/^/    /' >&2 || true
awk -v e="$EXPOSURE" 'BEGIN { exit !(e <= 1.5) }' ||
	fail "the unit's exposure is at most 1.5" "got $EXPOSURE" "$(printf '%s\n' "$OUT" | grep -E ' [0-9]+\.[0-9]+$')"
ok "exposure $EXPOSURE <= 1.5"
assert_exit 0 "systemd-analyze security --threshold=15 agrees" -- \
	systemd-analyze security --offline=true --threshold=15 --no-pager "$UNIT_SRC"

# ---------------------------------------------------------------- carotate-agent's units
# (issue 16) Installed by make install; verify clean (service and timer); exposure at most
# 2.0; a oneshot check-in, root without capabilities, writing only its configuration and
# state directories, which are the packaged agent.conf's; the timer's schedule.
AGENT_UNIT_SRC="$REPO_ROOT/systemd/carotate-agent.service"
AGENT_TIMER_SRC="$REPO_ROOT/systemd/carotate-agent.timer"
AGENT_CONF_SRC="$REPO_ROOT/packaging/carotate-agent.conf"
for f in "$AGENT_UNIT_SRC" "$AGENT_TIMER_SRC" "$AGENT_CONF_SRC"; do
	[ -f "$f" ] || fail "${f#"$REPO_ROOT"/} exists"
done
agent_get() { sed -n "s/^$2=//p" "$1"; }
agent_conf_get() { sed -n "s/^$1 = *//p" "$AGENT_CONF_SRC"; }
cmp -s "$AGENT_UNIT_SRC" "$ROOT/lib/systemd/system/carotate-agent.service" ||
	fail "with PREFIX=/usr make install installs systemd/carotate-agent.service as it is"
cmp -s "$AGENT_TIMER_SRC" "$ROOT/lib/systemd/system/carotate-agent.timer" ||
	fail "make install installs systemd/carotate-agent.timer as it is"
cmp -s "$AGENT_CONF_SRC" "$ROOT/etc/carotate-agent/agent.conf" ||
	fail "make install installs packaging/carotate-agent.conf as /etc/carotate-agent/agent.conf"
assert_eq "644 644 644" "$(stat -c %a "$ROOT"/lib/systemd/system/carotate-agent.{service,timer} \
	"$ROOT/etc/carotate-agent/agent.conf" | tr '\n' ' ' | sed 's/ $//')" "the agent's units and agent.conf installed 0644"
ok "make install: carotate-agent.service, .timer and /etc/carotate-agent/agent.conf as they are"
assert_eq "/usr/local/bin/carotate-agent check-in" \
	"$(agent_get "$T/root-local/lib/systemd/system/carotate-agent.service" ExecStart)" \
	"with PREFIX=/usr/local the agent unit starts /usr/local/bin/carotate-agent"
for u in carotate-agent.service carotate-agent.timer; do
	run env "${verify_env[@]}" systemd-analyze verify "$verify_man" --root="$ROOT" "/lib/systemd/system/$u"
	if [ "$RC" -ne 0 ] || [ -n "$OUT$ERR" ]; then
		fail "systemd-analyze verify $u is clean" "exit $RC" "$OUT" "$ERR"
	fi
	ok "systemd-analyze verify --root $u: exit 0, not a word"
done
run systemd-analyze security --offline=true --no-pager "$AGENT_UNIT_SRC"
assert_eq 0 "$RC" "systemd-analyze security --offline=true runs on the agent unit"
AGENT_EXPOSURE=$(printf '%s\n' "$OUT" | sed -n 's/.*Overall exposure level for carotate-agent\.service: \([0-9.]*\).*/\1/p')
assert_match '^[0-9]+\.[0-9]+$' "$AGENT_EXPOSURE" "the agent unit's exposure level is reported"
t_log "carotate-agent.service: exposure $AGENT_EXPOSURE; what still counts against it:"
printf '%s\n' "$OUT" | grep -E ' [0-9]+\.[0-9]+$' | sed 's/  */ /g; s/^/    /' >&2 || true
awk -v e="$AGENT_EXPOSURE" 'BEGIN { exit !(e <= 2.0) }' ||
	fail "the agent unit's exposure is at most 2.0" "got $AGENT_EXPOSURE"
ok "carotate-agent.service: exposure $AGENT_EXPOSURE <= 2.0"
grep -q "rates this unit $AGENT_EXPOSURE " "$AGENT_UNIT_SRC" ||
	fail "the agent unit's comment states its exposure ($AGENT_EXPOSURE)" "$(grep -n 'rates this unit' "$AGENT_UNIT_SRC")"
ok "the agent unit's comment states its exposure"
assert_eq "oneshot" "$(agent_get "$AGENT_UNIT_SRC" Type)" "the agent service is a oneshot"
assert_eq "/usr/bin/carotate-agent check-in" "$(agent_get "$AGENT_UNIT_SRC" ExecStart)" "it runs one check-in"
assert_eq "" "$(agent_get "$AGENT_UNIT_SRC" User)" "as root (it replaces a trust file of root's)"
assert_eq "" "$(agent_get "$AGENT_UNIT_SRC" CapabilityBoundingSet)" "with no capability at all"
assert_eq "" "$(agent_get "$AGENT_UNIT_SRC" AmbientCapabilities)" "and no ambient ones"
assert_eq "" "$(agent_get "$AGENT_UNIT_SRC" WantedBy)" "the service is started by its timer, not enabled itself"
for kv in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
	NoNewPrivileges=yes MemoryDenyWriteExecute=yes LockPersonality=yes RestrictSUIDSGID=yes \
	RestrictNamespaces=yes ProtectKernelTunables=yes ProtectKernelModules=yes \
	ProtectControlGroups=yes SystemCallArchitectures=native StateDirectoryMode=0700 UMask=0022; do
	assert_eq "${kv#*=}" "$(agent_get "$AGENT_UNIT_SRC" "${kv%%=*}")" "agent unit: $kv"
done
assert_eq "AF_INET AF_INET6 AF_UNIX" "$(agent_get "$AGENT_UNIT_SRC" RestrictAddressFamilies)" \
	"agent unit: IPv4, IPv6 and Unix sockets only"
assert_eq "@system-service|~@privileged @resources" \
	"$(agent_get "$AGENT_UNIT_SRC" SystemCallFilter | tr '\n' '|' | sed 's/|$//')" \
	"agent unit: @system-service without @privileged and @resources"
assert_eq "-$(dirname "$(agent_conf_get bundle)")" "$(agent_get "$AGENT_UNIT_SRC" ReadWritePaths)" \
	"agent unit: ReadWritePaths= is the packaged bundle's directory and nothing else"
assert_eq "/var/lib/$(agent_get "$AGENT_UNIT_SRC" StateDirectory)" "$(agent_conf_get state_dir)" \
	"agent unit: StateDirectory= is the packaged state_dir"
assert_eq "2min 15min 5min timers.target" \
	"$(for k in OnBootSec OnUnitActiveSec RandomizedDelaySec WantedBy; do agent_get "$AGENT_TIMER_SRC" "$k"; done | tr '\n' ' ' | sed 's/ $//')" \
	"the timer: 2 min after boot, every 15 min, up to 5 min random delay, enabled in timers.target"

# ---------------------------------------------------------------- the files agree
assert_eq "nginx.service sensorproxy.service" "$(unit_get Before)" "ordered before nginx and sensorproxy"
assert_eq "multi-user.target" "$(unit_get WantedBy)" "WantedBy=multi-user.target"
assert_eq "notify" "$(unit_get Type)" "Type=notify: READY=1 after recovery holds the proxy back"
# shellcheck disable=SC2016 # $MAINPID is systemd's
assert_eq '/bin/kill -HUP $MAINPID' "$(unit_get ExecReload)" "reload is SIGHUP"
assert_eq "AF_UNIX" "$(unit_get RestrictAddressFamilies)" "AF_UNIX only"
assert_eq "yes" "$(unit_get PrivateNetwork)" "PrivateNetwork=yes"
assert_eq "strict" "$(unit_get ProtectSystem)" "ProtectSystem=strict"
assert_eq "-$(conf_get ssl dir)" "$(unit_get ReadWritePaths | tr '\n' ' ' | sed 's/ $//')" \
	"ReadWritePaths= is the packaged [ssl] dir and nothing else"
assert_eq "/var/lib/$(unit_get StateDirectory)" "$(conf_get daemon state_dir)" \
	"StateDirectory= is the packaged [daemon] state_dir"
RUNDIR="/run/$(unit_get RuntimeDirectory)"
assert_eq "/run/carotate" "$RUNDIR" "RuntimeDirectory=carotate"
for v in "$(conf_get daemon socket)" "$(conf_get agents socket)" "$(conf_get agents canary_socket)"; do
	assert_eq "$RUNDIR" "$(dirname "$v")" "$v is in the runtime directory"
done
# nginx makes its check sockets 0666: they live in check/, root's alone (carotate.tmpfiles).
for v in "$(conf_get proxy address | sed 's/^unix://')" "$(conf_get proxy canary_address | sed 's/^unix://')"; do
	assert_eq "$RUNDIR/check" "$(dirname "$v")" "$v is in the runtime directory's check/"
done
assert_match '^unix:/' "$(conf_get proxy address)" "packaged [proxy] address is a Unix socket"
assert_match '^unix:/' "$(conf_get proxy canary_address)" "packaged [proxy] canary_address is a Unix socket"
for key in address canary_address; do
	grep -Eq "^[[:space:]]*listen $(conf_get proxy "$key") ssl;" "$NGINX_SNIPPET" \
		"$NGINX_SNIPPETS_MORE"/carotate-*.conf ||
		fail "the nginx snippet listens on [proxy] $key ($(conf_get proxy "$key"))"
	ok "the nginx snippet has 'listen $(conf_get proxy "$key") ssl;'"
done
# (syntax only: the groups, users and directories it names are this machine's to have)
run "$CAROTATED" --check-config -c "$PACKAGED_CONF"
assert_contains "carotated.conf: syntax OK" "$OUT" "the packaged carotated.conf passes --check-config"

# ---------------------------------------------------------------- sysusers.d and tmpfiles.d
if [ "$IS_ROOT" -eq 1 ]; then
	assert_exit 0 "systemd-sysusers --root creates the users and groups" -- \
		systemd-sysusers --root="$ROOT"
	for g in "$(conf_get daemon socket_group)" "$(conf_get daemon admin_group)" \
		"$(conf_get agents user)"; do
		grep -q "^$g:x:" "$ROOT/etc/group" || fail "group $g created" "$(cat "$ROOT/etc/group")"
		ok "group $g created"
	done
	AGENT_PW=$(grep "^$(conf_get agents user):" "$ROOT/etc/passwd") ||
		fail "user $(conf_get agents user) created" "$(cat "$ROOT/etc/passwd")"
	IFS=: read -r _ _ a_uid a_gid _ a_home a_shell <<<"$AGENT_PW"
	if [ "$a_uid" -le 0 ] || [ "$a_uid" -ge 1000 ]; then
		fail "the agent user is a system user" "$AGENT_PW"
	fi
	ok "the agent user is a system user (uid $a_uid), not root"
	assert_eq "$(conf_get agents user)" "$(awk -F: -v g="$a_gid" '$3 == g { print $1 }' "$ROOT/etc/group")" \
		"the agent user's primary group is its own"
	assert_eq "/ /usr/sbin/nologin" "$a_home $a_shell" "no home, no login shell"
	assert_match "^$(conf_get agents user):!" "$(grep "^$(conf_get agents user):" "$ROOT/etc/shadow")" \
		"its password is locked"
	sums=$(cat "$ROOT"/etc/passwd "$ROOT"/etc/group | sha256sum)
	assert_exit 0 "systemd-sysusers again" -- systemd-sysusers --root="$ROOT"
	assert_eq "$sums" "$(cat "$ROOT"/etc/passwd "$ROOT"/etc/group | sha256sum)" "sysusers is idempotent"

	assert_exit 0 "systemd-tmpfiles --root --create" -- systemd-tmpfiles --root="$ROOT" --create
	assert_eq "755 0 0" "$(stat -c '%a %u %g' "$ROOT/run/carotate")" \
		"/run/carotate: root 0755 (the daemon's socket directory check)"
	assert_eq "700 0 0" "$(stat -c '%a %u %g' "$ROOT/var/lib/carotate")" \
		"/var/lib/carotate: root 0700 (the daemon's state directory check)"
	assert_eq "700 0 0" "$(stat -c '%a %u %g' "$ROOT/run/carotate/check")" \
		"/run/carotate/check: root 0700 (nginx makes its check sockets 0666)"
	chmod 0775 "$ROOT/run/carotate"
	chmod 0755 "$ROOT/var/lib/carotate"
	chown 1:1 "$ROOT/var/lib/carotate"
	assert_exit 0 "systemd-tmpfiles --create over loose directories" -- \
		systemd-tmpfiles --root="$ROOT" --create
	assert_eq "755 0 0 700 0 0" \
		"$(stat -c '%a %u %g' "$ROOT/run/carotate" "$ROOT/var/lib/carotate" | tr '\n' ' ' | sed 's/ $//')" \
		"tmpfiles repairs their owners and modes"
else
	ok "(sysusers and tmpfiles into a root need root: skipped)"
fi

# ---------------------------------------------------------------- helpers
# no_jobs: the daemon has no child but its two workers (a canary check is over, say).
no_jobs() {
	local d
	for d in /proc/[0-9]*; do
		[ "$(awk '{print $4}' "$d/stat" 2>/dev/null)" = "$DAEMON_PID" ] || continue
		[ "$(cat "$d/comm" 2>/dev/null)" = carotated-agent ] || return 1
	done
}
worker_replaced() { local p; p=$(worker_pid) && [ -n "$p" ] && [ "$p" != "$1" ]; }
# worker_garbage PID: writes a frame of 2 GiB on the worker's channel to the parent (fd 3).
worker_garbage() {
	"$PY" - "$1" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, int(sys.argv[1]), 0)          # pidfd_open
fd = libc.syscall(438, pidfd, 3, 0)                     # pidfd_getfd: the worker's fd 3
if pidfd < 0 or fd < 0:
    sys.exit("pidfd: %s" % os.strerror(ctypes.get_errno()))
os.write(fd, b"\x7f\xff\xff\xff")
EOF
}

# ---------------------------------------------------------------- readiness notification
# notify_listen ADDRESS OUT: a datagram socket at ADDRESS (a path, or @name) that writes what
# it receives to OUT, and "journal=yes|no" (whether $STATE_DIR/swap.journal exists) right
# after a READY=1. Ends at STOPPING=1 or after 60 s.
NOTIFY_PY='
import os, socket, sys
addr, journal, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
s.settimeout(60)
open(out + ".bound", "w").close()
with open(out, "w") as f:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        f.write(msg + "\n")
        if "READY=1" in msg.split("\n"):
            f.write("journal=%s\n" % ("yes" if os.path.exists(journal) else "no"))
        f.flush()
        if "STOPPING=1" in msg.split("\n"):
            break
'
notify_listen() {
	rm -f "$2" "$2.bound"
	"$PY" -c "$NOTIFY_PY" "$1" "$STATE_DIR/swap.journal" "$2" &
	t_track_pid $!
	wait_until 5000 test -e "$2.bound" || fail "the notify listener is up"
}
notified() { grep -qx "$1" "$2" 2>/dev/null; }

make_active_set
write_config
cat >"$T/reload.sh" <<EOF
#!/bin/sh
env >"$T/reload.env"
EOF
chmod 0755 "$T/reload.sh"
sed -i -e "s|^reload = .*|reload = $T/reload.sh|" "$CONF"

# An interrupted rotate: the faults build is killed in the middle of the swap.
FAULTY="$CAROTATE_BUILD/carotated-faults"
if [ -x "$FAULTY" ]; then
	CAROTATE_CRASH_AT=swap-rotate-2 CAROTATED=$FAULTY start_daemon
	assert_exit 0 "generate" -- ctl generate
	wait_until 5000 worker_up || fail "the agent worker runs"
	WPID=$(worker_pid)
	run ctl rotate --force --reason "crash before READY"
	wait_until 5000 eval "! daemon_alive $DAEMON_PID" || fail "the daemon died at the crash point"
	{ wait "$DAEMON_PID" || true; } 2>/dev/null
	# Its worker dies with it (parent death signal), and with it the agent sockets' listener.
	wait_until 5000 eval "! daemon_alive $WPID" || fail "the worker died with the daemon"
	assert_file_contains "fault_point: crashing here" "$DAEMON_LOG" "the daemon died in the middle of the swap"
	[ -e "$STATE_DIR/swap.journal" ] || fail "the swap journal is left behind"
	ok "the swap journal is left behind"
	notify_listen "@carotate-test-notify-$$" "$T/notify-recover.out"
	NOTIFY_SOCKET="@carotate-test-notify-$$" start_daemon
	wait_until 5000 notified READY=1 "$T/notify-recover.out" || fail "READY=1 on an abstract NOTIFY_SOCKET" \
		"$(cat "$T/notify-recover.out")"
	ok "READY=1 on an abstract NOTIFY_SOCKET"
	assert_eq "journal=no" "$(grep '^journal=' "$T/notify-recover.out")" \
		"READY=1 comes after the interrupted swap was recovered"
	assert_file_contains "an interrupted rotate or restore was completed or undone" "$DAEMON_LOG" \
		"the daemon recovered the swap"
	stop_daemon
	assert_eq 0 "$DAEMON_STATUS" "exit 0"
	wait_until 5000 notified STOPPING=1 "$T/notify-recover.out" || fail "STOPPING=1 at SIGTERM" \
		"$(cat "$T/notify-recover.out")"
	ok "STOPPING=1 at SIGTERM"
	# A fresh start for what follows: an active set, nothing staged, an empty ledger.
	rm -rf "$SSL_DIR" "$STATE_DIR"
	mkdir -m 0755 "$SSL_DIR"
	mkdir -m 0700 "$STATE_DIR"
	make_active_set
else
	t_log "note: no $FAULTY: READY=1 after recovery not checked"
fi

if [ "$IS_ROOT" -ne 1 ]; then
	ok "(the daemon under the unit's privileges needs root: skipped)"
	exit 0
fi

# ---------------------------------------------------------------- the daemon under the unit's privileges
# The TLS checks go to Unix sockets, as packaged (nothing listens there: not checked here),
# and give up after a second. (Set only now: a canary check's child process outlives a
# daemon killed as above by up to check_timeout, holding the sockets.)
sed -i -e "s|^address = .*|address = unix:$RUN_DIR/proxy-check.sock\ncanary_address = unix:$RUN_DIR/canary-check.sock|" \
	-e "s|^check_timeout = .*|check_timeout = 1s|" "$CONF"
for tool in setpriv unshare; do
	command -v "$tool" >/dev/null || fail "$tool is installed (Debian package util-linux)"
done
TRACE=1
[ "$ASAN" -eq 1 ] && TRACE=0 # the sanitizers' own calls (ptrace, for leak checks) are not ours
[ "$TRACE" -eq 1 ] && ! command -v strace >/dev/null && fail "strace is installed (make deps)"

UNIT_CAPS=$(unit_get CapabilityBoundingSet)
assert_eq "yes" "$(unit_get NoNewPrivileges)" "NoNewPrivileges=yes"
assert_eq "0077" "$(unit_get UMask)" "UMask=0077"

# cap_bits CAP...: the kernel's hex mask of a capability set (/proc/PID/status style).
cap_bits() {
	local c n m=0
	for c in "$@"; do
		n=$(awk -v c="$c" '$1 == "#define" && $2 == c && $3 ~ /^[0-9]+$/ { print $3 }' \
			/usr/include/linux/capability.h)
		[ -n "$n" ] || fail "capability $c is known to linux/capability.h"
		m=$((m | (1 << n)))
	done
	printf '%016x' "$m"
}
# setpriv_caps CAP...: setpriv's --bounding-set argument for exactly these.
setpriv_caps() {
	local c s=-all
	for c in "$@"; do s="$s,+$(printf '%s' "${c#CAP_}" | tr '[:upper:]' '[:lower:]')"; done
	printf '%s' "$s"
}
proc_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# sandbox_start CAPS [STRACE_OUT]: the daemon as the unit runs it: bounding set CAPS,
# no_new_privs, its own network namespace, umask 0077, NOTIFY_SOCKET=$T/notify.sock; traced
# (all its processes) into STRACE_OUT when given. Sets SANDBOX_PID (what we wait for) and
# DAEMON_PID.
SANDBOX_PID=""
sandbox_start() {
	local caps=$1 trace=${2:-} pre=()
	[ -n "$trace" ] && pre=(strace -f -qq -o "$trace")
	: >"$DAEMON_LOG"
	(
		umask 0077
		exec unshare --net -- "${pre[@]}" env NOTIFY_SOCKET="$T/notify.sock" \
			setpriv --bounding-set="$caps" --no-new-privs -- "$CAROTATED" -f -c "$CONF"
	) >>"$DAEMON_LOG" 2>&1 </dev/null &
	SANDBOX_PID=$!
	t_track_pid "$SANDBOX_PID"
	DAEMON_PID=$SANDBOX_PID
	if [ -n "$trace" ]; then
		wait_until 5000 pgrep -P "$SANDBOX_PID" || fail "the traced daemon started"
		DAEMON_PID=$(pgrep -P "$SANDBOX_PID")
	fi
	t_track_pid "$DAEMON_PID"
}
# sandbox_stop: SIGTERM; DAEMON_STATUS is the daemon's exit status.
sandbox_stop() {
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	DAEMON_STATUS=0
	{ wait "$SANDBOX_PID" || DAEMON_STATUS=$?; } 2>/dev/null
}
sandbox_gone() { ! daemon_alive "$SANDBOX_PID"; }
sandbox_answers() { wait_until 10000 socket_answers || fail "$1: the daemon answers" "$(tail -n 20 "$DAEMON_LOG")"; }

# The configuration the unit's users and groups stand for: the test's agent user (nobody)
# and group (nogroup) are not root's, so chown and the user change need their capabilities.
# shellcheck disable=SC2086 # one word per capability
BSET=$(setpriv_caps $UNIT_CAPS)
notify_listen "$T/notify.sock" "$T/notify.out"
if [ "$TRACE" -eq 1 ]; then
	sandbox_start "$BSET" "$T/strace.out"
else
	sandbox_start "$BSET"
fi
sandbox_answers "with the unit's capabilities"
wait_until 5000 notified READY=1 "$T/notify.out" || fail "READY=1 through the private network" \
	"$(cat "$T/notify.out")"
ok "READY=1 reaches a path NOTIFY_SOCKET from the private network namespace"
# shellcheck disable=SC2086
# Once started it gives up CAP_CHOWN too (daemon/sys/privs.c): the sockets are chowned by then.
# shellcheck disable=SC2046,SC2086 # one word per capability
assert_eq "$(cap_bits $(printf '%s\n' $UNIT_CAPS | grep -vx CAP_CHOWN))" "$(proc_field "$DAEMON_PID" CapBnd)" \
	"the daemon's bounding set is the unit's less CAP_CHOWN, dropped after start-up"
assert_eq "$(proc_field "$DAEMON_PID" CapBnd)" "$(proc_field "$DAEMON_PID" CapEff)" \
	"its effective set is the same"
assert_eq 1 "$(proc_field "$DAEMON_PID" NoNewPrivs)" "no_new_privs"
assert_ne "$(readlink /proc/self/ns/net)" "$(readlink "/proc/$DAEMON_PID/ns/net")" "its own network namespace"
assert_eq "root $AGENT_GROUP 660" "$(stat -c '%U %G %a' "$RUN_DIR/agent.sock")" \
	"agent.sock handed to the agents' group (CAP_CHOWN)"
wait_until 5000 worker_up || fail "the agent worker runs" "$(tail -n 20 "$DAEMON_LOG")"
WPID=$(worker_pid)
for w in "$WPID" "$(worker_pid canary)"; do
	assert_eq "$(id -u "$AGENT_USER")" "$(proc_field "$w" Uid)" "worker $w runs as $AGENT_USER (CAP_SETUID)"
	assert_eq "$(id -g "$AGENT_USER")" "$(proc_field "$w" Gid)" "... in its group (CAP_SETGID)"
	for f in CapPrm CapEff CapBnd CapAmb; do
		assert_eq 0000000000000000 "$(proc_field "$w" "$f")" "worker $w: $f is empty (CAP_SETPCAP for CapBnd)"
	done
	assert_eq 1 "$(proc_field "$w" NoNewPrivs)" "worker $w has no_new_privs"
done

KEY=$(tr -d ' \n' <"$LINKING_KEY")
code=$(curl -s --max-time 20 --unix-socket "$RUN_DIR/agent.sock" -D "$T/h" -o /dev/null \
	-w '%{http_code}' -X POST -H 'X-Agent-Id: sd-agent-1' -H "Authorization: Bearer $KEY" \
	http://agent/carotate/v1/link || true)
assert_eq 200 "$code" "an agent links through the worker"

rm -f "$T/reload.env"
assert_exit 0 "generate (a child process, the reload command)" -- ctl generate
for f in new/ca.crt:644 new/server.crt:644 new/server.key:600 ca-bundle.pem:644 canary.crt:644 \
	canary.key:600 new:700; do
	assert_eq "${f#*:}" "$(stat -c %a "$SSL_DIR/${f%:*}")" "under UMask=0077, ${f%:*} is ${f#*:}"
done
[ -f "$T/reload.env" ] || fail "the reload command ran"
if grep -q '^NOTIFY_SOCKET=' "$T/reload.env"; then
	fail "the reload command does not inherit NOTIFY_SOCKET" "$(cat "$T/reload.env")"
fi
ok "the reload command does not inherit NOTIFY_SOCKET"

worker_garbage "$WPID"
wait_until 8000 worker_replaced "$WPID" || fail "a misbehaving worker is killed and replaced" \
	"$(tail -n 20 "$DAEMON_LOG")"
assert_file_contains "agent worker (pid $WPID): sent a frame over the size limit; killing it" \
	"$DAEMON_LOG" "the parent killed the misbehaving worker (CAP_KILL)"
assert_file_contains "agent worker (pid $WPID) killed by signal 9" "$DAEMON_LOG" "... by SIGKILL"

kill -HUP "$DAEMON_PID"
wait_until 5000 grep -q "reload: configuration re-read" "$DAEMON_LOG" || fail "SIGHUP re-reads the configuration"
ok "SIGHUP re-reads the configuration"
assert_exit 0 "discard" -- ctl discard
# A TLS check still running at exit leaks its context (seen by LeakSanitizer): let them end.
wait_until 10000 no_jobs || fail "the canary checks end"
sandbox_stop
assert_eq 0 "$DAEMON_STATUS" "the daemon exits 0 on SIGTERM"
wait_until 5000 notified STOPPING=1 "$T/notify.out" || fail "STOPPING=1" "$(cat "$T/notify.out")"
ok "STOPPING=1 at SIGTERM"

# Every system call made (by the daemon, its worker, its children, the reload command) is
# one that the unit's SystemCallFilter= lets through.
if [ "$TRACE" -eq 1 ]; then
	systemd-analyze syscall-filter --no-pager >"$T/filter-sets" 2>/dev/null
	unit_get SystemCallFilter >"$T/filter-unit"
	"$PY" "$IT_DIR/syscall_filter.py" "$T/filter-sets" "$T/filter-unit" "$T/strace.out" ||
		fail "system calls outside the unit's filter"
fi

# ---------------------------------------------------------------- each capability is needed
# Without it, what breaks. A capability added to the unit needs its line here.
for cap in $UNIT_CAPS; do
	# shellcheck disable=SC2046,SC2086 # one word per capability
	less=$(setpriv_caps $(printf '%s\n' $UNIT_CAPS | grep -vx "$cap"))
	sandbox_start "$less"
	case "$cap" in
	CAP_CHOWN)
		wait_until 10000 sandbox_gone || fail "without CAP_CHOWN the daemon does not start"
		sandbox_stop
		assert_ne 0 "$DAEMON_STATUS" "without CAP_CHOWN the daemon exits with an error"
		assert_file_contains "agent.sock: Operation not permitted" "$DAEMON_LOG" \
			"without CAP_CHOWN: the agent socket cannot be handed to the agents' group"
		continue
		;;
	CAP_SETUID | CAP_SETGID)
		sandbox_answers "without $cap"
		wait_until 5000 grep -q "agent worker: user change: Operation not permitted" "$DAEMON_LOG" ||
			fail "without $cap the worker cannot change user" "$(tail -n 20 "$DAEMON_LOG")"
		ok "without $cap: the worker cannot become $AGENT_USER"
		;;
	CAP_SETPCAP)
		sandbox_answers "without $cap"
		wait_until 5000 worker_up || fail "the worker runs without CAP_SETPCAP"
		assert_ne 0000000000000000 "$(proc_field "$(worker_pid)" CapBnd)" \
			"without CAP_SETPCAP: the worker keeps a bounding set"
		assert_ne 0000000000000000 "$(proc_field "$(worker_pid canary)" CapBnd)" \
			"without CAP_SETPCAP: the canary worker keeps a bounding set"
		;;
	CAP_KILL)
		sandbox_answers "without $cap"
		wait_until 5000 worker_up || fail "the worker runs without CAP_KILL"
		WPID=$(worker_pid)
		worker_garbage "$WPID"
		wait_until 5000 grep -q "cannot kill agent worker (pid $WPID)" "$DAEMON_LOG" ||
			fail "without CAP_KILL the daemon cannot kill its worker" "$(tail -n 20 "$DAEMON_LOG")"
		ok "without CAP_KILL: a misbehaving worker cannot be killed"
		;;
	*)
		fail "the unit keeps $cap: say here what breaks without it"
		;;
	esac
	sandbox_stop
done
