#!/bin/bash
# Certificate text chosen by whoever made a custom set, on the operator's terminal and in
# --json. Reproduction of what this test guards against: a leaf whose subjectAltName holds
# "DNS:ev<0x9b>31mil.test" (0x9b is CSI to a terminal that reads 8-bit controls) was staged
# by `install`, and `status` wrote the raw 0x9b to the terminal, since only C1 controls in
# their UTF-8 form were escaped; a CA subject "CN=evil <U+202E>gnp.exe" showed reversed text,
# and `status --json` carried U+009B and U+202E as raw UTF-8.
# Now: install refuses a dNSName that is not letters, digits, hyphens and dots (after an
# optional "*."), exit 5, naming it escaped; an active set already on disk with such a SAN is
# shown escaped (\x9b); a hostile subject is shown escaped (\xe2\x80\xae), and JSON is ASCII.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init
C="$T/hostile"
mkdir -p "$C"

# no_raw WHAT FILE: FILE holds no ESC, no 0x9b (raw or as the second byte of U+009B), no U+202E.
no_raw() {
	"$PY" - "$2" <<'EOF' || fail "$1: nothing in it can drive the terminal" "$(od -c "$2" | head -n 20)"
import sys
data = open(sys.argv[1], "rb").read()
found = [repr(b) for b in (b"\x1b", b"\x9b", b"\xe2\x80\xae", b"\xe2\x81\xa6") if b in data]
if found:
    sys.exit("raw bytes found: " + ", ".join(found))
EOF
	ok "$1: no raw ESC, 0x9b or bidi override"
}

# ascii_only WHAT FILE: every byte is ASCII (JSON dumped with ensure-ascii).
ascii_only() {
	"$PY" - "$2" <<'EOF' || fail "$1: JSON is ASCII only" "$(od -c "$2" | head -n 20)"
import sys
data = open(sys.argv[1], "rb").read()
bad = [i for i, b in enumerate(data) if b >= 0x80]
if bad:
    sys.exit("non-ASCII byte 0x%02x at offset %d" % (data[bad[0]], bad[0]))
EOF
	ok "$1: ASCII only"
}

# leaf NAME CADIR SUBJECT SANS: $C/NAME/{server.key,server.crt} (leaf + CA), serverAuth.
leaf() {
	local dir="$C/$1"
	mkdir -p "$dir"
	printf '[r]\ndistinguished_name = dn\n[dn]\n[v3_srv]\n%s\n%s\n%s\n%s\n%s\n%s\n' \
		"basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
		"extendedKeyUsage = serverAuth" "subjectAltName = $4" \
		"subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid:always" >"$dir/server.ext"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-out "$dir/server.key" 2>/dev/null)
	openssl req -new -utf8 -key "$dir/server.key" -subj "$3" -config "$dir/server.ext" \
		-out "$dir/server.csr" 2>/dev/null
	openssl x509 -req -in "$dir/server.csr" -CA "$2/ca.crt" -CAkey "$2/ca.key" \
		-set_serial "0x$(openssl rand -hex 15)" -days 397 -sha256 \
		-extfile "$dir/server.ext" -extensions v3_srv -out "$dir/server.leaf.crt" 2>/dev/null
	cat "$dir/server.leaf.crt" "$2/ca.crt" >"$dir/server.crt"
}

SAN_9B=$(printf 'DNS:ev\23331mil.test')
HOSTILE_SANS="DNS:proxy.test,IP:127.0.0.1,$SAN_9B"
# U+202E (right-to-left override), U+009B (C1 CSI), ESC, U+2066 (left-to-right isolate).
EVIL_CN=$(printf 'evil \342\200\256gnp.exe \302\23331m \033[2J \342\201\246x')

# The active set on disk carries the raw 0x9b SAN: it was put there by hand, not installed.
pki_make_ca "$C/ca1" "hostile test CA one"
leaf san9b "$C/ca1" "/CN=proxy.test" "$HOSTILE_SANS"
openssl x509 -in "$C/san9b/server.leaf.crt" -noout -ext subjectAltName | grep -q "$(printf '\233')" ||
	fail "openssl wrote the raw 0x9b into the dNSName"
cp "$C/ca1/ca.crt" "$SSL_DIR/ca.crt"
cp "$C/san9b/server.crt" "$SSL_DIR/server.crt"
(umask 077 && cp "$C/san9b/server.key" "$SSL_DIR/server.key")
write_config "$CONF"
start_daemon

echo "-- status of an active set whose SAN holds a raw 0x9b"
ctl status >"$T/status.out" 2>"$T/status.err" || fail "status exits 0" "$(cat "$T/status.err")"
no_raw "status stdout" "$T/status.out"
no_raw "status stderr" "$T/status.err"
assert_file_contains 'DNS:ev\x9b31mil.test' "$T/status.out" "the SAN is shown with \\x9b"
ctl --json status >"$T/status.json" || fail "status --json exits 0"
ascii_only "status --json" "$T/status.json"

echo "-- install of a set whose SAN holds a raw 0x9b: refused"
pki_make_ca "$C/ca2" "hostile test CA two"
leaf bad9b "$C/ca2" "/CN=proxy.test" "$HOSTILE_SANS"
rc=0
ctl install --ca "$C/ca2/ca.crt" --cert "$C/bad9b/server.crt" --key "$C/bad9b/server.key" \
	>"$T/install.out" 2>"$T/install.err" || rc=$?
assert_eq 5 "$rc" "install of a 0x9b dNSName exits 5 (INVALID_ARGUMENT)"
no_raw "refused install stdout" "$T/install.out"
no_raw "refused install stderr" "$T/install.err"
assert_file_contains 'DNS:ev\x9b31mil.test is not a host name' "$T/install.err" \
	"the message names the SAN, escaped"
rc=0
ctl --json install --ca "$C/ca2/ca.crt" --cert "$C/bad9b/server.crt" \
	--key "$C/bad9b/server.key" >"$T/install.json" 2>/dev/null || rc=$?
assert_eq 5 "$rc" "install --json exits 5"
ascii_only "refused install --json" "$T/install.json"
assert_eq invalid_argument "$(json_get error.status "$T/install.json")" "status invalid_argument"
[ ! -e "$SSL_DIR/new" ] || [ -z "$(ls -A "$SSL_DIR/new")" ] || fail "nothing was staged"
ok "nothing staged"

echo "-- other dNSNames outside letters, digits, hyphens and dots: refused"
# (a name in another script goes in as its A-label, xn--caf-dma.test, not as raw UTF-8)
for san in "DNS:under_score.test" "DNS:sp ace.test" "DNS:a.*.test" "DNS:*" \
	"DNS:$(printf 'caf\303\251').test"; do
	name=$(printf '%s' "$san" | tr -c '[:alnum:]' '_')
	leaf "bad$name" "$C/ca2" "/CN=proxy.test" "DNS:proxy.test,IP:127.0.0.1,$san"
	rc=0
	ctl install --ca "$C/ca2/ca.crt" --cert "$C/bad$name/server.crt" \
		--key "$C/bad$name/server.key" >/dev/null 2>"$T/install.err" || rc=$?
	assert_eq 5 "$rc" "install of $san exits 5"
	assert_file_contains 'is not a host name' "$T/install.err" "$san: the message says why"
done

echo "-- a wildcard and plain names still install"
leaf wild "$C/ca2" "/CN=proxy.test" "DNS:proxy.test,IP:127.0.0.1,DNS:*.proxy.test,DNS:a-1.B.test"
assert_exit 0 "install of *.proxy.test and a-1.B.test" -- \
	ctl install --ca "$C/ca2/ca.crt" --cert "$C/wild/server.crt" --key "$C/wild/server.key"
assert_exit 0 "discard it" -- ctl discard

echo "-- install of a set whose subjects hold C1, ESC and bidi controls: staged, shown escaped"
pki_make_ca "$C/ca3" "placeholder"
openssl req -new -x509 -utf8 -config "$C/ca3/ca.ext" -extensions v3_ca -key "$C/ca3/ca.key" \
	-subj "/CN=$EVIL_CN" -days 3650 -sha256 -set_serial "0x$(openssl rand -hex 15)" \
	-out "$C/ca3/ca.crt" 2>/dev/null
leaf evilcn "$C/ca3" "/CN=$EVIL_CN" "DNS:proxy.test,IP:127.0.0.1"
rc=0
ctl install --ca "$C/ca3/ca.crt" --cert "$C/evilcn/server.crt" --key "$C/evilcn/server.key" \
	>"$T/install.out" 2>"$T/install.err" || rc=$?
assert_eq 0 "$rc" "install of hostile subjects exits 0 ($(cat "$T/install.err"))"
no_raw "install stdout" "$T/install.out"
no_raw "install stderr" "$T/install.err"
ctl status >"$T/status.out" 2>"$T/status.err" || fail "status exits 0"
no_raw "status stdout" "$T/status.out"
no_raw "status stderr" "$T/status.err"
assert_file_contains 'CN=evil \xe2\x80\xaegnp.exe \xc2\x9b31m' "$T/status.out" \
	"the staged CA's subject is shown escaped"
ctl --json status >"$T/status.json" || fail "status --json exits 0"
ascii_only "status --json" "$T/status.json"
"$PY" - "$T/status.json" <<'EOF' || fail "status --json carries the subject unchanged, as \\u escapes"
import json, sys
j = json.load(open(sys.argv[1]))
s = j["staged"]["ca"]["subject"]
assert "\u202e" in s and "\u009b" in s and "\u2066" in s, s
EOF
ok "status --json decodes to the subject with U+202E, U+009B and U+2066"
for verb in audit backups report; do
	ctl "$verb" >"$T/$verb.out" 2>&1 || true
	no_raw "$verb output" "$T/$verb.out"
	ctl --json "$verb" >"$T/$verb.json" 2>/dev/null || true
	ascii_only "$verb --json" "$T/$verb.json"
done

assert_daemon_alive
