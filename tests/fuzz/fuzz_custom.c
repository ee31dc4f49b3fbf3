/*
 * The custom-set validator (carotatectl install): pki_validate_custom on a
 * CA, a server certificate, its key and an optional chain, each PEM or DER
 * as an operator may send them, then pki_check_set (the check a backup gets
 * when restored) on the same bytes. Input: the four fields separated by
 * FUZZ_SEP ("\n@@@@\n"), in the order ca, cert, key, chain.
 *
 * Invariant: a set the validator accepts is re-encoded by OpenSSL, and that
 * re-encoding must pass pki_check_set and describe the same CA.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzzlib.h"
#include "log.h"
#include "pki.h"

/* The seeds' certificates are valid at this instant (2026-11-28): runs are reproducible. */
#define FUZZ_NOW ((time_t)1795910400)

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char *fuzz_names[] = { (char *)"proxy.test", (char *)"127.0.0.1" };

static void fuzz_recheck(const struct pki_material *);
static void fuzz_check_err(const char *, const char *);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(1, 0, "fuzz_custom");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_field f[4];
	struct pki_custom c;
	struct pki_policy policy = { fuzz_names, 2, NULL, FUZZ_NOW, 0 };
	struct pki_material out;
	char err[1024];

	fuzz_split(data, size, f, 4);
	c = (struct pki_custom){ f[0].p, f[1].p, f[2].p, f[3].p, f[0].len, f[1].len, f[2].len,
		f[3].len };
	err[0] = '\0';
	if (pki_validate_custom(&c, &policy, &out, err, sizeof(err)) == 0) {
		log_info("pki_validate_custom: accepted, %zu warnings", out.n_warnings);
		fuzz_recheck(&out);
		pki_material_clear(&out);
	} else
		fuzz_check_err("pki_validate_custom", err);
	err[0] = '\0';
	if (pki_check_set(f[0].p, f[0].len, f[1].p, f[1].len, f[2].p, f[2].len, err, sizeof(err)) ==
	    -1)
		fuzz_check_err("pki_check_set", err);
	return 0;
}

/* What was accepted and re-encoded must still be a consistent set when read back. */
static void
fuzz_recheck(const struct pki_material *m)
{
	char err[1024];

	if (m->ca == NULL || m->cert == NULL || m->key == NULL || m->ca_key != NULL)
		fuzz_fail("an accepted set lacks a part (ca %p cert %p key %p) or has a CA key",
		    (void *)m->ca, (void *)m->cert, (void *)m->key);
	if (pki_check_set((const uint8_t *)m->ca, strlen(m->ca), (const uint8_t *)m->cert,
	        strlen(m->cert), (const uint8_t *)m->key, strlen(m->key), err, sizeof(err)) != 0)
		fuzz_fail("an accepted set fails pki_check_set once re-encoded: %s", err);
}

/* A refusal names the problem: never an empty or unterminated message. */
static void
fuzz_check_err(const char *what, const char *err)
{
	if (err[0] == '\0' || strlen(err) >= 1024)
		fuzz_fail("%s refused without a message", what);
	log_info("%s: %s", what, err);
}
