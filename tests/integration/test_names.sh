#!/bin/bash
# Every function carries its file's prefix (names.py reads the definitions, static ones
# too, of daemon/, common/ and client/). rpc_rotate.c once defined swap_op_* beside
# swap.c's swap_*, rpc_audit.c audit_walk_* beside audit.c's audit_*, and the dispatch
# table pointed at rpc_generate, rpc_retire...: a reader looking for swap_op_new or
# rpc_retire opened the wrong file. Then the check is shown to notice: a file whose
# functions (a plain one, a static one behind __attribute__, one returning STACK_OF(...))
# do not carry its name is refused, each name given, and the correct ones are not named.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
t_plain_only "it reads the source's names"

t_init

assert_exit 0 "every function of daemon/, common/ and client/ carries its file's prefix" -- \
	"$PY" "$IT_DIR/names.py" "$REPO_ROOT"
ok "$(printf '%s\n' "$OUT" | tail -n 1)"

mkdir -p "$T/src"
cat >"$T/src/swapper.c" <<'C'
/* swapper_fake() { is a comment, not a definition */
static const char *swapper_names[] = { "x(", "}" };
static void __attribute__((noreturn)) swap_op_start(int fd) { for (;;) { } }
static STACK_OF(X509) * swap_op_stack(void) { return 0; }
int
swapper_ok(const char *s)
{
	return s[0] == '"' || s[0] == '{';
}
void rotate_gate(void) {}
void swapper(void) {}
C
assert_exit 1 "a file whose functions lack its prefix is refused" -- \
	"$PY" "$IT_DIR/names.py" "$T" "$T/src/swapper.c"
assert_contains "swap_op_start does not start with swapper_" "$OUT" "a static noreturn one is named"
assert_contains "swap_op_stack does not start with swapper_" "$OUT" \
	"one returning STACK_OF(X509) * is named"
assert_contains "rotate_gate does not start with swapper_" "$OUT" "a plain one is named"
assert_contains "5 functions in 1 files, 3 without" "$OUT" \
	"swapper_ok and swapper pass, the comment and the strings are no functions"
