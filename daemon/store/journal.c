/*
 * The swap journal and what happens after a crash. A swap of the
 * certificate set (swap.c: rotate, restore) moves three files (CA, server
 * certificate, key) plus the optional hidden .carotate-set; no single rename
 * replaces them together, so
 * every swap is first written down in the state directory as a journal of
 * idempotent steps, and journal_recover undoes or finishes it after a crash.
 *
 * The point of no return is the journal's "commit" line. The steps before it
 * only move the active set into a new backup directory (and write its
 * manifest); recovery undoes them: the old set goes back, the backup
 * directory goes away. Once the backup is complete and durable the journal is
 * rewritten as committed, and from then on recovery rolls forward (moves or
 * copies the new set into place). Rolling forward there loses nothing, since
 * the old set is safe in a complete backup that a restore brings back, while
 * undoing would have to put a half-installed set back into new/. A swap with
 * no active set has no backup steps and is committed from the start (unless
 * it carries a note, below).
 *
 * The call that asked for the swap (its caller, reason, backup, what is left
 * to do: reload, TLS check, roll back, audit) must survive a crash once the
 * swap can no longer be undone, or the next start would find a new set that
 * nobody asked for. So the journal carries the caller's pending note
 * (JOURNAL_PENDING, struct journal_note): it is written, durably, right
 * before the journal is rewritten as committed ("note yes" says so), a swap
 * with nothing to back up starting as prepared for that one line. Recovery
 * that undoes such a swap removes the note (nothing changed, nothing to
 * finish), before the journal goes; one that finishes it leaves the note for
 * the engine to finish the call. A roll back's swap carries no note: the
 * call's own note stays valid across it.
 *
 * That is for crashes. A swap that meets an error while running (an I/O error,
 * a full disk) knows exactly which steps it did, and undoes all of them, those
 * after the commit too, once the journal says so (journal_unfinish): the caller
 * gets the error and the previous set is live, whole. Only when undoing fails
 * too does the journal stay for the next start.
 *
 * Journal (state_dir/swap.journal, written with fsx_replace):
 *	carotate-swap 1
 *	op rotate|restore|renew|pool	(pool: a pool's set moved in from renew/, as renew's)
 *	backup certs-YYYYMMDD-HHMMSS[-N] | -
 *	state prepared|committed
 *	note yes			(when the swap writes a pending note)
 *	step mkdir - <backup> -
 *	step move . <backup> <name>	(one per file of the active set)
 *	commit
 *	step move new . <name>		(rotate)  |  step copy <source> . <name>  (restore)
 *	step rmdir new - -		(rotate)
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "backupid.h"
#include "config.h"
#include "errbuf.h"
#include "fault.h"
#include "fsx.h"
#include "log.h"
#include "journal.h"
#include "ssldir.h"
#include "statenote.h"
#include "strbuf.h"

#define JOURNAL_MAGIC    "carotate-swap 1"
#define JOURNAL_MAX_TEXT 4096 /* bytes of a journal we read or write */

static const char *const journal_kinds[] = { "mkdir", "move", "copy", "rmdir" };

static void journal_fault(struct journal_ctx *);
static int journal_valid_dir(const char *);
static int journal_dir(struct journal_ctx *, const char *);
static int journal_mkdir(struct journal_ctx *, const char *);
static int journal_move(struct journal_ctx *, const char *, const char *, const char *);
static mode_t journal_live_mode(const struct journal_ctx *, const char *, mode_t);
static int journal_copy(struct journal_ctx *, const char *, const char *);
static int journal_rmdir(struct journal_ctx *, const char *);
static int journal_unmkdir(struct journal_ctx *, const char *);
static int journal_do(struct journal_ctx *, const struct journal_step *);
static int journal_undo(struct journal_ctx *, const struct journal_step *);
static int journal_undo_all(struct journal_ctx *, const struct journal *, size_t);
static int journal_finish_steps(struct journal_ctx *, const struct journal *, size_t *);
static int journal_finish(struct journal_ctx *, const struct journal *);
static void journal_abort(struct journal_ctx *, const struct journal *, size_t);
static int journal_unfinish(struct journal_ctx *, struct journal *, size_t);
static int journal_write(struct journal_ctx *, const struct journal *);
static int journal_parse_step(struct journal_ctx *, struct journal *, const char *);
static int journal_parse_line(struct journal_ctx *, struct journal *, const char *);
static int journal_read(struct journal_ctx *, struct journal *);
static int journal_remove(struct journal_ctx *);
static int journal_note_write(
    struct journal_ctx *, const struct journal *, const struct journal_note *);
static int journal_note_remove(struct journal_ctx *, const struct journal *);

/* Crash points swap-<op>-1, -2, ... between steps; the tests walk them all. */
static void
journal_fault(struct journal_ctx *c)
{
#ifdef CAROTATE_FAULTS
	char name[48];

	snprintf(name, sizeof(name), "swap-%s-%d", c->op, ++c->fault_n);
	fault_point(name);
#endif
}

/* File names go into the journal as single tokens: no white space, no slash, no dot names. */
int
journal_open(
    struct journal_ctx *c, const struct config *conf, const char *op, char *err, size_t errlen)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->conf = conf;
	c->op = op;
	c->err = err;
	c->errlen = errlen;
	c->dfd = c->stfd = -1;
	ssldir_set_names(conf, c->names);
	for (i = 0; i < SSLDIR_SET_FILES; i++) {
		if (strcspn(c->names[i], " \t\r\n/") != strlen(c->names[i]) ||
		    strlen(c->names[i]) >= JOURNAL_NAME_MAX || strcmp(c->names[i], ".") == 0 ||
		    strcmp(c->names[i], "..") == 0 || strcmp(c->names[i], "-") == 0)
			return errbuf_fail(
			    c->err, c->errlen, "%s: not a plain file name", c->names[i]);
	}
	if ((c->dfd = ssldir_open(conf, 0)) == -1)
		return errbuf_fail(
		    c->err, c->errlen, "cannot open %s: %s", conf->ssl_dir, strerror(errno));
	c->stfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->stfd == -1) {
		errbuf_fail(
		    c->err, c->errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
		journal_close(c);
		return -1;
	}
	return 0;
}

void
journal_close(struct journal_ctx *c)
{
	if (c->dfd != -1)
		close(c->dfd);
	if (c->stfd != -1)
		close(c->stfd);
	c->dfd = c->stfd = -1;
}

/* The only directory tokens a journal may hold: nothing there can name a path outside. */
static int
journal_valid_dir(const char *s)
{
	return strcmp(s, ".") == 0 || strcmp(s, SSLDIR_STAGING) == 0 ||
	       strcmp(s, SSLDIR_RENEWING) == 0 || backupid_valid(s);
}

/* A directory of the swap, opened relative to the SSL directory and never through a symlink. */
static int
journal_dir(struct journal_ctx *c, const char *token)
{
	if (strcmp(token, ".") == 0)
		return fcntl(c->dfd, F_DUPFD_CLOEXEC, 0);
	if (!journal_valid_dir(token)) {
		errno = EINVAL;
		return -1;
	}
	return fsx_open_dir(c->dfd, token);
}

void
journal_init(struct journal *j, const char *op)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->op, sizeof(j->op), "%s", op);
	snprintf(j->backup, sizeof(j->backup), "-");
}

/* Callers add at most 2 * SSLDIR_SET_FILES + 2 steps, well within JOURNAL_MAX_STEPS. */
void
journal_add(
    struct journal *j, enum journal_kind kind, const char *from, const char *to, const char *name)
{
	struct journal_step *s = &j->steps[j->nsteps++];

	s->kind = kind;
	snprintf(s->from, sizeof(s->from), "%s", from);
	snprintf(s->to, sizeof(s->to), "%s", to);
	snprintf(s->name, sizeof(s->name), "%s", name);
}

/* A pending journal means an unfinished swap: nothing else may touch the set before recovery. */
int
journal_idle(struct journal_ctx *c)
{
	struct stat st;

	if (fstatat(c->stfd, JOURNAL_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return errbuf_fail(c->err, c->errlen,
		    "%s/%s: an interrupted swap awaits recovery at the next start",
		    c->conf->state_dir, JOURNAL_FILE);
	return 0;
}

/* Creates the backup directory (0700) and its manifest; only ever run before the commit. */
static int
journal_mkdir(struct journal_ctx *c, const char *id)
{
	int bfd, r;

	if (mkdirat(c->dfd, id, 0700) == -1 || fsx_fsync_dir(c->dfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot create %s/%s: %s", c->conf->ssl_dir,
		    id, strerror(errno));
	journal_fault(c);
	if ((bfd = fsx_open_dir(c->dfd, id)) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s", c->conf->ssl_dir, id,
		    strerror(errno));
	r = 0;
	if (fsx_create(bfd, BACKUP_MANIFEST, c->manifest, c->manifest_len, 0600) == -1 ||
	    fsx_fsync_dir(bfd) == -1)
		r = errbuf_fail(c->err, c->errlen, "cannot write %s/%s/%s: %s", c->conf->ssl_dir,
		    id, BACKUP_MANIFEST, strerror(errno));
	close(bfd);
	return r;
}

/* Renames from/name to to/name; a source already gone with the target in place counts as done. */
static int
journal_move(struct journal_ctx *c, const char *from, const char *to, const char *name)
{
	struct stat st;
	int ffd, tfd, r;

	if ((tfd = journal_dir(c, to)) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s", c->conf->ssl_dir, to,
		    strerror(errno));
	if ((ffd = journal_dir(c, from)) == -1 && errno != ENOENT) {
		close(tfd);
		return errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s", c->conf->ssl_dir,
		    from, strerror(errno));
	}
	if (ffd != -1 && renameat(ffd, name, tfd, name) == 0)
		r = fsx_fsync_dir(tfd) == -1 || fsx_fsync_dir(ffd) == -1 ? -1 : 0;
	else if ((ffd == -1 || errno == ENOENT) &&
	         fstatat(tfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		r = 0;
	else
		r = -1;
	/* Into the live set (rotate, recovery): the same clamp as a restore's copy. Redoable. */
	if (r == 0 && strcmp(to, ".") == 0 && fstatat(tfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && journal_live_mode(c, name, st.st_mode) != (st.st_mode & 07777) &&
	    fchmodat(tfd, name, journal_live_mode(c, name, st.st_mode), 0) == -1)
		r = -1;
	if (r == -1)
		errbuf_fail(c->err, c->errlen, "cannot move %s/%s/%s to %s/: %s", c->conf->ssl_dir,
		    from, name, to, strerror(errno));
	if (ffd != -1)
		close(ffd);
	close(tfd);
	return r;
}

/*
 * The mode a file of the live set may have, whatever the set it came from
 * (new/ filled by hand, a backup made by hand): the key at most 0600, the
 * others without group or other write and without set-id bits.
 */
static mode_t
journal_live_mode(const struct journal_ctx *c, const char *name, mode_t mode)
{
	return ssldir_set_index(c->names, name) == 2 ? mode & 0600 : mode & 0755;
}

/* Copies backup from/name over the active name (temporary file, fsync, rename): redoable. */
static int
journal_copy(struct journal_ctx *c, const char *from, const char *name)
{
	struct stat st;
	uint8_t *data;
	size_t len;
	int ffd, r;

	if ((ffd = journal_dir(c, from)) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s", c->conf->ssl_dir,
		    from, strerror(errno));
	if (fstatat(ffd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    fsx_read(ffd, name, SSLDIR_MAX_CERT_FILE, &data, &len) == -1) {
		close(ffd);
		return errbuf_fail(c->err, c->errlen, "cannot read %s/%s/%s: %s", c->conf->ssl_dir,
		    from, name, strerror(errno));
	}
	close(ffd);
	/* XXX the backup was verified before the journal; a change to it since is not seen. */
	/* A backup made by hand may hold a readable key or writable files: clamped. */
	r = fsx_replace(c->dfd, name, data, len, journal_live_mode(c, name, st.st_mode));
	if (r == -1)
		errbuf_fail(c->err, c->errlen, "cannot write %s/%s: %s", c->conf->ssl_dir, name,
		    strerror(errno));
	explicit_bzero(data, len);
	free(data);
	return r;
}

/* Removes new/ once emptied (stray regular files in it go too). */
static int
journal_rmdir(struct journal_ctx *c, const char *dir)
{
	if ((fsx_remove_dir(c->dfd, dir) == -1 && errno != ENOENT) || fsx_fsync_dir(c->dfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->ssl_dir,
		    dir, strerror(errno));
	return 0;
}

/* Undoes journal_mkdir: the manifest, then the directory only if nothing else is left in it. */
static int
journal_unmkdir(struct journal_ctx *c, const char *id)
{
	int bfd;

	if ((bfd = fsx_open_dir(c->dfd, id)) == -1)
		return errno == ENOENT ? 0
		                       : errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s",
		                             c->conf->ssl_dir, id, strerror(errno));
	if (unlinkat(bfd, BACKUP_MANIFEST, 0) == -1 && errno != ENOENT) {
		close(bfd);
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s/%s: %s",
		    c->conf->ssl_dir, id, BACKUP_MANIFEST, strerror(errno));
	}
	close(bfd);
	if (unlinkat(c->dfd, id, AT_REMOVEDIR) == -1 || fsx_fsync_dir(c->dfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->ssl_dir,
		    id, strerror(errno));
	return 0;
}

static int
journal_do(struct journal_ctx *c, const struct journal_step *s)
{
	switch (s->kind) {
	case JOURNAL_MKDIR:
		return journal_mkdir(c, s->to);
	case JOURNAL_MOVE:
		return journal_move(c, s->from, s->to, s->name);
	case JOURNAL_COPY:
		return journal_copy(c, s->from, s->name);
	case JOURNAL_RMDIR:
		return journal_rmdir(c, s->from);
	}
	return errbuf_fail(c->err, c->errlen, "unknown swap step");
}

/*
 * Recovery undoes the steps before the commit (mkdir, moves into the backup);
 * a swap that fails after it also undoes the steps it finished (journal_unfinish):
 * a copy from a backup is removed (the backup keeps it), new/ comes back.
 */
static int
journal_undo(struct journal_ctx *c, const struct journal_step *s)
{
	switch (s->kind) {
	case JOURNAL_MKDIR:
		return journal_unmkdir(c, s->to);
	case JOURNAL_MOVE:
		return journal_move(c, s->to, s->from, s->name);
	case JOURNAL_COPY:
		if (unlinkat(c->dfd, s->name, 0) == -1 && errno != ENOENT)
			return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s",
			    c->conf->ssl_dir, s->name, strerror(errno));
		return 0;
	case JOURNAL_RMDIR:
		/* Made durable here, not by the moves back into it that follow. */
		if ((mkdirat(c->dfd, s->from, 0700) == -1 && errno != EEXIST) ||
		    fsx_fsync_dir(c->dfd) == -1)
			return errbuf_fail(c->err, c->errlen, "cannot create %s/%s: %s",
			    c->conf->ssl_dir, s->from, strerror(errno));
		return 0;
	}
	return errbuf_fail(c->err, c->errlen, "unknown swap step");
}

/* Undoes steps [0, n) in reverse order; each undo is idempotent. */
static int
journal_undo_all(struct journal_ctx *c, const struct journal *j, size_t n)
{
	while (n-- > 0) {
		if (journal_undo(c, &j->steps[n]) == -1)
			return -1;
		journal_fault(c);
	}
	return 0;
}

/* Runs the steps after the commit; each is idempotent. *failed: the step that failed. */
static int
journal_finish_steps(struct journal_ctx *c, const struct journal *j, size_t *failed)
{
	size_t i;

	for (i = j->ncommit; i < j->nsteps; i++) {
		if (journal_do(c, &j->steps[i]) == -1) {
			*failed = i;
			return -1;
		}
		journal_fault(c);
	}
	return 0;
}

/* Recovery of a committed swap: the steps after the commit, then the journal goes. */
static int
journal_finish(struct journal_ctx *c, const struct journal *j)
{
	size_t failed;

	if (journal_finish_steps(c, j, &failed) == -1)
		return -1;
	return journal_remove(c);
}

/* A step before the commit failed: put the old set back (steps [0, n)) and drop the journal. */
static void
journal_abort(struct journal_ctx *c, const struct journal *j, size_t n)
{
	char why[256], how[256];

	snprintf(why, sizeof(why), "%s", c->err);
	/* The note goes before the journal: a crash between them undoes again, and removes it. */
	if (journal_undo_all(c, j, n) == 0 && journal_note_remove(c, j) == 0 &&
	    journal_remove(c) == 0) {
		snprintf(c->err, c->errlen, "%s (nothing changed)", why);
		return;
	}
	snprintf(how, sizeof(how), "%s", c->err);
	snprintf(
	    c->err, c->errlen, "%s; undoing it failed too (%s): the next start retries", why, how);
}

/*
 * A step after the commit failed (an I/O error, a full disk) while we are
 * still running: rather than leave a half-installed set until the next start,
 * the journal is rewritten as prepared with every step up to the failed one
 * before its commit line, and all of them are undone. When that rewrite fails
 * the journal stays committed and the next start finishes the swap.
 */
static int
journal_unfinish(struct journal_ctx *c, struct journal *j, size_t failed)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", c->err);
	j->committed = 0;
	j->ncommit = failed + 1;
	if (journal_write(c, j) == -1) {
		errbuf_fail(c->err, c->errlen, "%s: the swap is finished at the next start", why);
		return -1;
	}
	journal_fault(c);
	snprintf(c->err, c->errlen, "%s", why);
	journal_abort(c, j, j->ncommit);
	return -1;
}

/*
 * Journal first; then backup, commit, new set, each step followed by a crash
 * point. A failure leaves the previous set in place, except when even undoing
 * fails: then the journal stays and the next start undoes or finishes the swap.
 */
int
journal_run(struct journal_ctx *c, struct journal *j, const struct journal_note *note)
{
	size_t i, failed = 0;

	/* A note is written before the commit: a swap with one is prepared first, always. */
	j->noted = note != NULL;
	j->committed = j->ncommit == 0 && !j->noted;
	if (journal_write(c, j) == -1) {
		/* Nothing was done; a journal that reached the disk all the same goes. */
		journal_abort(c, j, 0);
		return -1;
	}
	journal_fault(c);
	for (i = 0; i < j->ncommit; i++) {
		if (journal_do(c, &j->steps[i]) == -1) {
			/* The failed step may be half done: undo it too. */
			journal_abort(c, j, i + 1);
			return -1;
		}
		journal_fault(c);
	}
	if (!j->committed) {
		/* The call is written down before the swap can only go forward. */
		if (j->noted && journal_note_write(c, j, note) == -1) {
			journal_abort(c, j, j->ncommit);
			return -1;
		}
		j->committed = 1;
		/*
		 * XXX the journal on disk may say either state; undoing fits both, and
		 * the journal goes. A crash before it is gone would finish the swap.
		 */
		if (journal_write(c, j) == -1) {
			journal_abort(c, j, j->ncommit);
			return -1;
		}
		journal_fault(c);
	}
	if (journal_finish_steps(c, j, &failed) == -1)
		return journal_unfinish(c, j, failed);
	/*
	 * The new set is complete: a journal left over only replays finished steps
	 * (but holds off other swaps until the next start). A removal that failed
	 * may have happened all the same: asked once more.
	 */
	if (journal_remove(c) == -1) {
		log_warnx("%s; the swap is complete, trying again", c->err);
		if (journal_remove(c) == -1)
			log_warnx("%s; the next start removes it", c->err);
	}
	return 0;
}

/* Written whole with fsx_replace: a crash leaves the previous journal or this one, durably. */
static int
journal_write(struct journal_ctx *c, const struct journal *j)
{
	char buf[JOURNAL_MAX_TEXT];
	size_t i, len = 0;
	int r;

	r = strbuf_appendf(buf, sizeof(buf), &len, "%s\nop %s\nbackup %s\nstate %s\n%s",
	    JOURNAL_MAGIC, j->op, j->backup, j->committed ? "committed" : "prepared",
	    j->noted ? "note yes\n" : "");
	for (i = 0; i <= j->nsteps && r == 0; i++) {
		if (i == j->ncommit)
			r = strbuf_appendf(buf, sizeof(buf), &len, "commit\n");
		if (i < j->nsteps && r == 0)
			r = strbuf_appendf(buf, sizeof(buf), &len, "step %s %s %s %s\n",
			    journal_kinds[j->steps[i].kind], j->steps[i].from, j->steps[i].to,
			    j->steps[i].name);
	}
	if (r == -1)
		return errbuf_fail(c->err, c->errlen, "swap journal too long");
	if (fsx_replace(c->stfd, JOURNAL_FILE, buf, len, 0600) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot write %s/%s: %s", c->conf->state_dir,
		    JOURNAL_FILE, strerror(errno));
	return 0;
}

/* `step KIND FROM TO NAME`, every token from an allow-list. */
static int
journal_parse_step(struct journal_ctx *c, struct journal *j, const char *line)
{
	char kind[8], from[BACKUP_ID_MAX], to[BACKUP_ID_MAX], name[JOURNAL_NAME_MAX];
	size_t k;
	int n = 0;

	if (sscanf(line, "step %7s %31s %31s %255s%n", kind, from, to, name, &n) != 4 ||
	    line[n] != '\0' || j->nsteps == JOURNAL_MAX_STEPS)
		return -1;
	for (k = 0; k < sizeof(journal_kinds) / sizeof(journal_kinds[0]); k++)
		if (strcmp(kind, journal_kinds[k]) == 0)
			break;
	if (k == sizeof(journal_kinds) / sizeof(journal_kinds[0]) ||
	    (strcmp(from, "-") != 0 && !journal_valid_dir(from)) ||
	    (strcmp(to, "-") != 0 && !journal_valid_dir(to)) ||
	    (strcmp(name, "-") != 0 && ssldir_set_index(c->names, name) == -1))
		return -1;
	journal_add(j, (enum journal_kind)k, from, to, name);
	return 0;
}

static int
journal_parse_line(struct journal_ctx *c, struct journal *j, const char *line)
{
	if (strcmp(line, "op rotate") == 0 || strcmp(line, "op restore") == 0 ||
	    strcmp(line, "op renew") == 0 || strcmp(line, "op pool") == 0)
		snprintf(j->op, sizeof(j->op), "%s", line + 3);
	else if (strncmp(line, "backup ", 7) == 0 &&
	         (strcmp(line + 7, "-") == 0 || backupid_valid(line + 7)))
		snprintf(j->backup, sizeof(j->backup), "%s", line + 7);
	else if (strcmp(line, "state prepared") == 0 || strcmp(line, "state committed") == 0)
		j->committed = line[6] == 'c';
	else if (strcmp(line, "note yes") == 0)
		j->noted = 1;
	else if (strcmp(line, "commit") == 0)
		j->ncommit = j->nsteps;
	else if (journal_parse_step(c, j, line) == -1)
		return errbuf_fail(c->err, c->errlen, "%s/%s: bad line \"%.80s\"",
		    c->conf->state_dir, JOURNAL_FILE, line);
	return 0;
}

/* 1 with *j filled in, 0 when there is no journal, -1 when it cannot be read or trusted. */
static int
journal_read(struct journal_ctx *c, struct journal *j)
{
	char *line, *save = NULL;
	uint8_t *buf;
	size_t len;
	int r = 0;

	if (fsx_read(c->stfd, JOURNAL_FILE, JOURNAL_MAX_TEXT, &buf, &len) == -1)
		return errno == ENOENT ? 0
		                       : errbuf_fail(c->err, c->errlen, "cannot read %s/%s: %s",
		                             c->conf->state_dir, JOURNAL_FILE, strerror(errno));
	memset(j, 0, sizeof(*j));
	j->ncommit = SIZE_MAX;
	line = strlen((char *)buf) == len ? strtok_r((char *)buf, "\n", &save) : NULL;
	if (line == NULL || strcmp(line, JOURNAL_MAGIC) != 0)
		r = errbuf_fail(c->err, c->errlen, "%s/%s: not a swap journal", c->conf->state_dir,
		    JOURNAL_FILE);
	while (r == 0 && (line = strtok_r(NULL, "\n", &save)) != NULL)
		r = journal_parse_line(c, j, line);
	free(buf);
	if (r == 0 && (j->op[0] == '\0' || j->ncommit == SIZE_MAX))
		r = errbuf_fail(c->err, c->errlen, "%s/%s: incomplete journal", c->conf->state_dir,
		    JOURNAL_FILE);
	return r == -1 ? -1 : 1;
}

/*
 * The caller's note, for the backup this swap makes, written (fsx_replace:
 * file and directory synced) before the commit. 0, or -1 with err.
 */
static int
journal_note_write(struct journal_ctx *c, const struct journal *j, const struct journal_note *note)
{
	char buf[STATENOTE_MAX];

	buf[0] = '\0';
	if (note->text(note->arg, strcmp(j->backup, "-") != 0 ? j->backup : "", buf, sizeof(buf)) ==
	        -1 ||
	    strlen(buf) == 0)
		return errbuf_fail(c->err, c->errlen, "%s/%s: the record of the %s does not fit",
		    c->conf->state_dir, JOURNAL_PENDING, j->op);
	if (fsx_replace(c->stfd, JOURNAL_PENDING, buf, strlen(buf), 0600) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot write %s/%s: %s", c->conf->state_dir,
		    JOURNAL_PENDING, strerror(errno));
	journal_fault(c);
	return 0;
}

/* An undone swap that carried a note leaves nothing to finish: the note goes, durably. */
static int
journal_note_remove(struct journal_ctx *c, const struct journal *j)
{
	if (!j->noted)
		return 0;
	if (fsx_remove(c->stfd, JOURNAL_PENDING) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->state_dir,
		    JOURNAL_PENDING, strerror(errno));
	return 0;
}

static int
journal_remove(struct journal_ctx *c)
{
	if (fsx_remove(c->stfd, JOURNAL_FILE) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->state_dir,
		    JOURNAL_FILE, strerror(errno));
	return 0;
}

int
journal_recover(const struct config *conf, char *err, size_t errlen)
{
	struct journal_ctx c;
	struct journal j;
	int r;

	if (journal_open(&c, conf, "recover", err, errlen) == -1)
		return -1;
	/* A crash while the journal was first written: nothing was done yet. */
	if (unlinkat(c.stfd, "." JOURNAL_FILE ".tmp", 0) == -1 && errno != ENOENT)
		log_warn("%s: %s/." JOURNAL_FILE ".tmp", __func__, conf->state_dir);
	if ((r = journal_read(&c, &j)) == 1) {
		log_info("%s an interrupted %s (backup %s)", j.committed ? "finishing" : "undoing",
		    j.op, j.backup);
		/* Undone: the note of the call goes too (nothing changed, nothing to finish). */
		if (j.committed ? journal_finish(&c, &j) == -1
		                : journal_undo_all(&c, &j, j.ncommit) == -1 ||
		                      journal_note_remove(&c, &j) == -1 || journal_remove(&c) == -1)
			r = -1;
	}
	journal_close(&c);
	return r;
}

int
journal_exists(const struct config *conf, char *err, size_t errlen)
{
	struct stat st;
	int sfd, r;

	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return errbuf_fail(
		    err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
	r = fstatat(sfd, JOURNAL_FILE, &st, AT_SYMLINK_NOFOLLOW);
	close(sfd);
	if (r == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	return errbuf_fail(
	    err, errlen, "cannot read %s/%s: %s", conf->state_dir, JOURNAL_FILE, strerror(errno));
}
