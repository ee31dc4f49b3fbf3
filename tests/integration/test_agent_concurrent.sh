#!/bin/bash
# Two runs of carotate-agent at once on one host: the timer's check-in and an operator's
# manual one (or a second timer after a slow run) share state_dir, bundle and hook.
# Reproduction, on the agent of its first version: a linked agent holding bundle B1; the
# proxy (build/fakeproxy, answering in 1 s: 200 with B2, or 304 once the request holds B2's
# id, as carotated does) gets 6 check-ins started together. Each run sent B1's id, took the
# 200, did unlink(.prev) + link(bundle, .prev) + rename: the hook ran 6 times for one change,
# and <bundle>.prev ended up holding B2, the old bundle lost.
# Expected: the bundle is B2, .prev is B1, the hook ran exactly once for the change, no
# temporary file is left; every run exits 0, or (refused because another run holds the
# state) non-zero with one line saying so; a check-in afterwards is a plain 304.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init

AGENT="$CAROTATE_BUILD/carotate-agent"
[ -x "$AGENT" ] || fail "$AGENT is missing (make builds it)"
FAKEPROXY="$CAROTATE_BUILD/fakeproxy"
[ -x "$FAKEPROXY" ] || fail "$FAKEPROXY is missing (make integration builds it)"
RUNS=6

pki_make_ca "$PKI_DIR/a" "concurrency test CA A"
pki_make_server "$PKI_DIR/a" "$PKI_DIR/a" proxy.test "DNS:proxy.test,IP:127.0.0.1"
pki_make_ca "$PKI_DIR/b" "concurrency test CA B"
pem_bundle_id() {
	"$PY" -c '
import base64, hashlib, re, sys
t = open(sys.argv[1]).read()
ders = sorted(base64.b64decode("".join(m.split()))
              for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S))
print(hashlib.sha256(b"".join(ders)).hexdigest())' "$1"
}
B1="$T/b1.pem"
B2="$T/b2.pem"
cp "$PKI_DIR/a/ca.crt" "$B1"
cat "$PKI_DIR/a/ca.crt" "$PKI_DIR/b/ca.crt" >"$B2"
ID1=$(pem_bundle_id "$B1")
ID2=$(pem_bundle_id "$B2")

FP_PID=""
FP_PORT=0
fp() {
	if [ -n "$FP_PID" ]; then
		kill -TERM "$FP_PID" 2>/dev/null || true
		{ wait "$FP_PID"; } 2>/dev/null || true
	fi
	rm -f "$T/fp.port"
	"$FAKEPROXY" --cert "$PKI_DIR/a/server.crt" --key "$PKI_DIR/a/server.key" --port "$FP_PORT" \
		--port-file "$T/fp.port" --log "$T/fp.log" "$@" >/dev/null 2>>"$T/fakeproxy.err" </dev/null &
	FP_PID=$!
	t_track_pid "$FP_PID"
	wait_until 5000 test -s "$T/fp.port" || fail "fakeproxy starts" "$(cat "$T/fakeproxy.err")"
	FP_PORT=$(cat "$T/fp.port")
}

A="$T/agent"
mkdir -p "$A/etc"
mkdir -m 0700 "$A/state"
# shellcheck disable=SC2016 # the hook expands it
printf '#!/bin/sh\necho "$$" >>"$1"\n' >"$T/hook.sh"
chmod 0755 "$T/hook.sh"
cat >"$A/agent.conf" <<EOF
[agent]
id = concurrent-agent
state_dir = $A/state
bundle = $A/etc/ca-bundle.pem
hook = $T/hook.sh $A/hook.log
timeout = 20s
EOF
hooks() { if [ -f "$A/hook.log" ]; then wc -l <"$A/hook.log"; else echo 0; fi; }
echo "cj1.0123456789abcdef.0123" >"$T/join-token"

fp --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link" -- "$AGENT" -c "$A/agent.conf" link --server "https://127.0.0.1:$FP_PORT" \
	--ca-file "$PKI_DIR/a/ca.crt" --join-token-file "$T/join-token"
assert_eq 1 "$(hooks)" "the hook ran for the first bundle"

fp --sleep 1 --status 200 --header "ETag: \"$ID2\"" --body "$B2" --if-none-match "$ID2"
pids=()
for i in $(seq 1 "$RUNS"); do
	"$AGENT" -c "$A/agent.conf" check-in >"$T/out.$i" 2>"$T/err.$i" </dev/null &
	pids+=($!)
done
for i in $(seq 1 "$RUNS"); do
	rc=0
	wait "${pids[$((i - 1))]}" || rc=$?
	if [ "$rc" -ne 0 ]; then
		if [ "$(wc -l <"$T/err.$i")" -ne 1 ] ||
			! grep -Eqi '^carotate-agent: .*(busy|lock|running|progress|another)' "$T/err.$i"; then
			fail "run $i: exit 0, or one line saying another run holds the state" "exit $rc: $(cat "$T/err.$i")"
		fi
	fi
	t_log "run $i: exit $rc $(cat "$T/err.$i")"
done
cmp -s "$B2" "$A/etc/ca-bundle.pem" || fail "the bundle is the new one"
ok "the bundle is the new one"
cmp -s "$B1" "$A/etc/ca-bundle.pem.prev" ||
	fail "$RUNS check-ins at once: ca-bundle.pem.prev is still the old bundle" \
		"it holds $(pem_bundle_id "$A/etc/ca-bundle.pem.prev" | head -c 12) (new: ${ID2:0:12}, old: ${ID1:0:12})"
ok "$RUNS check-ins at once: ca-bundle.pem.prev is the old bundle"
assert_eq 2 "$(hooks)" "$RUNS check-ins at once: the hook ran once for the one change"
assert_eq "" "$(find "$A" -name '*.tmp*')" "no temporary file is left"
: >"$T/fp.log"
assert_exit 0 "a check-in afterwards" -- "$AGENT" -c "$A/agent.conf" check-in
assert_file_contains "If-None-Match: \"$ID2\"" "$T/fp.log" "it presents the new bundle's id"
assert_eq 2 "$(hooks)" "and runs no hook"
