/*
 * Trust bundles as the proxy sends them: PEM CA certificates and nothing
 * else, checked whole before anything on disk changes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "agent.h"
#include "digest.h"

_Static_assert(AGENT_HEX64 + 1 == DIGEST_SHA256_HEX, "bundle ids and fingerprints are SHA-256 hex");

#define BUNDLE_BEGIN "-----BEGIN CERTIFICATE-----"
#define BUNDLE_END   "-----END CERTIFICATE-----"

struct bundle_der {
	unsigned char *p;
	int len;
};

static X509 *bundle_block(const char *p, size_t len, size_t *used, char *why, size_t whylen);
static int bundle_der_cmp(const void *, const void *);

/* One BEGIN/END CERTIFICATE block at p; anything else there (a key, junk) is refused. */
static X509 *
bundle_block(const char *p, size_t len, size_t *used, char *why, size_t whylen)
{
	const char *end;
	X509 *x = NULL;
	BIO *bio;

	if (len < sizeof(BUNDLE_BEGIN) - 1 || memcmp(p, BUNDLE_BEGIN, sizeof(BUNDLE_BEGIN) - 1)) {
		if (len >= 11 && memcmp(p, "-----BEGIN ", 11) == 0 &&
		    memmem(p, len < 64 ? len : 64, "PRIVATE KEY-----", 16) != NULL)
			snprintf(why, whylen, "the bundle holds a private key");
		else
			snprintf(
			    why, whylen, "the bundle holds something other than PEM certificates");
		return NULL;
	}
	if ((end = memmem(p, len, BUNDLE_END, sizeof(BUNDLE_END) - 1)) == NULL) {
		snprintf(why, whylen, "truncated certificate (no END line)");
		return NULL;
	}
	*used = (size_t)(end - p) + sizeof(BUNDLE_END) - 1;
	if ((bio = BIO_new_mem_buf(p, (int)*used)) != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (x == NULL)
		snprintf(why, whylen, "a certificate block does not decode");
	return x;
}

int
bundle_parse(const char *pem, size_t len, STACK_OF(X509) * *out, char *why, size_t whylen)
{
	STACK_OF(X509) *cas = sk_X509_new_null();
	size_t off = 0, used;
	X509 *x;

	if (cas == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (len > AGENT_MAX_BUNDLE) {
		snprintf(why, whylen, "bundle larger than %d bytes", AGENT_MAX_BUNDLE);
		goto fail;
	}
	for (;;) {
		while (off < len && isspace((unsigned char)pem[off]))
			off++;
		if (off == len)
			break;
		if (sk_X509_num(cas) == AGENT_MAX_CAS) {
			snprintf(why, whylen, "more than %d certificates", AGENT_MAX_CAS);
			goto fail;
		}
		if ((x = bundle_block(pem + off, len - off, &used, why, whylen)) == NULL)
			goto fail;
		if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
			snprintf(why, whylen,
			    "certificate %d is not a CA (basicConstraints CA:TRUE)",
			    sk_X509_num(cas) + 1);
			X509_free(x);
			goto fail;
		}
		sk_X509_push(cas, x);
		off += used;
	}
	if (sk_X509_num(cas) == 0) {
		snprintf(why, whylen, "no certificate in the bundle");
		goto fail;
	}
	*out = cas;
	return 0;
fail:
	sk_X509_pop_free(cas, X509_free);
	return -1;
}

static int
bundle_der_cmp(const void *a, const void *b)
{
	const struct bundle_der *x = a, *y = b;
	int c = memcmp(x->p, y->p, (size_t)(x->len < y->len ? x->len : y->len));

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

int
bundle_id(STACK_OF(X509) * cas, char id[AGENT_HEX64 + 1])
{
	struct bundle_der ders[AGENT_MAX_CAS];
	EVP_MD_CTX *ctx;
	int n = sk_X509_num(cas), i, rc = -1;

	if (n < 1 || n > AGENT_MAX_CAS)
		return -1;
	for (i = 0; i < n; i++) {
		ders[i].p = NULL;
		ders[i].len = i2d_X509(sk_X509_value(cas, i), &ders[i].p);
	}
	qsort(ders, (size_t)n, sizeof(ders[0]), bundle_der_cmp);
	if ((ctx = EVP_MD_CTX_new()) != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		for (i = 0; i < n && ders[i].len > 0; i++)
			if (EVP_DigestUpdate(ctx, ders[i].p, (size_t)ders[i].len) != 1)
				break;
		if (i == n && digest_sha256_final_hex(ctx, id) == 0)
			rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < n; i++)
		OPENSSL_free(ders[i].p);
	return rc;
}

int
bundle_fingerprint(X509 *x, char fp[AGENT_HEX64 + 1])
{
	return digest_x509_sha256_hex(x, fp);
}

/*
 * The verification libcurl does, with ca as the only trust anchor: purpose TLS server and
 * the host name (or address) of the URL when host is given.
 */
int
bundle_ca_verifies(X509 *ca, X509 *leaf, STACK_OF(X509) * chain, const char *host)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int ok = 0;

	if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_CTX_init(ctx, store, leaf, chain) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (host != NULL && host[0] != '\0') {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1 &&
		    X509_VERIFY_PARAM_set1_host(param, host, 0) != 1)
			goto out;
	}
	ok = X509_verify_cert(ctx) == 1;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

int
bundle_validate(const char *pem, size_t len, const char *etag, X509 *leaf, STACK_OF(X509) * chain,
    const char *host, STACK_OF(X509) * *out, char *why, size_t whylen)
{
	STACK_OF(X509) * cas;
	char id[AGENT_HEX64 + 1];
	int i;

	if (bundle_parse(pem, len, &cas, why, whylen) == -1)
		return -1;
	if (bundle_id(cas, id) == -1) {
		snprintf(why, whylen, "cannot compute the bundle id");
		goto fail;
	}
	if (etag == NULL || strcmp(id, etag) != 0) {
		snprintf(why, whylen, "the bundle's id %s is not its ETag", id);
		goto fail;
	}
	if (leaf == NULL) {
		snprintf(why, whylen, "no server certificate was captured");
		goto fail;
	}
	for (i = 0; i < sk_X509_num(cas); i++)
		if (bundle_ca_verifies(sk_X509_value(cas, i), leaf, chain, host))
			break;
	if (i == sk_X509_num(cas)) {
		snprintf(why, whylen, "the bundle lacks the CA that signs the proxy's certificate");
		goto fail;
	}
	*out = cas;
	return 0;
fail:
	sk_X509_pop_free(cas, X509_free);
	return -1;
}
