/* Generated certificate sets for the unit tests (fixture_pki.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fixture_pki.h"

int
fixture_pki_generate(
    const char *name, unsigned ca_days, unsigned leaf_days, time_t now, struct pki_material *m)
{
	char *sans[] = { (char *)"DNS:proxy.test" };
	struct pki_profile p = { PKI_KEY_EC_P256, ca_days, leaf_days, name, sans, 1, now };
	char err[256];

	if (pki_generate(&p, m, err, sizeof(err)) != 0) {
		fprintf(stderr, "pki_generate: %s\n", err);
		return -1;
	}
	return 0;
}

void
fixture_pki_sha(const char *pem, char sha[PKI_SHA256_HEX])
{
	STACK_OF(X509) * certs;
	char err[256];

	certs = pki_certs_from_pem((const uint8_t *)pem, strlen(pem), err, sizeof(err));
	if (certs == NULL)
		fail_msg("pki_certs_from_pem: %s", err);
	pki_cert_sha256(sk_X509_value(certs, 0), sha);
	sk_X509_pop_free(certs, X509_free);
}
