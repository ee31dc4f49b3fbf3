/* The audit call: one page of the audit log, newest first, and on request the chain checked. */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "agents.h"
#include "audit.h"
#include "carotated.h"
#include "clock.h"
#include "op.h"
#include "dispatch.h"
#include "reply.h"
#include "ledger.h"
#include "log.h"
#include "xmalloc.h"

#define AUDIT_DEFAULT_LIMIT 50
#define AUDIT_MAX_LIMIT     1000

/*
 * The chain is checked a slice at a time, at most about AUDIT_SLICE_MS of the
 * event loop per turn for all the checks under way together, one after the
 * other: a log of a million records takes seconds to walk, and the other
 * clients and the agents must not wait for it, however many checks readers
 * start. A check that ends within its first slice is answered at once, a
 * longer one later (op_defer).
 */
#define AUDIT_SLICE_MS      5
#define AUDIT_SLICE_RECORDS 256 /* records between looks at the clock */

/* A check of the chain that outlasted its first slice. */
struct rpc_audit_walk {
	struct carotated *cd;
	struct control_pending *pending;
	Carotate__V1__Response *reply; /* the page, already read */
	struct ledger_audit_walk walk;
	TAILQ_ENTRY(rpc_audit_walk) entry;
};

static TAILQ_HEAD(, rpc_audit_walk) rpc_audit_walks = TAILQ_HEAD_INITIALIZER(rpc_audit_walks);
static struct event *rpc_audit_walk_ev; /* the next slice, of the first walk in line */

static void rpc_audit_record(const struct ledger_audit *, void *);
static int rpc_audit_slice(struct ledger *, struct ledger_audit_walk *, Carotate__V1__Response *);
static void rpc_audit_walk_next(evutil_socket_t, short, void *);
static void rpc_audit_walk_schedule(void);
static void rpc_audit_walk_finish(struct rpc_audit_walk *);

static void
rpc_audit_record(const struct ledger_audit *a, void *arg)
{
	Carotate__V1__AuditReply *r = arg;
	Carotate__V1__AuditRecord *rec = xmalloc(sizeof(*rec));

	carotate__v1__audit_record__init(rec);
	rec->seq = a->seq;
	rec->time = a->time;
	rec->uid = a->uid;
	rec->user = xstrdup(a->user);
	rec->pid = a->pid;
	rec->call = xstrdup(a->call);
	rec->result = xstrdup(a->result);
	rec->detail = xstrdup(a->detail);
	rec->before = xstrdup(a->before);
	rec->after = xstrdup(a->after);
	rec->prev_hash = xstrdup(a->prev_hash);
	rec->hash = xstrdup(a->hash);
	rec->count = audit_count(a->detail);
	r->records = xreallocarray(r->records, r->n_records + 1, sizeof(*r->records));
	r->records[r->n_records++] = rec;
}

/*
 * The whole chain is walked for verify: a check that skipped some records
 * would prove nothing about them.
 */
void
rpc_audit(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__AuditRequest *q = req->audit;
	struct ledger *l = ctx->cd->ledger;
	uint32_t limit = q->limit != 0 ? q->limit : AUDIT_DEFAULT_LIMIT;
	Carotate__V1__AuditReply *r;
	struct ledger_audit_walk walk;
	struct rpc_audit_walk *op;

	if (limit > AUDIT_MAX_LIMIT) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a page holds at most %d audit records", AUDIT_MAX_LIMIT);
		return;
	}
	if (l == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "the ledger is not open");
		return;
	}
	r = xmalloc(sizeof(*r));
	carotate__v1__audit_reply__init(r);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY;
	reply->audit_reply = r;
	if (ledger_audit_count(l, &r->total) == -1 ||
	    ledger_audit_list(l, q->offset, limit, rpc_audit_record, r) == -1) {
		reply_ledger_error(reply, l, "read the audit log");
		return;
	}
	if (!q->verify)
		return;
	r->verify = 1;
	ledger_audit_walk_init(&walk);
	if (rpc_audit_slice(l, &walk, reply) != 2)
		return;
	/* The page moves to a reply of the call's own, sent when the walk ends. */
	op = xcalloc(1, sizeof(*op));
	op->cd = ctx->cd;
	op->walk = walk;
	op->reply = reply_new();
	op->reply->result_case = reply->result_case;
	op->reply->audit_reply = r;
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT__NOT_SET;
	reply->audit_reply = NULL;
	if (rpc_audit_walk_ev == NULL &&
	    (rpc_audit_walk_ev = evtimer_new(ctx->cd->base, rpc_audit_walk_next, NULL)) == NULL)
		fatalx("%s: evtimer_new", __func__);
	op->pending = op_defer(ctx);
	TAILQ_INSERT_TAIL(&rpc_audit_walks, op, entry);
	rpc_audit_walk_schedule();
}

/* Walks on for one slice: 2 when records remain, else the reply's verdict is filled in. */
static int
rpc_audit_slice(struct ledger *l, struct ledger_audit_walk *walk, Carotate__V1__Response *reply)
{
	Carotate__V1__AuditReply *r = reply->audit_reply;
	char problem[LEDGER_AUDIT_MAX_DETAIL];
	long long until = clock_ms() + AUDIT_SLICE_MS;
	int v;

	while ((v = ledger_audit_verify_step(
	            l, walk, AUDIT_SLICE_RECORDS, problem, sizeof(problem))) == 2)
		if (clock_ms() >= until)
			return 2;
	if (v == -1) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", problem);
		return v;
	}
	r->intact = v == 1;
	r->broken_at = v == 0 ? walk->next : 0;
	r->problem = xstrdup(problem);
	if (!r->intact)
		log_warnx("audit: the chain is broken at record %llu: %s",
		    (unsigned long long)r->broken_at, problem);
	return v;
}

/* One slice of the first walk in line, which then goes to the back of the line. */
static void
rpc_audit_walk_next(evutil_socket_t fd, short events, void *arg)
{
	struct rpc_audit_walk *op = TAILQ_FIRST(&rpc_audit_walks);

	if (op == NULL)
		return;
	TAILQ_REMOVE(&rpc_audit_walks, op, entry);
	if (rpc_audit_slice(op->cd->ledger, &op->walk, op->reply) == 2)
		TAILQ_INSERT_TAIL(&rpc_audit_walks, op, entry);
	else
		rpc_audit_walk_finish(op);
	rpc_audit_walk_schedule();
}

/* A zero timeout, not event_active: the loop polls for I/O before each slice. */
static void
rpc_audit_walk_schedule(void)
{
	const struct timeval now = { 0, 0 };

	if (!TAILQ_EMPTY(&rpc_audit_walks) && !evtimer_pending(rpc_audit_walk_ev, NULL))
		evtimer_add(rpc_audit_walk_ev, &now);
}

/* op is out of the line: answers its client (if still there). */
static void
rpc_audit_walk_finish(struct rpc_audit_walk *op)
{
	op_complete(op->cd, op->pending, op->reply);
	free(op);
}

void
rpc_audit_abandon(void)
{
	struct rpc_audit_walk *op;

	while ((op = TAILQ_FIRST(&rpc_audit_walks)) != NULL) {
		TAILQ_REMOVE(&rpc_audit_walks, op, entry);
		reply_error(op->reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "audit: interrupted: carotated is shutting down");
		rpc_audit_walk_finish(op);
	}
	if (rpc_audit_walk_ev != NULL)
		event_free(rpc_audit_walk_ev);
	rpc_audit_walk_ev = NULL;
}
