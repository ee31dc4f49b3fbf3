#!/bin/bash
# A full disk on the agent host (issue 16, "Errors ... a full disk on the agent host ...
# leave the installed bundle byte-for-byte unchanged"), with the bundle and state_dir on ONE
# file system, as /etc and /var/lib are on most hosts: a 256 KiB tmpfs (as root) filled
# until 0, 1, 2, 3, 4, 6 or 8 pages are free, with and without a .prev (the first change
# after link has none), then a check-in that receives a new bundle
# from build/fakeproxy. (test_agent_faults fills a file system holding the bundle alone.)
# Reproduction, on the agent of its first version: with room for the bundle's temporary
# file but not the state's, the bundle was renamed into place, then writing the state failed:
# exit 6 with the bundle replaced, the state still naming the old bundle; the next check-in
# took the same bundle again and linked the new bundle as .prev: the old bundle was lost.
# Then state_dir alone on a full file system (/var of its own): the same rule, deterministic.
# After each run: exit 0 with the complete new bundle, the old one as .prev and the next
# check-in presenting the new id; or exit 6, one line saying there is no space, bundle and
# .prev byte for byte unchanged, no temporary file; and with the space back, a check-in
# installs the new bundle with the old one as .prev and runs the hook once.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

command -v fallocate >/dev/null || t_skip "fallocate (util-linux) is not installed"
t_init

agent_require
fakeproxy_require

agent_proxy_pki "disk test" a b
agent_bundles

FULL="$T/full"
small_tmpfs "$FULL" 256k || t_skip "$SMALL_TMPFS_WHY"
mkdir -p "$FULL/etc"
mkdir -m 0700 "$FULL/state"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho run >>"$1"\n' >"$T/hook.sh"
chmod 0755 "$T/hook.sh"
CONF_A="$T/agent.conf"
agent_conf_write "$CONF_A" id=disk-agent "state_dir=$FULL/state" "bundle=$FULL/etc/ca-bundle.pem" \
	"hook=$T/hook.sh $T/hook.log" timeout=10s
AGENT_CONF=$CONF_A
BUNDLE="$FULL/etc/ca-bundle.pem"
agent_join_token "$T/join-token"

fp_start --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link" -- agent link --server "https://127.0.0.1:$FP_PORT" --ca-file "$PKI_DIR/a/ca.crt" \
	--join-token-file "$T/join-token"
cp -p "$BUNDLE" "$T/linked.pem"
cp -a "$FULL/state" "$T/state.linked"

# fill PAGES: a filler file takes all but PAGES pages of $FULL (lib.sh's fill_fs).
fill() { fill_fs "$FULL" "$1"; }
# back_to_b1 PREV: the agent as it was after link (bundle B1, state naming B1), with a .prev
# of its own (PREV=yes: as after an earlier change; its removal frees a page) or none (the
# first change after link).
back_to_b1() {
	rm -f "$FULL/.filler" "$BUNDLE.prev"
	cp -p "$T/linked.pem" "$BUNDLE"
	[ "$1" = no ] || cp -p "$T/linked.pem" "$BUNDLE.prev"
	rm -rf "$FULL/state"
	cp -a "$T/state.linked" "$FULL/state"
}
prev_unchanged() {
	if [ "$1" = no ]; then [ ! -e "$BUNDLE.prev" ]; else cmp -s "$T/linked.pem" "$BUNDLE.prev"; fi
}

failed=0
for prev in yes no; do for pages in 0 1 2 3 4 6 8; do
	back_to_b1 "$prev"
	fp_start --status 200 --header "ETag: \"$ID2\"" --body "$B2" --if-none-match "$ID2"
	hooks_before=$(hook_runs "$T/hook.log")
	fill "$pages"
	run agent check-in
	what="check-in with $pages free pages for bundle and state (.prev before: $prev)"
	if [ "$RC" -ne 0 ]; then
		failed=$((failed + 1))
		assert_eq 6 "$RC" "$what: exit 6"
		printf '%s' "$ERR" | grep -Eqi 'space|disk' || fail "$what: the message says there is no space" "$ERR"
		cmp -s "$T/linked.pem" "$BUNDLE" ||
			fail "$what failed (exit $RC: $ERR), so the installed bundle is unchanged" \
				"it holds the bundle $(pem_bundle_id "$BUNDLE" | head -c 12) (old ${ID1:0:12}, new ${ID2:0:12})"
		prev_unchanged "$prev" || fail "$what failed, so .prev is unchanged"
		assert_eq "$hooks_before" "$(hook_runs "$T/hook.log")" "$what: failed, bundle and .prev unchanged, no hook"
		# The space back: the next check-in installs the new bundle, keeping the old one.
		rm -f "$FULL/.filler"
		assert_exit 0 "$what: with space again, check-in" -- agent check-in
	else
		ok "$what: it fit (exit 0)"
	fi
	cmp -s "$B2" "$BUNDLE" || fail "$what: the new bundle is installed in the end"
	cmp -s "$T/linked.pem" "$BUNDLE.prev" ||
		fail "$what: the old bundle is .prev in the end" \
			"it holds $(pem_bundle_id "$BUNDLE.prev" | head -c 12) (old ${ID1:0:12}, new ${ID2:0:12})"
	assert_eq $((hooks_before + 1)) "$(hook_runs "$T/hook.log")" "$what: in the end the new bundle, the old one as .prev, the hook run once"
	: >"$T/fp.log"
	assert_exit 0 "$what: the next check-in" -- agent check-in
	grep -q "If-None-Match: \"$ID2\"" "$T/fp.log" || fail "$what: the next check-in presents the new id" "$(cat "$T/fp.log")"
	leftover=$(find "$FULL" -name '*.tmp*')
	assert_eq "" "$leftover" "$what: no temporary file is left"
done; done
[ "$failed" -gt 0 ] || fail "some check-in ran out of space (0 free pages at least)"
ok "$failed of 14 runs ran out of space, each cleanly"

# ---------------------------------------------------------------- state_dir alone full
# /var (state_dir) on a file system of its own, as on many servers, and that one full: the
# bundle's write succeeds, the state's cannot. Deterministic, where the walk above depends on
# the page the two writes share.
echo "-- state_dir on its own full file system"
FULL2="$T/full2"
mkdir -p "$T/etc2"
small_tmpfs "$FULL2" 64k || t_skip "$SMALL_TMPFS_WHY"
mkdir -m 0700 "$FULL2/state"
sed -e "s|^state_dir = .*|state_dir = $FULL2/state|" -e "s|^bundle = .*|bundle = $T/etc2/ca-bundle.pem|" \
	-e "s|^id = .*|id = disk-agent-2|" "$CONF_A" >"$T/agent2.conf"
fp_start --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link (state_dir on its own file system)" -- "$AGENT" -c "$T/agent2.conf" link \
	--server "https://127.0.0.1:$FP_PORT" --ca-file "$PKI_DIR/a/ca.crt" --join-token-file "$T/join-token"
hooks_before=$(hook_runs "$T/hook.log")
fill_fs "$FULL2" 0
fp_start --status 200 --header "ETag: \"$ID2\"" --body "$B2" --if-none-match "$ID2"
run "$AGENT" -c "$T/agent2.conf" check-in
assert_eq 6 "$RC" "state_dir full: check-in exits 6 ($ERR)"
cmp -s "$B1" "$T/etc2/ca-bundle.pem" ||
	fail "state_dir full: the check-in failed (exit $RC: $ERR), so the installed bundle is unchanged" \
		"it holds the bundle $(pem_bundle_id "$T/etc2/ca-bundle.pem" | head -c 12) (old ${ID1:0:12}, new ${ID2:0:12})"
[ ! -e "$T/etc2/ca-bundle.pem.prev" ] || fail "state_dir full: no .prev appeared"
assert_eq "$hooks_before" "$(hook_runs "$T/hook.log")" "state_dir full: bundle unchanged, no .prev, no hook"
rm -f "$FULL2/.filler"
assert_exit 0 "state_dir with space again: check-in" -- "$AGENT" -c "$T/agent2.conf" check-in
cmp -s "$B2" "$T/etc2/ca-bundle.pem" || fail "space again: the new bundle is installed"
cmp -s "$B1" "$T/etc2/ca-bundle.pem.prev" || fail "space again: the old bundle is .prev"
assert_eq $((hooks_before + 1)) "$(hook_runs "$T/hook.log")" "space again: new bundle, old one as .prev, the hook ran once"
