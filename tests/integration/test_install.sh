#!/bin/bash
# install: custom certificate sets from the operator's own PKI. Good sets (root + intermediate
# + leaf, the intermediate in --chain or after the leaf in --cert; a leaf close to expiry) are
# staged with origin "custom" and no CA key; then a corpus of bad inputs, each built here with
# the openssl CLI, is refused with exit 5 and a message naming the problem, leaving the SSL and
# state directories byte-for-byte unchanged. As root, a reader (socket group only) may not
# generate, install or discard (exit 4).
# shellcheck disable=SC2119 # helpers take optional arguments
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- users (root only)

READ_GROUP=carotate-t
ADMIN_GRP=carotate-t-admin
READER=carotate-treader
AUTHZ=0
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && command -v useradd >/dev/null; then
	AUTHZ=1
	t_group "$READ_GROUP" "$ADMIN_GRP"
	t_user "$READER" "$READ_GROUP"
	case " $(id -nG "$READER") " in
	*" $ADMIN_GRP "*) fail "$READER must not be in $ADMIN_GRP" "got: $(id -nG "$READER")" ;;
	esac
	SOCKET_GROUP=$READ_GROUP
	ADMIN_GROUP=$ADMIN_GRP
fi

t_init

# ---------------------------------------------------------------- local helpers

RELOAD_LOG="$T/reload.calls"
cat >"$T/reload.sh" <<EOF
#!/bin/sh
echo "reload \$\$" >>"$RELOAD_LOG"
EOF
chmod 0755 "$T/reload.sh"
reload_count() { if [ -f "$RELOAD_LOG" ]; then wc -l <"$RELOAD_LOG"; else echo 0; fi; }

pubkey_of_cert() { openssl x509 -in "$1" -noout -pubkey; }
pubkey_of_key() { openssl pkey -in "$1" -pubout 2>/dev/null; }
# The SHA-256 sums of a PEM file's certificates as a sorted JSON list.
pem_shas_json() {
	"$PY" -c '
import base64, hashlib, json, re, sys
t = open(sys.argv[1]).read()
l = sorted(hashlib.sha256(base64.b64decode("".join(m.split()))).hexdigest()
           for m in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", t, re.S))
print(json.dumps(l, separators=(",", ":")))' "$1"
}
json_sort() { "$PY" -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin)),separators=(",",":")))'; }
epoch_to_asn1() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }

# A raw install request, bypassing carotatectl: rawinstall FIELD=FILE... prints "STATUS MESSAGE".
cat >"$T/rawinstall.py" <<'EOF'
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

inner = b""
for a in sys.argv[2:]:
    k, v = a.split("=", 1)
    inner += ld({"ca": 1, "cert": 2, "key": 3, "chain": 4}[k], open(v, "rb").read())
body = varint(1 << 3) + varint(1) + ld(12, inner)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
s.sendall(struct.pack(">I", len(body)) + body)

def recv(n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            sys.exit("daemon closed the connection")
        buf += c
    return buf

def rd(buf, i):
    v, j = 0, 0
    while True:
        b = buf[i]; i += 1
        v |= (b & 0x7F) << (7 * j); j += 1
        if not b & 0x80:
            return v, i

(n,) = struct.unpack(">I", recv(4))
resp = recv(n)
status, message, i = 0, "", 0
while i < len(resp):
    key, i = rd(resp, i)
    if key & 7 == 0:
        v, i = rd(resp, i)
        if key >> 3 == 1:
            status = v
    elif key & 7 == 2:
        ln, i = rd(resp, i)
        if key >> 3 == 2:
            message = resp[i:i + ln].decode("utf-8", "replace")
        i += ln
    else:
        break
print("%d %s" % (status, message))
EOF
rawinstall() { "$PY" "$T/rawinstall.py" "$SOCK" "$@"; }

# ---------------------------------------------------------------- the corpus (openssl CLI)

C="$T/corpus"
mkdir -m 0755 "$C"
cat >"$C/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[root]
basicConstraints = critical, CA:TRUE, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:proxy.test, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:proxy.test, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:proxy.test, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_noeku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectAltName = DNS:proxy.test, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_dns_only]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:proxy.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_ip_only]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[srv_nosan]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ee_self]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
# For `openssl ca`, which alone sets arbitrary validity dates.
mkdir -m 0700 "$C/ca-db"
: >"$C/ca-db/index.txt"
cat >"$C/ca.cnf" <<EOF
[ca]
default_ca = tca
[tca]
database = $C/ca-db/index.txt
new_certs_dir = $C/ca-db
serial = $C/ca-db/serial
policy = pol
default_md = sha256
unique_subject = no
copy_extensions = none
email_in_dn = no
[pol]
commonName = optional
EOF
openssl rand -hex 16 >"$C/ca-db/serial"
# For OpenSSL builds that refuse to sign with SHA-1 or MD5 by default (see mkcert_weak).
cat >"$C/weak.cnf" <<'EOF'
openssl_conf = weak_init
[weak_init]
ssl_conf = weak_ssl
alg_section = weak_alg
[weak_ssl]
system_default = weak_sys
[weak_sys]
CipherString = DEFAULT@SECLEVEL=0
[weak_alg]
rh-allow-sha1-signatures = yes
EOF

# mkkey FILE TYPE: ec-p224|ec-p256|ec-p384|rsa-N|ed25519
mkkey() {
	case "$2" in
	ec-p224) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-224 -out "$1" ;;
	ec-p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
	ec-p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
	rsa-*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa-}" -out "$1" 2>/dev/null ;;
	ed25519) openssl genpkey -algorithm ED25519 -out "$1" ;;
	*) fail "mkkey: unknown key type $2" ;;
	esac
}
serial() { echo "0x$(openssl rand -hex 15)"; }

# mkroot NAME KEYTYPE [SECTION] [DIGEST]: self-signed C/NAME.crt, key C/NAME.key.
mkroot() {
	local n=$1 kt=$2 sect=${3:-root} md=${4:-sha256}
	mkkey "$C/$n.key" "$kt"
	openssl req -new -x509 -config "$C/ext.cnf" -extensions "$sect" -key "$C/$n.key" \
		-subj "/O=carotate tests/CN=$n $(date -u +%F)" -days 3650 "-$md" -set_serial "$(serial)" \
		-out "$C/$n.crt" 2>/dev/null
}

# mkcert NAME SIGNER KEYTYPE SECTION [DIGEST] [DAYS] [CN]: C/NAME.{key,csr,crt}, signed by
# C/SIGNER.{crt,key}.
mkcert() {
	local n=$1 signer=$2 kt=$3 sect=$4 md=${5:-sha256} days=${6:-397} cn=${7:-proxy.test}
	mkkey "$C/$n.key" "$kt"
	openssl req -new -config "$C/ext.cnf" -key "$C/$n.key" -subj "/CN=$cn" -out "$C/$n.csr" 2>/dev/null
	openssl x509 -req -in "$C/$n.csr" -CA "$C/$signer.crt" -CAkey "$C/$signer.key" \
		-set_serial "$(serial)" -days "$days" "-$md" -extfile "$C/ext.cnf" -extensions "$sect" \
		-out "$C/$n.crt" 2>/dev/null
}

# mkcert_weak NAME SIGNER KEYTYPE DIGEST ALGORITHM_TEXT: mkcert with a SHA-1 or MD5 signature.
# Some OpenSSL builds refuse to sign with them by default; retry with $C/weak.cnf, which
# allows it (security level 0; Red Hat's rh-allow-sha1-signatures). 1 when neither works.
mkcert_weak() {
	local n=$1 signer=$2 kt=$3 md=$4 alg=$5
	if (mkcert "$n" "$signer" "$kt" srv "$md") 2>/dev/null &&
		openssl x509 -in "$C/$n.crt" -noout -text | grep -q "Signature Algorithm: $alg"; then
		return 0
	fi
	(OPENSSL_CONF="$C/weak.cnf" mkcert "$n" "$signer" "$kt" srv "$md") 2>/dev/null &&
		openssl x509 -in "$C/$n.crt" -noout -text | grep -q "Signature Algorithm: $alg"
}

# mkcert_dated NAME SIGNER KEYTYPE SECTION NOT_BEFORE_EPOCH NOT_AFTER_EPOCH (openssl ca)
mkcert_dated() {
	local n=$1 signer=$2 kt=$3 sect=$4 nb=$5 na=$6
	mkkey "$C/$n.key" "$kt"
	openssl req -new -config "$C/ext.cnf" -key "$C/$n.key" -subj "/CN=proxy.test" -out "$C/$n.csr" 2>/dev/null
	openssl ca -batch -config "$C/ca.cnf" -cert "$C/$signer.crt" -keyfile "$C/$signer.key" \
		-in "$C/$n.csr" -out "$C/$n.crt" -notext -startdate "$(epoch_to_asn1 "$nb")" \
		-enddate "$(epoch_to_asn1 "$na")" -extfile "$C/ext.cnf" -extensions "$sect" 2>/dev/null ||
		fail "openssl ca could not make $n"
}

# corpus_fact WHAT CMD...: a check that the corpus file really is what its case claims.
corpus_fact() {
	local what=$1
	shift
	"$@" >/dev/null 2>&1 || fail "corpus: $what"
	ok "corpus: $what"
}
text_of() { openssl x509 -in "$1" -noout -text; }

build_start=$(date +%s)
now=$(date +%s)
# Roots and intermediates.
mkroot rb ec-p256                        # the root of the good sets and most bad ones
mkcert ib rb ec-p256 inter sha256 1825 "carotate tests intermediate"
mkroot ro ec-p256                        # another root (wrong CA)
mkroot rr rsa-2048                       # an RSA root, to sign with MD5
mkroot r1024 rsa-1024                    # a root with a 1024-bit key
mkroot eeself ec-p256 ee_self            # a self-signed end-entity certificate (CA:FALSE)
(mkcert ib_sha1 rb ec-p256 inter sha1 1825 "carotate tests intermediate sha1") 2>/dev/null ||
	(OPENSSL_CONF="$C/weak.cnf" mkcert ib_sha1 rb ec-p256 inter sha1 1825 "carotate tests intermediate sha1") 2>/dev/null ||
	HAVE_SHA1_INTER=0

# The good sets.
mkcert good_chain ib ec-p256 srv                 # leaf signed by the intermediate
mkcert good_rsa ib rsa-2048 srv                  # RSA-2048: the smallest RSA key allowed
cat "$C/good_rsa.crt" "$C/ib.crt" >"$C/good_rsa_fullchain.crt"
mkcert good_10d rb ec-p256 srv sha256 10          # 10 days left: accepted with a warning
corpus_fact "good_chain verifies (root + intermediate)" \
	openssl verify -x509_strict -purpose sslserver -verify_hostname proxy.test -verify_ip 127.0.0.1 \
	-CAfile "$C/rb.crt" -untrusted "$C/ib.crt" "$C/good_chain.crt"
corpus_fact "good_rsa verifies" openssl verify -x509_strict -purpose sslserver -CAfile "$C/rb.crt" \
	-untrusted "$C/ib.crt" "$C/good_rsa.crt"
corpus_fact "good_10d verifies" openssl verify -x509_strict -purpose sslserver -CAfile "$C/rb.crt" "$C/good_10d.crt"

# A baseline leaf (signed by rb directly) and its variants, each wrong in one respect.
mkcert base rb ec-p256 srv
corpus_fact "base verifies" openssl verify -x509_strict -purpose sslserver -verify_hostname proxy.test \
	-verify_ip 127.0.0.1 -CAfile "$C/rb.crt" "$C/base.crt"
mkcert_dated expired rb ec-p256 srv $((now - 400 * 86400)) $((now - 35 * 86400))
mkcert_dated notyet rb ec-p256 srv $((now + 30 * 86400)) $((now + 400 * 86400))
mkkey "$C/other.key" ec-p256                                # key mismatch
openssl pkey -in "$C/base.key" -pubout -out "$C/base.pub"   # a public key as --key
openssl pkey -in "$C/base.key" -aes256 -passout pass:x -out "$C/base.enc.key"
openssl pkey -in "$C/base.key" -aes256 -passout pass:x -traditional -out "$C/base.enc-trad.key"
mkcert rsa1024 rb rsa-1024 srv
mkcert p224 rb ec-p224 srv
mkcert ed25519 rb ed25519 srv
HAVE_SHA1=1 HAVE_SHA1_INTER=1 HAVE_MD5=1
mkcert_weak sha1 rb ec-p256 sha1 ecdsa-with-SHA1 || HAVE_SHA1=0
mkcert_weak md5 rr rsa-2048 md5 md5WithRSAEncryption || HAVE_MD5=0
mkcert leafca rb ec-p256 srv_ca
mkcert clientonly rb ec-p256 srv_client
mkcert noeku rb ec-p256 srv_noeku
mkcert dnsonly rb ec-p256 srv_dns_only
mkcert iponly rb ec-p256 srv_ip_only
mkcert cnonly rb ec-p256 srv_nosan
mkcert via_ib ib ec-p256 srv # a leaf that needs ib
cat "$C/ib.crt" "$C/via_ib.crt" >"$C/outoforder.crt"
mkcert wrongca ro ec-p256 srv
mkcert by1024 r1024 ec-p256 srv
mkcert byee eeself ec-p256 srv
[ "$HAVE_SHA1_INTER" -eq 0 ] || mkcert via_ib_sha1 ib_sha1 ec-p256 srv
cat "$C/rb.crt" "$C/ro.crt" >"$C/two-cas.crt"
{ cat "$C/rb.crt" && echo "this line is not PEM"; } >"$C/rb-trailing.crt"
: >"$C/empty.crt"
{ cat "$C/base.crt" && head -c 10485760 /dev/zero | tr '\0' 'A'; } >"$C/huge.crt"
{ cat "$C/base.crt" && head -c $((65536 - $(wc -c <"$C/base.crt") + 1)) /dev/zero | tr '\0' '#'; } >"$C/just-over-64k.crt"
openssl x509 -in "$C/base.crt" -outform DER -out "$C/base.der"
# NUL bytes in the middle of the PEM: after its third line.
{ head -n 3 "$C/base.crt" && printf '\0\0\0\0' && tail -n +4 "$C/base.crt"; } >"$C/nul.crt"
openssl rand -out "$C/random.bin" 4096
cp "$C/base.csr" "$C/base-csr.crt"
cat "$C/base.key" "$C/other.key" >"$C/two.key"
cat "$C/base.crt" "$C/base.key" >"$C/cert-and-key.crt"
# What operators' tools write, all acceptable: `openssl x509 -text` (text before the PEM) with
# CRLF line ends, and `openssl ecparam -genkey` style keys (EC PARAMETERS, then EC PRIVATE KEY).
openssl x509 -in "$C/base.crt" -text | sed 's/$/\r/' >"$C/base-text-crlf.crt"
{ openssl ecparam -name prime256v1 && openssl pkey -in "$C/base.key" -traditional; } >"$C/base-ecparam.key"
# The active CA (make_active_set below) signs a fresh leaf: "the new CA is the active one".

# Facts about the corpus, so that each case tests what it claims.
corpus_fact "expired is expired" sh -c "! openssl x509 -in '$C/expired.crt' -noout -checkend 0"
corpus_fact "notyet is not yet valid" sh -c "[ \$(date -u -d \"\$(openssl x509 -in '$C/notyet.crt' -noout -startdate | cut -d= -f2)\" +%s) -gt $now ]"
corpus_fact "base.enc.key is an encrypted PKCS#8 key" grep -q 'BEGIN ENCRYPTED PRIVATE KEY' "$C/base.enc.key"
corpus_fact "base.enc-trad.key is an encrypted traditional key" grep -q 'Proc-Type: 4,ENCRYPTED' "$C/base.enc-trad.key"
# SHA-1 must be tested; MD5 may be skipped (with a note) where openssl cannot sign with it.
[ "$HAVE_SHA1" -eq 1 ] || fail "corpus: openssl cannot sign a certificate with SHA-1, even at security level 0"
corpus_fact "sha1 is signed with ecdsa-with-SHA1" sh -c "openssl x509 -in '$C/sha1.crt' -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA1'"
if [ "$HAVE_MD5" -eq 1 ]; then
	corpus_fact "md5 is signed with md5WithRSAEncryption" sh -c "openssl x509 -in '$C/md5.crt' -noout -text | grep -q 'Signature Algorithm: md5WithRSAEncryption'"
fi
if [ "$HAVE_SHA1_INTER" -eq 1 ]; then
	corpus_fact "ib_sha1 is signed with ecdsa-with-SHA1" sh -c "openssl x509 -in '$C/ib_sha1.crt' -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA1'"
fi
corpus_fact "rsa1024 has a 1024-bit key" sh -c "openssl x509 -in '$C/rsa1024.crt' -noout -text | grep -q 'Public-Key: (1024 bit)'"
corpus_fact "r1024 has a 1024-bit key" sh -c "openssl x509 -in '$C/r1024.crt' -noout -text | grep -q 'Public-Key: (1024 bit)'"
corpus_fact "p224 has a P-224 key" sh -c "openssl x509 -in '$C/p224.crt' -noout -text | grep -q 'NIST CURVE: P-224'"
corpus_fact "ed25519 has an ED25519 key" sh -c "openssl x509 -in '$C/ed25519.crt' -noout -text | grep -q 'ED25519'"
corpus_fact "cnonly has no SAN" sh -c "! openssl x509 -in '$C/cnonly.crt' -noout -text | grep -q 'Subject Alternative Name'"
corpus_fact "via_ib is issued by ib" sh -c "openssl verify -CAfile '$C/rb.crt' -untrusted '$C/ib.crt' '$C/via_ib.crt'"
corpus_fact "base-ecparam.key has EC PARAMETERS and an EC PRIVATE KEY" sh -c "grep -q 'BEGIN EC PARAMETERS' '$C/base-ecparam.key' && grep -q 'BEGIN EC PRIVATE KEY' '$C/base-ecparam.key'"
corpus_fact "huge.crt is over 10 MB" sh -c "[ \$(wc -c <'$C/huge.crt') -ge 10485760 ]"
corpus_fact "just-over-64k.crt is 65537 bytes" sh -c "[ \$(wc -c <'$C/just-over-64k.crt') -eq 65537 ]"
corpus_fact "nul.crt holds NUL bytes" sh -c "[ \$(tr -cd '\\000' <'$C/nul.crt' | wc -c) -eq 4 ]"
ok "corpus built in $(($(date +%s) - build_start)) s"

# ---------------------------------------------------------------- the daemon

make_active_set
ACTIVE_CA=$(cert_der_sha256 "$SSL_DIR/ca.crt")
cp "$PKI_DIR/active/ca.crt" "$C/active.crt"
cp "$PKI_DIR/active/ca.key" "$C/active.key"
mkcert fromactive active ec-p256 srv
write_config
sed -i "s|^reload = .*|reload = $T/reload.sh|" "$CONF"
start_daemon

# install_good WHAT LEAF_CRT LEAF_KEY CERT_FILE CA_FILE [--chain FILE]
install_good() {
	local what=$1 leaf=$2 key=$3 certf=$4 caf=$5 before new="$SSL_DIR/new" ca_sha stray want probs
	shift 5
	before=$(reload_count)
	assert_exit 0 "$what: install exits 0" -- ctl --json install --ca "$caf" --cert "$certf" --key "$key" "$@"
	echo "$OUT" >"$T/inst.json"
	INSTALL_ERR=$ERR
	assert_eq $((before + 1)) "$(reload_count)" "$what: the reload command ran once"
	ca_sha=$(cert_der_sha256 "$caf")
	assert_eq custom "$(json_get staged.origin "$T/inst.json")" "$what: reply's origin is custom"
	assert_eq "$ca_sha" "$(json_get staged.ca.sha256 "$T/inst.json")" "$what: reply's staged.ca.sha256 = --ca"
	assert_eq "$(cert_der_sha256 "$leaf")" "$(json_get staged.server.sha256 "$T/inst.json")" \
		"$what: reply's staged.server.sha256 = the leaf"
	# A wrong "problems" list is reported at the end, so that the corpus still runs.
	probs=$(json_get staged.problems "$T/inst.json")
	if [ "$probs" = "[]" ]; then
		ok "$what: the staged set has no problems"
	else
		DEFERRED="$DEFERRED
  $what: the reply's staged.problems should be [] for a sound set, got: $probs"
	fi
	assert_eq "$ca_sha" "$(cert_der_sha256 "$new/ca.crt")" "$what: new/ca.crt is the supplied CA"
	assert_eq 1 "$(pem_count "$new/ca.crt")" "$what: new/ca.crt holds one certificate"
	assert_eq "$(cert_der_sha256 "$leaf")" "$(cert_der_sha256 "$new/server.crt")" \
		"$what: new/server.crt starts with the leaf"
	assert_exit 0 "$what: new/server.crt (leaf + chain) verifies against new/ca.crt" -- \
		openssl verify -x509_strict -purpose sslserver -verify_hostname proxy.test -verify_ip 127.0.0.1 \
		-CAfile "$new/ca.crt" -untrusted "$new/server.crt" "$leaf"
	assert_eq "$(pubkey_of_cert "$leaf")" "$(pubkey_of_key "$new/server.key")" "$what: new/server.key matches"
	assert_eq 600 "$(stat -c %a "$new/server.key")" "$what: new/server.key is mode 0600"
	assert_eq 700 "$(stat -c %a "$new")" "$what: new/ is mode 0700"
	grep -Eq '^origin[[:space:]]*=[[:space:]]*custom[[:space:]]*$' "$new/.carotate-set" ||
		fail "$what: .carotate-set says origin=custom" "got: $(cat "$new/.carotate-set" 2>&1)"
	ok "$what: .carotate-set says origin=custom"
	if [ -n "$(find "$STATE_DIR" -name '*.key' 2>/dev/null)" ]; then
		fail "$what: no CA key stored for a custom set" "got: $(find "$STATE_DIR" -name '*.key')"
	fi
	ok "$what: no CA key in the state directory"
	stray=$(find "$SSL_DIR" -name '*.key' ! -name server.key ! -name canary.key)
	assert_eq "" "$stray" "$what: no *.key but server.key/canary.key in the SSL directory"
	cmp -s "$new/server.crt" "$SSL_DIR/canary.crt" || fail "$what: canary.crt is new/server.crt"
	cmp -s "$new/server.key" "$SSL_DIR/canary.key" || fail "$what: canary.key is new/server.key"
	ok "$what: canary.crt/canary.key are the staged server certificate and key"
	want=$(printf '["%s","%s"]' "$ACTIVE_CA" "$ca_sha" | json_sort)
	assert_eq "$want" "$(pem_shas_json "$SSL_DIR/ca-bundle.pem")" "$what: ca-bundle.pem = active + staged CA"
	assert_exit 0 "$what: status --json" -- ctl --json status
	echo "$OUT" >"$T/st.json"
	assert_eq staged "$(json_get phase "$T/st.json")" "$what: phase is staged"
	assert_eq custom "$(json_get staged.origin "$T/st.json")" "$what: status says origin custom"
	assert_eq "$want" "$(json_get bundle.cas "$T/st.json" | json_sort)" "$what: bundle.cas = active + staged CA"
	assert_eq true "$(json_get bundle.published "$T/st.json")" "$what: bundle.published"
	probs=$(json_get staged.problems "$T/st.json")
	if [ "$probs" = "[]" ]; then
		ok "$what: status shows no problems for the staged set"
	else
		DEFERRED="$DEFERRED
  $what: status --json staged.problems should be [] for a sound set, got: $probs"
	fi
}
DEFERRED=""

discard_good() {
	assert_exit 0 "$1: discard exits 0" -- ctl --json discard
	[ ! -e "$SSL_DIR/new" ] || fail "$1: new/ is gone after discard"
	assert_eq "[\"$ACTIVE_CA\"]" "$(pem_shas_json "$SSL_DIR/ca-bundle.pem")" "$1: ca-bundle.pem back to the active CA"
	assert_eq steady "$(ctl --json status | json_get phase)" "$1: phase back to steady"
}

# ---- good sets
install_good "root + intermediate (--chain)" "$C/good_chain.crt" "$C/good_chain.key" \
	"$C/good_chain.crt" "$C/rb.crt" --chain "$C/ib.crt"
assert_eq 2 "$(pem_count "$SSL_DIR/new/server.crt")" "--chain: new/server.crt holds the leaf and the intermediate"
assert_eq "[]" "$(json_get warnings "$T/inst.json")" "--chain: no warnings for a 397-day leaf"

# While staged: install and generate are refused (precondition), nothing changes.
snapshot_disk >"$T/snap.staged"
assert_exit 3 "install while staged: exit 3" -- \
	ctl install --ca "$C/rb.crt" --cert "$C/good_10d.crt" --key "$C/good_10d.key"
assert_contains "already staged" "$ERR" "install while staged: says 'already staged'"
assert_exit 3 "generate while staged: exit 3" -- ctl generate
assert_unchanged "$T/snap.staged" "install/generate while staged"

# ---- authorization: a reader (socket group only) may not change anything
if [ "$AUTHZ" -eq 1 ]; then
	mkdir -m 0755 "$T/bin" "$T/pub"
	cp "$CAROTATECTL" "$T/bin/carotatectl"
	chmod 0755 "$T/bin/carotatectl"
	cp "$C/rb.crt" "$C/good_10d.crt" "$C/good_10d.key" "$T/pub/"
	chmod 0644 "$T/pub/"*
	as_reader() {
		setpriv --reuid="$(id -u "$READER")" --regid="$(id -g "$READER")" --init-groups \
			"$T/bin/carotatectl" --socket "$SOCK" "$@"
	}
	reloads=$(reload_count)
	assert_exit 0 "reader: status exits 0" -- as_reader status
	assert_exit 4 "reader: generate exits 4" -- as_reader generate
	assert_contains "permission denied" "$ERR" "reader: generate says permission denied"
	assert_exit 4 "reader: install exits 4" -- \
		as_reader install --ca "$T/pub/rb.crt" --cert "$T/pub/good_10d.crt" --key "$T/pub/good_10d.key"
	assert_contains "permission denied" "$ERR" "reader: install says permission denied"
	assert_exit 4 "reader: discard exits 4" -- as_reader discard
	assert_contains "permission denied" "$ERR" "reader: discard says permission denied"
	assert_exit 4 "reader: --json discard exits 4" -- as_reader --json discard
	assert_unchanged "$T/snap.staged" "reader"
	assert_eq "$reloads" "$(reload_count)" "reader: no reload"
	assert_eq staged "$(ctl --json status | json_get phase)" "reader: the staged set is still staged"
else
	echo "SKIPPED: authorization with a second user (needs root, setpriv and useradd)"
fi
discard_good "--chain"

install_good "RSA-2048 leaf + intermediate in --cert" "$C/good_rsa.crt" "$C/good_rsa.key" \
	"$C/good_rsa_fullchain.crt" "$C/rb.crt"
assert_eq 2 "$(pem_count "$SSL_DIR/new/server.crt")" "--cert with chain: new/server.crt holds the leaf and the intermediate"
assert_eq rsa-2048 "$(json_get staged.server.key_type "$T/inst.json")" "RSA-2048 leaf: key_type rsa-2048"
discard_good "--cert with chain"

install_good "a leaf with 10 days left" "$C/good_10d.crt" "$C/good_10d.key" "$C/good_10d.crt" "$C/rb.crt"
assert_match '(9|10) days' "$INSTALL_ERR" "10 days left: a warning on stderr names the days left ($INSTALL_ERR)"
assert_contains "warning" "$INSTALL_ERR" "10 days left: stderr says warning"
assert_match '(9|10) days' "$(json_get warnings "$T/inst.json")" "10 days left: the reply's warnings name the days left"
discard_good "10 days left"

install_good "text before the PEM, CRLF, EC PARAMETERS + traditional key" "$C/base.crt" \
	"$C/base-ecparam.key" "$C/base-text-crlf.crt" "$C/rb.crt"
assert_eq 1 "$(pem_count "$SSL_DIR/new/server.crt")" "operator formats: new/server.crt holds the leaf"
assert_exit 0 "operator formats: new/server.key is a key openssl reads" -- openssl pkey -in "$SSL_DIR/new/server.key" -noout
discard_good "operator formats"

# ---------------------------------------------------------------- the bad-input corpus

snapshot_disk >"$T/snap.before"
RELOADS=$(reload_count)
PROBLEMS=""
NCASES=0
SUMMARY="$T/summary"
: >"$SUMMARY"

# bad WHAT PHRASE_REGEX INSTALL_ARGS...: exit 5, a stderr message matching PHRASE_REGEX
# (extended, case-insensitive), no change on disk, no reload, daemon alive and answering.
# Mismatched messages are collected and reported together at the end.
bad() {
	local what=$1 phrase=$2 msg
	shift 2
	NCASES=$((NCASES + 1))
	run ctl install "$@"
	msg=$(printf '%s' "$ERR" | tr '\n' ' ')
	printf '%-34s exit %s: %s\n' "$what" "$RC" "$msg" >>"$SUMMARY"
	if [ "$RC" != 5 ]; then
		PROBLEMS="$PROBLEMS
  $what: expected exit 5, got $RC (stderr: $msg; stdout: $(printf '%s' "$OUT" | head -c 300))"
	else
		ok "$what: exit 5"
	fi
	if ! printf '%s' "$ERR" | grep -Eqi -- "$phrase"; then
		PROBLEMS="$PROBLEMS
  $what: message does not match /$phrase/: $msg"
	else
		ok "$what: the message names the problem: $msg"
	fi
	assert_unchanged "$T/snap.before" "$what"
	[ "$(last_audit)" = "install INVALID_ARGUMENT" ] ||
		fail "$what: the refusal is in the audit log" "newest record: $(last_audit)"
	[ "$(reload_count)" = "$RELOADS" ] || fail "$what: no reload" "reload calls: $(reload_count), before: $RELOADS"
	assert_daemon_alive "after: $what"
	socket_answers || fail "after $what: the daemon answers status"
	ok "after $what: status answers"
}

# Validity.
bad "expired" 'expired' --ca "$C/rb.crt" --cert "$C/expired.crt" --key "$C/expired.key"
bad "not yet valid" 'not (yet )?valid' --ca "$C/rb.crt" --cert "$C/notyet.crt" --key "$C/notyet.key"
# Keys.
bad "key mismatch" 'does not match' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/other.key"
bad "public key as --key" 'public key' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/base.pub"
bad "encrypted key (PKCS#8)" 'encrypted' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/base.enc.key"
bad "encrypted key (traditional)" 'encrypted' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/base.enc-trad.key"
bad "certificate as --key" 'private key' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/base.crt"
bad "two private keys in --key" 'more than one' --ca "$C/rb.crt" --cert "$C/base.crt" --key "$C/two.key"
bad "a private key in --cert" 'PRIVATE KEY' --ca "$C/rb.crt" --cert "$C/cert-and-key.crt" --key "$C/base.key"
bad "RSA-1024 leaf key" '1024' --ca "$C/rb.crt" --cert "$C/rsa1024.crt" --key "$C/rsa1024.key"
bad "P-224 leaf key" 'curve' --ca "$C/rb.crt" --cert "$C/p224.crt" --key "$C/p224.key"
bad "Ed25519 leaf key" 'ed25519' --ca "$C/rb.crt" --cert "$C/ed25519.crt" --key "$C/ed25519.key"
bad "RSA-1024 CA" '1024' --ca "$C/r1024.crt" --cert "$C/by1024.crt" --key "$C/by1024.key"
# Signatures.
bad "SHA-1 leaf signature" 'SHA-?1' --ca "$C/rb.crt" --cert "$C/sha1.crt" --key "$C/sha1.key"
if [ "$HAVE_SHA1_INTER" -eq 1 ]; then
	bad "SHA-1 intermediate signature" 'SHA-?1' --ca "$C/rb.crt" --cert "$C/via_ib_sha1.crt" \
		--key "$C/via_ib_sha1.key" --chain "$C/ib_sha1.crt"
else
	echo "SKIPPED case: SHA-1 intermediate signature (openssl here cannot sign a CA with SHA-1)"
fi
if [ "$HAVE_MD5" -eq 1 ]; then
	bad "MD5 leaf signature" 'MD5' --ca "$C/rr.crt" --cert "$C/md5.crt" --key "$C/md5.key"
else
	echo "SKIPPED case: MD5 leaf signature (openssl here cannot sign with MD5)"
fi
# The leaf's own extensions.
bad "leaf with CA:TRUE" 'CA:TRUE|is a CA' --ca "$C/rb.crt" --cert "$C/leafca.crt" --key "$C/leafca.key"
bad "leaf with clientAuth only" 'serverAuth' --ca "$C/rb.crt" --cert "$C/clientonly.crt" --key "$C/clientonly.key"
bad "leaf without extendedKeyUsage" 'serverAuth|extended ?key ?usage' --ca "$C/rb.crt" --cert "$C/noeku.crt" --key "$C/noeku.key"
bad "SAN lacks 127.0.0.1" '127\.0\.0\.1' --ca "$C/rb.crt" --cert "$C/dnsonly.crt" --key "$C/dnsonly.key"
bad "SAN lacks proxy.test" 'proxy\.test' --ca "$C/rb.crt" --cert "$C/iponly.crt" --key "$C/iponly.key"
bad "name only in CN (no SAN)" 'SAN|subjectAltName|subject alternative' --ca "$C/rb.crt" --cert "$C/cnonly.crt" --key "$C/cnonly.key"
# Chains.
bad "chain out of order (intermediate first)" 'first|leaf|order|is a CA' --ca "$C/rb.crt" \
	--cert "$C/outoforder.crt" --key "$C/via_ib.key"
bad "wrong CA" 'verif|issuer' --ca "$C/rb.crt" --cert "$C/wrongca.crt" --key "$C/wrongca.key"
bad "missing intermediate" 'verif|issuer' --ca "$C/rb.crt" --cert "$C/via_ib.crt" --key "$C/via_ib.key"
bad "CA is the active CA" 'already active' --ca "$C/active.crt" --cert "$C/fromactive.crt" --key "$C/fromactive.key"
bad "--ca without CA:TRUE (end-entity)" 'not a CA|CA:TRUE|invalid CA' --ca "$C/eeself.crt" \
	--cert "$C/byee.crt" --key "$C/byee.key"
bad "two certificates in --ca" 'one certificate|2 certificates|two certificates' --ca "$C/two-cas.crt" \
	--cert "$C/base.crt" --key "$C/base.key"
bad "private key as --ca" 'ca.*(no certificate|not a certificate|private key)' --ca "$C/rb.key" \
	--cert "$C/base.crt" --key "$C/base.key"
bad "chain file is a private key" 'chain' --ca "$C/rb.crt" --cert "$C/via_ib.crt" --key "$C/via_ib.key" \
	--chain "$C/ib.key"
# Encodings and sizes.
bad "trailing garbage after the PEM (--ca)" 'trailing|garbage|after the' --ca "$C/rb-trailing.crt" \
	--cert "$C/base.crt" --key "$C/base.key"
bad "empty --cert" 'empty' --ca "$C/rb.crt" --cert "$C/empty.crt" --key "$C/base.key"
bad "10 MB --cert (refused by carotatectl)" 'too large' --ca "$C/rb.crt" --cert "$C/huge.crt" --key "$C/base.key"
bad "65537-byte --cert (refused by carotatectl)" 'too large' --ca "$C/rb.crt" --cert "$C/just-over-64k.crt" --key "$C/base.key"
bad "missing --cert file" 'no such file' --ca "$C/rb.crt" --cert "$C/does-not-exist.crt" --key "$C/base.key"
bad "DER --cert" 'PEM' --ca "$C/rb.crt" --cert "$C/base.der" --key "$C/base.key"
bad "NUL bytes in the --cert PEM" 'NUL' --ca "$C/rb.crt" --cert "$C/nul.crt" --key "$C/base.key"
bad "CSR as --cert" 'request|CSR|not a certificate|no certificate' --ca "$C/rb.crt" --cert "$C/base-csr.crt" --key "$C/base.key"
bad "random bytes as --cert" 'PEM|NUL|no certificate' --ca "$C/rb.crt" --cert "$C/random.bin" --key "$C/base.key"

# The daemon's own size limit, without carotatectl's: 65537 bytes in one field.
run rawinstall ca="$C/rb.crt" cert="$C/just-over-64k.crt" key="$C/base.key"
[ "$RC" -eq 0 ] || fail "raw install of a 65537-byte field: the daemon answers" "stderr: $ERR"
NCASES=$((NCASES + 1))
printf '%-34s status %s\n' "raw 65537-byte cert field" "$OUT" >>"$SUMMARY"
assert_match '^1 ' "$OUT" "raw install of a 65537-byte field: INVALID_ARGUMENT ($OUT)"
assert_contains "too large" "$OUT" "raw install of a 65537-byte field: says too large"
assert_unchanged "$T/snap.before" "raw 65537-byte field"
# Empty fields, without carotatectl's check.
: >"$C/zero"
run rawinstall ca="$C/zero" cert="$C/base.crt" key="$C/base.key"
NCASES=$((NCASES + 1))
printf '%-34s status %s\n' "raw empty ca field" "$OUT" >>"$SUMMARY"
assert_match '^1 ' "$OUT" "raw install with an empty ca field: INVALID_ARGUMENT ($OUT)"
assert_unchanged "$T/snap.before" "raw empty ca field"

echo "-- corpus: $NCASES cases; the daemon's and carotatectl's answers:"
sed 's/^/   /' "$SUMMARY"
if [ -n "$PROBLEMS" ]; then
	fail "bad-input corpus: answers that do not name the problem" "${PROBLEMS#?}"
fi
ok "bad-input corpus: all $NCASES cases refused with a message naming the problem"
[ -z "$DEFERRED" ] || fail "good sets: wrong answers (see above)" "${DEFERRED#?}"

# The corpus left nothing behind, and a good set still installs afterwards.
install_good "after the corpus" "$C/base.crt" "$C/base.key" "$C/base.crt" "$C/rb.crt"
discard_good "after the corpus"
assert_daemon_alive "at the end"
