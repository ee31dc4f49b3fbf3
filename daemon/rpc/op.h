/*
 * Calls that answer later (after a job, a reload, a long walk of the audit chain). The
 * control connection stops reading until the answer; handlers reach it through the
 * context (cd->defer, set by control_start), so that no handler includes control.h.
 */
#ifndef CAROTATE_OP_H
#define CAROTATE_OP_H

#include "carotate.pb-c.h"

struct audit_call;
struct carotated;
struct control_pending;
struct rpc_ctx;

/* The call will be answered by op_complete or op_finish; the connection waits. */
struct control_pending *op_defer(struct rpc_ctx *);
/* Takes the deferred call's audit record: the caller closes it, op_complete records nothing. */
struct audit_call *op_take_audit(struct carotated *, struct control_pending *);
/*
 * Closes the call's audit record with reply and sends reply, if the client is still
 * connected (pending NULL: no client; reply is freed).
 */
void op_complete(struct carotated *, struct control_pending *, Carotate__V1__Response *);
/* The end of an exclusive call: op_complete, then the next state change may start. */
void op_finish(struct carotated *, struct control_pending *, Carotate__V1__Response *);

#endif
