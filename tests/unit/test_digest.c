/*
 * The one SHA-256 hex of the daemon and the agent (common/digest.c), which
 * replaced four hand-written loops: known answers (FIPS 180-2 vectors), a
 * digest fed in parts, a certificate's fingerprint as the SHA-256 of its
 * DER, and the refusals: a context set up for another digest must not be
 * finished into a 64-digit buffer, and a failure leaves the output empty, so
 * a caller that ignores the result never compares against stale bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "digest.h"

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static void
test_hex(void **state)
{
	static const unsigned char b[] = { 0x00, 0x0f, 0xf0, 0xff, 0x5a, 0xa5 };
	char out[2 * sizeof(b) + 1];

	memset(out, 'x', sizeof(out));
	digest_hex(b, sizeof(b), out);
	assert_string_equal(out, "000ff0ff5aa5");
	digest_hex(b, 0, out);
	assert_string_equal(out, "");
}

static void
test_sha256_known_answers(void **state)
{
	char out[DIGEST_SHA256_HEX];

	assert_int_equal(digest_sha256_hex("", 0, out), 0);
	assert_string_equal(out, SHA256_EMPTY);
	assert_int_equal(digest_sha256_hex("abc", 3, out), 0);
	assert_string_equal(out, SHA256_ABC);
	assert_int_equal(strlen(out), DIGEST_SHA256_HEX - 1);
}

static void
test_final_in_parts(void **state)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char out[DIGEST_SHA256_HEX];

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "a", 1), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "bc", 2), 1);
	assert_int_equal(digest_sha256_final_hex(ctx, out), 0);
	assert_string_equal(out, SHA256_ABC);
	EVP_MD_CTX_free(ctx);
}

/* SHA-384 would write 96 digits into a 65-byte buffer: refused, out left empty. */
static void
test_final_refuses_other_digest(void **state)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char out[DIGEST_SHA256_HEX + 64];

	assert_non_null(ctx);
	assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha384(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(ctx, "abc", 3), 1);
	memset(out, 'x', sizeof(out));
	assert_int_equal(digest_sha256_final_hex(ctx, out), -1);
	assert_string_equal(out, "");
	assert_int_equal(out[1], 'x'); /* nothing written past the NUL */
	EVP_MD_CTX_free(ctx);
}

static X509 *
test_make_cert(void)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	assert_non_null(key);
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                     (const unsigned char *)"digest test", -1, -1, 0),
	    1);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	EVP_PKEY_free(key);
	return x;
}

/* A fingerprint is the SHA-256 of the DER, as `openssl x509 -fingerprint -sha256` prints it. */
static void
test_x509_fingerprint(void **state)
{
	X509 *x = test_make_cert();
	unsigned char *der = NULL;
	char fp[DIGEST_SHA256_HEX], want[DIGEST_SHA256_HEX];
	int len = i2d_X509(x, &der);

	assert_true(len > 0);
	assert_int_equal(digest_sha256_hex(der, (size_t)len, want), 0);
	assert_int_equal(digest_x509_sha256_hex(x, fp), 0);
	assert_string_equal(fp, want);
	assert_int_equal(strspn(fp, "0123456789abcdef"), DIGEST_SHA256_HEX - 1);
	OPENSSL_free(der);
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_sha256_known_answers),
		cmocka_unit_test(test_final_in_parts),
		cmocka_unit_test(test_final_refuses_other_digest),
		cmocka_unit_test(test_x509_fingerprint),
	};

	return cmocka_run_group_tests_name("digest", tests, NULL, NULL);
}
