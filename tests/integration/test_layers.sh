#!/bin/bash
# The daemon's layers, as the linker sees them (layers.py reads the object files with nm):
# common < sys, pki, config < store < engine < rpc < main. A module uses only its own
# layer or lower ones, and no modules depend on each other in a circle (the agents, audit,
# dispatch, metrics and status modules once did). Then the check is shown to notice: an
# upward edge and a circle added by hand must each be refused, named.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the objects' symbols and compiles include probes; the layering is the same in every build"

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

# The same direction at compile time: each directory is built with the include flags of its
# layer (the Makefile's INC_<layer>), so a header of a higher layer is not found there.
# A probe that includes one header is compiled with each layer's flags: the layer's own
# and lower headers compile, a higher one is "No such file".
command -v cc >/dev/null || t_skip "cc is missing"
probe=$T/probe.c
include_check() { # LAYER HEADER: exit status of compiling #include "HEADER" with LAYER's flags
	local flags
	flags=$(make -s -C "$REPO_ROOT" show-includes LAYER="$1" O="$CAROTATE_BUILD")
	printf '#include "%s"\nint probe_unused;\n' "$2" >"$probe"
	(cd "$REPO_ROOT" && cc -std=c11 -D_GNU_SOURCE -fsyntax-only $flags "$probe" 2>&1)
}
for pair in store:pki.h store:ssldir.h store:config.h engine:ssldir.h engine:job.h \
	rpc:agents.h sys:worker.h pki:digest.h; do
	assert_exit 0 "${pair%%:*}/ sees ${pair#*:}" -- include_check "${pair%%:*}" "${pair#*:}"
done
for pair in store:agents.h store:dispatch.h store:supervise.h sys:ssldir.h sys:control.h \
	pki:config.h pki:ssldir.h worker:supervise.h engine:dispatch.h common:pki.h; do
	assert_exit 1 "${pair%%:*}/ cannot include ${pair#*:} (a higher layer)" -- \
		include_check "${pair%%:*}" "${pair#*:}"
	assert_contains "No such file" "$OUT" "the compiler says why"
done
