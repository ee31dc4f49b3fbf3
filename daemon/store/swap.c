/*
 * The swap of the certificate set in the SSL directory, for rotate and
 * restore: what moves where, planned here and run through the journal
 * (journal.c), which also undoes or finishes it after a crash. The active
 * set, if any, goes into a new backup with its manifest (backup.c) before the
 * commit; after it the staged set moves into place (rotate) or a backup's
 * files are copied over the active ones (restore).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backup.h"
#include "config.h"
#include "errbuf.h"
#include "fsx.h"
#include "journal.h"
#include "log.h"
#include "pki.h"
#include "ssldir.h"
#include "swap.h"

static int swap_plan_backup(
    struct journal_ctx *, struct journal *, time_t, const char *, const char *);
static int swap_check_ca(struct journal_ctx *, int, const char *, const char *);
static int swap_move_in(const struct config *, const char *, const char *, time_t, const char *,
    const char *, const struct journal_note *, char *, size_t, char *, size_t);

/* The steps before the point of no return: the active set, if any, into a new backup. */
static int
swap_plan_backup(
    struct journal_ctx *c, struct journal *j, time_t now, const char *label, const char *reason)
{
	int i, mask;

	if (ssldir_set_mask(c->conf, c->dfd, "", &mask, c->err, c->errlen) == -1)
		return -1;
	if ((mask & SSLDIR_SET_REQUIRED) != 0) {
		if (backup_pick_id(c->conf, c->dfd, now, j->backup, c->err, c->errlen) == -1 ||
		    backup_manifest(c->conf, c->dfd, mask, label, reason, now, c->manifest,
		        sizeof(c->manifest), &c->manifest_len, c->err, c->errlen) == -1)
			return -1;
		journal_add(j, JOURNAL_MKDIR, "-", j->backup, "-");
		for (i = 0; i < SSLDIR_SET_FILES; i++)
			if (mask & (1 << i))
				journal_add(j, JOURNAL_MOVE, ".", j->backup, c->names[i]);
	}
	j->ncommit = j->nsteps;
	return 0;
}

/*
 * The staged CA file in nfd is the certificate whose SHA-256 (DER of its first
 * certificate) is expect: what goes live is what the caller checked. 0, -1
 * with err, SWAP_STALE when it is another one.
 */
static int
swap_check_ca(struct journal_ctx *c, int nfd, const char *src, const char *expect)
{
	char sha[PKI_SHA256_HEX], why[128];
	uint8_t *pem;
	size_t len;
	int r;

	if (fsx_read(nfd, c->names[0], SSLDIR_MAX_CERT_FILE, &pem, &len) == -1)
		return errbuf_fail(c->err, c->errlen, "cannot read %s/%s/%s: %s", c->conf->ssl_dir,
		    src, c->names[0], strerror(errno));
	r = pki_pem_sha256(pem, len, sha, why, sizeof(why));
	free(pem);
	if (r == -1)
		return errbuf_fail(
		    c->err, c->errlen, "%s/%s/%s: %s", c->conf->ssl_dir, src, c->names[0], why);
	if (strcmp(sha, expect) == 0)
		return 0;
	errbuf_fail(c->err, c->errlen,
	    "the CA in %s/%s changed while swapping (%s, expected %s): nothing changed",
	    c->conf->ssl_dir, src, sha, expect);
	return SWAP_STALE;
}

int
swap_rotate(const struct config *conf, time_t now, const char *reason, char *backup_id,
    size_t idlen, char *err, size_t errlen)
{
	return swap_rotate_ca(conf, now, reason, NULL, NULL, backup_id, idlen, err, errlen);
}

int
swap_rotate_ca(const struct config *conf, time_t now, const char *reason, const char *expect_ca,
    const struct journal_note *note, char *backup_id, size_t idlen, char *err, size_t errlen)
{
	return swap_move_in(conf, SSLDIR_STAGING, "rotate", now, reason, expect_ca, note, backup_id,
	    idlen, err, errlen);
}

/*
 * renew's set goes live exactly as a staged set does: one journal that moves
 * the active files into the backup (undone by a crash before the commit) and
 * then every file of renew/ into place (finished by a crash after it), so that
 * the live certificate and key are always both old or both new. renew/ holds
 * a copy of the active CA: moving it too keeps the set whole in one direction.
 */
int
swap_renew(const struct config *conf, time_t now, const char *expect_ca,
    const struct journal_note *note, char *backup_id, size_t idlen, char *err, size_t errlen)
{
	return swap_move_in(conf, SSLDIR_RENEWING, "renew", now, "renew", expect_ca, note,
	    backup_id, idlen, err, errlen);
}

/*
 * A pool's set goes live through renew's directory and renew's journal: written
 * whole beside the active set first (a crash before the journal leaves only a
 * renew/ that start-up drops), then moved in as one swap, so that the live
 * files are the old set or the pool's, never a mix. renew/ is for this swap
 * alone: not while a journal awaits recovery (it may be that journal's), and
 * removed again when the swap is refused before its journal.
 */
int
swap_adopt(const struct config *conf, const struct ssldir_files *f, time_t now, const char *reason,
    const char *expect_ca, const struct journal_note *note, char *backup_id, size_t idlen,
    char *err, size_t errlen)
{
	char scratch[256];
	int r, dfd;

	if (idlen > 0)
		backup_id[0] = '\0';
	if (f == NULL || reason == NULL)
		return errbuf_fail(err, errlen, "adopt: no set");
	if ((r = journal_exists(conf, err, errlen)) != 0)
		return r == 1 ? errbuf_fail(err, errlen,
		                    "%s/%s: an interrupted swap awaits recovery; the pool's set "
		                    "waits for the next start",
		                    conf->state_dir, JOURNAL_FILE)
		              : -1;
	if (ssldir_renewal(conf, f, err, errlen) == -1)
		return -1;
	r = swap_move_in(conf, SSLDIR_RENEWING, "pool", now, reason, expect_ca, note, backup_id,
	    idlen, err, errlen);
	if (r != 0 && journal_exists(conf, scratch, sizeof(scratch)) == 0 &&
	    (dfd = ssldir_open(conf, 0)) != -1) {
		if (fsx_remove_dir(dfd, SSLDIR_RENEWING) == -1 && errno != ENOENT)
			log_warn("cannot remove %s/%s", conf->ssl_dir, SSLDIR_RENEWING);
		close(dfd);
	}
	return r;
}

/*
 * The set in src (new/ or renew/) replaces the active one, which goes to a new
 * backup whose manifest says op (rotate, renew, pool); op also names the journal.
 */
static int
swap_move_in(const struct config *conf, const char *src, const char *op, time_t now,
    const char *reason, const char *expect_ca, const struct journal_note *note, char *backup_id,
    size_t idlen, char *err, size_t errlen)
{
	int renewing = strcmp(src, SSLDIR_RENEWING) == 0;
	struct journal_ctx c;
	struct journal j;
	int i, mask, nfd = -1, r = -1;

	if (idlen > 0)
		backup_id[0] = '\0';
	if (journal_open(&c, conf, op, err, errlen) == -1)
		return -1;
	journal_init(&j, op);
	if (idlen < SWAP_ID_MAX || journal_idle(&c) == -1)
		goto out;
	if ((nfd = fsx_open_dir(c.dfd, src)) == -1) {
		errbuf_fail(c.err, c.errlen, "no %s set in %s/%s: %s",
		    renewing ? "renewed" : "staged", conf->ssl_dir, src, strerror(errno));
		goto out;
	}
	if (ssldir_set_mask(conf, nfd, renewing ? SSLDIR_RENEWING "/" : SSLDIR_STAGING "/", &mask,
	        c.err, c.errlen) == -1)
		goto out;
	if ((mask & SSLDIR_SET_REQUIRED) != SSLDIR_SET_REQUIRED) {
		errbuf_fail(c.err, c.errlen, "the set in %s/%s is incomplete", conf->ssl_dir, src);
		goto out;
	}
	if (swap_plan_backup(&c, &j, now, op, reason) == -1)
		goto out;
	for (i = 0; i < SSLDIR_SET_FILES; i++)
		if (mask & (1 << i))
			journal_add(&j, JOURNAL_MOVE, src, ".", c.names[i]);
	journal_add(&j, JOURNAL_RMDIR, src, "-", "-");
	/*
	 * Checked last, right before the journal: the caller's check (the gate
	 * counted this CA; renew's CA is the active one) and the moves are a few
	 * system calls apart.
	 * XXX a writer replacing the directory between this read and the renames
	 * is not seen; only root can, and it is told to use carotatectl.
	 */
	if (expect_ca != NULL && (r = swap_check_ca(&c, nfd, src, expect_ca)) != 0)
		goto out;
	if (strcmp(j.backup, "-") != 0)
		snprintf(backup_id, idlen, "%s", j.backup);
	r = journal_run(&c, &j, note);
out:
	if (nfd != -1)
		close(nfd);
	journal_close(&c);
	return r;
}

int
swap_restore(const struct config *conf, const char *id, time_t now, char *new_backup_id,
    size_t idlen, char *err, size_t errlen)
{
	return swap_restore_as(conf, id, now, 0, NULL, new_backup_id, idlen, err, errlen);
}

int
swap_restore_as(const struct config *conf, const char *id, time_t now, int rollback,
    const struct journal_note *note, char *new_backup_id, size_t idlen, char *err, size_t errlen)
{
	char reason[80];
	struct journal_ctx c;
	struct journal j;
	int i, mask, r = -1;

	if (idlen > 0)
		new_backup_id[0] = '\0';
	if (journal_open(&c, conf, "restore", err, errlen) == -1)
		return -1;
	journal_init(&j, "restore");
	if (idlen < SWAP_ID_MAX || journal_idle(&c) == -1 ||
	    backup_verify(conf, c.dfd, id, &mask, err, errlen) == -1)
		goto out;
	snprintf(reason, sizeof(reason), "%s %s",
	    rollback ? "failed its TLS check; rolled back to" : "restore of", id);
	if (swap_plan_backup(&c, &j, now, rollback ? "rollback" : "restore", reason) == -1)
		goto out;
	for (i = 0; i < SSLDIR_SET_FILES; i++)
		if (mask & (1 << i))
			journal_add(&j, JOURNAL_COPY, id, ".", c.names[i]);
	if (strcmp(j.backup, "-") != 0)
		snprintf(new_backup_id, idlen, "%s", j.backup);
	r = journal_run(&c, &j, note);
out:
	journal_close(&c);
	return r;
}
