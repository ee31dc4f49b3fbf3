#!/bin/bash
# generate and discard: a new CA and server certificate for every key type, checked with the
# openssl CLI against the profile of carotated(8) STAGING AND THE TRUST BUNDLE (extensions, signature, key, validity, serials);
# where the daemon puts the keys (the CA key in the state directory, never in the SSL one);
# the published trust bundle and canary; the reload command; bad generate options; generate
# while staged; discard twice; generate on a fresh proxy with no active set.
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

t_init

# ---------------------------------------------------------------- local helpers

# The proxy reload command: records each call (argv, no shell: an absolute executable path).
RELOAD_LOG="$T/reload.calls"
cat >"$T/reload.sh" <<EOF
#!/bin/sh
echo "reload \$\$" >>"$RELOAD_LOG"
EOF
chmod 0755 "$T/reload.sh"
reload_count() { if [ -f "$RELOAD_LOG" ]; then wc -l <"$RELOAD_LOG"; else echo 0; fi; }

# write_config, then point [proxy] reload at our recording script.
write_gen_config() {
	write_config
	sed -i "s|^reload = .*|reload = $T/reload.sh|" "$CONF"
	grep -q "^reload = $T/reload.sh\$" "$CONF" || fail "the test config names the reload script"
}

# A raw request, bypassing carotatectl's own checks, to test the daemon's.
# rawgen KEY=VALUE... (key_type ca_days server_days name san): prints "STATUS MESSAGE".
cat >"$T/rawreq.py" <<'EOF'
import socket, struct, sys

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def ld(tag, b):
    return varint(tag << 3 | 2) + varint(len(b)) + b

def vi(tag, n):
    return varint(tag << 3) + varint(n)

sock, call = sys.argv[1], sys.argv[2]
inner = b""
if call == "generate":
    for a in sys.argv[3:]:
        k, v = a.split("=", 1)
        if k in ("ca_days", "server_days"):
            inner += vi({"ca_days": 2, "server_days": 3}[k], int(v))
        else:
            inner += ld({"key_type": 1, "name": 4, "san": 5}[k], v.encode())
    body = vi(1, 1) + ld(11, inner)
elif call == "install":
    for a in sys.argv[3:]:
        k, v = a.split("=", 1)
        inner += ld({"ca": 1, "cert": 2, "key": 3, "chain": 4}[k], open(v, "rb").read())
    body = vi(1, 1) + ld(12, inner)
else:
    sys.exit("unknown call " + call)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(120)
s.connect(sock)
s.sendall(struct.pack(">I", len(body)) + body)

def recv(n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            sys.exit("daemon closed the connection")
        buf += c
    return buf

(n,) = struct.unpack(">I", recv(4))
resp = recv(n)
status, message, i = 0, "", 0
while i < len(resp):
    key, j = 0, 0
    while True:
        b = resp[i]; i += 1
        key |= (b & 0x7F) << (7 * j); j += 1
        if not b & 0x80:
            break
    tag, wt = key >> 3, key & 7
    if wt == 0:
        v, j = 0, 0
        while True:
            b = resp[i]; i += 1
            v |= (b & 0x7F) << (7 * j); j += 1
            if not b & 0x80:
                break
        if tag == 1:
            status = v
    elif wt == 2:
        ln, j = 0, 0
        while True:
            b = resp[i]; i += 1
            ln |= (b & 0x7F) << (7 * j); j += 1
            if not b & 0x80:
                break
        if tag == 2:
            message = resp[i:i + ln].decode("utf-8", "replace")
        i += ln
    else:
        break
print("%d %s" % (status, message))
EOF
rawreq() { "$PY" "$T/rawreq.py" "$SOCK" "$@"; }

# Certificate facts: one openssl call per certificate, kept in $T/NAME.facts.
# load_cert CERT NAME
load_cert() {
	openssl x509 -in "$1" -noout -text -subject -issuer -serial -startdate -enddate -pubkey \
		-nameopt RFC2253 >"$T/$2.facts"
}
fact() { sed -n "s/^$2=//p" "$T/$1.facts"; } # fact NAME subject|issuer|serial|notBefore|notAfter
facts_pubkey() { sed -n '/^-----BEGIN PUBLIC KEY-----$/,/^-----END PUBLIC KEY-----$/p' "$T/$1.facts"; }
facts_text() { cat "$T/$1.facts"; }
# xext NAME "Basic Constraints": the extension's heading line and its (trimmed) value line.
xext() {
	awk -v h="X509v3 $2:" 'index($0, h) { print; if ((getline l) > 0) { sub(/^ +/, "", l); print l }; exit }' \
		"$T/$1.facts"
}
xext_value() { xext "$1" "$2" | sed -n '2{s/^keyid://;p;}'; }
# SANs one a line, "DNS:x" / "IP:y", as lib.sh's cert_sans prints them.
facts_sans() { xext_value "$1" "Subject Alternative Name" | tr ',' '\n' | sed 's/^ *//; s/IP Address:/IP:/; /^$/d'; }
to_epoch() { date -u -d "$1" +%s; }
pubkey_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }
# "role=sha256" per bundle member, sorted, one a line.
bundle_roles() {
	awk -F'\t' '
	$1 ~ /^bundle\.members\.[0-9]+\.role$/ { split($1, p, "."); r[p[3]] = $2 }
	$1 ~ /^bundle\.members\.[0-9]+\.sha256$/ { split($1, p, "."); h[p[3]] = $2 }
	END { for (i in r) print r[i] "=" h[i] }' "$1.flat" | LC_ALL=C sort
}

# Every generated CA's public key, to prove no CA private key lands in the SSL directory.
mkdir -m 0700 "$T/capubs"
SERIALS="$T/serials"
: >"$SERIALS"
SUBJECTS="$T/ca-subjects"
: >"$SUBJECTS"

# assert_no_ca_key_in_ssl: no *.key but server.key / canary.key, and no file in the SSL
# directory holds the private key of any CA generated so far.
assert_no_ca_key_in_ssl() {
	local f stray pub capub
	stray=$(find "$SSL_DIR" -name '*.key' ! -name server.key ! -name canary.key)
	[ -z "$stray" ] || fail "no *.key but server.key/canary.key in the SSL directory" "got: $stray"
	while IFS= read -r f; do
		pub=$(pubkey_of_key "$f") || continue
		for capub in "$T"/capubs/*.pem; do
			[ -e "$capub" ] || continue
			[ "$pub" != "$(cat "$capub")" ] ||
				fail "no CA private key in the SSL directory" "$f holds the key of $capub"
		done
	done < <(grep -rl -- 'PRIVATE KEY' "$SSL_DIR" || true)
	ok "no CA private key anywhere in the SSL directory"
}

# within LO HI VALUE WHAT
within() {
	if [ "$3" -lt "$1" ] || [ "$3" -gt "$2" ]; then
		fail "$4" "expected between $1 and $2" "got: $3 (off by $(($3 - $1)) / $(($2 - $3)))"
	fi
	ok "$4"
}

# check_generated KEY_TYPE CA_DAYS SERVER_DAYS NAME T0 T1 SANS...
# Checks $SSL_DIR/new against the profile; $T/gen.json is generate's JSON reply.
# T0/T1: the clock before and after generate. SANS: "DNS:x" / "IP:y" expected, in order.
check_generated() {
	local kt=$1 ca_days=$2 srv_days=$3 name=$4 t0=$5 t1=$6
	shift 6
	local new="$SSL_DIR/new" ca leaf txt ca_sha leaf_sha bits curve want_sig sig c what
	local nb na ski aki ca_aki ca_serial srv_serial keyfile today0 today1 subj san_host san_ip
	ca="$new/ca.crt"
	leaf="$T/leaf.pem"
	for f in ca.crt server.crt server.key .carotate-set; do
		[ -f "$new/$f" ] || fail "$kt: new/$f exists" "ls: $(ls -la "$new")"
	done
	ok "$kt: new/ holds ca.crt, server.crt, server.key, .carotate-set"
	assert_eq 700 "$(stat -c %a "$new")" "$kt: new/ is mode 0700"
	assert_eq 600 "$(stat -c %a "$new/server.key")" "$kt: new/server.key is mode 0600"
	grep -Eq '^origin[[:space:]]*=[[:space:]]*generated[[:space:]]*$' "$new/.carotate-set" ||
		fail "$kt: .carotate-set says origin=generated" "got: $(cat "$new/.carotate-set")"
	ok "$kt: .carotate-set says origin=generated"
	openssl x509 -in "$new/server.crt" -out "$leaf" # the first certificate: the leaf
	ca_sha=$(cert_der_sha256 "$ca")
	leaf_sha=$(cert_der_sha256 "$leaf")
	load_cert "$ca" ca
	load_cert "$leaf" leaf

	# -- openssl verify, as carotated(8) STAGING AND THE TRUST BUNDLE demands
	san_host="" san_ip=""
	for s in "$@"; do
		case "$s" in
		DNS:*) [ -n "$san_host" ] || san_host=${s#DNS:} ;;
		IP:*) [ -n "$san_ip" ] || san_ip=${s#IP:} ;;
		esac
	done
	assert_exit 0 "$kt: openssl verify -x509_strict -purpose sslserver -verify_hostname $san_host" -- \
		openssl verify -x509_strict -purpose sslserver -verify_hostname "$san_host" \
		-CAfile "$ca" "$leaf"
	if [ -n "$san_ip" ]; then
		assert_exit 0 "$kt: openssl verify -x509_strict -purpose sslserver -verify_ip $san_ip" -- \
			openssl verify -x509_strict -purpose sslserver -verify_ip "$san_ip" \
			-CAfile "$ca" "$leaf"
	fi
	assert_exit 0 "$kt: the whole new/server.crt verifies (leaf + any chain)" -- \
		openssl verify -x509_strict -purpose sslserver -CAfile "$ca" -untrusted "$new/server.crt" "$leaf"
	assert_eq "$(facts_pubkey leaf)" "$(pubkey_of_key "$new/server.key")" \
		"$kt: new/server.key is a private key that matches the server certificate"

	# -- CA extensions
	assert_match 'critical' "$(xext ca 'Basic Constraints' | head -n 1)" "$kt: CA basicConstraints is critical"
	assert_eq 'CA:TRUE, pathlen:0' "$(xext_value ca 'Basic Constraints')" "$kt: CA basicConstraints CA:TRUE, pathlen:0"
	assert_match 'critical' "$(xext ca 'Key Usage' | head -n 1)" "$kt: CA keyUsage is critical"
	assert_eq 'Certificate Sign, CRL Sign' "$(xext_value ca 'Key Usage')" "$kt: CA keyUsage is exactly keyCertSign, cRLSign"
	ski=$(xext_value ca 'Subject Key Identifier')
	assert_match '^([0-9A-F]{2}:)+[0-9A-F]{2}$' "$ski" "$kt: CA has a subjectKeyIdentifier"
	ca_aki=$(xext_value ca 'Authority Key Identifier')
	assert_eq "$ski" "$ca_aki" "$kt: CA authorityKeyIdentifier = its SKI"
	assert_eq "" "$(xext ca 'Extended Key Usage')" "$kt: the CA has no extendedKeyUsage"

	# -- server extensions
	assert_match 'critical' "$(xext leaf 'Basic Constraints' | head -n 1)" "$kt: server basicConstraints is critical"
	assert_eq 'CA:FALSE' "$(xext_value leaf 'Basic Constraints')" "$kt: server basicConstraints CA:FALSE"
	assert_match 'critical' "$(xext leaf 'Key Usage' | head -n 1)" "$kt: server keyUsage is critical"
	case "$kt" in
	rsa-*) assert_eq 'Digital Signature, Key Encipherment' "$(xext_value leaf 'Key Usage')" \
		"$kt: server keyUsage is digitalSignature, keyEncipherment" ;;
	*) assert_eq 'Digital Signature' "$(xext_value leaf 'Key Usage')" \
		"$kt: server keyUsage is digitalSignature only" ;;
	esac
	assert_eq 'TLS Web Server Authentication' "$(xext_value leaf 'Extended Key Usage')" \
		"$kt: server extendedKeyUsage is serverAuth (only)"
	assert_match '^([0-9A-F]{2}:)+[0-9A-F]{2}$' "$(xext_value leaf 'Subject Key Identifier')" \
		"$kt: server has a subjectKeyIdentifier"
	assert_ne "$ski" "$(xext_value leaf 'Subject Key Identifier')" "$kt: server SKI differs from the CA's"
	aki=$(xext_value leaf 'Authority Key Identifier')
	assert_eq "$ski" "$aki" "$kt: server authorityKeyIdentifier = CA's subjectKeyIdentifier"
	assert_eq "$(printf '%s\n' "$@")" "$(facts_sans leaf)" "$kt: server SANs are exactly: $*"
	for s in "$@"; do
		case "$s" in
		DNS:*) assert_contains "DNS:${s#DNS:}" "$(xext_value leaf 'Subject Alternative Name')" "$kt: SAN has DNS:${s#DNS:}" ;;
		IP:*) assert_contains "IP Address:${s#IP:}" "$(xext_value leaf 'Subject Alternative Name')" "$kt: SAN has IP Address:${s#IP:}" ;;
		esac
	done
	assert_eq "$ca_sha" "$(jget staged.ca.sha256 "$T/gen.json")" "$kt: reply's staged.ca.sha256 = new/ca.crt"
	assert_eq "$leaf_sha" "$(jget staged.server.sha256 "$T/gen.json")" "$kt: reply's staged.server.sha256 = the new leaf"
	assert_eq "generated" "$(jget staged.origin "$T/gen.json")" "$kt: reply's origin is generated"

	# -- subject: CN=<name> CA <YYYY-MM-DD> (UTC date of the generation)
	subj=$(fact ca subject)
	today0=$(date -u -d "@$t0" +%Y-%m-%d)
	today1=$(date -u -d "@$t1" +%Y-%m-%d)
	case ",$subj," in
	*",CN=$name CA $today0,"* | *",CN=$name CA $today1,"*) ok "$kt: CA subject has CN=$name CA $today1 ($subj)" ;;
	*) fail "$kt: CA subject has CN=$name CA <today>" "expected: CN=$name CA $today1" "got: $subj" ;;
	esac
	if grep -Fxq -- "$subj" "$SUBJECTS"; then
		fail "$kt: the CA subject is unique to this generation (carotated(8) STAGING AND THE TRUST BUNDLE)" "seen before: $subj"
	fi
	echo "$subj" >>"$SUBJECTS"
	ok "$kt: the CA subject differs from every earlier generation's"
	assert_eq "$subj" "$(fact ca issuer)" "$kt: the CA is self-issued"
	assert_eq "$subj" "$(fact leaf issuer)" "$kt: server issuer = CA subject"
	case ",$(fact leaf subject)," in
	*",CN=$san_host,"*) ok "$kt: server CN is the first DNS name ($san_host)" ;;
	*) fail "$kt: server CN is the first DNS name" "expected CN=$san_host" "got: $(fact leaf subject)" ;;
	esac

	# -- signature and key
	want_sig='^(ecdsa-with-SHA256|sha256WithRSAEncryption)$'
	[ "$kt" = ec-p384 ] && want_sig='^ecdsa-with-SHA(256|384)$'
	case "$kt" in
	ec-p256) bits=256 curve='NIST CURVE: P-256' ;;
	ec-p384) bits=384 curve='NIST CURVE: P-384' ;;
	rsa-*) bits=${kt#rsa-} curve='Public Key Algorithm: rsaEncryption' ;;
	esac
	for c in ca leaf; do
		what=$c
		[ "$c" = leaf ] && what=server
		txt=$(facts_text "$c")
		sig=$(printf '%s\n' "$txt" | grep -m1 'Signature Algorithm:' | sed 's/.*: *//')
		assert_match "$want_sig" "$sig" "$kt: $what signature is $sig"
		assert_contains "Public-Key: ($bits bit)" "$txt" "$kt: $what key is $bits bits"
		assert_contains "$curve" "$txt" "$kt: $what key: $curve"
		if printf '%s\n' "$txt" | grep -A1 'Serial Number' | grep -qi negative; then
			fail "$kt: $what serial is positive" "$(printf '%s\n' "$txt" | grep -A1 'Serial Number')"
		fi
	done
	assert_eq "$kt" "$(jget staged.ca.key_type "$T/gen.json")" "$kt: reply's staged.ca.key_type"
	assert_eq "$kt" "$(jget staged.server.key_type "$T/gen.json")" "$kt: reply's staged.server.key_type"

	# -- serials: positive (above), about 128 random bits, distinct
	ca_serial=$(fact ca serial)
	srv_serial=$(fact leaf serial)
	assert_match '^[0-9A-F]{24,34}$' "$ca_serial" "$kt: CA serial is a long positive number ($ca_serial)"
	assert_match '^[0-9A-F]{24,34}$' "$srv_serial" "$kt: server serial is a long positive number ($srv_serial)"
	assert_ne "$ca_serial" "$srv_serial" "$kt: CA and server serials differ"
	printf '%s\n%s\n' "$ca_serial" "$srv_serial" >>"$SERIALS"

	# -- validity: notBefore 1 h in the past (within 5 min), lifetimes as asked (within 1 h)
	for c in ca leaf; do
		nb=$(to_epoch "$(fact "$c" notBefore)")
		within $((t0 - 3600 - 300)) $((t1 - 3600 + 300)) "$nb" "$kt: $c notBefore is 1 h before now"
	done
	na=$(to_epoch "$(fact ca notAfter)")
	within $((t0 + ca_days * 86400 - 3600 - 300)) $((t1 + ca_days * 86400 + 300)) "$na" \
		"$kt: CA notAfter is $ca_days days ahead"
	na=$(to_epoch "$(fact leaf notAfter)")
	within $((t0 + srv_days * 86400 - 3600 - 300)) $((t1 + srv_days * 86400 + 300)) "$na" \
		"$kt: server notAfter is $srv_days days ahead"

	# -- the CA key: in <state_dir>/ca-keys/<sha256 of the CA DER>.key, 0600, and nowhere else
	keyfile="$STATE_DIR/ca-keys/$ca_sha.key"
	[ -f "$keyfile" ] || fail "$kt: the CA key is in state_dir/ca-keys/<sha256>.key" \
		"missing: $keyfile" "have: $(ls -la "$STATE_DIR/ca-keys" 2>&1)"
	ok "$kt: the CA key is $keyfile"
	assert_eq 600 "$(stat -c %a "$keyfile")" "$kt: the CA key file is mode 0600"
	assert_eq 700 "$(stat -c %a "$STATE_DIR/ca-keys")" "$kt: state_dir/ca-keys is mode 0700"
	assert_eq "$(facts_pubkey ca)" "$(pubkey_of_key "$keyfile")" "$kt: the stored CA key matches new/ca.crt"
	facts_pubkey ca >"$T/capubs/$ca_sha.pem"
	assert_no_ca_key_in_ssl

	# -- the canary
	cmp -s "$new/server.crt" "$SSL_DIR/canary.crt" ||
		fail "$kt: canary.crt is byte-for-byte new/server.crt"
	ok "$kt: canary.crt is byte-for-byte new/server.crt"
	cmp -s "$new/server.key" "$SSL_DIR/canary.key" ||
		fail "$kt: canary.key is byte-for-byte new/server.key"
	ok "$kt: canary.key is byte-for-byte new/server.key"
	assert_eq 600 "$(stat -c %a "$SSL_DIR/canary.key")" "$kt: canary.key is mode 0600"
}

# generate_ok WHAT ARGS...: runs `ctl --json generate ARGS`, expects exit 0 and one reload;
# the JSON reply goes to $T/gen.json, the clock before and after to T0 / T1.
T0=0
T1=0
generate_ok() {
	local what=$1 before ms
	shift
	before=$(reload_count)
	T0=$(date +%s)
	ms=$(ms_now)
	run ctl --json generate "$@"
	ms=$(($(ms_now) - ms))
	T1=$(date +%s)
	if [ "$RC" != 0 ]; then
		fail "$what: generate exits 0" "command: carotatectl generate $*" "got exit code: $RC" \
			"stderr: $ERR"
	fi
	ok "$what: generate exits 0 (in $ms ms)"
	echo "$OUT" | jsave "$T/gen.json"
	assert_eq $((before + 1)) "$(reload_count)" "$what: the reload command ran once"
	assert_eq true "$(jget reload.ran "$T/gen.json")" "$what: reply says the reload ran"
	assert_eq true "$(jget reload.ok "$T/gen.json")" "$what: reply says the reload succeeded"
	assert_eq "[]" "$(jget staged.problems "$T/gen.json")" "$what: the staged set has no problems"
}

# check_staged_status ACTIVE_CA_SHA: status --json after a generate (ACTIVE_CA_SHA "" = none).
check_staged_status() {
	local active=$1 staged want n
	staged=$(jget staged.ca.sha256 "$T/gen.json")
	assert_exit 0 "status --json while staged" -- ctl --json status
	echo "$OUT" | jsave "$T/st.json"
	assert_eq staged "$(jget phase "$T/st.json")" "status: phase is staged"
	assert_eq generated "$(jget staged.origin "$T/st.json")" "status: staged.origin is generated"
	assert_eq "$staged" "$(jget staged.ca.sha256 "$T/st.json")" "status: staged.ca.sha256"
	assert_eq "$(jget staged.server.sha256 "$T/gen.json")" "$(jget staged.server.sha256 "$T/st.json")" \
		"status: staged.server.sha256"
	assert_eq "$(jget staged.server.not_after "$T/gen.json")" "$(jget staged.server.not_after "$T/st.json")" \
		"status: staged.server.not_after"
	assert_eq "$(fact ca subject)" "$(jget staged.ca.subject "$T/st.json")" "status: staged.ca.subject = openssl's"
	assert_eq true "$(jget bundle.published "$T/st.json")" "status: bundle.published"
	if [ -n "$active" ]; then
		want=$(printf '%s\n%s\n' "$active" "$staged" | LC_ALL=C sort)
		n=2
		assert_eq "$(printf 'active=%s\nstaged=%s\n' "$active" "$staged" | LC_ALL=C sort)" "$(bundle_roles "$T/st.json")" \
			"status: bundle.members are the active and the staged CA, with their roles"
	else
		want=$staged
		n=1
		assert_eq "staged=$staged" "$(bundle_roles "$T/st.json")" "status: bundle.members is the staged CA"
	fi
	assert_eq "$want" "$(jlines bundle.cas "$T/st.json")" "status: bundle.cas = $n CA(s)"
	assert_eq "$want" "$(jlines bundle.cas "$T/gen.json")" "reply: bundle.cas = $n CA(s)"
	assert_eq "$n" "$(pem_count "$SSL_DIR/ca-bundle.pem")" "ca-bundle.pem holds exactly $n certificate(s)"
	assert_eq "$want" "$(pem_shas "$SSL_DIR/ca-bundle.pem")" "ca-bundle.pem holds exactly bundle.cas"
}

# discard_ok WHAT ACTIVE_CA_SHA ACTIVE_SERVER_CRT: discard, then check the SSL directory.
KEPT_ALL="$T/kept"
: >"$KEPT_ALL"
discard_ok() {
	local what=$1 active=$2 active_crt=$3 staged kept dir before
	staged=$(cert_der_sha256 "$SSL_DIR/new/ca.crt")
	snapshot_dir "$SSL_DIR/new" >"$T/new.snap"
	before=$(reload_count)
	assert_exit 0 "$what: discard exits 0" -- ctl --json discard
	echo "$OUT" | jsave "$T/discard.json"
	assert_eq $((before + 1)) "$(reload_count)" "$what: the reload command ran once for discard"
	kept=$(jget kept_as "$T/discard.json")
	case "$kept" in /*) dir=$kept ;; *) dir="$SSL_DIR/$kept" ;; esac
	assert_match '^discarded-[0-9]{8}-[0-9]{6}' "$(basename "$dir")" "$what: kept_as is discarded-YYYYMMDD-HHMMSS ($kept)"
	assert_eq "$SSL_DIR" "$(dirname "$dir")" "$what: kept_as is in the SSL directory"
	[ -d "$dir" ] || fail "$what: the kept_as directory exists" "missing: $dir"
	ok "$what: $dir exists"
	assert_eq 700 "$(stat -c %a "$dir")" "$what: $kept is mode 0700 (it holds a key)"
	if grep -Fxq -- "$dir" "$KEPT_ALL"; then
		fail "$what: each discard keeps its own directory" "reused: $dir"
	fi
	echo "$dir" >>"$KEPT_ALL"
	assert_eq "$(cat "$T/new.snap")" "$(snapshot_dir "$dir")" "$what: the discarded set is in $kept, unchanged"
	[ ! -e "$SSL_DIR/new" ] || fail "$what: new/ is gone after discard"
	ok "$what: new/ is gone"
	assert_exit 0 "$what: status --json after discard" -- ctl --json status
	echo "$OUT" | jsave "$T/st.json"
	assert_eq steady "$(jget phase "$T/st.json")" "$what: phase back to steady"
	assert_eq null "$(jget staged "$T/st.json")" "$what: staged is null"
	if [ -n "$active" ]; then
		assert_eq "$active" "$(jlines bundle.cas "$T/st.json")" "$what: bundle.cas back to the active CA"
		assert_eq "$active" "$(pem_shas "$SSL_DIR/ca-bundle.pem")" "$what: ca-bundle.pem back to the active CA"
		assert_eq "$(cert_der_sha256 "$active_crt")" "$(cert_der_sha256 "$SSL_DIR/canary.crt")" \
			"$what: canary.crt back to the active server certificate"
		assert_eq "$(openssl x509 -in "$active_crt" -noout -pubkey)" "$(pubkey_of_key "$SSL_DIR/canary.key")" \
			"$what: canary.key back to the active server key"
	else
		case "$(jget bundle "$T/st.json")" in
		null | *'"cas":[]'*) ok "$what: no CA in the bundle with no active set" ;;
		*) fail "$what: no CA in the bundle with no active set" "got: $(jget bundle "$T/st.json")" ;;
		esac
		if [ -f "$SSL_DIR/ca-bundle.pem" ] && pem_shas "$SSL_DIR/ca-bundle.pem" | grep -Fxq -- "$staged"; then
			fail "$what: ca-bundle.pem no longer holds the discarded CA"
		fi
		ok "$what: ca-bundle.pem no longer holds the discarded CA"
	fi
	assert_no_ca_key_in_ssl
}

# ---------------------------------------------------------------- a fresh proxy: no active set

write_gen_config
start_daemon
assert_eq steady "$(ctl --json status | json_get phase)" "fresh proxy: phase steady"
generate_ok "no active set, defaults"
check_generated ec-p256 3650 397 carotate "$T0" "$T1" DNS:proxy.test IP:127.0.0.1
check_staged_status ""
assert_eq null "$(ctl --json status | json_get active)" "no active set: active is still null"
discard_ok "no active set" "" ""
stop_daemon
assert_eq 0 "$DAEMON_STATUS" "daemon exits 0 on SIGTERM"

# ---------------------------------------------------------------- an active set
make_active_set
ACTIVE_CA=$(cert_der_sha256 "$SSL_DIR/ca.crt")
ACTIVE_CRT="$SSL_DIR/server.crt"
start_daemon
assert_exit 0 "status --json with an active set" -- ctl --json status
assert_eq steady "$(echo "$OUT" | json_get phase)" "phase steady with an active set"

# Bad options change nothing: refused by carotatectl or by the daemon, exit 5.
snapshot_disk >"$T/snap.before"
reloads=$(reload_count)
# bad_generate PHRASE WHAT ARGS...
bad_generate() {
	local phrase=$1 what=$2
	shift 2
	assert_exit 5 "generate $what: exit 5" -- ctl generate "$@"
	assert_contains "$phrase" "$ERR" "generate $what: the message names the problem ($ERR)"
	assert_unchanged "$T/snap.before" "generate $what"
	assert_eq "$reloads" "$(reload_count)" "generate $what: no reload"
	assert_daemon_alive "after generate $what"
}
bad_generate "dsa" "--key-type dsa" --key-type dsa
bad_generate "foo" "--san foo" --san foo
bad_generate "-bad-" "--san DNS:-bad-" --san DNS:-bad-
bad_generate "999.1.1.1" "--san IP:999.1.1.1" --san IP:999.1.1.1
bad_generate "outlive" "--ca-days 10 --server-days 20" --ca-days 10 --server-days 20
bad_generate "name" "--name 'x,O=evil' (no RDN injection)" --name 'x,O=evil'
bad_generate "name" "--name 'x/CN=evil'" --name 'x/CN=evil'
# The daemon's own checks, without carotatectl's.
# raw_generate PHRASE WHAT FIELD=VALUE...
raw_generate() {
	local phrase=$1 what=$2 st msg
	shift 2
	run rawreq generate "$@"
	[ "$RC" -eq 0 ] || fail "raw generate $what: the daemon answers" "stderr: $ERR"
	st=${OUT%% *}
	msg=${OUT#* }
	assert_eq 1 "$st" "raw generate $what: the daemon says INVALID_ARGUMENT ($msg)"
	assert_contains "$phrase" "$msg" "raw generate $what: the message names the problem"
	assert_unchanged "$T/snap.before" "raw generate $what"
	assert_eq "generate INVALID_ARGUMENT" "$(last_audit)" \
		"raw generate $what: the refusal is in the audit log"
	assert_eq "$reloads" "$(reload_count)" "raw generate $what: no reload"
}
raw_generate "key type" "key_type=dsa" key_type=dsa
raw_generate "foo" "san=foo" san=foo
raw_generate "DNS:" "san=DNS: (empty name)" san=DNS:
raw_generate "outlive" "ca_days=10 server_days=20" ca_days=10 server_days=20
raw_generate "name" "name=a,O=b" "name=a,O=b"
assert_daemon_alive "after the bad generate options"

# Every key type: generate, check, discard.
for kt in ec-p256 ec-p384 rsa-2048 rsa-3072 rsa-4096; do
	echo "-- $kt"
	generate_ok "$kt" --key-type "$kt"
	check_generated "$kt" 3650 397 carotate "$T0" "$T1" DNS:proxy.test IP:127.0.0.1
	check_staged_status "$ACTIVE_CA"
	if [ "$kt" = ec-p256 ]; then
		# generate (or a bad generate) while staged: precondition, nothing changes.
		snapshot_disk >"$T/snap.staged"
		r=$(reload_count)
		assert_exit 3 "generate while staged: exit 3" -- ctl generate
		assert_contains "already staged" "$ERR" "generate while staged: says 'already staged'"
		assert_exit 3 "generate --key-type rsa-2048 while staged: exit 3" -- ctl generate --key-type rsa-2048
		assert_unchanged "$T/snap.staged" "generate while staged"
		assert_eq "generate FAILED_PRECONDITION" "$(last_audit)" \
			"generate while staged: the refusal is in the audit log"
		assert_eq "$r" "$(reload_count)" "generate while staged: no reload"
	fi
	discard_ok "$kt" "$ACTIVE_CA" "$ACTIVE_CRT"
done

# Custom lifetimes, name and SANs, in one generation.
echo "-- --ca-days 400 --server-days 30 --name Ops --san DNS:other.test --san IP:10.0.0.1"
generate_ok "custom options" --ca-days 400 --server-days 30 --name Ops --san DNS:other.test --san IP:10.0.0.1
check_generated ec-p256 400 30 Ops "$T0" "$T1" DNS:other.test IP:10.0.0.1
assert_contains "CN=Ops CA " "$(json_get staged.ca.subject "$T/gen.json")" "reply's staged.ca.subject has CN=Ops CA"
if cert_sans "$SSL_DIR/new/server.crt" | grep -Eq 'proxy.test|127.0.0.1'; then
	fail "--san replaces the configured names" "got: $(cert_sans "$SSL_DIR/new/server.crt")"
fi
ok "--san replaces the configured names"
check_staged_status "$ACTIVE_CA"
discard_ok "custom options" "$ACTIVE_CA" "$ACTIVE_CRT"

# Discard with nothing staged: precondition, nothing changes.
snapshot_disk >"$T/snap.before"
r=$(reload_count)
assert_exit 3 "discard with nothing staged: exit 3" -- ctl discard
assert_contains "staged" "$ERR" "discard with nothing staged: the message says so ($ERR)"
assert_exit 3 "discard --json with nothing staged: exit 3" -- ctl --json discard
assert_unchanged "$T/snap.before" "discard with nothing staged"
assert_eq "discard FAILED_PRECONDITION" "$(last_audit)" \
	"discard with nothing staged: the refusal is in the audit log"
assert_eq "$r" "$(reload_count)" "discard with nothing staged: no reload"

# Discards within the same second each keep their own directory.
for i in 1 2 3; do
	assert_exit 0 "rapid round $i: generate" -- ctl generate
	assert_exit 0 "rapid round $i: discard" -- ctl --json discard
	kept=$(echo "$OUT" | json_get kept_as)
	case "$kept" in /*) ;; *) kept="$SSL_DIR/$kept" ;; esac
	if [ ! -f "$kept/ca.crt" ] || [ ! -f "$kept/server.key" ]; then
		fail "rapid round $i: $kept holds the discarded set" "$(ls -la "$kept" 2>&1)"
	fi
	if grep -Fxq -- "$kept" "$KEPT_ALL"; then
		fail "rapid round $i: each discard keeps its own directory" "reused: $kept"
	fi
	echo "$kept" >>"$KEPT_ALL"
	ok "rapid round $i: kept as $(basename "$kept")"
done
assert_eq "$(wc -l <"$KEPT_ALL")" "$(find "$SSL_DIR" -maxdepth 1 -name 'discarded-*' -type d | wc -l)" \
	"one discarded-* directory per discard"

# Serials never repeat (CA and server, across every generation above).
dups=$(sort "$SERIALS" | uniq -d)
assert_eq "" "$dups" "no serial repeats across $(wc -l <"$SERIALS") certificates"

# Every generation above was discarded, and discard deletes its CA's private key (issue 14):
# no key of a set that can no longer go live is kept.
nkeys=$(find "$STATE_DIR/ca-keys" -name '*.key' | wc -l)
assert_eq 0 "$nkeys" "discard deleted the CA key of each of the 10 generations"
assert_daemon_alive "at the end"
