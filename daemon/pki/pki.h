/*
 * OpenSSL: certificate parsing, fingerprints, descriptions, the trust bundle id
 * (pki.c); generation of a set (pki_gen.c); validation of a custom set
 * (pki_custom.c).
 */
#ifndef CAROTATE_PKI_H
#define CAROTATE_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "carotate.pb-c.h"
#include "digest.h"

#define PKI_SHA256_HEX DIGEST_SHA256_HEX /* 64 hex digits and a NUL */

/* Every certificate in a PEM buffer, in order; NULL (err filled) when none parses. */
STACK_OF(X509) * pki_certs_from_pem(const uint8_t *, size_t, char *err, size_t errlen);
/*
 * Loads OpenSSL's configuration (openssl.cnf), its algorithms and the time
 * zone once, in the parent: the certificate jobs it forks run under a filter
 * that opens no file.
 * 0, or -1 when OpenSSL could not initialise.
 */
int pki_init(void);
/* SHA-256 of the DER, lower-case hex. */
void pki_cert_sha256(X509 *, char out[PKI_SHA256_HEX]);
/* The same of the first certificate of a PEM buffer: 0, or -1 (err filled) when none parses. */
int pki_pem_sha256(const uint8_t *, size_t, char out[PKI_SHA256_HEX], char *err, size_t errlen);
/* notAfter / notBefore as seconds since the epoch; -1 when unrepresentable. */
int pki_cert_times(X509 *, int64_t *not_before, int64_t *not_after);
/* "ec-p256", "rsa-2048", "ed25519", ...; a static string. */
const char *pki_key_type(const EVP_PKEY *);
/* The subject in RFC 2253 form (heap string). */
char *pki_subject(X509 *);
/* Fills info (heap strings) with the certificate's subject, issuer, sums, dates and SANs. */
void pki_describe(X509 *, Carotate__V1__CertInfo *info);
/* 1 when leaf chains to ca through the intermediates (signatures and names; not dates). */
int pki_chains_to(X509 *leaf, STACK_OF(X509) * intermediates, X509 *ca);
/* 1 when cert is signed by the key of ca and names it as issuer. */
int pki_issued_by(X509 *cert, X509 *ca);
/* The bundle id: SHA-256 over the DER of the CAs, sorted bytewise; -1 on error. */
int pki_bundle_id(X509 *const *cas, size_t n, char out[PKI_SHA256_HEX]);

/* Key types a generated set may use (carotated(8) STAGING AND THE TRUST BUNDLE). */
enum pki_key_kind {
	PKI_KEY_EC_P256,
	PKI_KEY_EC_P384,
	PKI_KEY_RSA_2048,
	PKI_KEY_RSA_3072,
	PKI_KEY_RSA_4096,
};

/* "ec-p256" ... "rsa-4096" -> kind; -1 for anything else. */
int pki_key_kind_parse(const char *, enum pki_key_kind *);
const char *pki_key_kind_name(enum pki_key_kind);

#define PKI_DEFAULT_CA_DAYS     3650
#define PKI_DEFAULT_SERVER_DAYS 397
#define PKI_DEFAULT_NAME        "carotate"
#define PKI_MAX_DAYS            36500
#define PKI_MAX_SANS            64
#define PKI_MAX_INPUT           (64 * 1024) /* bytes of one PEM field of a custom set */
#define PKI_EXPIRY_WARNING_DAYS 30

/* What to generate. sans are "DNS:name" / "IP:address", already validated by the caller. */
struct pki_profile {
	enum pki_key_kind key;
	unsigned ca_days;
	unsigned server_days;
	const char *name; /* CA CN = "<name> CA <YYYY-MM-DD>" */
	char *const *sans;
	size_t n_sans;
	time_t now;
};

/* A certificate set as PEM text (heap, NUL-terminated); keys are wiped on clear. */
struct pki_material {
	char *ca;     /* CA certificate */
	char *ca_key; /* CA private key: generated sets only, else NULL */
	char *cert;   /* server certificate, then intermediates */
	char *key;    /* server private key (PKCS#8, unencrypted) */
	char **warnings;
	size_t n_warnings;
};

/* Raw bytes of a custom set as the operator sent them. chain may be empty. */
struct pki_custom {
	const uint8_t *ca, *cert, *key, *chain;
	size_t ca_len, cert_len, key_len, chain_len;
};

/* What a custom set must satisfy beyond X.509 itself. */
struct pki_policy {
	char *const *names; /* configured proxy names: DNS names and IP literals */
	size_t n_names;
	X509 *active_ca; /* the new CA must differ from it; NULL when there is none */
	time_t now;
	int renew; /* renew: the CA must be active_ca itself, not differ from it */
};

/* What renew signs: a new leaf under the active CA, whose key carotated kept. */
struct pki_renewal {
	const uint8_t *ca, *ca_key; /* PEM: the active CA, its private key */
	size_t ca_len, ca_key_len;
	unsigned server_days;
	char *const *sans; /* "DNS:name" / "IP:address", as pki_profile's */
	size_t n_sans;
	time_t now;
};

/*
 * Generates a CA and a server certificate it signs with the profile of
 * carotated(8) STAGING AND THE TRUST BUNDLE. Slow for RSA (seconds): run it off the event loop.
 */
int pki_generate(const struct pki_profile *, struct pki_material *, char *err, size_t errlen);
/*
 * Checks a custom set (carotatectl(1) install) and, when it passes, returns it
 * re-encoded by OpenSSL in out (ca_key NULL) with any warnings. On refusal
 * returns -1 and err names the exact problem.
 */
int pki_validate_custom(const struct pki_custom *, const struct pki_policy *,
    struct pki_material *out, char *err, size_t errlen);
void pki_material_clear(struct pki_material *);
/*
 * A new server key and certificate (the profile of pki_generate's, the key of
 * the CA's kind) signed by the CA in r, which must not expire before it. out
 * gets ca (re-encoded), cert and key; ca_key stays NULL. 0, or -1 with err.
 */
int pki_renew(const struct pki_renewal *r, struct pki_material *out, char *err, size_t errlen);
/*
 * Checks a set read back from disk (a backup): the key is the leaf's (a
 * sign-and-verify round trip, not only the public halves) and the leaf, with
 * the intermediates that follow it in cert, chains to ca (signatures and
 * names; dates are not checked). Fields are named ca, cert and key in err.
 * 0, or -1 with a one-line reason.
 */
int pki_check_set(const uint8_t *ca, size_t ca_len, const uint8_t *cert, size_t cert_len,
    const uint8_t *key, size_t key_len, char *err, size_t errlen);

#endif
