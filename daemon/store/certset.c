/*
 * Certificate sets as they are on disk (the active set, the staged one in new/, a backup):
 * described for replies and metrics, and fingerprinted for the audit log. Reads only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certset.h"
#include "config.h"
#include "fsx.h"
#include "log.h"
#include "pki.h"
#include "ssldir.h"
#include "xmalloc.h"

static Carotate__V1__CertInfo *certset_cert(STACK_OF(X509) **, const char *, const uint8_t *,
    size_t, int, X509 **, Carotate__V1__CertSet *);
static void certset_problem(Carotate__V1__CertSet *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void certset_check(
    Carotate__V1__CertSet *, X509 *ca, X509 *leaf, STACK_OF(X509) * chain, time_t now);

static void
certset_problem(Carotate__V1__CertSet *set, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		fatalx("%s: out of memory", __func__);
	va_end(ap);
	set->problems = xreallocarray(set->problems, set->n_problems + 1, sizeof(char *));
	set->problems[set->n_problems++] = s;
}

/*
 * Describes the first certificate of one file; *first keeps it and, when rest is
 * not NULL, *rest the certificates after it (caller frees both).
 * A missing or unreadable file becomes a problem of the set, not an error.
 */
static Carotate__V1__CertInfo *
certset_cert(STACK_OF(X509) * *rest, const char *name, const uint8_t *buf, size_t len, int err,
    X509 **first, Carotate__V1__CertSet *set)
{
	Carotate__V1__CertInfo *info;
	STACK_OF(X509) * certs;
	char why[128];

	*first = NULL;
	if (err != 0) {
		certset_problem(
		    set, "%s: %s", name, err == EINVAL ? "not a regular file" : strerror(err));
		return NULL;
	}
	if ((certs = pki_certs_from_pem(buf, len, why, sizeof(why))) == NULL) {
		certset_problem(set, "%s: %s", name, why);
		return NULL;
	}
	*first = sk_X509_shift(certs);
	if (rest != NULL)
		*rest = certs;
	else
		sk_X509_pop_free(certs, X509_free);
	info = xmalloc(sizeof(*info));
	carotate__v1__cert_info__init(info);
	pki_describe(*first, info);
	return info;
}

/* Problems an operator must hear about: expiry, a server certificate the CA did not sign. */
static void
certset_check(Carotate__V1__CertSet *set, X509 *ca, X509 *leaf, STACK_OF(X509) * chain, time_t now)
{
	if (set->ca != NULL && set->ca->not_after <= now)
		certset_problem(set, "CA certificate expired");
	if (set->server != NULL && set->server->not_after <= now)
		certset_problem(set, "server certificate expired");
	if (ca != NULL && leaf != NULL && !pki_chains_to(leaf, chain, ca))
		certset_problem(set, "server certificate does not chain to this CA");
	if (set->key_present == 0)
		certset_problem(set, "private key missing or not a regular file");
}

/* The set in directory dfd; NULL when none of its files is there, unless empty_ok. */
static Carotate__V1__CertSet *
certset_describe_fd(const struct config *conf, int dfd, int empty_ok, time_t now, X509 **ca_out)
{
	Carotate__V1__CertSet *set;
	struct ssldir_set files;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;

	*ca_out = NULL;
	ssldir_read_set(conf, dfd, &files);
	if (!empty_ok && !ssldir_set_present(&files)) {
		ssldir_set_clear(&files);
		return NULL;
	}
	set = xmalloc(sizeof(*set));
	carotate__v1__cert_set__init(set);
	set->key_present = files.key_errno == 0;
	set->origin = xstrdup(files.origin);
	set->created = files.created;
	set->ca =
	    certset_cert(NULL, conf->ssl_ca, files.ca, files.ca_len, files.ca_errno, ca_out, set);
	set->server = certset_cert(
	    &chain, conf->ssl_cert, files.cert, files.cert_len, files.cert_errno, &leaf, set);
	if (set->server != NULL)
		set->server_days_left = (set->server->not_after - (int64_t)now) / 86400;
	if (set->ca != NULL)
		set->ca_days_left = (set->ca->not_after - (int64_t)now) / 86400;
	certset_check(set, *ca_out, leaf, chain, now);
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	ssldir_set_clear(&files);
	return set;
}

/* The set in the SSL directory (or its staging directory); NULL when there is none. */
Carotate__V1__CertSet *
certset_describe(const struct config *conf, int staged, time_t now, X509 **ca_out)
{
	Carotate__V1__CertSet *set;
	int dfd;

	*ca_out = NULL;
	if ((dfd = ssldir_open(conf, staged)) == -1)
		return NULL;
	/* An empty new/ is still a staged set: an incomplete one, and status says so. */
	set = certset_describe_fd(conf, dfd, staged, now, ca_out);
	close(dfd);
	return set;
}

/* The set kept in backup directory id (an exact name, checked by the caller); NULL when none. */
Carotate__V1__CertSet *
certset_describe_backup(const struct config *conf, const char *id, time_t now, X509 **ca_out)
{
	Carotate__V1__CertSet *set = NULL;
	int dfd, bfd;

	*ca_out = NULL;
	if ((dfd = ssldir_open(conf, 0)) == -1)
		return NULL;
	if ((bfd = fsx_open_dir(dfd, id)) != -1) {
		set = certset_describe_fd(conf, bfd, 0, now, ca_out);
		close(bfd);
	}
	close(dfd);
	return set;
}

/* The first certificate of one file of a set: its SHA-256, "-" absent, "?" unreadable. */
static void
certset_file_sha(const uint8_t *pem, size_t len, int err, char *out)
{
	STACK_OF(X509) * certs;
	char why[128];

	if (err == ENOENT) {
		snprintf(out, PKI_SHA256_HEX, "-");
		return;
	}
	if (err != 0 || (certs = pki_certs_from_pem(pem, len, why, sizeof(why))) == NULL) {
		snprintf(out, PKI_SHA256_HEX, "?");
		return;
	}
	pki_cert_sha256(sk_X509_value(certs, 0), out);
	sk_X509_pop_free(certs, X509_free);
}

void
certset_fingerprints(const struct config *conf, int staged, char *ca, char *srv)
{
	struct ssldir_set set;
	int dfd;

	if ((dfd = ssldir_open(conf, staged)) == -1) {
		snprintf(ca, PKI_SHA256_HEX, "%s", errno == ENOENT ? "-" : "?");
		if (srv != NULL)
			snprintf(srv, PKI_SHA256_HEX, "%s", ca);
		return;
	}
	ssldir_read_set(conf, dfd, &set);
	close(dfd);
	certset_file_sha(set.ca, set.ca_len, set.ca_errno, ca);
	if (srv != NULL)
		certset_file_sha(set.cert, set.cert_len, set.cert_errno, srv);
	ssldir_set_clear(&set);
}

int
certset_ca_sha(
    const struct config *conf, int staged, char sha[PKI_SHA256_HEX], char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	const char *which = staged ? "staged" : "active";
	uint8_t *pem;
	size_t len;
	char why[128];

	sha[0] = '\0';
	if (ssldir_read_ca(conf, staged, &pem, &len) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read the %s CA: %s", which, strerror(errno));
		return -1;
	}
	certs = pki_certs_from_pem(pem, len, why, sizeof(why));
	free(pem);
	if (certs == NULL) {
		snprintf(err, errlen, "the %s CA: %s", which, why);
		return -1;
	}
	pki_cert_sha256(sk_X509_value(certs, 0), sha);
	sk_X509_pop_free(certs, X509_free);
	return 0;
}
