/* Sealed blobs (seal.h): AES-256-GCM through OpenSSL's EVP interface. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "seal.h"

static int seal_fail(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
static int seal_sizes_ok(size_t, size_t, size_t, size_t, char *, size_t);
static int seal_gcm(EVP_CIPHER_CTX *, int, const uint8_t *, const uint8_t *, const void *, size_t);
static int seal_run(EVP_CIPHER_CTX *, int, const uint8_t *, size_t, uint8_t *);

int
seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aadlen, const uint8_t *plain,
    size_t len, uint8_t *out, size_t *outlen, char *err, size_t errlen)
{
	uint8_t *nonce = out + 1, *ct = out + 1 + SEAL_NONCE_LEN;
	EVP_CIPHER_CTX *ctx;
	int rc = -1;

	if (seal_sizes_ok(len, aadlen, *outlen, len + SEAL_OVERHEAD, err, errlen) == -1)
		return -1;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return seal_fail(err, errlen, "seal: out of memory");
	out[0] = SEAL_VERSION;
	/* GCM's one rule: a nonce never repeats under a key. 96 random bits per blob. */
	if (RAND_bytes(nonce, SEAL_NONCE_LEN) != 1)
		seal_fail(err, errlen, "seal: no random nonce from OpenSSL");
	else if (seal_gcm(ctx, 1, key, nonce, aad, aadlen) == -1 ||
	         seal_run(ctx, 1, plain, len, ct) == -1 ||
	         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, ct + len) != 1)
		seal_fail(err, errlen, "seal: AES-256-GCM encryption failed");
	else
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == -1)
		OPENSSL_cleanse(out, *outlen);
	else
		*outlen = len + SEAL_OVERHEAD;
	return rc;
}

int
seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aadlen, const uint8_t *blob,
    size_t bloblen, uint8_t *out, size_t *outlen, char *err, size_t errlen)
{
	const uint8_t *nonce = blob + 1, *ct = blob + 1 + SEAL_NONCE_LEN;
	uint8_t tag[SEAL_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	size_t len;
	int rc = -1;

	if (bloblen < SEAL_OVERHEAD)
		return seal_fail(err, errlen,
		    "sealed blob too short (%zu bytes, at least %d): truncated", bloblen,
		    SEAL_OVERHEAD);
	if (blob[0] != SEAL_VERSION)
		return seal_fail(err, errlen, "sealed blob of unknown version %u (this build: %d)",
		    blob[0], SEAL_VERSION);
	len = bloblen - SEAL_OVERHEAD;
	if (seal_sizes_ok(len, aadlen, *outlen, len, err, errlen) == -1)
		return -1;
	memcpy(tag, ct + len, SEAL_TAG_LEN);
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return seal_fail(err, errlen, "seal: out of memory");
	if (seal_gcm(ctx, 0, key, nonce, aad, aadlen) == -1 ||
	    seal_run(ctx, 0, ct, len, out) == -1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1)
		seal_fail(err, errlen, "seal: AES-256-GCM decryption failed");
	else if (seal_run(ctx, 0, NULL, 0, NULL) == -1)
		/* The tag is checked only here, after the plaintext was written: wipe it. */
		seal_fail(err, errlen,
		    "sealed blob does not verify: wrong pool key, a blob of another slot, or "
		    "altered");
	else
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == -1)
		OPENSSL_cleanse(out, len);
	else
		*outlen = len;
	return rc;
}

static int
seal_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	ERR_clear_error();
	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* EVP counts in int; the output buffer holds have bytes, need are written. */
static int
seal_sizes_ok(size_t len, size_t aadlen, size_t have, size_t need, char *err, size_t errlen)
{
	if (len > SEAL_MAX_PLAIN)
		return seal_fail(
		    err, errlen, "seal: %zu bytes of plaintext, at most %d", len, SEAL_MAX_PLAIN);
	if (aadlen > INT_MAX)
		return seal_fail(err, errlen, "seal: additional data too long");
	if (have < need)
		return seal_fail(
		    err, errlen, "seal: output buffer of %zu bytes, %zu needed", have, need);
	return 0;
}

/* Sets up ctx for AES-256-GCM with a 12-byte nonce and feeds the additional data. */
static int
seal_gcm(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *key, const uint8_t *nonce, const void *aad,
    size_t aadlen)
{
	int n;

	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
		return -1;
	if (aadlen > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		return -1;
	return 0;
}

/* One update over in[0..len) into out, or the final step when in is NULL. GCM never pads. */
static int
seal_run(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t last[16];
	int n = 0;

	if (in == NULL)
		return EVP_CipherFinal_ex(ctx, last, &n) == 1 && n == 0 ? 0 : -1;
	if (len > 0 && (EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 || (size_t)n != len))
		return -1;
	if (enc)
		return EVP_CipherFinal_ex(ctx, last, &n) == 1 && n == 0 ? 0 : -1;
	return 0;
}
