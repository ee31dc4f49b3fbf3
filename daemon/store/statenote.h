/*
 * Notes in the state directory: small texts that must be on disk before the
 * change they announce, so that the next start knows who asked for it.
 *  - swap.pending (JOURNAL_PENDING, journal.h): what is left of a rotate,
 *    restore or renew; the swap's journal writes it before its commit.
 *  - call.pending (STATENOTE_CALL): a set change that is not a swap (generate,
 *    install, discard) writes down who asked and what the sets should look
 *    like after it, before it changes them, and removes it once its audit
 *    record is committed. A start that finds one credits the change to that
 *    caller (rpc_stage_resume) instead of auditing it as made outside carotated.
 * The text is the caller's; these only store it durably.
 */
#ifndef CAROTATE_STATENOTE_H
#define CAROTATE_STATENOTE_H

#include <stddef.h>

struct config;

#define STATENOTE_CALL "call.pending" /* in the state directory */
#define STATENOTE_MAX  8192           /* bytes of a note, its NUL not counted */

/* Replaces note NAME atomically and durably (file and directory fsynced). 0, or -1 with err. */
int statenote_write(
    const struct config *, const char *name, const char *text, char *err, size_t errlen);
/* 1 with *text (heap, NUL-terminated), 0 when there is none, -1 with err. */
int statenote_read(const struct config *, const char *name, char **text, char *err, size_t errlen);
/*
 * Removes note NAME and the temporary file of an interrupted write (none is no
 * error), and fsyncs the directory. 0, or -1 with err.
 */
int statenote_remove(const struct config *, const char *name, char *err, size_t errlen);

#endif
