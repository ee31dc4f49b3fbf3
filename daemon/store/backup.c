/*
 * The backups beside the active set: certs-YYYYMMDD-HHMMSS[-N] (made by a
 * rotate or a restore, with a manifest; or by hand, without one) and
 * discarded-YYYYMMDD-HHMMSS[-N] (staged sets that were discarded). Names come
 * from reading the SSL directory, never from a client: a requested id is only
 * compared with them; the names the daemon gives are made here too, all of
 * one grammar (common/backupid.c). Nothing here follows a symlink.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backup.h"
#include "config.h"
#include "digest.h"
#include "errbuf.h"
#include "fsx.h"
#include "log.h"
#include "pki.h"
#include "ssldir.h"
#include "strbuf.h"
#include "journal.h"
#include "xmalloc.h"

#define BACKUP_MAX_TRIES      100 /* names tried for one second: -2 ... -100 */
#define BACKUP_DISCARDED_TEXT "a discarded staged set; stage it again with install"
#define BACKUP_CACHE_SLOTS    32
#define BACKUP_WHY_MAX        384

/*
 * pki_check_set's answers by the SHA-256 of the three files it was given: an
 * RSA-4096 key takes milliseconds to prove, and every listing asks again for
 * every backup while the parent also serves the agents. Changed bytes are a
 * new key, so an answer is never stale.
 */
static struct {
	uint8_t key[32];
	int valid, ok;
	char why[BACKUP_WHY_MAX];
} backup_cache[BACKUP_CACHE_SLOTS];
static unsigned backup_cache_next;

static int backup_name(const char *, time_t, int, char[BACKUP_ID_MAX]);
static int backup_sha256(int, const char *, char[65], mode_t *);
static int backup_verify_line(
    const struct config *, int, const char *, const char *, int *, char *, size_t);
static int64_t backup_name_time(const char *);
static void backup_manifest_line(struct backup_info *, const char *);
static void backup_read_manifest(int, struct backup_info *);
static int backup_entry(int, const char *, struct backup_info *);
static int backup_cmp(const void *, const void *);
static int backup_scan(const struct config *, struct backup_info **, size_t *, char *, size_t);
static Carotate__V1__CertInfo *backup_cert(int, const char *);
static void backup_set_digest(uint8_t *const[3], const size_t[3], uint8_t[32]);
static int backup_pki_cached(uint8_t *const[3], const size_t[3], char *, size_t);
static int backup_check_pki(const struct config *, const char *, char *, size_t);
static int backup_check_named(const struct config *, const char *, char *, size_t);
static void backup_describe(const struct config *, struct backup_info *);
static int backup_find(const struct config *, const char *, char[BACKUP_ID_MAX], char *, size_t);
static int backup_rolled_back(const struct backup_info *);
static int backup_idle(const struct config *, char *, size_t);
static int backup_foreign(const struct backup_info *);
static int backup_remove(const struct config *, int, const char *, char *, size_t);

/*
 * The n-th name (from 1) tried for a backup made at now: prefix-YYYYMMDD-HHMMSS
 * (UTC), then -2, -3...; -1 when that is not of the grammar (a year past 9999).
 */
static int
backup_name(const char *prefix, time_t now, int n, char id[BACKUP_ID_MAX])
{
	char stamp[32];
	struct tm tm;
	int len;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
		return -1;
	if (n == 1)
		len = snprintf(id, BACKUP_ID_MAX, "%s%s", prefix, stamp);
	else
		len = snprintf(id, BACKUP_ID_MAX, "%s%s-%d", prefix, stamp, n);
	return len > 0 && len < BACKUP_ID_MAX && backupid_match(id, prefix, NULL) ? 0 : -1;
}

int
backup_pick_id(const struct config *conf, int dfd, time_t now, char id[BACKUP_ID_MAX], char *err,
    size_t errlen)
{
	struct stat st;
	int i;

	for (i = 1; i <= BACKUP_MAX_TRIES; i++) {
		if (backup_name(BACKUPID_CERTS, now, i, id) == -1)
			return errbuf_fail(
			    err, errlen, "cannot name a backup for time %lld", (long long)now);
		if (fstatat(dfd, id, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)
			return 0;
	}
	return errbuf_fail(
	    err, errlen, "no free backup name in %s for time %lld", conf->ssl_dir, (long long)now);
}

int
backup_discard(
    const struct config *conf, time_t now, char *kept_as, size_t kept_len, char *err, size_t errlen)
{
	char id[BACKUP_ID_MAX];
	int dfd, i, r = -1;

	if (kept_len > 0)
		kept_as[0] = '\0';
	if ((dfd = ssldir_open(conf, 0)) == -1)
		return errbuf_fail(
		    err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
	for (i = 1; i <= BACKUP_MAX_TRIES; i++) {
		if (backup_name(BACKUPID_DISCARDED, now, i, id) == -1) {
			errno = ERANGE;
			break;
		}
		if ((r = renameat2(dfd, SSLDIR_STAGING, dfd, id, RENAME_NOREPLACE)) == 0 ||
		    errno != EEXIST)
			break;
	}
	if (r == -1)
		errbuf_fail(err, errlen, "cannot move %s/%s aside: %s", conf->ssl_dir,
		    SSLDIR_STAGING, strerror(errno));
	else {
		snprintf(kept_as, kept_len, "%s", id);
		if (fsx_fsync_dir(dfd) == -1)
			log_warn("%s: fsync %s", __func__, conf->ssl_dir);
	}
	close(dfd);
	return r;
}

/* The SHA-256 (hex) and mode of file name in dirfd, never through a symlink; -1 with errno. */
static int
backup_sha256(int dirfd, const char *name, char hex[65], mode_t *mode)
{
	struct stat st;
	uint8_t *data;
	size_t len;
	int ok;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    fsx_read(dirfd, name, SSLDIR_MAX_CERT_FILE, &data, &len) == -1)
		return -1;
	ok = digest_sha256_hex(data, len, hex) == 0;
	explicit_bzero(data, len);
	free(data);
	if (!ok) {
		errno = EIO;
		return -1;
	}
	*mode = st.st_mode & 07777;
	return 0;
}

int
backup_manifest(const struct config *conf, int dfd, int mask, const char *op, const char *reason,
    time_t now, char *buf, size_t size, size_t *len, char *err, size_t errlen)
{
	const char *names[SSLDIR_SET_FILES];
	char clean[LIMITS_MAX_REASON + 1], hex[65];
	size_t i;
	mode_t mode;

	ssldir_set_names(conf, names);
	*len = 0;
	/* Operator text: one line, no control characters. */
	for (i = 0; reason != NULL && reason[i] != '\0' && i < LIMITS_MAX_REASON; i++)
		clean[i] = iscntrl((unsigned char)reason[i]) ? '?' : reason[i];
	clean[i] = '\0';
	if (strbuf_appendf(buf, size, len, "reason=%s\nop=%s\ncreated=%lld\n", clean, op,
	        (long long)now) == -1)
		return errbuf_fail(err, errlen, "manifest too long");
	for (i = 0; i < SSLDIR_SET_FILES; i++) {
		if (!(mask & (1 << i)))
			continue;
		if (backup_sha256(dfd, names[i], hex, &mode) == -1)
			return errbuf_fail(err, errlen, "cannot read %s/%s: %s", conf->ssl_dir,
			    names[i], strerror(errno));
		if (strbuf_appendf(
		        buf, size, len, "%s  %04o  %s\n", hex, (unsigned)mode, names[i]) == -1)
			return errbuf_fail(err, errlen, "manifest too long");
	}
	return 0;
}

/* One `sha256  mode  name` line: a set file whose content and mode match. */
static int
backup_verify_line(const struct config *conf, int bfd, const char *id, const char *line, int *mask,
    char *err, size_t errlen)
{
	const char *names[SSLDIR_SET_FILES];
	char want[65], got[65];
	unsigned int mode;
	mode_t cur;
	int n = 0, i;

	ssldir_set_names(conf, names);
	if (sscanf(line, "%64[0-9a-f]  %4o  %n", want, &mode, &n) != 2 || n == 0 ||
	    strlen(want) != 64)
		return errbuf_fail(err, errlen, "%s/%s: bad line, refused", id, BACKUP_MANIFEST);
	if ((i = ssldir_set_index(names, line + n)) == -1 || (*mask & (1 << i)))
		return errbuf_fail(err, errlen, "%s/%s: unexpected or repeated file, refused", id,
		    BACKUP_MANIFEST);
	if (backup_sha256(bfd, names[i], got, &cur) == -1)
		return errbuf_fail(err, errlen, "%s/%s: %s, refused", id, names[i],
		    errno == ELOOP ? "a symbolic link" : strerror(errno));
	if (strcmp(want, got) != 0 || cur != (mode_t)mode)
		return errbuf_fail(
		    err, errlen, "%s/%s does not match its manifest, refused", id, names[i]);
	*mask |= 1 << i;
	return 0;
}

int
backup_verify(
    const struct config *conf, int dfd, const char *id, int *mask, char *err, size_t errlen)
{
	char *line, *save = NULL, where[BACKUP_ID_MAX + 1];
	uint8_t *buf = NULL;
	size_t len;
	int bfd, r = 0;

	*mask = 0;
	/* Client input: never echoed until it has the shape of a backup id. */
	if (!backupid_valid(id))
		return errbuf_fail(err, errlen, "not a backup id (certs-YYYYMMDD-HHMMSS[-N])");
	if ((bfd = fsx_open_dir(dfd, id)) == -1)
		return errbuf_fail(err, errlen, "no backup %s: %s", id, strerror(errno));
	if (fsx_read(bfd, BACKUP_MANIFEST, BACKUP_MANIFEST_MAX, &buf, &len) == -1) {
		snprintf(where, sizeof(where), "%s/", id);
		r = errno == ENOENT
		        ? ssldir_set_mask(conf, bfd, where, mask, err, errlen)
		        : errbuf_fail(err, errlen, "%s/%s: %s, refused", id, BACKUP_MANIFEST,
		              errno == ELOOP ? "a symbolic link" : strerror(errno));
	} else if (strlen((char *)buf) != len)
		r = errbuf_fail(err, errlen, "%s/%s: binary content, refused", id, BACKUP_MANIFEST);
	else
		for (line = strtok_r((char *)buf, "\n", &save); line != NULL && r == 0;
		     line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "reason=", 7) != 0 && strncmp(line, "op=", 3) != 0 &&
			    strncmp(line, "created=", 8) != 0)
				r = backup_verify_line(conf, bfd, id, line, mask, err, errlen);
	free(buf);
	close(bfd);
	if (r == 0 && (*mask & SSLDIR_SET_REQUIRED) != SSLDIR_SET_REQUIRED)
		r = errbuf_fail(err, errlen, "%s is not a complete set, refused", id);
	return r;
}

int
backup_check_files(const struct config *conf, const char *id, char *err, size_t errlen)
{
	int dfd, mask, r;

	if ((dfd = ssldir_open(conf, 0)) == -1)
		return errbuf_fail(
		    err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
	r = backup_verify(conf, dfd, id, &mask, err, errlen);
	close(dfd);
	return r;
}

/* The UTC time a name spells (after its prefix), 0 when it spells no real instant. */
static int64_t
backup_name_time(const char *stamp)
{
	struct tm tm, back;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(stamp, "%4d%2d%2d-%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
	        &tm.tm_min, &tm.tm_sec) != 6 ||
	    tm.tm_year < 1970)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	/* timegm normalizes 20251332 into January: only a round trip is a real date. */
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_year != back.tm_year ||
	    tm.tm_mon != back.tm_mon || tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour ||
	    tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec)
		return 0;
	return (int64_t)t;
}

/* reason=, op= and created=; the sums are backup_verify's. */
static void
backup_manifest_line(struct backup_info *b, const char *line)
{
	long long t;
	char *end;

	if (strncmp(line, "reason=", 7) == 0)
		snprintf(b->detail, sizeof(b->detail), "%s", line + 7);
	else if (strcmp(line, "op=rotate") == 0)
		b->reason = "rotate";
	else if (strcmp(line, "op=restore") == 0)
		b->reason = "restore";
	else if (strcmp(line, "op=renew") == 0)
		b->reason = "renew";
	else if (strcmp(line, "op=pool") == 0)
		b->reason = "pool";
	else if (strcmp(line, "op=rollback") == 0)
		b->reason = "rollback";
	else if (strncmp(line, "created=", 8) == 0 && isdigit((unsigned char)line[8])) {
		errno = 0;
		t = strtoll(line + 8, &end, 10);
		if (errno == 0 && *end == '\0' && t > 0)
			b->created = t;
	}
}

/* What a certs-* directory's manifest says, if it has one. */
static void
backup_read_manifest(int bfd, struct backup_info *b)
{
	char *line, *save = NULL;
	uint8_t *buf;
	size_t len;

	if (fsx_read(bfd, BACKUP_MANIFEST, BACKUP_MANIFEST_MAX, &buf, &len) == -1) {
		b->manifest = errno == ENOENT ? 0 : -1;
		b->reason = b->manifest == 0 ? "manual" : "rotate";
		return;
	}
	b->manifest = 1;
	b->reason = NULL;
	if (strlen((char *)buf) == len)
		for (line = strtok_r((char *)buf, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save))
			backup_manifest_line(b, line);
	else
		b->manifest = -1;
	free(buf);
	/* Manifests older than the op= line: a restore's reason says so. */
	if (b->reason == NULL)
		b->reason = strncmp(b->detail, "restore of ", 11) == 0 ? "restore" : "rotate";
	for (len = 0; b->detail[len] != '\0'; len++)
		if (iscntrl((unsigned char)b->detail[len]))
			b->detail[len] = '?';
}

/* Fills b for directory entry name of the SSL directory: 1 a backup, 0 not one (skipped). */
static int
backup_entry(int dfd, const char *name, struct backup_info *b)
{
	struct stat st;
	int bfd;

	memset(b, 0, sizeof(*b));
	if (backupid_match(name, BACKUPID_CERTS, &b->suffix))
		b->created = backup_name_time(name + strlen(BACKUPID_CERTS));
	else if (backupid_match(name, BACKUPID_DISCARDED, &b->suffix)) {
		b->discarded = 1;
		b->reason = "discard";
		b->created = backup_name_time(name + strlen(BACKUPID_DISCARDED));
	} else
		return 0;
	/* A symlink named like a backup is no backup, whatever it points at. */
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 || !S_ISDIR(st.st_mode))
		return 0;
	if (strlen(name) >= sizeof(b->id))
		return 0;
	memcpy(b->id, name, strlen(name) + 1);
	if (b->discarded)
		return 1;
	if ((bfd = fsx_open_dir(dfd, name)) == -1)
		return 0;
	backup_read_manifest(bfd, b);
	close(bfd);
	return 1;
}

/* Newest first: created, then the -N suffix, then the name. */
static int
backup_cmp(const void *x, const void *y)
{
	const struct backup_info *a = x, *b = y;

	if (a->created != b->created)
		return a->created < b->created ? 1 : -1;
	if (a->suffix != b->suffix)
		return a->suffix < b->suffix ? 1 : -1;
	return -strcmp(a->id, b->id);
}

/* Every backup, newest first, from names, stat and manifests only (no certificate read). */
static int
backup_scan(
    const struct config *conf, struct backup_info **out, size_t *n, char *err, size_t errlen)
{
	struct backup_info *list = NULL;
	struct dirent *de;
	size_t cap = 0;
	DIR *dir;
	int dfd, fd;

	*out = NULL;
	*n = 0;
	if ((dfd = ssldir_open(conf, 0)) == -1)
		return errbuf_fail(
		    err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
	if ((fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) == -1 || (dir = fdopendir(fd)) == NULL) {
		errbuf_fail(err, errlen, "cannot read %s: %s", conf->ssl_dir, strerror(errno));
		if (fd != -1)
			close(fd);
		close(dfd);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		if (backup_entry(dfd, de->d_name, &list[*n]) == 1)
			(*n)++;
	}
	closedir(dir);
	close(dfd);
	if (*n > 0)
		qsort(list, *n, sizeof(*list), backup_cmp);
	*out = list;
	return 0;
}

/* The first certificate of file name in bfd, described; NULL when it cannot be read. */
static Carotate__V1__CertInfo *
backup_cert(int bfd, const char *name)
{
	Carotate__V1__CertInfo *info;
	STACK_OF(X509) * certs;
	uint8_t *pem;
	size_t len;
	char why[128];
	X509 *x;

	if (fsx_read(bfd, name, SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
		return NULL;
	certs = pki_certs_from_pem(pem, len, why, sizeof(why));
	free(pem);
	if (certs == NULL)
		return NULL;
	x = sk_X509_value(certs, 0);
	info = xmalloc(sizeof(*info));
	carotate__v1__cert_info__init(info);
	pki_describe(x, info);
	sk_X509_pop_free(certs, X509_free);
	return info;
}

/* SHA-256 over each file's length and bytes, in order. */
static void
backup_set_digest(uint8_t *const data[3], const size_t len[3], uint8_t key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t n;
	size_t i;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		fatalx("%s: SHA-256 unavailable", __func__);
	for (i = 0; i < 3; i++) {
		n = len[i];
		EVP_DigestUpdate(ctx, &n, sizeof(n));
		EVP_DigestUpdate(ctx, data[i], len[i]);
	}
	EVP_DigestFinal_ex(ctx, key, NULL);
	EVP_MD_CTX_free(ctx);
}

/* pki_check_set through the cache; why gets the reason on -1. */
static int
backup_pki_cached(uint8_t *const data[3], const size_t len[3], char *why, size_t whylen)
{
	uint8_t key[32];
	size_t i;
	int ok;

	backup_set_digest(data, len, key);
	for (i = 0; i < BACKUP_CACHE_SLOTS; i++)
		if (backup_cache[i].valid && memcmp(backup_cache[i].key, key, sizeof(key)) == 0) {
			snprintf(why, whylen, "%s", backup_cache[i].why);
			return backup_cache[i].ok ? 0 : -1;
		}
	ok = pki_check_set(data[0], len[0], data[1], len[1], data[2], len[2], why, whylen) == 0;
	i = backup_cache_next++ % BACKUP_CACHE_SLOTS;
	memcpy(backup_cache[i].key, key, sizeof(key));
	backup_cache[i].ok = ok;
	backup_cache[i].valid = 1;
	snprintf(backup_cache[i].why, sizeof(backup_cache[i].why), "%s", ok ? "" : why);
	return ok ? 0 : -1;
}

/*
 * Key, certificate and CA of backup id belong together. id comes from a
 * directory listing. XXX the files are read again after backup_check_files
 * summed them; only root can change them in between.
 */
static int
backup_check_pki(const struct config *conf, const char *id, char *err, size_t errlen)
{
	const char *names[3] = { conf->ssl_ca, conf->ssl_cert, conf->ssl_key };
	uint8_t *data[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 }, i;
	char why[BACKUP_WHY_MAX];
	int dfd, bfd, r = 0;

	if ((dfd = ssldir_open(conf, 0)) == -1 || (bfd = fsx_open_dir(dfd, id)) == -1) {
		r = errbuf_fail(
		    err, errlen, "cannot open %s/%s: %s", conf->ssl_dir, id, strerror(errno));
		if (dfd != -1)
			close(dfd);
		return r;
	}
	for (i = 0; i < 3 && r == 0; i++)
		if (fsx_read(bfd, names[i], SSLDIR_MAX_CERT_FILE, &data[i], &len[i]) == -1)
			r = errbuf_fail(err, errlen, "%s/%s: %s, refused", id, names[i],
			    errno == ELOOP ? "a symbolic link" : strerror(errno));
	if (r == 0 && backup_pki_cached(data, len, why, sizeof(why)) == -1)
		r = errbuf_fail(err, errlen, "%s: %s", id, why);
	for (i = 0; i < 3; i++) {
		if (data[i] != NULL)
			explicit_bzero(data[i], len[i]);
		free(data[i]);
	}
	close(bfd);
	close(dfd);
	return r;
}

/* id is a name read from the SSL directory. */
static int
backup_check_named(const struct config *conf, const char *id, char *err, size_t errlen)
{
	if (backup_check_files(conf, id, err, errlen) == -1)
		return -1;
	return backup_check_pki(conf, id, err, errlen);
}

static void
backup_describe(const struct config *conf, struct backup_info *b)
{
	int dfd, bfd = -1;

	if ((dfd = ssldir_open(conf, 0)) != -1)
		bfd = fsx_open_dir(dfd, b->id);
	if (bfd != -1) {
		b->ca = backup_cert(bfd, conf->ssl_ca);
		b->server = backup_cert(bfd, conf->ssl_cert);
		close(bfd);
	}
	if (dfd != -1)
		close(dfd);
	if (b->discarded)
		snprintf(b->problem, sizeof(b->problem), BACKUP_DISCARDED_TEXT);
	else
		b->restorable =
		    backup_check_named(conf, b->id, b->problem, sizeof(b->problem)) == 0;
	if (b->restorable)
		b->problem[0] = '\0';
}

int
backup_list_page(const struct config *conf, size_t offset, size_t limit, struct backup_info **out,
    size_t *n, size_t *total, char *err, size_t errlen)
{
	struct backup_info *list;
	size_t i, count;

	*out = NULL;
	*n = *total = 0;
	if (backup_scan(conf, &list, &count, err, errlen) == -1)
		return -1;
	*total = count;
	if (offset >= count) {
		free(list);
		return 0;
	}
	if (limit > count - offset)
		limit = count - offset;
	memmove(list, list + offset, limit * sizeof(*list));
	for (i = 0; i < limit; i++)
		backup_describe(conf, &list[i]);
	*out = list;
	*n = limit;
	return 0;
}

int
backup_list(
    const struct config *conf, struct backup_info **out, size_t *n, char *err, size_t errlen)
{
	size_t total;

	return backup_list_page(conf, 0, SIZE_MAX, out, n, &total, err, errlen);
}

void
backup_free(struct backup_info *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (list[i].ca != NULL)
			protobuf_c_message_free_unpacked(&list[i].ca->base, NULL);
		if (list[i].server != NULL)
			protobuf_c_message_free_unpacked(&list[i].server->base, NULL);
	}
	free(list);
}

/*
 * The directory entry equal to id, copied into name: what is used from then on
 * is what the directory holds, never the caller's bytes.
 */
static int
backup_find(
    const struct config *conf, const char *id, char name[BACKUP_ID_MAX], char *err, size_t errlen)
{
	struct backup_info *list;
	size_t i, n;
	int r = -1;

	if (backup_scan(conf, &list, &n, err, errlen) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (!list[i].discarded && strcmp(list[i].id, id) == 0) {
			memcpy(name, list[i].id, BACKUP_ID_MAX);
			r = 0;
			break;
		}
	free(list);
	if (r == -1)
		errbuf_fail(err, errlen, "no backup %s in %s (carotatectl backups lists them)", id,
		    conf->ssl_dir);
	return r;
}

int
backup_check(const struct config *conf, const char *id, char *err, size_t errlen)
{
	char name[BACKUP_ID_MAX];

	/* Client input: echoed only once it has the exact shape of a name. */
	if (backupid_match(id, BACKUPID_DISCARDED, NULL))
		return errbuf_fail(err, errlen, "%s: " BACKUP_DISCARDED_TEXT, id);
	if (id == NULL || !backupid_valid(id))
		return errbuf_fail(err, errlen, "not a backup id (certs-YYYYMMDD-HHMMSS[-N])");
	if (backup_find(conf, id, name, err, errlen) == -1)
		return -1;
	return backup_check_named(conf, name, err, errlen);
}

/* A backup of the set a failed rotate or restore had put live (swap_restore_as). */
static int
backup_rolled_back(const struct backup_info *b)
{
	return b->reason != NULL && strcmp(b->reason, "rollback") == 0;
}

int
backup_latest(const struct config *conf, char id[BACKUP_ID_MAX], char *err, size_t errlen)
{
	struct backup_info *list;
	size_t i, n;
	int r = -1;

	id[0] = '\0';
	if (backup_scan(conf, &list, &n, err, errlen) == -1)
		return -1;
	/* A rollback backup holds the set that failed its TLS check: never what "latest" means. */
	for (i = 0; i < n && r == -1; i++)
		if (!list[i].discarded && !backup_rolled_back(&list[i])) {
			memcpy(id, list[i].id, BACKUP_ID_MAX);
			r = 0;
		}
	free(list);
	if (r == -1)
		errbuf_fail(err, errlen,
		    "no backup in %s (but those of sets that failed their TLS check)",
		    conf->ssl_dir);
	return r;
}

/* Pruning while a swap awaits recovery could remove the backup it restores from. */
static int
backup_idle(const struct config *conf, char *err, size_t errlen)
{
	int r;

	if ((r = journal_exists(conf, err, errlen)) == 1)
		return errbuf_fail(err, errlen,
		    "%s/%s: an interrupted swap awaits recovery; nothing pruned", conf->state_dir,
		    JOURNAL_FILE);
	return r;
}

/* Never pruned: made by hand or with an unreadable manifest (the operator's to judge). */
static int
backup_foreign(const struct backup_info *b)
{
	return !b->discarded && b->manifest != 1;
}

/*
 * Removes backup id (a name from the directory) if it holds regular files
 * only: a half-removed backup is worse than one kept.
 */
static int
backup_remove(const struct config *conf, int dfd, const char *id, char *err, size_t errlen)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int bfd, r = 0;

	if ((bfd = fsx_open_dir(dfd, id)) == -1 || (dir = fdopendir(bfd)) == NULL) {
		if (bfd != -1)
			close(bfd);
		return errbuf_fail(
		    err, errlen, "cannot open %s/%s: %s", conf->ssl_dir, id, strerror(errno));
	}
	while (r == 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(bfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			r = errbuf_fail(err, errlen, "%s/%s/%s is not a regular file: backup kept",
			    conf->ssl_dir, id, de->d_name);
	}
	closedir(dir);
	if (r == 0 && fsx_remove_dir(dfd, id) == -1)
		r = errbuf_fail(
		    err, errlen, "cannot remove %s/%s: %s", conf->ssl_dir, id, strerror(errno));
	return r;
}

int
backup_prune(const struct config *conf, char ***pruned, size_t *npruned, char *err, size_t errlen)
{
	struct backup_info *list;
	size_t i, n, newest_certs;
	unsigned kept = 0;
	char why[512];
	int dfd, r = 0;

	*pruned = NULL;
	*npruned = 0;
	if (backup_idle(conf, err, errlen) == -1 || backup_scan(conf, &list, &n, err, errlen) == -1)
		return -1;
	for (newest_certs = 0; newest_certs < n && (list[newest_certs].discarded ||
	                                               backup_rolled_back(&list[newest_certs]));
	     newest_certs++)
		;
	if ((dfd = ssldir_open(conf, 0)) == -1) {
		free(list);
		return errbuf_fail(
		    err, errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
	}
	for (i = 0; i < n; i++) {
		if (backup_foreign(&list[i]))
			continue;
		if (kept < conf->backups_keep || i == 0 || i == newest_certs) {
			kept++;
			continue;
		}
		if (backup_remove(conf, dfd, list[i].id, why, sizeof(why)) == -1) {
			log_warnx("retention: %s", why);
			if (r == 0)
				snprintf(err, errlen, "%s", why);
			r = -1;
			continue;
		}
		log_info("retention: removed %s/%s (%s; keeping %u)", conf->ssl_dir, list[i].id,
		    list[i].reason, conf->backups_keep);
		*pruned = xreallocarray(*pruned, *npruned + 2, sizeof(char *));
		(*pruned)[(*npruned)++] = xstrdup(list[i].id);
		(*pruned)[*npruned] = NULL;
	}
	if (*npruned > 0 && fsx_fsync_dir(dfd) == -1) {
		log_warn("retention: fsync %s", conf->ssl_dir);
		if (r == 0)
			errbuf_fail(
			    err, errlen, "cannot fsync %s: %s", conf->ssl_dir, strerror(errno));
		r = -1;
	}
	close(dfd);
	free(list);
	return r;
}

void
backup_pruned_free(char **ids, size_t n)
{
	size_t i;

	for (i = 0; ids != NULL && i < n; i++)
		free(ids[i]);
	free(ids);
}
