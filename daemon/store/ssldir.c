/*
 * The SSL directory: the active set in its top level, the staged set in new/,
 * the derived files (ca-bundle.pem, canary.crt, canary.key) beside them.
 * Files are opened relative to a directory handle and never through a
 * symlink, so nothing planted in the directory can redirect a read or write.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "config.h"
#include "errbuf.h"
#include "fault.h"
#include "fsx.h"
#include "log.h"
#include "ssldir.h"
#include "xmalloc.h"

#define SSLDIR_TMP_PREFIX ".staging-"

static int ssldir_probe(int, const char *);
static int ssldir_probe_sole(int, const char *);
static void ssldir_read_info(int, struct ssldir_set *);
static int ssldir_write_set(int, const struct config *, const struct ssldir_files *);
static int ssldir_write_dir(
    const struct config *, const struct ssldir_files *, const char *, int, char *, size_t);
static int ssldir_publish_canary(const struct config *, int, char *, size_t);
static void ssldir_canary_undo(
    const struct config *, int, const uint8_t *, size_t, const uint8_t *, size_t);
static void ssldir_sig_entry(int64_t *, int, const char *);

int
ssldir_open(const struct config *conf, int staged)
{
	int dfd, fd, saved;

	if ((dfd = open(conf->ssl_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || !staged)
		return dfd;
	fd = fsx_open_dir(dfd, SSLDIR_STAGING);
	saved = errno;
	close(dfd);
	errno = saved;
	return fd;
}

/* 0 when name is a regular file (not a symlink) in dirfd, else the errno why not. */
static int
ssldir_probe(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno;
	return S_ISREG(st.st_mode) ? 0 : EINVAL;
}

void
ssldir_set_names(const struct config *conf, const char *names[SSLDIR_SET_FILES])
{
	names[0] = conf->ssl_ca;
	names[1] = conf->ssl_cert;
	names[2] = conf->ssl_key;
	names[3] = SSLDIR_SETINFO;
}

int
ssldir_set_index(const char *const names[SSLDIR_SET_FILES], const char *name)
{
	int i;

	for (i = 0; i < SSLDIR_SET_FILES; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/*
 * 1 when name is a regular file with one link in dirfd, 0 when absent, -1
 * otherwise (ELOOP a symlink, EMLINK a hard-linked file).
 */
static int
ssldir_probe_sole(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	/* A second name elsewhere would keep a key reachable where nobody looks: refused. */
	if (S_ISREG(st.st_mode) && st.st_nlink == 1)
		return 1;
	errno = S_ISLNK(st.st_mode) ? ELOOP : S_ISREG(st.st_mode) ? EMLINK : EINVAL;
	return -1;
}

int
ssldir_set_mask(
    const struct config *conf, int dirfd, const char *where, int *mask, char *err, size_t errlen)
{
	const char *names[SSLDIR_SET_FILES];
	int i, r;

	ssldir_set_names(conf, names);
	*mask = 0;
	for (i = 0; i < SSLDIR_SET_FILES; i++) {
		if ((r = ssldir_probe_sole(dirfd, names[i])) == -1)
			return errbuf_fail(err, errlen, "%s/%s%s: %s, refused", conf->ssl_dir,
			    where, names[i],
			    errno == ELOOP    ? "a symbolic link"
			    : errno == EMLINK ? "a file with another hard link"
			    : errno == EINVAL ? "not a regular file"
			                      : strerror(errno));
		*mask |= r << i;
	}
	return 0;
}

/* The set's origin and staging time, from its hidden info file (absent: unknown). */
static void
ssldir_read_info(int dirfd, struct ssldir_set *set)
{
	uint8_t *buf;
	size_t len;
	char *line, *save = NULL;
	long long t;

	if (fsx_read(dirfd, SSLDIR_SETINFO, 4096, &buf, &len) == -1)
		return;
	for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "origin=generated") == 0 || strcmp(line, "origin=custom") == 0)
			snprintf(set->origin, sizeof(set->origin), "%s", line + 7);
		else if (sscanf(line, "created=%lld", &t) == 1 && t > 0)
			set->created = t;
	}
	free(buf);
}

void
ssldir_read_set(const struct config *conf, int dirfd, struct ssldir_set *set)
{
	memset(set, 0, sizeof(*set));
	if (fsx_read(dirfd, conf->ssl_ca, SSLDIR_MAX_CERT_FILE, &set->ca, &set->ca_len) == -1)
		set->ca_errno = errno;
	if (fsx_read(dirfd, conf->ssl_cert, SSLDIR_MAX_CERT_FILE, &set->cert, &set->cert_len) == -1)
		set->cert_errno = errno;
	set->key_errno = ssldir_probe(dirfd, conf->ssl_key);
	ssldir_read_info(dirfd, set);
}

void
ssldir_set_clear(struct ssldir_set *set)
{
	free(set->ca);
	free(set->cert);
	memset(set, 0, sizeof(*set));
}

int
ssldir_set_present(const struct ssldir_set *set)
{
	return set->ca_errno != ENOENT || set->cert_errno != ENOENT;
}

int
ssldir_phase(const struct config *conf, Carotate__V1__Phase *phase)
{
	struct stat st;
	int dfd, r;

	if ((dfd = ssldir_open(conf, 0)) == -1)
		return -1;
	r = fstatat(dfd, SSLDIR_STAGING, &st, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (r == -1 && errno != ENOENT)
		return -1;
	*phase = r == 0 && S_ISDIR(st.st_mode) ? CAROTATE__V1__PHASE__PHASE_STAGED
	                                       : CAROTATE__V1__PHASE__PHASE_STEADY;
	return 0;
}

int
ssldir_read_ca(const struct config *conf, int staged, uint8_t **data, size_t *len)
{
	int dfd, r, saved;

	if ((dfd = ssldir_open(conf, staged)) == -1)
		return -1;
	r = fsx_read(dfd, conf->ssl_ca, SSLDIR_MAX_CERT_FILE, data, len);
	saved = errno;
	close(dfd);
	errno = saved;
	return r;
}

/* The files of a set, each fsynced, then the directory itself. */
static int
ssldir_write_set(int tfd, const struct config *conf, const struct ssldir_files *f)
{
	char info[128];
	int n;

	n = snprintf(
	    info, sizeof(info), "origin=%s\ncreated=%lld\n", f->origin, (long long)f->created);
	if (fsx_create(tfd, conf->ssl_ca, f->ca, f->ca_len, 0644) == -1)
		return -1;
	fault_point("stage-after-ca");
	if (fsx_create(tfd, conf->ssl_cert, f->cert, f->cert_len, 0644) == -1)
		return -1;
	fault_point("stage-after-cert");
	if (fsx_create(tfd, conf->ssl_key, f->key, f->key_len, 0600) == -1)
		return -1;
	fault_point("stage-after-key");
	if (fsx_create(tfd, SSLDIR_SETINFO, info, (size_t)n, 0644) == -1)
		return -1;
	return fsx_fsync_dir(tfd);
}

int
ssldir_stage(const struct config *conf, const struct ssldir_files *f, char *err, size_t errlen)
{
	return ssldir_write_dir(conf, f, SSLDIR_STAGING, 0, err, errlen);
}

/*
 * A pool's staged set in place of this member's: the new directory is written
 * whole, then exchanged with new/ in one rename, so new/ is always the old set
 * or the new one; the old set, left under the temporary name, is removed (or, after a
 * crash, by ssldir_recover).
 */
int
ssldir_stage_replace(
    const struct config *conf, const struct ssldir_files *f, char *err, size_t errlen)
{
	return ssldir_write_dir(conf, f, SSLDIR_STAGING, 1, err, errlen);
}

/*
 * renew's set beside the active one. A leftover SSLDIR_RENEWING is a renew
 * cut short before its journal was written (the journal never outlives the
 * start-up that replays it), so it holds nothing live: it goes.
 */
int
ssldir_renewal(const struct config *conf, const struct ssldir_files *f, char *err, size_t errlen)
{
	int dfd;

	if ((dfd = ssldir_open(conf, 0)) == -1 ||
	    (fsx_remove_dir(dfd, SSLDIR_RENEWING) == -1 && errno != ENOENT)) {
		snprintf(err, errlen, "cannot clear %s/%s: %s", conf->ssl_dir, SSLDIR_RENEWING,
		    strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	close(dfd);
	return ssldir_write_dir(conf, f, SSLDIR_RENEWING, 0, err, errlen);
}

/*
 * A whole set as the directory target of the SSL directory: temporary directory, then
 * rename; with replace, an existing target is exchanged with it and then removed.
 */
static int
ssldir_write_dir(const struct config *conf, const struct ssldir_files *f, const char *target,
    int replace, char *err, size_t errlen)
{
	unsigned char rnd[8];
	char tmp[64];
	int dfd = -1, tfd = -1, saved;

	if ((dfd = ssldir_open(conf, 0)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
		return -1;
	}
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("%s: no randomness", __func__);
	snprintf(tmp, sizeof(tmp), SSLDIR_TMP_PREFIX "%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
	    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if (mkdirat(dfd, tmp, 0700) == -1 || (tfd = fsx_open_dir(dfd, tmp)) == -1) {
		snprintf(
		    err, errlen, "cannot create %s/%s: %s", conf->ssl_dir, tmp, strerror(errno));
		goto fail;
	}
	fault_point("stage-after-mkdir");
	if (ssldir_write_set(tfd, conf, f) == -1) {
		snprintf(err, errlen, "cannot write the set %s/%s: %s", conf->ssl_dir, target,
		    strerror(errno));
		goto fail;
	}
	fault_point("stage-before-rename");
	if (renameat2(dfd, tmp, dfd, target, RENAME_NOREPLACE) == -1 &&
	    (!replace || errno != EEXIST ||
	        renameat2(dfd, tmp, dfd, target, RENAME_EXCHANGE) == -1)) {
		snprintf(err, errlen, "cannot rename %s to %s/%s: %s", tmp, conf->ssl_dir, target,
		    strerror(errno));
		goto fail;
	}
	fault_point("stage-after-rename");
	/* Exchanged: tmp now holds the set replaced (gone when never there: ENOENT). */
	if (replace && fsx_remove_dir(dfd, tmp) == -1 && errno != ENOENT)
		log_warn("%s: cannot remove %s/%s, the staged set replaced", __func__,
		    conf->ssl_dir, tmp);
	if (fsx_fsync_dir(dfd) == -1) {
		/* The rename happened; only its durability is in doubt. */
		log_warn("%s: fsync %s", __func__, conf->ssl_dir);
	}
	close(tfd);
	close(dfd);
	return 0;
fail:
	saved = errno;
	if (tfd != -1)
		close(tfd);
	if (fsx_remove_dir(dfd, tmp) == -1 && errno != ENOENT)
		log_warn("%s: cannot remove %s/%s", __func__, conf->ssl_dir, tmp);
	close(dfd);
	errno = saved;
	return -1;
}

/* canary.crt and canary.key: copies of the staged set's server files, else the active set's. */
static int
ssldir_publish_canary(const struct config *conf, int dfd, char *err, size_t errlen)
{
	uint8_t *cert = NULL, *key = NULL, *oldkey = NULL;
	size_t cert_len = 0, key_len = 0, oldkey_len = 0;
	int sfd, changed = 0, r = -1;

	if ((sfd = fsx_open_dir(dfd, SSLDIR_STAGING)) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "%s/%s: %s", conf->ssl_dir, SSLDIR_STAGING, strerror(errno));
		return -1;
	}
	if (fsx_read(sfd != -1 ? sfd : dfd, conf->ssl_cert, SSLDIR_MAX_CERT_FILE, &cert,
	        &cert_len) == -1 ||
	    fsx_read(sfd != -1 ? sfd : dfd, conf->ssl_key, SSLDIR_MAX_CERT_FILE, &key, &key_len) ==
	        -1) {
		/* No server set at all (a fresh proxy): nothing for a canary to serve yet. */
		r = errno == ENOENT ? 0 : -1;
		if (r == -1)
			snprintf(err, errlen, "cannot read the %s server certificate or key: %s",
			    sfd != -1 ? "staged" : "active", strerror(errno));
		goto out;
	}
	if (!fsx_same(dfd, SSLDIR_CANARY_KEY, key, key_len)) {
		if (fsx_read(dfd, SSLDIR_CANARY_KEY, SSLDIR_MAX_CERT_FILE, &oldkey, &oldkey_len) ==
		    -1)
			oldkey = NULL;
		if (fsx_replace(dfd, SSLDIR_CANARY_KEY, key, key_len, 0600) == -1)
			goto fail;
		changed = 1;
		fault_point("publish-between-canary-files");
	}
	if (!fsx_same(dfd, SSLDIR_CANARY_CERT, cert, cert_len)) {
		if (fsx_replace(dfd, SSLDIR_CANARY_CERT, cert, cert_len, 0644) == -1)
			goto fail;
		changed = 1;
	}
	r = changed;
	goto out;
fail:
	snprintf(err, errlen, "cannot publish the canary certificate: %s", strerror(errno));
	ssldir_canary_undo(conf, dfd, cert, cert_len, oldkey, oldkey_len);
	r = -1;
out:
	if (key != NULL)
		explicit_bzero(key, key_len);
	free(key);
	if (oldkey != NULL)
		explicit_bzero(oldkey, oldkey_len);
	free(oldkey);
	free(cert);
	if (sfd != -1)
		close(sfd);
	return r;
}

/*
 * The canary pair failed half way: a new key beside the old certificate (or
 * the reverse) stops the proxy from loading either. The certificate on disk
 * decides: when it is still the old one, the old key goes back.
 */
static void
ssldir_canary_undo(const struct config *conf, int dfd, const uint8_t *cert, size_t cert_len,
    const uint8_t *oldkey, size_t oldkey_len)
{
	if (oldkey == NULL || fsx_same(dfd, SSLDIR_CANARY_CERT, cert, cert_len) ||
	    fsx_same(dfd, SSLDIR_CANARY_KEY, oldkey, oldkey_len))
		return;
	if (fsx_replace(dfd, SSLDIR_CANARY_KEY, oldkey, oldkey_len, 0600) == -1)
		log_warn("cannot put the previous %s/%s back: it may not match %s", conf->ssl_dir,
		    SSLDIR_CANARY_KEY, SSLDIR_CANARY_CERT);
}

int
ssldir_publish(const struct config *conf, const char *pem, size_t len, char *err, size_t errlen)
{
	int dfd, changed = 0, r;

	if ((dfd = ssldir_open(conf, 0)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
		return -1;
	}
	if (!fsx_same(dfd, SSLDIR_BUNDLE, pem, len)) {
		if (fsx_replace(dfd, SSLDIR_BUNDLE, pem, len, 0644) == -1) {
			snprintf(err, errlen, "cannot write %s/%s: %s", conf->ssl_dir,
			    SSLDIR_BUNDLE, strerror(errno));
			close(dfd);
			return -1;
		}
		changed = 1;
		fault_point("publish-after-bundle");
	}
	r = ssldir_publish_canary(conf, dfd, err, errlen);
	close(dfd);
	return r == -1 ? -1 : changed || r == 1;
}

int
ssldir_published(const struct config *conf, const char *pem, size_t len)
{
	int dfd, same;

	if ((dfd = ssldir_open(conf, 0)) == -1)
		return 0;
	same = fsx_same(dfd, SSLDIR_BUNDLE, pem, len);
	close(dfd);
	return same;
}

void
ssldir_recover(const struct config *conf)
{
	struct dirent *de;
	DIR *dir;
	int dfd, fd;
	size_t n;

	if ((dfd = ssldir_open(conf, 0)) == -1 || (fd = dup(dfd)) == -1 ||
	    (dir = fdopendir(fd)) == NULL) {
		log_warn("%s: %s", __func__, conf->ssl_dir);
		if (dfd != -1)
			close(dfd);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		n = strlen(de->d_name);
		/* The journal was replayed first: a renew set still here never went live. */
		if (strcmp(de->d_name, SSLDIR_RENEWING) == 0) {
			log_info("removing %s/%s, a renew interrupted before its swap",
			    conf->ssl_dir, de->d_name);
			if (fsx_remove_dir(dfd, de->d_name) == -1)
				log_warn("cannot remove %s/%s", conf->ssl_dir, de->d_name);
		} else if (strncmp(de->d_name, SSLDIR_TMP_PREFIX, strlen(SSLDIR_TMP_PREFIX)) == 0) {
			log_info("removing %s/%s, a staging interrupted by a crash", conf->ssl_dir,
			    de->d_name);
			if (fsx_remove_dir(dfd, de->d_name) == -1)
				log_warn("cannot remove %s/%s", conf->ssl_dir, de->d_name);
		} else if (de->d_name[0] == '.' && n > 5 &&
		           strcmp(de->d_name + n - 4, ".tmp") == 0) {
			if (unlinkat(dfd, de->d_name, 0) == -1)
				log_warn("cannot remove %s/%s", conf->ssl_dir, de->d_name);
		}
	}
	closedir(dir);
	close(dfd);
}

/* One entry's identity (inode, size, change times, mode), or its absence. */
static void
ssldir_sig_entry(int64_t *v, int dirfd, const char *name)
{
	struct stat st;

	memset(v, 0, SSLDIR_SIG_ENTRY * sizeof(v[0]));
	if (dirfd != -1 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		v[0] = (int64_t)st.st_ino;
		v[1] = (int64_t)st.st_size;
		v[2] = (int64_t)st.st_mtim.tv_sec;
		v[3] = (int64_t)st.st_mtim.tv_nsec;
		v[4] = (int64_t)st.st_ctim.tv_sec;
		v[5] = (int64_t)st.st_ctim.tv_nsec;
		v[6] = (int64_t)st.st_mode;
	} else
		v[0] = -(int64_t)errno;
}

void
ssldir_signature(const struct config *conf, int64_t sig[SSLDIR_SIG_LEN])
{
	const char *names[SSLDIR_SIG_FILES] = { conf->ssl_ca, conf->ssl_cert, conf->ssl_key,
		SSLDIR_SETINFO, SSLDIR_BUNDLE, SSLDIR_STAGING };
	int dfd = ssldir_open(conf, 0), sfd = dfd != -1 ? fsx_open_dir(dfd, SSLDIR_STAGING) : -1;
	size_t i;

	for (i = 0; i < SSLDIR_SIG_FILES; i++)
		ssldir_sig_entry(sig + i * SSLDIR_SIG_ENTRY, dfd, names[i]);
	/* The staged set: the same four files inside new/. */
	for (i = 0; i < 4; i++)
		ssldir_sig_entry(sig + (SSLDIR_SIG_FILES + i) * SSLDIR_SIG_ENTRY, sfd, names[i]);
	if (sfd != -1)
		close(sfd);
	if (dfd != -1)
		close(dfd);
}

/*
 * nginx -t refuses a canary server block whose canary.crt does not exist, and
 * before the daemon's first start there is none. Writes what start-up would
 * publish (the staged or active server pair) or, on a proxy with no server set
 * yet, the placeholder pair given, which no agent trusts. A complete pair
 * already there is kept. 1 when something was written, 0 when not, -1 with err.
 */
int
ssldir_init_canary(
    const struct config *conf, const char *cert, const char *key, char *err, size_t errlen)
{
	int dfd, r;

	if ((dfd = ssldir_open(conf, 0)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
		return -1;
	}
	r = ssldir_publish_canary(conf, dfd, err, errlen);
	if (r == 0 && (ssldir_probe(dfd, SSLDIR_CANARY_KEY) != 0 ||
	                  ssldir_probe(dfd, SSLDIR_CANARY_CERT) != 0)) {
		/* The key first: a certificate without its key would fail nginx -t as well. */
		if (fsx_replace(dfd, SSLDIR_CANARY_KEY, key, strlen(key), 0600) == -1 ||
		    fsx_replace(dfd, SSLDIR_CANARY_CERT, cert, strlen(cert), 0644) == -1) {
			snprintf(err, errlen, "cannot write the placeholder canary pair in %s: %s",
			    conf->ssl_dir, strerror(errno));
			r = -1;
		} else
			r = 1;
	}
	close(dfd);
	return r;
}
