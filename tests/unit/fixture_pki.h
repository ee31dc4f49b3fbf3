/*
 * Generated certificate sets for the unit tests, and the SHA-256 the daemon
 * names a certificate by. Links pki.o.
 */
#ifndef CAROTATE_FIXTURE_PKI_H
#define CAROTATE_FIXTURE_PKI_H

#include <time.h>

#include "pki.h"

/*
 * An EC P-256 set for DNS:proxy.test, named name, made at now: a CA valid
 * ca_days and a server certificate valid leaf_days. -1 on failure, said on stderr.
 */
int fixture_pki_generate(
    const char *name, unsigned ca_days, unsigned leaf_days, time_t now, struct pki_material *);
/* The SHA-256 of the first certificate of pem, which must parse. */
void fixture_pki_sha(const char *pem, char sha[PKI_SHA256_HEX]);

#endif
