/*
 * The check call: the facts a monitoring check judges (carotatectl check), gathered from the
 * store and the engine. Reads only; the thresholds are the client's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "carotated.h"
#include "certset.h"
#include "config.h"
#include "dispatch.h"
#include "ledger.h"
#include "log.h"
#include "reply.h"
#include "xmalloc.h"

/*
 * Seconds a ledger quick_check result is reused. The check reads every page of
 * the file, blocking the event loop meanwhile: 19 ms at 10,000 agents, 174 ms
 * at 100,000 (tests/bench/ledger_bench.c, 2 loaded cores), so near 2 s at a
 * million. A monitoring system polling every minute must not pay that each time.
 */
#define RPC_CHECK_LEDGER_TTL 300

static void rpc_check_sets(struct rpc_ctx *, Carotate__V1__CheckReply *, time_t);
static int rpc_check_progress(struct rpc_ctx *, Carotate__V1__CheckReply *, time_t);
static void rpc_check_ledger(struct rpc_ctx *, Carotate__V1__CheckReply *, time_t);
static int rpc_check_last_swap(struct rpc_ctx *, Carotate__V1__CheckReply *);

/*
 * What the daemon remembers between check calls, in memory only (a restart
 * starts over, which can only delay a warning, never invent one):
 * - since when the acknowledged percentage of the staged CA has not moved;
 * - the last ledger quick_check and when it ran;
 * - the newest swap found in the audit log and the newest record read.
 */
static struct {
	char staged_ca[CAROTATED_SHA256_HEX];
	uint32_t percent;
	int64_t since;
	int64_t ledger_at; /* 0: never checked */
	int ledger_ok;
	char ledger_problem[256];
	uint64_t audit_read; /* records up to this number were searched */
	int have_swap;
	struct ledger_audit swap;
} rpc_check_state;

void
rpc_check(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	Carotate__V1__CheckReply *r;
	time_t now = time(NULL);
	int progress;

	r = xmalloc(sizeof(*r));
	carotate__v1__check_reply__init(r);
	r->now = (int64_t)now;
	r->ca_warn = ctx->cd->conf->ca_warn;
	r->renew_before = ctx->cd->conf->renew_before;
	r->active_within = ctx->cd->conf->active_within;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_CHECK_REPLY;
	reply->check_reply = r;
	rpc_check_sets(ctx, r, now);
	progress = rpc_check_progress(ctx, r, now);
	rpc_check_ledger(ctx, r, now);
	if (progress == -1) {
		r->ledger_ok = 0;
		free(r->ledger_problem);
		xasprintf(&r->ledger_problem,
		    "unreadable: the %s ledger cannot count the agents (the migration's progress "
		    "is unknown)",
		    ledger_backend_name(ctx->cd->ledger));
	}
	if (rpc_check_last_swap(ctx, r) == -1)
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "cannot read the audit log");
}

/* The active set's certificates and problems; the staged set's time of staging. */
static void
rpc_check_sets(struct rpc_ctx *ctx, Carotate__V1__CheckReply *r, time_t now)
{
	Carotate__V1__CertSet *set;
	X509 *ca;

	if ((set = certset_describe(ctx->cd->conf, 0, now, &ca)) != NULL) {
		X509_free(ca);
		r->server = set->server;
		r->ca = set->ca;
		r->problems = set->problems;
		r->n_problems = set->n_problems;
		set->server = NULL;
		set->ca = NULL;
		set->problems = NULL;
		set->n_problems = 0;
		carotate__v1__cert_set__free_unpacked(set, NULL);
	}
	r->staged = ctx->phase == CAROTATE__V1__PHASE__PHASE_STAGED;
	r->staged_ca = xstrdup(ctx->cd->staged_ca);
	if (r->staged && (set = certset_describe(ctx->cd->conf, 1, now, &ca)) != NULL) {
		X509_free(ca);
		r->staged_at = set->created;
		carotate__v1__cert_set__free_unpacked(set, NULL);
	}
}

/*
 * The acknowledged percentage and since when it has not moved. A staging the daemon has not
 * seen before counts from when it was staged, or from the daemon's start when that is later
 * (what happened before the start is unknown); every change of the percentage restarts it.
 * -1 when the ledger cannot count: nothing is known, and nothing restarts.
 */
static int
rpc_check_progress(struct rpc_ctx *ctx, Carotate__V1__CheckReply *r, time_t now)
{
	struct ledger_counts c;
	struct timespec mono;
	int64_t started;

	r->canary_confirmed = agents_canary_confirmed(ctx->cd);
	r->canary_check_unset = ctx->cd->conf->canary_address.host == NULL &&
	                        ctx->cd->conf->canary_address.path == NULL;
	if (ledger_count(ctx->cd->ledger, now, ctx->cd->conf->active_within, &c) == -1)
		return -1;
	r->active = c.active;
	r->acknowledged = c.acknowledged;
	r->percent = c.active == 0 ? 0 : (uint32_t)(c.acknowledged * 100 / c.active);
	if (!r->staged || r->staged_ca[0] == '\0') {
		rpc_check_state.staged_ca[0] = '\0';
		return 0;
	}
	if (strcmp(rpc_check_state.staged_ca, r->staged_ca) != 0) {
		clock_gettime(CLOCK_MONOTONIC, &mono);
		started = (int64_t)now - (int64_t)(mono.tv_sec - ctx->cd->started.tv_sec);
		snprintf(rpc_check_state.staged_ca, sizeof(rpc_check_state.staged_ca), "%s",
		    r->staged_ca);
		rpc_check_state.percent = r->percent;
		rpc_check_state.since = r->staged_at > started ? r->staged_at : started;
	} else if (rpc_check_state.percent != r->percent) {
		rpc_check_state.percent = r->percent;
		rpc_check_state.since = (int64_t)now;
	}
	r->percent_since = rpc_check_state.since;
	return 0;
}

/* The ledger's quick_check, run again once RPC_CHECK_LEDGER_TTL has passed. */
static void
rpc_check_ledger(struct rpc_ctx *ctx, Carotate__V1__CheckReply *r, time_t now)
{
	char problem[sizeof(rpc_check_state.ledger_problem)] = "";
	int ok;

	if (rpc_check_state.ledger_at == 0 || (int64_t)now < rpc_check_state.ledger_at ||
	    (int64_t)now - rpc_check_state.ledger_at >= RPC_CHECK_LEDGER_TTL) {
		rpc_check_state.ledger_problem[0] = '\0';
		ok = ledger_quick_check(ctx->cd->ledger, problem, sizeof(problem));
		if (ok != 1) {
			log_warnx("check: ledger quick_check: %s", problem);
			/* What the client prints after "ledger ": damage found, or no answer. */
			snprintf(rpc_check_state.ledger_problem,
			    sizeof(rpc_check_state.ledger_problem), "%s: %s",
			    ok == 0 ? "damaged" : "unreadable",
			    problem[0] != '\0' ? problem : "quick_check failed");
		}
		rpc_check_state.ledger_ok = ok == 1;
		rpc_check_state.ledger_at = (int64_t)now;
	}
	r->ledger_ok = rpc_check_state.ledger_ok;
	r->ledger_problem = xstrdup(rpc_check_state.ledger_problem);
	r->ledger_checked_at = rpc_check_state.ledger_at;
}

/* The newest rotate, restore or renew that swapped sets, searching only records not seen. */
static int
rpc_check_last_swap(struct rpc_ctx *ctx, Carotate__V1__CheckReply *r)
{
	static const char *const calls[] = { "rotate", "restore", "renew" };
	Carotate__V1__CheckSwap *s;
	struct ledger_audit a;
	uint64_t head;
	int found, verified, rolled_back;

	if (ledger_audit_count(ctx->cd->ledger, &head) == -1)
		return -1;
	if (head < rpc_check_state.audit_read) { /* another ledger: a restored copy, say */
		rpc_check_state.have_swap = 0;
		rpc_check_state.audit_read = 0;
	}
	if (head > rpc_check_state.audit_read) {
		found = ledger_audit_last(ctx->cd->ledger, rpc_check_state.audit_read, calls,
		    sizeof(calls) / sizeof(calls[0]), LEDGER_AUDIT_OUTCOME_MARK, &a);
		if (found == -1)
			return -1;
		if (found == 1 && ledger_audit_outcome(a.detail, &verified, &rolled_back) == 0) {
			rpc_check_state.swap = a;
			rpc_check_state.have_swap = 1;
		}
		rpc_check_state.audit_read = head;
	}
	if (!rpc_check_state.have_swap)
		return 0;
	s = xmalloc(sizeof(*s));
	carotate__v1__check_swap__init(s);
	s->seq = rpc_check_state.swap.seq;
	s->call = xstrdup(rpc_check_state.swap.call);
	s->time = rpc_check_state.swap.time;
	s->result = xstrdup(rpc_check_state.swap.result);
	ledger_audit_outcome(rpc_check_state.swap.detail, &verified, &rolled_back);
	s->verified = verified == 1;
	s->rolled_back = rolled_back == 1;
	r->last_swap = s;
	return 0;
}
