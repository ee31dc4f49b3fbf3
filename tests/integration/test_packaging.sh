#!/bin/bash
# packaging: `make dist` holds exactly the tracked files; `make deb` (dpkg-buildpackage from
# that tarball) gives one package `carotate` whose files, modes, conffiles and dependencies
# are asserted, which lintian finds free of errors, whose programs run from the extracted
# package, and which (as root) installs into a throwaway root with dpkg --root: the
# postinst makes a linking key the packaged daemon accepts, remove keeps configuration and
# state, purge removes them and never the SSL directory or its backups, even one configured
# inside the state directory. `make rpm` (rpmbuild -tb on the same tarball) gives the same
# files; its %post makes the same key. Package builds are cached by make: they run again
# only when the tarball's contents change. Neither package restarts (nor, on upgrade,
# stops) carotated: the generated postinst restarted it on every upgrade and the spec used
# %systemd_postun_with_restart, which cut a rotate in progress in half (issue 15).
# The agent (issue 16): a second binary package `carotate-agent` from the same source, and an
# RPM subpackage: exactly its program, units, agent.conf (its one conffile), man page and
# completion; depending on libcurl and never on nginx, SQLite, libevent, protobuf-c,
# libseccomp, libcap or systemd-sysusers; its postinst enables the timer and never runs a
# check-in; lintian clean; as root, installed alone into a throwaway root, where it enables
# the timer, remove keeps agent.conf, purge removes the token and bundle it made. Before,
# `make deb` made one package holding everything, and an agent host had to take the daemon.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it builds the .deb and .rpm packages without sanitizers and runs no binary of this build"

for tool in dpkg-buildpackage dh lintian rpmbuild; do
	command -v "$tool" >/dev/null || t_skip "$tool is missing (make deps installs it)"
done

t_init

# Files the packages will hold once other parts of the tree are merged: SOURCE DEB_PATH
# RPM_PATH. Each is expected only when its SOURCE exists, so this list is the one to
# extend when make install gains a file. (RPM man pages are compared without .gz: Debian's
# rpm leaves them uncompressed, others compress them.)
PENDING="systemd/carotated.service ./lib/systemd/system/carotated.service /usr/lib/systemd/system/carotated.service
systemd/carotate-renew.service ./lib/systemd/system/carotate-renew.service /usr/lib/systemd/system/carotate-renew.service
systemd/carotate-renew.timer ./lib/systemd/system/carotate-renew.timer /usr/lib/systemd/system/carotate-renew.timer
systemd/carotate.sysusers ./usr/lib/sysusers.d/carotate.conf /usr/lib/sysusers.d/carotate.conf
systemd/carotate.tmpfiles ./usr/lib/tmpfiles.d/carotate.conf /usr/lib/tmpfiles.d/carotate.conf
packaging/man/carotatectl.1 ./usr/share/man/man1/carotatectl.1.gz /usr/share/man/man1/carotatectl.1
packaging/man/carotated.8 ./usr/share/man/man8/carotated.8.gz /usr/share/man/man8/carotated.8
packaging/man/carotate-protocol.7 ./usr/share/man/man7/carotate-protocol.7.gz /usr/share/man/man7/carotate-protocol.7
packaging/man/carotated.conf.5 ./usr/share/man/man5/carotated.conf.5.gz /usr/share/man/man5/carotated.conf.5
packaging/bash-completion/carotatectl ./usr/share/bash-completion/completions/carotatectl /usr/share/bash-completion/completions/carotatectl"
# pending_paths COLUMN: the paths of column 2 (deb) or 3 (rpm) whose source exists.
pending_paths() {
	local src deb rpm
	while read -r src deb rpm; do
		[ -e "$REPO_ROOT/$src" ] || continue
		if [ "$1" = 2 ]; then echo "$deb"; else echo "$rpm"; fi
	done <<<"$PENDING"
}
have_source() { [ -e "$REPO_ROOT/$1" ]; }

# The project's make, without the make check that runs us (SANITIZE=1, -j, jobserver).
pmake() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE -u O make -s -C "$REPO_ROOT" "$@"; }

# ---------------------------------------------------------------- make dist

pmake dist >/dev/null
TARBALL="$REPO_ROOT/build/carotate-$PROJECT_VERSION.tar.gz"
[ -f "$TARBALL" ] || fail "make dist made no $TARBALL"
tar -tzf "$TARBALL" | LC_ALL=C sort >"$T/dist.list"
if files=$(git -C "$REPO_ROOT" ls-files 2>/dev/null) && [ -n "$files" ]; then
	assert_eq "$(printf '%s\n' "$files" | sed "s|^|carotate-$PROJECT_VERSION/|" | LC_ALL=C sort)" \
		"$(cat "$T/dist.list")" "the tarball holds exactly the tracked files, under carotate-$PROJECT_VERSION/"
fi
for f in Makefile packaging/debian/control packaging/debian/rules packaging/rpm/carotate.spec; do
	grep -qx "carotate-$PROJECT_VERSION/$f" "$T/dist.list" || fail "the tarball lacks $f"
done
ok "the tarball has the Makefile, packaging/debian/ and the RPM spec"
before=$(stat -c %Y "$TARBALL")
sleep 1
pmake dist >/dev/null
assert_eq "$before" "$(stat -c %Y "$TARBALL")" "make dist leaves an unchanged tarball alone (packages are not rebuilt)"

# ---------------------------------------------------------------- make deb

start=$(ms_now)
DEB_BUILD_OPTIONS=nocheck pmake deb >"$T/deb-build.log" 2>&1 ||
	fail "make deb failed" "$(tail -n 40 "$T/deb-build.log")"
ok "make deb (DEB_BUILD_OPTIONS=nocheck): $(($(ms_now) - start)) ms"
ARCH=$(dpkg --print-architecture)
DEB_VERSION=$(dpkg-parsechangelog -l "$REPO_ROOT/packaging/debian/changelog" -S Version)
assert_eq "$PROJECT_VERSION" "${DEB_VERSION%-*}" "debian/changelog's upstream version is the Makefile's VERSION"
DEB="$REPO_ROOT/build/deb/carotate_${DEB_VERSION}_$ARCH.deb"
[ -f "$DEB" ] || fail "no $DEB" "$(ls "$REPO_ROOT/build/deb")"

assert_eq "carotate" "$(dpkg-deb -f "$DEB" Package)" "the daemon's package: carotate"
AGENT_DEB="$REPO_ROOT/build/deb/carotate-agent_${DEB_VERSION}_$ARCH.deb"
assert_eq "carotate-agent_${DEB_VERSION}_$ARCH.deb carotate_${DEB_VERSION}_$ARCH.deb" \
	"$(cd "$REPO_ROOT/build/deb" && for d in *.deb; do case "$d" in *-dbgsym_*) ;; *) echo "$d" ;; esac; done |
		LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" \
	"two binary packages: carotate and carotate-agent"
assert_eq "carotate-agent" "$(dpkg-deb -f "$AGENT_DEB" Package)" "the agent's package: carotate-agent"
assert_eq "carotate" "$(dpkg-deb -f "$AGENT_DEB" Source | sed 's/ .*//')" "... built from the source package carotate"
DEPENDS=$(dpkg-deb -f "$DEB" Depends)
for lib in libevent libssl3 libprotobuf-c libinih libsqlite3 libjansson libc6; do
	assert_contains "$lib" "$DEPENDS" "Depends names $lib (from the binaries' shared libraries)"
done

# Every file with its mode and owner, as "MODE OWNER PATH" (directories left out).
dpkg-deb --contents "$DEB" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | LC_ALL=C sort >"$T/deb.files"
{
	echo "-rwxr-xr-x root/root ./usr/sbin/carotated"
	echo "-rwxr-xr-x root/root ./usr/bin/carotatectl"
	for f in ./etc/carotate/carotated.conf ./usr/share/carotate/carotate.proto \
		./usr/share/carotate/nginx/carotate.conf ./usr/share/carotate/nginx/README.md \
		./usr/share/carotate/nginx/carotate-locations.conf ./usr/share/carotate/nginx/carotate-canary.conf \
		./usr/share/doc/carotate/README.md.gz ./usr/share/doc/carotate/changelog.Debian.gz \
		./usr/share/doc/carotate/copyright ./usr/share/lintian/overrides/carotate \
		$(pending_paths 2); do
		echo "-rw-r--r-- root/root $f"
	done
} | LC_ALL=C sort >"$T/deb.expected"
assert_eq "$(cat "$T/deb.expected")" "$(cat "$T/deb.files")" \
	"the .deb holds exactly the expected files, modes and owners (carotated 0755, conf 0644, root)"

mkdir "$T/ctrl"
dpkg-deb -e "$DEB" "$T/ctrl"
assert_eq "/etc/carotate/carotated.conf" "$(cat "$T/ctrl/conffiles")" \
	"the configuration is the one conffile (the linking key is made, not shipped)"
if have_source systemd/carotated.service; then
	assert_file_contains "deb-systemd-helper" "$T/ctrl/postinst" "postinst enables carotated.service"
	assert_file_contains "deb-systemd-helper purge" "$T/ctrl/postrm" "postrm purge forgets carotated.service"
	# An upgrade must not SIGTERM a daemon in the middle of a rotate (issue 15): debhelper's
	# default restarts the unit after every upgrade (_dh_action=restart), and
	# --no-restart-after-upgrade alone stops it in prerm instead.
	if grep -Eq 'restart|_dh_action' "$T/ctrl/postinst"; then
		fail "postinst never restarts carotated.service on upgrade" "$(grep -En 'restart|_dh_action' "$T/ctrl/postinst")"
	fi
	ok "postinst never restarts carotated.service on upgrade"
	if grep -q 'carotated' "$T/ctrl/prerm" && ! awk '/deb-systemd-invoke/ && !seen { exit !(prev ~ /"\$1" = remove/) } { prev = $0 }' "$T/ctrl/prerm"; then
		fail "prerm stops carotated.service only on remove, never on upgrade" "$(cat "$T/ctrl/prerm")"
	fi
	if grep -Eq 'try-restart|invoke restart' "$T/ctrl/prerm"; then
		fail "prerm never restarts carotated.service"
	fi
	ok "prerm stops carotated.service only on remove, never on upgrade"
	assert_file_contains "--no-restart-after-upgrade" "$REPO_ROOT/packaging/debian/rules" \
		"debian/rules asks dh_installsystemd for no restart after upgrade"
fi
# The RPM: %systemd_postun_with_restart try-restarts the unit on every upgrade.
if grep -q '^%systemd_postun_with_restart' "$REPO_ROOT/packaging/rpm/carotate.spec"; then
	fail "the spec never restarts carotated on upgrade (%systemd_postun)"
fi
assert_file_contains "%systemd_postun carotated.service" "$REPO_ROOT/packaging/rpm/carotate.spec" \
	"the spec never restarts carotated on upgrade (%systemd_postun)"
if have_source systemd/carotate.sysusers; then
	assert_file_contains "systemd-sysusers" "$T/ctrl/postinst" "postinst creates the users"
	assert_contains "systemd-sysusers" "$DEPENDS" "Depends provides systemd-sysusers"
fi
if have_source systemd/carotate.tmpfiles; then
	assert_file_contains "systemd-tmpfiles" "$T/ctrl/postinst" "postinst creates the runtime directories"
fi

# The linking key (issue 15, item 13). Reproduction: with an od that failed, the RPM's
# %post renamed an empty file into place as the key, and neither script synced the key
# before its rename. Now both check 64 hex digits and fail loudly, and sync first.
assert_match 'sync "\$tmp"' "$(grep -A1 'sync "$tmp"' "$T/ctrl/postinst" | tr '\n' ' ')" \
	"postinst syncs the temporary key"
assert_eq "sync mv" "$(grep -oE '^[[:space:]]*(sync|mv -f) "\$tmp"' "$T/ctrl/postinst" | awk '{ print $1 }' | tr '\n' ' ' | sed 's/ $//')" \
	"postinst syncs the key before it renames it"
assert_file_contains "/usr/sbin/carotated --init -c /etc/carotate/carotated.conf" "$T/ctrl/postinst" \
	"postinst makes the canary pair (carotated --init) for nginx -t"
BROKEN="$T/broken-od"
mkdir -p "$BROKEN" "$T/od-root/etc/carotate"
printf '#!/bin/sh\nexit 1\n' >"$BROKEN/od"
printf '#!/bin/sh\necho 0123\n' >"$BROKEN/od-short"
chmod 0755 "$BROKEN/od" "$BROKEN/od-short"
run env DPKG_ROOT="$T/od-root" PATH="$BROKEN:$PATH" sh "$T/ctrl/postinst" configure
assert_ne 0 "$RC" "postinst fails when od makes no key"
assert_contains "could not make" "$ERR" "and says so"
assert_eq "" "$(ls "$T/od-root/etc/carotate")" "and leaves no key, empty or temporary"
mv "$BROKEN/od-short" "$BROKEN/od"
run env DPKG_ROOT="$T/od-root" PATH="$BROKEN:$PATH" sh "$T/ctrl/postinst" configure
assert_ne 0 "$RC" "postinst fails on a short key"
assert_eq "" "$(ls "$T/od-root/etc/carotate")" "and leaves nothing"

# The programs of the package run, and its default configuration is valid.
mkdir "$T/x"
dpkg-deb -x "$DEB" "$T/x"
# The licence: debian/copyright states ISC (DEP-5) with its text, as LICENSE does.
assert_eq "License: ISC" "$(grep '^License:' "$T/x/usr/share/doc/carotate/copyright" | sort -u)" \
	"debian/copyright states the ISC licence"
assert_file_contains "Permission to use, copy, modify, and distribute this software" \
	"$T/x/usr/share/doc/carotate/copyright" "debian/copyright carries the ISC text"
assert_eq "carotated $PROJECT_VERSION" "$("$T/x/usr/sbin/carotated" --version)" "packaged carotated --version"
assert_eq "carotatectl $PROJECT_VERSION" "$("$T/x/usr/bin/carotatectl" --version)" "packaged carotatectl --version"
# (syntax only: the groups, users and directories it names are this machine's to have)
run "$T/x/usr/sbin/carotated" --check-config -c "$T/x/etc/carotate/carotated.conf"
assert_contains "carotated.conf: syntax OK" "$OUT" "the packaged carotated.conf passes carotated --check-config"

# Every key of the default configuration has its comment on the line above, and so does
# every section.
undocumented=$(awk 'NF && $0 !~ /^[#;]/ && prev !~ /^[#;]/ { print NR ": " $0 } { prev = $0 }' \
	"$T/x/etc/carotate/carotated.conf")
assert_eq "" "$undocumented" "every line of carotated.conf is documented by a comment above it"

# ---------------------------------------------------------------- the agent's package
AGENT_DEPENDS=$(dpkg-deb -f "$AGENT_DEB" Depends)
t_log "carotate-agent Depends: $AGENT_DEPENDS"
for lib in libcurl4 libssl3 libinih1 libc6; do
	assert_contains "$lib" "$AGENT_DEPENDS" "carotate-agent Depends names $lib (its binary's shared libraries)"
done
for not in nginx sqlite libevent protobuf seccomp libcap libacl sysusers "carotate "; do
	case "$AGENT_DEPENDS " in
	*"$not"*) fail "carotate-agent does not depend on $not" "$AGENT_DEPENDS" ;;
	esac
done
ok "carotate-agent depends on none of nginx, SQLite, libevent, protobuf-c, libseccomp, libcap, libacl, sysusers, carotate"
dpkg-deb --contents "$AGENT_DEB" | awk '$1 !~ /^d/ { print $1, $2, $6 }' | LC_ALL=C sort >"$T/agent-deb.files"
{
	echo "-rwxr-xr-x root/root ./usr/bin/carotate-agent"
	for f in ./etc/carotate-agent/agent.conf ./lib/systemd/system/carotate-agent.service \
		./lib/systemd/system/carotate-agent.timer ./usr/share/man/man8/carotate-agent.8.gz \
		./usr/share/bash-completion/completions/carotate-agent \
		./usr/share/doc/carotate-agent/README.md.gz ./usr/share/doc/carotate-agent/changelog.Debian.gz \
		./usr/share/doc/carotate-agent/copyright ./usr/share/lintian/overrides/carotate-agent; do
		echo "-rw-r--r-- root/root $f"
	done
} | LC_ALL=C sort >"$T/agent-deb.expected"
assert_eq "$(cat "$T/agent-deb.expected")" "$(cat "$T/agent-deb.files")" \
	"carotate-agent holds exactly its program, units, agent.conf, man page and completion (root, 0755/0644)"
if grep -q agent "$T/deb.files"; then
	fail "carotate holds nothing of the agent's" "$(grep agent "$T/deb.files")"
fi
ok "carotate holds nothing of the agent's"
mkdir "$T/actrl" "$T/ax"
dpkg-deb -e "$AGENT_DEB" "$T/actrl"
dpkg-deb -x "$AGENT_DEB" "$T/ax"
assert_eq "/etc/carotate-agent/agent.conf" "$(cat "$T/actrl/conffiles")" "carotate-agent's one conffile is agent.conf"
assert_eq "carotate-agent $PROJECT_VERSION" "$("$T/ax/usr/bin/carotate-agent" --version)" "packaged carotate-agent --version"
assert_file_contains "deb-systemd-helper enable 'carotate-agent.timer'" "$T/actrl/postinst" \
	"carotate-agent's postinst enables the timer"
assert_file_contains "deb-systemd-invoke \$_dh_action 'carotate-agent.timer'" "$T/actrl/postinst" \
	"... and starts it"
if grep -q 'carotate-agent\.service' "$T/actrl/postinst"; then
	fail "carotate-agent's postinst never starts the service (a check-in inside dpkg)" \
		"$(grep -n 'carotate-agent\.service' "$T/actrl/postinst")"
fi
ok "carotate-agent's postinst never starts the service itself"
assert_file_contains "deb-systemd-helper purge 'carotate-agent.timer'" "$T/actrl/postrm" \
	"postrm purge forgets the timer"
undocumented=$(awk 'NF && $0 !~ /^[#;]/ && prev !~ /^[#;]/ { print NR ": " $0 } { prev = $0 }' \
	"$T/ax/etc/carotate-agent/agent.conf")
assert_eq "" "$undocumented" "every line of agent.conf is documented by a comment above it"
for k in server id ca_file state_dir bundle hook hook_timeout canary_url timeout; do
	grep -q "^$k = \?" "$T/ax/etc/carotate-agent/agent.conf" || fail "agent.conf sets [agent] $k"
done
ok "agent.conf names every [agent] key of carotate-agent(8)"

# ---------------------------------------------------------------- lintian

CHANGES="$REPO_ROOT/build/deb/carotate_${DEB_VERSION}_$ARCH.changes"
rc=0
lintian -I --fail-on error "$CHANGES" >"$T/lintian.out" 2>&1 || rc=$?
sed 's/^/    lintian| /' "$T/lintian.out"
if [ "$rc" -ne 0 ] || grep -q '^E:' "$T/lintian.out"; then
	fail "lintian reports errors (exit $rc)" "$(grep '^E:' "$T/lintian.out" || tail -n 5 "$T/lintian.out")"
fi
ok "lintian: no errors ($(grep -c '^W:' "$T/lintian.out" || true) warnings)"
if grep -E '^[EWI]: carotate-agent' "$T/lintian.out"; then
	fail "lintian: carotate-agent is clean (not even a warning)" "$(grep -E '^[EWI]: carotate-agent' "$T/lintian.out")"
fi
ok "lintian: carotate-agent has no error, warning or information tag"

# ---------------------------------------------------------------- install, remove, purge

# Commands that would act on this machine's systemd are replaced by ones that log; the
# ones that honour DPKG_ROOT (deb-systemd-helper, systemd-sysusers, systemd-tmpfiles)
# run for real, inside the throwaway root.
STUBS="$T/stubs"
mkdir "$STUBS"
for cmd in systemctl deb-systemd-invoke; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$cmd" "$STUBS" >"$STUBS/$cmd"
	chmod 0755 "$STUBS/$cmd"
done

# in_root R DPKG_ARGS...: dpkg on the throwaway root R, maintainer scripts run outside a
# chroot with DPKG_ROOT=R. Dependencies are not installed there.
in_root() {
	local r=$1
	shift
	PATH="$STUBS:$PATH" dpkg --root="$r" --force-script-chrootless --force-depends \
		--log=/dev/null "$@" >>"$T/dpkg.log" 2>&1 || fail "dpkg $* failed" "$(tail -n 20 "$T/dpkg.log")"
}
new_root() {
	mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/lib/dpkg/triggers"
	: >"$1/var/lib/dpkg/status"
	: >"$1/var/lib/dpkg/available"
}
# What is left in root R apart from dpkg's database: files and links only.
leftovers() {
	(cd "$1" && find . -path ./var/lib/dpkg -prune -o \( -type f -o -type l \) -print |
		LC_ALL=C sort)
}

if [ "$(id -u)" -ne 0 ]; then
	ok "not root: the throwaway-root install with dpkg --root is left out"
else
	R="$T/root"
	new_root "$R"
	in_root "$R" --install "$DEB"
	KEY="$R/etc/carotate/linking.key"
	[ -f "$KEY" ] || fail "postinst made no linking key"
	assert_eq "600 root root" "$(stat -c '%a %U %G' "$KEY")" "postinst made the linking key root 0600"
	assert_match '^[0-9a-f]{64}$' "$(cat "$KEY")" "the linking key is 32 random bytes in hex, one line"
	key_before=$(cat "$KEY")
	in_root "$R" --install "$DEB"
	assert_eq "$key_before" "$(cat "$KEY")" "reinstalling keeps the linking key"
	if have_source systemd/carotate.sysusers; then
		for g in carotate carotate-admin carotate-agent; do
			grep -q "^$g:" "$R/etc/group" || fail "sysusers created no group $g in the root"
		done
		grep -q '^carotate-agent:' "$R/etc/passwd" || fail "sysusers created no user carotate-agent"
		ok "postinst created the users and groups (systemd-sysusers --root)"
	fi

	# The packaged daemon, with the state and SSL directories where the package expects
	# them in that root: it accepts the key, stages a set, discards it and stages another.
	SSL_DIR="$R/usr/local/etc/nginx/ssl"
	STATE_DIR="$R/var/lib/carotate"
	LINKING_KEY="$KEY"
	mkdir -p "$SSL_DIR" "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	make_active_set
	make_cert_set "$SSL_DIR/certs-20260101-000000" old # a backup made by hand
	chmod 0700 "$SSL_DIR/certs-20260101-000000"
	write_config
	CAROTATED="$R/usr/sbin/carotated"
	CAROTATECTL="$R/usr/bin/carotatectl"
	start_daemon
	assert_exit 0 "the packaged daemon stages a set" -- ctl generate
	assert_exit 0 "and discards it" -- ctl discard
	assert_exit 0 "and stages another" -- ctl generate
	stop_daemon
	if grep -q 'agents cannot link' "$DAEMON_LOG"; then
		fail "the daemon refused the postinst's linking key" "$(grep 'linking key' "$DAEMON_LOG")"
	fi
	ok "the daemon accepts the linking key the postinst made"
	ls "$STATE_DIR/ca-keys/"*.key >/dev/null 2>&1 || fail "no CA key in the state directory"
	ls -d "$SSL_DIR"/discarded-* "$SSL_DIR/new" >/dev/null || fail "no discarded or staged set"
	snapshot_dir "$SSL_DIR" >"$T/ssl.before"

	in_root "$R" --remove carotate
	for f in "$R/etc/carotate/carotated.conf" "$KEY" "$STATE_DIR/ledger.db"; do
		[ -f "$f" ] || fail "remove (without purge) deleted $f"
	done
	ok "remove keeps the configuration, the linking key and the state"
	[ ! -e "$R/usr/sbin/carotated" ] || fail "remove left the daemon"

	in_root "$R" --purge carotate
	assert_eq "$(cat "$T/ssl.before")" "$(snapshot_dir "$SSL_DIR")" \
		"purge leaves the SSL directory and its backups byte for byte"
	[ ! -e "$STATE_DIR" ] || fail "purge left the state directory" "$(ls -la "$STATE_DIR")"
	[ ! -e "$R/etc/carotate" ] || fail "purge left /etc/carotate" "$(ls -la "$R/etc/carotate")"
	ok "purge removes the state directory and /etc/carotate"
	# Users stay after purge (Debian's practice: files may still belong to them), with
	# systemd-sysusers' lock file.
	assert_eq "$(cd "$R" && find ./usr/local -type f | LC_ALL=C sort)" \
		"$(leftovers "$R" | grep -Ev '^\./etc/(passwd|group|shadow|gshadow|\.pwd\.lock)-?$')" \
		"nothing but the SSL directory (and the users) is left after purge"
	if [ -f "$STUBS/calls" ]; then
		t_log "host systemd calls (stubbed): $(tr '\n' ';' <"$STUBS/calls")"
	fi

	# An SSL directory configured inside the state directory, and a file of the
	# operator's in /etc/carotate: purge keeps both (and says so).
	in_root "$R" --install "$DEB"
	make_cert_set "$STATE_DIR/ssl" inner
	make_cert_set "$STATE_DIR/ssl/certs-20260102-000000" inner-backup
	echo "operator's notes" >"$R/etc/carotate/NOTES"
	snapshot_dir "$STATE_DIR" >"$T/state.before"
	: >"$T/dpkg.log"
	in_root "$R" --purge carotate
	assert_eq "$(cat "$T/state.before")" "$(snapshot_dir "$STATE_DIR")" \
		"purge leaves a state directory holding an SSL directory whole"
	assert_file_contains "left $STATE_DIR in place" "$T/dpkg.log" "and says why"
	[ ! -e "$KEY" ] || fail "purge left the linking key"
	assert_eq "NOTES" "$(ls "$R/etc/carotate")" "purge removes the linking key, keeps the operator's file"
fi

# ---------------------------------------------------------------- carotate-agent alone
if [ "$(id -u)" -eq 0 ]; then
	RA="$T/agent-root"
	new_root "$RA"
	: >"$T/dpkg.log"
	rm -f "$STUBS/calls"
	in_root "$RA" --install "$AGENT_DEB"
	assert_eq "ii" "$(dpkg --root="$RA" -l carotate-agent | awk '$2 == "carotate-agent" { print $1 }')" \
		"carotate-agent installs alone (dpkg --root)"
	for f in usr/sbin/carotated usr/bin/carotatectl etc/carotate; do
		[ ! -e "$RA/$f" ] || fail "installing carotate-agent alone brings no /$f"
	done
	{ [ -x "$RA/usr/bin/carotate-agent" ] && [ -f "$RA/etc/carotate-agent/agent.conf" ]; } ||
		fail "carotate-agent's files are in the root" "$(cd "$RA" && find . -path ./var/lib/dpkg -prune -o -type f -print)"
	assert_eq "/lib/systemd/system/carotate-agent.timer" \
		"$(readlink "$RA/etc/systemd/system/timers.target.wants/carotate-agent.timer")" \
		"postinst enabled carotate-agent.timer (timers.target.wants)"
	if [ -n "$(find "$RA/etc/systemd" -name 'carotate-agent.service' 2>/dev/null)" ]; then
		fail "the service itself is not enabled" "$(find "$RA/etc/systemd" -name 'carotate-agent.service')"
	fi
	if grep -q 'carotate-agent.service' "$STUBS/calls" 2>/dev/null; then
		fail "no check-in is started by the installation" "$(cat "$STUBS/calls")"
	fi
	ok "the service is neither enabled nor started by the installation"
	# What the agent makes once linked: its state (0700, token 0600) and the bundle.
	mkdir -m 0700 "$RA/var/lib/carotate-agent"
	(umask 077 && echo token >"$RA/var/lib/carotate-agent/token" && echo "id=x" >"$RA/var/lib/carotate-agent/state")
	echo bundle >"$RA/etc/carotate-agent/ca-bundle.pem"
	echo old >"$RA/etc/carotate-agent/ca-bundle.pem.prev"
	echo "# operator's edit" >>"$RA/etc/carotate-agent/agent.conf"
	in_root "$RA" --remove carotate-agent
	[ ! -e "$RA/usr/bin/carotate-agent" ] || fail "remove left the agent"
	for f in etc/carotate-agent/agent.conf etc/carotate-agent/ca-bundle.pem var/lib/carotate-agent/token; do
		[ -f "$RA/$f" ] || fail "remove (without purge) keeps /$f"
	done
	ok "remove keeps agent.conf, the bundle other programs trust and the token"
	in_root "$RA" --purge carotate-agent
	for f in etc/carotate-agent var/lib/carotate-agent etc/systemd/system/timers.target.wants/carotate-agent.timer; do
		{ [ ! -e "$RA/$f" ] && [ ! -L "$RA/$f" ]; } || fail "purge removes /$f" "$(ls -la "$RA/$f")"
	done
	ok "purge removes /etc/carotate-agent (bundle, .prev, agent.conf), the state and the timer's link"
	assert_eq "" "$(leftovers "$RA" | grep -v '^\./etc/systemd' || true)" "nothing is left after purge"
	# A file of the operator's in /etc/carotate-agent: purge keeps it, and says so.
	in_root "$RA" --install "$AGENT_DEB"
	echo "operator's notes" >"$RA/etc/carotate-agent/NOTES"
	echo bundle >"$RA/etc/carotate-agent/ca-bundle.pem"
	: >"$T/dpkg.log"
	in_root "$RA" --purge carotate-agent
	assert_eq "NOTES" "$(ls "$RA/etc/carotate-agent")" "purge removes the bundle, keeps the operator's file"
	assert_file_contains "left $RA/etc/carotate-agent in place" "$T/dpkg.log" "and says why"
fi

# ---------------------------------------------------------------- make rpm

start=$(ms_now)
pmake rpm RPMBUILD_FLAGS="--nodeps --nocheck" >"$T/rpm-build.log" 2>&1 ||
	fail "make rpm failed" "$(tail -n 40 "$T/rpm-build.log")"
ok "make rpm (--nocheck): $(($(ms_now) - start)) ms"
RPM=$(ls "$REPO_ROOT"/build/rpm/RPMS/*/carotate-"$PROJECT_VERSION"-*.rpm)
assert_eq "$PROJECT_VERSION" "$(rpm -qp --qf '%{VERSION}' "$RPM" 2>/dev/null)" "the RPM's version is the Makefile's VERSION"

# "MODE OWNER GROUP PATH" of every file; build-id links (a property of the build host's
# rpm) and directories left out.
rpm -qlvp "$RPM" 2>/dev/null | awk '$1 !~ /^[dl]/ { print $1, $3, $4, $NF }' |
	sed 's|^\(.* /usr/share/man/.*\)\.gz$|\1|' | LC_ALL=C sort >"$T/rpm.files"
RPM_DOC=$(rpm -qdp "$RPM" 2>/dev/null | grep '/README\.md$' || true)
case "$RPM_DOC" in
/usr/share/doc/carotate*/README.md) ;;
*) fail "the RPM's documentation is not README.md under /usr/share/doc" "got: $RPM_DOC" ;;
esac
# The licence (ISC, LICENSE) is stated in the header and shipped as a %license file.
assert_eq "ISC" "$(rpm -qp --qf '%{LICENSE}' "$RPM" 2>/dev/null)" "the RPM's License is ISC"
RPM_LICENSE=$(rpm -qLp "$RPM" 2>/dev/null | grep '/LICENSE$' || true)
[ -n "$RPM_LICENSE" ] || fail "the RPM ships no LICENSE as its licence file" "$(rpm -qLp "$RPM" 2>&1)"
ok "the RPM ships $RPM_LICENSE"
{
	echo "-rwxr-xr-x root root /usr/sbin/carotated"
	echo "-rwxr-xr-x root root /usr/bin/carotatectl"
	for f in /etc/carotate/carotated.conf /usr/share/carotate/carotate.proto \
		/usr/share/carotate/nginx/carotate.conf /usr/share/carotate/nginx/README.md \
		/usr/share/carotate/nginx/carotate-locations.conf /usr/share/carotate/nginx/carotate-canary.conf \
		"$RPM_DOC" "$RPM_LICENSE" $(pending_paths 3); do
		echo "-rw-r--r-- root root $f"
	done
} | LC_ALL=C sort >"$T/rpm.expected"
assert_eq "$(cat "$T/rpm.expected")" "$(cat "$T/rpm.files")" "the RPM holds the same files, modes and owners"
assert_eq "/etc/carotate/carotated.conf" "$(rpm -qcp "$RPM" 2>/dev/null)" "the RPM's one config file"

mkdir "$T/rx"
rpm2archive - <"$RPM" | tar -xzf - -C "$T/rx"
assert_eq "carotated $PROJECT_VERSION" "$("$T/rx/usr/sbin/carotated" --version)" "the RPM's carotated --version"
assert_match '^group = nginx +# ' "$(grep '^group = ' "$T/rx/etc/carotate/carotated.conf")" \
	"the RPM's configuration names nginx's group (RHEL family), not www-data"
run "$T/rx/usr/sbin/carotated" --check-config -c "$T/rx/etc/carotate/carotated.conf"
assert_contains "carotated.conf: syntax OK" "$OUT" "the RPM's carotated.conf passes --check-config"

# The %post scriptlet, with /etc/carotate pointed into a temporary root: the same key.
RR="$T/rpmroot"
mkdir -p "$RR/etc/carotate"
rpm -qp --qf '%{POSTIN}' "$RPM" 2>/dev/null | sed "s|/etc/carotate/|$RR/etc/carotate/|g" >"$T/rpm-post.sh"
for cmd in systemd-sysusers systemd-tmpfiles; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$cmd" "$STUBS" >"$STUBS/$cmd"
	chmod 0755 "$STUBS/$cmd"
done
# Its carotated --init, on a test SSL directory, with the RPM's own binary.
RPM_SSL="$T/rpm-ssl"
mkdir -m 0755 "$RPM_SSL"
SSL_DIR="$RPM_SSL" write_config "$RR/etc/carotate/carotated.conf"
sed -i "s|/usr/sbin/carotated |$T/rx/usr/sbin/carotated |" "$T/rpm-post.sh"
assert_file_contains "$T/rx/usr/sbin/carotated --init -c $RR/etc/carotate/carotated.conf" "$T/rpm-post.sh" \
	"the RPM's %post runs carotated --init"
assert_eq "sync mv" "$(grep -oE '(^|[[:space:]])(sync|mv -f) "\$tmp"' "$T/rpm-post.sh" | awk '{ print $1 }' | tr '\n' ' ' | sed 's/ $//')" \
	"the RPM's %post syncs the key before it renames it"
for od in "exit 1" "echo 0123" "echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeX"; do
	printf '#!/bin/sh\n%s\n' "$od" >"$BROKEN/od"
	chmod 0755 "$BROKEN/od"
	run env PATH="$BROKEN:$STUBS:$PATH" sh "$T/rpm-post.sh" 1
	assert_ne 0 "$RC" "the RPM's %post fails when od does '$od'"
	assert_contains "could not make" "$ERR" "and says so"
	[ ! -e "$RR/etc/carotate/linking.key" ] || fail "the RPM's %post left a key after od did '$od'"
	assert_eq "carotated.conf" "$(ls "$RR/etc/carotate")" "and no temporary file"
done
PATH="$STUBS:$PATH" sh "$T/rpm-post.sh" 1 || fail "the RPM's %post failed"
[ -f "$RPM_SSL/canary.crt" ] && [ -f "$RPM_SSL/canary.key" ] ||
	fail "the RPM's %post made no canary pair" "$(ls -la "$RPM_SSL")"
assert_eq "600" "$(stat -c %a "$RPM_SSL/canary.key")" "the RPM's %post made the canary pair (key 0600)"
assert_eq "600" "$(stat -c %a "$RR/etc/carotate/linking.key")" "the RPM's %post makes the linking key 0600"
assert_match '^[0-9a-f]{64}$' "$(cat "$RR/etc/carotate/linking.key")" "64 hex digits"
key_before=$(cat "$RR/etc/carotate/linking.key")
PATH="$STUBS:$PATH" sh "$T/rpm-post.sh" 2 || fail "the RPM's %post failed on upgrade"
assert_eq "$key_before" "$(cat "$RR/etc/carotate/linking.key")" "and keeps it on upgrade"

# ---------------------------------------------------------------- the RPM's carotate-agent
AGENT_RPM=$(ls "$REPO_ROOT"/build/rpm/RPMS/*/carotate-agent-"$PROJECT_VERSION"-*.rpm)
rpm -qlvp "$AGENT_RPM" 2>/dev/null | awk '$1 !~ /^[dl]/ { print $1, $3, $4, $NF }' |
	sed 's|^\(.* /usr/share/man/.*\)\.gz$|\1|' | LC_ALL=C sort >"$T/agent-rpm.files"
AGENT_RPM_DOC=$(rpm -qdp "$AGENT_RPM" 2>/dev/null | grep '/README\.md$' || true)
AGENT_RPM_LICENSE=$(rpm -qLp "$AGENT_RPM" 2>/dev/null | grep '/LICENSE$' || true)
[ -n "$AGENT_RPM_LICENSE" ] || fail "the carotate-agent RPM ships no LICENSE" "$(rpm -qLp "$AGENT_RPM" 2>&1)"
{
	echo "-rwxr-xr-x root root /usr/bin/carotate-agent"
	for f in /etc/carotate-agent/agent.conf /usr/lib/systemd/system/carotate-agent.service \
		/usr/lib/systemd/system/carotate-agent.timer /usr/share/man/man8/carotate-agent.8 \
		/usr/share/bash-completion/completions/carotate-agent "$AGENT_RPM_DOC" "$AGENT_RPM_LICENSE"; do
		echo "-rw-r--r-- root root $f"
	done
} | LC_ALL=C sort >"$T/agent-rpm.expected"
assert_eq "$(cat "$T/agent-rpm.expected")" "$(cat "$T/agent-rpm.files")" \
	"the RPM subpackage carotate-agent holds the same files as the .deb"
assert_eq "/etc/carotate-agent/agent.conf" "$(rpm -qcp "$AGENT_RPM" 2>/dev/null)" "its one config file"
if grep -q agent "$T/rpm.files"; then
	fail "the carotate RPM holds nothing of the agent's" "$(grep agent "$T/rpm.files")"
fi
AGENT_REQUIRES=$(rpm -qp --requires "$AGENT_RPM" 2>/dev/null)
assert_contains "libcurl.so" "$AGENT_REQUIRES" "the agent RPM requires libcurl"
if printf '%s\n' "$AGENT_REQUIRES" | grep -Ei 'nginx|sqlite|libevent|protobuf|seccomp|libcap|^carotate '; then
	fail "the agent RPM requires none of nginx, SQLite, libevent, protobuf-c, libseccomp, libcap, carotate"
fi
ok "the agent RPM requires none of nginx, SQLite, libevent, protobuf-c, libseccomp, libcap, carotate"
assert_contains "carotate-agent.timer" "$(rpm -qp --scripts "$AGENT_RPM" 2>/dev/null)" \
	"its scriptlets handle the timer (presets)"
