/*
 * Certificate jobs: the bodies of the short-lived, confined children of
 * generate and install (job.c forks them). Each sends its result to the parent
 * as one Material message (internal.proto) and exits.
 */
#ifndef CAROTATE_CERTJOB_H
#define CAROTATE_CERTJOB_H

#include <stddef.h>
#include <stdint.h>

#include "pki.h"

struct config;

/* The input of one certificate job: a profile to generate, or the operator's files to check. */
struct certjob {
	const struct config *conf; /* [proxy] names: the SANs an installed set must cover */
	int install;
	/* generate */
	struct pki_profile profile;
	char **sans;
	char *name;
	/* install */
	uint8_t *ca, *cert, *key, *chain;
	size_t ca_len, cert_len, key_len, chain_len;
	X509 *active_ca; /* install: the new CA must differ from it; renew: it is the CA */
	/* renew: the active CA's key (generated sets; NULL: cert and key are the operator's) */
	uint8_t *ca_key;
	size_t ca_key_len;
};

/* job_fn bodies (arg: a struct certjob): a new CA and server pair, or the operator's set checked.
 */
int certjob_generate(void *arg, int fd);
int certjob_install(void *arg, int fd);
/*
 * renew's body: with ca_key, a new leaf signed by the active CA (ca); without,
 * the operator's cert, key and chain checked as install checks them, under ca.
 */
int certjob_renew(void *arg, int fd);
/* Frees in and what it holds, the server and CA keys wiped; NULL is fine. */
void certjob_free(struct certjob *in);

#endif
