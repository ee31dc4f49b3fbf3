#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string.h>

#include "digest.h"

void
digest_hex(const void *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * n] = '\0';
}

int
digest_sha256_hex(const void *p, size_t n, char out[DIGEST_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != DIGEST_SHA256_LEN)
		return -1;
	digest_hex(md, len, out);
	return 0;
}

/* The length check refuses a context set up for another digest: the hex would not fit. */
int
digest_sha256_final_hex(EVP_MD_CTX *ctx, char out[DIGEST_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (EVP_MD_CTX_get_size(ctx) != DIGEST_SHA256_LEN ||
	    EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != DIGEST_SHA256_LEN)
		return -1;
	digest_hex(md, len, out);
	return 0;
}

int
digest_x509_sha256_hex(const X509 *x, char out[DIGEST_SHA256_HEX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != DIGEST_SHA256_LEN)
		return -1;
	digest_hex(md, len, out);
	return 0;
}

int
digest_sha256_hex_ok(const char *s)
{
	return strlen(s) == DIGEST_SHA256_HEX - 1 &&
	       strspn(s, "0123456789abcdef") == DIGEST_SHA256_HEX - 1;
}
