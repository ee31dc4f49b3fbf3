/*
 * The swap journal (state_dir/swap.journal): a swap of the certificate set
 * (swap.c plans one) written down as idempotent steps before any of them
 * runs, so that a crash at any point is undone or finished at the next start
 * (journal_recover). What happens after a crash is decided here.
 */
#ifndef CAROTATE_JOURNAL_H
#define CAROTATE_JOURNAL_H

#include <stddef.h>

#include "backup.h"
#include "backupid.h"
#include "ssldir.h"

struct config;

#define JOURNAL_FILE      "swap.journal" /* in the state directory */
#define JOURNAL_MAX_STEPS 16
#define JOURNAL_NAME_MAX  256

enum journal_kind {
	JOURNAL_MKDIR, /* a new backup directory, with the context's manifest in it */
	JOURNAL_MOVE,  /* from/name to to/name */
	JOURNAL_COPY,  /* from/name over the active name */
	JOURNAL_RMDIR, /* from/, emptied */
};

struct journal_step {
	enum journal_kind kind;
	char from[BACKUP_ID_MAX]; /* ".", "new", a backup id or "-" */
	char to[BACKUP_ID_MAX];
	char name[JOURNAL_NAME_MAX]; /* a set file name or "-" */
};

/*
 * The pending note (JOURNAL_PENDING, below) a swap writes at its commit
 * point, so that the call is finished as itself whatever stops the daemon once
 * the swap can no longer be undone. text fills buf (len bytes, NUL-terminated)
 * for the backup the swap makes ("" when none): 0, or -1 when it does not fit.
 * The text is the caller's; the store only writes it durably, and removes it
 * when the swap is undone.
 */
struct journal_note {
	int (*text)(void *arg, const char *backup_id, char *buf, size_t len);
	void *arg;
};

/* One swap's steps: [0, ncommit) are undone by recovery, the rest finished. */
struct journal {
	char op[16];
	char backup[BACKUP_ID_MAX]; /* the backup this swap creates; "-" when none */
	int committed;
	int noted; /* the swap writes a pending note at its commit ("note yes") */
	size_t ncommit;
	size_t nsteps;
	struct journal_step steps[JOURNAL_MAX_STEPS];
};

/* The directories, names and error buffer one swap (or one recovery) works with. */
struct journal_ctx {
	const struct config *conf;
	const char *names[SSLDIR_SET_FILES];
	int dfd;        /* the SSL directory */
	int stfd;       /* the state directory */
	const char *op; /* names the fault points swap-<op>-N */
	int fault_n;
	char manifest[BACKUP_MANIFEST_MAX]; /* backup_manifest's, written by the mkdir step */
	size_t manifest_len;
	char *err;
	size_t errlen;
};

/*
 * Opens the SSL and state directories for operation op ("rotate", "restore",
 * "recover"); the set's file names must be plain names (they are journal
 * tokens). 0, or -1 with err; journal_close in every case after 0.
 */
int journal_open(
    struct journal_ctx *, const struct config *, const char *op, char *err, size_t errlen);
void journal_close(struct journal_ctx *);
void journal_init(struct journal *, const char *op);
/* Appends a step; callers add at most 2 * SSLDIR_SET_FILES + 2, within JOURNAL_MAX_STEPS. */
void journal_add(
    struct journal *, enum journal_kind, const char *from, const char *to, const char *name);
/* -1 with err when a journal awaits recovery: nothing may touch the set until the next start. */
int journal_idle(struct journal_ctx *);
/*
 * Writes the journal, runs the steps before the commit, writes note (NULL:
 * none), commits, runs the rest, removes the journal; a crash point follows
 * each step. A failure undoes every step done and removes the note (the
 * previous set is live, whole) unless undoing fails too: then the journal
 * stays for the next start. 0, or -1 with err.
 */
int journal_run(struct journal_ctx *, struct journal *, const struct journal_note *note);
/*
 * At start-up, before anything reads the SSL directory: undoes or finishes a
 * swap interrupted by a crash. A swap undone takes its pending note with it;
 * one finished leaves it for the engine to finish the call. 1 when a journal
 * was handled, 0 when there was none, -1 (journal kept, err filled in) when
 * it could not be.
 */
int journal_recover(const struct config *, char *err, size_t errlen);
/* 1 when a journal awaits recovery, 0 when not, -1 with err when that cannot be told. */
int journal_exists(const struct config *, char *err, size_t errlen);

/*
 * The rest of a swap that went through (reload, TLS check, roll back, audit)
 * is written down in state_dir/swap.pending (JOURNAL_PENDING, a note of
 * statenote.h) until the call answers, so that a daemon stopped before that (a
 * shutdown that outlasted its bound, a crash) finishes it at the next start.
 * journal_run writes it before its commit (struct journal_note); a roll back
 * keeps the call's note and rewrites it. The text is the caller's (one
 * "key value" per line).
 */
#define JOURNAL_PENDING "swap.pending"

#endif
