/*
 * Validation of a custom certificate set (carotatectl(1) install) and of a set
 * read back from a backup: every field parsed strictly, then the checks of
 * pki_checks[] in the order an operator should hear about problems.
 */

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
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "errbuf.h"
#include "log.h"
#include "pki.h"
#include "pki_int.h"
#include "xmalloc.h"

#define PKI_DAY          86400
#define PKI_ESCAPE_MAX   (PKI_SHOW_MAX * 4 + 4) /* the same, each byte as \xHH, "..." */
#define PKI_LABEL_MAX    192
#define PKI_MIN_RSA_BITS 2048
#define PKI_MIN_SIG_BITS 112 /* SHA-1 signatures rate 63 bits, MD5 39 */

/* One field of a custom set, named as the operator knows it. */
struct pki_field {
	const char *name; /* "ca", "cert", "key", "chain" */
	const uint8_t *p;
	size_t len;
	int optional;
};

/* One PEM block as PEM_read_bio_ex returns it. */
struct pki_block {
	char *name;
	char *header;
	unsigned char *data;
	long len;
	int secure; /* key material: secure heap, wiped on free */
};

/* A custom set while it is checked; certificates and key are owned here. */
struct pki_cset {
	const struct pki_policy *policy;
	time_t now;
	X509 *ca;
	X509 *leaf;                 /* first certificate of the cert field */
	STACK_OF(X509) * certs;     /* the cert field */
	STACK_OF(X509) * chain;     /* the chain field, possibly empty */
	STACK_OF(X509) * untrusted; /* certs after the leaf, then chain; borrowed */
	EVP_PKEY *key;
	STACK_OF(X509) * path; /* leaf ... anchor, once verified */
	struct pki_material *out;
};

typedef int (*pki_check_fn)(struct pki_cset *, char *, size_t);
typedef int (*pki_issuer_fn)(X509 *, const char *, const char *, char *, size_t);

static void pki_warn(struct pki_material *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static const char *pki_escape(const ASN1_STRING *, char[PKI_ESCAPE_MAX]);
static int pki_ldh_name(const ASN1_STRING *);
static int pki_blank(const uint8_t *, size_t);
static int pki_check_field(const struct pki_field *, char *, size_t);
static int pki_armor_lines(const struct pki_field *);
static void pki_block_free(struct pki_block *);
static int pki_pem_next(
    const struct pki_field *, BIO *, int, int, struct pki_block *, char *, size_t);
static X509 *pki_block_x509(
    const struct pki_field *, const struct pki_block *, int, char *, size_t);
static int pki_read_certs(const struct pki_field *, STACK_OF(X509) **, char *, size_t);
static int pki_no_password(char *, int, int, void *);
static int pki_key_block(const struct pki_field *, const struct pki_block *, int *, char *, size_t);
static int pki_decode_key(const struct pki_field *, EVP_PKEY **, char *, size_t);
static int pki_read_key(const struct pki_field *, EVP_PKEY **, char *, size_t);
static int pki_parse_ca(const struct pki_field *, struct pki_cset *, char *, size_t);
static int pki_parse_set(const struct pki_custom *, struct pki_cset *, char *, size_t);
static void pki_cset_free(struct pki_cset *);
static unsigned char *pki_sign(EVP_PKEY *, const unsigned char *, size_t, size_t *);
static int pki_key_proven(EVP_PKEY *, EVP_PKEY *);
static int pki_key_belongs(EVP_PKEY *, X509 *);
static int pki_key_weak(EVP_PKEY *, char *, size_t);
static void pki_label(char *, const char *, int, X509 *);
static int pki_each_issuer(struct pki_cset *, pki_issuer_fn, char *, size_t);
static int pki_issuer_strength(X509 *, const char *, const char *, char *, size_t);
static int pki_sig_weak(X509 *);
static int pki_issuer_signature(X509 *, const char *, const char *, char *, size_t);
static int pki_period(struct pki_cset *, X509 *, const char *, const char *, char *, size_t);
static void pki_verify_error(X509_STORE_CTX *, X509 *, char *, size_t);
static int pki_check_name(X509 *, const char *, char *, size_t);
static void pki_warn_unused(struct pki_cset *);
static int pki_encode_set(struct pki_cset *, char *, size_t);
static int pki_check_key_match(struct pki_cset *, char *, size_t);
static int pki_check_strength(struct pki_cset *, char *, size_t);
static int pki_check_signatures(struct pki_cset *, char *, size_t);
static int pki_claims_self_signed(X509 *);
static int pki_check_ca(struct pki_cset *, char *, size_t);
static int pki_check_leaf(struct pki_cset *, char *, size_t);
static int pki_check_dns_chars(X509 *, const char *, char *, size_t);
static int pki_check_dns_names(struct pki_cset *, char *, size_t);
static int pki_check_validity(struct pki_cset *, char *, size_t);
static int pki_check_verify(struct pki_cset *, char *, size_t);
static int pki_check_names(struct pki_cset *, char *, size_t);
static int pki_check_active(struct pki_cset *, char *, size_t);

/* The checks of a custom set, in the order an operator should hear about problems. */
static const pki_check_fn pki_checks[] = {
	pki_check_key_match,
	pki_check_strength,
	pki_check_signatures,
	pki_check_ca,
	pki_check_leaf,
	pki_check_dns_names,
	pki_check_validity,
	pki_check_verify,
	pki_check_names,
	pki_check_active,
};

static void
pki_warn(struct pki_material *m, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = xstrdup("(warning lost: out of memory)");
	va_end(ap);
	m->warnings = xreallocarray(m->warnings, m->n_warnings + 1, sizeof(char *));
	m->warnings[m->n_warnings++] = s;
}

/*
 * Untrusted bytes quoted so that the operator sees each one: printable ASCII other than the
 * backslash as it is, the rest as \xHH; "..." after PKI_SHOW_MAX bytes.
 */
static const char *
pki_escape(const ASN1_STRING *a, char buf[PKI_ESCAPE_MAX])
{
	const unsigned char *p = ASN1_STRING_get0_data(a);
	int len = ASN1_STRING_length(a), i;
	size_t o = 0;

	for (i = 0; i < len && i < PKI_SHOW_MAX; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			buf[o++] = (char)p[i];
		else
			o += (size_t)snprintf(buf + o, PKI_ESCAPE_MAX - o, "\\x%02x", p[i]);
	}
	if (i < len)
		memcpy(buf + o, "...", 3), o += 3;
	buf[o] = '\0';
	return buf;
}

/* Letters, digits, hyphens and dots, after an optional leading "*."; never empty. */
static int
pki_ldh_name(const ASN1_STRING *a)
{
	const unsigned char *p = ASN1_STRING_get0_data(a);
	int len = ASN1_STRING_length(a), i = 0;

	if (len >= 2 && p[0] == '*' && p[1] == '.')
		i = 2;
	if (i >= len)
		return 0;
	for (; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		        (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '.'))
			return 0;
	return 1;
}

static int
pki_blank(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (strchr(" \t\r\n\v\f", p[i]) == NULL || p[i] == '\0')
			return 0;
	return 1;
}

/*
 * Size first, then emptiness, then the cheap signs of a file that is not PEM
 * text. DER starts with a SEQUENCE (0x30) and holds a NUL (every key and
 * certificate has a BIT STRING "03 xx 00") or a long-form length byte.
 */
static int
pki_check_field(const struct pki_field *f, char *err, size_t errlen)
{
	const uint8_t *nul;

	if (f->len > PKI_MAX_INPUT)
		return errbuf_fail(err, errlen, "%s: file too large (%zu bytes, limit %d)", f->name,
		    f->len, PKI_MAX_INPUT);
	if (f->len == 0 || pki_blank(f->p, f->len))
		return f->optional ? 0 : errbuf_fail(err, errlen, "%s: empty", f->name);
	nul = memchr(f->p, '\0', f->len);
	if (f->p[0] == 0x30 && (nul != NULL || (f->len >= 2 && f->p[1] >= 0x80)))
		return errbuf_fail(err, errlen,
		    "%s: not PEM (binary DER data; convert it with `%s`)", f->name,
		    strcmp(f->name, "key") == 0 ? "openssl pkey -inform DER"
		                                : "openssl x509 -inform DER");
	if (nul != NULL)
		return errbuf_fail(err, errlen, "%s: not PEM (a NUL byte at offset %zu)", f->name,
		    (size_t)(nul - f->p));
	if (memmem(f->p, f->len, "-----BEGIN ", 11) == NULL)
		return errbuf_fail(err, errlen, "%s: not PEM (no -----BEGIN line)", f->name);
	return 0;
}

/* Lines holding "-----": each PEM block has exactly two (BEGIN and END). */
static int
pki_armor_lines(const struct pki_field *f)
{
	const uint8_t *p = f->p, *end = f->p + f->len, *nl;
	int n = 0;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (memmem(p, (size_t)(nl - p), "-----", 5) != NULL)
			n++;
		p = nl + 1;
	}
	return n;
}

static void
pki_block_free(struct pki_block *b)
{
	if (b->secure) {
		OPENSSL_secure_clear_free(b->data, (size_t)b->len);
		OPENSSL_secure_free(b->name);
		OPENSSL_secure_free(b->header);
	} else {
		OPENSSL_free(b->data);
		OPENSSL_free(b->name);
		OPENSSL_free(b->header);
	}
	memset(b, 0, sizeof(*b));
}

/*
 * The next PEM block of f: 1 with b filled, 0 at the end, -1 (err filled) on
 * a malformed block or on anything but white space after the last block.
 * Text before a block is RFC 7468 explanatory text ("Bag Attributes" from
 * pkcs12) and is skipped, unless it holds a damaged armor line.
 */
static int
pki_pem_next(const struct pki_field *f, BIO *bio, int seen, int secure, struct pki_block *b,
    char *err, size_t errlen)
{
	size_t left = (size_t)BIO_pending(bio);
	unsigned int flags = PEM_FLAG_EAY_COMPATIBLE | (secure ? PEM_FLAG_SECURE : 0);
	unsigned long e;

	memset(b, 0, sizeof(*b));
	b->secure = secure;
	ERR_clear_error();
	if (PEM_read_bio_ex(bio, &b->name, &b->header, &b->data, &b->len, flags) == 1)
		return 1;
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		return pki_ssl_fail(
		    err, errlen, "%s: PEM block %d is malformed", f->name, seen + 1);
	ERR_clear_error();
	if (seen == 0)
		return errbuf_fail(
		    err, errlen, "%s: not PEM (no well-formed -----BEGIN line)", f->name);
	if (!pki_blank(f->p + f->len - left, left))
		return errbuf_fail(err, errlen,
		    "%s: unexpected data after the last PEM block (offset %zu)", f->name,
		    f->len - left);
	if (pki_armor_lines(f) != 2 * seen)
		return errbuf_fail(
		    err, errlen, "%s: a damaged PEM line (with -----) outside any block", f->name);
	return 0;
}

/* Strict: a CERTIFICATE block, no headers, DER that ends where the block ends. */
static X509 *
pki_block_x509(
    const struct pki_field *f, const struct pki_block *b, int n, char *err, size_t errlen)
{
	const unsigned char *p = b->data;
	char show[PKI_SHOW_MAX];
	X509 *x;

	if (strcmp(b->name, PEM_STRING_X509) != 0) {
		errbuf_fail(err, errlen,
		    "%s: unexpected PEM block \"%s\" (only CERTIFICATE blocks belong here)",
		    f->name, pki_show(b->name, show));
		return NULL;
	}
	if (b->header[0] != '\0') {
		errbuf_fail(err, errlen, "%s: certificate %d has PEM headers", f->name, n);
		return NULL;
	}
	if ((x = d2i_X509(NULL, &p, b->len)) == NULL) {
		pki_ssl_fail(
		    err, errlen, "%s: certificate %d is not a valid X.509 certificate", f->name, n);
		return NULL;
	}
	if (p != b->data + b->len) {
		X509_free(x);
		errbuf_fail(err, errlen,
		    "%s: certificate %d has trailing bytes inside its PEM block", f->name, n);
		return NULL;
	}
	return x;
}

/* Every certificate of f, in order, into *certsp (at least one, at most PKI_MAX_CHAIN). */
static int
pki_read_certs(const struct pki_field *f, STACK_OF(X509) * *certsp, char *err, size_t errlen)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(f->p, (int)f->len);
	struct pki_block b;
	X509 *x;
	int r = -1;

	if (certs == NULL || bio == NULL)
		pki_ssl_fail(err, errlen, "%s: out of memory", f->name);
	else
		while ((r = pki_pem_next(f, bio, sk_X509_num(certs), 0, &b, err, errlen)) == 1) {
			x = pki_block_x509(f, &b, sk_X509_num(certs) + 1, err, errlen);
			pki_block_free(&b);
			if (x == NULL || sk_X509_num(certs) == PKI_MAX_CHAIN) {
				X509_free(x);
				r = x == NULL
				        ? -1
				        : errbuf_fail(err, errlen, "%s: more than %d certificates",
				              f->name, PKI_MAX_CHAIN);
				break;
			}
			if (sk_X509_push(certs, x) <= 0) {
				X509_free(x);
				r = pki_ssl_fail(err, errlen, "%s: out of memory", f->name);
				break;
			}
		}
	BIO_free(bio);
	if (r == -1)
		sk_X509_pop_free(certs, X509_free);
	else
		*certsp = certs;
	return r;
}

/* Never prompt: an encrypted key is refused, not unlocked. */
static int
pki_no_password(char *buf, int size, int rwflag, void *u)
{
	*(int *)u = 1;
	return -1;
}

/* Sorts the blocks of the key field: one private key, optional EC PARAMETERS, nothing else. */
static int
pki_key_block(
    const struct pki_field *f, const struct pki_block *b, int *nkeys, char *err, size_t errlen)
{
	size_t n = strlen(b->name);
	char show[PKI_SHOW_MAX];

	if (strcmp(b->name, PEM_STRING_PKCS8) == 0 || strstr(b->header, "ENCRYPTED") != NULL)
		return errbuf_fail(err, errlen,
		    "%s: encrypted private keys are not supported; decrypt it first", f->name);
	if (n >= 10 && strcmp(b->name + n - 10, "PUBLIC KEY") == 0)
		return errbuf_fail(err, errlen, "%s: is a public key, not a private key", f->name);
	if (strcmp(b->name, PEM_STRING_ECPARAMETERS) == 0)
		return 0;
	if (n >= 11 && strcmp(b->name + n - 11, "PRIVATE KEY") == 0) {
		(*nkeys)++;
		return 0;
	}
	if (strcmp(b->name, PEM_STRING_X509) == 0)
		return errbuf_fail(
		    err, errlen, "%s: holds a certificate, not a private key", f->name);
	return errbuf_fail(err, errlen, "%s: unexpected PEM block \"%s\" (expected a private key)",
	    f->name, pki_show(b->name, show));
}

static int
pki_decode_key(const struct pki_field *f, EVP_PKEY **keyp, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(f->p, (int)f->len);
	int asked = 0;

	ERR_clear_error();
	*keyp = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, pki_no_password, &asked) : NULL;
	BIO_free(bio);
	if (*keyp != NULL)
		return 0;
	if (asked)
		return errbuf_fail(err, errlen,
		    "%s: encrypted private keys are not supported; decrypt it first", f->name);
	return pki_ssl_fail(err, errlen, "%s: cannot decode the private key", f->name);
}

static int
pki_read_key(const struct pki_field *f, EVP_PKEY **keyp, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(f->p, (int)f->len);
	struct pki_block b;
	int r, seen = 0, nkeys = 0;

	if (bio == NULL)
		return pki_ssl_fail(err, errlen, "%s: out of memory", f->name);
	while ((r = pki_pem_next(f, bio, seen, 1, &b, err, errlen)) == 1) {
		seen++;
		r = pki_key_block(f, &b, &nkeys, err, errlen);
		pki_block_free(&b);
		if (r == -1)
			break;
	}
	BIO_free(bio);
	if (r == -1)
		return -1;
	if (nkeys != 1)
		return errbuf_fail(err, errlen,
		    nkeys == 0 ? "%s: no private key found" : "%s: more than one private key",
		    f->name);
	return pki_decode_key(f, keyp, err, errlen);
}

static int
pki_parse_ca(const struct pki_field *f, struct pki_cset *s, char *err, size_t errlen)
{
	STACK_OF(X509) * cas;
	int n;

	if (pki_read_certs(f, &cas, err, errlen) == -1)
		return -1;
	if ((n = sk_X509_num(cas)) == 1)
		s->ca = sk_X509_pop(cas);
	sk_X509_pop_free(cas, X509_free);
	if (n != 1)
		return errbuf_fail(err, errlen,
		    "ca: contains %d certificates; expected exactly one "
		    "(intermediates belong in chain)",
		    n);
	return 0;
}

/* Every field read strictly; afterwards s owns the CA, the certificates and the key. */
static int
pki_parse_set(const struct pki_custom *c, struct pki_cset *s, char *err, size_t errlen)
{
	const struct pki_field f[] = {
		{ "ca", c->ca, c->ca_len, 0 },
		{ "cert", c->cert, c->cert_len, 0 },
		{ "key", c->key, c->key_len, 0 },
		{ "chain", c->chain, c->chain_len, 1 },
	};
	size_t i;
	int j;

	for (i = 0; i < PKI_NITEMS(f); i++)
		if (pki_check_field(&f[i], err, errlen) == -1)
			return -1;
	if (pki_parse_ca(&f[0], s, err, errlen) == -1 ||
	    pki_read_certs(&f[1], &s->certs, err, errlen) == -1)
		return -1;
	s->leaf = sk_X509_value(s->certs, 0);
	if (f[3].len == 0 || pki_blank(f[3].p, f[3].len))
		s->chain = sk_X509_new_null();
	else if (pki_read_certs(&f[3], &s->chain, err, errlen) == -1)
		return -1;
	if (s->chain == NULL || (s->untrusted = sk_X509_new_null()) == NULL)
		return pki_ssl_fail(err, errlen, "out of memory");
	for (j = 1; j < sk_X509_num(s->certs); j++)
		sk_X509_push(s->untrusted, sk_X509_value(s->certs, j));
	for (j = 0; j < sk_X509_num(s->chain); j++)
		sk_X509_push(s->untrusted, sk_X509_value(s->chain, j));
	return pki_read_key(&f[2], &s->key, err, errlen);
}

static void
pki_cset_free(struct pki_cset *s)
{
	X509_free(s->ca);
	sk_X509_pop_free(s->certs, X509_free);
	sk_X509_pop_free(s->chain, X509_free);
	sk_X509_free(s->untrusted);
	sk_X509_pop_free(s->path, X509_free);
	EVP_PKEY_free(s->key);
}

/* A signature by key over msg with its default digest (SHA-256 for RSA and EC); heap. */
static unsigned char *
pki_sign(EVP_PKEY *key, const unsigned char *msg, size_t len, size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *sig = NULL;

	if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, NULL, siglen, msg, len) == 1) {
		sig = xmalloc(*siglen);
		if (EVP_DigestSign(ctx, sig, siglen, msg, len) != 1) {
			free(sig);
			sig = NULL;
		}
	}
	EVP_MD_CTX_free(ctx);
	return sig;
}

/*
 * X509_check_private_key compares public halves only: prove the private half
 * too, with the key's own consistency checks and a sign-and-verify round trip.
 */
static int
pki_key_proven(EVP_PKEY *key, EVP_PKEY *pub)
{
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	EVP_MD_CTX *mctx = NULL;
	unsigned char msg[32], *sig = NULL;
	size_t siglen = 0;
	int r, ok = pctx != NULL;

	/* -2: no such check for this key type; the round trip still runs. */
	ok = ok && ((r = EVP_PKEY_private_check(pctx)) == 1 || r == -2);
	ok = ok && ((r = EVP_PKEY_pairwise_check(pctx)) == 1 || r == -2);
	ok = ok && RAND_bytes(msg, sizeof(msg)) == 1 &&
	     (sig = pki_sign(key, msg, sizeof(msg), &siglen)) != NULL;
	ok = ok && (mctx = EVP_MD_CTX_new()) != NULL &&
	     EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1 &&
	     EVP_DigestVerify(mctx, sig, siglen, msg, sizeof(msg)) == 1;
	free(sig);
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	return ok;
}

static int
pki_key_belongs(EVP_PKEY *key, X509 *x)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	int ok = pub != NULL && X509_check_private_key(x, key) == 1 && pki_key_proven(key, pub);

	ERR_clear_error();
	return ok;
}

/* 0 when key is strong enough (RSA >= 2048, EC P-256/P-384/P-521), else 1 with why. */
static int
pki_key_weak(EVP_PKEY *key, char *why, size_t n)
{
	const char *type;

	if (key == NULL)
		return snprintf(why, n, "public key unreadable or of an unsupported type"), 1;
	if (EVP_PKEY_is_a(key, "RSA")) {
		if (EVP_PKEY_get_bits(key) >= PKI_MIN_RSA_BITS)
			return 0;
		snprintf(why, n, "RSA key of %d bits is too weak (minimum %d)",
		    EVP_PKEY_get_bits(key), PKI_MIN_RSA_BITS);
		return 1;
	}
	type = pki_key_type(key);
	if (strcmp(type, "ec-p256") == 0 || strcmp(type, "ec-p384") == 0 ||
	    strcmp(type, "ec-p521") == 0)
		return 0;
	if (EVP_PKEY_is_a(key, "EC")) {
		char group[64] = "an unnamed curve";

		EVP_PKEY_get_utf8_string_param(
		    key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL);
		snprintf(why, n,
		    "EC keys on curve %s are not accepted (P-256, P-384 or P-521 only)", group);
	} else
		snprintf(why, n,
		    "%s keys are not accepted (RSA of %d bits or more, or EC P-256/P-384/P-521)",
		    EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key) : "such",
		    PKI_MIN_RSA_BITS);
	return 1;
}

/* "cert: certificate 2 (CN=Sub CA)": where an operator finds the certificate meant. */
static void
pki_label(char *buf, const char *field, int n, X509 *x)
{
	char *subject = pki_name(X509_get_subject_name(x));

	snprintf(buf, PKI_LABEL_MAX, "%s: certificate %d (%.100s)", field, n, subject);
	free(subject);
}

/* Runs fn on every intermediate, then on the CA, each labelled for messages. */
static int
pki_each_issuer(struct pki_cset *s, pki_issuer_fn fn, char *err, size_t errlen)
{
	char label[PKI_LABEL_MAX];
	int i;

	for (i = 1; i < sk_X509_num(s->certs); i++) {
		pki_label(label, "cert", i + 1, sk_X509_value(s->certs, i));
		if (fn(sk_X509_value(s->certs, i), label, label, err, errlen) == -1)
			return -1;
	}
	for (i = 0; i < sk_X509_num(s->chain); i++) {
		pki_label(label, "chain", i + 1, sk_X509_value(s->chain, i));
		if (fn(sk_X509_value(s->chain, i), label, label, err, errlen) == -1)
			return -1;
	}
	return fn(s->ca, "ca", "ca: the CA certificate", err, errlen);
}

static int
pki_issuer_strength(X509 *x, const char *field, const char *who, char *err, size_t errlen)
{
	char why[160];

	if (pki_key_weak(X509_get0_pubkey(x), why, sizeof(why)))
		return errbuf_fail(err, errlen, "%s: %s", field, why);
	return 0;
}

/* MD2, MD4, MD5, SHA-1 or anything else rated under 112 bits; unknown algorithms count as weak. */
static int
pki_sig_weak(X509 *x)
{
	int mdnid, pknid, secbits;
	uint32_t flags;

	if (OBJ_find_sigid_algs(X509_get_signature_nid(x), &mdnid, &pknid) == 1 &&
	    (mdnid == NID_md2 || mdnid == NID_md4 || mdnid == NID_md5 || mdnid == NID_md5_sha1 ||
	        mdnid == NID_sha1))
		return 1;
	if (X509_get_signature_info(x, &mdnid, &pknid, &secbits, &flags) != 1)
		return 1;
	return secbits < PKI_MIN_SIG_BITS;
}

static int
pki_issuer_signature(X509 *x, const char *field, const char *who, char *err, size_t errlen)
{
	if (pki_sig_weak(x))
		return errbuf_fail(err, errlen,
		    "%s is signed with %s; SHA-1 and MD5 signatures are refused", who,
		    OBJ_nid2ln(X509_get_signature_nid(x)));
	return 0;
}

static int
pki_check_key_match(struct pki_cset *s, char *err, size_t errlen)
{
	int i;

	if (pki_key_belongs(s->key, s->leaf))
		return 0;
	for (i = 1; i < sk_X509_num(s->certs); i++)
		if (pki_key_belongs(s->key, sk_X509_value(s->certs, i)))
			return errbuf_fail(err, errlen,
			    "cert: the first certificate is not the one the key belongs to "
			    "(the key belongs to certificate %d; the server certificate must "
			    "come first)",
			    i + 1);
	for (i = 0; i < sk_X509_num(s->chain); i++)
		if (pki_key_belongs(s->key, sk_X509_value(s->chain, i)))
			return errbuf_fail(err, errlen,
			    "cert: the first certificate is not the one the key belongs to "
			    "(the key belongs to certificate %d of chain)",
			    i + 1);
	if (pki_key_belongs(s->key, s->ca))
		return errbuf_fail(err, errlen,
		    "key: belongs to the CA certificate, not to the server certificate");
	return errbuf_fail(err, errlen,
	    "key: does not match the server certificate (the first certificate of cert)");
}

static int
pki_check_strength(struct pki_cset *s, char *err, size_t errlen)
{
	char why[160];

	if (pki_key_weak(s->key, why, sizeof(why)))
		return errbuf_fail(err, errlen, "key: %s", why);
	return pki_each_issuer(s, pki_issuer_strength, err, errlen);
}

static int
pki_check_signatures(struct pki_cset *s, char *err, size_t errlen)
{
	const char *who = "cert: the server certificate";

	if (pki_issuer_signature(s->leaf, "cert", who, err, errlen) == -1)
		return -1;
	return pki_each_issuer(s, pki_issuer_signature, err, errlen);
}

/* By its names or by its key identifiers (AKI = SKI), x says its own key signed it. */
static int
pki_claims_self_signed(X509 *x)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);

	if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0)
		return 1;
	return ski != NULL && aki != NULL && ASN1_OCTET_STRING_cmp(ski, aki) == 0;
}

/*
 * The supplied CA is the trust anchor agents will get: it must be a CA
 * (CA:TRUE, keyCertSign), self-signed or not. One that claims to be
 * self-signed must verify with its own key, or the file is damaged: OpenSSL
 * never checks an anchor's own signature.
 * XXX The signature of an anchor that is an intermediate cannot be checked
 * here, we do not have its issuer; a damaged issuer name goes unnoticed.
 */
static int
pki_check_ca(struct pki_cset *s, char *err, size_t errlen)
{
	uint32_t flags = X509_get_extension_flags(s->ca);

	if (flags & EXFLAG_INVALID)
		return errbuf_fail(err, errlen, "ca: has malformed or duplicate extensions");
	if (!(flags & EXFLAG_CA))
		return errbuf_fail(err, errlen,
		    "ca: is not a CA certificate (basicConstraints CA:TRUE is missing)");
	if (!(flags & EXFLAG_KUSAGE))
		return errbuf_fail(
		    err, errlen, "ca: has no keyUsage extension (keyCertSign is required)");
	if (!(X509_get_key_usage(s->ca) & KU_KEY_CERT_SIGN))
		return errbuf_fail(err, errlen, "ca: keyUsage lacks keyCertSign");
	if (pki_claims_self_signed(s->ca) && X509_verify(s->ca, X509_get0_pubkey(s->ca)) != 1) {
		ERR_clear_error();
		return errbuf_fail(err, errlen,
		    "ca: claims to be self-signed, but its signature does not verify with its own "
		    "key (a damaged file?)");
	}
	return 0;
}

static int
pki_check_leaf(struct pki_cset *s, char *err, size_t errlen)
{
	uint32_t flags = X509_get_extension_flags(s->leaf);

	if (flags & EXFLAG_INVALID)
		return errbuf_fail(err, errlen,
		    "cert: the server certificate has malformed or duplicate extensions");
	if (flags & EXFLAG_CA)
		return errbuf_fail(
		    err, errlen, "cert: the server certificate is a CA certificate (CA:TRUE)");
	if (!(flags & EXFLAG_XKUSAGE))
		return errbuf_fail(err, errlen,
		    "cert: the server certificate has no extendedKeyUsage "
		    "(serverAuth is required)");
	if (!(X509_get_extended_key_usage(s->leaf) & XKU_SSL_SERVER))
		return errbuf_fail(err, errlen,
		    "cert: the server certificate's extendedKeyUsage lacks serverAuth");
	return 0;
}

/*
 * XXX whoever made a custom set chose its dNSNames, and they end up on operators' terminals
 * (status, report, audit) and in nginx's view of the set: nothing but host-name text gets in,
 * so a byte like 0x9b (CSI) or a bidi override never reaches them from here.
 */
static int
pki_check_dns_chars(X509 *x, const char *field, char *err, size_t errlen)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	const GENERAL_NAME *gen;
	char show[PKI_ESCAPE_MAX];
	int i, rc = 0;

	for (i = 0; rc == 0 && i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type == GEN_DNS && !pki_ldh_name(gen->d.dNSName))
			rc = errbuf_fail(err, errlen,
			    "%s: subjectAltName DNS:%s is not a host name: only letters, digits, "
			    "hyphens and dots, and a leading *. for a wildcard",
			    field, pki_escape(gen->d.dNSName, show));
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The server certificate's names, and the CA's if it has any: both are shown by status. */
static int
pki_check_dns_names(struct pki_cset *s, char *err, size_t errlen)
{
	if (pki_check_dns_chars(s->leaf, "cert", err, errlen) == -1)
		return -1;
	return pki_check_dns_chars(s->ca, "ca", err, errlen);
}

/* Refuses a certificate outside its validity; warns when it ends within the warning window. */
static int
pki_period(struct pki_cset *s, X509 *x, const char *who, const char *what, char *err, size_t errlen)
{
	int64_t nb, na;
	time_t t;
	struct tm tm;
	char when[32];

	if (pki_cert_times(x, &nb, &na) == -1)
		return errbuf_fail(err, errlen, "%s has unreadable validity dates", who);
	t = (time_t)(s->now < nb ? nb : na);
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (s->now < nb)
		return errbuf_fail(err, errlen, "%s is not valid before %s", who, when);
	if (s->now > na)
		return errbuf_fail(err, errlen, "%s expired on %s", who, when);
	if (na - s->now < (int64_t)PKI_EXPIRY_WARNING_DAYS * PKI_DAY) {
		long long days = (long long)((na - s->now) / PKI_DAY);

		if (days == 0)
			pki_warn(s->out, "%s expires in less than a day (%s)", what, when);
		else
			pki_warn(s->out, "%s expires in %lld day%s (%.10s)", what, days,
			    days == 1 ? "" : "s", when);
	}
	return 0;
}

static int
pki_check_validity(struct pki_cset *s, char *err, size_t errlen)
{
	if (pki_period(s, s->leaf, "cert: the server certificate", "server certificate", err,
	        errlen) == -1)
		return -1;
	return pki_period(s, s->ca, "ca: the CA certificate", "CA certificate", err, errlen);
}

/* Names the file to fix: the CA itself, or the server certificate and its chain. */
static void
pki_verify_error(X509_STORE_CTX *ctx, X509 *ca, char *err, size_t errlen)
{
	int e = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *x = X509_STORE_CTX_get_current_cert(ctx);
	char *subject = x != NULL ? pki_name(X509_get_subject_name(x)) : xstrdup("?");
	char *issuer = x != NULL ? pki_name(X509_get_issuer_name(x)) : xstrdup("?");
	const char *what = x != NULL && X509_cmp(x, ca) == 0
	                       ? "ca: fails verification"
	                       : "cert: does not verify against the supplied CA";

	if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	    e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
		snprintf(err, errlen,
		    "%s: %s (depth %d, %.100s; its issuer %.100s is neither the supplied CA "
		    "nor one of the intermediates)",
		    what, X509_verify_cert_error_string(e), depth, subject, issuer);
	else
		snprintf(err, errlen, "%s: %s (depth %d, %.100s)", what,
		    X509_verify_cert_error_string(e), depth, subject);
	free(subject);
	free(issuer);
}

/*
 * X509_verify_cert as carotated(8) STAGING AND THE TRUST BUNDLE and PITFALLS ask: strict, auth
 * level 2 (no RSA < 2048, no SHA-1), purpose sslserver, at policy->now.
 * XXX PARTIAL_CHAIN trusts the supplied CA as an anchor even when it is an
 * intermediate: whatever its own issuer does (expiry, revocation) is not
 * looked at. Agents trust exactly this certificate, so that is what we check.
 */
static int
pki_check_verify(struct pki_cset *s, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int rc = -1;

	if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, s->ca) != 1 ||
	    X509_STORE_CTX_init(ctx, store, s->leaf, s->untrusted) != 1 ||
	    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER) != 1) {
		pki_ssl_fail(err, errlen, "cannot set up certificate verification");
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	X509_VERIFY_PARAM_set_time(param, s->now);
	if (X509_verify_cert(ctx) == 1 && (s->path = X509_STORE_CTX_get1_chain(ctx)) != NULL)
		rc = 0;
	else
		pki_verify_error(ctx, s->ca, err, errlen);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return rc;
}

/* SAN only: RFC 6125 clients ignore the CN once a SAN exists, and some ignore it always. */
static int
pki_check_name(X509 *leaf, const char *name, char *err, size_t errlen)
{
	const unsigned int flags =
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS;
	unsigned char ip[16];
	char show[PKI_SHOW_MAX];

	if (strncmp(name, "DNS:", 4) == 0)
		name += 4;
	else if (strncmp(name, "IP:", 3) == 0)
		name += 3;
	if (pki_parse_ip(name, ip) != -1) {
		if (X509_check_ip_asc(leaf, name, 0) == 1)
			return 0;
	} else if (X509_check_host(leaf, name, strlen(name), flags, NULL) == 1)
		return 0;
	else if (X509_check_host(
	             leaf, name, strlen(name), X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT, NULL) == 1)
		return errbuf_fail(err, errlen,
		    "cert: SAN does not cover %s (the CN alone does not count)",
		    pki_show(name, show));
	return errbuf_fail(err, errlen, "cert: SAN does not cover %s", pki_show(name, show));
}

static int
pki_check_names(struct pki_cset *s, char *err, size_t errlen)
{
	GENERAL_NAMES *gens;
	size_t i;
	int n = 0;

	for (i = 0; i < s->policy->n_names; i++)
		if (pki_check_name(s->leaf, s->policy->names[i], err, errlen) == -1)
			return -1;
	if (s->policy->n_names > 0)
		return 0;
	if ((gens = X509_get_ext_d2i(s->leaf, NID_subject_alt_name, NULL, NULL)) != NULL)
		n = sk_GENERAL_NAME_num(gens);
	GENERAL_NAMES_free(gens);
	if (n == 0)
		return errbuf_fail(
		    err, errlen, "cert: the server certificate has no subjectAltName");
	return 0;
}

/*
 * A new CA must be new: staging the active one would rotate to nothing. A
 * renewal is the opposite: its leaf goes under the active CA, agents trust no other.
 */
static int
pki_check_active(struct pki_cset *s, char *err, size_t errlen)
{
	X509 *active = s->policy->active_ca;

	if (s->policy->renew)
		return active != NULL && X509_cmp(s->ca, active) == 0
		           ? 0
		           : errbuf_fail(
		                 err, errlen, "ca: renew keeps the active CA; this is another");
	if (active == NULL)
		return 0;
	if (X509_cmp(s->ca, active) == 0)
		return errbuf_fail(err, errlen, "ca: is the CA already active");
	if (X509_NAME_cmp(X509_get_subject_name(s->ca), X509_get_subject_name(active)) == 0)
		pki_warn(s->out,
		    "the CA has the same subject as the active CA; clients that look CAs "
		    "up by name may confuse the two");
	return 0;
}

/* Intermediates the verified path does not use are left out of the output, and said so. */
static void
pki_warn_unused(struct pki_cset *s)
{
	char label[PKI_LABEL_MAX];
	X509 *x;
	int i, j;

	for (i = 0; i < sk_X509_num(s->untrusted); i++) {
		x = sk_X509_value(s->untrusted, i);
		for (j = 0; j < sk_X509_num(s->path); j++)
			if (X509_cmp(x, sk_X509_value(s->path, j)) == 0)
				break;
		if (j < sk_X509_num(s->path) && X509_cmp(x, s->ca) != 0)
			continue;
		if (i + 1 < sk_X509_num(s->certs))
			pki_label(label, "cert", i + 2, x);
		else
			pki_label(label, "chain", i + 2 - sk_X509_num(s->certs), x);
		pki_warn(s->out, "%s is %s and was left out", label,
		    X509_cmp(x, s->ca) == 0 ? "the CA itself" : "not on the verified path");
	}
}

/* The verified path minus its anchor (the CA) is what nginx serves after the leaf. */
static int
pki_encode_set(struct pki_cset *s, char *err, size_t errlen)
{
	struct pki_material *out = s->out;
	int n;

	for (n = 0; n < sk_X509_num(s->path); n++)
		if (X509_cmp(sk_X509_value(s->path, n), s->ca) == 0)
			break;
	pki_warn_unused(s);
	out->ca = pki_pem_x509(s->ca);
	out->cert = pki_pem_x509s(s->path, n);
	out->key = pki_pem_key(s->key);
	if (out->ca == NULL || out->cert == NULL || out->key == NULL)
		return pki_ssl_fail(err, errlen, "cannot encode the certificate set as PEM");
	return 0;
}

int
pki_validate_custom(const struct pki_custom *c, const struct pki_policy *policy,
    struct pki_material *out, char *err, size_t errlen)
{
	struct pki_cset s;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	s.policy = policy;
	s.now = pki_now(policy->now);
	s.out = out;
	ERR_clear_error();
	rc = pki_parse_set(c, &s, err, errlen);
	for (i = 0; rc == 0 && i < PKI_NITEMS(pki_checks); i++)
		rc = pki_checks[i](&s, err, errlen);
	if (rc == 0)
		rc = pki_encode_set(&s, err, errlen);
	if (rc == -1)
		pki_material_clear(out);
	pki_cset_free(&s);
	ERR_clear_error();
	return rc;
}

int
pki_check_set(const uint8_t *ca, size_t ca_len, const uint8_t *cert, size_t cert_len,
    const uint8_t *key, size_t key_len, char *err, size_t errlen)
{
	const struct pki_custom c = { ca, cert, key, NULL, ca_len, cert_len, key_len, 0 };
	struct pki_cset s;
	int rc;

	memset(&s, 0, sizeof(s));
	ERR_clear_error();
	rc = pki_parse_set(&c, &s, err, errlen);
	if (rc == 0)
		rc = pki_check_key_match(&s, err, errlen);
	if (rc == 0 && !pki_chains_to(s.leaf, s.untrusted, s.ca))
		rc = errbuf_fail(err, errlen,
		    "cert: the server certificate does not chain to the CA of ca (its signature "
		    "or issuer name does not match)");
	pki_cset_free(&s);
	ERR_clear_error();
	return rc;
}
