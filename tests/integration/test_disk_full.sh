#!/bin/bash
# generate, rotate and restore on a full disk, with real nginx: as root, the SSL directory,
# then the state directory, is a small tmpfs of its own, filled (fallocate) until only F
# pages (4 KiB) are free, for several F, so each operation runs out of space at a different
# point. After each run that failed:
#  - the CLI exits non-zero (not a signal, not a timeout) with a message saying there is no
#    space left;
#  - the live set's SHA-256 sums are unchanged, the staged set too (rotate), the backups are
#    the same, no temporary file, staging directory or swap journal is left;
# and after every run: the ledger passes integrity_check, the daemon answers status and an
# agent check-in (with the state directory full: 503 "ledger unavailable", by design: a
# check-in is answered once recorded; then 200 or 304 once space is back), nginx -t passes. A run that succeeded must leave the complete new set.
# Then the space is freed and the operation succeeds. Not root: skipped.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
command -v sqlite3 >/dev/null || t_skip "sqlite3 is not installed (make deps installs it)"
command -v fallocate >/dev/null || t_skip "fallocate (util-linux) is not installed"
t_init

# Free pages left before each run: enough for none, some or all of an operation's files.
LEVELS=${CAROTATE_DISKFULL_LEVELS:-0 1 2 3 4 6 8 12 16}
errtext_full() { printf '%s' "$1" | grep -Eqi 'No space left on device|disk is full'; }

# full_op FULLDIR OP PAGES: one run of OP with FULLDIR filled to PAGES free pages.
full_op() {
	local dir=$1 op=$2 pages=$3 live staged backups keys want what
	unfill_fs "$dir"
	prepare "$op"
	snapshot_state
	want=$(expected_after "$op")
	fill_fs "$dir" "$pages"
	run_op "$op"
	what="$op with $pages free pages in $dir"
	[ "$OP_RC" -ne 124 ] || fail "$what: the CLI does not hang"
	[ "$OP_RC" -lt 128 ] || fail "$what: the CLI is not killed by a signal" "exit $OP_RC"
	if [ "$OP_RC" -ne 0 ]; then
		errtext_full "$OP_ERR" || fail "$what: the error says there is no space left" "got: $OP_ERR"
		check_unchanged "$what"
		FAILED=$((FAILED + 1))
	else
		check_complete "$op" "$what (exit 0)" "$want"
		SUCCEEDED=$((SUCCEEDED + 1))
	fi
	if [ "$dir" = "$STATE_DIR" ]; then
		CHECKIN_CODES="200 304 503"
		check_serving "$what (full)"
		CHECKIN_CODES="200 304"
		unfill_fs "$dir"
		check_serving "$what (space back)"
	else
		check_serving "$what"
		unfill_fs "$dir"
	fi
	t_log "$what: exit $OP_RC${OP_ERR:+: $(printf '%s' "$OP_ERR" | head -n 1)}"
}

# scenario WHICH: WHICH (ssl or state) is a small file system; every op at every level.
scenario() {
	local which=$1 dir op pages
	if [ "$which" = ssl ]; then dir=$SSL_DIR; else dir=$STATE_DIR; fi
	FAILED=0
	SUCCEEDED=0
	for op in generate rotate restore; do
		for pages in $LEVELS; do
			full_op "$dir" "$op" "$pages"
		done
		# The space back: the operation goes through.
		prepare "$op"
		want=$(expected_after "$op")
		run_op "$op"
		[ "$OP_RC" -eq 0 ] || fail "$op with space again in $dir succeeds" "exit $OP_RC: $OP_ERR"
		check_complete "$op" "$op with space again in $dir" "$want"
		check_serving "$op with space again in $dir"
	done
	[ "$FAILED" -gt 0 ] || fail "$which full: some operation ran out of space (levels: $LEVELS)"
	ok "$which directory full: $FAILED runs failed cleanly, $SUCCEEDED fit, every operation succeeds once space is back"
}

# ---------------------------------------------------------------- the SSL directory

# 1 MiB: the sets, the bundle, the canary and a few backups, with room to fill.
small_tmpfs "$SSL_DIR" 1m 0755 || t_skip "$SMALL_TMPFS_WHY"
small_tmpfs "$STATE_DIR" 4m 0700 || t_skip "$SMALL_TMPFS_WHY"
make_active_set
nginx_write_daemon_config
start_daemon
nginx_start
# shellcheck source=../faultinj/checks.sh
. "$REPO_ROOT/tests/faultinj/checks.sh"
agent_link
prepare rotate
run ctl rotate --force --reason "setup"
[ "$RC" -eq 0 ] || fail "the setup rotate" "$ERR"

scenario ssl
scenario state
assert_daemon_alive "after both scenarios"
