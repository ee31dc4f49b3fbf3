#!/bin/bash
# Both packages under a real systemd (issues 15 and 16): a Debian bookworm tree, made once
# with debootstrap from the mirror apt uses and cached, is booted with systemd-nspawn (no
# machined, its own cgroup, its own network namespace with only a loopback, an overlay so
# the cached tree stays clean). Inside it, as an operator would:
#  - `dpkg -i` the carotate and carotate-agent packages built by `make deb`; the packaged
#    nginx files wired as the README says; carotated.service started by systemd;
#  - an agent host's view: a join token from the proxy, `carotate-agent link --ca-pin`,
#    the timer enabled, check-ins run by carotate-agent.service (oneshot), its hook run;
#  - the runbook: generate, the agent's check-ins until `report` says 100 % acknowledged
#    and verified, rotate, restore, each with the packaged reload command (`systemctl
#    reload nginx`) run from inside the hardened unit, and nginx serving what it should;
#  - a package upgrade in the middle of a rotate (issue 15): `dpkg -i` of carotate again
#    while the rotate waits on a slow reload. carotated is not restarted (same MainPID),
#    the rotate completes, is audited, and nginx serves the new certificate;
#  - the renewal timer (issue 18), shipped disabled: `systemctl enable --now
#    carotate-renew.timer` puts it in `systemctl list-timers`, and one start of
#    carotate-renew.service exits 0 ("nothing to renew": the set lives longer than 30d)
#    as the user carotate-renew, whose uid the audit record carries;
#  - after each step the agent's bundle lets curl reach the proxy, and
#    `systemctl --failed` lists nothing.
# Skipped (with the reason) where nspawn cannot run: not root, the tools missing, no
# writable cgroup hierarchy. Runs once, in the plain pass: the packages are built without
# sanitizers and the test runs no binary of the build under test directly.
# timeout: 1200
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_plain_only "the packages are built without sanitizers"
[ "$(id -u)" = 0 ] || t_skip "booting a container needs root"
for tool in systemd-nspawn debootstrap nsenter unshare dpkg-buildpackage; do
	command -v "$tool" >/dev/null ||
		t_skip "$tool is missing (make deps installs systemd-container, debootstrap, dpkg-dev)"
done
# The container gets a cgroup of its own: in the unified hierarchy, and in the named
# systemd one on a hybrid host.
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
	CG_ROOTS=/sys/fs/cgroup
elif [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/systemd ]; then
	CG_ROOTS="/sys/fs/cgroup/unified /sys/fs/cgroup/systemd"
else
	t_skip "no cgroup hierarchy systemd could run in (/sys/fs/cgroup is neither cgroup2 nor hybrid)"
fi
for root in $CG_ROOTS; do
	[ -w "$root" ] || t_skip "$root is not writable: no cgroup for the container"
done

t_init
CACHE=${CAROTATE_CACHE_DIR:-/var/cache/carotate-test}
ARCH=$(dpkg --print-architecture)
DEB_VERSION=$(dpkg-parsechangelog -l "$REPO_ROOT/packaging/debian/changelog" -S Version)
DEB_DIR="$REPO_ROOT/build/deb"
DEB_SERVER="$DEB_DIR/carotate_${DEB_VERSION}_$ARCH.deb"
DEB_AGENT="$DEB_DIR/carotate-agent_${DEB_VERSION}_$ARCH.deb"
NAME=proxy.test

# ---------------------------------------------------------------- the packages

start=$(ms_now)
(cd "$REPO_ROOT" && env -u MAKEFLAGS -u MAKELEVEL DEB_BUILD_OPTIONS=nocheck make deb) \
	>"$T/deb-build.log" 2>&1 || fail "make deb failed" "$(tail -n 40 "$T/deb-build.log")"
for deb in "$DEB_SERVER" "$DEB_AGENT"; do
	[ -f "$deb" ] || fail "make deb made no $deb" "$(ls "$DEB_DIR")"
done
ok "make deb: $(($(ms_now) - start)) ms"

# ---------------------------------------------------------------- the tree (cached)

# The packages the tree needs besides a minimal Debian: systemd and nginx, and what our
# packages depend on (first alternative, no versions), so that dpkg -i needs no network.
deps_of() {
	dpkg-deb -f "$1" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g; /^$/d'
}
INCLUDE=$({
	printf '%s\n' systemd systemd-sysv dbus nginx-light
	deps_of "$DEB_SERVER"
	deps_of "$DEB_AGENT"
} | grep -v '^carotate' | LC_ALL=C sort -u | paste -sd, -)

# The mirror apt is configured with (deb822 sources or sources.list), else Debian's own.
apt_mirror() {
	local uri
	uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		tr ' ' '\n' | grep -v -- '-security' | grep -m1 . || true)
	[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
		/etc/apt/sources.list 2>/dev/null || true)
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

TREE="$CACHE/bookworm-$(printf '%s' "$INCLUDE" | sha256sum | cut -c1-12)"
if [ ! -x "$TREE/lib/systemd/systemd" ]; then
	mkdir -p "$CACHE"
	rm -rf "$TREE.tmp"
	start=$(ms_now)
	mirror=$(apt_mirror)
	debootstrap --variant=minbase --include="$INCLUDE" bookworm "$TREE.tmp" "$mirror" \
		>"$T/debootstrap.log" 2>&1 ||
		t_skip "debootstrap of bookworm from $mirror failed (no mirror reachable?): $(tail -n 1 "$T/debootstrap.log")"
	# A tree that boots quietly and fast: no getty on the console, no timers of its own.
	rm -f "$TREE.tmp"/etc/systemd/system/getty.target.wants/* \
		"$TREE.tmp"/etc/systemd/system/timers.target.wants/*
	mv "$TREE.tmp" "$TREE"
	ok "debootstrap bookworm ($INCLUDE) from $mirror: $(($(ms_now) - start)) ms, cached in $TREE"
else
	ok "bookworm tree from the cache: $TREE"
fi

# ---------------------------------------------------------------- boot

CG_NAME="carotate-booted-$$"
NSPAWN_PID=""
LEADER=""
booted_cleanup() {
	local rc=$? i root
	set +e
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$LEADER" ]; then
		# What the container's journal says goes with the failure.
		cin journalctl -b --no-pager -n 60 -u carotated -u nginx -u carotate-agent -u carotate-renew \
			>"$T/journal.log" 2>&1
	fi
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		# SIGTERM: nspawn asks the container's systemd to power off.
		kill -TERM "$NSPAWN_PID"
		for ((i = 0; i < 150; i++)); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$NSPAWN_PID" 2>/dev/null
	fi
	for root in $CG_ROOTS; do
		[ -d "$root/$CG_NAME" ] || continue
		# Whatever is left in the container's cgroup dies with it.
		for i in $(cat "$root/$CG_NAME/cgroup.procs" 2>/dev/null); do
			kill -KILL "$i" 2>/dev/null
		done
		find "$root/$CG_NAME" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	(exit "$rc")
	_t_cleanup
}
trap booted_cleanup EXIT

for root in $CG_ROOTS; do mkdir "$root/$CG_NAME"; done
mkdir -p /run/systemd/nspawn
start=$(ms_now)
# shellcheck disable=SC2016 # expanded by the inner shells
CG_ROOTS="$CG_ROOTS" CG_NAME="$CG_NAME" TREE="$TREE" DEB_DIR="$DEB_DIR" setsid bash -c '
	for root in $CG_ROOTS; do echo $$ >"$root/$CG_NAME/cgroup.procs"; done
	exec unshare --mount sh -c "mount -t tmpfs tmpfs /run/systemd/nspawn &&
		exec systemd-nspawn --register=no --keep-unit --private-network --volatile=overlay \
			--console=passive --machine=proxy -D \"$TREE\" --bind-ro=\"$DEB_DIR\":/mnt/debs -b"
' >"$T/console.log" 2>&1 </dev/null &
NSPAWN_PID=$!
# The container's init: nspawn's child in a PID namespace of its own, once it is systemd
# (before that exec it is nspawn's own set-up code).
container_leader() {
	local pid
	for pid in $(pgrep -P "$NSPAWN_PID" 2>/dev/null); do
		if [ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] &&
			[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then
			LEADER=$pid
			return 0
		fi
	done
	return 1
}
wait_until 30000 container_leader || fail "systemd-nspawn started no container" "$(tail -n 20 "$T/console.log")"

# cin CMD...: runs CMD inside the container (its namespaces and root), in a clean
# environment as systemd would give it.
cin() {
	nsenter -t "$LEADER" -m -u -i -n -p -- \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"
}
# The container's files, seen from here.
CROOT="/proc/$LEADER/root"
# hnet CMD...: a program of this host, in the container's network namespace.
hnet() { nsenter -t "$LEADER" -n -- "$@"; }

# systemctl needs the manager's private socket; then it can wait for the boot to end.
wait_until 30000 test -S "$CROOT/run/systemd/private" ||
	fail "the container's systemd made no /run/systemd/private" "$(tail -n 20 "$T/console.log")"
state=$(cin timeout 120 systemctl is-system-running --wait 2>&1 || true)
case "$state" in
running) ;;
*) fail "the container's systemd did not come up: $state" "$(cin systemctl --failed --no-legend 2>&1)" \
	"$(tail -n 20 "$T/console.log")" ;;
esac
ok "bookworm booted under systemd $(cin systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') in $(($(ms_now) - start)) ms (nginx.service $(cin systemctl is-active nginx))"

# no_failed_units WHEN: nothing in the container has failed.
no_failed_units() {
	local failed
	failed=$(cin systemctl --failed --no-legend --plain | awk '{ print $1 }')
	[ -z "$failed" ] || fail "units failed $1: $failed" \
		"$(for u in $failed; do cin journalctl -u "$u" -n 20 --no-pager; done)"
}

# ---------------------------------------------------------------- install, as an operator

# The proxy's active set before carotate: a CA and a server certificate for $NAME (leaf
# and CA in server.crt, as nginx serves the chain).
make_cert_set "$T/initial" initial >/dev/null
mkdir -p "$CROOT/usr/local/etc/nginx/ssl"
chmod 0755 "$CROOT/usr/local" "$CROOT/usr/local/etc" "$CROOT/usr/local/etc/nginx" \
	"$CROOT/usr/local/etc/nginx/ssl"
cp "$T/initial/ca.crt" "$T/initial/server.crt" "$T/initial/server.key" "$CROOT/usr/local/etc/nginx/ssl/"
chmod 0600 "$CROOT/usr/local/etc/nginx/ssl/server.key"
echo "127.0.0.1 $NAME" >>"$CROOT/etc/hosts"

cin dpkg -i /mnt/debs/"$(basename "$DEB_SERVER")" /mnt/debs/"$(basename "$DEB_AGENT")" \
	>"$T/dpkg.log" 2>&1 || fail "dpkg -i of both packages failed" "$(tail -n 30 "$T/dpkg.log")"
ok "dpkg -i carotate carotate-agent: $(dpkg-deb -f "$DEB_SERVER" Version)"
cin getent group carotate-admin >/dev/null || fail "the package made no group carotate-admin"
cin getent passwd carotate-agent >/dev/null || fail "the package made no user carotate-agent"
[ -f "$CROOT/usr/local/etc/nginx/ssl/canary.crt" ] ||
	fail "the postinst's carotated --init made no canary.crt"
ok "sysusers made the groups and the worker's user; the postinst made the canary pair"

# The README's wiring: a new proxy takes carotate.conf (the agents' server block, which
# includes the locations snippet) and carotate-canary.conf.
sed -i "s/^\([[:space:]]*names[[:space:]]*=\).*/\1 $NAME/" "$CROOT/etc/carotate/carotated.conf"
cp "$CROOT/usr/share/carotate/nginx/carotate.conf" "$CROOT/usr/share/carotate/nginx/carotate-canary.conf" \
	"$CROOT/etc/nginx/conf.d/"
cp "$CROOT/usr/share/carotate/nginx/carotate-locations.conf" "$CROOT/etc/nginx/snippets/"
cin nginx -t >"$T/nginx-t.log" 2>&1 || fail "nginx -t with the packaged files" "$(cat "$T/nginx-t.log")"
cin systemctl reload nginx
cin systemctl restart carotated
assert_eq active "$(cin systemctl is-active carotated)" "carotated.service is active"
MAINPID=$(cin systemctl show -P MainPID carotated)
ok "carotated.service active (MainPID $MAINPID in the container), nginx -t passes with the packaged snippets"

# served_sha: the SHA-256 of the leaf nginx serves on 443 inside the container.
served_sha() {
	hnet openssl s_client -connect 127.0.0.1:443 -servername "$NAME" </dev/null 2>/dev/null |
		openssl x509 -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1
}
assert_eq "$(cert_der_sha256 "$T/initial/server.crt")" "$(served_sha)" "nginx serves the initial set"
no_failed_units "after the installation"

# ---------------------------------------------------------------- the renewal timer

# Shipped disabled; enabled as the README says. One run of the service as the timer starts
# it: the initial set lives far longer than 30 days, so renew has nothing to do (exit 0),
# and it ran as carotate-renew (no root, the admin group alone), as the audit log says.
assert_eq "disabled" "$(cin systemctl is-enabled carotate-renew.timer 2>&1 || true)" \
	"carotate-renew.timer is shipped disabled"
cin systemctl enable --now carotate-renew.timer >"$T/renew-enable.out" 2>&1 ||
	fail "systemctl enable --now carotate-renew.timer" "$(cat "$T/renew-enable.out")"
assert_eq active "$(cin systemctl is-active carotate-renew.timer)" "carotate-renew.timer is active"
cin systemctl list-timers --all --no-pager --no-legend >"$T/timers.out" 2>&1 ||
	fail "systemctl list-timers" "$(cat "$T/timers.out")"
grep -q 'carotate-renew\.timer[[:space:]]\+carotate-renew\.service' "$T/timers.out" ||
	fail "systemctl list-timers lists carotate-renew.timer for carotate-renew.service" "$(cat "$T/timers.out")"
ok "systemctl list-timers: $(grep carotate-renew "$T/timers.out" | tr -s ' ' | cut -c1-120)"
RENEW_UID=$(cin id -u carotate-renew) || fail "the package made no user carotate-renew"
assert_contains "carotate-admin" "$(cin id -nG carotate-renew)" "carotate-renew is in the admin group"
cin systemctl start carotate-renew.service ||
	fail "carotate-renew.service failed" "$(cin journalctl -u carotate-renew -n 20 --no-pager)"
assert_eq "success 0" "$(cin systemctl show -P Result carotate-renew.service) $(cin systemctl show -P ExecMainStatus carotate-renew.service)" \
	"carotate-renew.service ran once, exit 0"
cin journalctl -u carotate-renew --no-pager -o cat >"$T/renew-journal.out" 2>&1 || true
assert_contains "nothing to renew" "$(cat "$T/renew-journal.out")" \
	"journalctl -u carotate-renew: the set lives longer than 30d, nothing to renew"
cin carotatectl --json audit --limit 1 | jsave "$T/renew-audit.json"
assert_eq "renew OK $RENEW_UID carotate-renew" \
	"$(jget records.0.call "$T/renew-audit.json") $(jget records.0.result "$T/renew-audit.json") $(jget records.0.uid "$T/renew-audit.json") $(jget records.0.user "$T/renew-audit.json")" \
	"the audit record of the timer's renew: call renew, OK, uid and name of carotate-renew"
assert_contains "if_due=yes" "$(jget records.0.detail "$T/renew-audit.json")" \
	"the audit record says the unit asked with the daemon's window (--if-due)"
assert_eq "$(cert_der_sha256 "$T/initial/server.crt")" "$(served_sha)" "nginx still serves the initial set"
no_failed_units "after the renewal timer's run"

# ---------------------------------------------------------------- an agent host's view

# The agents learn the canary's address from the proxy ([agents] canary_url).
if grep -q '^[#[:space:]]*canary_url[[:space:]]*=' "$CROOT/etc/carotate/carotated.conf"; then
	sed -i "s|^[#[:space:]]*canary_url[[:space:]]*=.*|canary_url = https://$NAME:8443|" \
		"$CROOT/etc/carotate/carotated.conf"
else
	sed -i "s|^\[agents\]\$|[agents]\ncanary_url = https://$NAME:8443|" "$CROOT/etc/carotate/carotated.conf"
fi
cin systemctl restart carotated
MAINPID=$(cin systemctl show -P MainPID carotated)

# What the hook sees: it runs without a shell, inside the agent unit's sandbox, after each
# change of the bundle.
printf '#!/bin/sh\necho "$CAROTATE_BUNDLE_ID" >>/var/lib/carotate-agent/hook.log\n' \
	>"$CROOT/usr/local/bin/trust-changed"
chmod 0755 "$CROOT/usr/local/bin/trust-changed"
sed -i -e "s|^server[[:space:]]*=.*|server = https://$NAME|" \
	-e "s|^hook[[:space:]]*=.*|hook = /usr/local/bin/trust-changed|" "$CROOT/etc/carotate-agent/agent.conf"
cin carotatectl --json join-token create --uses 1 --ttl 1h --description booted >"$T/jt.json" ||
	fail "join-token create" "$(cat "$T/jt.json")"
(umask 077 && json_get token <"$T/jt.json" >"$CROOT/root/join.token")
PIN=$(cert_der_sha256 "$T/initial/ca.crt")
cin carotate-agent link --ca-pin "sha256:$PIN" --join-token-file /root/join.token >"$T/link.out" 2>&1 ||
	fail "carotate-agent link --ca-pin" "$(cat "$T/link.out")"
cin systemctl enable --now carotate-agent.timer >/dev/null 2>&1
assert_eq active "$(cin systemctl is-active carotate-agent.timer)" "carotate-agent.timer is active"
BUNDLE="$CROOT/etc/carotate-agent/ca-bundle.pem"
ok "carotate-agent link --ca-pin with a join token: $(head -n1 "$T/link.out")"

# agent_checkin: one check-in as the timer runs it (carotate-agent.service, oneshot).
agent_checkin() {
	cin systemctl start carotate-agent.service ||
		fail "carotate-agent.service failed" "$(cin journalctl -u carotate-agent -n 20 --no-pager)"
	assert_eq "success 0" "$(cin systemctl show -P Result carotate-agent.service) $(cin systemctl show -P ExecMainStatus carotate-agent.service)" \
		"carotate-agent.service ran its check-in"
}
# reaches_proxy WHEN: curl, trusting only the bundle the agent wrote, gets through to nginx.
reaches_proxy() {
	hnet curl -sS -o /dev/null -w '%{http_code}' --cacert "$BUNDLE" \
		--resolve "$NAME:443:127.0.0.1" "https://$NAME/" >"$T/curl.out" 2>&1 ||
		fail "curl --cacert <the agent's bundle> after $1" "$(cat "$T/curl.out")"
	ok "after $1: curl --cacert <the agent's bundle> reaches nginx (HTTP $(cat "$T/curl.out"))"
}
hook_runs() { wc -l <"$CROOT/var/lib/carotate-agent/hook.log" 2>/dev/null || echo 0; }

agent_checkin
reaches_proxy "link"
cin carotate-agent status >"$T/status.out" 2>&1 || fail "carotate-agent status" "$(cat "$T/status.out")"
ok "carotate-agent status: $(tr '\n' ' ' <"$T/status.out" | cut -c1-160)"

# ---------------------------------------------------------------- the runbook

cin carotatectl generate >"$T/generate.out" 2>&1 || fail "carotatectl generate" "$(cat "$T/generate.out")"
ok "carotatectl generate: $(grep -m1 'reload' "$T/generate.out")"
NEW_CA=$(cert_der_sha256 "$CROOT/usr/local/etc/nginx/ssl/new/ca.crt")
runs=$(hook_runs)
agent_checkin
assert_eq $((runs + 1)) "$(hook_runs)" "the hook ran once: the bundle changed"
agent_checkin
assert_eq $((runs + 1)) "$(hook_runs)" "the hook did not run again: the bundle did not change"
assert_contains "$NEW_CA" "$(pem_shas "$BUNDLE")" "the agent's bundle holds the staged CA"
cin carotatectl --json report | jsave "$T/report.json"
assert_eq "100 100" "$(jget percent "$T/report.json") $(jget percent_verified "$T/report.json")" \
	"report: 100 % acknowledged and 100 % verified (the agent's canary check-in)"

# The rotate, with a package upgrade in its middle: nginx's reload is slowed down so that
# dpkg -i runs while the daemon waits on `systemctl reload nginx`. The upgrade is the same
# package with a higher version, so that dpkg runs the maintainer scripts' upgrade path
# (prerm upgrade, postinst configure with the old version).
UP_VERSION="$DEB_VERSION+upgrade1"
rm -rf "$T/up"
dpkg-deb -R "$DEB_SERVER" "$T/up"
sed -i "s/^Version: .*/Version: $UP_VERSION/" "$T/up/DEBIAN/control"
dpkg-deb -b "$T/up" "$CROOT/root/carotate-upgrade.deb" >/dev/null
mkdir -p "$CROOT/etc/systemd/system/nginx.service.d"
printf '[Service]\nExecReload=/bin/sleep 4\n' >"$CROOT/etc/systemd/system/nginx.service.d/slow.conf"
cin systemctl daemon-reload
cin carotatectl --json rotate >"$T/rotate.json" 2>"$T/rotate.err" &
rotate_pid=$!
nginx_reloading() { [ "$(cin systemctl show -P ActiveState nginx)" = reloading ]; }
wait_until 20000 nginx_reloading || fail "the rotate's reload never started" "$(cat "$T/rotate.err")"
cin dpkg -i /root/carotate-upgrade.deb >"$T/upgrade.log" 2>&1 ||
	fail "dpkg -i of the upgrade" "$(cat "$T/upgrade.log")"
assert_eq "$MAINPID" "$(cin systemctl show -P MainPID carotated)" "the upgrade did not restart carotated (same MainPID)"
nginx_reloading || fail "the upgrade did not run during the rotate's reload (make the reload slower)"
assert_contains "Unpacking carotate ($UP_VERSION) over ($DEB_VERSION)" "$(cat "$T/upgrade.log")" \
	"dpkg upgraded carotate"
ok "dpkg -i carotate $UP_VERSION (the upgrade) ran while the rotate waited on nginx's reload"
rc=0
wait "$rotate_pid" || rc=$?
assert_eq 0 "$rc" "the rotate finished (exit 0) across the upgrade: $(cat "$T/rotate.err")"
assert_eq "$MAINPID" "$(cin systemctl show -P MainPID carotated)" "still the same carotated after the rotate"
assert_eq 0 "$(cin systemctl show -P NRestarts carotated)" "carotated.service: no restart"
rm -f "$CROOT/etc/systemd/system/nginx.service.d/slow.conf"
cin systemctl daemon-reload
NEW_LEAF=$(cert_der_sha256 "$CROOT/usr/local/etc/nginx/ssl/server.crt")
assert_eq "$NEW_LEAF" "$(served_sha)" "nginx serves the new certificate"
cin carotatectl --json audit --limit 1 | jsave "$T/audit.json"
assert_eq "rotate OK" "$(jget records.0.call "$T/audit.json") $(jget records.0.result "$T/audit.json")" \
	"the newest audit record is the successful rotate"
assert_contains "reload=ok verified=yes rolled_back=no" "$(jget records.0.detail "$T/audit.json")" \
	"the audit record says: reloaded, verified, not rolled back"
agent_checkin
reaches_proxy "rotate"
no_failed_units "after the rotate"

cin carotatectl restore --latest >"$T/restore.out" 2>&1 || fail "carotatectl restore --latest" "$(cat "$T/restore.out")"
assert_eq "$(cert_der_sha256 "$T/initial/server.crt")" "$(served_sha)" "after restore --latest nginx serves the initial set again"
agent_checkin
reaches_proxy "restore"

assert_eq active "$(cin systemctl is-active carotated)" "systemctl: carotated is active"
cin systemctl status carotated --no-pager >"$T/systemctl-status.out" 2>&1 || true
grep -q 'Active: active (running)' "$T/systemctl-status.out" ||
	fail "systemctl status carotated" "$(cat "$T/systemctl-status.out")"
no_failed_units "at the end"
ok "systemctl status carotated: active (running); no unit failed"
