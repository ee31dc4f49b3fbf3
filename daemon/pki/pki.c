/*
 * Inspection of certificates: parsing, fingerprints, descriptions, chains and
 * the bundle id, and the helpers pki_gen.c (generation) and pki_custom.c
 * (custom-set validation) share. Certificates read here come from files an
 * operator or a previous run wrote; they are parsed, never trusted blindly.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "digest.h"
#include "log.h"
#include "pki.h"
#include "pki_int.h"
#include "xmalloc.h"

#define PKI_CACHE_SLOTS 16 /* distinct PEM files whose certificates stay parsed */

static int pki_verify_chain(X509 *, STACK_OF(X509) *, X509 *);
static void pki_chain_key(X509 *, STACK_OF(X509) *, X509 *, uint8_t[32]);
static void pki_sans(X509 *, Carotate__V1__CertInfo *);
static int pki_der_cmp(const void *, const void *);

static void pki_wipe_string(char *);
static char *pki_bio_take(BIO *);

/* Parses every certificate of a PEM buffer (at most PKI_MAX_CHAIN). */
static STACK_OF(X509) * pki_parse_pem(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *bio;
	X509 *x;

	if (certs == NULL || (bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		sk_X509_free(certs);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while (sk_X509_num(certs) < PKI_MAX_CHAIN &&
	       (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		sk_X509_push(certs, x);
	BIO_free(bio);
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		sk_X509_free(certs);
		snprintf(err, errlen, "no PEM certificate found");
		return NULL;
	}
	return certs;
}

/* A new stack holding new references to the certificates of src. */
static STACK_OF(X509) * pki_stack_ref(STACK_OF(X509) * src)
{
	STACK_OF(X509) *dst = sk_X509_new_null();
	int i;

	if (dst == NULL)
		fatalx("%s: out of memory", __func__);
	for (i = 0; i < sk_X509_num(src); i++) {
		X509_up_ref(sk_X509_value(src, i));
		sk_X509_push(dst, sk_X509_value(src, i));
	}
	return dst;
}

/*
 * Decoding a certificate is the expensive part of every status call (OpenSSL
 * 3 decodes the public key through its provider machinery), and the same few
 * files are read again and again: parsed certificates are cached by the
 * SHA-256 of the bytes they came from, so a changed file is never served stale.
 */
STACK_OF(X509) * pki_certs_from_pem(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	static struct {
		uint8_t key[32];
		STACK_OF(X509) * certs;
	} cache[PKI_CACHE_SLOTS];
	static unsigned next;
	STACK_OF(X509) * certs;
	uint8_t key[32];
	unsigned int n = 0;
	size_t i;

	if (EVP_Digest(buf, len, key, &n, EVP_sha256(), NULL) != 1 || n != sizeof(key))
		return pki_parse_pem(buf, len, err, errlen);
	for (i = 0; i < PKI_CACHE_SLOTS; i++)
		if (cache[i].certs != NULL && memcmp(cache[i].key, key, sizeof(key)) == 0)
			return pki_stack_ref(cache[i].certs);
	if ((certs = pki_parse_pem(buf, len, err, errlen)) == NULL)
		return NULL;
	i = next++ % PKI_CACHE_SLOTS;
	sk_X509_pop_free(cache[i].certs, X509_free);
	memcpy(cache[i].key, key, sizeof(key));
	cache[i].certs = pki_stack_ref(certs);
	return certs;
}

int
pki_init(void)
{
	uint64_t opts = OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_ADD_ALL_CIPHERS |
	                OPENSSL_INIT_ADD_ALL_DIGESTS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS;

	/* strftime(3) calls tzset(), which reads /etc/localtime unless it already has. */
	tzset();
	return OPENSSL_init_crypto(opts, NULL) == 1 ? 0 : -1;
}

void
pki_cert_sha256(X509 *x, char out[PKI_SHA256_HEX])
{
	digest_x509_sha256_hex(x, out);
}

int
pki_pem_sha256(const uint8_t *pem, size_t len, char out[PKI_SHA256_HEX], char *err, size_t errlen)
{
	STACK_OF(X509) * certs;

	if ((certs = pki_certs_from_pem(pem, len, err, errlen)) == NULL)
		return -1;
	pki_cert_sha256(sk_X509_value(certs, 0), out);
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

int
pki_cert_times(X509 *x, int64_t *not_before, int64_t *not_after)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1)
		return -1;
	*not_before = (int64_t)timegm(&tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return -1;
	*not_after = (int64_t)timegm(&tm);
	return 0;
}

const char *
pki_key_type(const EVP_PKEY *key)
{
	char group[64];
	int bits = EVP_PKEY_get_bits(key);

	if (EVP_PKEY_is_a(key, "RSA"))
		return bits == 2048   ? "rsa-2048"
		       : bits == 3072 ? "rsa-3072"
		       : bits == 4096 ? "rsa-4096"
		                      : "rsa";
	if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(
		        key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
			return "ec";
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			return "ec-p256";
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			return "ec-p384";
		if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
			return "ec-p521";
		return "ec";
	}
	if (EVP_PKEY_is_a(key, "ED25519"))
		return "ed25519";
	if (EVP_PKEY_is_a(key, "ED448"))
		return "ed448";
	return "unknown";
}

/* RFC 2253 form, heap string. */
char *
pki_name(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (bio == NULL)
		return xstrdup("");
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_get_mem_data(bio, &p);
	s = xstrndup(p, (size_t)(n > 0 ? n : 0));
	BIO_free(bio);
	return s;
}

/* DNS names and IP addresses only; other SAN kinds do not matter to a TLS client here. */
static void
pki_sans(X509 *x, Carotate__V1__CertInfo *info)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const GENERAL_NAME *gen;
	char buf[INET6_ADDRSTRLEN + 4];
	const unsigned char *ip;
	int i, n;

	if (gens == NULL)
		return;
	n = sk_GENERAL_NAME_num(gens);
	info->sans = xcalloc((size_t)n + 1, sizeof(char *));
	for (i = 0; i < n; i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_DNS) {
			xasprintf(&info->sans[info->n_sans++], "DNS:%.*s",
			    ASN1_STRING_length(gen->d.dNSName),
			    (const char *)ASN1_STRING_get0_data(gen->d.dNSName));
		} else if (gen->type == GEN_IPADD) {
			ip = ASN1_STRING_get0_data(gen->d.iPAddress);
			if (ASN1_STRING_length(gen->d.iPAddress) == 4)
				inet_ntop(AF_INET, ip, buf, sizeof(buf));
			else if (ASN1_STRING_length(gen->d.iPAddress) == 16)
				inet_ntop(AF_INET6, ip, buf, sizeof(buf));
			else
				continue;
			xasprintf(&info->sans[info->n_sans++], "IP:%s", buf);
		}
	}
	GENERAL_NAMES_free(gens);
}

void
pki_describe(X509 *x, Carotate__V1__CertInfo *info)
{
	char hex[PKI_SHA256_HEX];
	const ASN1_INTEGER *serial;
	BIGNUM *bn;
	char *s;

	info->subject = pki_name(X509_get_subject_name(x));
	info->issuer = pki_name(X509_get_issuer_name(x));
	pki_cert_sha256(x, hex);
	info->sha256 = xstrdup(hex);
	if (pki_cert_times(x, &info->not_before, &info->not_after) == -1)
		info->not_before = info->not_after = 0;
	info->key_type = xstrdup(pki_key_type(X509_get0_pubkey(x)));
	serial = X509_get0_serialNumber(x);
	if ((bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL && (s = BN_bn2hex(bn)) != NULL) {
		info->serial = xstrdup(s);
		OPENSSL_free(s);
	}
	BN_free(bn);
	pki_sans(x, info);
}

/* The SHA-256 over the DER digests of the certificates, in order: a key for caches. */
static void
pki_chain_key(X509 *leaf, STACK_OF(X509) * intermediates, X509 *ca, uint8_t key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n;
	int i;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("%s: SHA-256 unavailable", __func__);
	if (X509_digest(leaf, EVP_sha256(), md, &n) == 1)
		EVP_DigestUpdate(ctx, md, n);
	for (i = 0; i < sk_X509_num(intermediates); i++)
		if (X509_digest(sk_X509_value(intermediates, i), EVP_sha256(), md, &n) == 1)
			EVP_DigestUpdate(ctx, md, n);
	if (X509_digest(ca, EVP_sha256(), md, &n) == 1)
		EVP_DigestUpdate(ctx, md, n);
	EVP_DigestFinal_ex(ctx, key, NULL);
	EVP_MD_CTX_free(ctx);
}

/*
 * Signature checks cost most of a status call; the answer for a given chain
 * never changes, so the last few answers are remembered by the chain's digests.
 */
int
pki_chains_to(X509 *leaf, STACK_OF(X509) * intermediates, X509 *ca)
{
	static struct {
		uint8_t key[32];
		int valid, ok;
	} cache[PKI_CACHE_SLOTS];
	static unsigned next;
	uint8_t key[32];
	size_t i;
	int ok;

	pki_chain_key(leaf, intermediates, ca, key);
	for (i = 0; i < PKI_CACHE_SLOTS; i++)
		if (cache[i].valid && memcmp(cache[i].key, key, sizeof(key)) == 0)
			return cache[i].ok;
	ok = pki_verify_chain(leaf, intermediates, ca);
	i = next++ % PKI_CACHE_SLOTS;
	memcpy(cache[i].key, key, sizeof(key));
	cache[i].ok = ok;
	cache[i].valid = 1;
	return ok;
}

static int
pki_verify_chain(X509 *leaf, STACK_OF(X509) * intermediates, X509 *ca)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok = 0;

	/* Signatures and names only: expiry is reported on its own. */
	if (store != NULL && ctx != NULL && X509_STORE_add_cert(store, ca) == 1 &&
	    X509_STORE_CTX_init(ctx, store, leaf, intermediates) == 1) {
		X509_STORE_CTX_set_flags(
		    ctx, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
		ok = X509_verify_cert(ctx) == 1;
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

int
pki_issued_by(X509 *cert, X509 *ca)
{
	EVP_PKEY *key = X509_get0_pubkey(ca);

	if (key == NULL || X509_check_issued(ca, cert) != X509_V_OK)
		return 0;
	return X509_verify(cert, key) == 1;
}

struct pki_der {
	unsigned char *p;
	int len;
};

static int
pki_der_cmp(const void *a, const void *b)
{
	const struct pki_der *x = a, *y = b;
	int n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, (size_t)n);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

int
pki_bundle_id(X509 *const *cas, size_t n, char out[PKI_SHA256_HEX])
{
	struct pki_der *der = xcalloc(n > 0 ? n : 1, sizeof(*der));
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t i;
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (i = 0; ok && i < n; i++)
		ok = (der[i].len = i2d_X509(cas[i], &der[i].p)) > 0;
	if (ok)
		qsort(der, n, sizeof(*der), pki_der_cmp);
	for (i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(ctx, der[i].p, (size_t)der[i].len) == 1;
	ok = ok && digest_sha256_final_hex(ctx, out) == 0;
	for (i = 0; i < n; i++)
		OPENSSL_free(der[i].p);
	free(der);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

char *
pki_subject(X509 *x)
{
	return pki_name(X509_get_subject_name(x));
}

/* As errbuf_fail, then ": <OpenSSL reason>" when OpenSSL left one; empties the error queue. */
int
pki_ssl_fail(char *err, size_t errlen, const char *fmt, ...)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (reason != NULL)
		snprintf(err, errlen, "%s: %s", msg, reason);
	else
		snprintf(err, errlen, "%s", msg);
	ERR_clear_error();
	return -1;
}

/* Untrusted text made safe to quote: printable ASCII only, truncated. */
const char *
pki_show(const char *s, char buf[PKI_SHOW_MAX])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < PKI_SHOW_MAX - 1; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* An IPv4 or IPv6 literal into out (16 bytes); its length, or -1. */
int
pki_parse_ip(const char *s, unsigned char *out)
{
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	return -1;
}

/* Callers may leave now at 0 to mean the current time. */
time_t
pki_now(time_t now)
{
	return now != 0 ? now : time(NULL);
}

static void
pki_wipe_string(char *s)
{
	if (s != NULL)
		xfreezero(s, strlen(s) + 1);
}

/* A memory BIO's contents as a heap string; the BIO's copy is wiped, as it may hold a key. */
static char *
pki_bio_take(BIO *bio)
{
	char *p, *s;
	long n = BIO_get_mem_data(bio, &p);

	if (n <= 0)
		return NULL;
	s = xmalloc((size_t)n + 1);
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	OPENSSL_cleanse(p, (size_t)n);
	return s;
}

/* The first n certificates of xs as PEM, or NULL. */
char *
pki_pem_x509s(STACK_OF(X509) * xs, int n)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;
	int i, ok = bio != NULL;

	for (i = 0; ok && i < n; i++)
		ok = PEM_write_bio_X509(bio, sk_X509_value(xs, i)) == 1;
	if (ok)
		s = pki_bio_take(bio);
	BIO_free(bio);
	return s;
}

char *
pki_pem_x509(X509 *x)
{
	STACK_OF(X509) *one = sk_X509_new_null();
	char *s = NULL;

	if (one != NULL && sk_X509_push(one, x) > 0)
		s = pki_pem_x509s(one, 1);
	sk_X509_free(one);
	return s;
}

/* PKCS#8, unencrypted: the file nginx reads is protected by its mode, not a passphrase. */
char *
pki_pem_key(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_PKCS8PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1)
		s = pki_bio_take(bio);
	BIO_free(bio);
	return s;
}

void
pki_material_clear(struct pki_material *m)
{
	size_t i;

	if (m == NULL)
		return;
	pki_wipe_string(m->ca);
	pki_wipe_string(m->ca_key);
	pki_wipe_string(m->cert);
	pki_wipe_string(m->key);
	for (i = 0; i < m->n_warnings; i++)
		free(m->warnings[i]);
	free(m->warnings);
	memset(m, 0, sizeof(*m));
}
