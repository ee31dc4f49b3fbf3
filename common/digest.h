/*
 * SHA-256 digests as lower-case hex, the one spelling of a fingerprint the
 * daemon and the agent print, store and compare: certificate fingerprints,
 * bundle ids, file sums in manifests, the audit chain's hashes.
 * OpenSSL (libcrypto); the control client does not link it.
 */
#ifndef CAROTATE_DIGEST_H
#define CAROTATE_DIGEST_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define DIGEST_SHA256_LEN 32
#define DIGEST_SHA256_HEX 65 /* 64 hex digits and a NUL */

/* 1 when s is a SHA-256 as this file spells it (64 lower-case hex digits), else 0. */
int digest_sha256_hex_ok(const char *s);
/* n bytes as lower-case hex into out, which holds 2n + 1 bytes. */
void digest_hex(const void *p, size_t n, char *out);
/* SHA-256 of n bytes at p. 0, or -1 (out empty) when OpenSSL failed. */
int digest_sha256_hex(const void *p, size_t n, char out[DIGEST_SHA256_HEX]);
/* Finishes a SHA-256 the caller fed through ctx (not freed). 0, or -1 (out empty). */
int digest_sha256_final_hex(EVP_MD_CTX *ctx, char out[DIGEST_SHA256_HEX]);
/* SHA-256 of the certificate's DER: its fingerprint. 0, or -1 (out empty). */
int digest_x509_sha256_hex(const X509 *x, char out[DIGEST_SHA256_HEX]);

#endif
