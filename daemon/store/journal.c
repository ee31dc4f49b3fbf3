/*
 * The swap of the certificate set in the SSL directory, for rotate and
 * restore. A set is three files (CA, server certificate, key) plus the
 * optional hidden .carotate-set; no single rename replaces them together, so
 * every swap is first written down in the state directory as a journal of
 * idempotent steps, and swap_recover undoes or finishes it after a crash.
 *
 * The point of no return is the journal's "commit" line. The steps before it
 * only move the active set into a new backup directory (and write its
 * manifest); recovery undoes them: the old set goes back, the backup
 * directory goes away. Once the backup is complete and durable the journal is
 * rewritten as committed, and from then on recovery rolls forward (moves or
 * copies the new set into place). Rolling forward there loses nothing, since
 * the old set is safe in a complete backup that a restore brings back, while
 * undoing would have to put a half-installed set back into new/. A swap with
 * no active set has no backup steps and is committed from the start.
 *
 * That is for crashes. A swap that meets an error while running (an I/O error,
 * a full disk) knows exactly which steps it did, and undoes all of them, those
 * after the commit too, once the journal says so (swap_unfinish): the caller
 * gets the error and the previous set is live, whole. Only when undoing fails
 * too does the journal stay for the next start.
 *
 * Journal (state_dir/swap.journal, written with fsx_replace):
 *	carotate-swap 1
 *	op rotate|restore
 *	backup certs-YYYYMMDD-HHMMSS[-N] | -
 *	state prepared|committed
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

#include <openssl/evp.h>

#include "backup.h"
#include "backupid.h"
#include "config.h"
#include "digest.h"
#include "errbuf.h"
#include "fault.h"
#include "fsx.h"
#include "log.h"
#include "pki.h"
#include "proto_limits.h"
#include "ssldir.h"
#include "journal.h"

#define SWAP_MAGIC          "carotate-swap 1"
#define SSLDIR_SET_FILES    4 /* CA, certificate, key (required), set info (optional) */
#define SSLDIR_SET_REQUIRED 7 /* mask of the three required files */
#define SWAP_MAX_STEPS      16
#define SWAP_NAME_MAX       256
#define SWAP_MAX_TEXT       4096 /* bytes of a journal or manifest we read or write */

enum swap_kind {
	SWAP_MKDIR,
	SWAP_MOVE,
	SWAP_COPY,
	SWAP_RMDIR,
};

struct swap_step {
	enum swap_kind kind;
	char from[SWAP_ID_MAX]; /* ".", "new", a backup id or "-" */
	char to[SWAP_ID_MAX];
	char name[SWAP_NAME_MAX]; /* a set file name or "-" */
};

struct swap_journal {
	char op[16];
	char backup[SWAP_ID_MAX]; /* the backup this swap creates; "-" when none */
	int committed;
	size_t ncommit; /* steps [0, ncommit) are undone by recovery, the rest finished */
	size_t nsteps;
	struct swap_step steps[SWAP_MAX_STEPS];
};

struct swap_ctx {
	const struct config *conf;
	const char *names[SSLDIR_SET_FILES];
	int dfd;           /* the SSL directory */
	int stfd;          /* the state directory */
	const char *op;    /* names the fault points */
	const char *label; /* the manifest's op=: op, or "rollback" */
	int fault_n;
	char manifest[BACKUP_MANIFEST_MAX]; /* backup_manifest's, written by the mkdir step */
	size_t manifest_len;
	char *err;
	size_t errlen;
};

static const char *const swap_kinds[] = { "mkdir", "move", "copy", "rmdir" };

static void swap_fault(struct swap_ctx *);
static int swap_open(struct swap_ctx *, const struct config *, const char *, char *, size_t);
static void swap_close(struct swap_ctx *);
static int swap_valid_dir(const char *);
static int swap_dir(struct swap_ctx *, const char *);
static void swap_journal_init(struct swap_journal *, const char *);
static void swap_add(
    struct swap_journal *, enum swap_kind, const char *, const char *, const char *);
static int swap_plan_backup(struct swap_ctx *, struct swap_journal *, time_t, const char *);
static int swap_idle(struct swap_ctx *);
static int swap_mkdir(struct swap_ctx *, const char *);
static int swap_move(struct swap_ctx *, const char *, const char *, const char *);
static mode_t swap_live_mode(const struct swap_ctx *, const char *, mode_t);
static int swap_copy(struct swap_ctx *, const char *, const char *);
static int swap_check_ca(struct swap_ctx *, int, const char *);
static int swap_rmdir(struct swap_ctx *, const char *);
static int swap_unmkdir(struct swap_ctx *, const char *);
static int swap_do(struct swap_ctx *, const struct swap_step *);
static int swap_undo(struct swap_ctx *, const struct swap_step *);
static int swap_undo_all(struct swap_ctx *, const struct swap_journal *, size_t);
static int swap_finish_steps(struct swap_ctx *, const struct swap_journal *, size_t *);
static int swap_finish(struct swap_ctx *, const struct swap_journal *);
static void swap_abort(struct swap_ctx *, const struct swap_journal *, size_t);
static int swap_unfinish(struct swap_ctx *, struct swap_journal *, size_t);
static int swap_run(struct swap_ctx *, struct swap_journal *);
static int swap_append(char *, size_t, size_t *, const char *, ...)
    __attribute__((format(printf, 4, 5)));
static int swap_journal_write(struct swap_ctx *, const struct swap_journal *);
static int swap_journal_step(struct swap_ctx *, struct swap_journal *, const char *);
static int swap_journal_line(struct swap_ctx *, struct swap_journal *, const char *);
static int swap_journal_read(struct swap_ctx *, struct swap_journal *);
static int swap_journal_remove(struct swap_ctx *);

/* Crash points swap-<op>-1, -2, ... between steps; the tests walk them all. */
static void
swap_fault(struct swap_ctx *c)
{
#ifdef CAROTATE_FAULTS
	char name[48];

	snprintf(name, sizeof(name), "swap-%s-%d", c->op, ++c->fault_n);
	fault_point(name);
#endif
}

/* File names go into the journal as single tokens: no white space, no slash, no dot names. */
static int
swap_open(struct swap_ctx *c, const struct config *conf, const char *op, char *err, size_t errlen)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->conf = conf;
	c->op = op;
	c->label = op;
	c->err = err;
	c->errlen = errlen;
	c->dfd = c->stfd = -1;
	ssldir_set_names(conf, c->names);
	for (i = 0; i < SSLDIR_SET_FILES; i++) {
		if (strcspn(c->names[i], " \t\r\n/") != strlen(c->names[i]) ||
		    strlen(c->names[i]) >= SWAP_NAME_MAX || strcmp(c->names[i], ".") == 0 ||
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
		swap_close(c);
		return -1;
	}
	return 0;
}

static void
swap_close(struct swap_ctx *c)
{
	if (c->dfd != -1)
		close(c->dfd);
	if (c->stfd != -1)
		close(c->stfd);
	c->dfd = c->stfd = -1;
}

/* The only directory tokens a journal may hold: nothing there can name a path outside. */
static int
swap_valid_dir(const char *s)
{
	return strcmp(s, ".") == 0 || strcmp(s, SSLDIR_STAGING) == 0 || backupid_valid(s);
}

/* A directory of the swap, opened relative to the SSL directory and never through a symlink. */
static int
swap_dir(struct swap_ctx *c, const char *token)
{
	if (strcmp(token, ".") == 0)
		return fcntl(c->dfd, F_DUPFD_CLOEXEC, 0);
	if (!swap_valid_dir(token)) {
		errno = EINVAL;
		return -1;
	}
	return fsx_open_dir(c->dfd, token);
}

static void
swap_journal_init(struct swap_journal *j, const char *op)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->op, sizeof(j->op), "%s", op);
	snprintf(j->backup, sizeof(j->backup), "-");
}

/* Callers add at most 2 * SSLDIR_SET_FILES + 2 steps, well within SWAP_MAX_STEPS. */
static void
swap_add(
    struct swap_journal *j, enum swap_kind kind, const char *from, const char *to, const char *name)
{
	struct swap_step *s = &j->steps[j->nsteps++];

	s->kind = kind;
	snprintf(s->from, sizeof(s->from), "%s", from);
	snprintf(s->to, sizeof(s->to), "%s", to);
	snprintf(s->name, sizeof(s->name), "%s", name);
}

/* The steps before the point of no return: the active set, if any, into a new backup. */
static int
swap_plan_backup(struct swap_ctx *c, struct swap_journal *j, time_t now, const char *reason)
{
	int i, mask;

	if (ssldir_set_mask(c->conf, c->dfd, "", &mask, c->err, c->errlen) == -1)
		return -1;
	if ((mask & SSLDIR_SET_REQUIRED) != 0) {
		if (backup_pick_id(c->conf, c->dfd, now, j->backup, c->err, c->errlen) == -1 ||
		    backup_manifest(c->conf, c->dfd, mask, c->label, reason, now, c->manifest,
		        sizeof(c->manifest), &c->manifest_len, c->err, c->errlen) == -1)
			return -1;
		swap_add(j, SWAP_MKDIR, "-", j->backup, "-");
		for (i = 0; i < SSLDIR_SET_FILES; i++)
			if (mask & (1 << i))
				swap_add(j, SWAP_MOVE, ".", j->backup, c->names[i]);
	}
	j->ncommit = j->nsteps;
	return 0;
}

/* A pending journal means an unfinished swap: nothing else may touch the set before recovery. */
static int
swap_idle(struct swap_ctx *c)
{
	struct stat st;

	if (fstatat(c->stfd, SWAP_JOURNAL, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return errbuf_fail(c->err, c->errlen,
		    "%s/%s: an interrupted swap awaits recovery at the next start",
		    c->conf->state_dir, SWAP_JOURNAL);
	return 0;
}

/* Creates the backup directory (0700) and its manifest; only ever run before the commit. */
static int
swap_mkdir(struct swap_ctx *c, const char *id)
{
	int bfd, r;

	if (mkdirat(c->dfd, id, 0700) == -1 || fsx_fsync_dir(c->dfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot create %s/%s: %s", c->conf->ssl_dir,
		    id, strerror(errno));
	swap_fault(c);
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
swap_move(struct swap_ctx *c, const char *from, const char *to, const char *name)
{
	struct stat st;
	int ffd, tfd, r;

	if ((tfd = swap_dir(c, to)) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot open %s/%s: %s", c->conf->ssl_dir, to,
		    strerror(errno));
	if ((ffd = swap_dir(c, from)) == -1 && errno != ENOENT) {
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
	    S_ISREG(st.st_mode) && swap_live_mode(c, name, st.st_mode) != (st.st_mode & 07777) &&
	    fchmodat(tfd, name, swap_live_mode(c, name, st.st_mode), 0) == -1)
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
swap_live_mode(const struct swap_ctx *c, const char *name, mode_t mode)
{
	return ssldir_set_index(c->names, name) == 2 ? mode & 0600 : mode & 0755;
}

/* Copies backup from/name over the active name (temporary file, fsync, rename): redoable. */
static int
swap_copy(struct swap_ctx *c, const char *from, const char *name)
{
	struct stat st;
	uint8_t *data;
	size_t len;
	int ffd, r;

	if ((ffd = swap_dir(c, from)) == -1)
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
	r = fsx_replace(c->dfd, name, data, len, swap_live_mode(c, name, st.st_mode));
	if (r == -1)
		errbuf_fail(c->err, c->errlen, "cannot write %s/%s: %s", c->conf->ssl_dir, name,
		    strerror(errno));
	explicit_bzero(data, len);
	free(data);
	return r;
}

/* Removes new/ once emptied (stray regular files in it go too). */
static int
swap_rmdir(struct swap_ctx *c, const char *dir)
{
	if ((fsx_remove_dir(c->dfd, dir) == -1 && errno != ENOENT) || fsx_fsync_dir(c->dfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->ssl_dir,
		    dir, strerror(errno));
	return 0;
}

/* Undoes swap_mkdir: the manifest, then the directory only if nothing else is left in it. */
static int
swap_unmkdir(struct swap_ctx *c, const char *id)
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
swap_do(struct swap_ctx *c, const struct swap_step *s)
{
	switch (s->kind) {
	case SWAP_MKDIR:
		return swap_mkdir(c, s->to);
	case SWAP_MOVE:
		return swap_move(c, s->from, s->to, s->name);
	case SWAP_COPY:
		return swap_copy(c, s->from, s->name);
	case SWAP_RMDIR:
		return swap_rmdir(c, s->from);
	}
	return errbuf_fail(c->err, c->errlen, "unknown swap step");
}

/*
 * Recovery undoes the steps before the commit (mkdir, moves into the backup);
 * a swap that fails after it also undoes the steps it finished (swap_unfinish):
 * a copy from a backup is removed (the backup keeps it), new/ comes back.
 */
static int
swap_undo(struct swap_ctx *c, const struct swap_step *s)
{
	switch (s->kind) {
	case SWAP_MKDIR:
		return swap_unmkdir(c, s->to);
	case SWAP_MOVE:
		return swap_move(c, s->to, s->from, s->name);
	case SWAP_COPY:
		if (unlinkat(c->dfd, s->name, 0) == -1 && errno != ENOENT)
			return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s",
			    c->conf->ssl_dir, s->name, strerror(errno));
		return 0;
	case SWAP_RMDIR:
		if (mkdirat(c->dfd, s->from, 0700) == -1 && errno != EEXIST)
			return errbuf_fail(c->err, c->errlen, "cannot create %s/%s: %s",
			    c->conf->ssl_dir, s->from, strerror(errno));
		return 0;
	}
	return errbuf_fail(c->err, c->errlen, "unknown swap step");
}

/* Undoes steps [0, n) in reverse order; each undo is idempotent. */
static int
swap_undo_all(struct swap_ctx *c, const struct swap_journal *j, size_t n)
{
	while (n-- > 0) {
		if (swap_undo(c, &j->steps[n]) == -1)
			return -1;
		swap_fault(c);
	}
	return 0;
}

/* Runs the steps after the commit; each is idempotent. *failed: the step that failed. */
static int
swap_finish_steps(struct swap_ctx *c, const struct swap_journal *j, size_t *failed)
{
	size_t i;

	for (i = j->ncommit; i < j->nsteps; i++) {
		if (swap_do(c, &j->steps[i]) == -1) {
			*failed = i;
			return -1;
		}
		swap_fault(c);
	}
	return 0;
}

/* Recovery of a committed swap: the steps after the commit, then the journal goes. */
static int
swap_finish(struct swap_ctx *c, const struct swap_journal *j)
{
	size_t failed;

	if (swap_finish_steps(c, j, &failed) == -1)
		return -1;
	return swap_journal_remove(c);
}

/* A step before the commit failed: put the old set back (steps [0, n)) and drop the journal. */
static void
swap_abort(struct swap_ctx *c, const struct swap_journal *j, size_t n)
{
	char why[256], how[256];

	snprintf(why, sizeof(why), "%s", c->err);
	if (swap_undo_all(c, j, n) == 0 && swap_journal_remove(c) == 0) {
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
swap_unfinish(struct swap_ctx *c, struct swap_journal *j, size_t failed)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", c->err);
	j->committed = 0;
	j->ncommit = failed + 1;
	if (swap_journal_write(c, j) == -1) {
		errbuf_fail(c->err, c->errlen, "%s: the swap is finished at the next start", why);
		return -1;
	}
	swap_fault(c);
	snprintf(c->err, c->errlen, "%s", why);
	swap_abort(c, j, j->ncommit);
	return -1;
}

/*
 * Journal first; then backup, commit, new set, each step followed by a crash
 * point. A failure leaves the previous set in place, except when even undoing
 * fails: then the journal stays and the next start undoes or finishes the swap.
 */
static int
swap_run(struct swap_ctx *c, struct swap_journal *j)
{
	size_t i, failed = 0;

	j->committed = j->ncommit == 0;
	if (swap_journal_write(c, j) == -1) {
		/* Nothing was done; a journal that reached the disk all the same goes. */
		swap_abort(c, j, 0);
		return -1;
	}
	swap_fault(c);
	for (i = 0; i < j->ncommit; i++) {
		if (swap_do(c, &j->steps[i]) == -1) {
			/* The failed step may be half done: undo it too. */
			swap_abort(c, j, i + 1);
			return -1;
		}
		swap_fault(c);
	}
	if (!j->committed) {
		j->committed = 1;
		/*
		 * XXX the journal on disk may say either state; undoing fits both, and
		 * the journal goes. A crash before it is gone would finish the swap.
		 */
		if (swap_journal_write(c, j) == -1) {
			swap_abort(c, j, j->ncommit);
			return -1;
		}
		swap_fault(c);
	}
	if (swap_finish_steps(c, j, &failed) == -1)
		return swap_unfinish(c, j, failed);
	/*
	 * The new set is complete: a journal left over only replays finished steps
	 * (but holds off other swaps until the next start). A removal that failed
	 * may have happened all the same: asked once more.
	 */
	if (swap_journal_remove(c) == -1) {
		log_warnx("%s; the swap is complete, trying again", c->err);
		if (swap_journal_remove(c) == -1)
			log_warnx("%s; the next start removes it", c->err);
	}
	return 0;
}

static int
swap_append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *len)
		return -1;
	*len += (size_t)n;
	return 0;
}

/* Written whole with fsx_replace: a crash leaves the previous journal or this one, durably. */
static int
swap_journal_write(struct swap_ctx *c, const struct swap_journal *j)
{
	char buf[SWAP_MAX_TEXT];
	size_t i, len = 0;
	int r;

	r = swap_append(buf, sizeof(buf), &len, "%s\nop %s\nbackup %s\nstate %s\n", SWAP_MAGIC,
	    j->op, j->backup, j->committed ? "committed" : "prepared");
	for (i = 0; i <= j->nsteps && r == 0; i++) {
		if (i == j->ncommit)
			r = swap_append(buf, sizeof(buf), &len, "commit\n");
		if (i < j->nsteps && r == 0)
			r = swap_append(buf, sizeof(buf), &len, "step %s %s %s %s\n",
			    swap_kinds[j->steps[i].kind], j->steps[i].from, j->steps[i].to,
			    j->steps[i].name);
	}
	if (r == -1)
		return errbuf_fail(c->err, c->errlen, "swap journal too long");
	if (fsx_replace(c->stfd, SWAP_JOURNAL, buf, len, 0600) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot write %s/%s: %s", c->conf->state_dir,
		    SWAP_JOURNAL, strerror(errno));
	return 0;
}

/* `step KIND FROM TO NAME`, every token from an allow-list. */
static int
swap_journal_step(struct swap_ctx *c, struct swap_journal *j, const char *line)
{
	char kind[8], from[SWAP_ID_MAX], to[SWAP_ID_MAX], name[SWAP_NAME_MAX];
	size_t k;
	int n = 0;

	if (sscanf(line, "step %7s %31s %31s %255s%n", kind, from, to, name, &n) != 4 ||
	    line[n] != '\0' || j->nsteps == SWAP_MAX_STEPS)
		return -1;
	for (k = 0; k < sizeof(swap_kinds) / sizeof(swap_kinds[0]); k++)
		if (strcmp(kind, swap_kinds[k]) == 0)
			break;
	if (k == sizeof(swap_kinds) / sizeof(swap_kinds[0]) ||
	    (strcmp(from, "-") != 0 && !swap_valid_dir(from)) ||
	    (strcmp(to, "-") != 0 && !swap_valid_dir(to)) ||
	    (strcmp(name, "-") != 0 && ssldir_set_index(c->names, name) == -1))
		return -1;
	swap_add(j, (enum swap_kind)k, from, to, name);
	return 0;
}

static int
swap_journal_line(struct swap_ctx *c, struct swap_journal *j, const char *line)
{
	if (strcmp(line, "op rotate") == 0 || strcmp(line, "op restore") == 0)
		snprintf(j->op, sizeof(j->op), "%s", line + 3);
	else if (strncmp(line, "backup ", 7) == 0 &&
	         (strcmp(line + 7, "-") == 0 || backupid_valid(line + 7)))
		snprintf(j->backup, sizeof(j->backup), "%s", line + 7);
	else if (strcmp(line, "state prepared") == 0 || strcmp(line, "state committed") == 0)
		j->committed = line[6] == 'c';
	else if (strcmp(line, "commit") == 0)
		j->ncommit = j->nsteps;
	else if (swap_journal_step(c, j, line) == -1)
		return errbuf_fail(c->err, c->errlen, "%s/%s: bad line \"%.80s\"",
		    c->conf->state_dir, SWAP_JOURNAL, line);
	return 0;
}

/* 1 with *j filled in, 0 when there is no journal, -1 when it cannot be read or trusted. */
static int
swap_journal_read(struct swap_ctx *c, struct swap_journal *j)
{
	char *line, *save = NULL;
	uint8_t *buf;
	size_t len;
	int r = 0;

	if (fsx_read(c->stfd, SWAP_JOURNAL, SWAP_MAX_TEXT, &buf, &len) == -1)
		return errno == ENOENT ? 0
		                       : errbuf_fail(c->err, c->errlen, "cannot read %s/%s: %s",
		                             c->conf->state_dir, SWAP_JOURNAL, strerror(errno));
	memset(j, 0, sizeof(*j));
	j->ncommit = SIZE_MAX;
	line = strlen((char *)buf) == len ? strtok_r((char *)buf, "\n", &save) : NULL;
	if (line == NULL || strcmp(line, SWAP_MAGIC) != 0)
		r = errbuf_fail(c->err, c->errlen, "%s/%s: not a swap journal", c->conf->state_dir,
		    SWAP_JOURNAL);
	while (r == 0 && (line = strtok_r(NULL, "\n", &save)) != NULL)
		r = swap_journal_line(c, j, line);
	free(buf);
	if (r == 0 && (j->op[0] == '\0' || j->ncommit == SIZE_MAX))
		r = errbuf_fail(c->err, c->errlen, "%s/%s: incomplete journal", c->conf->state_dir,
		    SWAP_JOURNAL);
	return r == -1 ? -1 : 1;
}

static int
swap_journal_remove(struct swap_ctx *c)
{
	if ((unlinkat(c->stfd, SWAP_JOURNAL, 0) == -1 && errno != ENOENT) ||
	    fsx_fsync_dir(c->stfd) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot remove %s/%s: %s", c->conf->state_dir,
		    SWAP_JOURNAL, strerror(errno));
	return 0;
}

/*
 * The staged CA file in nfd is the certificate whose SHA-256 (DER of its first
 * certificate) is expect: what goes live is what the caller checked. 0, -1
 * with err, SWAP_STALE when it is another one.
 */
static int
swap_check_ca(struct swap_ctx *c, int nfd, const char *expect)
{
	STACK_OF(X509) * certs;
	char sha[PKI_SHA256_HEX], why[128];
	uint8_t *pem;
	size_t len;

	if (fsx_read(nfd, c->names[0], SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot read %s/%s/%s: %s", c->conf->ssl_dir,
		    SSLDIR_STAGING, c->names[0], strerror(errno));
	certs = pki_certs_from_pem(pem, len, why, sizeof(why));
	free(pem);
	if (certs == NULL)
		return errbuf_fail(c->err, c->errlen, "%s/%s/%s: %s", c->conf->ssl_dir,
		    SSLDIR_STAGING, c->names[0], why);
	pki_cert_sha256(sk_X509_value(certs, 0), sha);
	sk_X509_pop_free(certs, X509_free);
	if (strcmp(sha, expect) == 0)
		return 0;
	errbuf_fail(c->err, c->errlen,
	    "the staged CA in %s/%s changed while rotating (%s, expected %s): nothing changed",
	    c->conf->ssl_dir, SSLDIR_STAGING, sha, expect);
	return SWAP_STALE;
}

int
swap_rotate(const struct config *conf, time_t now, const char *reason, char *backup_id,
    size_t idlen, char *err, size_t errlen)
{
	return swap_rotate_ca(conf, now, reason, NULL, backup_id, idlen, err, errlen);
}

int
swap_rotate_ca(const struct config *conf, time_t now, const char *reason, const char *expect_ca,
    char *backup_id, size_t idlen, char *err, size_t errlen)
{
	struct swap_ctx c;
	struct swap_journal j;
	int i, mask, nfd = -1, r = -1;

	if (idlen > 0)
		backup_id[0] = '\0';
	if (swap_open(&c, conf, "rotate", err, errlen) == -1)
		return -1;
	swap_journal_init(&j, "rotate");
	if (idlen < SWAP_ID_MAX || swap_idle(&c) == -1)
		goto out;
	if ((nfd = fsx_open_dir(c.dfd, SSLDIR_STAGING)) == -1) {
		errbuf_fail(c.err, c.errlen, "no staged set in %s/%s: %s", conf->ssl_dir,
		    SSLDIR_STAGING, strerror(errno));
		goto out;
	}
	if (ssldir_set_mask(conf, nfd, SSLDIR_STAGING "/", &mask, c.err, c.errlen) == -1)
		goto out;
	if ((mask & SSLDIR_SET_REQUIRED) != SSLDIR_SET_REQUIRED) {
		errbuf_fail(c.err, c.errlen, "the staged set in %s/%s is incomplete", conf->ssl_dir,
		    SSLDIR_STAGING);
		goto out;
	}
	if (swap_plan_backup(&c, &j, now, reason) == -1)
		goto out;
	for (i = 0; i < SSLDIR_SET_FILES; i++)
		if (mask & (1 << i))
			swap_add(&j, SWAP_MOVE, SSLDIR_STAGING, ".", c.names[i]);
	swap_add(&j, SWAP_RMDIR, SSLDIR_STAGING, "-", "-");
	/*
	 * Checked last, right before the journal: the caller's check (the gate
	 * counted this CA) and the moves are a few system calls apart.
	 * XXX a writer replacing new/ between this read and the renames is not
	 * seen; only root can, and it is told to use carotatectl.
	 */
	if (expect_ca != NULL && (r = swap_check_ca(&c, nfd, expect_ca)) != 0)
		goto out;
	if (strcmp(j.backup, "-") != 0)
		snprintf(backup_id, idlen, "%s", j.backup);
	r = swap_run(&c, &j);
out:
	if (nfd != -1)
		close(nfd);
	swap_close(&c);
	return r;
}

int
swap_restore(const struct config *conf, const char *id, time_t now, char *new_backup_id,
    size_t idlen, char *err, size_t errlen)
{
	return swap_restore_as(conf, id, now, 0, new_backup_id, idlen, err, errlen);
}

int
swap_restore_as(const struct config *conf, const char *id, time_t now, int rollback,
    char *new_backup_id, size_t idlen, char *err, size_t errlen)
{
	char reason[80];
	struct swap_ctx c;
	struct swap_journal j;
	int i, mask, r = -1;

	if (idlen > 0)
		new_backup_id[0] = '\0';
	if (swap_open(&c, conf, "restore", err, errlen) == -1)
		return -1;
	swap_journal_init(&j, "restore");
	if (idlen < SWAP_ID_MAX || swap_idle(&c) == -1 ||
	    backup_verify(conf, c.dfd, id, &mask, err, errlen) == -1)
		goto out;
	if (rollback)
		c.label = "rollback";
	snprintf(reason, sizeof(reason), "%s %s",
	    rollback ? "failed its TLS check; rolled back to" : "restore of", id);
	if (swap_plan_backup(&c, &j, now, reason) == -1)
		goto out;
	for (i = 0; i < SSLDIR_SET_FILES; i++)
		if (mask & (1 << i))
			swap_add(&j, SWAP_COPY, id, ".", c.names[i]);
	if (strcmp(j.backup, "-") != 0)
		snprintf(new_backup_id, idlen, "%s", j.backup);
	r = swap_run(&c, &j);
out:
	swap_close(&c);
	return r;
}

int
swap_recover(const struct config *conf, char *err, size_t errlen)
{
	struct swap_ctx c;
	struct swap_journal j;
	int r;

	if (swap_open(&c, conf, "recover", err, errlen) == -1)
		return -1;
	/* A crash while the journal was first written: nothing was done yet. */
	if (unlinkat(c.stfd, "." SWAP_JOURNAL ".tmp", 0) == -1 && errno != ENOENT)
		log_warn("%s: %s/." SWAP_JOURNAL ".tmp", __func__, conf->state_dir);
	if ((r = swap_journal_read(&c, &j)) == 1) {
		log_info("%s an interrupted %s (backup %s)", j.committed ? "finishing" : "undoing",
		    j.op, j.backup);
		if (j.committed
		        ? swap_finish(&c, &j) == -1
		        : swap_undo_all(&c, &j, j.ncommit) == -1 || swap_journal_remove(&c) == -1)
			r = -1;
	}
	swap_close(&c);
	return r;
}

/* The state directory, for the pending file: -1 with err. */
static int
swap_state_dir(const struct config *conf, char *err, size_t errlen)
{
	int fd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		snprintf(err, errlen, "cannot open %s: %s", conf->state_dir, strerror(errno));
	return fd;
}

int
swap_pending_write(const struct config *conf, const char *text, char *err, size_t errlen)
{
	int fd, r = 0;

	if (strlen(text) >= SWAP_PENDING_MAX) {
		snprintf(err, errlen, "%s/%s: too long", conf->state_dir, SWAP_PENDING);
		return -1;
	}
	if ((fd = swap_state_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_replace(fd, SWAP_PENDING, text, strlen(text), 0600) == -1)
		r = -1, snprintf(err, errlen, "cannot write %s/%s: %s", conf->state_dir,
		            SWAP_PENDING, strerror(errno));
	close(fd);
	return r;
}

int
swap_pending_read(const struct config *conf, char **text, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int fd, r = 1;

	*text = NULL;
	if ((fd = swap_state_dir(conf, err, errlen)) == -1)
		return -1;
	if (fsx_read(fd, SWAP_PENDING, SWAP_PENDING_MAX, &buf, &len) == -1) {
		r = errno == ENOENT ? 0 : -1;
		if (r == -1)
			snprintf(err, errlen, "cannot read %s/%s: %s", conf->state_dir,
			    SWAP_PENDING, strerror(errno));
	} else if (strlen((char *)buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s/%s: binary content", conf->state_dir, SWAP_PENDING);
		r = -1;
	} else
		*text = (char *)buf;
	close(fd);
	return r;
}

int
swap_pending_remove(const struct config *conf, char *err, size_t errlen)
{
	int fd, r = 0;

	if ((fd = swap_state_dir(conf, err, errlen)) == -1)
		return -1;
	if ((unlinkat(fd, SWAP_PENDING, 0) == -1 && errno != ENOENT) || fsx_fsync_dir(fd) == -1) {
		snprintf(err, errlen, "cannot remove %s/%s: %s", conf->state_dir, SWAP_PENDING,
		    strerror(errno));
		r = -1;
	}
	close(fd);
	return r;
}
