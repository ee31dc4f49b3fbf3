# shellcheck shell=bash disable=SC2034 # variables here are used by the test that sources it
# Helpers of the power-loss walk (tests/integration/test_power_loss.sh), sourced after
# tests/integration/lib.sh and t_init. A small file system image (ext4 or XFS) whose block
# writes are logged by logfs, replayed by replay (both in $CAROTATE_BUILD/powerloss):
#
#   pl_require                 skips the test where FUSE, loop devices or the tools are missing
#   pl_mkfs FS IMG             a fresh, sparse file system image
#   pl_attach IMG DIR          a loop device over IMG, mounted on DIR (PL_LOOP); pl_detach DIR
#   pl_log_start IMG LOG       logfs over IMG (a copy), the loop device on its disk.img, mounted
#                              on $PL_FS; pl_mark TEXT puts TEXT in the log; pl_log_stop
#   pl_image BASE LOG N [DROPS] builds $PL_IMG, repairs it as a reboot would, mounts it on $PL_FS
#
# Every mount, loop device and logfs is undone by pl_cleanup (the test's EXIT trap calls it
# before lib.sh's), whatever failed: no loop device stays attached.

PL_BIN="$CAROTATE_BUILD/powerloss"
PL_FS=""         # where the file system under test is mounted (SSL and state directories)
PL_FUSE=""       # logfs's mount point
PL_FUSE_PID=""
PL_LOOPS=""      # attached loop devices
PL_MOUNTS=""     # mounted directories, innermost first
PL_IMG=""        # the replayed image

# pl_require FS: t_skip with the reason where the walk cannot run here.
pl_require() {
	[ "$(id -u)" -eq 0 ] || t_skip "loop devices and mounts need root"
	[ -c /dev/fuse ] || t_skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || t_skip "no fusermount3 (apt-get install fuse3)"
	[ -x "$PL_BIN/logfs" ] || t_skip "no $PL_BIN/logfs (libfuse3-dev was missing at build time)"
	[ -x "$PL_BIN/replay" ] || t_skip "no $PL_BIN/replay (make $PL_BIN/replay)"
	command -v losetup >/dev/null || t_skip "no losetup"
	command -v sqlite3 >/dev/null || t_skip "no sqlite3"
	local probe="$T/pl-probe.img" dev
	truncate -s 1M "$probe"
	dev=$(losetup -f --show "$probe" 2>/dev/null) || t_skip "loop devices are unusable here (losetup -f failed)"
	losetup -d "$dev"
	rm -f "$probe"
}

# pl_fs_usable FS: 0 when FS (ext4, xfs) can be made and mounted here; the reason in PL_WHY.
PL_WHY=""
pl_fs_usable() {
	case $1 in
	ext4)
		if ! command -v mkfs.ext4 >/dev/null || ! command -v e2fsck >/dev/null; then
			PL_WHY="no mkfs.ext4/e2fsck (e2fsprogs)"
			return 1
		fi ;;
	xfs)
		if ! command -v mkfs.xfs >/dev/null || ! command -v xfs_repair >/dev/null; then
			PL_WHY="no mkfs.xfs/xfs_repair (apt-get install xfsprogs)"
			return 1
		fi ;;
	esac
	grep -qw "$1" /proc/filesystems || { PL_WHY="the kernel has no $1"; return 1; }
}

# pl_mkfs FS IMG: small and sparse. ext4 initialises its tables now, so that no lazy-init thread
# writes behind the test's back; XFS refuses less than 300 MB.
pl_mkfs() {
	rm -f "$2"
	case $1 in
	ext4) truncate -s 64M "$2"
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$2" ;;
	xfs) truncate -s 300M "$2"
		mkfs.xfs -q -f -K "$2" ;;
	esac
}

# pl_attach IMG DIR: a loop device over IMG mounted on DIR.
pl_attach() {
	local dev
	dev=$(losetup -f --show "$1") || fail "losetup $1"
	PL_LOOPS="$dev $PL_LOOPS"
	mkdir -p "$2"
	# nouuid: XFS refuses a second mount of one UUID while a lazy unmount still holds the first.
	mount -o "noatime${PL_MOUNT_OPTS:-}" "$dev" "$2" ||
		fail "mount $dev ($1) on $2" "$(dmesg 2>/dev/null | tail -n 5)"
	PL_MOUNTS="$2 $PL_MOUNTS"
}

# pl_detach DIR: unmounts DIR and detaches every loop device over nothing mounted.
pl_detach() {
	local dev rest=""
	umount "$1" || fail "umount $1"
	# shellcheck disable=SC2086 # a space-separated list, split on purpose
	PL_MOUNTS=$(printf '%s\n' $PL_MOUNTS | grep -vxF "$1" | tr '\n' ' ' || true)
	for dev in $PL_LOOPS; do
		if findmnt -rn -S "$dev" >/dev/null; then
			rest="$rest $dev"
		else
			losetup -d "$dev" || rest="$rest $dev"
		fi
	done
	PL_LOOPS=$rest
}

# pl_log_start IMG LOG: logfs on $PL_FUSE over IMG, logging to LOG; the file system in its
# disk.img mounted on $PL_FS.
pl_log_start() {
	mkdir -p "$PL_FUSE"
	"$PL_BIN/logfs" "$1" "$2" "$PL_FUSE" -f 2>>"$T/logfs.log" &
	PL_FUSE_PID=$!
	wait_until 5000 mountpoint -q "$PL_FUSE" || fail "logfs mounted on $PL_FUSE" "$(cat "$T/logfs.log")"
	pl_attach "$PL_FUSE/disk.img" "$PL_FS"
}

pl_mark() { printf '%s\n' "$*" >"$PL_FUSE/mark"; }

pl_log_stop() {
	pl_detach "$PL_FS"
	fusermount3 -u "$PL_FUSE" || fail "fusermount3 -u $PL_FUSE"
	wait "$PL_FUSE_PID" || fail "logfs exited with an error" "$(cat "$T/logfs.log")"
	PL_FUSE_PID=""
}

# pl_image FS BASE LOG N [DROPS]: $PL_IMG := BASE + the first N records of LOG (less the
# writes in DROPS), then what a reboot does: ext4's e2fsck -fy (its journal replayed), XFS
# mounted once (its log replayed), then xfs_repair -n; then mounted on $PL_FS. 1 (the reason
# in PL_WHY) when the file system itself is damaged.
pl_image() {
	local fs=$1 rc=0
	PL_MOUNT_OPTS=""
	[ "$fs" != xfs ] || PL_MOUNT_OPTS=,nouuid
	if [ -n "${5:-}" ]; then
		"$PL_BIN/replay" "$2" "$3" "$PL_IMG" "$4" --drop "$5" || fail "replay $4 --drop $5"
	else
		"$PL_BIN/replay" "$2" "$3" "$PL_IMG" "$4" || fail "replay $4"
	fi
	case $fs in
	ext4)
		e2fsck -fy "$PL_IMG" >"$T/fsck.out" 2>&1 || rc=$?
		# 1: errors corrected (the journal replayed counts); more is damage.
		if [ "$rc" -gt 1 ]; then
			PL_WHY="e2fsck -fy: status $rc: $(tail -n 5 "$T/fsck.out")"
			return 1
		fi ;;
	xfs)
		pl_attach "$PL_IMG" "$PL_FS"
		pl_detach "$PL_FS"
		xfs_repair -n "$PL_IMG" >"$T/fsck.out" 2>&1 || {
			PL_WHY="xfs_repair -n: $(tail -n 5 "$T/fsck.out")"
			return 1
		} ;;
	esac
	pl_attach "$PL_IMG" "$PL_FS"
}

# pl_cleanup: kills the daemon (it holds files on $PL_FS), unmounts, detaches, ends logfs.
pl_cleanup() {
	local m dev
	set +e
	[ -z "$DAEMON_PID" ] || t_kill "$DAEMON_PID"
	for m in $PL_MOUNTS; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
	for dev in $PL_LOOPS; do
		losetup -d "$dev"
	done
	if [ -n "$PL_FUSE" ] && mountpoint -q "$PL_FUSE"; then
		fusermount3 -u "$PL_FUSE" || fusermount3 -uz "$PL_FUSE"
	fi
	[ -z "$PL_FUSE_PID" ] || wait "$PL_FUSE_PID" 2>/dev/null
	PL_MOUNTS=""
	PL_LOOPS=""
	return 0
}
