# shellcheck shell=bash disable=SC2034 # variables here are used by the tests that source it
# Helpers for the integration tests (and tests/bench/run). Source it from bash:
#
#   . "$(dirname "$0")/lib.sh"
#   t_init                 # temp dir $T, cleanup trap (kills daemons, removes $T)
#   make_active_set        # CA + server cert in $SSL_DIR (CA key kept in $T/pki)
#   write_config           # $CONF, every path inside $T
#   start_daemon           # $DAEMON_PID; waits until `carotatectl status` answers
#   ctl --json status      # carotatectl against $SOCK
#   stop_daemon            # SIGTERM, waits; $DAEMON_STATUS is the exit status
#
# Also: make_cert_set DIR [NAME] (a set anywhere, e.g. $SSL_DIR/new), pki_make_ca,
# pki_make_server; cert_sha256 / cert_der_sha256 / cert_subject / cert_not_after_epoch /
# cert_sans FILE (openssl's view); run CMD (sets $OUT $ERR $RC); assert_eq, assert_ne,
# assert_match, assert_contains, assert_file_contains, assert_exit CODE WHAT -- CMD,
# assert_daemon_alive; fail, ok, t_skip, t_log; json_get PATH [FILE]; rfc3339_to_epoch;
# ms_now; wait_until MS CMD; run_daemon_bg, daemon_alive, socket_answers; t_track_pid PID;
# t_on_exit CMD [ARGS...] (the cleanup trap runs it, e.g. pg.sh's server stop);
# snapshot_dir DIR, snapshot_disk (SSL and state directories), assert_unchanged FILE WHAT,
# last_audit.
# $PY is /usr/bin/python3 (has python3-protobuf), $IT_DIR this directory, $REPO_ROOT.
#
# Environment: CAROTATE_BUILD (directory holding carotated and carotatectl);
# CAROTATE_KEEP_TMP=1 keeps $T. A test exits 77 to be skipped (t_skip prints the reason).
# The cleanup trap fails a test whose daemon log holds a sanitizer report.
# CAROTATE_VALGRIND=1 (tests/valgrind/run): daemons run under valgrind's memcheck (and
# carotatectl too with CAROTATE_VALGRIND_CTL=1); the cleanup trap fails a test whose
# valgrind logs ($T/valgrind/PID.N.log) show an error or a definitely lost block. Deadlines
# of the waits here are multiplied by CAROTATE_TIME_SCALE (default 10 under valgrind, else 1).

set -eu

PY=/usr/bin/python3 # Debian's python, which has python3-protobuf (the pyenv one has not)
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$IT_DIR/../.." && pwd)

: "${CAROTATE_BUILD:?CAROTATE_BUILD must name the build directory (e.g. build or build/asan)}"
case "$CAROTATE_BUILD" in
/*) ;;
*) CAROTATE_BUILD=$(cd "$CAROTATE_BUILD" && pwd) ;;
esac
CAROTATED="$CAROTATE_BUILD/carotated"
# The version the Makefile compiles in (VERSION := x.y.z).
PROJECT_VERSION=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' "$REPO_ROOT/Makefile")
CAROTATECTL="$CAROTATE_BUILD/carotatectl"

CAROTATE_VALGRIND=${CAROTATE_VALGRIND:-0}
CAROTATE_VALGRIND_CTL=${CAROTATE_VALGRIND_CTL:-0}
if [ -n "${CAROTATE_TIME_SCALE:-}" ]; then
	TIME_SCALE=$CAROTATE_TIME_SCALE
elif [ "$CAROTATE_VALGRIND" = 1 ]; then
	TIME_SCALE=10
else
	TIME_SCALE=1
fi

# Daemons started through start_daemon / run_daemon_bg, killed by the cleanup trap.
_T_PIDS=""
T=""
DAEMON_PID=""
DAEMON_STATUS=""

# ---------------------------------------------------------------- reporting

t_log() { printf '%s\n' "$*" >&2; }

# Prints a failure with what was expected and what we got, then exits 1.
fail() {
	printf 'FAIL: %s\n' "$1" >&2
	shift
	for line in "$@"; do
		printf '      %s\n' "$line" >&2
	done
	exit 1
}

ok() { printf '  ok: %s\n' "$*"; }

t_skip() {
	printf 'SKIP: %s\n' "$*"
	exit 77
}

# t_plain_only WHY: the test runs once per `make check`, in the plain pass, and skips in the
# sanitizer pass (a build directory under */asan*). For tests of what surrounds the code
# (packages, documents, symbols, Ansible, a booted system) and long runs whose daemon paths the
# sanitizer pass checks in shorter tests: WHY says which.
t_plain_only() {
	case "$CAROTATE_BUILD" in
	*/asan*) t_skip "runs once, in the plain pass: $*" ;;
	esac
}

# ---------------------------------------------------------------- assertions

# assert_eq EXPECTED GOT WHAT
assert_eq() {
	if [ "$1" != "$2" ]; then
		fail "$3" "expected: '$1'" "got:      '$2'"
	fi
	ok "$3"
}

# assert_ne UNEXPECTED GOT WHAT
assert_ne() {
	if [ "$1" = "$2" ]; then
		fail "$3" "expected anything but: '$1'"
	fi
	ok "$3"
}

# assert_match EXTENDED_REGEX GOT WHAT
assert_match() {
	if ! printf '%s' "$2" | grep -Eq -- "$1"; then
		fail "$3" "expected to match: /$1/" "got: '$2'"
	fi
	ok "$3"
}

# assert_contains NEEDLE HAYSTACK WHAT  (fixed string, case-insensitive)
assert_contains() {
	if ! printf '%s' "$2" | grep -Fqi -- "$1"; then
		fail "$3" "expected to contain: '$1'" "got: '$(printf '%s' "$2" | head -c 2000)'"
	fi
	ok "$3"
}

# assert_file_contains NEEDLE FILE WHAT (fixed string, case-insensitive)
assert_file_contains() {
	if ! grep -Fqi -- "$1" "$2"; then
		fail "$3" "expected $2 to contain: '$1'" "it holds (last 20 lines):" \
			"$(tail -n 20 "$2")"
	fi
	ok "$3"
}

# assert_exit EXPECTED_CODE WHAT -- CMD ARGS...
# Runs CMD with output in $OUT (stdout) and $ERR (stderr), checks its exit code.
OUT=""
ERR=""
RC=0
assert_exit() {
	local want=$1 what=$2
	shift 2
	[ "$1" = "--" ] && shift
	run "$@"
	if [ "$RC" != "$want" ]; then
		fail "$what" "command: $*" "expected exit code: $want" "got exit code:      $RC" \
			"stdout: $(printf '%s' "$OUT" | head -c 2000)" "stderr: $(printf '%s' "$ERR" | head -c 2000)"
	fi
	ok "$what"
}

# run CMD ARGS...: sets $OUT, $ERR and $RC, never fails.
run() {
	local o e
	o=$(mktemp "$T/out.XXXXXX")
	e=$(mktemp "$T/err.XXXXXX")
	RC=0
	"$@" >"$o" 2>"$e" </dev/null || RC=$?
	OUT=$(cat "$o")
	ERR=$(cat "$e")
	rm -f "$o" "$e"
}

# Milliseconds since the epoch.
ms_now() { date +%s%3N; }

# wait_until TIMEOUT_MS CMD ARGS...: polls CMD every 50 ms until it succeeds; 1 on timeout.
# The timeout is scaled by TIME_SCALE (valgrind).
wait_until() {
	local deadline
	deadline=$(($(ms_now) + $1 * TIME_SCALE))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(ms_now)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# json_get PATH [FILE]: prints a field of a JSON document (stdin or FILE) as text.
# PATH is dotted, list indexes are numbers: active.server.sans.0 . Strings print bare,
# null prints "null", booleans "true"/"false", lists and objects as compact JSON.
# Exits 2 (with a message) when the document does not parse, 3 when the path is absent.
_JSON_GET_PY='
import json, sys
path = sys.argv[1]
try:
    doc = json.load(open(sys.argv[2]) if len(sys.argv) > 2 else sys.stdin)
except ValueError as e:
    print("json_get: not JSON: %s" % e, file=sys.stderr)
    sys.exit(2)
cur = doc
for part in [p for p in path.split(".") if p]:
    try:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    except (KeyError, IndexError, ValueError, TypeError):
        print("json_get: no %r in document" % path, file=sys.stderr)
        sys.exit(3)
if cur is None:
    print("null")
elif isinstance(cur, bool):
    print("true" if cur else "false")
elif isinstance(cur, (dict, list)):
    print(json.dumps(cur, separators=(",", ":"), sort_keys=True))
else:
    print(cur)
'
json_get() { "$PY" -c "$_JSON_GET_PY" "$@"; }

# JSON replies, flattened once (python is slow to start): jsave FILE <json; jget PATH FILE.
# jget prints what json_get prints (strings bare, null, true/false, compact JSON).
jsave() {
	cat >"$1"
	"$PY" -c '
import json, sys
def out(path, v):
    if v is None:
        s = "null"
    elif isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, (dict, list)):
        s = json.dumps(v, separators=(",", ":"), sort_keys=True)
    else:
        s = str(v)
    print("%s\t%s" % (path, s.replace("\n", " ")))
    if isinstance(v, dict):
        for k, x in v.items():
            out(path + "." + k if path else k, x)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out(path + "." + str(i) if path else str(i), x)
out("", json.load(open(sys.argv[1])))' "$1" >"$1.flat" || fail "not JSON: $1" "$(head -c 500 "$1")"
}
jget() {
	awk -F'\t' -v k="$1" '$1 == k { sub(/^[^\t]*\t/, ""); print; f = 1; exit } END { exit !f }' "$2.flat" ||
		fail "no $1 in $2" "$(head -c 500 "$2")"
}
# A JSON list of strings (jget output) as sorted lines.
jlines() { jget "$1" "$2" | tr -d '[]"' | tr ',' '\n' | sed '/^$/d' | LC_ALL=C sort; }

# Certificates in a PEM file: how many, and their SHA-256 sums (of the DER), sorted.
pem_count() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true; }
pem_shas() {
	"$PY" -c '
import base64, hashlib, re, sys
t = open(sys.argv[1]).read()
for h in sorted(hashlib.sha256(base64.b64decode("".join(m.split()))).hexdigest()
                for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S)):
    print(h)' "$1"
}


# ---------------------------------------------------------------- snapshots
# snapshot_dir DIR: everything under DIR, to show that a call changed nothing: names, types,
# modes and sizes, then each file's SHA-256.
snapshot_dir() {
	(
		cd "$1" && find . -printf '%p %y %m %s\n' | LC_ALL=C sort &&
			find . -type f -exec sha256sum {} + | LC_ALL=C sort
	)
}
# snapshot_disk: snapshot_dir of $SSL_DIR, then of $STATE_DIR without the ledger (each
# refused call adds a record to its audit log; check that with the audit call).
snapshot_disk() {
	snapshot_dir "$SSL_DIR" && echo "--- state" && snapshot_dir "$STATE_DIR" | grep -v '\./ledger\.db'
}
# assert_unchanged BEFORE_FILE WHAT: snapshot_disk shows what BEFORE_FILE recorded.
assert_unchanged() {
	snapshot_disk >"$T/snapshot.after"
	if ! cmp -s "$1" "$T/snapshot.after"; then
		fail "$2: the SSL and state directories are unchanged" \
			"$(diff "$1" "$T/snapshot.after" | head -n 20)"
	fi
	ok "$2: SSL and state directories unchanged"
}
# last_audit: the newest audit record as "CALL RESULT" (a refusal leaves one).
last_audit() {
	ctl --json audit --limit 1 >"$T/last-audit.json"
	echo "$(json_get records.0.call "$T/last-audit.json") $(json_get records.0.result \
		"$T/last-audit.json")"
}

# rfc3339_to_epoch STRING
rfc3339_to_epoch() {
	"$PY" -c '
import datetime, sys
s = sys.argv[1].replace("Z", "+00:00")
print(int(datetime.datetime.fromisoformat(s).timestamp()))' "$1"
}

# ---------------------------------------------------------------- temp dir and cleanup

# t_kill PID: SIGTERM, up to 3 s (scaled) to exit, then SIGKILL; reaped either way.
t_kill() {
	local i
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 30 * TIME_SCALE; i++)); do
		daemon_alive "$1" || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null
	{ wait "$1"; } 2>/dev/null
	return 0
}

# t_on_exit CMD [ARGS...]: the cleanup trap runs CMD, in the order registered, before it kills
# the tracked processes and removes $T: for what t_track_pid cannot stop (a server that
# daemonizes, such as PostgreSQL under pg_ctl). A failing CMD does not fail the test.
_T_ON_EXIT=()
t_on_exit() {
	local cmd
	printf -v cmd '%q ' "$@"
	_T_ON_EXIT+=("$cmd")
}

_t_cleanup() {
	local rc=$? pid m hook
	set +e
	for hook in "${_T_ON_EXIT[@]}"; do
		eval "$hook"
	done
	for pid in $_T_PIDS; do
		t_kill "$pid"
	done
	# A sanitizer report in a daemon log fails the test, even one printed at exit.
	if [ -n "$T" ] && [ "$rc" -eq 0 ] &&
		grep -l -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$T"/*.log \
			>/dev/null 2>&1; then
		printf 'FAIL: a sanitizer reported an error in a daemon log\n' >&2
		rc=1
	fi
	# Lazily: a daemon or nginx killed above may still hold files there; it goes when they exit.
	for m in $_T_MOUNTS; do
		umount -l "$m" 2>/dev/null
	done
	if [ -n "$T" ] && ! _vg_check; then
		rc=1
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "$T" ]; then
		for f in "$T"/*.log; do
			[ -s "$f" ] || continue
			printf '\n--- %s (last 40 lines)\n' "$f" >&2
			tail -n 40 "$f" >&2
		done
	fi
	if [ -n "$T" ] && [ -z "${CAROTATE_KEEP_TMP:-}" ]; then
		rm -rf "$T"
	fi
	exit "$rc"
}

# _vg_check: 1 (and an excerpt of each such log) when a valgrind log of this test shows an
# error; leaks count only when definitely lost (--errors-for-leak-kinds=definite).
_vg_check() {
	local f bad=0
	[ -d "$T/valgrind" ] || return 0
	for f in "$T"/valgrind/*.log; do
		[ -f "$f" ] || continue
		grep -q 'ERROR SUMMARY: [1-9]' "$f" || continue
		printf 'FAIL: valgrind: %s of %s\n' "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$f")" \
			"$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -n 1)" >&2
		grep -v -E '^==[0-9]+== *$' "$f" | sed -n '/== Command:/,$p' | head -n 120 | sed 's/^/      /' >&2
		bad=1
	done
	return "$bad"
}

# _vg_prefix: sets _VG to the words that run a program under memcheck (empty unless
# CAROTATE_VALGRIND=1). Children are followed through fork and exec (the agent worker is
# carotated re-executed), except system programs (reload commands, openssl, nginx). One log
# per process, in a directory the agent worker (another user) can write to.
_VG=()
_vg_prefix() {
	_VG=()
	[ "$CAROTATE_VALGRIND" = 1 ] || return 0
	mkdir -p "$T/valgrind"
	chmod 1777 "$T/valgrind"
	_VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
		--show-leak-kinds=definite --track-fds=no --num-callers=30 --vgdb=no
		--trace-children=yes --trace-children-skip='/bin/*,/sbin/*,/usr/*'
		--suppressions="$REPO_ROOT/tests/valgrind/carotate.supp"
		--log-file="$T/valgrind/%p.%n.log")
}

# t_init: creates $T (traversable by other users, for the authz test) and the layout:
#   $T/ssl (SSL_DIR)  $T/state (STATE_DIR, 0700)  $T/run (socket dir)  $T/pki (CA keys)
#   $CONF  $SOCK  $DAEMON_LOG
t_init() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/carotate-t.XXXXXX")
	chmod 0755 "$T"
	trap _t_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	SSL_DIR="$T/ssl"
	STATE_DIR="$T/state"
	RUN_DIR="$T/run"
	PKI_DIR="$T/pki"
	CONF="$T/carotated.conf"
	SOCK="$RUN_DIR/carotated.sock"
	DAEMON_LOG="$T/daemon.log"
	LINKING_KEY="$T/linking.key"
	mkdir -m 0755 "$SSL_DIR" "$RUN_DIR"
	mkdir -m 0700 "$STATE_DIR" "$PKI_DIR"
	(umask 077 && openssl rand -hex 32 >"$LINKING_KEY")
	chmod 0600 "$LINKING_KEY"
}

# ---------------------------------------------------------------- a small file system

# small_tmpfs DIR SIZE [MODE]: DIR (made if missing) becomes a tmpfs of SIZE (mount's size=,
# e.g. 256k) of its own, MODE 0755 unless given, for a full-disk test; the cleanup trap
# unmounts it. 1 when it cannot be, with the reason in $SMALL_TMPFS_WHY (mounting needs root,
# and a container may refuse it): the caller skips the test (t_skip "$SMALL_TMPFS_WHY") or its
# full-disk cases.
_T_MOUNTS=""
SMALL_TMPFS_WHY=""
small_tmpfs() {
	if [ "$(id -u)" -ne 0 ]; then
		SMALL_TMPFS_WHY="mounting a small tmpfs needs root"
		return 1
	fi
	mkdir -p "$1"
	if ! mount -t tmpfs -o "size=$2,mode=${3:-0755}" carotate-test "$1"; then
		SMALL_TMPFS_WHY="cannot mount a tmpfs on $1"
		return 1
	fi
	_T_MOUNTS="$1 $_T_MOUNTS"
}

# fill_fs DIR PAGES: a filler file (DIR/.filler) takes all but PAGES pages of DIR's file
# system: most at once, then a page at a time while df says more is free (one big fallocate
# lands a page off now and then). unfill_fs DIR gives the space back.
_fs_avail() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }
fill_fs() {
	local want size
	rm -f "$1/.filler"
	want=$(($(_fs_avail "$1") - ($2 + 4) * 4096))
	[ "$want" -le 0 ] || fallocate -l "$want" "$1/.filler" || fail "fallocate $want bytes in $1"
	size=$(stat -c %s "$1/.filler" 2>/dev/null || echo 0)
	while [ "$(_fs_avail "$1")" -gt $(($2 * 4096)) ]; do
		fallocate -o "$size" -l 4096 "$1/.filler" || fail "fallocate one more page in $1"
		size=$((size + 4096))
	done
}
unfill_fs() { rm -f "$1/.filler"; }

# ctl_as USER carotatectl-args...: runs a copy of the client in $T/bin (one other users may
# run) as USER, with USER's groups, against $SOCK.
ctl_as() {
	local user=$1
	shift
	setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups \
		"$T/bin/carotatectl" --socket "$SOCK" "$@"
}

# proc_status PID KEY: the value of KEY (Seccomp, CapEff, Gid...) in /proc/PID/status.
proc_status() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# hdr NAME: the value of header NAME in the response headers a request saved in $T/h.
hdr() { tr -d '\r' <"$T/h" | sed -n "s/^$1: *//Ip" | head -n1; }

# ---------------------------------------------------------------- test users (root only)
# t_group NAME...: system groups, each created when missing.
t_group() {
	local g
	for g in "$@"; do
		getent group "$g" >/dev/null || groupadd --system "$g"
	done
}

# t_user NAME [GROUPS]: a system user without a home or a shell, with a group of its own;
# also a member of GROUPS (comma-separated), added when the user exists already.
t_user() {
	if ! getent passwd "$1" >/dev/null; then
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin ${2:+--groups "$2"} "$1"
	elif [ -n "${2:-}" ]; then
		usermod --append --groups "$2" "$1"
	fi
}

# ---------------------------------------------------------------- configuration

# Groups and users of the test configuration; tests may override before write_config.
TEST_GROUP=$(id -gn)
if [ "$(id -u)" -eq 0 ] && getent passwd nobody >/dev/null && getent group nogroup >/dev/null; then
	AGENT_USER=nobody
	AGENT_GROUP=nogroup
else
	AGENT_USER=$(id -un)
	AGENT_GROUP=$(id -gn)
fi
SOCKET_GROUP=$TEST_GROUP
ADMIN_GROUP=$TEST_GROUP

# write_config [FILE] [EXTRA_DAEMON_LINE...]: a complete configuration with every path in $T.
# Extra lines go at the end of the [daemon] section (e.g. "max_clients = 8").
# Globals read: SOCK SOCKET_GROUP ADMIN_GROUP STATE_DIR SSL_DIR AGENT_USER AGENT_GROUP.
write_config() {
	local file=${1:-$CONF} line
	[ $# -gt 0 ] && shift
	{
		printf '# carotated test configuration (tests/integration/lib.sh)\n'
		printf '[daemon]\n'
		printf 'socket = %s\n' "$SOCK"
		printf 'socket_group = %s\n' "$SOCKET_GROUP"
		printf 'admin_group = %s\n' "$ADMIN_GROUP"
		printf 'state_dir = %s\n' "$STATE_DIR"
		for line in "$@"; do
			printf '%s\n' "$line"
		done
		printf '\n[ssl]\n'
		printf 'dir = %s\n' "$SSL_DIR"
		printf 'ca = ca.crt\ncert = server.crt\nkey = server.key\n'
		printf '\n[proxy]\n'
		printf 'names = proxy.test, 127.0.0.1\n'
		printf 'reload = /bin/true\n'
		printf 'address = 127.0.0.1:18443\n'
		printf 'server_name = proxy.test\n'
		printf 'check_timeout = 5s\n'
		printf '\n[agents]\n'
		printf 'socket = %s\n' "$RUN_DIR/agent.sock"
		printf 'canary_socket = %s\n' "$RUN_DIR/agent-canary.sock"
		printf 'user = %s\n' "$AGENT_USER"
		printf 'group = %s\n' "$AGENT_GROUP"
		printf 'linking_key = %s\n' "$LINKING_KEY"
		printf 'active_within = 7d\n'
		printf 'gate = acknowledged\n'
		# Fleets of simulated agents link at full speed; test_agent_identity tests the limit.
		printf 'link_rate = 100000\n'
		printf '\n[bundle]\nretention = 30d\n'
		printf '\n[backups]\nkeep = 10\n'
		printf '\n[metrics]\ntextfile =\n'
	} >"$file"
}

# ---------------------------------------------------------------- certificates (openssl CLI)

# pki_make_ca DIR CN [DAYS]: DIR/ca.key (0600) and DIR/ca.crt, a P-256 CA:
# basicConstraints critical CA:TRUE,pathlen:0, keyUsage critical keyCertSign,cRLSign, SKI/AKI.
pki_make_ca() {
	local dir=$1 cn=$2 days=${3:-3650}
	mkdir -p "$dir"
	cat >"$dir/ca.ext" <<'EOF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$dir/ca.key" 2>/dev/null)
	chmod 0600 "$dir/ca.key"
	openssl req -new -x509 -config "$dir/ca.ext" -extensions v3_ca -key "$dir/ca.key" \
		-subj "/CN=$cn" -days "$days" -sha256 -set_serial "0x$(openssl rand -hex 15)" \
		-out "$dir/ca.crt" 2>/dev/null
}

# pki_make_server DIR CADIR CN SANS [DAYS]: DIR/server.key (0600), DIR/server.leaf.crt,
# DIR/server.crt (leaf followed by the CA: "leaf + chain"), signed by CADIR/ca.{crt,key}.
# SANS is in openssl's syntax: "DNS:proxy.test,IP:127.0.0.1".
pki_make_server() {
	local dir=$1 cadir=$2 cn=$3 sans=$4 days=${5:-397}
	mkdir -p "$dir"
	cat >"$dir/server.ext" <<EOF
[v3_srv]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$dir/server.key" 2>/dev/null)
	chmod 0600 "$dir/server.key"
	openssl req -new -key "$dir/server.key" -subj "/CN=$cn" -out "$dir/server.csr" \
		-config "$cadir/ca.ext" 2>/dev/null
	openssl x509 -req -in "$dir/server.csr" -CA "$cadir/ca.crt" -CAkey "$cadir/ca.key" \
		-set_serial "0x$(openssl rand -hex 15)" -days "$days" -sha256 \
		-extfile "$dir/server.ext" -extensions v3_srv -out "$dir/server.leaf.crt" 2>/dev/null
	cat "$dir/server.leaf.crt" "$cadir/ca.crt" >"$dir/server.crt"
	rm -f "$dir/server.csr"
}

# make_cert_set TARGET_DIR [NAME]: a complete set (ca.crt, server.crt, server.key 0600) in
# TARGET_DIR, as the daemon expects it in the SSL directory or its new/ staging directory.
# The CA key stays in $PKI_DIR/NAME (never in the SSL directory). Prints nothing.
# Afterwards: $PKI_DIR/NAME/{ca.crt,ca.key,server.leaf.crt,...} for comparisons.
make_cert_set() {
	local target=$1 name=${2:-active} work
	work="$PKI_DIR/$name"
	pki_make_ca "$work" "carotate test CA $name $(date -u +%Y-%m-%d)"
	pki_make_server "$work" "$work" "proxy.test" "DNS:proxy.test,IP:127.0.0.1"
	mkdir -p "$target"
	cp "$work/ca.crt" "$target/ca.crt"
	cp "$work/server.crt" "$target/server.crt"
	(umask 077 && cp "$work/server.key" "$target/server.key")
	chmod 0644 "$target/ca.crt" "$target/server.crt"
	chmod 0600 "$target/server.key"
}

# make_active_set [NAME]: the active set in $SSL_DIR.
make_active_set() { make_cert_set "$SSL_DIR" "${1:-active}"; }

# Facts about a certificate as openssl sees them.
cert_sha256() { # lower-case hex of the DER's SHA-256, no colons
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^[^=]*=//; s/://g' |
		tr 'A-F' 'a-f'
}
cert_der_sha256() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
cert_subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
cert_not_after_epoch() {
	date -u -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s
}
# SANs as the daemon reports them: one "DNS:x" / "IP:1.2.3.4" a line, in certificate order.
cert_sans() {
	openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr ',' '\n' |
		sed 's/^ *//; s/IP Address:/IP:/; /^$/d'
}

# ---------------------------------------------------------------- daemon and client

ctl() {
	_VG=()
	[ "$CAROTATE_VALGRIND_CTL" = 1 ] && _vg_prefix
	"${_VG[@]}" "$CAROTATECTL" --socket "$SOCK" "$@"
}

# socket_answers [SOCKET]: a status RPC succeeds (used for polling).
socket_answers() { "$CAROTATECTL" --socket "${1:-$SOCK}" status >/dev/null 2>&1; }

# t_track_pid PID: the cleanup trap signals PID (TERM, then KILL) when the test ends.
t_track_pid() { _T_PIDS="$_T_PIDS $1"; }

# run_daemon_bg CONF LOG [ARGS...]: starts carotated -f -c CONF in the background; sets
# DAEMON_PID; the cleanup trap kills it.
run_daemon_bg() {
	local conf=$1 log=$2
	shift 2
	_vg_prefix
	"${_VG[@]}" "$CAROTATED" -f -c "$conf" "$@" >>"$log" 2>&1 </dev/null &
	DAEMON_PID=$!
	_T_PIDS="$_T_PIDS $DAEMON_PID"
	if [ -n "${CAROTATE_IT_PIDS:-}" ]; then
		echo "$DAEMON_PID" >>"$CAROTATE_IT_PIDS" || true
	fi
}

# start_daemon [CONF] [SOCKET] [ARGS...]: starts the daemon and waits up to 5 s (20 s under
# sanitizers; times TIME_SCALE) until `carotatectl status` answers on SOCKET. Fails the test otherwise.
start_daemon() {
	local conf=${1:-$CONF} sock=${2:-$SOCK} limit=5000
	[ $# -gt 0 ] && shift
	[ $# -gt 0 ] && shift
	case "$CAROTATE_BUILD" in */asan*) limit=20000 ;; esac
	limit=$((limit * TIME_SCALE))
	run_daemon_bg "$conf" "$DAEMON_LOG" "$@"
	local deadline
	deadline=$(($(ms_now) + limit))
	while ! socket_answers "$sock"; do
		if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			local st=0
			wait "$DAEMON_PID" || st=$?
			fail "carotated exited (status $st) instead of starting" \
				"log: $(tail -n 20 "$DAEMON_LOG")"
		fi
		if [ "$(ms_now)" -ge "$deadline" ]; then
			fail "carotated did not answer status on $sock within $((limit / 1000)) s" \
				"log: $(tail -n 20 "$DAEMON_LOG")"
		fi
		sleep 0.05
	done
}

# stop_daemon [SIGNAL] [PID]: signals the daemon (TERM by default) and waits up to 5 s (20 s
# under sanitizers) for it to exit. DAEMON_STATUS is its exit status (128+N for signal N).
stop_daemon() {
	local sig=${1:-TERM} pid=${2:-$DAEMON_PID} limit=50
	case "$CAROTATE_BUILD" in */asan*) limit=200 ;; esac
	limit=$((limit * TIME_SCALE))
	kill "-$sig" "$pid"
	while kill -0 "$pid" 2>/dev/null && [ "$limit" -gt 0 ]; do
		# A zombie child also answers kill -0; check its state.
		if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
			break
		fi
		sleep 0.1
		limit=$((limit - 1))
	done
	if [ "$limit" -eq 0 ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		fail "carotated (pid $pid) did not exit within the limit after SIG$sig" \
			"log: $(tail -n 20 "$DAEMON_LOG")"
	fi
	DAEMON_STATUS=0
	# (braces: bash's "Killed" job notice goes to /dev/null, not into the test's output)
	{ wait "$pid" || DAEMON_STATUS=$?; } 2>/dev/null
}

# daemon_alive [PID]: the process exists and is not a zombie.
daemon_alive() {
	local pid=${1:-$DAEMON_PID}
	kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# worker_pid [SITE]: the daemon's agent worker for SITE, agents (agent.sock, the default) or
# canary (agent-canary.sock): its child named carotated-agent run as `--worker SITE`, or nothing.
worker_pid() {
	local site=${1:-agents} d comm
	for d in /proc/[0-9]*; do
		# builtins only until the name matches: this runs in wait_until loops on busy machines
		read -r comm <"$d/comm" 2>/dev/null || continue
		[ "$comm" = carotated-agent ] || continue
		[ "$(awk '{print $4}' "$d/stat" 2>/dev/null)" = "$DAEMON_PID" ] || continue
		[ "$(tr '\0' '\n' <"$d/cmdline" 2>/dev/null | grep -A1 -x -e --worker | tail -n 1)" = "$site" ] ||
			continue
		basename "$d"
	done
}
canary_worker_pid() { worker_pid canary; }
# worker_up: both agent workers run.
worker_up() { [ -n "$(worker_pid)" ] && [ -n "$(worker_pid canary)" ]; }

assert_daemon_alive() {
	if ! daemon_alive "${2:-$DAEMON_PID}"; then
		fail "carotated is not running: ${1:-after the last step}" \
			"log: $(tail -n 20 "$DAEMON_LOG")"
	fi
	ok "daemon alive ${1:-}"
}
