/*
 * rotate and restore: stage 3 of a rotation, and its way back. Both swap the
 * active set through swap.c's journal (a crash at any point is finished or
 * undone at the next start), re-derive the trust bundle, reload the proxy,
 * and then believe only a TLS handshake: the proxy must serve the expected
 * leaf certificate within [proxy] check_timeout. If it does not, the previous
 * set is put back by the same mechanism and the proxy reloaded again; the
 * caller gets INTERNAL with what happened.
 *
 * A swap itself is synchronous (a few renames and fsyncs); the reload and the
 * check run off the event loop, so the call is answered later
 * (op_defer) and holds the exclusive slot until then.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "audit.h"
#include "backup.h"
#include "bundle.h"
#include "carotated.h"
#include "certset.h"
#include "clock.h"
#include "config.h"
#include "op.h"
#include "dispatch.h"
#include "reply.h"
#include "fault.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "proto_limits.h"
#include "proxy.h"
#include "retained.h"
#include "ssldir.h"
#include "journal.h"
#include "swap.h"
#include "xmalloc.h"

#define ROTATE_PENDING_SHOW 20 /* pending agents named in a refusal */

/* One rotate or restore from the swap to the reply. */
struct rpc_rotate_op {
	struct carotated *cd;
	struct control_pending *pending;
	const char *call;                  /* "rotate" or "restore" */
	char backup[SWAP_ID_MAX];          /* where the previous active set went; "" none */
	char rollback_backup[SWAP_ID_MAX]; /* where the rolled-back set went */
	char expected[PKI_SHA256_HEX];     /* the leaf the proxy must serve now */
	char previous[PKI_SHA256_HEX];     /* the leaf of the previous set; "" none */
	int rolling_back;
	char failure[768]; /* why the new set was rolled back */
	uint64_t t0;       /* ms, monotonic: the request arrived */
	Carotate__V1__RotateReply *reply;
	struct audit_call *audit; /* the call's record, closed with the reply */
	int resumed;              /* finished at start-up from JOURNAL_PENDING */
};

#define PENDING_MAGIC "carotate-pending 1"

/* The swap between its swap and its reply (at most one: the call is exclusive). */
static struct rpc_rotate_op *rpc_rotate_running;

static Carotate__V1__RotateReply *rpc_rotate_reply_new(void);
static void rpc_rotate_attach(Carotate__V1__Response *, const char *, Carotate__V1__RotateReply *);
static void rpc_rotate_pending_cb(const char *, int64_t, int, void *);
static int rpc_rotate_gate(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static int rpc_rotate_sha_ok(const char *);
static int rpc_rotate_counted(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    const Carotate__V1__RotateReply *, Carotate__V1__Response *);
static int rpc_rotate_restore_gate(struct rpc_ctx *, const Carotate__V1__RestoreRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static struct rpc_rotate_op *rpc_rotate_op_new(const char *, Carotate__V1__Response *);
static void rpc_rotate_op_start(struct rpc_ctx *, struct rpc_rotate_op *);
static void rpc_rotate_op_swapped(struct rpc_rotate_op *);
static void rpc_rotate_op_reloaded(Carotate__V1__ReloadResult *, void *);
static void rpc_rotate_op_checked(int, const char *, const char *, void *);
static void rpc_rotate_op_rollback(struct rpc_rotate_op *, const char *, const char *);
static void rpc_rotate_op_reply(struct rpc_rotate_op *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void rpc_rotate_op_free(struct rpc_rotate_op *);
static void rpc_rotate_op_note(struct rpc_rotate_op *);
static void rpc_rotate_op_line(char *, size_t, const char *, const char *);
static int rpc_rotate_op_load_line(struct rpc_rotate_op *, const char *);

static Carotate__V1__RotateReply *
rpc_rotate_reply_new(void)
{
	Carotate__V1__RotateReply *r = xmalloc(sizeof(*r));

	carotate__v1__rotate_reply__init(r);
	return r;
}

static void
rpc_rotate_attach(Carotate__V1__Response *reply, const char *call, Carotate__V1__RotateReply *r)
{
	if (strcmp(call, "restore") == 0) {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY;
		reply->restore_reply = r;
	} else {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_ROTATE_REPLY;
		reply->rotate_reply = r;
	}
}

static void
rpc_rotate_pending_cb(const char *id, int64_t last_seen, int delivered, void *arg)
{
	Carotate__V1__RotateReply *r = arg;
	Carotate__V1__PendingAgent *p = reply_pending_agent(id, last_seen, delivered);

	r->pending_agents =
	    xreallocarray(r->pending_agents, r->n_pending_agents + 1, sizeof(*r->pending_agents));
	r->pending_agents[r->n_pending_agents++] = p;
}

/*
 * The 100 % gate (carotated(8) ROTATION): every active, non-excluded agent acknowledged
 * (or verified) the staged CA. A proxy with no active set has no agents to
 * cut off. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_gate(struct rpc_ctx *ctx, const Carotate__V1__RotateRequest *q,
    Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	struct ledger *l = ctx->cd->ledger;
	struct ledger_counts c;
	time_t now = time(NULL);
	uint64_t days = conf->active_within / 86400;

	r->gate = xstrdup(conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged");
	r->forced = q->force;
	/* Counted even when it does not apply, so that the reply agrees with report. */
	ledger_count(l, now, conf->active_within, &c);
	r->active = c.active;
	r->confirmed = conf->gate == CONFIG_GATE_VERIFIED ? c.verified : c.acknowledged;
	if (r->before == NULL)
		return 0;
	if (c.active > 0 && r->confirmed >= c.active)
		return 0;
	if (c.active > 0 && ledger_pending(l, now, conf->active_within, 0, ROTATE_PENDING_SHOW,
	                        rpc_rotate_pending_cb, r) == -1)
		log_warnx("rotate: cannot list the pending agents");
	if (q->force) {
		log_info("rotate forced below the gate (%llu of %llu active agents %s): %s",
		    (unsigned long long)r->confirmed, (unsigned long long)c.active, r->gate,
		    q->reason);
		return 0;
	}
	if (c.active == 0 && c.excluded > 0 && c.linked == c.excluded)
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "every agent is excluded (%llu of %llu): none is left to acknowledge the "
		    "staged CA (carotatectl include AGENT counts one again; rotate --force "
		    "--reason "
		    "TEXT rotates anyway)",
		    (unsigned long long)c.excluded, (unsigned long long)c.linked);
	else if (c.active == 0)
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "no agent has checked in within %llu%s: is the agent endpoint wired? "
		    "(rotate --force --reason TEXT rotates anyway)",
		    (unsigned long long)(days > 0 ? days : conf->active_within),
		    days > 0 ? "d" : "s");
	else
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "only %llu of %llu active agents (%u %%) %s the staged CA; %llu pending: "
		    "rotating now could cut them off (rotate --force --reason TEXT rotates anyway)",
		    (unsigned long long)r->confirmed, (unsigned long long)c.active,
		    (unsigned)(r->confirmed * 100 / c.active),
		    conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged",
		    (unsigned long long)(c.active - r->confirmed));
	return -1;
}

/* 64 lower-case hex digits: the only shape of a CA fingerprint a caller may send. */
static int
rpc_rotate_sha_ok(const char *s)
{
	return strlen(s) == PKI_SHA256_HEX - 1 &&
	       strspn(s, "0123456789abcdef") == PKI_SHA256_HEX - 1;
}

/*
 * The CA in new/ (read from disk just now, r->after) is the one the caller
 * expects and the one the gate counts. new/ replaced by hand without a
 * SIGHUP leaves the ledger counting the old CA: the daemon takes the new one
 * as its target (agents start from nothing: the report shows the truth) and
 * refuses. --force overrides the percentage, never this: what is counted,
 * audited and installed is one CA. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_counted(struct rpc_ctx *ctx, const Carotate__V1__RotateRequest *q,
    const Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	const char *staged = r->after->ca->sha256;
	char counted[PKI_SHA256_HEX];

	if (q->expect_ca[0] != '\0' && strcmp(q->expect_ca, staged) != 0) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged CA in %s/%s is %s, not the expected %s: nothing changed (see "
		    "carotatectl status)",
		    conf->ssl_dir, SSLDIR_STAGING, staged, q->expect_ca);
		return -1;
	}
	/* With no active set there is no gate: nobody can be cut off. */
	if (r->before == NULL)
		return 0;
	snprintf(counted, sizeof(counted), "%s", ctx->cd->staged_ca);
	if (strcmp(counted, staged) == 0)
		return 0;
	log_warnx("rotate: %s/%s holds CA %s, but the gate counted %s: it changed without "
	          "carotatectl or a SIGHUP; counting the new CA from now",
	    conf->ssl_dir, SSLDIR_STAGING, staged, counted[0] != '\0' ? counted : "none");
	agents_refresh(ctx->cd);
	reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    "the staged set in %s/%s was replaced outside carotatectl (its CA is %s; the gate "
	    "counted %s): nothing changed. Agents must now acknowledge the new CA: carotated "
	    "counts it from now (see carotatectl report)",
	    conf->ssl_dir, SSLDIR_STAGING, staged, counted[0] != '\0' ? counted : "none");
	return -1;
}

void
rpc_rotate(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RotateRequest *q = req->rotate;
	const struct config *conf = ctx->cd->conf;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_op *op;
	time_t now = time(NULL);
	X509 *ca;
	int saved, rc;

	if (q->force && q->reason[0] == '\0') {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--force needs --reason: say why the gate is overridden");
		return;
	}
	/* It goes into manifests, logs and the audit trail: one printable line. */
	if (!reply_text_ok(q->reason, 0, LIMITS_MAX_REASON)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the reason may hold up to %d printable characters", LIMITS_MAX_REASON);
		return;
	}
	if (q->expect_ca[0] != '\0' && !rpc_rotate_sha_ok(q->expect_ca)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--expect-ca takes the staged CA's SHA-256: 64 lower-case hex digits");
		return;
	}
	r = rpc_rotate_reply_new();
	r->dry_run = q->dry_run;
	r->before = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	r->after = certset_describe(conf, 1, now, &ca);
	saved = errno;
	X509_free(ca);
	rpc_rotate_attach(reply, "rotate", r);
	/* A set that cannot be read is not called incomplete: the reason is given. */
	if (r->after == NULL && saved != ENOENT) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "cannot read the staged set in %s/%s: %s", conf->ssl_dir, SSLDIR_STAGING,
		    strerror(saved));
		return;
	}
	if (r->after == NULL || r->after->server == NULL || r->after->ca == NULL ||
	    !r->after->key_present) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged set in %s/%s is incomplete%s%s%s: stage it again", conf->ssl_dir,
		    SSLDIR_STAGING, r->after != NULL && r->after->n_problems > 0 ? " (" : "",
		    r->after != NULL && r->after->n_problems > 0 ? r->after->problems[0] : "",
		    r->after != NULL && r->after->n_problems > 0 ? ")" : "");
		return;
	}
	if (r->after->n_problems > 0 && !q->force) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the staged set is not sound: %s", r->after->problems[0]);
		return;
	}
	if (rpc_rotate_counted(ctx, q, r, reply) == -1 || rpc_rotate_gate(ctx, q, r, reply) == -1)
		return;
	if (q->dry_run) {
		reply_error(reply, CAROTATE__V1__STATUS__OK,
		    "dry run: the staged set would go live%s%s",
		    r->before != NULL ? ""
		                      : " (no "
		                        "active "
		                        "set yet)",
		    r->forced ? " (forced)" : "");
		return;
	}
	op = rpc_rotate_op_new("rotate", reply);
	/* The swap checks again that new/ holds the CA counted here: nothing else goes live. */
	if ((rc = swap_rotate_ca(conf, now, q->reason[0] != '\0' ? q->reason : "rotate",
	         op->reply->after->ca->sha256, op->backup, sizeof(op->backup), op->failure,
	         sizeof(op->failure))) != 0) {
		log_warnx("rotate: %s", op->failure);
		if (rc == SWAP_STALE)
			agents_refresh(ctx->cd);
		reply_error(reply,
		    rc == SWAP_STALE ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		                     : CAROTATE__V1__STATUS__INTERNAL,
		    "%s", op->failure);
		rpc_rotate_op_free(op);
		return;
	}
	log_info("rotate: the staged set is live (server %s); the previous set is in %s",
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none: first activation)");
	rpc_rotate_op_start(ctx, op);
}

void
rpc_rotate_restore(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RestoreRequest *q = req->restore;
	const struct config *conf = ctx->cd->conf;
	char id[SWAP_ID_MAX], err[512];
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_op *op;
	time_t now = time(NULL);
	X509 *ca;

	if (q->force && q->reason[0] == '\0') {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--force needs --reason: say why agents may be cut off");
		return;
	}
	if (!reply_text_ok(q->reason, 0, LIMITS_MAX_REASON)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the reason may hold up to %d printable characters", LIMITS_MAX_REASON);
		return;
	}
	if (q->latest == (q->backup[0] != '\0')) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "name one backup, or ask for the latest");
		return;
	}
	if (q->latest) {
		if (backup_latest(conf, id, err, sizeof(err)) == -1) {
			reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND, "%s", err);
			return;
		}
		log_info(
		    "restore --latest: %s (the newest backup but those of rolled-back sets)", id);
	} else if (!backupid_valid(q->backup)) {
		/* Never echoed: it may be anything. */
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "not a backup id: backups are named certs-YYYYMMDD-HHMMSS[-N] (see "
		    "carotatectl backups)");
		return;
	} else
		snprintf(id, sizeof(id), "%s", q->backup);
	r = rpc_rotate_reply_new();
	r->dry_run = q->dry_run;
	r->restored = xstrdup(id);
	r->before = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	r->after = certset_describe_backup(conf, id, now, &ca);
	X509_free(ca);
	rpc_rotate_attach(reply, "restore", r);
	if (r->after == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND, "no backup %s in %s", id,
		    conf->ssl_dir);
		return;
	}
	if (backup_check(conf, id, err, sizeof(err)) == -1 || r->after->server == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "%s",
		    r->after->server == NULL ? "the backup has no server certificate" : err);
		return;
	}
	if (rpc_rotate_restore_gate(ctx, q, r, reply) == -1)
		return;
	if (q->dry_run) {
		reply_error(reply, CAROTATE__V1__STATUS__OK, "dry run: %s would be put back", id);
		return;
	}
	op = rpc_rotate_op_new("restore", reply);
	if (swap_restore(conf, id, now, op->backup, sizeof(op->backup), op->failure,
	        sizeof(op->failure)) == -1) {
		log_warnx("restore: %s", op->failure);
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", op->failure);
		rpc_rotate_op_free(op);
		return;
	}
	log_info("restore: %s is live again (server %s); the previous set is in %s", id,
	    op->expected, op->backup[0] != '\0' ? op->backup : "(none)");
	rpc_rotate_op_start(ctx, op);
}

/*
 * Restore's gate: agents trust exactly the bundle served now (active, staged,
 * retained CAs), so a backup whose CA is not in it (retired, or past [bundle]
 * retention) would cut every agent off. Refused unless forced with a reason;
 * a dry run says so the same way. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_restore_gate(struct rpc_ctx *ctx, const Carotate__V1__RestoreRequest *q,
    Carotate__V1__RotateReply *r, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	const char *ca = r->after->ca != NULL ? r->after->ca->sha256 : "";
	struct bundle b;
	char err[256];
	size_t i;
	int trusted = 0;

	if (bundle_derive(conf, time(NULL), &b, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "cannot derive the trust bundle: %s", err);
		return -1;
	}
	for (i = 0; i < b.n; i++)
		trusted |= strcmp(b.cas[i].sha256, ca) == 0;
	bundle_clear(&b);
	if (trusted)
		return 0;
	if (q->force) {
		r->forced = 1;
		log_info("restore of %s forced although its CA %s is not in the trust bundle: %s",
		    r->restored, ca, q->reason);
		return 0;
	}
	reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    "%s%s holds CA %s, which is not in the trust bundle agents hold (retired, or older "
	    "than [bundle] retention): restoring it would cut them off (restore --force "
	    "--reason TEXT restores anyway)",
	    q->dry_run ? "dry run: the restore would be refused: " : "", r->restored,
	    ca[0] != '\0' ? ca : "(unreadable)");
	return -1;
}

/* The call goes ahead: the op takes the reply's RotateReply (before and after are described). */
static struct rpc_rotate_op *
rpc_rotate_op_new(const char *call, Carotate__V1__Response *reply)
{
	struct rpc_rotate_op *op = xcalloc(1, sizeof(*op));
	Carotate__V1__RotateReply *r;

	r = reply->result_case == CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY
	        ? reply->restore_reply
	        : reply->rotate_reply;
	reply->rotate_reply = reply->restore_reply = NULL;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT__NOT_SET;
	op->call = call;
	op->reply = r;
	snprintf(op->expected, sizeof(op->expected), "%s", r->after->server->sha256);
	if (r->before != NULL && r->before->server != NULL)
		snprintf(op->previous, sizeof(op->previous), "%s", r->before->server->sha256);
	op->t0 = clock_ms();
	return op;
}

static void
rpc_rotate_op_start(struct rpc_ctx *ctx, struct rpc_rotate_op *op)
{
	op->cd = ctx->cd;
	op->pending = op_defer(ctx);
	op->audit = op_take_audit(ctx->cd, op->pending);
	op->reply->backup = xstrdup(op->backup);
	rpc_rotate_running = op;
	rpc_rotate_op_note(op);
	rpc_rotate_op_swapped(op);
}

/* key value, one line: control characters (none expected) become '?'. */
static void
rpc_rotate_op_line(char *buf, size_t len, const char *key, const char *value)
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
 * The set on disk changed (or was put back by a roll back): what is left to do
 * is written down, so that a stop that cuts the call short (a shutdown past its
 * bound, a crash) leaves the next start to reload, check, roll back and audit
 * it as this call, not as a change made outside carotated.
 */
static void
rpc_rotate_op_note(struct rpc_rotate_op *op)
{
	char buf[JOURNAL_PENDING_MAX], err[512] = "";

	snprintf(buf, sizeof(buf), "%s\n", PENDING_MAGIC);
	rpc_rotate_op_line(buf, sizeof(buf), "call", op->call);
	rpc_rotate_op_line(buf, sizeof(buf), "backup", op->backup[0] != '\0' ? op->backup : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "restored",
	    op->reply->restored != NULL && op->reply->restored[0] != '\0' ? op->reply->restored
	                                                                  : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "expected", op->expected);
	rpc_rotate_op_line(
	    buf, sizeof(buf), "previous", op->previous[0] != '\0' ? op->previous : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "forced", op->reply->forced ? "1" : "0");
	rpc_rotate_op_line(buf, sizeof(buf), "rolling_back", op->rolling_back ? "1" : "0");
	rpc_rotate_op_line(buf, sizeof(buf), "rollback_backup",
	    op->rollback_backup[0] != '\0' ? op->rollback_backup : "-");
	rpc_rotate_op_line(buf, sizeof(buf), "failure", op->failure[0] != '\0' ? op->failure : "-");
	if ((op->audit != NULL && audit_call_save(op->audit, buf, sizeof(buf)) == -1) ||
	    journal_pending_write(op->cd->conf, buf, err, sizeof(err)) == -1)
		log_warnx("%s: %s: a stop before the reply would leave it unaudited", op->call,
		    err[0] != '\0' ? err : "the record does not fit");
}

/* The set on disk changed: the bundle follows, then the proxy is told. */
static void
rpc_rotate_op_swapped(struct rpc_rotate_op *op)
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
	proxy_reload(op->cd, rpc_rotate_op_reloaded, op);
}

static void
rpc_rotate_op_reloaded(Carotate__V1__ReloadResult *result, void *arg)
{
	struct rpc_rotate_op *op = arg;
	const struct config *conf = op->cd->conf;

	fault_point("rotate-after-reload");
	if (op->reply->reload != NULL)
		protobuf_c_message_free_unpacked(&op->reply->reload->base, NULL);
	op->reply->reload = result;
	proxy_check(op->cd, &conf->proxy_address, conf->proxy_server_name, op->expected,
	    conf->check_timeout, rpc_rotate_op_checked, op);
}

static void
rpc_rotate_op_checked(int ok, const char *served, const char *why, void *arg)
{
	struct rpc_rotate_op *op = arg;
	const struct config *conf = op->cd->conf;
	Carotate__V1__RotateReply *r = op->reply;
	char addr[300], **pruned = NULL, err[256];
	size_t i, npruned = 0;

	if (r->served != protobuf_c_empty_string)
		free(r->served);
	r->served = xstrdup(served);
	proxy_address_text(&conf->proxy_address, addr, sizeof(addr));
	if (op->rolling_back) {
		r->rolled_back = 1;
		if (ok)
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; rolled back: the previous set is live again and %s serves it "
			    "(the set that failed is kept in %s)",
			    op->failure, addr, op->rollback_backup);
		else
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
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
			rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
			    "%s; there was no previous set to roll back to", op->failure);
			return;
		}
		rpc_rotate_op_rollback(op, op->backup, op->previous);
		return;
	}
	r->verified = 1;
	r->rotate_ms = clock_ms() - op->t0;
	if (backup_prune(conf, &pruned, &npruned, err, sizeof(err)) == -1)
		log_warnx("%s: backup retention: %s", op->call, err);
	r->pruned = pruned;
	r->n_pruned = npruned;
	for (i = 0; i < npruned; i++)
		log_info("%s: backup %s removed by the retention rule (keep %u)", op->call,
		    pruned[i], conf->backups_keep);
	log_info("%s: %s serves %s (%llu ms)", op->call, addr, op->expected,
	    (unsigned long long)r->rotate_ms);
	rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__OK, "%s serves the new certificate%s%s", addr,
	    op->backup[0] != '\0' ? "; the previous set is in " : "", op->backup);
}

/* Puts backup id back (the set that was live before this call), then reloads and checks again. */
static void
rpc_rotate_op_rollback(struct rpc_rotate_op *op, const char *id, const char *previous)
{
	char err[512];

	op->rolling_back = 1;
	snprintf(op->expected, sizeof(op->expected), "%s", previous);
	if (swap_restore_as(op->cd->conf, id, time(NULL), 1, op->rollback_backup,
	        sizeof(op->rollback_backup), err, sizeof(err)) == -1) {
		log_warnx("%s: roll back to %s: %s", op->call, id, err);
		rpc_rotate_op_reply(op, CAROTATE__V1__STATUS__INTERNAL,
		    "%s; putting %s back failed too (%s): restore it by hand (carotatectl "
		    "restore %s)",
		    op->failure, id, err, id);
		return;
	}
	log_info("%s: rolled back to %s; the set that failed is in %s", op->call, id,
	    op->rollback_backup);
	rpc_rotate_op_note(op);
	rpc_rotate_op_swapped(op);
}

static void
rpc_rotate_op_reply(struct rpc_rotate_op *op, Carotate__V1__Status status, const char *fmt, ...)
{
	Carotate__V1__Response *reply = reply_new();
	Carotate__V1__RotateReply *r = op->reply;
	const struct config *conf = op->cd->conf;
	time_t now = time(NULL);
	struct bundle b;
	char err[256];
	va_list ap;
	char msg[2048];
	X509 *ca;
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
	if (r->after != NULL)
		protobuf_c_message_free_unpacked(&r->after->base, NULL);
	r->after = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	if (bundle_derive(conf, now, &b, err, sizeof(err)) == 0)
		r->bundle = bundle_describe(&b, ssldir_published(conf, b.pem, b.pem_len));
	bundle_clear(&b);
	agents_check_canary(op->cd);
	reply_error(reply, status, "%s", msg);
	rpc_rotate_attach(reply, op->call, r);
	op->reply = NULL;
	audit_call_end(op->audit, reply);
	op->audit = NULL;
	/* Recorded: nothing is left for a next start to finish. */
	if (journal_pending_remove(conf, err, sizeof(err)) == -1)
		log_warnx("%s: %s", op->call, err);
	rpc_rotate_running = NULL;
	op->cd->resuming = 0;
	op_finish(op->cd, op->pending, reply);
	rpc_rotate_op_free(op);
}

static void
rpc_rotate_op_free(struct rpc_rotate_op *op)
{
	if (op->reply != NULL)
		protobuf_c_message_free_unpacked(&op->reply->base, NULL);
	audit_call_free(op->audit);
	free(op);
}

/*
 * Shutdown outlasted its bound (job_kill_all and proxy_abandon_all ran): the
 * client is told, nothing is audited, and JOURNAL_PENDING stays for the next
 * start, which finishes the call and records it.
 */
void
rpc_rotate_abandon(void)
{
	struct rpc_rotate_op *op = rpc_rotate_running;
	Carotate__V1__Response *reply;

	if (op == NULL)
		return;
	rpc_rotate_running = NULL;
	log_warnx("%s: stopping before it finished: the next start reloads, checks and "
	          "audits it",
	    op->call);
	if (op->pending != NULL) {
		reply = reply_new();
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "%s: carotated is stopping before the proxy check ended; the set on disk "
		    "changed (backup %s), and the next start reloads, checks (rolls back if "
		    "need be) and audits it",
		    op->call, op->backup[0] != '\0' ? op->backup : "none");
		op_complete(op->cd, op->pending, reply);
	}
	rpc_rotate_op_free(op);
}

/* One line of JOURNAL_PENDING; the audit record's lines are audit_call_load's. */
static int
rpc_rotate_op_load_line(struct rpc_rotate_op *op, const char *line)
{
	const char *v = strchr(line, ' ');
	size_t k;

	if (v == NULL || strncmp(line, "audit.", 6) == 0)
		return 0;
	k = (size_t)(v++ - line);
	if (k == 4 && strncmp(line, "call", 4) == 0)
		op->call = strcmp(v, "restore") == 0 ? "restore" : "rotate";
	else if (k == 6 && strncmp(line, "backup", 6) == 0 && backupid_valid(v))
		snprintf(op->backup, sizeof(op->backup), "%s", v);
	else if (k == 8 && strncmp(line, "restored", 8) == 0 && backupid_valid(v))
		op->reply->restored = xstrdup(v);
	else if (k == 8 && strncmp(line, "expected", 8) == 0 && rpc_rotate_sha_ok(v))
		snprintf(op->expected, sizeof(op->expected), "%s", v);
	else if (k == 8 && strncmp(line, "previous", 8) == 0 && rpc_rotate_sha_ok(v))
		snprintf(op->previous, sizeof(op->previous), "%s", v);
	else if (k == 6 && strncmp(line, "forced", 6) == 0)
		op->reply->forced = strcmp(v, "1") == 0;
	else if (k == 12 && strncmp(line, "rolling_back", 12) == 0)
		op->rolling_back = strcmp(v, "1") == 0;
	else if (k == 15 && strncmp(line, "rollback_backup", 15) == 0 && backupid_valid(v))
		snprintf(op->rollback_backup, sizeof(op->rollback_backup), "%s", v);
	else if (k == 7 && strncmp(line, "failure", 7) == 0 && strcmp(v, "-") != 0)
		snprintf(op->failure, sizeof(op->failure), "%s", v);
	return 0;
}

int
rpc_rotate_resume(struct carotated *cd)
{
	char *text = NULL, *copy, *line, *save = NULL, err[512];
	struct rpc_rotate_op *op;
	int r;

	if ((r = journal_pending_read(cd->conf, &text, err, sizeof(err))) <= 0) {
		if (r == -1)
			log_warnx("%s", err);
		return r;
	}
	op = xcalloc(1, sizeof(*op));
	op->cd = cd;
	op->call = "rotate";
	op->reply = rpc_rotate_reply_new();
	op->resumed = 1;
	op->t0 = clock_ms();
	copy = xstrdup(text);
	line = strtok_r(copy, "\n", &save);
	if (line == NULL || strcmp(line, PENDING_MAGIC) != 0)
		op->expected[0] = '\0';
	else
		while ((line = strtok_r(NULL, "\n", &save)) != NULL)
			rpc_rotate_op_load_line(op, line);
	free(copy);
	op->audit = audit_call_load(cd, text);
	free(text);
	if (op->expected[0] == '\0') {
		log_warnx("%s/%s: not a record of an unfinished rotate or restore; removed",
		    cd->conf->state_dir, JOURNAL_PENDING);
		rpc_rotate_op_free(op);
		if (journal_pending_remove(cd->conf, err, sizeof(err)) == -1)
			log_warnx("%s", err);
		return -1;
	}
	op->reply->backup = xstrdup(op->backup);
	cd->busy = op->call;
	cd->resuming = 1;
	rpc_rotate_running = op;
	log_info("%s: carotated stopped before it had answered; finishing it now: reload, "
	         "TLS check%s, audit",
	    op->call, op->rolling_back ? " of the set rolled back to" : ", roll back if need be");
	rpc_rotate_op_swapped(op);
	return 1;
}
