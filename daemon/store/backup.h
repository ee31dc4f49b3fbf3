/* The backups in the SSL directory: what they are, whether they can be restored, retention. */
#ifndef CAROTATE_BACKUP_H
#define CAROTATE_BACKUP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carotate.pb-c.h"
#include "proto_limits.h"
#include "backupid.h"

struct config;

#define BACKUP_MANIFEST     ".manifest" /* hidden: a glob copy of a backup takes only the set */
#define BACKUP_MANIFEST_MAX 4096        /* bytes of a manifest written or read */
#define BACKUP_DETAIL_MAX   (LIMITS_MAX_REASON + 1) /* a manifest's reason and its NUL */
#define BACKUP_PROBLEM_MAX  512

/* One backup directory: certs-YYYYMMDD-HHMMSS[-N] or discarded-YYYYMMDD-HHMMSS[-N]. */
struct backup_info {
	char id[BACKUP_ID_MAX]; /* the directory name, as read from the directory */
	int64_t created;        /* the manifest's time, else the name's (UTC); 0 when neither */
	unsigned suffix;        /* the -N of the name, 0 without */
	const char *reason;     /* "rotate", "restore", "rollback", "renew", "pool", "discard" or
	                           "manual";     static */
	char detail[BACKUP_DETAIL_MAX]; /* the manifest's reason text; "" when none */
	int discarded;                  /* a discarded staged set, not a certs-* backup */
	int manifest; /* 1 read, 0 none (made by hand), -1 present but unreadable */
	Carotate__V1__CertInfo *ca, *server; /* NULL when unreadable (backup_list only) */
	int restorable;                      /* backup_check accepts it (backup_list only) */
	char problem[BACKUP_PROBLEM_MAX];    /* why not, when not restorable */
};

/*
 * Every backup in the SSL directory, newest first (by created, then name),
 * described: certificates, restorable or why not. Symlinks and anything but
 * directories are skipped. *out (n entries) is freed with backup_free.
 * 0, or -1 with err.
 */
int backup_list(
    const struct config *, struct backup_info **out, size_t *n, char *err, size_t errlen);
/* backup_list, but only entries [offset, offset + limit) are described and returned. */
int backup_list_page(const struct config *, size_t offset, size_t limit, struct backup_info **out,
    size_t *n, size_t *total, char *err, size_t errlen);
void backup_free(struct backup_info *, size_t n);
/*
 * Whether backup id can be restored: id must be the exact name of an existing
 * certs-* directory (no path is ever built from anything else), its files must
 * match its manifest (or, made by hand, be regular files), and key,
 * certificate and CA must belong together (pki_check_set). 0, or -1 with err.
 */
int backup_check(const struct config *, const char *id, char *err, size_t errlen);
/*
 * The newest certs-* backup that is not a rollback one (the set a failed
 * rotate or restore had put live), restorable or not; -1 ("no backup") when
 * there is none.
 */
int backup_latest(const struct config *, char id[BACKUP_ID_MAX], char *err, size_t errlen);
/*
 * Retention: of the backups the daemon made (certs-* with a manifest, and
 * discarded-*), keeps the newest [backups] keep and removes the older ones.
 * Never removes the newest backup, the newest certs-* backup that is not a
 * rollback one (what restore --latest takes), a backup made by hand, one whose manifest cannot be
 * read, or anything holding more than regular files. *pruned (*npruned ids, heap, NULL-terminated;
 * NULL when none) lists what was removed even when -1 is returned; free it with backup_pruned_free
 * in every case. 0, or -1 with err naming the first failure.
 */
int backup_prune(const struct config *, char ***pruned, size_t *npruned, char *err, size_t errlen);
void backup_pruned_free(char **, size_t);

/*
 * A free name for a new certs-* backup made at now in the SSL directory dfd:
 * certs-YYYYMMDD-HHMMSS (UTC), with -N when taken. 0, or -1 with err.
 */
int backup_pick_id(
    const struct config *, int dfd, time_t now, char id[BACKUP_ID_MAX], char *err, size_t errlen);
/*
 * Keeps the staged set as a backup: renames new/ to discarded-YYYYMMDD-HHMMSS[-N]
 * (UTC of now, never over an existing name) and names it in kept_as. 0, or -1 with err.
 */
int backup_discard(
    const struct config *, time_t now, char *kept_as, size_t kept_len, char *err, size_t errlen);

/*
 * The manifest of a backup of the set in dfd (the SSL directory), files
 * mask (bit i: SSLDIR_SET_FILES order): reason=, op= (rotate, restore, renew,
 * pool: the set a pool's set replaced, or rollback: the set a failed rotate or
 * restore put live, kept aside),
 * created=, then `sha256  mode  name` per file. Into buf (size bytes; *len
 * filled). 0, or -1 with err.
 */
int backup_manifest(const struct config *, int dfd, int mask, const char *op, const char *reason,
    time_t now, char *buf, size_t size, size_t *len, char *err, size_t errlen);
/*
 * Backup id (checked against the grammar first) exists in the SSL directory
 * dfd as a directory, not a symlink, and every file matches its manifest;
 * *mask gets the set files it holds. A backup without a manifest was made by
 * hand (PROCEDURE.txt): it passes when the three set files are regular files,
 * and the caller must check that they belong together (pki_check_set). A
 * manifest that exists but cannot be read, or does not match, refuses. 0, or
 * -1 with err.
 */
int backup_verify(
    const struct config *, int dfd, const char *id, int *mask, char *err, size_t errlen);
/* backup_verify in the configured SSL directory, changing nothing. 0, or -1 with err. */
int backup_check_files(const struct config *, const char *id, char *err, size_t errlen);

#endif
