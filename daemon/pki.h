/* OpenSSL: certificate parsing, fingerprints, descriptions, the trust bundle id. */
#ifndef CAROTATE_PKI_H
#define CAROTATE_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "carotate.pb-c.h"

#define PKI_SHA256_HEX 65 /* 64 hex digits and a NUL */

/* Every certificate in a PEM buffer, in order; NULL (err filled) when none parses. */
STACK_OF(X509) * pki_certs_from_pem(const uint8_t *, size_t, char *err, size_t errlen);
/* SHA-256 of the DER, lower-case hex. */
void pki_cert_sha256(X509 *, char out[PKI_SHA256_HEX]);
/* notAfter / notBefore as seconds since the epoch; -1 when unrepresentable. */
int pki_cert_times(X509 *, int64_t *not_before, int64_t *not_after);
/* "ec-p256", "rsa-2048", "ed25519", ...; a static string. */
const char *pki_key_type(const EVP_PKEY *);
/* Fills info (heap strings) with the certificate's subject, issuer, sums, dates and SANs. */
void pki_describe(X509 *, Carotate__V1__CertInfo *info);
/* 1 when cert is signed by the key of ca and names it as issuer. */
int pki_issued_by(X509 *cert, X509 *ca);
/* The bundle id: SHA-256 over the DER of the CAs, sorted bytewise; -1 on error. */
int pki_bundle_id(X509 *const *cas, size_t n, char out[PKI_SHA256_HEX]);

#endif
