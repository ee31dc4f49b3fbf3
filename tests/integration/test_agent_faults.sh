#!/bin/bash
# carotate-agent against a proxy that misbehaves (issue 16, "Errors"): every answer below comes
# from build/fakeproxy (tests/fakeproxy/fakeproxy.c), a TLS server that gives one canned
# answer and logs every request, restarted on the same port for each case. The agent first
# links to it and takes a second bundle, so that both <bundle> and <bundle>.prev exist; then:
#
#  - the proxy unreachable: a closed port, a peer that never answers (agent timeout 3 s), a
#    peer that closes right after accept -> exit 2;
#  - 500, 502, 503 -> exit 2;
#  - 401 -> exit 4, "carotate-agent: token refused: relink";
#  - a connection cut inside the body (Content-Length says more) -> exit 2, as any transport
#    failure;
#  - a bundle cut inside a certificate (Content-Length agrees), not PEM, an empty 200, a
#    non-CA certificate, over 1 MiB, a private key inside, an ETag that is not the bundle's
#    id, a 200 without ETag, a valid CA bundle lacking the CA that signs the served
#    certificate (an agent that took it would lock itself out) -> exit 5;
#  - the bundle's file system full (a small tmpfs filled to 0, 1, 2, 4 free pages) -> exit 6,
#    or a complete new bundle when it fit;
#  - a corrupt state file (garbage, empty, cut in half, NUL bytes) -> exit 6, never a crash;
#    the token file removed -> exit 3; a token with CR LF and a header after it -> exit 6,
#    and nothing sent;
#  - link with a --ca-pin of another CA -> exit 5 and the proxy's log shows no request at
#    all; the same with the pinned CA's certificate in the chain of a leaf another CA signed
#    (the CA certificate is public) -> exit 5, and with a leaf the pinned CA signed for
#    another name -> refused; link with a --ca-file of another CA -> exit 2; never a request;
#  - a hook that fails or outlives hook_timeout -> exit 6 with the bundle installed, and the
#    hook owed: run again by the next check-in (a 304) until it succeeds, then never again;
#    the hook gets its argv unexpanded, stdin /dev/null, no descriptor above 2, and only
#    PATH, CAROTATE_BUNDLE and CAROTATE_BUNDLE_ID;
#  - check-in before link -> exit 3; a second link presents the current token (renewal).
# Each failure: the exit code, exactly one line on stderr "carotate-agent: <what>" saying
# what went wrong, the installed bundle and <bundle>.prev byte for byte unchanged (cmp), and
# the hook not run. After all of them a check-in against a sane proxy still works (304, the
# If-None-Match it sends is the bundle it holds).
# timeout: 300
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=agent.sh
. "$(dirname "$0")/agent.sh"

t_init

agent_require
fakeproxy_require build

# ---------------------------------------------------------------- certificates and bundles

# CA A is the proxy's: the fake proxy serves a leaf it signed (leaf + CA A). CA B is
# another, valid CA. SANs hold IP:127.0.0.1: the agent talks to https://127.0.0.1:PORT.
agent_proxy_pki "fake proxy" a b
# Leaf B presented with CA A in its chain (CA A is public: anyone can send it), and a leaf
# CA A signed for another name only.
cat "$PKI_DIR/b/server.leaf.crt" "$PKI_DIR/a/ca.crt" >"$PKI_DIR/b/leaf-b-ca-a.crt"
pki_make_server "$PKI_DIR/a-other" "$PKI_DIR/a" other.test "DNS:other.test"
CA_A="$PKI_DIR/a/ca.crt"
CA_B="$PKI_DIR/b/ca.crt"

ca_pin() { echo "sha256:$(cert_der_sha256 "$1")"; }

agent_bundles # B1: what link delivers, CA A; B2: the next bundle, CA A and CA B
B3="$T/b3.pem" # a valid bundle the agent does not hold yet: CA C and CA A
pki_make_ca "$PKI_DIR/c" "fake proxy CA C"
cat "$PKI_DIR/c/ca.crt" "$CA_A" >"$B3"
TOKEN=$(openssl rand -hex 32)

# ---------------------------------------------------------------- the fake proxy

# agent.sh's fp_start serves leaf A + CA A; FP_CERT and FP_KEY set on the call serve
# another chain.

# ---------------------------------------------------------------- the agent

HOOK="$T/hook.sh"
cat >"$HOOK" <<'EOF'
#!/bin/sh
# Appends one line per run: the time and the arguments it was given.
echo "$(date +%s.%N) $*" >>"$1"
EOF
chmod 0755 "$HOOK"

# agent_conf DIR ID: DIR/agent.conf naming DIR/state (0700) and DIR/etc/ca-bundle.pem.
agent_conf() {
	agent_dir "$1" "# test_agent_faults: agent $2" "id=$2" "hook=$HOOK $1/hook.log" hook_timeout=10s \
		timeout=3s
}

A="$T/agent"
agent_conf "$A" fault-agent
BUNDLE="$A/etc/ca-bundle.pem"
AGENT_CONF="$A/agent.conf"
agent_join_token "$T/join-token"
chmod 0600 "$T/join-token"

# snapshot: the installed bundle, its .prev and the hook's count, for unchanged().
snapshot() {
	cp -p "$BUNDLE" "$T/snap.bundle"
	if [ -e "$BUNDLE.prev" ]; then cp -p "$BUNDLE.prev" "$T/snap.prev"; else rm -f "$T/snap.prev"; fi
	SNAP_HOOK=$(hook_runs "$A/hook.log")
}
unchanged() {
	cmp -s "$T/snap.bundle" "$BUNDLE" || fail "$1: the installed bundle is byte for byte unchanged" \
		"now: $(head -c 300 "$BUNDLE" 2>&1)"
	if [ -e "$T/snap.prev" ]; then
		cmp -s "$T/snap.prev" "$BUNDLE.prev" || fail "$1: $BUNDLE.prev is unchanged"
	else
		[ ! -e "$BUNDLE.prev" ] || fail "$1: no $BUNDLE.prev appeared"
	fi
	[ "$(stat -c %a "$BUNDLE")" = "$(stat -c %a "$T/snap.bundle")" ] || fail "$1: the bundle's mode is unchanged"
	assert_eq "$SNAP_HOOK" "$(hook_runs "$A/hook.log")" "$1: bundle and .prev unchanged, the hook did not run"
}
# one_line WHAT REGEX: $ERR is exactly one line "carotate-agent: ..." matching REGEX (ERE,
# case-insensitive).
one_line() {
	local n
	n=$(printf '%s\n' "$ERR" | wc -l)
	if [ -z "$ERR" ] || [ "$n" -ne 1 ]; then
		fail "$1: exactly one line on stderr" "got $n lines:" "$ERR"
	fi
	printf '%s' "$ERR" | grep -Eq '^carotate-agent: [^ ]' ||
		fail "$1: the line starts with 'carotate-agent: '" "got: $ERR"
	printf '%s' "$ERR" | grep -Eiq -- "$2" || fail "$1: the message says what happened (/$2/)" "got: $ERR"
	ok "$1: \"$ERR\""
}
# fault WHAT CODE REGEX: a check-in fails with CODE and one line matching REGEX, changing
# nothing installed.
fault() {
	local what=$1 code=$2 re=$3
	snapshot
	assert_exit "$code" "$what: check-in exits $code" -- agent check-in
	one_line "$what" "$re"
	unchanged "$what"
}

# ---------------------------------------------------------------- not linked
echo "-- not linked"
snapshot_missing() { [ ! -e "$BUNDLE" ] && [ ! -e "$BUNDLE.prev" ]; }
assert_exit 3 "check-in before link exits 3 (not linked)" -- agent check-in
one_line "not linked" 'link'
snapshot_missing || fail "a check-in before link writes no bundle"
assert_exit 0 "status before link exits 0" -- agent status
assert_match '(^|\n)linked: no' "$OUT" "status before link says linked: no"
[ -z "$(ls -A "$A/state")" ] || fail "a check-in before link writes no state" "$(ls -la "$A/state")"

# ---------------------------------------------------------------- link, then a second bundle
echo "-- link to the fake proxy, take a second bundle"
fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
URL="https://127.0.0.1:$FP_PORT"
assert_exit 0 "link --ca-file (CA A) to the fake proxy" -- \
	agent link --server "$URL" --ca-file "$CA_A" --join-token-file "$T/join-token"
fp_requests >"$T/link.req"
assert_match '^POST /carotate/v1/link HTTP/1\.1' "$(head -n 1 "$T/link.req")" "link: POST /carotate/v1/link"
assert_file_contains "Authorization: Bearer $(cat "$T/join-token")" "$T/link.req" "link: the join token is the bearer"
assert_file_contains "X-Agent-Id: fault-agent" "$T/link.req" "link: X-Agent-Id from the configuration"
cmp -s "$B1" "$BUNDLE" || fail "link installs the bundle the proxy sent" "$(head -c 300 "$BUNDLE" 2>&1)"
assert_eq 644 "$(stat -c %a "$BUNDLE")" "the bundle is mode 0644"
assert_eq 600 "$(stat -c %a "$A/state/token")" "the token file is mode 0600"
assert_eq 700 "$(stat -c %a "$A/state")" "state_dir is mode 0700"
assert_eq 1 "$(hook_runs "$A/hook.log")" "link: the hook ran once (a new bundle)"

fp_answer_bundle "$B2"
assert_exit 0 "check-in: the second bundle (CA A + CA B)" -- agent check-in
fp_requests >"$T/ci.req"
assert_match '^GET /carotate/v1/ca-bundle HTTP/1\.1' "$(head -n 1 "$T/ci.req")" "check-in: GET /carotate/v1/ca-bundle"
assert_file_contains "Authorization: Bearer $TOKEN" "$T/ci.req" "check-in: the agent token is the bearer"
assert_file_contains "If-None-Match: \"$ID1\"" "$T/ci.req" "check-in: If-None-Match names the bundle it holds"
cmp -s "$B2" "$BUNDLE" || fail "check-in installs the second bundle"
cmp -s "$B1" "$BUNDLE.prev" || fail "the first bundle is kept as <bundle>.prev"
ok "the second bundle is installed, the first kept as .prev"
assert_eq 2 "$(hook_runs "$A/hook.log")" "check-in: the hook ran again (the bundle changed)"

fp_start --status 304 --header "ETag: \"$ID2\""
snapshot
assert_exit 0 "check-in: 304" -- agent check-in
assert_file_contains "If-None-Match: \"$ID2\"" "$T/fp.log" "check-in: If-None-Match names the second bundle"
unchanged "304"

# ---------------------------------------------------------------- the proxy unreachable
echo "-- the proxy unreachable"
fp_stop
fault "a closed port" 2 'connect|refused|unreachable'
fp_start --sleep 30
start=$(ms_now)
fault "a proxy that never answers (timeout = 3s)" 2 'time'
ms=$(($(ms_now) - start))
[ "$ms" -lt 15000 ] || fail "the agent gives up after its timeout (3 s), not $ms ms"
ok "the agent gave up after $ms ms"
fp_start --close
fault "a peer that closes right after accept" 2 'tls|ssl|handshake|connect|reset|closed'
for code in 500 502 503; do
	fp_start --status "$code" --body "$B2"
	fault "HTTP $code" 2 "$code"
done

# ---------------------------------------------------------------- 401
echo "-- the token refused"
fp_start --status 401
snapshot
assert_exit 4 "401: check-in exits 4" -- agent check-in
assert_eq "carotate-agent: token refused: relink" "$ERR" "401: the message"
unchanged "401"

# ---------------------------------------------------------------- invalid bundles
echo "-- invalid answers"
len=$(stat -c %s "$B3")
fp_start --status 200 --header "ETag: \"$(pem_bundle_id "$B3")\"" --body "$B3" --truncate $((len / 2))
# A connection cut inside the body is a transport failure, as a reset is: exit 2 (retried by
# the timer); a complete answer whose body is cut is an invalid bundle: exit 5.
fault "a body cut short (Content-Length says more)" 2 'truncat|partial|remaining|incomplete|closed'
head -c $((len / 2)) "$B3" >"$T/cut.pem"
fp_answer_bundle "$T/cut.pem" "$(pem_bundle_id "$B3")"
fault "a bundle cut inside its certificate" 5 'pem|certificate|bundle|invalid'
printf 'this is not a certificate bundle\n' >"$T/notpem"
fp_answer_bundle "$T/notpem" "$(printf '%064d' 0)"
fault "a body that is not PEM" 5 'pem|certificate|bundle|invalid'
: >"$T/empty"
fp_answer_bundle "$T/empty" "$(printf '%064d' 0)"
fault "an empty 200" 5 'empty|pem|certificate|bundle|invalid'
fp_answer_bundle "$PKI_DIR/a/server.leaf.crt"
fault "a bundle holding a non-CA certificate" 5 'ca|certificate|bundle'
fp_answer_bundle "$B3" "$ID2"
fault "an ETag that is not the bundle's id" 5 'etag|id|match'
fp_start --status 200 --body "$B3"
fault "a 200 without ETag" 5 'etag|header|missing|malformed'
# The size cap (1 MiB): valid certificates, then blank lines past the cap.
{ cat "$B3"; head -c $((1024 * 1024 + 4096)) /dev/zero | tr '\0' '\n'; } >"$T/huge.pem"
fp_answer_bundle "$T/huge.pem"
fault "a bundle over 1 MiB" 5 'large|size|MiB|limit|bundle'
{ cat "$B3" "$PKI_DIR/c/ca.key"; } >"$T/with-key.pem"
fp_answer_bundle "$T/with-key.pem"
fault "a bundle with a private key in it" 5 'key|pem|certificate|bundle'
fp_answer_bundle "$CA_B"
fault "a valid bundle lacking the CA that signs the served certificate" 5 'served|verif|lock|sign|trust'
# The same with a chain the new bundle cannot verify though it holds many CAs.
cat "$CA_B" "$PKI_DIR/b/server.leaf.crt" >"$T/b-and-leaf.pem"
fp_answer_bundle "$T/b-and-leaf.pem"
fault "CA B and a leaf" 5 'ca|certificate|bundle|served|verif'

# ---------------------------------------------------------------- corrupt state
echo "-- corrupt state file"
STATE="$A/state/state"
[ -f "$STATE" ] || fail "the agent keeps its state in $STATE (brief: state_dir/state)" "$(ls -la "$A/state")"
cp -p "$STATE" "$T/state.good"
fp_start --status 304 --header "ETag: \"$ID2\""
head -c 512 /dev/urandom >"$STATE"
fault "a state file of random bytes" 6 'state'
: >"$STATE"
fault "an empty state file" 6 'state'
head -c $(($(stat -c %s "$T/state.good") / 2)) "$T/state.good" >"$STATE"
fault "a state file cut in half" 6 'state'
printf '%s' "$(tr -d '\n' <"$T/state.good")" | head -c 4000 >"$STATE"
printf '\0\0\0' >>"$STATE"
fault "a state file with NUL bytes" 6 'state'
cp -p "$T/state.good" "$STATE"
# The token: gone (not linked any more), or holding a line break that would end the header
# it is sent in and start another.
cp -p "$A/state/token" "$T/token.good"
rm -f "$A/state/token"
: >"$T/fp.log"
fault "the token file removed" 3 'link'
printf '%s
X-Injected: 1
' "$TOKEN" >"$A/state/token"
fault "a token with CR LF and another header" 6 'token'
assert_eq "" "$(fp_requests)" "no request was sent with a missing or corrupt token"
cp -p "$T/token.good" "$A/state/token"
assert_exit 0 "with the state file back, check-in works (304)" -- agent check-in

# ---------------------------------------------------------------- a full disk
echo "-- the bundle's file system full"
FULL="$T/full"
if ! command -v fallocate >/dev/null; then
	t_log "SKIPPED the full disk cases: fallocate (util-linux) is not installed"
elif ! small_tmpfs "$FULL" 256k; then
	t_log "SKIPPED the full disk cases: $SMALL_TMPFS_WHY"
else
	cp -p "$BUNDLE" "$BUNDLE.prev" "$FULL/"
	sed -i "s|^bundle = .*|bundle = $FULL/ca-bundle.pem|" "$A/agent.conf"
	BUNDLE="$FULL/ca-bundle.pem"
	failed=0
	for pages in 0 1 2 4; do
		fp_answer_bundle "$B3"
		snapshot
		fill_fs "$FULL" "$pages"
		run agent check-in
		what="check-in with $pages free pages for the bundle"
		if [ "$RC" -ne 0 ]; then
			assert_eq 6 "$RC" "$what: exit 6 (internal)"
			one_line "$what" 'space|disk|write'
			unchanged "$what"
			failed=$((failed + 1))
		else
			cmp -s "$B3" "$BUNDLE" || fail "$what: exit 0, so the complete new bundle is installed"
			cmp -s "$T/snap.bundle" "$BUNDLE.prev" || fail "$what: exit 0, the old bundle is .prev"
			ok "$what: it fit; the complete new bundle is installed"
			cp -p "$T/snap.bundle" "$BUNDLE" # the next level starts from the same bundle
			[ -e "$T/snap.prev" ] && cp -p "$T/snap.prev" "$BUNDLE.prev"
		fi
		leftover=$(find "$FULL" -mindepth 1 ! -name .filler ! -name ca-bundle.pem ! -name ca-bundle.pem.prev)
		assert_eq "" "$leftover" "$what: no temporary file is left"
	done
	[ "$failed" -gt 0 ] || fail "some check-in ran out of space (0 free pages at least)"
	rm -f "$FULL/.filler"
	fp_answer_bundle "$B3"
	snapshot
	assert_exit 0 "space back: the check-in installs the new bundle" -- agent check-in
	cmp -s "$B3" "$BUNDLE" || fail "space back: the new bundle is installed"
	cmp -s "$T/snap.bundle" "$BUNDLE.prev" || fail "space back: the old bundle is .prev"
	assert_eq $((SNAP_HOOK + 1)) "$(hook_runs "$A/hook.log")" "space back: the hook ran once"
fi

# ---------------------------------------------------------------- first contact refused
echo "-- first contact: a pin or CA file of another CA sends nothing"
P="$T/pinned"
agent_conf "$P" pinned-agent
fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
run "$AGENT" -c "$P/agent.conf" link --server "$URL" --ca-pin "$(ca_pin "$CA_B")" \
	--join-token-file "$T/join-token"
assert_eq 5 "$RC" "link --ca-pin of another CA exits 5"
one_line "pin mismatch" 'pin|fingerprint'
assert_eq "" "$(fp_requests)" "pin mismatch: the proxy received no request at all"
grep -q '^# accepted' "$T/fp.log" || fail "pin mismatch: the agent did connect (the test reached the proxy)" "$(cat "$T/fp.log")"
[ ! -e "$P/etc/ca-bundle.pem" ] || fail "pin mismatch: no bundle written"
[ ! -e "$P/state/token" ] || fail "pin mismatch: no token written"
ok "pin mismatch: no bundle, no token"

fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
run "$AGENT" -c "$P/agent.conf" link --server "$URL" --ca-file "$CA_B" --join-token-file "$T/join-token"
assert_eq 2 "$RC" "link --ca-file of another CA exits 2 (TLS verification)"
one_line "untrusted proxy" 'certificate|verif|tls|ssl|trust'
assert_eq "" "$(fp_requests)" "untrusted proxy: the proxy received no request at all"
[ ! -e "$P/etc/ca-bundle.pem" ] || fail "untrusted proxy: no bundle written"

# A pin is a CA that must sign what the proxy serves: CA A's certificate is public, so a
# peer holding another key can put it in its chain. Nothing may be sent to it.
FP_CERT="$PKI_DIR/b/leaf-b-ca-a.crt" FP_KEY="$PKI_DIR/b/server.key" \
	fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
run "$AGENT" -c "$P/agent.conf" link --server "$URL" --ca-pin "$(ca_pin "$CA_A")" \
	--join-token-file "$T/join-token"
assert_eq 5 "$RC" "the pinned CA in the chain of a leaf it did not sign: exit 5"
one_line "pinned CA, foreign leaf" 'pin|fingerprint|verif'
assert_eq "" "$(fp_requests)" "pinned CA, foreign leaf: the proxy received no request at all"
# The pinned CA signed the leaf, but for another name than the server URL's.
FP_CERT="$PKI_DIR/a-other/server.crt" FP_KEY="$PKI_DIR/a-other/server.key" \
	fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
run "$AGENT" -c "$P/agent.conf" link --server "$URL" --ca-pin "$(ca_pin "$CA_A")" \
	--join-token-file "$T/join-token"
assert_ne 0 "$RC" "the pinned CA's leaf for another name is refused (exit $RC)"
one_line "pinned CA, other name" 'pin|name|host|verif|match'
assert_eq "" "$(fp_requests)" "pinned CA, other name: the proxy received no request at all"
[ ! -e "$P/etc/ca-bundle.pem" ] || fail "no bundle written after the refused links"

# The right pin links: the refusals above were about the pin, not the setup.
fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link --ca-pin of CA A (the served chain holds it)" -- \
	"$AGENT" -c "$P/agent.conf" link --server "$URL" --ca-pin "$(ca_pin "$CA_A")" \
	--join-token-file "$T/join-token"
cmp -s "$B1" "$P/etc/ca-bundle.pem" || fail "link with the right pin installs the bundle"
assert_match '^POST /carotate/v1/link' "$(fp_requests | head -n 1)" "the right pin: the link request was sent"
# Linking again renews: the request carries the agent's current token (a re-link without it is refused with 409).
fp_start --status 200 --header "X-Agent-Token: $(openssl rand -hex 32)" --header "ETag: \"$ID1\"" --body "$B1"
assert_exit 0 "link again (renewal)" -- "$AGENT" -c "$P/agent.conf" link --server "$URL" \
	--ca-pin "$(ca_pin "$CA_A")" --join-token-file "$T/join-token"
fp_requests >"$T/relink.req"
assert_file_contains "X-Agent-Token: $TOKEN" "$T/relink.req" "a second link presents the current token (renewal)"

# ---------------------------------------------------------------- the hook fails
echo "-- a failing hook is owed until it succeeds"
H="$T/hooked"
agent_conf "$H" hooked-agent
sed -i "s|^hook = .*|hook = $T/hook-fails.sh $H/hook.log|" "$H/agent.conf"
# shellcheck disable=SC2016 # the script expands them
printf '#!/bin/sh\necho "$(date +%%s.%%N) failed" >>"$1"\nexit 3\n' >"$T/hook-fails.sh"
chmod 0755 "$T/hook-fails.sh"
fp_start --status 200 --header "X-Agent-Token: $TOKEN" --header "ETag: \"$ID1\"" --body "$B1"
run "$AGENT" -c "$H/agent.conf" link --server "$URL" --ca-file "$CA_A" --join-token-file "$T/join-token"
assert_eq 6 "$RC" "link with a failing hook exits 6"
one_line "a failing hook" 'hook'
cmp -s "$B1" "$H/etc/ca-bundle.pem" || fail "the bundle is installed even though the hook failed"
assert_eq 1 "$(hook_runs "$H/hook.log")" "the failing hook ran once"
fp_start --status 304 --header "ETag: \"$ID1\""
assert_exit 6 "a 304 check-in runs the owed hook again, which fails again: exit 6" -- \
	"$AGENT" -c "$H/agent.conf" check-in
assert_eq 2 "$(hook_runs "$H/hook.log")" "the owed hook ran on the 304"
sed -i "s|^hook = .*|hook = /bin/sleep 30|; s|^hook_timeout = .*|hook_timeout = 1s|" "$H/agent.conf"
start=$(ms_now)
assert_exit 6 "a hook outliving hook_timeout (1s): exit 6" -- "$AGENT" -c "$H/agent.conf" check-in
one_line "a hook killed after its timeout" 'hook'
ms=$(($(ms_now) - start))
[ "$ms" -lt 10000 ] || fail "the hook is killed after hook_timeout (1 s), not after $ms ms"
ok "the hook was killed after $ms ms"
sed -i "s|^hook = .*|hook = $HOOK $H/hook.log|" "$H/agent.conf"
assert_exit 0 "the hook fixed: the 304 check-in runs it, exit 0" -- "$AGENT" -c "$H/agent.conf" check-in
assert_eq 3 "$(hook_runs "$H/hook.log")" "the owed hook ran once more and succeeded"
assert_exit 0 "the next 304 check-in" -- "$AGENT" -c "$H/agent.conf" check-in
assert_eq 3 "$(hook_runs "$H/hook.log")" "a hook that succeeded is not owed any more"

# What the hook gets: no shell between (argv as written), stdin /dev/null, no descriptor of
# the agent's but 0-2 (the agent runs here with descriptor 7 open), three variables.
cat >"$T/hook-env.py" <<'PYHOOK'
#!/usr/bin/python3
import os, sys
fds = []
for fd in range(3, 256):
    try:
        os.fstat(fd)
        fds.append(str(fd))
    except OSError:
        pass
with open(sys.argv[1], "w") as f:
    f.write("argv=%s\n" % " ".join(sys.argv[2:]))
    f.write("stdin=%s\n" % os.readlink("/proc/self/fd/0"))
    f.write("fds=%s\n" % ",".join(fds))
    for k in sorted(os.environ):
        f.write("env %s=%s\n" % (k, os.environ[k]))
PYHOOK
chmod 0755 "$T/hook-env.py"
sed -i "s|^hook = .*|hook = $T/hook-env.py $H/hook-env.out one \"two words\" \$HOME|" "$H/agent.conf"
fp_answer_bundle "$B2"
run bash -c 'exec 7<"$1"; exec "$2" -c "$3" check-in' _ "$CA_A" "$AGENT" "$H/agent.conf"
assert_eq 0 "$RC" "a 200 with the recording hook: exit 0 ($ERR)"
[ -f "$H/hook-env.out" ] || fail "the hook ran"
assert_file_contains "argv=one two words \$HOME" "$H/hook-env.out" "the hook's argv: no shell expanded \$HOME, quotes group words"
assert_file_contains "stdin=/dev/null" "$H/hook-env.out" "the hook's stdin is /dev/null"
assert_eq "fds=" "$(grep '^fds=' "$H/hook-env.out")" "the hook inherits no descriptor above 2"
assert_eq "CAROTATE_BUNDLE CAROTATE_BUNDLE_ID PATH" \
	"$(sed -n 's/^env \([^=]*\)=.*/\1/p' "$H/hook-env.out" | grep -v '^LC_CTYPE$' | tr '\n' ' ' | sed 's/ $//')" \
	"the hook's environment: CAROTATE_BUNDLE, CAROTATE_BUNDLE_ID, PATH"
assert_file_contains "env CAROTATE_BUNDLE=$H/etc/ca-bundle.pem" "$H/hook-env.out" "CAROTATE_BUNDLE names the bundle"
assert_file_contains "env CAROTATE_BUNDLE_ID=$ID2" "$H/hook-env.out" "CAROTATE_BUNDLE_ID is the new bundle's id"

# ---------------------------------------------------------------- after all that
echo "-- after the faults, a sane proxy"
fp_start --status 304 --header "ETag: \"$(pem_bundle_id "$BUNDLE")\""
snapshot
assert_exit 0 "check-in against a sane proxy: 304" -- agent check-in
assert_file_contains "If-None-Match: \"$(pem_bundle_id "$BUNDLE")\"" "$T/fp.log" \
	"the If-None-Match names the bundle installed"
unchanged "304 after the faults"
assert_exit 0 "status exits 0" -- agent status
assert_exit 0 "status --json exits 0" -- agent status --json
printf '%s' "$OUT" | "$PY" -c 'import json,sys; json.load(sys.stdin)' || fail "status --json is JSON" "$OUT"
ok "status --json is JSON"
fp_stop
