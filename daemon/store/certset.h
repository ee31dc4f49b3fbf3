/*
 * Certificate sets as they are on disk: the active set, the staged one (new/), a backup.
 * Reads only; never writes the SSL directory.
 */
#ifndef CAROTATE_CERTSET_H
#define CAROTATE_CERTSET_H

#include <time.h>

#include <openssl/x509.h>

#include "carotate.pb-c.h"
#include "pki.h"

struct config;

/* The active (staged 0) or staged set; NULL when there is none. *ca_out: its CA (caller frees). */
Carotate__V1__CertSet *certset_describe(
    const struct config *, int staged, time_t now, X509 **ca_out);
/* The set kept in backup directory id (an exact name, checked by the caller); NULL when none. */
Carotate__V1__CertSet *certset_describe_backup(
    const struct config *, const char *id, time_t now, X509 **ca_out);
/*
 * The SHA-256 of the set's CA certificate and, when srv is not NULL, of its server
 * certificate (PKI_SHA256_HEX bytes each): "-" for a file or set that is absent, "?" for one
 * that cannot be read.
 */
void certset_fingerprints(const struct config *, int staged, char *ca, char *srv);

/*
 * The SHA-256 of the active (or staged) CA certificate (DER of the first
 * certificate of its file), read from disk now; "" when there is none. -1
 * (err filled) when it cannot be read or parsed.
 */
int certset_ca_sha(
    const struct config *, int staged, char sha[PKI_SHA256_HEX], char *err, size_t errlen);

#endif
