/*
 * Generation of a certificate set: the keys, a CA and the server certificate it
 * signs, as carotated(8) STAGING AND THE TRUST BUNDLE describes them.
 */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "digest.h"
#include "errbuf.h"
#include "log.h"
#include "pki.h"
#include "pki_int.h"
#include "xmalloc.h"

#define PKI_BACKDATE      3600 /* seconds notBefore lies in the past: agents' clock skew */
#define PKI_CA_NAME_MAX   50   /* bytes of <name>: "<name> CA YYYY-MM-DD" fits a 64-byte CN */
#define PKI_CN_MAX        64   /* ub-common-name, RFC 5280 */
#define PKI_DNS_MAX       253
#define PKI_DNS_LABEL_MAX 63

/* Key kinds of generated sets; RSA when curve is NULL. */
struct pki_kind {
	const char *name;
	const char *curve;
	unsigned bits;
};

/* One X.509v3 extension in openssl.cnf syntax. */
struct pki_ext {
	int nid;
	const char *value;
};

static const struct pki_kind pki_kinds[] = {
	[PKI_KEY_EC_P256] = { "ec-p256", "P-256", 0 },
	[PKI_KEY_EC_P384] = { "ec-p384", "P-384", 0 },
	[PKI_KEY_RSA_2048] = { "rsa-2048", NULL, 2048 },
	[PKI_KEY_RSA_3072] = { "rsa-3072", NULL, 3072 },
	[PKI_KEY_RSA_4096] = { "rsa-4096", NULL, 4096 },
};

static int pki_valid_dns(const char *);
static int pki_check_ca_name(const char *);
static int pki_check_san(const char *, size_t, char *, size_t);
static int pki_check_profile(const struct pki_profile *, char *, size_t);
static const EVP_MD *pki_kind_md(enum pki_key_kind);
static EVP_PKEY *pki_keygen(enum pki_key_kind, char *, size_t);
static int pki_keygen_pair(enum pki_key_kind, EVP_PKEY **, EVP_PKEY **, char *, size_t);
static int pki_set_serial(X509 *);
static X509 *pki_cert_new(EVP_PKEY *, const X509_NAME *, time_t, unsigned);
static int pki_add_exts(X509 *, X509 *, const struct pki_ext *, size_t);
static GENERAL_NAME *pki_san_gen(const char *);
static int pki_add_sans(X509 *, char *const *, size_t, int);
static X509_NAME *pki_ca_subject(const char *, time_t);
static const char *pki_server_cn(char *const *, size_t);
static X509 *pki_make_ca(const struct pki_profile *, EVP_PKEY *, time_t);
static X509 *pki_make_server(const struct pki_profile *, X509 *, EVP_PKEY *, EVP_PKEY *, time_t);
static int pki_renew_parse(const struct pki_renewal *, X509 **, EVP_PKEY **, char *, size_t);

/* LDH labels of 1-63 bytes, 253 in all; "*" only as a whole first label over two or more. */
static int
pki_valid_dns(const char *s)
{
	size_t len = strlen(s), label = 0, i;
	unsigned char ip[16];

	if (len == 0 || len > PKI_DNS_MAX || pki_parse_ip(s, ip) != -1)
		return 0;
	if (s[0] == '*') {
		if (s[1] != '.' || strchr(s + 2, '.') == NULL)
			return 0;
		s += 2;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		           (s[i] >= '0' && s[i] <= '9') || (s[i] == '-' && label > 0)) {
			if (++label > PKI_DNS_LABEL_MAX)
				return 0;
		} else
			return 0;
	}
	return label > 0 && s[i - 1] != '-';
}

int
pki_key_kind_parse(const char *s, enum pki_key_kind *kind)
{
	size_t i;

	for (i = 0; s != NULL && i < PKI_NITEMS(pki_kinds); i++) {
		if (strcmp(s, pki_kinds[i].name) == 0) {
			*kind = (enum pki_key_kind)i;
			return 0;
		}
	}
	return -1;
}

const char *
pki_key_kind_name(enum pki_key_kind kind)
{
	if ((size_t)kind >= PKI_NITEMS(pki_kinds))
		return "unknown";
	return pki_kinds[kind].name;
}

/* The CA name becomes part of a CN: no control bytes, short enough for ub-common-name. */
static int
pki_check_ca_name(const char *name)
{
	size_t i, len = strlen(name);

	if (len == 0 || len > PKI_CA_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return -1;
	return 0;
}

/* The caller validated SANs already; a second look costs nothing and keeps pki.c safe alone. */
static int
pki_check_san(const char *san, size_t i, char *err, size_t errlen)
{
	char show[PKI_SHOW_MAX];
	unsigned char ip[16];

	if (san == NULL)
		return errbuf_fail(err, errlen, "SAN %zu is missing", i + 1);
	if (strncmp(san, "DNS:", 4) == 0) {
		if (!pki_valid_dns(san + 4))
			return errbuf_fail(err, errlen, "SAN %zu (\"%s\") is not a valid DNS name",
			    i + 1, pki_show(san, show));
		return 0;
	}
	if (strncmp(san, "IP:", 3) == 0) {
		if (pki_parse_ip(san + 3, ip) == -1)
			return errbuf_fail(err, errlen,
			    "SAN %zu (\"%s\") is not a valid IP address", i + 1,
			    pki_show(san, show));
		return 0;
	}
	return errbuf_fail(err, errlen, "SAN %zu (\"%s\") must be DNS:<name> or IP:<address>",
	    i + 1, pki_show(san, show));
}

static int
pki_check_profile(const struct pki_profile *p, char *err, size_t errlen)
{
	size_t i;

	if ((size_t)p->key >= PKI_NITEMS(pki_kinds))
		return errbuf_fail(err, errlen, "unknown key kind %d", (int)p->key);
	if (p->ca_days == 0 || p->ca_days > PKI_MAX_DAYS)
		return errbuf_fail(err, errlen, "ca_days must be between 1 and %d (got %u)",
		    PKI_MAX_DAYS, p->ca_days);
	if (p->server_days == 0 || p->server_days > PKI_MAX_DAYS)
		return errbuf_fail(err, errlen, "server_days must be between 1 and %d (got %u)",
		    PKI_MAX_DAYS, p->server_days);
	if (p->server_days > p->ca_days)
		return errbuf_fail(err, errlen,
		    "server_days (%u) exceeds ca_days (%u): "
		    "the server certificate would outlive its CA",
		    p->server_days, p->ca_days);
	if (p->name != NULL && pki_check_ca_name(p->name) == -1)
		return errbuf_fail(err, errlen, "the CA name must be 1 to %d printable characters",
		    PKI_CA_NAME_MAX);
	if (p->n_sans == 0 || p->sans == NULL)
		return errbuf_fail(
		    err, errlen, "at least one SAN (DNS:<name> or IP:<address>) is required");
	if (p->n_sans > PKI_MAX_SANS)
		return errbuf_fail(
		    err, errlen, "too many SANs (%zu, limit %d)", p->n_sans, PKI_MAX_SANS);
	for (i = 0; i < p->n_sans; i++)
		if (pki_check_san(p->sans[i], i, err, errlen) == -1)
			return -1;
	return 0;
}

/* SHA-384 for P-384 keys (matching strength, as CA/B and Mozilla policy ask), else SHA-256. */
static const EVP_MD *
pki_kind_md(enum pki_key_kind kind)
{
	return kind == PKI_KEY_EC_P384 ? EVP_sha384() : EVP_sha256();
}

/* EVP_RSA_gen, not EVP_PKEY_Q_keygen: the latter takes RSA bits as a size_t vararg. */
static EVP_PKEY *
pki_keygen(enum pki_key_kind kind, char *err, size_t errlen)
{
	const struct pki_kind *k = &pki_kinds[kind];
	EVP_PKEY *key;

	key = k->curve != NULL ? EVP_EC_gen(k->curve) : EVP_RSA_gen(k->bits);
	if (key == NULL)
		pki_ssl_fail(err, errlen, "key generation failed");
	return key;
}

/* 128 random bits with the top one cleared: positive, nonzero, within 20 octets (RFC 5280). */
static int
pki_set_serial(X509 *x)
{
	unsigned char buf[16];
	BIGNUM *bn = NULL;
	int ok;

	do {
		BN_free(bn);
		if (RAND_bytes(buf, sizeof(buf)) != 1)
			return -1;
		buf[0] &= 0x7f;
		if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL)
			return -1;
	} while (BN_is_zero(bn));
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* A v3 certificate for key, valid from now - 1 h to now + days; issuer and extensions follow. */
static X509 *
pki_cert_new(EVP_PKEY *key, const X509_NAME *subject, time_t now, unsigned days)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || pki_set_serial(x) == -1 ||
	    X509_set_subject_name(x, subject) != 1 ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, -PKI_BACKDATE, &now) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now) == NULL ||
	    X509_set_pubkey(x, key) != 1) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Constant extensions through the config parser; issuer supplies the AKI. */
static int
pki_add_exts(X509 *x, X509 *issuer, const struct pki_ext *exts, size_t n)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	size_t i;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	for (i = 0; i < n; i++) {
		if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value)) == NULL)
			return -1;
		ok = X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
		if (ok != 1)
			return -1;
	}
	return 0;
}

/* A validated "DNS:x" / "IP:x" as a GeneralName, built directly: no config syntax to escape. */
static GENERAL_NAME *
pki_san_gen(const char *san)
{
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_STRING *s = NULL;
	unsigned char ip[16];
	int iplen, type;

	if (gen == NULL)
		return NULL;
	if (strncmp(san, "DNS:", 4) == 0) {
		type = GEN_DNS;
		if ((s = ASN1_IA5STRING_new()) == NULL || ASN1_STRING_set(s, san + 4, -1) != 1)
			goto fail;
	} else {
		type = GEN_IPADD;
		if ((iplen = pki_parse_ip(san + 3, ip)) == -1 ||
		    (s = ASN1_OCTET_STRING_new()) == NULL ||
		    ASN1_OCTET_STRING_set(s, ip, iplen) != 1)
			goto fail;
	}
	GENERAL_NAME_set0_value(gen, type, s);
	return gen;
fail:
	ASN1_STRING_free(s);
	GENERAL_NAME_free(gen);
	return NULL;
}

/* critical when the subject is empty (RFC 5280 4.2.1.6). */
static int
pki_add_sans(X509 *x, char *const *sans, size_t n, int critical)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen;
	size_t i;
	int ok = gens != NULL;

	for (i = 0; ok && i < n; i++) {
		if ((gen = pki_san_gen(sans[i])) == NULL || sk_GENERAL_NAME_push(gens, gen) <= 0) {
			GENERAL_NAME_free(gen);
			ok = 0;
		}
	}
	ok = ok &&
	     X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/*
 * "CN=<name> CA <YYYY-MM-DD>" as carotated(8) STAGING AND THE TRUST BUNDLE has it, plus "OU=<16
 * random hex>": the date alone repeats when two sets are generated on one day, and agents must hold
 * old and new CA side by side, told apart by subject.
 */
static X509_NAME *
pki_ca_subject(const char *name, time_t now)
{
	X509_NAME *subject = X509_NAME_new();
	unsigned char rnd[8];
	char cn[PKI_CN_MAX + 1], date[16], ou[2 * sizeof(rnd) + 1];
	struct tm tm;

	if (subject == NULL || gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	digest_hex(rnd, sizeof(rnd), ou);
	snprintf(cn, sizeof(cn), "%s CA %s", name, date);
	if (X509_NAME_add_entry_by_txt(
	        subject, "OU", MBSTRING_UTF8, (unsigned char *)ou, -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(
	        subject, "CN", MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	return subject;
fail:
	X509_NAME_free(subject);
	return NULL;
}

/* CN = the first DNS name that fits a CN, else the first IP address; NULL: leave the CN out. */
static const char *
pki_server_cn(char *const *sans, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strncmp(sans[i], "DNS:", 4) == 0 && strlen(sans[i] + 4) <= PKI_CN_MAX)
			return sans[i] + 4;
	for (i = 0; i < n; i++)
		if (strncmp(sans[i], "IP:", 3) == 0)
			return sans[i] + 3;
	return NULL;
}

/* Self-signed, CA:TRUE pathlen 0 (it signs only leaves), keyCertSign and cRLSign, AKI = SKI. */
static X509 *
pki_make_ca(const struct pki_profile *p, EVP_PKEY *key, time_t now)
{
	static const struct pki_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	X509_NAME *subject = pki_ca_subject(p->name != NULL ? p->name : PKI_DEFAULT_NAME, now);
	X509 *x = subject != NULL ? pki_cert_new(key, subject, now, p->ca_days) : NULL;
	int ok;

	ok = x != NULL && X509_set_issuer_name(x, subject) == 1 &&
	     pki_add_exts(x, x, exts, PKI_NITEMS(exts)) == 0 &&
	     X509_sign(x, key, pki_kind_md(p->key)) > 0;
	X509_NAME_free(subject);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* CA:FALSE, digitalSignature (+keyEncipherment for RSA key transport), serverAuth, SANs. */
static X509 *
pki_make_server(const struct pki_profile *p, X509 *ca, EVP_PKEY *cakey, EVP_PKEY *key, time_t now)
{
	static const struct pki_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	struct pki_ext ku = { NID_key_usage, "critical,digitalSignature" };
	const char *cn = pki_server_cn(p->sans, p->n_sans);
	X509_NAME *subject = X509_NAME_new();
	X509 *x = NULL;
	int ok;

	if (pki_kinds[p->key].curve == NULL)
		ku.value = "critical,digitalSignature,keyEncipherment";
	ok = subject != NULL &&
	     (cn == NULL || X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
	                        (const unsigned char *)cn, -1, -1, 0) == 1) &&
	     (x = pki_cert_new(key, subject, now, p->server_days)) != NULL &&
	     X509_set_issuer_name(x, X509_get_subject_name(ca)) == 1 &&
	     pki_add_exts(x, ca, exts, PKI_NITEMS(exts)) == 0 && pki_add_exts(x, ca, &ku, 1) == 0 &&
	     pki_add_sans(x, p->sans, p->n_sans, cn == NULL) == 0 &&
	     X509_sign(x, cakey, pki_kind_md(p->key)) > 0;
	X509_NAME_free(subject);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/*
 * The CA's and the server's keys. RSA keys take seconds each (a search for
 * primes), so the server's is made in a second process meanwhile: on two
 * cores a set costs one key generation instead of two. It comes back as
 * PKCS#8 PEM over a pipe.
 */
static int
pki_keygen_pair(enum pki_key_kind kind, EVP_PKEY **cakey, EVP_PKEY **key, char *err, size_t errlen)
{
	char buf[16384];
	size_t got = 0;
	ssize_t n;
	int fds[2], status;
	pid_t pid;
	BIO *bio;

	*cakey = *key = NULL;
	if (kind == PKI_KEY_EC_P256 || kind == PKI_KEY_EC_P384 || pipe2(fds, O_CLOEXEC) == -1 ||
	    (pid = fork()) == -1) {
		if ((*cakey = pki_keygen(kind, err, errlen)) == NULL ||
		    (*key = pki_keygen(kind, err, errlen)) == NULL)
			return -1;
		return 0;
	}
	if (pid == 0) {
		EVP_PKEY *k = pki_keygen(kind, err, errlen);
		char *pem = k != NULL ? pki_pem_key(k) : NULL;
		size_t len = pem != NULL ? strlen(pem) : 0, off = 0;

		int rc;

		close(fds[0]);
		while (off < len && (n = write(fds[1], pem + off, len - off)) > 0)
			off += (size_t)n;
		rc = pem != NULL && off == len ? 0 : 1;
		/* The key is the parent's now: no copy of it lingers, even in a dying process. */
		if (pem != NULL)
			OPENSSL_cleanse(pem, len);
		free(pem);
		EVP_PKEY_free(k);
		_exit(rc);
	}
	close(fds[1]);
	*cakey = pki_keygen(kind, err, errlen);
	while (got < sizeof(buf) - 1 && (n = read(fds[0], buf + got, sizeof(buf) - 1 - got)) != 0) {
		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if ((bio = BIO_new_mem_buf(buf, (int)got)) != NULL)
		*key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (*cakey == NULL || *key == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (*cakey != NULL)
			errbuf_fail(err, errlen, "key generation failed in the helper process");
		EVP_PKEY_free(*cakey);
		EVP_PKEY_free(*key);
		*cakey = *key = NULL;
		return -1;
	}
	return 0;
}

int
pki_generate(const struct pki_profile *p, struct pki_material *out, char *err, size_t errlen)
{
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *leaf = NULL;
	time_t now = pki_now(p->now);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	ERR_clear_error();
	if (pki_check_profile(p, err, errlen) == -1)
		return -1;
	if (pki_keygen_pair(p->key, &cakey, &key, err, errlen) == -1)
		goto out;
	if ((ca = pki_make_ca(p, cakey, now)) == NULL) {
		pki_ssl_fail(err, errlen, "cannot build the CA certificate");
		goto out;
	}
	if ((leaf = pki_make_server(p, ca, cakey, key, now)) == NULL) {
		pki_ssl_fail(err, errlen, "cannot build the server certificate");
		goto out;
	}
	out->ca = pki_pem_x509(ca);
	out->ca_key = pki_pem_key(cakey);
	out->cert = pki_pem_x509(leaf);
	out->key = pki_pem_key(key);
	if (out->ca == NULL || out->ca_key == NULL || out->cert == NULL || out->key == NULL) {
		pki_ssl_fail(err, errlen, "cannot encode the generated set as PEM");
		pki_material_clear(out);
		goto out;
	}
	rc = 0;
out:
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

/*
 * The CA certificate and its private key, which must be the CA's (public halves
 * compared: the key is the one carotated stored, not a client's).
 */
static int
pki_renew_parse(const struct pki_renewal *r, X509 **ca, EVP_PKEY **cakey, char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	BIO *bio;

	*ca = NULL;
	*cakey = NULL;
	if ((certs = pki_certs_from_pem(r->ca, r->ca_len, err, errlen)) == NULL)
		return -1;
	*ca = X509_dup(sk_X509_value(certs, 0));
	sk_X509_pop_free(certs, X509_free);
	if ((bio = BIO_new_mem_buf(r->ca_key, (int)r->ca_key_len)) != NULL)
		*cakey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (*ca == NULL || *cakey == NULL)
		return pki_ssl_fail(err, errlen, "the active CA or its stored key cannot be read");
	if (X509_check_private_key(*ca, *cakey) != 1)
		return errbuf_fail(err, errlen, "the stored CA key is not the active CA's");
	return 0;
}

int
pki_renew(const struct pki_renewal *r, struct pki_material *out, char *err, size_t errlen)
{
	struct pki_profile p = { PKI_KEY_EC_P256, PKI_MAX_DAYS, r->server_days, NULL, r->sans,
		r->n_sans, r->now };
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *leaf = NULL;
	time_t now = pki_now(r->now);
	int64_t nb, na;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	ERR_clear_error();
	if (pki_renew_parse(r, &ca, &cakey, err, errlen) == -1)
		goto out;
	/* The leaf keeps the kind of key its CA has (and so the CA's signature digest). */
	if (pki_key_kind_parse(pki_key_type(cakey), &p.key) == -1) {
		errbuf_fail(err, errlen,
		    "the active CA's key (%s) is not a kind carotated generates",
		    pki_key_type(cakey));
		goto out;
	}
	if (pki_check_profile(&p, err, errlen) == -1)
		goto out;
	if (pki_cert_times(ca, &nb, &na) == -1 || na <= (int64_t)now) {
		errbuf_fail(err, errlen, "the active CA has expired: rotate to a new CA");
		goto out;
	}
	if ((int64_t)now + (int64_t)r->server_days * 86400 > na) {
		errbuf_fail(err, errlen,
		    "a server certificate of %u days would outlive the active CA (%lld days left): "
		    "ask for fewer days, or plan a CA rotation",
		    r->server_days, (long long)((na - (int64_t)now) / 86400));
		goto out;
	}
	if ((key = pki_keygen(p.key, err, errlen)) == NULL)
		goto out;
	if ((leaf = pki_make_server(&p, ca, cakey, key, now)) == NULL) {
		pki_ssl_fail(err, errlen, "cannot build the server certificate");
		goto out;
	}
	out->ca = pki_pem_x509(ca);
	out->cert = pki_pem_x509(leaf);
	out->key = pki_pem_key(key);
	if (out->ca == NULL || out->cert == NULL || out->key == NULL) {
		pki_ssl_fail(err, errlen, "cannot encode the renewed certificate as PEM");
		pki_material_clear(out);
		goto out;
	}
	rc = 0;
out:
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}
