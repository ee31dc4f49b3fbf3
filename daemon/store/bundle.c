/*
 * Trust bundle derivation. The bundle is a function of what is on disk (the
 * active and staged CAs, and the retained CAs that retained.c keeps in the
 * state directory), so it survives restarts and can be recomputed after any
 * crash. Nothing here writes but the publication of the result (ssldir.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "bundle.h"
#include "config.h"
#include "log.h"
#include "retained.h"
#include "ssldir.h"
#include "xmalloc.h"

static void bundle_add(struct bundle *, X509 *, enum bundle_role, int64_t);
static void bundle_add_set_ca(struct bundle *, const struct config *, int);
static void bundle_add_retained(struct bundle *, const struct config *, time_t);
static int bundle_finish(struct bundle *, char *, size_t);
static int bundle_cmp(const void *, const void *);
static const char *bundle_role_name(enum bundle_role);

/* Adds a CA unless the same certificate is already in (the first role wins). Takes x. */
static void
bundle_add(struct bundle *b, X509 *x, enum bundle_role role, int64_t until)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (X509_cmp(b->cas[i].cert, x) == 0) {
			X509_free(x);
			return;
		}
	}
	if (b->n == BUNDLE_MAX) {
		log_warnx("trust bundle: more than %d CAs; leaving one out", BUNDLE_MAX);
		X509_free(x);
		return;
	}
	b->cas[b->n].cert = x;
	b->cas[b->n].role = role;
	b->cas[b->n].retained_until = until;
	pki_cert_sha256(x, b->cas[b->n].sha256);
	b->n++;
}

static void
bundle_add_set_ca(struct bundle *b, const struct config *conf, int staged)
{
	STACK_OF(X509) * certs;
	uint8_t *pem;
	size_t len;
	char why[128];

	if (ssldir_read_ca(conf, staged, &pem, &len) == -1) {
		if (errno != ENOENT)
			log_warn("trust bundle: %s CA", staged ? "staged" : "active");
		return;
	}
	if ((certs = pki_certs_from_pem(pem, len, why, sizeof(why))) == NULL)
		log_warnx("trust bundle: %s CA: %s", staged ? "staged" : "active", why);
	else {
		bundle_add(b, sk_X509_shift(certs), staged ? BUNDLE_STAGED : BUNDLE_ACTIVE, 0);
		sk_X509_pop_free(certs, X509_free);
	}
	free(pem);
}

static int
bundle_cmp(const void *a, const void *b)
{
	const struct bundle_ca *x = a, *y = b;
	unsigned char *dx = NULL, *dy = NULL;
	int lx = i2d_X509(x->cert, &dx), ly = i2d_X509(y->cert, &dy);
	int c = memcmp(dx, dy, (size_t)(lx < ly ? lx : ly));

	if (c == 0)
		c = (lx > ly) - (lx < ly);
	OPENSSL_free(dx);
	OPENSSL_free(dy);
	return c;
}

/* Sorts the CAs like the id does, computes the id and the PEM text. */
static int
bundle_finish(struct bundle *b, char *err, size_t errlen)
{
	X509 *cas[BUNDLE_MAX];
	BIO *bio;
	char *p;
	long n;
	size_t i;

	qsort(b->cas, b->n, sizeof(b->cas[0]), bundle_cmp);
	if (b->n == 0) {
		b->id[0] = '\0';
		b->pem = xstrdup("");
		return 0;
	}
	for (i = 0; i < b->n; i++)
		cas[i] = b->cas[i].cert;
	if (pki_bundle_id(cas, b->n, b->id) == -1 || (bio = BIO_new(BIO_s_mem())) == NULL) {
		snprintf(err, errlen, "cannot compute the bundle id");
		return -1;
	}
	for (i = 0; i < b->n; i++)
		PEM_write_bio_X509(bio, cas[i]);
	n = BIO_get_mem_data(bio, &p);
	b->pem = xstrndup(p, (size_t)n);
	b->pem_len = (size_t)n;
	BIO_free(bio);
	return 0;
}

/* The retained CAs still within their window, the most recently replaced first. */
static void
bundle_add_retained(struct bundle *b, const struct config *conf, time_t now)
{
	struct retained_ca *kept;
	size_t n, i;

	retained_list(conf, now, &kept, &n);
	/* Past BUNDLE_MAX the CAs replaced longest ago are the ones left out. */
	for (i = 0; i < n; i++) {
		bundle_add(b, kept[i].cert, BUNDLE_RETAINED, kept[i].retained_until);
		kept[i].cert = NULL;
	}
	retained_free(kept, n);
}

int
bundle_derive(const struct config *conf, time_t now, struct bundle *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof(*b));
	bundle_add_set_ca(b, conf, 0);
	bundle_add_set_ca(b, conf, 1);
	bundle_add_retained(b, conf, now);
	return bundle_finish(b, err, errlen);
}

void
bundle_clear(struct bundle *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		X509_free(b->cas[i].cert);
	free(b->pem);
	memset(b, 0, sizeof(*b));
}

static const char *
bundle_role_name(enum bundle_role role)
{
	switch (role) {
	case BUNDLE_ACTIVE:
		return "active";
	case BUNDLE_STAGED:
		return "staged";
	case BUNDLE_RETAINED:
		return "retained";
	}
	return "unknown";
}

Carotate__V1__Bundle *
bundle_describe(const struct bundle *b, int published)
{
	Carotate__V1__Bundle *d;
	Carotate__V1__BundleCa *m;
	int64_t nb;
	size_t i;

	if (b->n == 0)
		return NULL;
	d = xmalloc(sizeof(*d));
	carotate__v1__bundle__init(d);
	d->id = xstrdup(b->id);
	d->published = published;
	d->n_cas = d->n_members = b->n;
	d->cas = xcalloc(b->n, sizeof(char *));
	d->members = xcalloc(b->n, sizeof(*d->members));
	for (i = 0; i < b->n; i++) {
		d->cas[i] = xstrdup(b->cas[i].sha256);
		m = d->members[i] = xmalloc(sizeof(*m));
		carotate__v1__bundle_ca__init(m);
		m->sha256 = xstrdup(b->cas[i].sha256);
		m->subject = pki_subject(b->cas[i].cert);
		m->role = xstrdup(bundle_role_name(b->cas[i].role));
		if (pki_cert_times(b->cas[i].cert, &nb, &m->not_after) == -1)
			m->not_after = 0;
		m->retained_until = b->cas[i].retained_until;
	}
	return d;
}

int
bundle_publish(const struct config *conf, time_t now, struct bundle *b, char *err, size_t errlen)
{
	if (bundle_derive(conf, now, b, err, errlen) == -1)
		return -1;
	return ssldir_publish(conf, b->pem, b->pem_len, err, errlen);
}
