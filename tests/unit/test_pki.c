/* Certificate parsing and description, against certificates made here with OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pki.h"

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by signer (self-signed when issuer is NULL). */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *signer, long days, const char *san)
{
	X509 *x = X509_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_NAME_add_entry_by_txt(
	    X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
	X509_set_pubkey(x, key);
	if (san != NULL)
		add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
	else
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
	return x;
}

static char *
to_pem(X509 *x, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	PEM_write_bio_X509(bio, x);
	n = BIO_get_mem_data(bio, &p);
	out = malloc((size_t)n + 1);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	*len = (size_t)n;
	BIO_free(bio);
	return out;
}

static void
test_describe(void **state)
{
	EVP_PKEY *cakey = EVP_EC_gen("P-256"), *key = EVP_RSA_gen(2048);
	X509 *ca = make_cert("Test CA", cakey, NULL, cakey, 3650, NULL);
	X509 *leaf = make_cert(
	    "proxy.test", key, ca, cakey, 10, "DNS:proxy.test,IP:127.0.0.1,IP:::1,email:x@y.z");
	Carotate__V1__CertInfo *infop = malloc(sizeof(*infop)), info;
	char hex[PKI_SHA256_HEX], err[128];
	uint8_t md[32];
	unsigned n;
	size_t len, i;
	char *pem = to_pem(leaf, &len);
	STACK_OF(X509) *certs = pki_certs_from_pem((uint8_t *)pem, len, err, sizeof(err));

	assert_non_null(certs);
	assert_int_equal(sk_X509_num(certs), 1);
	carotate__v1__cert_info__init(infop);
	pki_describe(sk_X509_value(certs, 0), infop);
	info = *infop;
	assert_string_equal(info.subject, "CN=proxy.test");
	assert_string_equal(info.issuer, "CN=Test CA");
	assert_string_equal(info.key_type, "rsa-2048");
	assert_int_equal(info.n_sans, 3); /* the e-mail name is not a TLS name */
	assert_string_equal(info.sans[0], "DNS:proxy.test");
	assert_string_equal(info.sans[1], "IP:127.0.0.1");
	assert_string_equal(info.sans[2], "IP:::1");
	assert_string_equal(info.serial, "1092");
	assert_true(info.not_after - info.not_before == 10 * 86400 + 3600);
	X509_digest(leaf, EVP_sha256(), md, &n);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(info.sha256, hex);
	protobuf_c_message_free_unpacked(&infop->base, NULL);

	assert_true(pki_issued_by(leaf, ca));
	assert_false(pki_issued_by(ca, leaf));
	sk_X509_pop_free(certs, X509_free);
	free(pem);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
}

static void
test_key_types(void **state)
{
	EVP_PKEY *k;

	k = EVP_EC_gen("P-384");
	assert_string_equal(pki_key_type(k), "ec-p384");
	EVP_PKEY_free(k);
	k = EVP_EC_gen("P-256");
	assert_string_equal(pki_key_type(k), "ec-p256");
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_string_equal(pki_key_type(k), "ed25519");
	EVP_PKEY_free(k);
}

static void
test_not_pem(void **state)
{
	char err[128];

	assert_null(pki_certs_from_pem((const uint8_t *)"hello", 5, err, sizeof(err)));
	assert_non_null(strstr(err, "no PEM certificate"));
	assert_null(pki_certs_from_pem((const uint8_t *)"-----BEGIN CERTIFICATE-----\nAAAA\n"
	                                                "-----END CERTIFICATE-----\n",
	    60, err, sizeof(err)));
}

/* The bundle id is SHA-256 over the sorted DER: independent of the order of the CAs. */
static void
test_bundle_id(void **state)
{
	EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
	X509 *a = make_cert("A", k1, NULL, k1, 10, NULL),
	     *b = make_cert("B", k2, NULL, k2, 10, NULL);
	X509 *ab[2] = { a, b }, *ba[2] = { b, a };
	char id1[PKI_SHA256_HEX], id2[PKI_SHA256_HEX], id3[PKI_SHA256_HEX], want[PKI_SHA256_HEX];
	unsigned char *da = NULL, *db = NULL, md[32];
	int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int first_a;
	size_t i;

	assert_int_equal(pki_bundle_id(ab, 2, id1), 0);
	assert_int_equal(pki_bundle_id(ba, 2, id2), 0);
	assert_string_equal(id1, id2);
	assert_int_equal(pki_bundle_id(ab, 1, id3), 0);
	assert_string_not_equal(id1, id3);

	/* Computed independently: concatenate the two DERs in byte order and hash. */
	first_a = memcmp(da, db, (size_t)(la < lb ? la : lb)) < 0 ||
	          (memcmp(da, db, (size_t)(la < lb ? la : lb)) == 0 && la < lb);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, first_a ? da : db, (size_t)(first_a ? la : lb));
	EVP_DigestUpdate(ctx, first_a ? db : da, (size_t)(first_a ? lb : la));
	EVP_DigestFinal_ex(ctx, md, NULL);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(id1, want);

	EVP_MD_CTX_free(ctx);
	OPENSSL_free(da);
	OPENSSL_free(db);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_not_pem),
		cmocka_unit_test(test_bundle_id),
	};

	return cmocka_run_group_tests_name("pki", tests, NULL, NULL);
}
