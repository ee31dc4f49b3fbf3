/* The trust bundle agents receive: derived, never edited by hand. */
#ifndef CAROTATE_BUNDLE_H
#define CAROTATE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "carotate.pb-c.h"
#include "pki.h"

struct config;

#define BUNDLE_MAX 16 /* CAs in one bundle */

enum bundle_role {
	BUNDLE_ACTIVE,
	BUNDLE_STAGED,
	BUNDLE_RETAINED,
};

struct bundle_ca {
	X509 *cert;
	char sha256[PKI_SHA256_HEX];
	enum bundle_role role;
	int64_t retained_until; /* BUNDLE_RETAINED: end of the retention window */
};

struct bundle {
	struct bundle_ca cas[BUNDLE_MAX]; /* sorted by DER, like the id */
	size_t n;
	char id[PKI_SHA256_HEX]; /* "" when the bundle is empty */
	char *pem;               /* the CAs in the same order, PEM */
	size_t pem_len;
};

/*
 * Derives the bundle (carotated(8) ROTATION): the active CA, the staged CA, and CAs
 * replaced less than [bundle] retention ago (retained_list). A CA file
 * that does not parse is skipped and logged: the bundle is never built from
 * guesses.
 */
int bundle_derive(const struct config *, time_t now, struct bundle *, char *err, size_t errlen);
void bundle_clear(struct bundle *);
/* The bundle as the protocol describes it; published says whether ca-bundle.pem matches. */
Carotate__V1__Bundle *bundle_describe(const struct bundle *, int published);
/* Derives the bundle and publishes it with the canary files; 1 changed, 0 not, -1 error. */
int bundle_publish(const struct config *, time_t now, struct bundle *, char *err, size_t errlen);

#endif
