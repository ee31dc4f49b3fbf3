/* Calls that answer later (op.h). */
#include <stddef.h>

#include <event2/event.h>

#include "carotated.h"
#include "dispatch.h"
#include "member.h"
#include "op.h"
#include "pool.h"
#include "reply.h"

struct control_pending *
op_defer(struct rpc_ctx *ctx)
{
	return ctx->cd->defer->defer(ctx);
}

struct audit_call *
op_take_audit(struct carotated *cd, struct control_pending *pending)
{
	return cd->defer->take_audit(pending);
}

void
op_complete(struct carotated *cd, struct control_pending *pending, Carotate__V1__Response *reply)
{
	if (pending != NULL)
		cd->defer->complete(pending, reply);
	else
		reply_free(reply);
}

void
op_finish(struct carotated *cd, struct control_pending *pending, Carotate__V1__Response *reply)
{
	op_complete(cd, pending, reply);
	cd->busy = NULL;
	pool_mutation_end(cd);
	member_beat(cd); /* the pool sees what this member serves now */
	/* A SIGTERM waited for this call (carotated_signal); its reply is flushed at exit. */
	if (cd->stopping && cd->base != NULL)
		event_base_loopbreak(cd->base);
}
