/* Swaps of the certificate set in the SSL directory (rotate, restore, renew, a pool's set), through
 * the journal. */
#ifndef CAROTATE_SWAP_H
#define CAROTATE_SWAP_H

#include <stddef.h>
#include <time.h>

#include "backupid.h"

struct config;
struct journal_note;
struct ssldir_files;

#define SWAP_ID_MAX BACKUP_ID_MAX /* certs-YYYYMMDD-HHMMSS-NNN and its NUL */

/*
 * Moves the active set (if any) to a new backup certs-YYYYMMDD-HHMMSS[-N]
 * (UTC of now) with a manifest, then the staged set from new/ into place and
 * removes new/. backup_id (at least SWAP_ID_MAX bytes) names the backup, ""
 * when there was no active set. 0, or -1 with err filled in.
 */
int swap_rotate(const struct config *, time_t now, const char *reason, char *backup_id,
    size_t idlen, char *err, size_t errlen);
#define SWAP_STALE (-2) /* swap_rotate_ca: new/ holds another CA than expected */
/*
 * swap_rotate, once the staged CA (SHA-256 of its DER, lower-case hex) is
 * checked to be expect_ca (NULL: not checked) right before the journal is
 * written; SWAP_STALE (err filled, nothing changed) when it is another.
 * Files moved into the live set are clamped: the key to at most 0600, the
 * others without group or other write. note (NULL: none) is the caller's
 * pending note, written before the swap commits and removed if it is undone
 * (journal_run).
 */
int swap_rotate_ca(const struct config *, time_t now, const char *reason, const char *expect_ca,
    const struct journal_note *note, char *backup_id, size_t idlen, char *err, size_t errlen);
/*
 * renew: the set in SSLDIR_RENEWING (ssldir_renewal's) goes live as a staged
 * set does in swap_rotate_ca: the active set to a new backup (op=renew), then
 * renew/'s files into place, through one journal. expect_ca: the active CA,
 * which renew/ must hold (SWAP_STALE otherwise); note as in swap_rotate_ca.
 * 0, -1 or SWAP_STALE with err.
 */
int swap_renew(const struct config *, time_t now, const char *expect_ca,
    const struct journal_note *note, char *backup_id, size_t idlen, char *err, size_t errlen);
/*
 * A pool's set (f: CA, leaf, key PEM, origin, created) goes live on this member:
 * written whole as SSLDIR_RENEWING (ssldir_renewal), then moved in through the
 * journal exactly as swap_renew does, with the active set to a new backup whose
 * manifest says op=pool and reason `reason`. A cut adopt is undone or finished
 * by journal_recover as renew's is; a pool backup is an ordinary previous set,
 * so restore --latest may take it. expect_ca: the SHA-256 of f's CA, checked in
 * renew/ right before the journal (NULL: not checked); SWAP_STALE when it is
 * another. Refused (-1) while a journal awaits recovery. Refused before its
 * journal, it leaves no renew/ behind. note as in swap_rotate_ca. 0 / -1 /
 * SWAP_STALE with err.
 */
int swap_adopt(const struct config *, const struct ssldir_files *f, time_t now, const char *reason,
    const char *expect_ca, const struct journal_note *note, char *backup_id, size_t idlen,
    char *err, size_t errlen);
/*
 * Checks backup backup_id (an exact backup name, manifest sums and modes; see
 * backup_verify), moves the active set to a new backup (named in
 * new_backup_id, "" when there was none), then copies the backup's files into
 * place. 0, or -1 with err. No pending note: swap_restore_as has one.
 */
int swap_restore(const struct config *, const char *backup_id, time_t now, char *new_backup_id,
    size_t idlen, char *err, size_t errlen);
/*
 * swap_restore; with rollback set, the backup made of the active set (the set
 * that just failed its TLS check) is labelled op=rollback in its manifest, so
 * that restore --latest never puts it back by mistake. note as in
 * swap_rotate_ca; a roll back passes NULL: the call's note stays valid.
 */
int swap_restore_as(const struct config *, const char *backup_id, time_t now, int rollback,
    const struct journal_note *note, char *new_backup_id, size_t idlen, char *err, size_t errlen);

#endif
