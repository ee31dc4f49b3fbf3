# shellcheck shell=bash disable=SC2034 # variables here are used by the tests that source it
# Helpers for the tests of carotate-agent (and tests/bench/agent_bench.sh). Source it from
# bash after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/agent.sh"
#   agent_require              # fails unless $AGENT (carotate-agent) is built
#   t_init
#   fakeproxy_require [build]  # $FAKEPROXY (build/fakeproxy); "build": compiled into $T when
#                              # the build has none, else missing is a failure
#   agent_proxy_pki LABEL a b  # per name: a CA in $PKI_DIR/NAME and the leaf it signs for
#                              # proxy.test and 127.0.0.1 (server.crt: leaf + CA, server.key)
#   agent_bundles              # $B1 (CA A, what link delivers), $B2 (CA A + CA B), $ID1 $ID2
#   fp_start --status 200 ...  # the fake proxy (below), on $FP_PORT
#   agent_dir "$A" id=x timeout=5s   # $A/etc, $A/state (0700), $A/agent.conf
#   AGENT_CONF="$A/agent.conf"
#   agent check-in             # $AGENT -c $AGENT_CONF
#
# Also: pem_bundle_id FILE (the bundle id: SHA-256 of the sorted DERs of FILE's
# certificates); agent_conf_write FILE [KEY=VALUE | "# comment"]... (an agent.conf: the
# [agent] section, a "KEY = VALUE" line per argument); hook_runs LOG (lines in LOG, 0 when
# it does not exist: one per hook run); agent_join_token FILE (a join token of the right
# shape, for a fake proxy, which takes any).
#
# The fake proxy (tests/fakeproxy/fakeproxy.c): fp_start [FAKEPROXY_ARGS...] (re)starts it
# serving $FP_CERT and $FP_KEY (default: CA A's leaf and chain), on $FP_PORT (0 at first: a
# port the kernel picks, kept across restarts), with a fresh request log $T/fp.log; $FP_PID.
# fp_stop; fp_requests (the logged requests, without its '#' event lines); fp_answer_bundle
# FILE [ETAG] (a 200 carrying FILE, ETag by default FILE's bundle id). A test running more
# than one builds on fakeproxy_spawn LOG PORT CERT KEY [ARGS...] (sets $FAKEPROXY_PID and
# $FAKEPROXY_PORT; the port file is LOG.port) and fakeproxy_kill PID.

AGENT="$CAROTATE_BUILD/carotate-agent"
FAKEPROXY="$CAROTATE_BUILD/fakeproxy"
AGENT_CONF=""
FP_PID=""
FP_PORT=0
FP_CERT=""
FP_KEY=""
FAKEPROXY_PID=""
FAKEPROXY_PORT=""

# ---------------------------------------------------------------- programs

agent_require() {
	[ -x "$AGENT" ] || fail "$AGENT is missing (make builds it)"
}

fakeproxy_require() {
	[ -x "$FAKEPROXY" ] && return 0
	[ "${1:-}" = build ] || fail "$FAKEPROXY is missing (make integration builds it)"
	FAKEPROXY="$T/fakeproxy"
	t_log "fakeproxy: $CAROTATE_BUILD/fakeproxy is missing; building $FAKEPROXY"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$FAKEPROXY" \
		"$REPO_ROOT/tests/fakeproxy/fakeproxy.c" -lssl -lcrypto || fail "building fakeproxy.c"
}

agent() { "$AGENT" -c "$AGENT_CONF" "$@"; }

# ---------------------------------------------------------------- certificates and bundles

pem_bundle_id() {
	"$PY" -c '
import base64, hashlib, re, sys
t = open(sys.argv[1]).read()
ders = sorted(base64.b64decode("".join(m.split()))
              for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S))
print(hashlib.sha256(b"".join(ders)).hexdigest())' "$1"
}

agent_proxy_pki() {
	local label=$1 x
	shift
	for x in "$@"; do
		pki_make_ca "$PKI_DIR/$x" "$label CA $x"
		pki_make_server "$PKI_DIR/$x" "$PKI_DIR/$x" proxy.test "DNS:proxy.test,IP:127.0.0.1"
	done
}

agent_bundles() {
	B1="$T/b1.pem"
	B2="$T/b2.pem"
	cp "$PKI_DIR/a/ca.crt" "$B1"
	cat "$PKI_DIR/a/ca.crt" "$PKI_DIR/b/ca.crt" >"$B2"
	ID1=$(pem_bundle_id "$B1")
	ID2=$(pem_bundle_id "$B2")
}

# ---------------------------------------------------------------- configuration

agent_conf_write() {
	local file=$1 kv
	shift
	{
		printf '[agent]\n'
		for kv in "$@"; do
			case "$kv" in
			\#*) printf '%s\n' "$kv" ;;
			*=*) printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" ;;
			*) fail "agent_conf_write: '$kv' is not KEY=VALUE" ;;
			esac
		done
	} >"$file"
}

agent_dir() {
	local dir=$1
	shift
	mkdir -p "$dir/etc"
	mkdir -m 0700 "$dir/state"
	agent_conf_write "$dir/agent.conf" "state_dir=$dir/state" "bundle=$dir/etc/ca-bundle.pem" "$@"
}

hook_runs() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

agent_join_token() { printf 'cj1.0123456789abcdef.%s\n' "$(openssl rand -hex 16)" >"$1"; }

# ---------------------------------------------------------------- the fake proxy

fakeproxy_spawn() {
	local log=$1 port=$2 cert=$3 key=$4
	shift 4
	: >"$log"
	rm -f "$log.port"
	"$FAKEPROXY" --cert "$cert" --key "$key" --port "$port" --port-file "$log.port" \
		--log "$log" "$@" >/dev/null 2>>"$T/fakeproxy.err" </dev/null &
	FAKEPROXY_PID=$!
	t_track_pid "$FAKEPROXY_PID"
	wait_until 5000 test -s "$log.port" ||
		fail "fakeproxy starts ($(basename "$log"))" "$(cat "$T/fakeproxy.err")"
	FAKEPROXY_PORT=$(cat "$log.port")
}

fakeproxy_kill() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	{ wait "$1"; } 2>/dev/null || true
}

fp_start() {
	fp_stop
	fakeproxy_spawn "$T/fp.log" "$FP_PORT" "${FP_CERT:-$PKI_DIR/a/server.crt}" \
		"${FP_KEY:-$PKI_DIR/a/server.key}" "$@"
	FP_PID=$FAKEPROXY_PID
	FP_PORT=$FAKEPROXY_PORT
}

fp_stop() {
	fakeproxy_kill "$FP_PID"
	FP_PID=""
}

fp_requests() { grep -v '^#' "$T/fp.log" || true; }

fp_answer_bundle() {
	local etag=${2:-$(pem_bundle_id "$1")}
	fp_start --status 200 --header "ETag: \"$etag\"" --body "$1"
}
