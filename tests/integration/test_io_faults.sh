#!/bin/bash
# timeout: 480 (every N of three operations, each a reload and a TLS check)
# generate, rotate and restore under injected I/O faults, with real nginx (tests/faultinj/):
# the daemon runs with libfailio.so preloaded, which fails exactly the Nth file-system call
# under the SSL and state directories. For each operation, N = 1, 2, ... until the operation
# runs without the fault firing; after each faulted run:
#  - a failure: the CLI exits non-zero (not a signal, not a timeout) with a message naming
#    the error; the live set (ca.crt, server.crt, server.key, .carotate-set) has exactly its
#    SHA-256 sums from before; the staged set too (rotate); the backups are the same; no
#    temporary file, staging directory or swap journal is left; no CA key of a set that was
#    never staged;
#  - a success (the fault hit a step after the operation's commit point: the bundle, the
#    canary, the CA record, the audit record): the complete new set, and the daemon logged
#    the error;
#  - either way: the ledger passes PRAGMA integrity_check, the daemon answers status and an
#    agent check-in through nginx, and nginx -t passes.
# Then the operation runs without a fault and succeeds. One pass fails every kind of call with
# EIO (the ledger's SQLite calls in the generate walk only), one fails restore's writes with
# ENOSPC. Prints how many N each operation needed (about 61, 71, 78 and 16; ~2 min).
# CAROTATE_IOFAULT_MAX caps N (default 400); CAROTATE_IOFAULT_OPS picks the operations
# (default "generate rotate restore"); CAROTATE_IOFAULT_STEP walks every STEP-th N only;
# CAROTATE_IOFAULT_CALLS=all fails opens for reading too.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=nginx.sh
. "$(dirname "$0")/nginx.sh"

command -v curl >/dev/null || t_skip "curl is not installed (make deps installs it)"
command -v sqlite3 >/dev/null || t_skip "sqlite3 is not installed (make deps installs it)"
t_init
MAX_N=${CAROTATE_IOFAULT_MAX:-400}
OPS=${CAROTATE_IOFAULT_OPS:-generate rotate restore}
# The ENOSPC pass: restore by default (it copies, so it writes the most), to stay well under
# the runner's 180 s; CAROTATE_IOFAULT_ENOSPC_OPS="generate rotate restore" walks all three.
ENOSPC_OPS=${CAROTATE_IOFAULT_ENOSPC_OPS:-restore}
# The calls the EIO pass fails: "mut" (changes), or "all" (opens for reading too: slower).
CALLS=${CAROTATE_IOFAULT_CALLS:-mut}
# Every STEP-th N (default 1; 2 under sanitizers, which run each operation ~2 times slower).
STEP=${CAROTATE_IOFAULT_STEP:-1}
case "$CAROTATE_BUILD" in */asan*) STEP=${CAROTATE_IOFAULT_STEP:-2} ;; esac

# The shim: $CAROTATE_BUILD/faultinj/libfailio.so (make integration builds it), else built here.
FAILIO_SO="$CAROTATE_BUILD/faultinj/libfailio.so"
if [ ! -f "$FAILIO_SO" ]; then
	FAILIO_SO="$T/libfailio.so"
	cc -std=c11 -O2 -Wall -Wextra -shared -fPIC -o "$FAILIO_SO" \
		"$REPO_ROOT/tests/faultinj/failio.c" -ldl || fail "building tests/faultinj/failio.c"
fi

make_active_set
nginx_write_daemon_config
FI_CTL="$T/failio.ctl"
FI_LOG="$T/failio.log"
FI_GEN=0
printf '0 0 EIO\n' >"$FI_CTL"
# The daemon alone gets the shim: a wrapper that execs it (same pid) with LD_PRELOAD.
# Sanitized builds: ASan refuses a preloaded library ahead of its runtime unless told.
REAL_CAROTATED=$CAROTATED
CAROTATED="$T/carotated-failio"
cat >"$CAROTATED" <<EOF
#!/bin/sh
export CAROTATE_FAILIO='$FI_CTL' CAROTATE_FAILIO_LOG='$FI_LOG'
export CAROTATE_FAILIO_PATHS='$SSL_DIR:$STATE_DIR'
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
LD_PRELOAD='$FAILIO_SO' exec '$REAL_CAROTATED' "\$@"
EOF
chmod 0755 "$CAROTATED"
start_daemon
nginx_start
# shellcheck source=../faultinj/checks.sh
. "$REPO_ROOT/tests/faultinj/checks.sh"
[ -f "$LEDGER" ] || fail "the ledger is $LEDGER"

# ---------------------------------------------------------------- the shim's control file

# fi_write GEN N ERRNO [CALLS]: the whole line at once (rename), so the shim never reads half.
fi_write() {
	printf '%s\n' "$*" >"$FI_CTL.new"
	mv -f "$FI_CTL.new" "$FI_CTL"
}
# fi_arm N ERRNO CALLS [PATHS]: a new generation whose Nth counted call fails.
fi_arm() {
	FI_GEN=$((FI_GEN + 1))
	fi_write "$FI_GEN $1 $2 $3 ${4:-}"
}
fi_off() {
	FI_GEN=$((FI_GEN + 1))
	fi_write "$FI_GEN 0 EIO"
}
# The fault the armed generation G fired ("" when none).
fi_fired() { grep "^gen=$1 " "$FI_LOG" 2>/dev/null || true; }

errtext() {
	case "$1" in
	EIO) echo "Input/output error" ;;
	ENOSPC) echo "No space left on device" ;;
	esac
}

# walk OP ERRNO CALLS [PATHS]: N = 1, 2, ... until OP runs with no fault fired. Sets WALK_N.
WALK_N=0
walk() {
	local op=$1 err=$2 calls=$3 paths=${4:-} n=$((1 - STEP)) gen fired live staged backups keys want what logn t0
	t0=$(ms_now)
	while :; do
		n=$((n + STEP))
		[ "$n" -le "$MAX_N" ] || fail "$op ($err): still faulting after $MAX_N calls"
		prepare "$op"
		snapshot_state
		want=$(expected_after "$op")
		logn=$(wc -l <"$DAEMON_LOG")
		fi_arm "$n" "$err" "$calls" "$paths"
		gen=$FI_GEN
		run_op "$op"
		fi_off
		fired=$(fi_fired "$gen")
		what="$op, $err at call $n ($(printf '%s' "$fired" | sed 's/.* call=//; s/ errno=.*//'))"
		[ "$OP_RC" -ne 124 ] || fail "$what: the CLI does not hang"
		[ "$OP_RC" -lt 128 ] || fail "$what: the CLI is not killed by a signal" "exit $OP_RC"
		if [ -z "$fired" ]; then
			[ "$OP_RC" -eq 0 ] || fail "$op with no fault left to fire succeeds" "exit $OP_RC: $OP_ERR"
			check_complete "$op" "$op without a fault" "$want"
			check_serving "$op without a fault"
			break
		fi
		if [ "$OP_RC" -ne 0 ]; then
			[ -n "$OP_ERR" ] || fail "$what: the CLI prints an error"
			printf '%s' "$OP_ERR" | grep -Fqi "$(errtext "$err")" ||
				fail "$what: the error names the cause ($(errtext "$err"))" "got: $OP_ERR"
			check_unchanged "$what"
		else
			# The fault hit after the commit point: the new set, and the error in the log.
			check_complete "$op" "$what (exit 0)" "$want"
			# (With CALLS=all, a read that fails may only leave "?" in a description.)
			case "$CALLS $fired" in all*" call=open"*) continue ;; esac
			tail -n +"$((logn + 1))" "$DAEMON_LOG" | grep -Eqi "$(errtext "$err")|I/O error|disk is full" ||
				fail "$what: succeeded, so the daemon logged the error it met" \
					"log: $(tail -n +"$((logn + 1))" "$DAEMON_LOG" | tail -n 10)"
		fi
		check_serving "$what"
	done
	WALK_N=$((n - STEP))
	[ "$WALK_N" -gt 0 ] || fail "$op ($err): no fault fired at all: is $FAILIO_SO preloaded?"
	t_log "$op ($err on ${calls}): faults at calls 1..$WALK_N (every $STEP), $(($(ms_now) - t0)) ms"
	ok "$op survives a fault at each of its $WALK_N file-system calls ($err, every $STEP)"
}

# ---------------------------------------------------------------- the walks

agent_link
agent_checkin_ok || fail "a first check-in"
# A backup to restore: the first set goes into one by a rotate.
prepare rotate
run ctl rotate --force --reason "setup"
[ "$RC" -eq 0 ] || fail "the setup rotate" "$ERR"

SUMMARY=""
# The ledger's calls (audit records, check-ins: the same SQLite transaction code after any
# call) count in the generate walk and the ENOSPC pass; left out of the rotate and restore
# walks, where each would cost a whole successful swap, reload and TLS check.
NO_LEDGER="$SSL_DIR:$STATE_DIR:!$STATE_DIR/ledger.db"
for op in $OPS; do
	if [ "$op" = generate ]; then paths=""; else paths=$NO_LEDGER; fi
	walk "$op" EIO "$CALLS" "$paths"
	SUMMARY="$SUMMARY $op=$WALK_N"
done
WRITES=write,writev,pwrite,pwrite64
for op in $ENOSPC_OPS; do
	walk "$op" ENOSPC "$WRITES"
	SUMMARY="$SUMMARY $op(ENOSPC)=$WALK_N"
done
echo "faulted runs per operation:$SUMMARY"
assert_daemon_alive "after every walk"
