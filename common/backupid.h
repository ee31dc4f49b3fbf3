/*
 * The names of backups in the SSL directory, one grammar checked the same way by the
 * daemon and the CLI: certs-YYYYMMDD-HHMMSS[-N] (a set kept by rotate, restore or by hand)
 * and discarded-YYYYMMDD-HHMMSS[-N] (a discarded staged set).
 */
#ifndef CAROTATE_BACKUPID_H
#define CAROTATE_BACKUPID_H

#define BACKUP_ID_MAX      32 /* certs-YYYYMMDD-HHMMSS-NNN and its NUL */
#define BACKUPID_CERTS     "certs-"
#define BACKUPID_DISCARDED "discarded-"

/*
 * 1 when id is prefix, YYYYMMDD-HHMMSS, then nothing or -N (N 1-999, no leading zero),
 * shorter than BACKUP_ID_MAX; *suffix (when not NULL) gets N, 0 without.
 */
int backupid_match(const char *id, const char *prefix, unsigned *suffix);
/* 1 when id has the exact shape certs-YYYYMMDD-HHMMSS[-N]. */
int backupid_valid(const char *id);

#endif
