/* The names of backups in the SSL directory, checked the same way by the daemon and the CLI. */
#ifndef CAROTATE_BACKUPID_H
#define CAROTATE_BACKUPID_H

#define BACKUP_ID_MAX 32 /* certs-YYYYMMDD-HHMMSS-NNN and its NUL */

/* 1 when id has the exact shape certs-YYYYMMDD-HHMMSS[-N] (N 1-999, no leading zero). */
int backupid_valid(const char *id);

#endif
