#!/bin/bash
# The daemon's layers, as the linker sees them (layers.py reads the object files with nm):
# common < sys, pki, config < store < engine < rpc < main. A module uses only its own
# layer or lower ones, and no modules depend on each other in a circle (the agents, audit,
# dispatch, metrics and status modules once did). Then the check is shown to notice: an
# upward edge and a circle added by hand must each be refused, named.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

command -v nm >/dev/null || t_skip "nm is missing (binutils)"
t_init

assert_exit 0 "the module graph has no upward edge and no circle" -- \
	"$PY" "$IT_DIR/layers.py" "$CAROTATE_BUILD"
ok "$(printf '%s\n' "$OUT" | tail -n 1)"

assert_exit 1 "an upward edge (the ledger using the agents module) is refused" -- \
	"$PY" "$IT_DIR/layers.py" "$CAROTATE_BUILD" --extra ledger:agents
assert_contains "upward: ledger (store) uses agents (engine)" "$OUT" "the upward edge is named"

assert_exit 1 "a circle (audit and dispatch using each other) is refused" -- \
	"$PY" "$IT_DIR/layers.py" "$CAROTATE_BUILD" --extra audit:dispatch --extra dispatch:audit
assert_contains "circle: audit -> dispatch" "$OUT" "the circle is named"
