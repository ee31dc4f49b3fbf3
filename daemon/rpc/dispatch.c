/*
 * Request routing. Every call is looked up in one table; the role and phase
 * checks happen here, before any handler runs. A call missing from the table
 * is refused.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "audit.h"
#include "carotated.h"
#include "config.h"
#include "dispatch.h"
#include "ledger.h"
#include "log.h"
#include "member.h"
#include "pool.h"
#include "reply.h"
#include "xmalloc.h"

/*
 * Handler names: a call's handler lives in rpc_<group>.c and is named
 * rpc_<group>_<call>, <call> being the row's name with '-' as '_' and the
 * group's own word dropped from its front: "generate" in rpc_stage.c is
 * rpc_stage_generate, "join-token-create" in rpc_join.c is
 * rpc_join_token_create, and the call that names its group ("status",
 * "rotate", "backups") is rpc_<group> itself. Statics in those files carry the
 * same rpc_<group>_ prefix, so no name there can be mistaken for a function of
 * swap.c, audit.c or stage's engine.
 */
static const struct dispatch_entry dispatch_table[] = {
	{ CAROTATE__V1__REQUEST__CALL_STATUS, "status", ACL_READER, DISPATCH_ANY_PHASE, rpc_status,
	    0 },
	{ CAROTATE__V1__REQUEST__CALL_GENERATE, "generate", ACL_ADMIN, DISPATCH_STEADY,
	    rpc_stage_generate, DISPATCH_EXCLUSIVE },
	{ CAROTATE__V1__REQUEST__CALL_INSTALL, "install", ACL_ADMIN, DISPATCH_STEADY,
	    rpc_stage_install, DISPATCH_EXCLUSIVE },
	{ CAROTATE__V1__REQUEST__CALL_REPORT, "report", ACL_READER, DISPATCH_ANY_PHASE, rpc_report,
	    0 },
	{ CAROTATE__V1__REQUEST__CALL_EXCLUDE, "exclude", ACL_ADMIN, DISPATCH_ANY_PHASE,
	    rpc_report_exclude, 0 },
	{ CAROTATE__V1__REQUEST__CALL_INCLUDE, "include", ACL_ADMIN, DISPATCH_ANY_PHASE,
	    rpc_report_include, 0 },
	{ CAROTATE__V1__REQUEST__CALL_FORGET, "forget", ACL_ADMIN, DISPATCH_ANY_PHASE,
	    rpc_report_forget, 0 },
	{ CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_CREATE, "join-token-create", ACL_ADMIN,
	    DISPATCH_ANY_PHASE, rpc_join_token_create, 0 },
	{ CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_LIST, "join-token-list", ACL_ADMIN,
	    DISPATCH_ANY_PHASE, rpc_join_token_list, 0 },
	{ CAROTATE__V1__REQUEST__CALL_JOIN_TOKEN_REVOKE, "join-token-revoke", ACL_ADMIN,
	    DISPATCH_ANY_PHASE, rpc_join_token_revoke, 0 },
	{ CAROTATE__V1__REQUEST__CALL_DISCARD, "discard", ACL_ADMIN, DISPATCH_STAGED,
	    rpc_stage_discard, DISPATCH_EXCLUSIVE },
	{ CAROTATE__V1__REQUEST__CALL_LIST_BACKUPS, "backups", ACL_READER, DISPATCH_ANY_PHASE,
	    rpc_backups, 0 },
	{ CAROTATE__V1__REQUEST__CALL_RETIRE, "retire", ACL_ADMIN, DISPATCH_STEADY,
	    rpc_backups_retire, DISPATCH_EXCLUSIVE },
	{ CAROTATE__V1__REQUEST__CALL_ROTATE, "rotate", ACL_ADMIN, DISPATCH_STAGED, rpc_rotate,
	    DISPATCH_EXCLUSIVE },
	{ CAROTATE__V1__REQUEST__CALL_RESTORE, "restore", ACL_ADMIN, DISPATCH_ANY_PHASE,
	    rpc_rotate_restore, DISPATCH_EXCLUSIVE },
	/* No agent gate: the CA and the bundle stay; steady only, so no staged CA is counted. */
	{ CAROTATE__V1__REQUEST__CALL_RENEW, "renew", ACL_ADMIN, DISPATCH_STEADY, rpc_rotate_renew,
	    DISPATCH_EXCLUSIVE },
	/*
	 * Readers may read the audit log: it says who changed what, which every
	 * member of the socket group may know (carotated(8) PRIVILEGES AND ROLES: the group may
	 * read).
	 */
	{ CAROTATE__V1__REQUEST__CALL_AUDIT, "audit", ACL_READER, DISPATCH_ANY_PHASE, rpc_audit,
	    0 },
	/* Monitoring: readers, since a Nagios or Icinga user needs no more. */
	{ CAROTATE__V1__REQUEST__CALL_CHECK, "check", ACL_READER, DISPATCH_ANY_PHASE, rpc_check,
	    0 },
};

static const struct dispatch_entry *dispatch_lookup(
    const struct dispatch_entry *, size_t, Carotate__V1__Request__CallCase);
static void dispatch_audit_end(struct rpc_ctx *, const Carotate__V1__Response *);
static const char *dispatch_role_group(const struct rpc_ctx *, enum acl_role);

/* The group that grants role: what a refused caller must join. */
static const char *
dispatch_role_group(const struct rpc_ctx *ctx, enum acl_role role)
{
	return role >= ACL_ADMIN ? ctx->cd->conf->admin_group : ctx->cd->conf->socket_group;
}

static const struct dispatch_entry *
dispatch_lookup(const struct dispatch_entry *table, size_t n, Carotate__V1__Request__CallCase call)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (table[i].call == call)
			return &table[i];
	return NULL;
}

const struct dispatch_entry *
dispatch_check(const struct dispatch_entry *table, size_t n, struct rpc_ctx *ctx,
    const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const struct dispatch_entry *e;

	if (req->call_case == CAROTATE__V1__REQUEST__CALL__NOT_SET) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT, "request names no call");
		return NULL;
	}
	if ((e = dispatch_lookup(table, n, req->call_case)) == NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__INVALID_ARGUMENT,
		    "call %d is not supported by carotated %s", (int)req->call_case,
		    CAROTATE_VERSION);
		return NULL;
	}
	if (ctx->role < e->min_role) {
		reply_error(reply, CAROTATE__V1__STATUS__PERMISSION_DENIED,
		    "permission denied: %s needs the %s role: members of group %s have it "
		    "(usermod -aG %s USER, then log in again)",
		    e->name, acl_role_name(e->min_role), dispatch_role_group(ctx, e->min_role),
		    dispatch_role_group(ctx, e->min_role));
		return NULL;
	}
	/* A call that depends on the phase is not decided on a guess. */
	if (e->phases != DISPATCH_ANY_PHASE && ctx->phase_errno != 0) {
		reply_error(reply, CAROTATE__V1__STATUS__INTERNAL,
		    "%s: cannot read the SSL directory %s: %s", e->name, ctx->cd->conf->ssl_dir,
		    strerror(ctx->phase_errno));
		return NULL;
	}
	if ((e->phases & DISPATCH_PHASE(ctx->phase)) == 0) {
		reply_error(reply, CAROTATE__V1__STATUS__FAILED_PRECONDITION, "%s: %s", e->name,
		    ctx->phase == CAROTATE__V1__PHASE__PHASE_STAGED
		        ? "a new set is already staged; rotate it or discard it first"
		        : "nothing is staged");
		return NULL;
	}
	/* A pool member cut off from the pool's ledger changes nothing the others would not see. */
	if (e->min_role >= ACL_ADMIN && ctx->cd->ledger != NULL &&
	    ledger_probe(ctx->cd->ledger) == -1) {
		reply_ledger_error(reply, ctx->cd->ledger, e->name);
		return NULL;
	}
	if ((e->flags & DISPATCH_EXCLUSIVE) && ctx->cd->busy != NULL) {
		reply_error(reply, CAROTATE__V1__STATUS__UNAVAILABLE,
		    "%s is in progress; try again when it has finished", ctx->cd->busy);
		return NULL;
	}
	return e;
}

void
dispatch_run(const struct dispatch_entry *table, size_t n, struct rpc_ctx *ctx,
    const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	const struct dispatch_entry *e, *found;

	/*
	 * A refused admin call is audited too, coalesced with identical ones
	 * (audit_refusal): the checks change nothing, so the sets before it are
	 * the sets after.
	 */
	found = dispatch_lookup(table, n, req->call_case);
	if ((e = dispatch_check(table, n, ctx, req, reply)) == NULL ||
	    ((e->flags & DISPATCH_EXCLUSIVE) && rpc_pool_begin(ctx->cd, e->name, reply) == -1)) {
		if (found != NULL && found->min_role >= ACL_ADMIN)
			audit_refusal(ctx->cd, found->name, ctx->peer, req, reply);
		return;
	}
	if (e->min_role >= ACL_ADMIN)
		ctx->audit = audit_call_start(ctx->cd, e->name, ctx->peer, req);
	log_debug("%s: %s by uid %ld pid %ld (%s)", __func__, e->name,
	    (long)(ctx->peer ? ctx->peer->uid : 0), (long)(ctx->peer ? ctx->peer->pid : 0),
	    acl_role_name(ctx->role));
	if (e->flags & DISPATCH_EXCLUSIVE)
		ctx->cd->busy = e->name;
	e->handler(ctx, req, reply);
	if ((e->flags & DISPATCH_EXCLUSIVE) && !ctx->deferred) {
		ctx->cd->busy = NULL;
		pool_mutation_end(ctx->cd);
		member_beat(ctx->cd); /* the pool sees what this member serves now */
	}
	if (!ctx->deferred)
		dispatch_audit_end(ctx, reply);
}

/* The reply is final: close the call's audit record (if it has one). */
static void
dispatch_audit_end(struct rpc_ctx *ctx, const Carotate__V1__Response *reply)
{
	audit_call_end(ctx->audit, reply);
	ctx->audit = NULL;
}

const struct dispatch_entry *
dispatch_check_request(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	return dispatch_check(
	    dispatch_table, sizeof(dispatch_table) / sizeof(dispatch_table[0]), ctx, req, reply);
}

void
dispatch_request(
    struct rpc_ctx *ctx, const Carotate__V1__Request *req, Carotate__V1__Response *reply)
{
	dispatch_run(
	    dispatch_table, sizeof(dispatch_table) / sizeof(dispatch_table[0]), ctx, req, reply);
}
