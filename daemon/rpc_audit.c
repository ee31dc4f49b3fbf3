/* The audit call: one page of the audit log, newest first, and on request the chain checked. */
#include <stdio.h>
#include <stdlib.h>

#include "agents.h"
#include "carotated.h"
#include "dispatch.h"
#include "ledger.h"
#include "log.h"
#include "xmalloc.h"

#define AUDIT_DEFAULT_LIMIT 50
#define AUDIT_MAX_LIMIT     1000

static void rpc_audit_record(const struct ledger_audit *, void *);

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
	r->records = xreallocarray(r->records, r->n_records + 1, sizeof(*r->records));
	r->records[r->n_records++] = rec;
}

/*
 * The whole chain is walked for verify: records are few (one per admin call),
 * and a check that skipped some would prove nothing about them.
 */
void
rpc_audit(struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const Carotate__V1__AuditRequest *q = req->audit;
	struct ledger *l = agents_ledger(ctx->cd);
	uint32_t limit = q->limit != 0 ? q->limit : AUDIT_DEFAULT_LIMIT;
	Carotate__V1__AuditReply *r;
	char problem[LEDGER_AUDIT_MAX_DETAIL];
	uint64_t broken_at;
	int v;

	if (limit > AUDIT_MAX_LIMIT) {
		dispatch_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "a page holds at most %d audit records", AUDIT_MAX_LIMIT);
		return;
	}
	if (l == NULL) {
		dispatch_error(reply, CAROTATE__V1__STATUS__INTERNAL, "the ledger is not open");
		return;
	}
	r = xmalloc(sizeof(*r));
	carotate__v1__audit_reply__init(r);
	reply->result_case = CAROTATE__V1__RESPONSE__RESULT_AUDIT_REPLY;
	reply->audit_reply = r;
	if (ledger_audit_count(l, &r->total) == -1 ||
	    ledger_audit_list(l, q->offset, limit, rpc_audit_record, r) == -1) {
		dispatch_error(reply, CAROTATE__V1__STATUS__INTERNAL, "cannot read the audit log");
		return;
	}
	if (!q->verify)
		return;
	r->verify = 1;
	if ((v = ledger_audit_verify(l, &broken_at, problem, sizeof(problem))) == -1) {
		dispatch_error(reply, CAROTATE__V1__STATUS__INTERNAL, "%s", problem);
		return;
	}
	r->intact = v == 1;
	r->broken_at = broken_at;
	r->problem = xstrdup(problem);
	if (!r->intact)
		log_warnx("audit: the chain is broken at record %llu: %s",
		    (unsigned long long)broken_at, problem);
}
