/*
 * Trust bundle derivation. The bundle is a function of what is on disk (the
 * active and staged CAs, and the retained CAs in the state directory), so it
 * survives restarts and can be recomputed after any crash.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "bundle.h"
#include "config.h"
#include "fsx.h"
#include "log.h"
#include "ssldir.h"
#include "xmalloc.h"

static void bundle_add(struct bundle *, X509 *, enum bundle_role, int64_t);
static void bundle_add_set_ca(struct bundle *, const struct config *, int);
/* A retained CA read from the state directory, before it enters the bundle. */
struct bundle_kept {
	long long replaced;
	X509 *cert;
};

static void bundle_add_retained(struct bundle *, const struct config *, time_t);
static int bundle_kept_cmp(const void *, const void *);
static int bundle_finish(struct bundle *, char *, size_t);
static int bundle_cmp(const void *, const void *);
static const char *bundle_role_name(enum bundle_role);
static int bundle_retired_cmp(const void *, const void *);
static int64_t bundle_until(long long, uint64_t);
static int bundle_retire_file(const struct config *, int, const char *, int,
    char (*)[PKI_SHA256_HEX], struct bundle_retired **, size_t *, char *, size_t);

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

/*
 * The end of a retention window: replaced + retention, saturated at INT64_MAX.
 * replaced comes from a file in retained/ (any number), so the sum must not
 * wrap into the past and drop a CA agents were promised.
 */
static int64_t
bundle_until(long long replaced, uint64_t retention)
{
	if (retention > (uint64_t)INT64_MAX || replaced > INT64_MAX - (int64_t)retention)
		return INT64_MAX;
	return (int64_t)replaced + (int64_t)retention;
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

/*
 * Retained CAs live in state_dir/retained/<sha256>.crt, whose first line is
 * "# replaced <seconds since the epoch>". Expired entries are simply left out.
 */
static void
bundle_add_retained(struct bundle *b, const struct config *conf, time_t now)
{
	struct bundle_kept *kept = NULL;
	STACK_OF(X509) * certs;
	struct dirent *de;
	long long replaced;
	size_t n = 0, i;
	uint8_t *pem;
	size_t len;
	char why[128];
	DIR *dir;
	int sfd, rfd;

	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	rfd = fsx_open_dir(sfd, BUNDLE_RETAINED_DIR);
	close(sfd);
	if (rfd == -1 || (dir = fdopendir(rfd)) == NULL) {
		if (rfd != -1)
			close(rfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fsx_read(rfd, de->d_name, SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
			continue;
		if (sscanf((char *)pem, "# replaced %lld", &replaced) != 1)
			log_warnx("trust bundle: retained/%s has no replacement time", de->d_name);
		else if (bundle_until(replaced, conf->retention) > (int64_t)now) {
			if ((certs = pki_certs_from_pem(pem, len, why, sizeof(why))) == NULL)
				log_warnx("trust bundle: retained/%s: %s", de->d_name, why);
			else {
				kept = xreallocarray(kept, n + 1, sizeof(*kept));
				kept[n].replaced = replaced;
				kept[n++].cert = sk_X509_shift(certs);
				sk_X509_pop_free(certs, X509_free);
			}
		}
		free(pem);
	}
	closedir(dir);
	/* Newest first: past BUNDLE_MAX the CAs replaced longest ago are the ones left out. */
	if (n > 1)
		qsort(kept, n, sizeof(*kept), bundle_kept_cmp);
	for (i = 0; i < n; i++)
		bundle_add(b, kept[i].cert, BUNDLE_RETAINED,
		    bundle_until(kept[i].replaced, conf->retention));
	free(kept);
}

/* Retained CAs by replacement time, the most recent first. */
static int
bundle_kept_cmp(const void *a, const void *b)
{
	const struct bundle_kept *x = a, *y = b;

	return (x->replaced < y->replaced) - (x->replaced > y->replaced);
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

void
bundle_signature(const struct config *conf, int64_t sig[BUNDLE_SIG_LEN])
{
	struct stat st;
	char path[PATH_MAX];

	memset(sig, 0, BUNDLE_SIG_LEN * sizeof(sig[0]));
	snprintf(path, sizeof(path), "%s/%s", conf->state_dir, BUNDLE_RETAINED_DIR);
	if (lstat(path, &st) == 0) {
		sig[0] = (int64_t)st.st_ino;
		sig[1] = (int64_t)st.st_mtim.tv_nsec + (int64_t)st.st_mtim.tv_sec * 1000000000;
		sig[2] = (int64_t)st.st_ctim.tv_nsec + (int64_t)st.st_ctim.tv_sec * 1000000000;
	} else
		sig[3] = errno;
}

int
bundle_set_ca_sha(
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

static int
bundle_retired_cmp(const void *a, const void *b)
{
	const struct bundle_retired *x = a, *y = b;

	return strcmp(x->sha256, y->sha256);
}

/*
 * One file of retained/: 1 when it was (or, dry, would be) removed and added
 * to *out, 0 when it stays, -1 (err filled) when its removal failed.
 */
static int
bundle_retire_file(const struct config *conf, int rfd, const char *name, int dry_run,
    char (*keep)[PKI_SHA256_HEX], struct bundle_retired **out, size_t *n, char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	struct bundle_retired r;
	long long replaced;
	struct stat st;
	uint8_t *pem;
	size_t len, i;
	char why[128];

	if (fstatat(rfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
	    fsx_read(rfd, name, SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
		return 0;
	memset(&r, 0, sizeof(r));
	if (sscanf((char *)pem, "# replaced %lld", &replaced) == 1)
		r.retained_until = bundle_until(replaced, conf->retention);
	certs = pki_certs_from_pem(pem, len, why, sizeof(why));
	free(pem);
	if (certs == NULL) {
		log_warnx("retire: retained/%s: %s; left alone", name, why);
		return 0;
	}
	r.cert = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	pki_cert_sha256(r.cert, r.sha256);
	if (strcmp(r.sha256, keep[0]) == 0 || strcmp(r.sha256, keep[1]) == 0) {
		X509_free(r.cert);
		return 0;
	}
	if (!dry_run && unlinkat(rfd, name, 0) == -1) {
		snprintf(err, errlen, "cannot remove %s/%s/%s: %s", conf->state_dir,
		    BUNDLE_RETAINED_DIR, name, strerror(errno));
		X509_free(r.cert);
		return -1;
	}
	/* Two files of one CA: listed once. */
	for (i = 0; i < *n; i++)
		if (strcmp((*out)[i].sha256, r.sha256) == 0) {
			X509_free(r.cert);
			return 1;
		}
	*out = xreallocarray(*out, *n + 1, sizeof(**out));
	(*out)[(*n)++] = r;
	return 1;
}

int
bundle_retire(const struct config *conf, int dry_run, struct bundle_retired **out, size_t *n,
    char *err, size_t errlen)
{
	char keep[2][PKI_SHA256_HEX], why[512];
	struct dirent *de;
	DIR *dir;
	int sfd, rfd, removed = 0, r = 0, k;

	*out = NULL;
	*n = 0;
	if (bundle_set_ca_sha(conf, 0, keep[0], why, sizeof(why)) == -1 ||
	    bundle_set_ca_sha(conf, 1, keep[1], why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s; nothing retired", why);
		return -1;
	}
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
		return -1;
	}
	rfd = fsx_open_dir(sfd, BUNDLE_RETAINED_DIR);
	close(sfd);
	if (rfd == -1 && errno == ENOENT)
		return 0;
	if (rfd == -1 || (dir = fdopendir(rfd)) == NULL) {
		snprintf(err, errlen, "cannot open %s/%s: %s", conf->state_dir, BUNDLE_RETAINED_DIR,
		    strerror(errno));
		if (rfd != -1)
			close(rfd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		k = bundle_retire_file(
		    conf, rfd, de->d_name, dry_run, keep, out, n, why, sizeof(why));
		if (k == -1 && r == 0)
			snprintf(err, errlen, "%s", why);
		r = k == -1 ? -1 : r;
		removed += k == 1;
	}
	if (!dry_run && removed > 0 && fsx_fsync_dir(rfd) == -1 && r == 0) {
		snprintf(err, errlen, "cannot fsync %s/%s: %s", conf->state_dir,
		    BUNDLE_RETAINED_DIR, strerror(errno));
		r = -1;
	}
	closedir(dir);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), bundle_retired_cmp);
	return r;
}

void
bundle_retired_free(struct bundle_retired *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		X509_free(list[i].cert);
	free(list);
}

/* 64 lower-case hex digits, or "-": nothing else from the record becomes a file name. */
static int
bundle_sha_ok(const char *s)
{
	return strcmp(s, "-") == 0 || (strlen(s) == PKI_SHA256_HEX - 1 &&
	                                  strspn(s, "0123456789abcdef") == PKI_SHA256_HEX - 1);
}

/* The first certificate of pem: its SHA-256 in hex and (when x is not NULL) the certificate. */
static int
bundle_first_sha(const uint8_t *pem, size_t len, char sha[PKI_SHA256_HEX], X509 **x)
{
	STACK_OF(X509) * certs;
	char why[128];

	if (x != NULL)
		*x = NULL;
	if (pem == NULL || (certs = pki_certs_from_pem(pem, len, why, sizeof(why))) == NULL) {
		snprintf(sha, PKI_SHA256_HEX, "-");
		return -1;
	}
	pki_cert_sha256(sk_X509_value(certs, 0), sha);
	if (x != NULL)
		*x = sk_X509_shift(certs);
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

/* Adds ca (PEM) to the retained CAs as replaced at now; an existing entry keeps its time. */
static int
bundle_retain(int sfd, const char *sha, X509 *ca, time_t now)
{
	char name[PKI_SHA256_HEX + 8], *p, *text;
	struct stat st;
	BIO *bio;
	long n;
	int rfd, r;

	/* A new retained/ must survive a power cut with its entry: the state directory is fsynced.
	 */
	if (mkdirat(sfd, BUNDLE_RETAINED_DIR, 0700) == 0) {
		if (fsx_fsync_dir(sfd) == -1)
			return -1;
	} else if (errno != EEXIST)
		return -1;
	if ((rfd = fsx_open_dir(sfd, BUNDLE_RETAINED_DIR)) == -1)
		return -1;
	snprintf(name, sizeof(name), "%s.crt", sha);
	if (fstatat(rfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		close(rfd);
		return 0;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_X509(bio, ca)) {
		BIO_free(bio);
		close(rfd);
		errno = ENOMEM;
		return -1;
	}
	n = BIO_get_mem_data(bio, &p);
	xasprintf(&text, "# replaced %lld\n%.*s", (long long)now, (int)n, p);
	BIO_free(bio);
	r = fsx_replace(rfd, name, text, strlen(text), 0644);
	free(text);
	close(rfd);
	return r;
}

int
bundle_note_active(const struct config *conf, time_t now, char before[BUNDLE_NOTE_LEN],
    char after[BUNDLE_NOTE_LEN], char *err, size_t errlen)
{
	char old_ca[PKI_SHA256_HEX] = "-", old_srv[PKI_SHA256_HEX] = "-";
	char ca_sha[PKI_SHA256_HEX], srv_sha[PKI_SHA256_HEX], *text, *pemstart;
	struct ssldir_set set;
	uint8_t *old = NULL;
	size_t oldlen;
	X509 *oldca = NULL;
	int sfd, dfd, known = 0, r = 0;

	snprintf(before, BUNDLE_NOTE_LEN, "-");
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
		return -1;
	}
	if ((dfd = ssldir_open(conf, 0)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
		close(sfd);
		return -1;
	}
	ssldir_read_set(conf, dfd, &set);
	close(dfd);
	bundle_first_sha(set.ca, set.ca_len, ca_sha, NULL);
	bundle_first_sha(set.cert, set.cert_len, srv_sha, NULL);
	snprintf(after, BUNDLE_NOTE_LEN, "ca=%s server=%s", ca_sha, srv_sha);

	/* The record: "carotate-active 1\nca SHA\nserver SHA\n" and the CA's PEM. */
	if (fsx_read(sfd, BUNDLE_KNOWN_ACTIVE, SSLDIR_MAX_CERT_FILE, &old, &oldlen) == 0) {
		if (sscanf((char *)old, "carotate-active 1\nca %64s\nserver %64s\n", old_ca,
		        old_srv) == 2 &&
		    bundle_sha_ok(old_ca) && bundle_sha_ok(old_srv))
			known = 1;
		else
			log_warnx("%s/%s: not understood; recorded anew", conf->state_dir,
			    BUNDLE_KNOWN_ACTIVE);
		if (known && (pemstart = strstr((char *)old, "-----BEGIN")) != NULL)
			bundle_first_sha((uint8_t *)pemstart,
			    oldlen - (size_t)(pemstart - (char *)old), old_ca, &oldca);
	} else if (errno != ENOENT)
		log_warn("%s/%s", conf->state_dir, BUNDLE_KNOWN_ACTIVE);
	if (known) {
		snprintf(before, BUNDLE_NOTE_LEN, "ca=%s server=%s", old_ca, old_srv);
		if (strcmp(old_ca, ca_sha) == 0 && strcmp(old_srv, srv_sha) == 0)
			goto out; /* nothing changed */
		r = 1;
		/* The CA it replaced stays trusted for the retention window. */
		if (oldca != NULL && strcmp(old_ca, ca_sha) != 0 &&
		    bundle_retain(sfd, old_ca, oldca, now) == -1)
			log_warn("cannot retain the replaced CA %s in %s/%s", old_ca,
			    conf->state_dir, BUNDLE_RETAINED_DIR);
	}
	xasprintf(&text, "carotate-active 1\nca %s\nserver %s\n%.*s", ca_sha, srv_sha,
	    set.ca != NULL && strcmp(ca_sha, "-") != 0 ? (int)set.ca_len : 0,
	    set.ca != NULL ? (const char *)set.ca : "");
	if (fsx_replace(sfd, BUNDLE_KNOWN_ACTIVE, text, strlen(text), 0600) == -1) {
		snprintf(err, errlen, "cannot write %s/%s: %s", conf->state_dir,
		    BUNDLE_KNOWN_ACTIVE, strerror(errno));
		r = -1;
	}
	free(text);
out:
	X509_free(oldca);
	free(old);
	ssldir_set_clear(&set);
	close(sfd);
	return r;
}
