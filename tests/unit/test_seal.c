/*
 * Sealed blobs (daemon/pki/seal.c): what a pool stores for its keys. A blob
 * opens only with its key and its slot's name, every single-bit change and
 * every cut is refused with a clear error and leaves no plaintext behind, two
 * seals of one text differ (fresh nonces), and the layout (version, nonce,
 * ciphertext, tag) is what an independent AES-256-GCM decryption reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "seal.h"

#define AAD    "pool/active/server.key"
#define SENTRY 0xa5

static const uint8_t key[SEAL_KEY_LEN] = { 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f };
static const char text[] = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n"
                           "-----END PRIVATE KEY-----\n";

/* Seals text under key and AAD into blob; returns the blob's length. */
static size_t
seal_text(uint8_t *blob, size_t room)
{
	char err[256];
	size_t n = room;

	if (seal_encrypt(key, AAD, strlen(AAD), (const uint8_t *)text, strlen(text), blob, &n, err,
	        sizeof(err)) != 0)
		fail_msg("seal_encrypt: %s", err);
	return n;
}

/* Asserts that opening blob with k and aad is refused with phrase, and out shows no plaintext. */
static void
assert_refused(
    const uint8_t *k, const char *aad, const uint8_t *blob, size_t len, const char *phrase)
{
	uint8_t out[sizeof(text) + 64];
	char err[256] = "";
	size_t n = sizeof(out);

	memset(out, SENTRY, sizeof(out));
	if (seal_decrypt(k, aad, strlen(aad), blob, len, out, &n, err, sizeof(err)) == 0)
		fail_msg("a blob of %zu bytes opened", len);
	if (strstr(err, phrase) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, phrase);
	assert_int_equal(n, sizeof(out));
	assert_null(memmem(out, sizeof(out), "PRIVATE", 7));
	assert_null(memmem(out, sizeof(out), "MIGH", 4));
}

static void
test_round_trip(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD], out[sizeof(text)];
	char err[256];
	size_t len, n = sizeof(out);

	len = seal_text(blob, sizeof(blob));
	assert_int_equal(len, strlen(text) + SEAL_OVERHEAD);
	assert_int_equal(blob[0], SEAL_VERSION);
	assert_null(memmem(blob, len, "PRIVATE", 7));
	if (seal_decrypt(key, AAD, strlen(AAD), blob, len, out, &n, err, sizeof(err)) != 0)
		fail_msg("seal_decrypt: %s", err);
	assert_int_equal(n, strlen(text));
	assert_memory_equal(out, text, n);
}

/* An empty plaintext and an empty AAD are still authenticated. */
static void
test_empty(void **state)
{
	uint8_t blob[SEAL_OVERHEAD], out[1];
	char err[256];
	size_t len = sizeof(blob), n = sizeof(out);

	assert_int_equal(seal_encrypt(key, "", 0, NULL, 0, blob, &len, err, sizeof(err)), 0);
	assert_int_equal(len, SEAL_OVERHEAD);
	assert_int_equal(seal_decrypt(key, "", 0, blob, len, out, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	n = sizeof(out);
	assert_int_equal(seal_decrypt(key, "x", 1, blob, len, out, &n, err, sizeof(err)), -1);
	blob[len - 1] ^= 1;
	assert_int_equal(seal_decrypt(key, "", 0, blob, len, out, &n, err, sizeof(err)), -1);
}

/* The documented layout, read by OpenSSL directly: version || nonce || ciphertext || tag. */
static void
test_layout(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD], out[sizeof(text)], tag[SEAL_TAG_LEN];
	size_t len = seal_text(blob, sizeof(blob)), clen = len - SEAL_OVERHEAD;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n, m;

	assert_non_null(ctx);
	memcpy(tag, blob + len - SEAL_TAG_LEN, SEAL_TAG_LEN);
	assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, blob + 1), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)AAD, strlen(AAD)), 1);
	assert_int_equal(EVP_DecryptUpdate(ctx, out, &n, blob + 1 + SEAL_NONCE_LEN, (int)clen), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag), 1);
	assert_int_equal(EVP_DecryptFinal_ex(ctx, out + n, &m), 1);
	EVP_CIPHER_CTX_free(ctx);
	assert_int_equal((size_t)(n + m), strlen(text));
	assert_memory_equal(out, text, strlen(text));
}

static void
test_every_bit_flip(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD];
	size_t len = seal_text(blob, sizeof(blob)), i;
	int bit;

	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			blob[i] ^= (uint8_t)(1u << bit);
			assert_refused(
			    key, AAD, blob, len, i == 0 ? "unknown version" : "does not verify");
			blob[i] ^= (uint8_t)(1u << bit);
		}
	}
}

static void
test_wrong_key(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD], other[SEAL_KEY_LEN];
	size_t len = seal_text(blob, sizeof(blob)), i;

	for (i = 0; i < SEAL_KEY_LEN; i++) {
		memcpy(other, key, sizeof(other));
		other[i] ^= 0x80;
		assert_refused(other, AAD, blob, len, "wrong pool key");
	}
}

/* A blob moved to another slot does not open there. */
static void
test_wrong_aad(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD];
	size_t len = seal_text(blob, sizeof(blob));

	assert_refused(key, "pool/staged/server.key", blob, len, "another slot");
	assert_refused(key, "pool/active/ca.key", blob, len, "does not verify");
	assert_refused(key, "pool/active/server.ke", blob, len, "does not verify");
	assert_refused(key, "", blob, len, "does not verify");
}

/* Every cut, and one byte more. */
static void
test_truncated(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD + 1];
	size_t len = seal_text(blob, sizeof(blob) - 1), cut;

	for (cut = 0; cut < len; cut++)
		assert_refused(
		    key, AAD, blob, cut, cut < SEAL_OVERHEAD ? "too short" : "does not verify");
	blob[len] = 0;
	assert_refused(key, AAD, blob, len + 1, "does not verify");
}

static void
test_fresh_nonces(void **state)
{
	uint8_t a[sizeof(text) + SEAL_OVERHEAD], b[sizeof(text) + SEAL_OVERHEAD];
	size_t la = seal_text(a, sizeof(a)), lb = seal_text(b, sizeof(b));

	assert_int_equal(la, lb);
	assert_memory_not_equal(a + 1, b + 1, SEAL_NONCE_LEN);
	assert_memory_not_equal(
	    a + 1 + SEAL_NONCE_LEN, b + 1 + SEAL_NONCE_LEN, la - 1 - SEAL_NONCE_LEN);
}

/* Buffers too small are refused before anything is written; so is an oversized plaintext. */
static void
test_sizes(void **state)
{
	uint8_t blob[sizeof(text) + SEAL_OVERHEAD], out[sizeof(text)];
	char err[256];
	size_t len, n;

	n = strlen(text) + SEAL_OVERHEAD - 1;
	assert_int_equal(seal_encrypt(key, AAD, strlen(AAD), (const uint8_t *)text, strlen(text),
	                     blob, &n, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "needed"));
	n = (size_t)SEAL_MAX_PLAIN + 1;
	assert_int_equal(seal_encrypt(key, AAD, strlen(AAD), (const uint8_t *)text,
	                     (size_t)SEAL_MAX_PLAIN + 1, blob, &n, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "at most"));
	len = seal_text(blob, sizeof(blob));
	n = strlen(text) - 1;
	memset(out, SENTRY, sizeof(out));
	assert_int_equal(
	    seal_decrypt(key, AAD, strlen(AAD), blob, len, out, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needed"));
	assert_null(memmem(out, sizeof(out), "PRIVATE", 7));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_every_bit_flip),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_wrong_aad),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_fresh_nonces),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
