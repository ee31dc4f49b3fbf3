/*
 * rotate and restore: stage 3 of a rotation, and its way back. Both swap the
 * active set through swap.c's journal (a crash at any point is finished or
 * undone at the next start), re-derive the trust bundle, reload the proxy,
 * and then believe only a TLS handshake: the proxy must serve the expected
 * leaf certificate within [proxy] check_timeout. If it does not, the previous
 * set is put back by the same mechanism and the proxy reloaded again; the
 * owner of the call (rpc/rpc_rotate.c) gets INTERNAL with what happened.
 *
 * A swap itself is synchronous (a few renames and fsyncs); the reload and the
 * check run off the event loop, so the owner answers later (hooks->done) and
 * holds the exclusive slot until then. The engine knows nothing of replies,
 * deferred calls or audit records: it reports a rotation_result.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "backup.h"
#include "bundle.h"
#include "cakeys.h"
#include "carotated.h"
#include "certjob.h"
#include "clock.h"
#include "config.h"
#include "digest.h"
#include "fault.h"
#include "internal.pb-c.h"
#include "job.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "proxy.h"
#include "retained.h"
#include "sandbox.h"
#include "ssldir.h"
#include "statenote.h"
#include "rotation.h"
#include "swap.h"
#include "xmalloc.h"

/* One rotate or restore from the swap to its result. */
struct rotation {
	struct carotated *cd;
	const struct rotation_hooks *hooks;
	void *arg;                         /* the hooks' */
	const char *call;                  /* "rotate" or "restore" */
	char backup[SWAP_ID_MAX];          /* where the previous active set went; "" none */
	char rollback_backup[SWAP_ID_MAX]; /* where the rolled-back set went */
	char restored[SWAP_ID_MAX];        /* restore: the backup put back; "" */
	char expected[PKI_SHA256_HEX];     /* the leaf the proxy must serve now */
	char previous[PKI_SHA256_HEX];     /* the leaf of the previous set; "" none */
	int forced;
	int rolling_back;
	char failure[768]; /* why the new set was rolled back */
	uint64_t t0;       /* ms, monotonic: the request arrived */
	/* The outcome so far: the last reload and TLS check, the backups pruned. */
	Carotate__V1__ReloadResult *reload;
	char *served;
	int verified, rolled_back;
	uint64_t rotate_ms;
	char **pruned;
	size_t n_pruned;
	int resumed; /* finished at start-up from JOURNAL_PENDING */
	/* renew, until its swap: the job's input, the CA it must keep, what a dry run made */
	struct certjob *in;
	char ca[PKI_SHA256_HEX];
	char origin[16];
	int dry_run;
	char *would_be;
};

#define ROTATION_RENEW_TIMEOUT 300000     /* ms: an RSA-4096 key on a slow machine */
#define ROTATION_MAX_MATERIAL  (1u << 20) /* bytes a renew job may return */

#define PENDING_MAGIC "carotate-pending 1"

/* The rotation between its swap and its result (at most one: the call is exclusive). */
static struct rotation *rotation_running;

static struct rotation *rotation_new(
    struct carotated *, const struct rotation_req *, const struct rotation_hooks *, void *);
static void rotation_start(struct rotation *, const char *);
static void rotation_swapped(struct rotation *);
static void rotation_reloaded(Carotate__V1__ReloadResult *, void *);
static void rotation_checked(int, const char *, const char *, void *);
static void rotation_rollback(struct rotation *, const char *, const char *);
static void rotation_reply(struct rotation *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void rotation_outcome(
    struct rotation *, struct rotation_result *, Carotate__V1__Status, const char *);
static void rotation_free(struct rotation *);
static int rotation_note_text(struct rotation *, char *, size_t);
static int rotation_note_swap(void *, const char *, char *, size_t);
static void rotation_note(struct rotation *);
static void rotation_line(char *, size_t, const char *, const char *);
static int rotation_load_line(struct rotation *, const char *);
static void rotation_renew_done(struct job *, void *);
static void rotation_renew_result(struct rotation *, const Carotate__Internal__Material *);
static int rotation_renew_swap(
    struct rotation *, const Carotate__Internal__Material *, char *, size_t);

static struct rotation *
rotation_new(struct carotated *cd, const struct rotation_req *q, const struct rotation_hooks *hooks,
    void *arg)
{
	struct rotation *op = xcalloc(1, sizeof(*op));

	op->cd = cd;
	op->hooks = hooks;
	op->arg = arg;
	op->call = q->call;
	op->forced = q->forced;
	snprintf(op->restored, sizeof(op->restored), "%s", q->restored);
	snprintf(op->expected, sizeof(op->expected), "%s", q->expected);
	snprintf(op->previous, sizeof(op->previous), "%s", q->previous);
	op->t0 = clock_ms();
	return op;
}

/*
 * rotate: new/ goes live. The swap checks again that new/ holds the CA counted
 * (q->ca): nothing else goes live. 0 when the call goes on (hooks->begin, then
 * hooks->done later), or -1 / SWAP_STALE with err (nothing changed).
 */
int
rotation_rotate(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rotation *op = rotation_new(cd, q, hooks, arg);
	struct journal_note note = { rotation_note_swap, op };
	int rc;

	if ((rc = swap_rotate_ca(cd->conf, q->now, q->reason, q->ca, &note, op->backup,
	         sizeof(op->backup), op->failure, sizeof(op->failure))) != 0) {
		log_warnx("rotate: %s", op->failure);
		if (rc == SWAP_STALE)
			agents_refresh(cd);
		snprintf(err, errlen, "%s", op->failure);
		rotation_free(op);
		return rc;
	}
	log_info("rotate: the staged set is live (server %s); the previous set is in %s",
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none: first activation)");
	rotation_start(op, "rotate-after-journal");
	return 0;
}

/* restore: backup q->restored goes live. As rotation_rotate; -1 with err. */
int
rotation_restore(struct carotated *cd, const struct rotation_req *q,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rotation *op = rotation_new(cd, q, hooks, arg);
	struct journal_note note = { rotation_note_swap, op };

	if (swap_restore_as(cd->conf, q->restored, q->now, 0, &note, op->backup, sizeof(op->backup),
	        op->failure, sizeof(op->failure)) == -1) {
		log_warnx("restore: %s", op->failure);
		snprintf(err, errlen, "%s", op->failure);
		rotation_free(op);
		return -1;
	}
	log_info("restore: %s is live again (server %s); the previous set is in %s", q->restored,
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none)");
	rotation_start(op, "restore-after-journal");
	return 0;
}

/*
 * The swap is done and its journal gone; the pending note it wrote before its
 * commit (rotation_note_swap) already records the call, so a crash from here
 * on (point: the first place to crash) is finished at the next start as this
 * call, never adopted as a change made outside carotated.
 */
static void
rotation_start(struct rotation *op, const char *point)
{
	fault_point(point);
	op->hooks->begin(op->arg);
	rotation_running = op;
	rotation_swapped(op);
}

/* key value, one line: control characters (none expected) become '?'. */
static void
rotation_line(char *buf, size_t len, const char *key, const char *value)
{
	size_t n = strlen(buf), i;

	if (n + strlen(key) + 3 >= len)
		return;
	n += (size_t)snprintf(buf + n, len - n, "%s ", key);
	for (i = 0; value[i] != '\0' && n + 2 < len; i++)
		buf[n++] = iscntrl((unsigned char)value[i]) ? '?' : value[i];
	buf[n++] = '\n';
	buf[n] = '\0';
}

/*
 * What is left to do once the set on disk changed (or was put back by a roll
 * back), so that a stop that cuts the call short (a shutdown past its bound, a
 * crash) leaves the next start to reload, check, roll back and audit it as
 * this call, not as a change made outside carotated. The hooks add the call's
 * own lines (its audit record). 0, or -1 when they do not fit.
 */
static int
rotation_note_text(struct rotation *op, char *buf, size_t len)
{
	snprintf(buf, len, "%s\n", PENDING_MAGIC);
	rotation_line(buf, len, "call", op->call);
	rotation_line(buf, len, "backup", op->backup[0] != '\0' ? op->backup : "-");
	rotation_line(buf, len, "restored", op->restored[0] != '\0' ? op->restored : "-");
	rotation_line(buf, len, "expected", op->expected);
	rotation_line(buf, len, "previous", op->previous[0] != '\0' ? op->previous : "-");
	rotation_line(buf, len, "forced", op->forced ? "1" : "0");
	rotation_line(buf, len, "rolling_back", op->rolling_back ? "1" : "0");
	rotation_line(buf, len, "rollback_backup",
	    op->rollback_backup[0] != '\0' ? op->rollback_backup : "-");
	rotation_line(buf, len, "failure", op->failure[0] != '\0' ? op->failure : "-");
	return op->hooks->save(op->arg, buf, len);
}

/*
 * The swap's note (struct journal_note): written by the journal before its
 * commit, for the backup it makes, so that no crash after the swap loses the
 * call (its caller, reason, backup).
 */
static int
rotation_note_swap(void *arg, const char *backup_id, char *buf, size_t len)
{
	struct rotation *op = arg;

	snprintf(op->backup, sizeof(op->backup), "%s", backup_id);
	return rotation_note_text(op, buf, len);
}

/* The note rewritten after a roll back's swap (which carries none): the call goes on. */
static void
rotation_note(struct rotation *op)
{
	char buf[STATENOTE_MAX], err[512] = "";

	if (rotation_note_text(op, buf, sizeof(buf)) == -1 ||
	    statenote_write(op->cd->conf, JOURNAL_PENDING, buf, err, sizeof(err)) == -1)
		log_warnx("%s: %s: a stop before the reply would leave it unaudited", op->call,
		    err[0] != '\0' ? err : "the record does not fit");
}

/* The set on disk changed: the bundle follows, then the proxy is told. */
static void
rotation_swapped(struct rotation *op)
{
	const struct config *conf = op->cd->conf;
	char before[RETAINED_NOTE_LEN], after[RETAINED_NOTE_LEN], err[512];
	struct bundle b;
	time_t now = time(NULL);

	fault_point("rotate-after-swap");
	/* The CA replaced stays in the bundle for the retention window. */
	if (retained_note_active(conf, now, before, after, err, sizeof(err)) == -1)
		log_warnx("%s: %s", op->call, err);
	if (bundle_publish(conf, now, &b, err, sizeof(err)) == -1)
		log_warnx("%s: %s", op->call, err);
	bundle_clear(&b);
	agents_refresh(op->cd);
	fault_point("rotate-after-publish");
	proxy_reload(op->cd, rotation_reloaded, op);
}

static void
rotation_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct rotation *op = arg;
	const struct config *conf = op->cd->conf;

	fault_point("rotate-after-reload");
	if (op->reload != NULL)
		protobuf_c_message_free_unpacked(&op->reload->base, NULL);
	op->reload = result;
	proxy_check(op->cd, &conf->proxy_address, conf->proxy_server_name, op->expected,
	    conf->check_timeout, rotation_checked, op);
}

static void
rotation_checked(int ok, const char *served, const char *why, void *arg)
{
	struct rotation *op = arg;
	const struct config *conf = op->cd->conf;
	char addr[300], err[256];
	size_t i;

	free(op->served);
	op->served = xstrdup(served);
	proxy_address_text(&conf->proxy_address, addr, sizeof(addr));
	if (op->rolling_back) {
		op->rolled_back = 1;
		if (ok)
			rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; rolled back: the previous set is live again and %s serves it "
			    "(the set that failed is kept in %s)",
			    op->failure, addr, op->rollback_backup);
		else
			rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; the previous set was put back, but %s does not serve it either "
			    "(%s): check the proxy now",
			    op->failure, addr, why);
		return;
	}
	if (!ok) {
		snprintf(op->failure, sizeof(op->failure),
		    "%s: %s did not serve the new certificate within %u s (%s)", op->call, addr,
		    conf->check_timeout / 1000, why);
		log_warnx("%s", op->failure);
		if (op->backup[0] == '\0') {
			rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; there was no previous set to roll back to", op->failure);
			return;
		}
		rotation_rollback(op, op->backup, op->previous);
		return;
	}
	op->verified = 1;
	op->rotate_ms = clock_ms() - op->t0;
	if (backup_prune(conf, &op->pruned, &op->n_pruned, err, sizeof(err)) == -1)
		log_warnx("%s: backup retention: %s", op->call, err);
	for (i = 0; i < op->n_pruned; i++)
		log_info("%s: backup %s removed by the retention rule (keep %u)", op->call,
		    op->pruned[i], conf->backups_keep);
	log_info("%s: %s serves %s (%llu ms)", op->call, addr, op->expected,
	    (unsigned long long)op->rotate_ms);
	rotation_reply(op, CAROTATE__V1__STATUS__OK, "%s serves the new certificate%s%s", addr,
	    op->backup[0] != '\0' ? "; the previous set is in " : "", op->backup);
}

/* Puts backup id back (the set that was live before this call), then reloads and checks again. */
static void
rotation_rollback(struct rotation *op, const char *id, const char *previous)
{
	char err[512];

	op->rolling_back = 1;
	snprintf(op->expected, sizeof(op->expected), "%s", previous);
	if (swap_restore_as(op->cd->conf, id, time(NULL), 1, NULL, op->rollback_backup,
	        sizeof(op->rollback_backup), err, sizeof(err)) == -1) {
		log_warnx("%s: roll back to %s: %s", op->call, id, err);
		rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
		    "%s; putting %s back failed too (%s): restore it by hand (carotatectl "
		    "restore %s)",
		    op->failure, id, err, id);
		return;
	}
	log_info("%s: rolled back to %s; the set that failed is in %s", op->call, id,
	    op->rollback_backup);
	rotation_note(op);
	rotation_swapped(op);
}

/* The outcome as it stands; the result takes the reload and the pruned list. */
static void
rotation_outcome(
    struct rotation *op, struct rotation_result *res, Carotate__V1__Status status, const char *msg)
{
	memset(res, 0, sizeof(*res));
	res->call = op->call;
	res->status = status;
	res->message = msg;
	res->resumed = op->resumed;
	res->backup = op->backup;
	res->restored = op->restored;
	res->forced = op->forced;
	res->reload = op->reload;
	res->served = op->served;
	res->verified = op->verified;
	res->rolled_back = op->rolled_back;
	res->rotate_ms = op->rotate_ms;
	res->pruned = op->pruned;
	res->n_pruned = op->n_pruned;
	res->would_be = op->would_be;
	op->reload = NULL;
	op->served = NULL;
	op->pruned = NULL;
	op->n_pruned = 0;
}

/* The end of the call: its owner answers and records it (hooks->done). */
static void
rotation_reply(struct rotation *op, Carotate__V1__Status status, const char *fmt, ...)
{
	struct rotation_result res;
	va_list ap;
	char msg[2048];
	int n;

	/* Said first when resumed: the caller got no answer from the daemon that stopped. */
	n = op->resumed ? snprintf(msg, sizeof(msg),
	                      "finished at start-up (carotated stopped before the %s had "
	                      "answered): ",
	                      op->call)
	                : 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rotation_outcome(op, &res, status, msg);
	/* A renew that swapped sets: its result is a metric (one that did not swap changed
	 * nothing). */
	if (strcmp(op->call, "renew") == 0 && op->backup[0] != '\0') {
		metrics_renewed(time(NULL), op->verified);
		agents_metrics_dirty(op->cd);
	}
	rotation_running = NULL;
	op->cd->resuming = 0;
	op->hooks->done(&res, op->arg);
	rotation_free(op);
}

/* Recorded: nothing is left for a next start to finish. */
void
rotation_forget(struct carotated *cd, const char *call)
{
	char err[256];

	if (statenote_remove(cd->conf, JOURNAL_PENDING, err, sizeof(err)) == -1)
		log_warnx("%s: %s", call, err);
}

static void
rotation_free(struct rotation *op)
{
	size_t i;

	if (op->reload != NULL)
		protobuf_c_message_free_unpacked(&op->reload->base, NULL);
	free(op->served);
	for (i = 0; i < op->n_pruned; i++)
		free(op->pruned[i]);
	free(op->pruned);
	certjob_free(op->in);
	free(op->would_be);
	free(op);
}

/*
 * Shutdown outlasted its bound (job_kill_all and proxy_abandon_all ran): the
 * owner is told (res.abandoned), nothing is audited, and JOURNAL_PENDING stays for
 * the next start, which finishes the call and records it.
 */
void
rotation_abandon(void)
{
	struct rotation *op = rotation_running;
	struct rotation_result res;
	char msg[1024];

	if (op == NULL)
		return;
	if (op->in != NULL) {
		/* renew before its swap (job_kill_all ended the job): nothing changed on disk. */
		rotation_reply(op, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "renew: interrupted: carotated is shutting down; nothing changed");
		return;
	}
	rotation_running = NULL;
	log_warnx("%s: stopping before it finished: the next start reloads, checks and "
	          "audits it",
	    op->call);
	snprintf(msg, sizeof(msg),
	    "%s: carotated is stopping before the proxy check ended; the set on disk "
	    "changed (backup %s), and the next start reloads, checks (rolls back if "
	    "need be) and audits it",
	    op->call, op->backup[0] != '\0' ? op->backup : "none");
	rotation_outcome(op, &res, CAROTATE__V1__STATUS__UNAVAILABLE, msg);
	res.abandoned = 1;
	op->hooks->done(&res, op->arg);
	rotation_free(op);
}

/* One line of JOURNAL_PENDING; the owner's lines (its audit record) are its hooks'. */
static int
rotation_load_line(struct rotation *op, const char *line)
{
	const char *v = strchr(line, ' ');
	size_t k;

	if (v == NULL || strncmp(line, "audit.", 6) == 0)
		return 0;
	k = (size_t)(v++ - line);
	if (k == 4 && strncmp(line, "call", 4) == 0)
		op->call = strcmp(v, "restore") == 0 ? "restore"
		           : strcmp(v, "renew") == 0 ? "renew"
		                                     : "rotate";
	else if (k == 6 && strncmp(line, "backup", 6) == 0 && backupid_valid(v))
		snprintf(op->backup, sizeof(op->backup), "%s", v);
	else if (k == 8 && strncmp(line, "restored", 8) == 0 && backupid_valid(v))
		snprintf(op->restored, sizeof(op->restored), "%s", v);
	else if (k == 8 && strncmp(line, "expected", 8) == 0 && digest_sha256_hex_ok(v))
		snprintf(op->expected, sizeof(op->expected), "%s", v);
	else if (k == 8 && strncmp(line, "previous", 8) == 0 && digest_sha256_hex_ok(v))
		snprintf(op->previous, sizeof(op->previous), "%s", v);
	else if (k == 6 && strncmp(line, "forced", 6) == 0)
		op->forced = strcmp(v, "1") == 0;
	else if (k == 12 && strncmp(line, "rolling_back", 12) == 0)
		op->rolling_back = strcmp(v, "1") == 0;
	else if (k == 15 && strncmp(line, "rollback_backup", 15) == 0 && backupid_valid(v))
		snprintf(op->rollback_backup, sizeof(op->rollback_backup), "%s", v);
	else if (k == 7 && strncmp(line, "failure", 7) == 0 && strcmp(v, "-") != 0)
		snprintf(op->failure, sizeof(op->failure), "%s", v);
	return 0;
}

/*
 * At start-up: finishes the call JOURNAL_PENDING records (hooks->load gives its
 * owner, from the note's whole text). 1 resumed, 0 none, -1 (logged, the note
 * removed) when it was unusable.
 */
int
rotation_resume(struct carotated *cd, const struct rotation_hooks *hooks)
{
	char *text = NULL, *copy, *line, *save = NULL, err[512];
	struct rotation *op;
	int r;

	if ((r = statenote_read(cd->conf, JOURNAL_PENDING, &text, err, sizeof(err))) <= 0) {
		if (r == -1)
			log_warnx("%s", err);
		return r;
	}
	op = xcalloc(1, sizeof(*op));
	op->cd = cd;
	op->hooks = hooks;
	op->call = "rotate";
	op->resumed = 1;
	op->t0 = clock_ms();
	copy = xstrdup(text);
	line = strtok_r(copy, "\n", &save);
	if (line == NULL || strcmp(line, PENDING_MAGIC) != 0)
		op->expected[0] = '\0';
	else
		while ((line = strtok_r(NULL, "\n", &save)) != NULL)
			rotation_load_line(op, line);
	free(copy);
	if (op->expected[0] == '\0') {
		free(text);
		log_warnx("%s/%s: not a record of an unfinished rotate or restore; removed",
		    cd->conf->state_dir, JOURNAL_PENDING);
		rotation_free(op);
		if (statenote_remove(cd->conf, JOURNAL_PENDING, err, sizeof(err)) == -1)
			log_warnx("%s", err);
		return -1;
	}
	op->arg = hooks->load(cd, text);
	free(text);
	cd->busy = op->call;
	cd->resuming = 1;
	rotation_running = op;
	log_info("%s: carotated stopped before it had answered; finishing it now: reload, "
	         "TLS check%s, audit",
	    op->call, op->rolling_back ? " of the set rolled back to" : ", roll back if need be");
	rotation_swapped(op);
	return 1;
}

int
rotation_renew(struct carotated *cd, const struct rotation_req *q, struct certjob *in,
    const struct rotation_hooks *hooks, void *arg, char *err, size_t errlen)
{
	struct rotation *op;
	struct sandbox_ids ids;
	char why[256];
	int held;

	/* The CA key is read here, for the job alone: it never passes through a handler. */
	if (!in->install &&
	    (held = cakeys_load(cd->conf, q->ca, &in->ca_key, &in->ca_key_len, err, errlen)) != 1) {
		if (held == 0)
			snprintf(err, errlen, "the key of the active CA %s is no longer kept in %s",
			    q->ca, cd->conf->state_dir);
		certjob_free(in);
		return -1;
	}
	op = rotation_new(cd, q, hooks, arg);
	op->in = in;
	op->dry_run = q->dry_run;
	in->conf = cd->conf;
	snprintf(op->ca, sizeof(op->ca), "%s", q->ca);
	snprintf(op->origin, sizeof(op->origin), "%s", q->origin);
	if (sandbox_ids(cd->conf->agents_user, cd->privileged, &ids, why, sizeof(why)) == -1) {
		snprintf(err, errlen,
		    "cannot start the renew job: %s (certificate jobs run as [agents] user)", why);
		rotation_free(op);
		return -1;
	}
	/* One key is made, in the job itself: it needs no helper process. */
	ids.may_fork = 0;
	if (job_fork_confined(cd->base, "renew", certjob_renew, in, &ids, ROTATION_RENEW_TIMEOUT,
	        ROTATION_MAX_MATERIAL, rotation_renew_done, op) == NULL) {
		snprintf(err, errlen, "cannot start the renew job: %s", strerror(errno));
		rotation_free(op);
		return -1;
	}
	hooks->begin(arg);
	rotation_running = op;
	return 0;
}

/* The job ended: a refusal, a dry run's leaf, or the set to swap in. Keys are wiped. */
static void
rotation_renew_done(struct job *job, void *arg)
{
	struct rotation *op = arg;
	Carotate__Internal__Material *m = NULL;
	const unsigned char *out;
	char why[64];
	size_t len;

	out = job_output(job, &len);
	certjob_free(op->in);
	op->in = NULL;
	if (job_filtered(job)) {
		log_warnx("renew: certificate job %s: a system call outside its allow-list",
		    job_describe(job, why, sizeof(why)));
		rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
		    "the renew job was killed by its syscall filter (signal %d); nothing changed",
		    job_signal(job));
	} else if (job_exit_status(job) != 0 ||
	           (m = carotate__internal__material__unpack(NULL, len, out)) == NULL) {
		log_warnx("renew: certificate job %s", job_describe(job, why, sizeof(why)));
		rotation_reply(op, CAROTATE__V1__STATUS__INTERNAL,
		    "the renew job failed (%s); nothing changed",
		    job_describe(job, why, sizeof(why)));
	} else
		rotation_renew_result(op, m);
	if (m != NULL) {
		if (m->key.data != NULL)
			explicit_bzero(m->key.data, m->key.len);
		carotate__internal__material__free_unpacked(m, NULL);
	}
	job_free(job);
}

static void
rotation_renew_result(struct rotation *op, const Carotate__Internal__Material *m)
{
	char err[768];
	int rc;

	if (m->error[0] != '\0') {
		log_info("renew refused: %s", m->error);
		rotation_reply(
		    op, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s; nothing changed", m->error);
		return;
	}
	if (op->dry_run) {
		op->would_be = xstrndup((const char *)m->cert.data, m->cert.len);
		rotation_reply(op, CAROTATE__V1__STATUS__OK,
		    "dry run: this server certificate would go live under the active CA; nothing "
		    "changed");
		return;
	}
	if ((rc = rotation_renew_swap(op, m, err, sizeof(err))) != 0) {
		log_warnx("renew: %s", err);
		rotation_reply(op,
		    rc == SWAP_STALE ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		                     : CAROTATE__V1__STATUS__INTERNAL,
		    "%s", err);
		return;
	}
	log_info("renew: the new server certificate is live (%s); the previous set is in %s",
	    op->expected, op->backup);
	rotation_start(op, "renew-after-journal");
}

/*
 * The job's set written as renew/ (whole, or not at all), then swapped in
 * through the journal (swap_renew): at every crash point the live leaf and key
 * are both the old ones or both the new ones. 0, -1 or SWAP_STALE with err.
 */
static int
rotation_renew_swap(
    struct rotation *op, const Carotate__Internal__Material *m, char *err, size_t errlen)
{
	const struct config *conf = op->cd->conf;
	struct ssldir_files f = { (const char *)m->ca.data, (const char *)m->cert.data,
		(const char *)m->key.data, m->ca.len, m->cert.len, m->key.len,
		op->origin[0] != '\0' ? op->origin : "generated", time(NULL) };
	struct journal_note note = { rotation_note_swap, op };
	char why[128];

	if (pki_pem_sha256(m->cert.data, m->cert.len, op->expected, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "the renewed certificate: %s", why);
		return -1;
	}
	if (ssldir_renewal(conf, &f, err, errlen) == -1)
		return -1;
	fault_point("renew-before-swap");
	return swap_renew(
	    conf, f.created, op->ca, &note, op->backup, sizeof(op->backup), err, errlen);
}
