/*
 * rotate and restore: their argument checks, the 100 % gate and restore's
 * gate, and the reply. The swap, reload, TLS check and roll back are the
 * rotation engine's (engine/rotation.c); it reports through rpc_rotate_hooks,
 * which answer the client, close the call's audit record and let the next
 * state change in (op_finish).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "audit.h"
#include "backup.h"
#include "bundle.h"
#include "cakeys.h"
#include "carotated.h"
#include "certjob.h"
#include "certset.h"
#include "config.h"
#include "op.h"
#include "digest.h"
#include "dispatch.h"
#include "reply.h"
#include "rotation.h"
#include "ledger.h"
#include "log.h"
#include "pki.h"
#include "pool.h"
#include "proto_limits.h"
#include "proxy.h"
#include "ssldir.h"
#include "swap.h"
#include "xmalloc.h"

#define ROTATE_PENDING_SHOW 20 /* pending agents named in a refusal */

/* The members whose heartbeat is stale, named in a refusal. */
struct rpc_rotate_stale {
	int64_t limit; /* seconds: older than this is stale */
	size_t n;
	char names[512];
};

/* A rotate or restore the engine carries out: what its answer needs. */
struct rpc_rotate_call {
	struct rpc_ctx *ctx; /* while the handler runs, for rpc_rotate_begin */
	struct carotated *cd;
	struct control_pending *pending;
	struct audit_call *audit; /* the call's record, closed with the reply */
	Carotate__V1__RotateReply *reply;
	/* The engine's outcome, kept while a pool's members take the new set. */
	const char *call;
	Carotate__V1__Status status;
	char *message;
	int would_be; /* renew --dry-run: the leaf that would go live is the answer */
};

static Carotate__V1__RotateReply *rpc_rotate_reply_new(void);
static void rpc_rotate_attach(Carotate__V1__Response *, const char *, Carotate__V1__RotateReply *);
static void rpc_rotate_pending_cb(const char *, int64_t, int, void *);
static int rpc_rotate_gate(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static void rpc_rotate_stale_cb(const struct ledger_member *, void *);
static int rpc_rotate_members_gate(
    struct rpc_ctx *, const Carotate__V1__RotateRequest *, Carotate__V1__Response *);
static int rpc_rotate_counted(struct rpc_ctx *, const Carotate__V1__RotateRequest *,
    const Carotate__V1__RotateReply *, Carotate__V1__Response *);
static int rpc_rotate_restore_gate(struct rpc_ctx *, const Carotate__V1__RestoreRequest *,
    Carotate__V1__RotateReply *, Carotate__V1__Response *);
static struct rpc_rotate_call *rpc_rotate_call_new(struct rpc_ctx *, Carotate__V1__Response *);
static void rpc_rotate_call_free(struct rpc_rotate_call *);
static void rpc_rotate_begin(void *);
static int rpc_rotate_save(void *, char *, size_t);
static void *rpc_rotate_load(struct carotated *, const char *);
static void rpc_rotate_take(Carotate__V1__RotateReply *, struct rotation_result *);
static void rpc_rotate_describe(struct carotated *, Carotate__V1__RotateReply *);
static void rpc_rotate_done(struct rotation_result *, void *);
static void rpc_rotate_pooled(Carotate__V1__Status, const char *, void *);
static void rpc_rotate_finish(struct rpc_rotate_call *, const char *);
static int rpc_rotate_renew_check(const Carotate__V1__RenewRequest *, Carotate__V1__Response *);
static int rpc_rotate_renew_due(const struct config *, const Carotate__V1__RenewRequest *,
    Carotate__V1__RotateReply *, time_t, Carotate__V1__Response *);
static struct certjob *rpc_rotate_renew_job(struct rpc_ctx *, const Carotate__V1__RenewRequest *,
    const Carotate__V1__RotateReply *, X509 *, Carotate__V1__Response *);
static void rpc_rotate_would_be(Carotate__V1__RotateReply *, const char *);

static const struct rotation_hooks rpc_rotate_hooks = {
	rpc_rotate_begin,
	rpc_rotate_save,
	rpc_rotate_load,
	rpc_rotate_done,
};

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
	} else if (strcmp(call, "renew") == 0) {
		reply->result_case = CAROTATE__V1__RESPONSE__RESULT_RENEW_REPLY;
		reply->renew_reply = r;
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
 * cut off. A ledger that cannot count (a pool member cut off from its database) refuses
 * even a forced rotate: nobody can tell whom it would cut off, and --force accepts a
 * shortfall the operator saw, not one nobody knows. 0 to go on, -1 with the refusal in reply.
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
	int counted;

	r->gate = xstrdup(conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged");
	r->forced = q->force;
	/* Counted even when it does not apply, so that the reply agrees with report. */
	counted = ledger_count(l, now, conf->active_within, &c) == 0;
	r->active = c.active;
	r->confirmed = conf->gate == CONFIG_GATE_VERIFIED ? c.verified : c.acknowledged;
	if (r->before == NULL)
		return 0;
	if (!counted) {
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "the %s ledger cannot count the agents now, so the gate cannot tell which of "
		    "them the rotation would cut off; nothing was rotated, not even with --force "
		    "(rotate again once the ledger answers: carotatectl check shows it)",
		    ledger_backend_name(l));
		return -1;
	}
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

static void
rpc_rotate_stale_cb(const struct ledger_member *m, void *arg)
{
	struct rpc_rotate_stale *s = arg;
	size_t len = strlen(s->names);

	if (m->heartbeat_age <= s->limit)
		return;
	if (s->n++ < 8)
		snprintf(s->names + len, sizeof(s->names) - len, "%s%s (heartbeat %llds ago)",
		    len > 0 ? ", " : "", m->name, (long long)m->heartbeat_age);
}

/*
 * A pool rotates only when every member is alive: a member whose heartbeat is older than
 * three [ledger] heartbeat intervals may be down, and would not take the new set. --force
 * with a reason overrides it (a member gone for good); a pool whose members cannot be read
 * refuses even then, as the count gate does. 0 to go on, -1 with the refusal in reply.
 */
static int
rpc_rotate_members_gate(
    struct rpc_ctx *ctx, const Carotate__V1__RotateRequest *q, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	struct rpc_rotate_stale s = { 0 };

	if (conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL)
		return 0;
	s.limit = config_stale_after(conf->ledger_heartbeat);
	if (ledger_member_list(ctx->cd->ledger, rpc_rotate_stale_cb, &s) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "cannot read the pool's members now, so nobody can tell whether each of them "
		    "would take the new set; nothing was rotated, not even with --force (rotate "
		    "again once the ledger answers: carotatectl check shows it)");
		return -1;
	}
	if (s.n == 0)
		return 0;
	if (q->force) {
		log_info("rotate forced with %zu stale pool member%s: %s: %s", s.n,
		    s.n == 1 ? "" : "s", s.names, q->reason);
		return 0;
	}
	reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
	    "%zu member%s of the pool %s stale: %s%s; a heartbeat older than %llds (three "
	    "[ledger] heartbeat intervals) means the member may be down and would not take the "
	    "new set (start it again, or rotate --force --reason TEXT rotates anyway)",
	    s.n, s.n == 1 ? "" : "s", s.n == 1 ? "is" : "are", s.names, s.n > 8 ? ", ..." : "",
	    (long long)s.limit);
	return -1;
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
	struct rotation_req rq;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_call *c;
	time_t now = time(NULL);
	char err[768];
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
	if (q->expect_ca[0] != '\0' && !digest_sha256_hex_ok(q->expect_ca)) {
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
	if (rpc_rotate_counted(ctx, q, r, reply) == -1 ||
	    rpc_rotate_members_gate(ctx, q, reply) == -1 || rpc_rotate_gate(ctx, q, r, reply) == -1)
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
	c = rpc_rotate_call_new(ctx, reply);
	rq.call = "rotate";
	rq.expected = c->reply->after->server->sha256;
	rq.previous = c->reply->before != NULL && c->reply->before->server != NULL
	                  ? c->reply->before->server->sha256
	                  : "";
	rq.restored = "";
	rq.reason = q->reason[0] != '\0' ? q->reason : "rotate";
	rq.ca = c->reply->after->ca->sha256;
	rq.forced = c->reply->forced;
	rq.now = now;
	if ((rc = rotation_rotate(ctx->cd, &rq, &rpc_rotate_hooks, c, err, sizeof(err))) != 0) {
		reply_error(reply,
		    rc == SWAP_STALE ? CAROTATE__V1__STATUS__FAILED_PRECONDITION
		                     : CAROTATE__V1__STATUS__INTERNAL,
		    "%s", err);
		rpc_rotate_call_free(c);
	}
}

void
rpc_rotate_restore(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RestoreRequest *q = req->restore;
	const struct config *conf = ctx->cd->conf;
	char id[SWAP_ID_MAX], err[512], failure[768];
	struct rotation_req rq;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_call *c;
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
	c = rpc_rotate_call_new(ctx, reply);
	rq.call = "restore";
	rq.expected = c->reply->after->server->sha256;
	rq.previous = c->reply->before != NULL && c->reply->before->server != NULL
	                  ? c->reply->before->server->sha256
	                  : "";
	rq.restored = id;
	rq.reason = "";
	rq.ca = "";
	rq.forced = c->reply->forced;
	rq.now = now;
	if (rotation_restore(ctx->cd, &rq, &rpc_rotate_hooks, c, failure, sizeof(failure)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", failure);
		rpc_rotate_call_free(c);
	}
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

/* The call goes ahead: it takes the reply's RotateReply (before and after are described). */
static struct rpc_rotate_call *
rpc_rotate_call_new(struct rpc_ctx *ctx, Carotate__V1__Response *reply)
{
	struct rpc_rotate_call *c = xcalloc(1, sizeof(*c));

	c->ctx = ctx;
	c->cd = ctx->cd;
	c->reply = reply->result_case == CAROTATE__V1__RESPONSE__RESULT_RESTORE_REPLY
	               ? reply->restore_reply
	           : reply->result_case == CAROTATE__V1__RESPONSE__RESULT_RENEW_REPLY
	               ? reply->renew_reply
	               : reply->rotate_reply;
	reply->rotate_reply = reply->restore_reply = reply->renew_reply = NULL;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT__NOT_SET;
	return c;
}

static void
rpc_rotate_call_free(struct rpc_rotate_call *c)
{
	if (c->reply != NULL)
		protobuf_c_message_free_unpacked(&c->reply->base, NULL);
	audit_call_free(c->audit);
	free(c->message);
	free(c);
}

/*
 * The call goes on: the answer waits for the check; the record goes into the
 * note. renew is told twice (its job started, then its swap): once is enough.
 */
static void
rpc_rotate_begin(void *arg)
{
	struct rpc_rotate_call *c = arg;

	if (c->ctx == NULL)
		return;
	c->pending = op_defer(c->ctx);
	c->audit = op_take_audit(c->cd, c->pending);
	c->ctx = NULL;
}

/*
 * The record into the note. The swap writes the note before its commit, while
 * the handler runs: then the record is still the context's (begin takes it).
 */
static int
rpc_rotate_save(void *arg, char *buf, size_t len)
{
	struct rpc_rotate_call *c = arg;
	const struct audit_call *ac = c->audit != NULL ? c->audit
	                              : c->ctx != NULL ? c->ctx->audit
	                                               : NULL;

	return ac != NULL ? audit_call_save(ac, buf, len) : 0;
}

/* A call a stop cut short: no client waits; its record is the one the note kept. */
static void *
rpc_rotate_load(struct carotated *cd, const char *text)
{
	struct rpc_rotate_call *c = xcalloc(1, sizeof(*c));

	c->cd = cd;
	c->reply = rpc_rotate_reply_new();
	c->audit = audit_call_load(cd, text);
	return c;
}

/* The engine's outcome into the reply, which takes its heap parts. */
static void
rpc_rotate_take(Carotate__V1__RotateReply *r, struct rotation_result *res)
{
	if (r->backup != protobuf_c_empty_string)
		free(r->backup);
	r->backup = xstrdup(res->backup);
	if (r->restored[0] == '\0' && res->restored[0] != '\0') {
		if (r->restored != protobuf_c_empty_string)
			free(r->restored);
		r->restored = xstrdup(res->restored);
	}
	r->forced = res->forced;
	if (res->reload != NULL) {
		if (r->reload != NULL)
			protobuf_c_message_free_unpacked(&r->reload->base, NULL);
		r->reload = res->reload;
	}
	if (res->served != NULL) {
		if (r->served != protobuf_c_empty_string)
			free(r->served);
		r->served = res->served;
	}
	r->verified = res->verified;
	r->rolled_back = res->rolled_back;
	r->rotate_ms = res->rotate_ms;
	r->pruned = res->pruned;
	r->n_pruned = res->n_pruned;
	res->reload = NULL;
	res->served = NULL;
	res->pruned = NULL;
	res->n_pruned = 0;
}

/* The set now live and the bundle published, described for the reply. */
static void
rpc_rotate_describe(struct carotated *cd, Carotate__V1__RotateReply *r)
{
	const struct config *conf = cd->conf;
	time_t now = time(NULL);
	struct bundle b;
	char err[256];
	X509 *ca;

	if (r->after != NULL)
		protobuf_c_message_free_unpacked(&r->after->base, NULL);
	r->after = certset_describe(conf, 0, now, &ca);
	X509_free(ca);
	if (bundle_derive(conf, now, &b, err, sizeof(err)) == 0)
		r->bundle = bundle_describe(&b, ssldir_published(conf, b.pem, b.pem_len));
	bundle_clear(&b);
}

/*
 * The answer: the audit record closed, the note dropped, then the next state
 * change may start. A stop (res->abandoned) only tells the client: the note
 * and its record stay for the next start.
 */
static void
rpc_rotate_done(struct rotation_result *res, void *arg)
{
	struct rpc_rotate_call *c = arg;
	Carotate__V1__Response *reply;

	rpc_rotate_take(c->reply, res);
	if (res->abandoned) {
		reply = reply_new();
		reply_error(reply, res->status, "%s", res->message);
		op_complete(c->cd, c->pending, reply);
		rpc_rotate_call_free(c);
		return;
	}
	c->call = res->call;
	c->status = res->status;
	c->message = xstrdup(res->message);
	if (res->would_be != NULL) {
		rpc_rotate_would_be(c->reply, res->would_be);
		c->would_be = 1;
		rpc_rotate_finish(c, NULL);
		return;
	}
	/* In a pool, the set live here becomes the pool's: every member takes it first. */
	if (res->status == CAROTATE__V1__STATUS__OK) {
		pool_mutation_publish(c->cd, res->call, rpc_rotate_pooled, c);
		return;
	}
	rpc_rotate_finish(c, NULL);
}

/* Every member serves the new set (OK), or the pool was put back, which message says. */
static void
rpc_rotate_pooled(Carotate__V1__Status status, const char *message, void *arg)
{
	struct rpc_rotate_call *c = arg;

	if (status != CAROTATE__V1__STATUS__OK) {
		c->status = status;
		c->reply->rolled_back = 1;
		c->reply->verified = 0;
	}
	rpc_rotate_finish(c, status == CAROTATE__V1__STATUS__OK ? NULL : message);
}

/*
 * The answer: the audit record closed, the note dropped, then the next state
 * change may start. pool_failure (NULL: none) replaces the engine's message.
 */
static void
rpc_rotate_finish(struct rpc_rotate_call *c, const char *pool_failure)
{
	Carotate__V1__Response *reply = reply_new();

	reply_error(reply, c->status, "%s", pool_failure != NULL ? pool_failure : c->message);
	if (!c->would_be)
		rpc_rotate_describe(c->cd, c->reply);
	agents_check_canary(c->cd);
	rpc_rotate_attach(reply, c->call, c->reply);
	c->reply = NULL;
	audit_call_end(c->audit, reply);
	c->audit = NULL;
	rotation_forget(c->cd, c->call);
	op_finish(c->cd, c->pending, reply);
	rpc_rotate_call_free(c);
}

void
rpc_rotate_abandon(void)
{
	rotation_abandon();
}

int
rpc_rotate_resume(struct carotated *cd)
{
	return rotation_resume(cd, &rpc_rotate_hooks);
}

/* Sizes and combinations, before anything is read or forked. 0, or -1 with the refusal. */
static int
rpc_rotate_renew_check(const Carotate__V1__RenewRequest *q, Carotate__V1__Response *reply)
{
	int custom = q->cert.len > 0 || q->key.len > 0 || q->chain.len > 0;

	if (custom && (q->cert.len == 0 || q->key.len == 0))
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a custom renewal needs both --cert and --key (--chain is optional)");
	if (custom && q->server_days != 0)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--server-days makes a leaf; a certificate given with --cert has its own "
		    "validity");
	if (q->server_days > PKI_MAX_DAYS)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "validity over %d days", PKI_MAX_DAYS);
	if (q->cert.len > PKI_MAX_INPUT || q->key.len > PKI_MAX_INPUT ||
	    q->chain.len > PKI_MAX_INPUT)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "each file may hold up to %d bytes", PKI_MAX_INPUT);
	if (q->if_due && q->if_expires_within != 0)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--if-due and --if-expires-within exclude each other");
	if (q->if_expires_within > (uint64_t)PKI_MAX_DAYS * 86400)
		return reply_fail(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "--if-expires-within may be up to %d days", PKI_MAX_DAYS);
	return 0;
}

/*
 * --if-expires-within (or --if-due: the daemon's [renew] before, which the
 * packaged timer uses): 1 when the active leaf outlives it (the reply says
 * until when; nothing changes), 0 when the renewal is due (or not asked about).
 */
static int
rpc_rotate_renew_due(const struct config *conf, const Carotate__V1__RenewRequest *q,
    Carotate__V1__RotateReply *r, time_t now, Carotate__V1__Response *reply)
{
	int64_t left = r->before->server->not_after - (int64_t)now;
	uint64_t within = q->if_due ? conf->renew_before : q->if_expires_within;
	char when[32];
	struct tm tm;
	time_t t = (time_t)r->before->server->not_after;

	if (within == 0 || left <= (int64_t)within)
		return 0;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	r->skipped = 1;
	reply_error(reply, CAROTATE__V1__STATUS__OK,
	    "the server certificate expires %s (in %lld days), later than %llu days from now%s: "
	    "nothing to renew",
	    when, (long long)(left / 86400), (unsigned long long)(within / 86400),
	    q->if_due ? " ([renew] before)" : "");
	return 1;
}

/*
 * The job's input: the active CA (its file, and parsed: a custom leaf must
 * chain to exactly it), and either the CA key carotated kept (generated sets)
 * or the operator's files. Whether carotated holds the CA's key is asked here;
 * the key itself is read by the engine, for the job alone. NULL with the
 * refusal in reply.
 */
static struct certjob *
rpc_rotate_renew_job(struct rpc_ctx *ctx, const Carotate__V1__RenewRequest *q,
    const Carotate__V1__RotateReply *r, X509 *ca, Carotate__V1__Response *reply)
{
	const struct config *conf = ctx->cd->conf;
	struct certjob *in = xcalloc(1, sizeof(*in));
	char err[512];
	size_t i;
	int held;

	in->install = q->cert.len > 0;
	held = cakeys_held(conf, r->before->ca->sha256, err, sizeof(err));
	if (held == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		goto fail;
	}
	if (held == 0 && !in->install) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "the active set is custom: carotated does not hold its CA's key. Renew it with "
		    "a new leaf your CA signed: carotatectl renew --cert FILE --key FILE "
		    "[--chain FILE]");
		goto fail;
	}
	if (ssldir_read_ca(conf, 0, &in->ca, &in->ca_len) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "cannot read the active CA: %s",
		    strerror(errno));
		goto fail;
	}
	in->active_ca = X509_dup(ca);
	in->profile.server_days = q->server_days != 0 ? q->server_days : PKI_DEFAULT_SERVER_DAYS;
	if (in->install) {
		in->cert = xmemdupz(q->cert.data, q->cert.len);
		in->cert_len = q->cert.len;
		in->key = xmemdupz(q->key.data, q->key.len);
		in->key_len = q->key.len;
		in->chain = xmemdupz(q->chain.data, q->chain.len);
		in->chain_len = q->chain.len;
		return in;
	}
	if (conf->n_proxy_names == 0) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "renew keeps the names of [proxy] names, and none are set");
		goto fail;
	}
	in->sans = xcalloc(conf->n_proxy_names, sizeof(char *));
	for (i = 0; i < conf->n_proxy_names; i++)
		xasprintf(&in->sans[i], "%s:%s", config_is_ip(conf->proxy_names[i]) ? "IP" : "DNS",
		    conf->proxy_names[i]);
	in->profile.n_sans = conf->n_proxy_names;
	return in;
fail:
	certjob_free(in);
	return NULL;
}

/* A dry run: the leaf the job made (or checked) stands where the live one would go. */
static void
rpc_rotate_would_be(Carotate__V1__RotateReply *r, const char *pem)
{
	STACK_OF(X509) * certs;
	char why[128];

	if (r->after == NULL || (certs = pki_certs_from_pem(
	                             (const uint8_t *)pem, strlen(pem), why, sizeof(why))) == NULL)
		return;
	if (r->after->server != NULL)
		protobuf_c_message_free_unpacked(&r->after->server->base, NULL);
	r->after->server = xmalloc(sizeof(*r->after->server));
	carotate__v1__cert_info__init(r->after->server);
	pki_describe(sk_X509_value(certs, 0), r->after->server);
	sk_X509_pop_free(certs, X509_free);
}

void
rpc_rotate_renew(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__RenewRequest *q = req->renew;
	const struct config *conf = ctx->cd->conf;
	struct rotation_req rq;
	Carotate__V1__RotateReply *r;
	struct rpc_rotate_call *c;
	struct certjob *in;
	time_t now = time(NULL);
	char err[768];
	X509 *ca = NULL, *after_ca;

	if (rpc_rotate_renew_check(q, reply) == -1)
		return;
	r = rpc_rotate_reply_new();
	r->dry_run = q->dry_run;
	r->before = certset_describe(conf, 0, now, &ca);
	rpc_rotate_attach(reply, "renew", r);
	if (r->before == NULL || r->before->ca == NULL || r->before->server == NULL || ca == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION,
		    "there is no complete active set in %s to renew", conf->ssl_dir);
		goto out;
	}
	if (rpc_rotate_renew_due(conf, q, r, now, reply) == 1 ||
	    (in = rpc_rotate_renew_job(ctx, q, r, ca, reply)) == NULL)
		goto out;
	r->after = certset_describe(conf, 0, now, &after_ca);
	X509_free(after_ca);
	c = rpc_rotate_call_new(ctx, reply);
	rq.call = "renew";
	rq.expected = "";
	rq.previous = c->reply->before->server->sha256;
	rq.restored = "";
	rq.reason = "renew";
	rq.ca = c->reply->before->ca->sha256;
	rq.origin = c->reply->before->origin;
	rq.dry_run = q->dry_run;
	rq.forced = 0;
	rq.now = now;
	if (rotation_renew(ctx->cd, &rq, in, &rpc_rotate_hooks, c, err, sizeof(err)) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", err);
		rpc_rotate_call_free(c);
	}
out:
	X509_free(ca);
}
