/*
 * The private parts pki.c, pki_gen.c and pki_custom.c share: error
 * formatting, PEM encoding and the parsers both generation and validation use.
 * Nothing outside those files includes it.
 */
#ifndef CAROTATE_PKI_INT_H
#define CAROTATE_PKI_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "pki.h"

#define PKI_NITEMS(a)     (sizeof(a) / sizeof((a)[0]))
#define PKI_SHOW_MAX      80                     /* bytes of untrusted text quoted in one message */

void pki_hex(const uint8_t *, size_t, char *);
int pki_fail(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
int pki_ssl_fail(char *, size_t, const char *, ...) __attribute__((format(printf, 3, 4)));
const char *pki_show(const char *, char[PKI_SHOW_MAX]);
int pki_parse_ip(const char *, unsigned char *);
time_t pki_now(time_t);
char *pki_pem_x509(X509 *);
char *pki_pem_key(EVP_PKEY *);

#define PKI_MAX_CHAIN   16 /* certificates in one PEM file */

char *pki_name(const X509_NAME *);
char *pki_pem_x509s(STACK_OF(X509) *, int);

#endif
