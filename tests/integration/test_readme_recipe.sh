#!/bin/bash
# readme recipe: "Running the daemon and the CLI against a temporary configuration", the
# first example of carotated(8) (it was the README's until the README shrank), extracted
# between its `.\" recipe: begin/end` comment lines and run verbatim with bash, as root
# and as an unprivileged user, from a directory whose build/ holds the binaries under
# test. The page's rendering of the block must show the same lines.
# Reproduction, on the README before this test: as root, the recipe's groups carotate and
# carotate-admin did not exist (yet --check-config said OK), `user = $(id -un)` made the
# daemon restart its workers for ever ("never runs as root"), and `status` ran before the
# socket existed ("cannot connect").
# Passing means: every command of the block succeeds, --check-config says "configuration OK",
# both status calls answer with both workers running and none restarted, and the daemon
# stops.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the README's recipe"

t_init
PAGE="$REPO_ROOT/packaging/man/carotated.8"
grep -q '^\.\\" recipe: begin$' "$PAGE" || fail "carotated.8 has no recipe: begin marker"
grep -q '^\.\\" recipe: end$' "$PAGE" || fail "carotated.8 has no recipe: end marker"
RECIPE="$T/recipe.sh"
sed -n '/^\.\\" recipe: begin$/,/^\.\\" recipe: end$/p' "$PAGE" | sed '1d;$d' >"$T/recipe.body"
# Literal lines only: a roff request or escape would render as something else.
if grep -nE "^[.']|\\\\" "$T/recipe.body"; then
	fail "the recipe in carotated.8 holds roff requests or escapes" "$(cat "$T/recipe.body")"
fi
{
	# Each command stops the recipe when it fails, as an operator would.
	printf 'set -e\n'
	cat "$T/recipe.body"
} >"$RECIPE"
grep -q 'carotated -f' "$RECIPE" || fail "the recipe has no daemon start" "$(cat "$RECIPE")"
ok "the recipe is extracted from carotated(8) ($(($(wc -l <"$RECIPE") - 1)) lines)"
if command -v mandoc >/dev/null; then
	mandoc -Tascii -O width=200 "$PAGE" | col -b >"$T/page.txt"
	while IFS= read -r line; do
		grep -qF -- "$line" "$T/page.txt" || fail "carotated(8) does not show the recipe's line" "$line"
	done <"$T/recipe.body"
	ok "carotated(8) shows every line of the recipe as it is run"
fi

# A work directory whose build/ holds the binaries under test, readable by any user.
WORK="$T/work"
mkdir -p "$WORK/build"
cp "$CAROTATED" "$CAROTATECTL" "$WORK/build/"
chmod -R a+rX "$WORK"

# recipe_check WHO: the recipe's output in $OUT/$ERR, run as WHO.
recipe_check() {
	local who=$1
	if [ "$RC" -ne 0 ]; then
		fail "the recipe fails as $who (exit $RC)" "stdout: $OUT" "stderr: $ERR"
	fi
	ok "the recipe runs as $who"
	assert_contains "carotated.conf: configuration OK" "$OUT" "--check-config says OK as $who"
	assert_match "workers: +agent pid [0-9]+, canary pid [0-9]+" "$OUT" \
		"status shows both workers running as $who"
	if printf '%s' "$OUT" | grep -Eq '[0-9]+ restarts?;|"restarts": [1-9]'; then
		fail "a worker restarted as $who" "$OUT"
	fi
	ok "no worker restarted as $who"
	assert_match '"restarts": 0' "$OUT" "status --json shows the workers' health as $who"
	case "$ERR" in *"never runs as root"* | *"cannot connect"*)
		fail "the daemon complained as $who" "$ERR" ;;
	esac
	ok "no complaint from the daemon or the CLI as $who"
	assert_contains "stopped" "$ERR" "the daemon stopped as $who"
}

# ---- as the user running the tests (root on the test machines)
me=$(id -un)
assert_exit 0 "the recipe as $me" -- env -C "$WORK" TMPDIR="$T" bash "$RECIPE"
recipe_check "$me"

# ---- as an unprivileged user
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null || t_skip "setpriv (util-linux) is not installed"
	OPERATOR=carotate-t-recipe
	t_user "$OPERATOR"
	mkdir -m 1777 "$T/tmp"
	run setpriv --reuid="$(id -u "$OPERATOR")" --regid="$(id -g "$OPERATOR")" --init-groups \
		env -C "$WORK" HOME=/ TMPDIR="$T/tmp" bash "$RECIPE"
	recipe_check "$OPERATOR"
	assert_contains "not run as root" "$OUT" "--check-config says what it skips as $OPERATOR"
fi
