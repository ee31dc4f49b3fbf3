/*
 * The retained CAs: CAs replaced by a rotation (or a restore) stay in the
 * trust bundle for [bundle] retention, so that agents keep trusting the set
 * a restore may bring back. They live in state_dir/retained/, written here
 * only: when the record of the active set (state_dir/active.known) shows its
 * CA changed, the CA it replaced joins them; retire removes them early.
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

#include "certset.h"
#include "config.h"
#include "digest.h"
#include "fsx.h"
#include "log.h"
#include "retained.h"
#include "ssldir.h"
#include "xmalloc.h"

static int64_t retained_until(long long, uint64_t);
static int retained_replaced_cmp(const void *, const void *);
static int retained_sha_cmp(const void *, const void *);
static int retained_retire_file(const struct config *, int, const char *, int,
    char (*)[PKI_SHA256_HEX], struct retained_ca **, size_t *, char *, size_t);
static int retained_sha_ok(const char *);
static int retained_first_sha(const uint8_t *, size_t, char[PKI_SHA256_HEX], X509 **);
static int retained_add(int, const char *, X509 *, time_t);

/*
 * The end of a retention window: replaced + retention, saturated at INT64_MAX.
 * replaced comes from a file in retained/ (any number), so the sum must not
 * wrap into the past and drop a CA agents were promised.
 */
static int64_t
retained_until(long long replaced, uint64_t retention)
{
	if (retention > (uint64_t)INT64_MAX || replaced > INT64_MAX - (int64_t)retention)
		return INT64_MAX;
	return (int64_t)replaced + (int64_t)retention;
}

/*
 * Retained CAs live in state_dir/retained/<sha256>.crt, whose first line is
 * "# replaced <seconds since the epoch>". Expired entries are simply left out.
 */
int
retained_list(const struct config *conf, time_t now, struct retained_ca **out, size_t *n)
{
	STACK_OF(X509) * certs;
	struct retained_ca r;
	struct dirent *de;
	long long replaced;
	uint8_t *pem;
	size_t len;
	char why[128];
	DIR *dir;
	int sfd, rfd;

	*out = NULL;
	*n = 0;
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rfd = fsx_open_dir(sfd, RETAINED_DIR);
	close(sfd);
	if (rfd == -1 || (dir = fdopendir(rfd)) == NULL) {
		if (rfd != -1)
			close(rfd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' ||
		    fsx_read(rfd, de->d_name, SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
			continue;
		if (sscanf((char *)pem, "# replaced %lld", &replaced) != 1)
			log_warnx("trust bundle: retained/%s has no replacement time", de->d_name);
		else if (retained_until(replaced, conf->retention) > (int64_t)now) {
			if ((certs = pki_certs_from_pem(pem, len, why, sizeof(why))) == NULL)
				log_warnx("trust bundle: retained/%s: %s", de->d_name, why);
			else {
				memset(&r, 0, sizeof(r));
				r.cert = sk_X509_shift(certs);
				sk_X509_pop_free(certs, X509_free);
				pki_cert_sha256(r.cert, r.sha256);
				r.replaced = replaced;
				r.retained_until = retained_until(replaced, conf->retention);
				*out = xreallocarray(*out, *n + 1, sizeof(**out));
				(*out)[(*n)++] = r;
			}
		}
		free(pem);
	}
	closedir(dir);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), retained_replaced_cmp);
	return 0;
}

/* Retained CAs by replacement time, the most recent first. */
static int
retained_replaced_cmp(const void *a, const void *b)
{
	const struct retained_ca *x = a, *y = b;

	return (x->replaced < y->replaced) - (x->replaced > y->replaced);
}

void
retained_signature(const struct config *conf, int64_t sig[RETAINED_SIG_LEN])
{
	struct stat st;
	char path[PATH_MAX];

	memset(sig, 0, RETAINED_SIG_LEN * sizeof(sig[0]));
	snprintf(path, sizeof(path), "%s/%s", conf->state_dir, RETAINED_DIR);
	if (lstat(path, &st) == 0) {
		sig[0] = (int64_t)st.st_ino;
		sig[1] = (int64_t)st.st_mtim.tv_nsec + (int64_t)st.st_mtim.tv_sec * 1000000000;
		sig[2] = (int64_t)st.st_ctim.tv_nsec + (int64_t)st.st_ctim.tv_sec * 1000000000;
	} else
		sig[3] = errno;
}

static int
retained_sha_cmp(const void *a, const void *b)
{
	const struct retained_ca *x = a, *y = b;

	return strcmp(x->sha256, y->sha256);
}

/*
 * One file of retained/: 1 when it was (or, dry, would be) removed and added
 * to *out, 0 when it stays, -1 (err filled) when its removal failed.
 */
static int
retained_retire_file(const struct config *conf, int rfd, const char *name, int dry_run,
    char (*keep)[PKI_SHA256_HEX], struct retained_ca **out, size_t *n, char *err, size_t errlen)
{
	STACK_OF(X509) * certs;
	struct retained_ca r;
	long long replaced;
	struct stat st;
	uint8_t *pem;
	size_t len, i;
	char why[128];

	if (fstatat(rfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISREG(st.st_mode) ||
	    fsx_read(rfd, name, SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
		return 0;
	memset(&r, 0, sizeof(r));
	if (sscanf((char *)pem, "# replaced %lld", &replaced) == 1) {
		r.replaced = replaced;
		r.retained_until = retained_until(replaced, conf->retention);
	}
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
		snprintf(err, errlen, "cannot remove %s/%s/%s: %s", conf->state_dir, RETAINED_DIR,
		    name, strerror(errno));
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
retained_retire(const struct config *conf, int dry_run, struct retained_ca **out, size_t *n,
    char *err, size_t errlen)
{
	char keep[2][PKI_SHA256_HEX], why[512];
	struct dirent *de;
	DIR *dir;
	int sfd, rfd, removed = 0, r = 0, k;

	*out = NULL;
	*n = 0;
	if (certset_ca_sha(conf, 0, keep[0], why, sizeof(why)) == -1 ||
	    certset_ca_sha(conf, 1, keep[1], why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s; nothing retired", why);
		return -1;
	}
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
		return -1;
	}
	rfd = fsx_open_dir(sfd, RETAINED_DIR);
	close(sfd);
	if (rfd == -1 && errno == ENOENT)
		return 0;
	if (rfd == -1 || (dir = fdopendir(rfd)) == NULL) {
		snprintf(err, errlen, "cannot open %s/%s: %s", conf->state_dir, RETAINED_DIR,
		    strerror(errno));
		if (rfd != -1)
			close(rfd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		k = retained_retire_file(
		    conf, rfd, de->d_name, dry_run, keep, out, n, why, sizeof(why));
		if (k == -1 && r == 0)
			snprintf(err, errlen, "%s", why);
		r = k == -1 ? -1 : r;
		removed += k == 1;
	}
	if (!dry_run && removed > 0 && fsx_fsync_dir(rfd) == -1 && r == 0) {
		snprintf(err, errlen, "cannot fsync %s/%s: %s", conf->state_dir, RETAINED_DIR,
		    strerror(errno));
		r = -1;
	}
	closedir(dir);
	if (*n > 1)
		qsort(*out, *n, sizeof(**out), retained_sha_cmp);
	return r;
}

void
retained_free(struct retained_ca *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		X509_free(list[i].cert);
	free(list);
}

/* 64 lower-case hex digits, or "-": nothing else from the record becomes a file name. */
static int
retained_sha_ok(const char *s)
{
	return strcmp(s, "-") == 0 || digest_sha256_hex_ok(s);
}

/* The first certificate of pem: its SHA-256 in hex and (when x is not NULL) the certificate. */
static int
retained_first_sha(const uint8_t *pem, size_t len, char sha[PKI_SHA256_HEX], X509 **x)
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
retained_add(int sfd, const char *sha, X509 *ca, time_t now)
{
	char name[PKI_SHA256_HEX + 8], *p, *text;
	struct stat st;
	BIO *bio;
	long n;
	int rfd, r;

	/* A new retained/ must survive a power cut with its entry: the state directory is fsynced.
	 */
	if (mkdirat(sfd, RETAINED_DIR, 0700) == 0) {
		if (fsx_fsync_dir(sfd) == -1)
			return -1;
	} else if (errno != EEXIST)
		return -1;
	if ((rfd = fsx_open_dir(sfd, RETAINED_DIR)) == -1)
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
retained_note_active(const struct config *conf, time_t now, char before[RETAINED_NOTE_LEN],
    char after[RETAINED_NOTE_LEN], char *err, size_t errlen)
{
	char old_ca[PKI_SHA256_HEX] = "-", old_srv[PKI_SHA256_HEX] = "-";
	char ca_sha[PKI_SHA256_HEX], srv_sha[PKI_SHA256_HEX], *text, *pemstart;
	struct ssldir_set set;
	uint8_t *old = NULL;
	size_t oldlen;
	X509 *oldca = NULL;
	int sfd, dfd, known = 0, r = 0;

	snprintf(before, RETAINED_NOTE_LEN, "-");
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
	retained_first_sha(set.ca, set.ca_len, ca_sha, NULL);
	retained_first_sha(set.cert, set.cert_len, srv_sha, NULL);
	snprintf(after, RETAINED_NOTE_LEN, "ca=%s server=%s", ca_sha, srv_sha);

	/* The record: "carotate-active 1\nca SHA\nserver SHA\n" and the CA's PEM. */
	if (fsx_read(sfd, RETAINED_KNOWN_ACTIVE, SSLDIR_MAX_CERT_FILE, &old, &oldlen) == 0) {
		if (sscanf((char *)old, "carotate-active 1\nca %64s\nserver %64s\n", old_ca,
		        old_srv) == 2 &&
		    retained_sha_ok(old_ca) && retained_sha_ok(old_srv))
			known = 1;
		else
			log_warnx("%s/%s: not understood; recorded anew", conf->state_dir,
			    RETAINED_KNOWN_ACTIVE);
		if (known && (pemstart = strstr((char *)old, "-----BEGIN")) != NULL)
			retained_first_sha((uint8_t *)pemstart,
			    oldlen - (size_t)(pemstart - (char *)old), old_ca, &oldca);
	} else if (errno != ENOENT)
		log_warn("%s/%s", conf->state_dir, RETAINED_KNOWN_ACTIVE);
	if (known) {
		snprintf(before, RETAINED_NOTE_LEN, "ca=%s server=%s", old_ca, old_srv);
		if (strcmp(old_ca, ca_sha) == 0 && strcmp(old_srv, srv_sha) == 0)
			goto out; /* nothing changed */
		r = 1;
		/* The CA it replaced stays trusted for the retention window. */
		if (oldca != NULL && strcmp(old_ca, ca_sha) != 0 &&
		    retained_add(sfd, old_ca, oldca, now) == -1)
			log_warn("cannot retain the replaced CA %s in %s/%s", old_ca,
			    conf->state_dir, RETAINED_DIR);
	}
	xasprintf(&text, "carotate-active 1\nca %s\nserver %s\n%.*s", ca_sha, srv_sha,
	    set.ca != NULL && strcmp(ca_sha, "-") != 0 ? (int)set.ca_len : 0,
	    set.ca != NULL ? (const char *)set.ca : "");
	if (fsx_replace(sfd, RETAINED_KNOWN_ACTIVE, text, strlen(text), 0600) == -1) {
		snprintf(err, errlen, "cannot write %s/%s: %s", conf->state_dir,
		    RETAINED_KNOWN_ACTIVE, strerror(errno));
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
