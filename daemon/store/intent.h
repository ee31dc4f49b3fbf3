/*
 * The intent note (state_dir/call.pending): a call that changes the sets
 * without a swap (generate, install, discard) writes down who asked and what
 * the sets should look like after it, before it changes them, and removes the
 * note once its audit record is committed. A start that finds one credits the
 * change to that caller (rpc_stage_resume) instead of auditing it as made
 * outside carotated. The text is the caller's; these only store it durably.
 */
#ifndef CAROTATE_INTENT_H
#define CAROTATE_INTENT_H

#include <stddef.h>

struct config;

#define INTENT_FILE "call.pending" /* in the state directory */
#define INTENT_MAX  8192

/* Replaces the note atomically and durably (file and directory fsynced). 0, or -1 with err. */
int intent_write(const struct config *, const char *text, char *err, size_t errlen);
/* 1 with *text (heap, NUL-terminated), 0 when there is none, -1 with err. */
int intent_read(const struct config *, char **text, char *err, size_t errlen);
/*
 * Removes the note and the temporary file of an interrupted write (none is no
 * error), and fsyncs the directory. 0, or -1 with err.
 */
int intent_remove(const struct config *, char *err, size_t errlen);

#endif
