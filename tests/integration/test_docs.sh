#!/bin/bash
# docs: what the README, the man pages and the code's comments promise an operator.
# Reproductions, on the docs before this test: comments and the README sent readers to
# "DESIGN §N", sections of a file the project does not ship; the README said `make demo`
# "takes about 15 seconds" (measured 18.6 s prebuilt, 29 s on a shared machine); it gave
# no command for joining a group, and no runbook for a report stuck at 99 % ("delivered
# but not acknowledged" was never explained). Then the README grew to 1,507 lines that
# nobody read to the end, and the packages said "License: unspecified".
# Passing means: the README is under 300 lines and holds what a newcomer needs (the two
# quick-start commands, the runbook, the agent host's view, where to go next); the
# groups and the 99 % runbook are in carotated(8) (GROUPS, TROUBLESHOOTING), which the
# README points to; LICENSE is ISC and debian/copyright and the RPM spec say so.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the documents"

t_init
README="$REPO_ROOT/README.md"
DAEMON_PAGE="$REPO_ROOT/packaging/man/carotated.8"
cd "$REPO_ROOT"
refs=$(git ls-files -- ':!tests/fuzz/corpus' ':!tests/integration/test_docs.sh' 2>/dev/null | xargs grep -l -E 'DESIGN §|DESIGN\.md' 2>/dev/null || true)
assert_eq "" "$refs" "no tracked file refers to design sections the project does not ship"
[ ! -e "$REPO_ROOT/DESIGN.md" ] || fail "DESIGN.md is in the tree: the references could stay"
ok "the design file is not in the project"

# ---- the README: short, and what a newcomer needs
lines=$(wc -l <"$README")
[ "$lines" -lt 300 ] || fail "README.md is $lines lines, not under 300"
ok "README.md is $lines lines"
grep -q 'about 15 seconds' "$README" && fail "README still says make demo takes about 15 seconds"
ok "no 15-second promise for make demo"
for heading in "## Quick start" "## The operator's runbook" "## The agent host's view" \
	"## Where to go next"; do
	grep -q "^$heading" "$README" || fail "README.md has no section \"$heading\""
done
ok "README: quick start, runbook, agent host's view, where to go next"
assert_file_contains "make demo " "$README" "README: the first quick-start command"
assert_file_contains "make check " "$README" "README: the second quick-start command"
assert_file_contains "usermod -aG carotate-admin alice" "$README" "README: how to become an admin"
assert_file_contains "log out and in again" "$README" "README: a new group needs a new login"
assert_file_contains "is stuck at 99 %" "$README" "README: sends a report stuck at 99 % to its runbook"
assert_file_contains "TROUBLESHOOTING" "$README" "README: names carotated(8)'s TROUBLESHOOTING"
for page in 'carotatectl(1)' 'carotated(8)' 'carotated.conf(5)' 'carotate-protocol(7)' \
	'carotate-agent(8)' 'tests/README.md'; do
	assert_file_contains "$page" "$README" "README: where to go next names $page"
done

# ---- the groups and the 99 % runbook, in carotated(8)
renderer=mandoc
command -v mandoc >/dev/null || renderer="man"
command -v "$renderer" >/dev/null || t_skip "neither mandoc nor man is installed (make deps)"
cat >"$T/facts" <<'FACTS'
GROUPS|usermod -aG carotate-admin alice
GROUPS|log out and in again
GROUPS|also needs read access to the certificate and key files
TROUBLESHOOTING|is stuck at 99 %
TROUBLESHOOTING|Delivered but not acknowledged
TROUBLESHOOTING|carotatectl report --pending
TROUBLESHOOTING|carotatectl exclude AGENT --reason TEXT
TROUBLESHOOTING|carotatectl forget AGENT
FACTS
run "$PY" "$IT_DIR/mancheck.py" facts "$DAEMON_PAGE" "$T/facts" "$renderer"
[ "$RC" -eq 0 ] || fail "carotated(8) holds the groups and the runbook for 99 %" \
	"$(printf '%s\n' "$OUT" | grep -v '^ok:')" "$ERR"
ok "carotated(8): how to become an admin, install's read access, the runbook for 99 %"

# ---- the licence
assert_file_contains "Copyright (c) 2026 carotate maintainers" "$REPO_ROOT/LICENSE" "LICENSE: the copyright"
assert_file_contains "Permission to use, copy, modify, and distribute this software for any" \
	"$REPO_ROOT/LICENSE" "LICENSE: the ISC text"
assert_eq "License: ISC" "$(grep '^License:' "$REPO_ROOT/packaging/debian/copyright" | sort -u)" \
	"debian/copyright: License: ISC (DEP-5)"
assert_file_contains "THE SOFTWARE IS PROVIDED \"AS IS\"" "$REPO_ROOT/packaging/debian/copyright" \
	"debian/copyright: the ISC text"
assert_match '^License: +ISC$' "$(grep '^License:' "$REPO_ROOT/packaging/rpm/carotate.spec")" \
	"the RPM spec: License: ISC"
assert_eq 2 "$(grep -c '^%license LICENSE$' "$REPO_ROOT/packaging/rpm/carotate.spec")" \
	"the RPM spec: %license LICENSE in both packages"
