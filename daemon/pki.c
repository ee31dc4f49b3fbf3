/*
 * Everything that touches OpenSSL. Certificates read here come from files an
 * operator or a previous run wrote; they are parsed, never trusted blindly.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pki.h"
#include "xmalloc.h"

#define PKI_MAX_CHAIN 16 /* certificates in one PEM file */

static char *pki_name(const X509_NAME *);
static void pki_hex(const uint8_t *, size_t, char *);
static void pki_sans(X509 *, Carotate__V1__CertInfo *);
static int pki_der_cmp(const void *, const void *);

static void
pki_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

STACK_OF(X509) * pki_certs_from_pem(const uint8_t *buf, size_t len, char *err, size_t errlen)
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

void
pki_cert_sha256(X509 *x, char out[PKI_SHA256_HEX])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		out[0] = '\0';
		return;
	}
	pki_hex(md, n, out);
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
static char *
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
	uint8_t md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t i;
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (i = 0; ok && i < n; i++)
		ok = (der[i].len = i2d_X509(cas[i], &der[i].p)) > 0;
	if (ok)
		qsort(der, n, sizeof(*der), pki_der_cmp);
	for (i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(ctx, der[i].p, (size_t)der[i].len) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	if (ok)
		pki_hex(md, sizeof(md), out);
	for (i = 0; i < n; i++)
		OPENSSL_free(der[i].p);
	free(der);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}
