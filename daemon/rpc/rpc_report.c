/* report, exclude, include, forget: what the ledger knows, read from committed state only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "carotated.h"
#include "config.h"
#include "dispatch.h"
#include "reply.h"
#include "ledger.h"
#include "log.h"
#include "valid.h"
#include "xmalloc.h"

#define REPORT_DEFAULT_LIMIT 100
#define REPORT_MAX_LIMIT     10000
#define REPORT_MAX_WINDOW    (3650ull * 86400)

static void rpc_report_pending(const char *, int64_t, int, void *);
static void rpc_report_holding(const char *, uint64_t, void *);
static void rpc_report_agent(struct ledger *, const char *, Carotate__V1__Response *, int);
static int rpc_report_member_ok(const char *);
static void rpc_report_member_cb(const char *, const struct ledger_counts *, void *);
static void rpc_report_known_cb(const struct ledger_member *, void *);
static int rpc_report_members(struct rpc_ctx *, const Carotate__V1__ReportRequest *,
    Carotate__V1__ReportReply *, Carotate__V1__Response *);

/* rpc_report_members' callbacks' state: the reply, the one member asked for ("" all). */
struct rpc_report_split {
	Carotate__V1__ReportReply *r;
	const char *only;
	int known; /* only is a member of the pool */
};

/* Rounded down: 99.99 % is 99, never 100. */
static uint32_t
rpc_report_percent(uint64_t part, uint64_t whole)
{
	return whole == 0 ? 0 : (uint32_t)(part * 100 / whole);
}

static void
rpc_report_pending(const char *id, int64_t last_seen, int delivered, void *arg)
{
	Carotate__V1__ReportReply *r = arg;
	Carotate__V1__PendingAgent *p = reply_pending_agent(id, last_seen, delivered);

	r->pending_agents =
	    xreallocarray(r->pending_agents, r->n_pending_agents + 1, sizeof(*r->pending_agents));
	r->pending_agents[r->n_pending_agents++] = p;
}

static void
rpc_report_holding(const char *bundle_id, uint64_t n, void *arg)
{
	Carotate__V1__ReportReply *r = arg;
	Carotate__V1__BundleHolding *h = xmalloc(sizeof(*h));

	carotate__v1__bundle_holding__init(h);
	h->bundle_id = xstrdup(bundle_id);
	h->agents = n;
	h->current = bundle_id[0] != '\0' && strcmp(bundle_id, r->bundle_id) == 0;
	r->holdings = xreallocarray(r->holdings, r->n_holdings + 1, sizeof(*r->holdings));
	r->holdings[r->n_holdings++] = h;
}

/* A member's name as [ledger] member spells it: 1 to 63 of A-Z a-z 0-9 . _ - */
static int
rpc_report_member_ok(const char *s)
{
	size_t n = strnlen(s, LEDGER_MAX_MEMBER + 1);

	return n >= 1 && n <= LEDGER_MAX_MEMBER &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                 "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static void
rpc_report_member_cb(const char *member, const struct ledger_counts *c, void *arg)
{
	struct rpc_report_split *s = arg;
	Carotate__V1__ReportReply *r = s->r;
	Carotate__V1__MemberCounts *m;

	if (s->only[0] != '\0' && strcmp(member, s->only) != 0)
		return;
	m = xmalloc(sizeof(*m));
	carotate__v1__member_counts__init(m);
	m->member = xstrdup(member);
	m->active = c->active;
	m->acknowledged = c->acknowledged;
	m->verified = c->verified;
	m->pending = c->pending;
	m->linked = c->linked;
	m->excluded = c->excluded;
	r->members = xreallocarray(r->members, r->n_members + 1, sizeof(*r->members));
	r->members[r->n_members++] = m;
}

static void
rpc_report_known_cb(const struct ledger_member *m, void *arg)
{
	struct rpc_report_split *s = arg;

	s->known |= strcmp(m->name, s->only) == 0;
}

/*
 * A pool's counts split by the member each agent last came through (the totals stay the
 * pool's); with q->member only that member's share, zeros for a member no agent came
 * through. Nothing for a single proxy. 0, or -1 with the error in reply.
 */
static int
rpc_report_members(struct rpc_ctx *ctx, const Carotate__V1__ReportRequest *q,
    Carotate__V1__ReportReply *r, Carotate__V1__Response *reply)
{
	struct rpc_report_split s = { .r = r, .only = q->member };
	struct ledger *l = ctx->cd->ledger;

	if (ctx->cd->conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL)
		return 0;
	if (ledger_count_members(l, r->now, r->active_within, rpc_report_member_cb, &s) == -1 ||
	    (s.only[0] != '\0' && ledger_member_list(l, rpc_report_known_cb, &s) == -1)) {
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "the pool's ledger cannot split the counts by member now (carotatectl check "
		    "shows the ledger's state)");
		return -1;
	}
	if (s.only[0] == '\0' || r->n_members > 0)
		return 0;
	if (!s.known) {
		reply_error(reply, CAROTATE__V1__STATUS__NOT_FOUND,
		    "no member %s in the pool (carotatectl status lists them)", s.only);
		return -1;
	}
	s.only = "";
	rpc_report_member_cb(q->member, &(struct ledger_counts){ 0 }, &s);
	return 0;
}

void
rpc_report(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__ReportRequest *q = req->report;
	const struct config *conf = ctx->cd->conf;
	struct ledger *l = ctx->cd->ledger;
	uint64_t window = q->active_within != 0 ? q->active_within : conf->active_within;
	uint32_t limit = q->limit != 0 ? q->limit : REPORT_DEFAULT_LIMIT;
	Carotate__V1__ReportReply *r;
	struct ledger_counts c;
	time_t now = time(NULL);

	if (window > REPORT_MAX_WINDOW || limit > REPORT_MAX_LIMIT) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "the active window is at most 3650 days and a page at most %d agents",
		    REPORT_MAX_LIMIT);
		return;
	}
	if (q->member[0] != '\0' && !rpc_report_member_ok(q->member)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a member's name is 1 to %d of A-Z a-z 0-9 . _ -", LEDGER_MAX_MEMBER);
		return;
	}
	if (q->member[0] != '\0' && conf->ledger_backend != CONFIG_LEDGER_POSTGRESQL) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "report --member is for a pool: this proxy keeps its own %s ledger, every "
		    "agent counted here (carotatectl report shows them)",
		    ledger_backend_name(l));
		return;
	}
	if (ledger_count(l, now, window, &c) == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "the %s ledger cannot count the agents now: no report rather than a wrong one "
		    "(carotatectl check shows the ledger's state)",
		    ledger_backend_name(l));
		return;
	}
	r = xmalloc(sizeof(*r));
	carotate__v1__report_reply__init(r);
	r->now = now;
	r->active_within = window;
	r->staged_ca = xstrdup(ctx->cd->staged_ca);
	r->bundle_id = xstrdup(ctx->cd->bundle_id);
	r->gate = xstrdup(conf->gate == CONFIG_GATE_VERIFIED ? "verified" : "acknowledged");
	r->linked = c.linked;
	r->active = c.active;
	r->acknowledged = c.acknowledged;
	r->verified = c.verified;
	r->pending = c.pending;
	r->inactive_lacking = c.inactive_lacking;
	r->excluded = c.excluded;
	r->current = c.current;
	r->percent = rpc_report_percent(c.acknowledged, c.active);
	r->percent_verified = rpc_report_percent(c.verified, c.active);
	r->canary_confirmed = agents_canary_confirmed(ctx->cd);
	r->canary_check_unset = ctx->cd->conf->canary_address.host == NULL &&
	                        ctx->cd->conf->canary_address.path == NULL;
	r->never_confirmed = c.never_confirmed;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY;
	reply->report_reply = r;
	if (rpc_report_members(ctx, q, r, reply) == -1)
		return;
	if (r->staged_ca[0] == '\0' && ledger_holdings(l, now, window, rpc_report_holding, r) == -1)
		reply_ledger_error(reply, l, "read the ledger");
	else if (q->pending &&
	         ledger_pending(l, now, window, q->offset, limit, rpc_report_pending, r) == -1)
		reply_ledger_error(reply, l, "read the ledger");
}

/* Answers with the agent as the ledger now has it. */
static void
rpc_report_agent(struct ledger *l, const char *id, Carotate__V1__Response *reply, int exclude)
{
	Carotate__V1__AgentReply *a;
	struct ledger_agent info;

	if (ledger_get(l, id, &info) != LEDGER_OK) {
		reply_ledger_error(reply, l, "read the ledger");
		return;
	}
	a = xmalloc(sizeof(*a));
	carotate__v1__agent_reply__init(a);
	a->agent = xstrdup(info.id);
	a->excluded = info.excluded;
	a->reason = xstrdup(info.reason);
	a->last_seen = info.last_seen;
	reply->result_case = exclude ? CAROTATE__V1__RESPONSE__RESULT_EXCLUDE_REPLY
	                             : CAROTATE__V1__RESPONSE__RESULT_INCLUDE_REPLY;
	if (exclude)
		reply->exclude_reply = a;
	else
		reply->include_reply = a;
}

/* exclude and include: one small transaction each, durable before the answer. */
static void
rpc_report_exclusion(
    struct rpc_ctx *ctx, const char *id, const char *reason, Carotate__V1__Response *reply)
{
	struct ledger *l = ctx->cd->ledger;
	enum ledger_result r = LEDGER_ERROR;

	if (!valid_agent_id(id, strlen(id))) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "agent ids are 1 to %d of A-Z a-z 0-9 . _ -", LIMITS_MAX_AGENT_ID);
		return;
	}
	if (reason != NULL && !reply_text_ok(reason, 1, LEDGER_MAX_REASON)) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a reason is required: 1 to %d printable characters", LEDGER_MAX_REASON);
		return;
	}
	if (ledger_begin(l) == 0) {
		r = ledger_end(
		    l, reason != NULL ? ledger_exclude(l, id, reason) : ledger_include(l, id));
	}
	if (r == LEDGER_UNKNOWN_AGENT) {
		reply_error(
		    reply, CAROTATE__V1__STATUS__NOT_FOUND, "no agent %s in the ledger", id);
		return;
	}
	if (r != LEDGER_OK) {
		reply_ledger_error(reply, l, "update the ledger");
		return;
	}
	log_info("agent %s %s by uid %ld%s%s", id, reason != NULL ? "excluded" : "included",
	    (long)(ctx->peer != NULL ? ctx->peer->uid : 0), reason != NULL ? ": " : "",
	    reason != NULL ? reason : "");
	agents_metrics_dirty(ctx->cd);
	rpc_report_agent(l, id, reply, reason != NULL);
}

void
rpc_report_exclude(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	rpc_report_exclusion(ctx, req->exclude->agent, req->exclude->reason, reply);
}

void
rpc_report_include(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	rpc_report_exclusion(ctx, req->include->agent, NULL, reply);
}

/* forget AGENT, or forget --never-confirmed --older-than D: one transaction, durable first. */
void
rpc_report_forget(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__ForgetRequest *q = req->forget;
	struct ledger *l = ctx->cd->ledger;
	enum ledger_result r = LEDGER_ERROR;
	Carotate__V1__ForgetReply *f;
	uint64_t n = 0;
	int one = !q->never_confirmed;

	if (one ? !valid_agent_id(q->agent, strlen(q->agent)) || q->older_than != 0
	        : q->agent[0] != '\0' || q->older_than == 0 || q->older_than > REPORT_MAX_WINDOW) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "forget takes an agent id (1 to %d of A-Z a-z 0-9 . _ -), or never_confirmed "
		    "with older_than from 1 second to 3650 days",
		    LIMITS_MAX_AGENT_ID);
		return;
	}
	if (ledger_begin(l) == 0) {
		if (one) {
			r = ledger_forget(l, q->agent);
			n = r == LEDGER_OK;
		} else
			r = ledger_forget_unconfirmed(
			    l, (int64_t)time(NULL) - (int64_t)q->older_than, &n);
		r = ledger_end(l, r);
	}
	if (r == LEDGER_UNKNOWN_AGENT) {
		reply_error(
		    reply, CAROTATE__V1__STATUS__NOT_FOUND, "no agent %s in the ledger", q->agent);
		return;
	}
	if (r != LEDGER_OK) {
		reply_ledger_error(reply, l, "update the ledger");
		return;
	}
	log_info("%llu agent(s) forgotten by uid %ld%s%s", (unsigned long long)n,
	    (long)(ctx->peer != NULL ? ctx->peer->uid : 0), one ? ": " : " (never confirmed)",
	    one ? q->agent : "");
	agents_metrics_dirty(ctx->cd);
	f = xmalloc(sizeof(*f));
	carotate__v1__forget_reply__init(f);
	f->forgotten = n;
	f->agent = xstrdup(q->agent);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_FORGET_REPLY;
	reply->forget_reply = f;
}
