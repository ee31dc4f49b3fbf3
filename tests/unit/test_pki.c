/* Certificate parsing and description, against certificates made here with OpenSSL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include "pki.h"

#define DAY 86400L

/* A certificate to build for the custom-set tests; zero fields take the defaults noted. */
struct spec {
	const char *cn;
	EVP_PKEY *key;
	X509 *issuer;     /* NULL: self-signed */
	EVP_PKEY *signer; /* NULL: key */
	const EVP_MD *md; /* NULL: SHA-256 */
	long from, to;    /* seconds from now0; 0: -1 h and +90 days */
	int ca;           /* 1: CA:TRUE, keyCertSign; 2: CA:TRUE, cRLSign only */
	const char *san;  /* NULL: none */
	const char *eku;  /* leaves; NULL: serverAuth, "": none */
};

/* Keys and certificates shared by the custom-set tests (group setup). */
static struct {
	EVP_PKEY *root_key, *int1_key, *int2_key, *leaf_key, *other_key;
	X509 *root, *int1, *int2, *leaf, *leaf_int, *other_root;
	char *root_pem, *int1_pem, *int2_pem, *leaf_pem, *leaf_int_pem, *other_root_pem;
	char *key_pem, *other_key_pem;
} fx;

static time_t now0;
/* The API takes char *const *: string literals are cast, never written. */
#define S(lit) ((char *)(lit))

static char *default_names[] = { S("proxy.example.com"), S("192.0.2.10") };

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

/* ---- generation ---- */

static void
test_key_kind_names(void **state)
{
	static const char *names[] = { "ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096" };
	enum pki_key_kind kind;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(pki_key_kind_parse(names[i], &kind), 0);
		assert_int_equal(kind, (enum pki_key_kind)i);
		assert_string_equal(pki_key_kind_name(kind), names[i]);
	}
	assert_int_equal(pki_key_kind_parse("rsa-1024", &kind), -1);
	assert_int_equal(pki_key_kind_parse("EC-P256", &kind), -1);
	assert_int_equal(pki_key_kind_parse("", &kind), -1);
	assert_int_equal(pki_key_kind_parse(NULL, &kind), -1);
	assert_string_equal(pki_key_kind_name((enum pki_key_kind)99), "unknown");
}

static X509 *
pem_x509(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static EVP_PKEY *
pem_pkey(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(k);
	return k;
}

static int
count_certs(const char *pem)
{
	char err[128];
	STACK_OF(X509) *xs =
	    pki_certs_from_pem((const uint8_t *)pem, strlen(pem), err, sizeof(err));
	int n = xs != NULL ? sk_X509_num(xs) : 0;

	sk_X509_pop_free(xs, X509_free);
	return n;
}

/* What openssl verify -x509_strict -purpose sslserver -verify_hostname/-verify_ip checks. */
static int
verify_strict(X509 *ca, X509 *leaf, const char *host, const char *ip)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	X509_VERIFY_PARAM *param;
	int ok, e;

	X509_STORE_add_cert(store, ca);
	X509_STORE_CTX_init(ctx, store, leaf, NULL);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	X509_VERIFY_PARAM_set_auth_level(param, 2);
	X509_VERIFY_PARAM_set_time(param, now0);
	if (host != NULL)
		X509_VERIFY_PARAM_set1_host(param, host, 0);
	if (ip != NULL)
		X509_VERIFY_PARAM_set1_ip_asc(param, ip);
	ok = X509_verify_cert(ctx);
	e = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok == 1 ? X509_V_OK : e;
}

static void
check_serial(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

	assert_non_null(bn);
	assert_false(BN_is_negative(bn));
	assert_false(BN_is_zero(bn));
	assert_true(BN_num_bits(bn) <= 127); /* top bit cleared: positive in 16 octets */
	assert_true(BN_num_bits(bn) > 64);   /* random: fails with probability 2^-63 */
	BN_free(bn);
}

static void
check_dates(X509 *x, long days)
{
	int64_t nb, na;

	assert_int_equal(pki_cert_times(x, &nb, &na), 0);
	assert_int_equal(nb, (int64_t)now0 - 3600);
	assert_int_equal(na, (int64_t)now0 + days * DAY);
}

static void
check_ca_exts(X509 *ca)
{
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	AUTHORITY_KEYID *aki;
	int crit;

	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(ca, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	aki = X509_get_ext_d2i(ca, NID_authority_key_identifier, &crit, NULL);
	assert_non_null(aki);
	assert_int_equal(crit, 0);
	assert_null(aki->issuer); /* keyid only */
	assert_null(aki->serial);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(ca)), 0);
	AUTHORITY_KEYID_free(aki);
	assert_int_equal(X509_get_ext_count(ca), 4);
}

static void
check_leaf_exts(X509 *leaf, X509 *ca, int rsa, int n_sans)
{
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *gens;
	int crit;

	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(leaf, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_get_key_usage(leaf),
	    rsa ? KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT : KU_DIGITAL_SIGNATURE);
	eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
	assert_non_null(eku);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
	assert_non_null(X509_get0_subject_key_id(leaf));
	assert_int_equal(ASN1_OCTET_STRING_cmp(
	                     X509_get0_subject_key_id(leaf), X509_get0_subject_key_id(ca)) != 0,
	    1);
	assert_non_null(X509_get0_authority_key_id(leaf));
	assert_int_equal(
	    ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(ca)),
	    0);
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), n_sans);
	GENERAL_NAMES_free(gens);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca)), 0);
}

/* CN = "<name> CA <YYYY-MM-DD of now0>", and a 16-hex-digit OU that tells generations apart. */
static void
check_ca_subject(X509 *ca)
{
	char cn[128], want[128], ou[64], date[16];
	struct tm tm;
	size_t i;

	gmtime_r(&now0, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	snprintf(want, sizeof(want), "carotate CA %s", date);
	assert_true(X509_NAME_get_text_by_NID(
	                X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn)) > 0);
	assert_string_equal(cn, want);
	assert_int_equal(X509_NAME_get_text_by_NID(
	                     X509_get_subject_name(ca), NID_organizationalUnitName, ou, sizeof(ou)),
	    16);
	for (i = 0; i < 16; i++)
		assert_non_null(strchr("0123456789abcdef", ou[i]));
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(ca), X509_get_subject_name(ca)), 0);
}

static void
check_validates(const struct pki_material *m, X509 *ca)
{
	char *names[] = { S("proxy.example.com"), S("alt.example.com"), S("192.0.2.10"),
		S("2001:db8::1") };
	struct pki_custom c = { (const uint8_t *)m->ca, (const uint8_t *)m->cert,
		(const uint8_t *)m->key, NULL, strlen(m->ca), strlen(m->cert), strlen(m->key), 0 };
	struct pki_policy pol = { names, 4, NULL, now0, 0 };
	struct pki_material out;
	char err[512] = "";
	X509 *again;

	if (pki_validate_custom(&c, &pol, &out, err, sizeof(err)) != 0)
		fail_msg("generated set refused: %s", err);
	assert_int_equal(out.n_warnings, 0);
	assert_null(out.ca_key);
	again = pem_x509(out.ca);
	assert_int_equal(X509_cmp(again, ca), 0);
	assert_int_equal(count_certs(out.cert), 1);
	X509_free(again);
	pki_material_clear(&out);

	pol.active_ca = ca;
	assert_int_equal(pki_validate_custom(&c, &pol, &out, err, sizeof(err)), -1);
	assert_string_equal(err, "ca: is the CA already active");
	assert_null(out.ca);
}

static void
check_generated(enum pki_key_kind kind)
{
	char *sans[] = { S("DNS:proxy.example.com"), S("DNS:alt.example.com"), S("IP:192.0.2.10"),
		S("IP:2001:db8::1") };
	struct pki_profile p = { kind, PKI_DEFAULT_CA_DAYS, PKI_DEFAULT_SERVER_DAYS, "carotate",
		sans, 4, now0 };
	int rsa = kind >= PKI_KEY_RSA_2048, md, pk, sec;
	struct pki_material m;
	char err[256], cn[128];
	X509 *ca, *leaf;
	EVP_PKEY *cakey, *key;
	uint32_t flags;

	if (pki_generate(&p, &m, err, sizeof(err)) != 0)
		fail_msg("pki_generate(%s): %s", pki_key_kind_name(kind), err);
	assert_null(m.warnings);
	assert_int_equal(strncmp(m.key, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	assert_int_equal(strncmp(m.ca_key, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	assert_int_equal(count_certs(m.cert), 1);
	assert_int_equal(count_certs(m.ca), 1);
	ca = pem_x509(m.ca);
	leaf = pem_x509(m.cert);
	cakey = pem_pkey(m.ca_key);
	key = pem_pkey(m.key);

	assert_int_equal(verify_strict(ca, leaf, "proxy.example.com", "192.0.2.10"), X509_V_OK);
	assert_int_equal(verify_strict(ca, leaf, "alt.example.com", "2001:db8::1"), X509_V_OK);
	assert_int_equal(X509_check_host(leaf, "proxy.example.com", 0,
	                     X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL),
	    1);
	assert_int_equal(X509_check_ip_asc(leaf, "192.0.2.10", 0), 1);
	assert_int_equal(X509_check_ip_asc(leaf, "2001:db8::1", 0), 1);
	assert_int_equal(X509_check_host(leaf, "other.example.com", 0, 0, NULL), 0);
	check_ca_exts(ca);
	check_leaf_exts(leaf, ca, rsa, 4);
	check_ca_subject(ca);
	assert_true(X509_NAME_get_text_by_NID(
	                X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)) > 0);
	assert_string_equal(cn, "proxy.example.com");
	check_serial(ca);
	check_serial(leaf);
	check_dates(ca, PKI_DEFAULT_CA_DAYS);
	check_dates(leaf, PKI_DEFAULT_SERVER_DAYS);
	assert_string_equal(pki_key_type(key), pki_key_kind_name(kind));
	assert_string_equal(pki_key_type(cakey), pki_key_kind_name(kind));
	assert_int_equal(X509_check_private_key(leaf, key), 1);
	assert_int_equal(X509_check_private_key(ca, cakey), 1);
	assert_int_equal(X509_get_signature_info(leaf, &md, &pk, &sec, &flags), 1);
	assert_int_equal(md, kind == PKI_KEY_EC_P384 ? NID_sha384 : NID_sha256);
	check_validates(&m, ca);
	assert_int_equal(ERR_peek_error(), 0);

	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	pki_material_clear(&m);
	assert_null(m.key);
}

static void
test_generate_p256(void **state)
{
	check_generated(PKI_KEY_EC_P256);
}

static void
test_generate_p384(void **state)
{
	check_generated(PKI_KEY_EC_P384);
}

static void
test_generate_rsa2048(void **state)
{
	check_generated(PKI_KEY_RSA_2048);
}

static void
test_generate_rsa3072(void **state)
{
	check_generated(PKI_KEY_RSA_3072);
}

/* Seconds of key generation (minutes under valgrind): CAROTATE_SKIP_SLOW=1 skips it. */
static void
test_generate_rsa4096(void **state)
{
	if (getenv("CAROTATE_SKIP_SLOW") != NULL)
		skip();
	check_generated(PKI_KEY_RSA_4096);
}

/* Two generations on the same second: serials and CA subjects must still differ. */
static void
test_generate_distinct(void **state)
{
	char *sans[] = { S("DNS:proxy.example.com") };
	struct pki_profile p = { PKI_KEY_EC_P256, 30, 10, NULL, sans, 1, now0 };
	struct pki_material a, b;
	X509 *ca1, *ca2, *l1, *l2;
	char err[256];

	assert_int_equal(pki_generate(&p, &a, err, sizeof(err)), 0);
	assert_int_equal(pki_generate(&p, &b, err, sizeof(err)), 0);
	ca1 = pem_x509(a.ca);
	ca2 = pem_x509(b.ca);
	l1 = pem_x509(a.cert);
	l2 = pem_x509(b.cert);
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(ca1), X509_get0_serialNumber(ca2)), 0);
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(l1), X509_get0_serialNumber(l2)), 0);
	assert_int_not_equal(
	    ASN1_INTEGER_cmp(X509_get0_serialNumber(ca1), X509_get0_serialNumber(l1)), 0);
	assert_int_not_equal(
	    X509_NAME_cmp(X509_get_subject_name(ca1), X509_get_subject_name(ca2)), 0);
	check_ca_subject(ca1); /* NULL name: PKI_DEFAULT_NAME */
	check_ca_subject(ca2);
	check_dates(ca1, 30);
	check_dates(l1, 10);
	assert_int_equal(
	    verify_strict(ca1, l2, NULL, NULL), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
	X509_free(ca1);
	X509_free(ca2);
	X509_free(l1);
	X509_free(l2);
	pki_material_clear(&a);
	pki_material_clear(&b);
}

/* CN falls back to the first IP; with only over-long DNS names it is left out and SAN critical. */
static void
test_generate_cn_choice(void **state)
{
	char longname[80], dns[90], cn[128];
	char *ip_only[] = { S("IP:192.0.2.10") }, *long_only[] = { dns };
	struct pki_profile p = { PKI_KEY_EC_P256, 365, 30, "x", ip_only, 1, now0 };
	struct pki_material m;
	char err[256];
	X509 *ca, *leaf;
	int crit;
	GENERAL_NAMES *gens;

	assert_int_equal(pki_generate(&p, &m, err, sizeof(err)), 0);
	ca = pem_x509(m.ca);
	leaf = pem_x509(m.cert);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "192.0.2.10");
	assert_int_equal(verify_strict(ca, leaf, NULL, "192.0.2.10"), X509_V_OK);
	X509_free(ca);
	X509_free(leaf);
	pki_material_clear(&m);

	memset(longname, 'a', 70);
	strcpy(longname + 60, ".example.com"); /* 60 + 12 = 72 bytes: too long for a CN */
	snprintf(dns, sizeof(dns), "DNS:%s", longname);
	p.sans = long_only;
	assert_int_equal(pki_generate(&p, &m, err, sizeof(err)), 0);
	ca = pem_x509(m.ca);
	leaf = pem_x509(m.cert);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	assert_int_equal(crit, 1);
	GENERAL_NAMES_free(gens);
	assert_int_equal(verify_strict(ca, leaf, longname, NULL), X509_V_OK);
	X509_free(ca);
	X509_free(leaf);
	pki_material_clear(&m);
}

static void
expect_profile_refused(struct pki_profile *p, const char *phrase)
{
	struct pki_material m;
	char err[256] = "";

	memset(&m, 0xa5, sizeof(m)); /* pki_generate must overwrite, not free, what it is given */
	assert_int_equal(pki_generate(p, &m, err, sizeof(err)), -1);
	if (strstr(err, phrase) == NULL)
		fail_msg("err \"%s\" lacks \"%s\"", err, phrase);
	if (getenv("CAROTATE_TEST_VERBOSE") != NULL)
		print_message("refused: %s\n", err);
	assert_null(m.ca);
	assert_null(m.ca_key);
	assert_null(m.cert);
	assert_null(m.key);
}

static void
test_generate_refusals(void **state)
{
	char *good[] = { S("DNS:proxy.example.com") }, *bad[1], *many[PKI_MAX_SANS + 1];
	struct pki_profile p = { PKI_KEY_EC_P256, 3650, 397, "carotate", good, 1, now0 };
	struct pki_profile q;
	size_t i;
	static const struct {
		const char *san, *phrase;
	} sans[] = {
		{ "proxy.example.com", "must be DNS:<name> or IP:<address>" },
		{ "DNS:", "is not a valid DNS name" },
		{ "DNS:-bad.example.com", "is not a valid DNS name" },
		{ "DNS:bad-.example.com", "is not a valid DNS name" },
		{ "DNS:a b.example.com", "is not a valid DNS name" },
		{ "DNS:a..example.com", "is not a valid DNS name" },
		{ "DNS:proxy.example.com,DNS:evil.com", "is not a valid DNS name" },
		{ "DNS:*.com", "is not a valid DNS name" },
		{ "DNS:192.0.2.10", "is not a valid DNS name" },
		{ "IP:300.1.2.3", "is not a valid IP address" },
		{ "IP:192.0.2.010", "is not a valid IP address" },
		{ "IP:proxy", "is not a valid IP address" },
		{ "dns:proxy.example.com", "must be DNS:<name> or IP:<address>" },
	};

	q = p, q.ca_days = 0;
	expect_profile_refused(&q, "ca_days must be between 1 and 36500 (got 0)");
	q = p, q.ca_days = PKI_MAX_DAYS + 1;
	expect_profile_refused(&q, "ca_days must be between 1 and 36500 (got 36501)");
	q = p, q.server_days = 0;
	expect_profile_refused(&q, "server_days must be between 1 and 36500 (got 0)");
	q = p, q.server_days = 4000;
	expect_profile_refused(&q, "server_days (4000) exceeds ca_days (3650)");
	q = p, q.n_sans = 0;
	expect_profile_refused(&q, "at least one SAN");
	for (i = 0; i < PKI_MAX_SANS + 1; i++)
		many[i] = good[0];
	q = p, q.sans = many, q.n_sans = PKI_MAX_SANS + 1;
	expect_profile_refused(&q, "too many SANs (65, limit 64)");
	q = p, q.name = "";
	expect_profile_refused(&q, "the CA name must be 1 to 50 printable characters");
	q = p, q.name = "bad\nname";
	expect_profile_refused(&q, "the CA name must be 1 to 50 printable characters");
	q = p, q.name = "a-name-that-is-far-too-long-to-fit-in-a-common-name-ok";
	expect_profile_refused(&q, "the CA name must be 1 to 50 printable characters");
	q = p, q.key = (enum pki_key_kind)42;
	expect_profile_refused(&q, "unknown key kind 42");
	for (i = 0; i < sizeof(sans) / sizeof(sans[0]); i++) {
		bad[0] = S(sans[i].san);
		q = p, q.sans = bad;
		expect_profile_refused(&q, sans[i].phrase);
	}
	/* The wildcard form and IPv6 are fine. */
	bad[0] = S("DNS:*.example.com");
	q = p, q.sans = bad;
	{
		struct pki_material m;
		char err[256];

		assert_int_equal(pki_generate(&q, &m, err, sizeof(err)), 0);
		pki_material_clear(&m);
		pki_material_clear(&m); /* twice is harmless */
	}
}

/* ---- custom sets ---- */

static void
ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

static X509 *
mk(const struct spec *s)
{
	static long serial = 1000;
	X509 *x = X509_new(), *issuer;
	time_t t = now0;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(
	    X509_get_subject_name(x), "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1, -1, 0);
	issuer = s->issuer != NULL ? s->issuer : x;
	X509_set_issuer_name(x, X509_get_subject_name(issuer));
	X509_time_adj_ex(X509_getm_notBefore(x), 0, s->from != 0 ? s->from : -3600, &t);
	X509_time_adj_ex(X509_getm_notAfter(x), 0, s->to != 0 ? s->to : 90 * DAY, &t);
	X509_set_pubkey(x, s->key);
	if (s->ca) {
		ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		ext(x, issuer, NID_key_usage,
		    s->ca == 1 ? "critical,keyCertSign,cRLSign" : "critical,cRLSign");
	} else {
		ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		ext(x, issuer, NID_key_usage, "critical,digitalSignature");
		if (s->eku == NULL || s->eku[0] != '\0')
			ext(x, issuer, NID_ext_key_usage, s->eku != NULL ? s->eku : "serverAuth");
	}
	ext(x, issuer, NID_subject_key_identifier, "hash");
	ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	if (s->san != NULL)
		ext(x, issuer, NID_subject_alt_name, s->san);
	assert_true(X509_sign(x, s->signer != NULL ? s->signer : s->key,
	                s->md != NULL ? s->md : EVP_sha256()) > 0);
	return x;
}

static char *
take(BIO *bio)
{
	char *p, *s;
	long n = BIO_get_mem_data(bio, &p);

	s = malloc((size_t)n + 1);
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	BIO_free(bio);
	return s;
}

static char *
cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());

	PEM_write_bio_X509(bio, x);
	return take(bio);
}

static char *
key_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());

	PEM_write_bio_PKCS8PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
	return take(bio);
}

/* a then b (then c), heap. */
static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0, lc = c != NULL ? strlen(c) : 0;
	char *s = malloc(la + lb + lc + 1);

	memcpy(s, a, la);
	if (b != NULL)
		memcpy(s + la, b, lb);
	if (c != NULL)
		memcpy(s + la + lb, c, lc);
	s[la + lb + lc] = '\0';
	return s;
}

static int
setup_fixture(void **state)
{
	now0 = time(NULL);
	fx.root_key = EVP_EC_gen("P-256");
	fx.int1_key = EVP_EC_gen("P-256");
	fx.int2_key = EVP_EC_gen("P-384");
	fx.leaf_key = EVP_EC_gen("P-256");
	fx.other_key = EVP_EC_gen("P-256");
	fx.root = mk(&(struct spec){ .cn = "Test Root CA", .key = fx.root_key, .ca = 1 });
	fx.other_root = mk(&(struct spec){ .cn = "Other Root CA", .key = fx.other_key, .ca = 1 });
	fx.int1 = mk(&(struct spec){ .cn = "Test Intermediate 1",
	    .key = fx.int1_key,
	    .issuer = fx.root,
	    .signer = fx.root_key,
	    .ca = 1 });
	fx.int2 = mk(&(struct spec){ .cn = "Test Intermediate 2",
	    .key = fx.int2_key,
	    .issuer = fx.int1,
	    .signer = fx.int1_key,
	    .ca = 1 });
	fx.leaf = mk(&(struct spec){ .cn = "proxy.example.com",
	    .key = fx.leaf_key,
	    .issuer = fx.root,
	    .signer = fx.root_key,
	    .san = "DNS:proxy.example.com,IP:192.0.2.10" });
	fx.leaf_int = mk(&(struct spec){ .cn = "proxy.example.com",
	    .key = fx.leaf_key,
	    .issuer = fx.int2,
	    .signer = fx.int2_key,
	    .san = "DNS:proxy.example.com,IP:192.0.2.10" });
	fx.root_pem = cert_pem(fx.root);
	fx.other_root_pem = cert_pem(fx.other_root);
	fx.int1_pem = cert_pem(fx.int1);
	fx.int2_pem = cert_pem(fx.int2);
	fx.leaf_pem = cert_pem(fx.leaf);
	fx.leaf_int_pem = cert_pem(fx.leaf_int);
	fx.key_pem = key_pem(fx.leaf_key);
	fx.other_key_pem = key_pem(fx.other_key);
	return 0;
}

static int
teardown_fixture(void **state)
{
	EVP_PKEY_free(fx.root_key);
	EVP_PKEY_free(fx.int1_key);
	EVP_PKEY_free(fx.int2_key);
	EVP_PKEY_free(fx.leaf_key);
	EVP_PKEY_free(fx.other_key);
	X509_free(fx.root);
	X509_free(fx.other_root);
	X509_free(fx.int1);
	X509_free(fx.int2);
	X509_free(fx.leaf);
	X509_free(fx.leaf_int);
	free(fx.root_pem);
	free(fx.other_root_pem);
	free(fx.int1_pem);
	free(fx.int2_pem);
	free(fx.leaf_pem);
	free(fx.leaf_int_pem);
	free(fx.key_pem);
	free(fx.other_key_pem);
	return 0;
}

static struct pki_custom
custom(const char *ca, const char *cert, const char *key, const char *chain)
{
	struct pki_custom c = { (const uint8_t *)ca, (const uint8_t *)cert, (const uint8_t *)key,
		(const uint8_t *)chain, ca != NULL ? strlen(ca) : 0,
		cert != NULL ? strlen(cert) : 0, key != NULL ? strlen(key) : 0,
		chain != NULL ? strlen(chain) : 0 };

	return c;
}

static struct pki_policy
policy(void)
{
	struct pki_policy p = { default_names, 2, NULL, now0, 0 };

	return p;
}

static void
expect_refused_by(const struct pki_custom *c, const struct pki_policy *p, const char *phrase)
{
	struct pki_material out;
	char err[512] = "";
	int rc = pki_validate_custom(c, p, &out, err, sizeof(err));

	if (rc != -1 || strstr(err, phrase) == NULL)
		fail_msg("rc %d, err \"%s\", want \"%s\"", rc, err, phrase);
	if (getenv("CAROTATE_TEST_VERBOSE") != NULL)
		print_message("refused: %s\n", err);
	assert_null(out.ca);
	assert_null(out.cert);
	assert_null(out.key);
	assert_null(out.warnings);
	assert_int_equal(ERR_peek_error(), 0); /* nothing left for the next request */
}

static void
expect_refused(
    const char *ca, const char *cert, const char *key, const char *chain, const char *phrase)
{
	struct pki_custom c = custom(ca, cert, key, chain);
	struct pki_policy p = policy();

	expect_refused_by(&c, &p, phrase);
}

/* Accepted; out is the caller's to clear. */
static void
expect_accepted(const struct pki_custom *c, const struct pki_policy *p, struct pki_material *out)
{
	char err[512] = "";

	if (pki_validate_custom(c, p, out, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	assert_int_equal(ERR_peek_error(), 0);
}

/* The n-th certificate of a PEM output equals want. */
static void
assert_nth(const char *pem, int n, X509 *want)
{
	char err[128];
	STACK_OF(X509) *xs =
	    pki_certs_from_pem((const uint8_t *)pem, strlen(pem), err, sizeof(err));

	assert_non_null(xs);
	assert_true(n < sk_X509_num(xs));
	assert_int_equal(X509_cmp(sk_X509_value(xs, n), want), 0);
	sk_X509_pop_free(xs, X509_free);
}

static void
test_custom_ok(void **state)
{
	struct pki_custom c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	struct pki_policy p = policy();
	struct pki_material out;
	EVP_PKEY *k;

	expect_accepted(&c, &p, &out);
	assert_int_equal(out.n_warnings, 0);
	assert_null(out.ca_key);
	assert_string_equal(out.ca, fx.root_pem);
	assert_string_equal(out.cert, fx.leaf_pem);
	assert_int_equal(strncmp(out.key, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	k = pem_pkey(out.key);
	assert_int_equal(EVP_PKEY_eq(k, fx.leaf_key), 1);
	EVP_PKEY_free(k);
	pki_material_clear(&out);

	/* active_ca set to another CA: fine. A blank chain is no chain. */
	p.active_ca = fx.other_root;
	c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, " \n");
	expect_accepted(&c, &p, &out);
	pki_material_clear(&out);

	/* No configured names: any SAN will do. */
	p.n_names = 0;
	expect_accepted(&c, &p, &out);
	pki_material_clear(&out);
}

/* Intermediates in any order, in cert or chain; the output is the verified path order. */
static void
test_custom_chain(void **state)
{
	struct pki_policy p = policy();
	struct pki_material out;
	struct pki_custom c;
	char *chain = cat3(fx.int1_pem, fx.int2_pem, NULL); /* top-down: reverse of path order */
	char *cert = cat3(fx.leaf_int_pem, fx.int1_pem, fx.int2_pem);
	char *with_root = cat3(fx.int2_pem, fx.int1_pem, fx.root_pem);
	char *bag = cat3(
	    "Bag Attributes\n    friendlyName: proxy\nsubject=CN = proxy\n", fx.leaf_int_pem, NULL);

	c = custom(fx.root_pem, fx.leaf_int_pem, fx.key_pem, chain);
	expect_accepted(&c, &p, &out);
	assert_int_equal(count_certs(out.cert), 3);
	assert_nth(out.cert, 0, fx.leaf_int);
	assert_nth(out.cert, 1, fx.int2);
	assert_nth(out.cert, 2, fx.int1);
	assert_int_equal(out.n_warnings, 0);
	pki_material_clear(&out);

	c = custom(fx.root_pem, cert, fx.key_pem, NULL);
	expect_accepted(&c, &p, &out);
	assert_int_equal(count_certs(out.cert), 3);
	assert_nth(out.cert, 1, fx.int2);
	pki_material_clear(&out);

	/* The root inside chain is dropped, with a warning. */
	c = custom(fx.root_pem, fx.leaf_int_pem, fx.key_pem, with_root);
	expect_accepted(&c, &p, &out);
	assert_int_equal(count_certs(out.cert), 3);
	assert_int_equal(out.n_warnings, 1);
	assert_non_null(
	    strstr(out.warnings[0], "chain: certificate 3 (CN=Test Root CA) is the CA itself"));
	pki_material_clear(&out);

	/* An intermediate as the trust anchor (PARTIAL_CHAIN); int1 is then unused. */
	c = custom(fx.int2_pem, bag, fx.key_pem, chain);
	expect_accepted(&c, &p, &out);
	assert_int_equal(count_certs(out.cert), 1);
	assert_string_equal(out.ca, fx.int2_pem);
	assert_int_equal(out.n_warnings, 2);
	assert_non_null(strstr(out.warnings[0],
	    "chain: certificate 1 (CN=Test Intermediate 1) is not on the verified path"));
	pki_material_clear(&out);

	free(chain);
	free(cert);
	free(with_root);
	free(bag);
}

/* Traditional "EC PARAMETERS" + "EC PRIVATE KEY", as `openssl ecparam -genkey` writes it. */
static void
test_custom_traditional_key(void **state)
{
	BIO *bio = BIO_new(BIO_s_mem());
	struct pki_policy p = policy();
	struct pki_material out;
	struct pki_custom c;
	char *key;

	PEM_write_bio_Parameters(bio, fx.leaf_key);
	PEM_write_bio_PrivateKey_traditional(bio, fx.leaf_key, NULL, NULL, 0, NULL, NULL);
	key = take(bio);
	assert_non_null(strstr(key, "-----BEGIN EC PARAMETERS-----"));
	assert_non_null(strstr(key, "-----BEGIN EC PRIVATE KEY-----"));
	c = custom(fx.root_pem, fx.leaf_pem, key, NULL);
	expect_accepted(&c, &p, &out);
	assert_int_equal(strncmp(out.key, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	pki_material_clear(&out);
	free(key);
}

static void
test_custom_expiry_warning(void **state)
{
	X509 *leaf = mk(&(struct spec){ .cn = "proxy.example.com",
	    .key = fx.leaf_key,
	    .issuer = fx.root,
	    .signer = fx.root_key,
	    .to = 10 * DAY + 3600,
	    .san = "DNS:proxy.example.com,IP:192.0.2.10" });
	char *pem = cert_pem(leaf);
	struct pki_custom c = custom(fx.root_pem, pem, fx.key_pem, NULL);
	struct pki_policy p = policy();
	struct pki_material out;

	expect_accepted(&c, &p, &out);
	assert_int_equal(out.n_warnings, 1);
	assert_non_null(strstr(out.warnings[0], "server certificate expires in 10 days ("));
	pki_material_clear(&out);
	free(pem);
	X509_free(leaf);
}

static void
test_custom_field_refusals(void **state)
{
	char *big = malloc(70001), *trailing, *two, *nul, *der, *mangled, *damaged;
	unsigned char *d = NULL;
	int dlen = i2d_X509(fx.root, &d);
	struct pki_custom c;
	struct pki_policy p = policy();

	memset(big, 'A', 70000);
	big[70000] = '\0';
	expect_refused(
	    big, fx.leaf_pem, fx.key_pem, NULL, "ca: file too large (70000 bytes, limit 65536)");
	expect_refused(fx.root_pem, fx.leaf_pem, fx.key_pem, big,
	    "chain: file too large (70000 bytes, limit 65536)");
	expect_refused("", fx.leaf_pem, fx.key_pem, NULL, "ca: empty");
	expect_refused(fx.root_pem, "\n \t\r\n", fx.key_pem, NULL, "cert: empty");
	expect_refused(fx.root_pem, fx.leaf_pem, NULL, NULL, "key: empty");

	der = malloc((size_t)dlen);
	memcpy(der, d, (size_t)dlen);
	c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	c.ca = (const uint8_t *)der;
	c.ca_len = (size_t)dlen;
	expect_refused_by(&c, &p, "ca: not PEM (binary DER data");

	nul = strdup(fx.leaf_pem);
	nul[100] = '\0';
	c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	c.cert = (const uint8_t *)nul;
	expect_refused_by(&c, &p, "cert: not PEM (a NUL byte at offset 100)");
	expect_refused(
	    fx.root_pem, "hello world\n", fx.key_pem, NULL, "cert: not PEM (no -----BEGIN line)");
	expect_refused(fx.root_pem, "x -----BEGIN CERTIFICATE-----\n", fx.key_pem, NULL,
	    "cert: not PEM (no well-formed -----BEGIN line)");

	trailing = cat3(fx.leaf_pem, "garbage\n", NULL);
	expect_refused(fx.root_pem, trailing, fx.key_pem, NULL,
	    "cert: unexpected data after the last PEM block");
	free(trailing);
	trailing = cat3(fx.key_pem, "\n\n-----END PRIVATE KEY-----\n", NULL);
	expect_refused(fx.root_pem, fx.leaf_pem, trailing, NULL,
	    "key: unexpected data after the last PEM block");

	/* A damaged BEGIN line would otherwise hide a certificate as explanatory text. */
	mangled = strdup(fx.int2_pem);
	mangled[0] = ' ';
	damaged = cat3(mangled, fx.leaf_int_pem, NULL);
	expect_refused(fx.root_pem, damaged, fx.key_pem, NULL,
	    "cert: a damaged PEM line (with -----) outside any block");
	free(damaged);
	damaged =
	    cat3("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL, NULL);
	expect_refused(damaged, fx.leaf_pem, fx.key_pem, NULL,
	    "ca: certificate 1 is not a valid X.509 certificate");
	free(damaged);
	damaged =
	    cat3("-----BEGIN CERTIFICATE-----\nAA!A\n-----END CERTIFICATE-----\n", NULL, NULL);
	expect_refused(damaged, fx.leaf_pem, fx.key_pem, NULL,
	    "ca: PEM block 1 is malformed: bad base64 decode");

	two = cat3(fx.root_pem, fx.other_root_pem, NULL);
	expect_refused(two, fx.leaf_pem, fx.key_pem, NULL,
	    "ca: contains 2 certificates; expected exactly one");
	free(two);
	two = cat3(fx.leaf_pem, fx.key_pem, NULL);
	expect_refused(fx.root_pem, two, fx.key_pem, NULL,
	    "cert: unexpected PEM block \"PRIVATE KEY\" (only CERTIFICATE blocks belong here)");
	free(two);
	two = cat3(fx.key_pem, fx.key_pem, NULL);
	expect_refused(fx.root_pem, fx.leaf_pem, two, NULL, "key: more than one private key");
	expect_refused(fx.root_pem, fx.leaf_pem, fx.leaf_pem, NULL,
	    "key: holds a certificate, not a private key");

	free(big);
	free(der);
	free(nul);
	free(trailing);
	free(mangled);
	free(damaged);
	free(two);
	OPENSSL_free(d);
}

static void
test_custom_key_refusals(void **state)
{
	BIO *bio;
	char *pub, *enc, *trad;

	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, fx.leaf_key);
	pub = take(bio);
	expect_refused(
	    fx.root_pem, fx.leaf_pem, pub, NULL, "key: is a public key, not a private key");

	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PKCS8PrivateKey(
	    bio, fx.leaf_key, EVP_aes_256_cbc(), NULL, 0, NULL, S("secret"));
	enc = take(bio);
	expect_refused(fx.root_pem, fx.leaf_pem, enc, NULL,
	    "key: encrypted private keys are not supported; decrypt it first");

	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey_traditional(
	    bio, fx.leaf_key, EVP_aes_128_cbc(), (unsigned char *)"secret", 6, NULL, NULL);
	trad = take(bio);
	assert_non_null(strstr(trad, "Proc-Type: 4,ENCRYPTED"));
	expect_refused(fx.root_pem, fx.leaf_pem, trad, NULL,
	    "key: encrypted private keys are not supported; decrypt it first");

	expect_refused(fx.root_pem, fx.leaf_pem, fx.other_key_pem, NULL,
	    "key: does not match the server certificate");
	free(pub);
	free(enc);
	free(trad);
}

/* The leaf must come first: a cert file with the intermediate on top is refused. */
static void
test_custom_out_of_order(void **state)
{
	char *cert = cat3(fx.int2_pem, fx.leaf_int_pem, NULL);
	char *chain = cat3(fx.int1_pem, NULL, NULL);

	expect_refused(fx.root_pem, cert, fx.key_pem, chain,
	    "cert: the first certificate is not the one the key belongs to (the key belongs to "
	    "certificate 2");
	free(cert);
	cert = cat3(fx.int2_pem, NULL, NULL);
	free(chain);
	chain = cat3(fx.int1_pem, fx.leaf_int_pem, NULL);
	expect_refused(
	    fx.root_pem, cert, fx.key_pem, chain, "(the key belongs to certificate 2 of chain)");
	free(cert);
	free(chain);
}

/* One leaf of spec s, signed by the fixture root unless s says otherwise, must be refused. */
static void
expect_leaf_refused(struct spec s, EVP_PKEY *key, const char *phrase)
{
	X509 *leaf;
	char *cert, *kp;

	if (s.issuer == NULL) {
		s.issuer = fx.root;
		s.signer = fx.root_key;
	}
	if (s.cn == NULL)
		s.cn = "proxy.example.com";
	if (s.san == NULL)
		s.san = "DNS:proxy.example.com,IP:192.0.2.10";
	s.key = key;
	leaf = mk(&s);
	cert = cert_pem(leaf);
	kp = key_pem(key);
	expect_refused(fx.root_pem, cert, kp, NULL, phrase);
	free(cert);
	free(kp);
	X509_free(leaf);
}

static void
test_custom_leaf_refusals(void **state)
{
	EVP_PKEY *rsa1024 = EVP_RSA_gen(1024), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	expect_leaf_refused(
	    (struct spec){ 0 }, rsa1024, "key: RSA key of 1024 bits is too weak (minimum 2048)");
	expect_leaf_refused((struct spec){ 0 }, ed, "key: ED25519 keys are not accepted");
	expect_leaf_refused((struct spec){ .md = EVP_sha1() }, fx.leaf_key,
	    "cert: the server certificate is signed with ecdsa-with-SHA1; SHA-1 and MD5 signatures "
	    "are refused");
	expect_leaf_refused((struct spec){ .ca = 1 }, fx.leaf_key,
	    "cert: the server certificate is a CA certificate (CA:TRUE)");
	expect_leaf_refused((struct spec){ .eku = "clientAuth" }, fx.leaf_key,
	    "cert: the server certificate's extendedKeyUsage lacks serverAuth");
	expect_leaf_refused((struct spec){ .eku = "" }, fx.leaf_key,
	    "cert: the server certificate has no extendedKeyUsage (serverAuth is required)");
	expect_leaf_refused((struct spec){ .san = "DNS:proxy.example.com" }, fx.leaf_key,
	    "cert: SAN does not cover 192.0.2.10");
	expect_leaf_refused((struct spec){ .san = "DNS:other.example.com,IP:192.0.2.10" },
	    fx.leaf_key,
	    "cert: SAN does not cover proxy.example.com (the CN alone does not count)");
	expect_leaf_refused((struct spec){ .from = -10 * DAY, .to = -DAY }, fx.leaf_key,
	    "cert: the server certificate expired on ");
	expect_leaf_refused((struct spec){ .from = DAY, .to = 10 * DAY }, fx.leaf_key,
	    "cert: the server certificate is not valid before ");
	expect_leaf_refused((struct spec){ .issuer = fx.other_root, .signer = fx.other_key },
	    fx.leaf_key,
	    "cert: does not verify against the supplied CA: unable to get local issuer certificate "
	    "(depth 0, CN=proxy.example.com; its issuer CN=Other Root CA is neither");
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ed);
}

static void
test_custom_ca_refusals(void **state)
{
	EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
	X509 *weak = mk(&(struct spec){ .cn = "Weak Intermediate",
	    .key = rsa1024,
	    .issuer = fx.root,
	    .signer = fx.root_key,
	    .ca = 1 });
	X509 *leaf = mk(&(struct spec){ .cn = "proxy.example.com",
	    .key = fx.leaf_key,
	    .issuer = weak,
	    .signer = rsa1024,
	    .san = "DNS:proxy.example.com,IP:192.0.2.10" });
	X509 *sha1_root = mk(
	    &(struct spec){ .cn = "Test Root CA", .key = fx.root_key, .ca = 1, .md = EVP_sha1() });
	X509 *nokcs = mk(&(struct spec){ .cn = "Test Root CA", .key = fx.root_key, .ca = 2 });
	char *weak_pem = cert_pem(weak), *leaf_pem = cert_pem(leaf),
	     *sha1_pem = cert_pem(sha1_root);
	char *nokcs_pem = cert_pem(nokcs);
	struct pki_custom c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	struct pki_policy p = policy();

	expect_refused(fx.root_pem, leaf_pem, fx.key_pem, weak_pem,
	    "chain: certificate 1 (CN=Weak Intermediate): RSA key of 1024 bits is too weak");
	expect_refused(sha1_pem, fx.leaf_pem, fx.key_pem, NULL,
	    "ca: the CA certificate is signed with ecdsa-with-SHA1");
	expect_refused(nokcs_pem, fx.leaf_pem, fx.key_pem, NULL, "ca: keyUsage lacks keyCertSign");
	expect_refused(fx.leaf_pem, fx.leaf_pem, fx.key_pem, NULL,
	    "ca: is not a CA certificate (basicConstraints CA:TRUE is missing)");
	expect_refused(fx.other_root_pem, fx.leaf_pem, fx.key_pem, NULL,
	    "cert: does not verify against the supplied CA");
	expect_refused(fx.root_pem, fx.leaf_int_pem, fx.key_pem, NULL,
	    "unable to get local issuer certificate (depth 0, CN=proxy.example.com; its issuer "
	    "CN=Test Intermediate 2");
	p.active_ca = fx.root;
	expect_refused_by(&c, &p, "ca: is the CA already active");
	p = policy();
	p.n_names = 0;
	{
		X509 *nosan = mk(&(struct spec){ .cn = "proxy.example.com",
		    .key = fx.leaf_key,
		    .issuer = fx.root,
		    .signer = fx.root_key });
		char *nosan_pem = cert_pem(nosan);

		c = custom(fx.root_pem, nosan_pem, fx.key_pem, NULL);
		expect_refused_by(&c, &p, "cert: the server certificate has no subjectAltName");
		free(nosan_pem);
		X509_free(nosan);
	}
	free(weak_pem);
	free(leaf_pem);
	free(sha1_pem);
	free(nokcs_pem);
	X509_free(weak);
	X509_free(leaf);
	X509_free(sha1_root);
	X509_free(nokcs);
	EVP_PKEY_free(rsa1024);
}

/* Smaller refusals and warnings that need no special certificate. */
static void
test_custom_misc(void **state)
{
	char *many = strdup(fx.leaf_pem), *next, *params, *kder;
	unsigned char *d = NULL;
	int i, dlen = i2d_PrivateKey(fx.leaf_key, &d);
	struct pki_custom c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	struct pki_policy p = policy();
	struct pki_material out;
	char *prefixed[] = { S("DNS:proxy.example.com"), S("IP:192.0.2.10") };
	X509 *reissued = mk(&(struct spec){ .cn = "Test Root CA", .key = fx.root_key, .ca = 1 });
	X509 *noku;
	BIO *bio;

	for (i = 0; i < 16; i++) {
		next = cat3(many, fx.int1_pem, NULL);
		free(many);
		many = next;
	}
	expect_refused(fx.root_pem, many, fx.key_pem, NULL, "cert: more than 16 certificates");

	kder = malloc((size_t)dlen);
	memcpy(kder, d, (size_t)dlen);
	c.key = (const uint8_t *)kder;
	c.key_len = (size_t)dlen;
	expect_refused_by(&c, &p, "key: not PEM (binary DER data; convert it with `openssl pkey");

	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_Parameters(bio, fx.leaf_key);
	params = take(bio);
	expect_refused(fx.root_pem, fx.leaf_pem, params, NULL, "key: no private key found");
	{
		char *root_key = key_pem(fx.root_key);

		expect_refused(fx.root_pem, fx.leaf_pem, root_key, NULL,
		    "key: belongs to the CA certificate, not to the server certificate");
		free(root_key);
	}

	/* Policy names may carry the DNS:/IP: prefixes of the profile. */
	c = custom(fx.root_pem, fx.leaf_pem, fx.key_pem, NULL);
	p.names = prefixed;
	expect_accepted(&c, &p, &out);
	pki_material_clear(&out);

	/* The same subject (a re-issued root) as the active CA is allowed, with a warning. */
	p = policy();
	p.active_ca = reissued;
	expect_accepted(&c, &p, &out);
	assert_int_equal(out.n_warnings, 1);
	assert_non_null(strstr(out.warnings[0], "the CA has the same subject as the active CA"));
	pki_material_clear(&out);

	/* A CA:TRUE certificate without keyUsage is no trust anchor here. */
	noku = X509_new();
	X509_set_version(noku, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(noku), 7);
	X509_set_subject_name(noku, X509_get_subject_name(fx.root));
	X509_set_issuer_name(noku, X509_get_subject_name(fx.root));
	X509_gmtime_adj(X509_getm_notBefore(noku), -3600);
	X509_gmtime_adj(X509_getm_notAfter(noku), 90 * DAY);
	X509_set_pubkey(noku, fx.root_key);
	ext(noku, noku, NID_basic_constraints, "critical,CA:TRUE");
	ext(noku, noku, NID_subject_key_identifier, "hash");
	X509_sign(noku, fx.root_key, EVP_sha256());
	{
		char *pem = cert_pem(noku);

		expect_refused(pem, fx.leaf_pem, fx.key_pem, NULL,
		    "ca: has no keyUsage extension (keyCertSign is required)");
		free(pem);
	}

	/* A self-signed CA whose own signature is damaged (last byte of ECDSA s flipped). */
	{
		unsigned char *der = NULL;
		const unsigned char *q;
		int n = i2d_X509(fx.root, &der);
		X509 *bad;
		char *pem;

		der[n - 1] ^= 0x01;
		q = der;
		bad = d2i_X509(NULL, &q, n);
		assert_non_null(bad);
		pem = cert_pem(bad);
		expect_refused(pem, fx.leaf_pem, fx.key_pem, NULL,
		    "ca: claims to be self-signed, but its signature does not verify");
		free(pem);
		X509_free(bad);
		OPENSSL_free(der);
	}

	X509_free(noku);
	X509_free(reissued);
	free(many);
	free(kder);
	free(params);
	OPENSSL_free(d);
}

/* pki_check_set: a set read back from a backup, key and chain only. */
static int
check_set(const char *ca, const char *cert, const char *key, char *err, size_t errlen)
{
	return pki_check_set((const uint8_t *)ca, ca != NULL ? strlen(ca) : 0,
	    (const uint8_t *)cert, cert != NULL ? strlen(cert) : 0, (const uint8_t *)key,
	    key != NULL ? strlen(key) : 0, err, errlen);
}

static void
expect_set_refused(const char *ca, const char *cert, const char *key, const char *phrase)
{
	char err[512] = "";
	int rc = check_set(ca, cert, key, err, sizeof(err));

	if (rc != -1 || strstr(err, phrase) == NULL)
		fail_msg("rc %d, err \"%s\", want \"%s\"", rc, err, phrase);
	assert_null(strchr(err, '\n'));
	assert_int_equal(ERR_peek_error(), 0);
}

static void
test_check_set(void **state)
{
	char err[512] = "", *chained, *with_ca;
	X509 *foreign;
	char *foreign_pem;
	BIO *bio;

	/* A good set, with and without the CA after the leaf (as lib.sh writes server.crt). */
	assert_int_equal(check_set(fx.root_pem, fx.leaf_pem, fx.key_pem, err, sizeof(err)), 0);
	with_ca = cat3(fx.leaf_pem, fx.root_pem, NULL);
	assert_int_equal(check_set(fx.root_pem, with_ca, fx.key_pem, err, sizeof(err)), 0);
	/* Through two intermediates that follow the leaf in cert. */
	chained = cat3(fx.leaf_int_pem, fx.int2_pem, fx.int1_pem);
	assert_int_equal(check_set(fx.root_pem, chained, fx.key_pem, err, sizeof(err)), 0);
	/* Without them, the leaf does not chain. */
	expect_set_refused(fx.root_pem, fx.leaf_int_pem, fx.key_pem, "does not chain to the CA");

	/* The key of another set. */
	expect_set_refused(fx.root_pem, fx.leaf_pem, fx.other_key_pem,
	    "key: does not match the server certificate");
	/* The CA's own key in place of the server's. */
	{
		char *root_key = key_pem(fx.root_key);

		expect_set_refused(fx.root_pem, fx.leaf_pem, root_key, "belongs to the CA");
		free(root_key);
	}
	/* A public key only: never a match, whatever its public half. */
	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(bio, fx.leaf_key);
	{
		char *pub = take(bio);

		expect_set_refused(fx.root_pem, fx.leaf_pem, pub, "public key");
		free(pub);
	}

	/* A leaf with the same key, signed by another CA but naming ours as issuer. */
	foreign = mk(&(struct spec){ .cn = "proxy.example.com",
	    .key = fx.leaf_key,
	    .issuer = fx.root,
	    .signer = fx.other_key,
	    .san = "DNS:proxy.example.com" });
	foreign_pem = cert_pem(foreign);
	expect_set_refused(fx.root_pem, foreign_pem, fx.key_pem, "does not chain to the CA");
	/* A leaf of our CA checked against another CA. */
	expect_set_refused(fx.other_root_pem, fx.leaf_pem, fx.key_pem, "does not chain to the CA");

	/* Garbage and empty fields, each named. */
	expect_set_refused("not a certificate\n", fx.leaf_pem, fx.key_pem, "ca: not PEM");
	expect_set_refused(fx.root_pem, "-----BEGIN CERTIFICATE-----\nAAAA\n", fx.key_pem, "cert:");
	expect_set_refused(fx.root_pem, fx.leaf_pem, "garbage", "key: not PEM");
	expect_set_refused("", fx.leaf_pem, fx.key_pem, "ca: empty");
	expect_set_refused(fx.root_pem, NULL, fx.key_pem, "cert: empty");
	expect_set_refused(fx.root_pem, fx.leaf_pem, " \n", "key: empty");
	/* Two CAs where one belongs. */
	expect_set_refused(with_ca, fx.leaf_pem, fx.key_pem, "expected exactly one");

	X509_free(foreign);
	free(foreign_pem);
	free(chained);
	free(with_ca);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_not_pem),
		cmocka_unit_test(test_bundle_id),
		cmocka_unit_test(test_key_kind_names),
		cmocka_unit_test(test_generate_p256),
		cmocka_unit_test(test_generate_p384),
		cmocka_unit_test(test_generate_rsa2048),
		cmocka_unit_test(test_generate_rsa3072),
		cmocka_unit_test(test_generate_rsa4096),
		cmocka_unit_test(test_generate_distinct),
		cmocka_unit_test(test_generate_cn_choice),
		cmocka_unit_test(test_generate_refusals),
		cmocka_unit_test(test_custom_ok),
		cmocka_unit_test(test_custom_chain),
		cmocka_unit_test(test_custom_traditional_key),
		cmocka_unit_test(test_custom_expiry_warning),
		cmocka_unit_test(test_custom_field_refusals),
		cmocka_unit_test(test_custom_key_refusals),
		cmocka_unit_test(test_custom_out_of_order),
		cmocka_unit_test(test_custom_leaf_refusals),
		cmocka_unit_test(test_custom_ca_refusals),
		cmocka_unit_test(test_custom_misc),
		cmocka_unit_test(test_check_set),
	};

	return cmocka_run_group_tests_name("pki", tests, setup_fixture, teardown_fixture);
}
