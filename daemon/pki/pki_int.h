/*
 * The private parts pki.c, pki_gen.c and pki_custom.c share: error
 * formatting, PEM encoding and the parsers both generation and validation use.
 * Nothing outside those files includes it; pki.c holds each one's body.
 */
#ifndef CAROTATE_PKI_INT_H
#define CAROTATE_PKI_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "errbuf.h"
#include "pki.h"

#define PKI_NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define PKI_MAX_CHAIN 16 /* certificates in one PEM file */
#define PKI_SHOW_MAX  80 /* bytes of untrusted text quoted in one message */

int pki_ssl_fail(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
/* Untrusted text made safe to quote: printable ASCII only, truncated. */
const char *pki_show(const char *, char[PKI_SHOW_MAX]);
/* An IPv4 or IPv6 literal into out (4 or 16 bytes): its length, or -1. */
int pki_parse_ip(const char *, unsigned char *);
/* now, or the clock when now is 0. */
time_t pki_now(time_t);
/* A name in RFC 2253 form (heap string). */
char *pki_name(const X509_NAME *);
/* PEM text (heap strings): the first n certificates of xs, one certificate, a PKCS#8 key. */
char *pki_pem_x509s(STACK_OF(X509) *, int);
char *pki_pem_x509(X509 *);
char *pki_pem_key(EVP_PKEY *);

#endif
