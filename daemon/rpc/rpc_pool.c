/*
 * The owner of a pool's applies (engine/pool.h): each is recorded in the
 * pool's audit chain as a "pool-apply" event of this member, with the sets it
 * served before and after; and the pool's mutation lock around every
 * state-changing call (rpc_pool_begin, from dispatch_run).
 */
#include <stdio.h>
#include <stdlib.h>

#include "audit.h"
#include "carotated.h"
#include "dispatch.h"
#include "ledger.h"
#include "pool.h"
#include "reply.h"
#include "xmalloc.h"

#define RPC_POOL_STATE_MAX (LEDGER_AUDIT_MAX_STATE + 1)

static void *rpc_pool_apply_begin(struct carotated *);
static void rpc_pool_apply_end(
    struct carotated *, void *, const struct ledger_pool_state *, int, const char *);

static const struct pool_hooks rpc_pool_hooks = {
	rpc_pool_apply_begin,
	rpc_pool_apply_end,
};

/* What this member served before the apply, as the audit records say it. */
static void *
rpc_pool_apply_begin(struct carotated *cd)
{
	char *before = xmalloc(RPC_POOL_STATE_MAX);

	audit_fingerprint(cd->conf, before, RPC_POOL_STATE_MAX);
	return before;
}

static void
rpc_pool_apply_end(
    struct carotated *cd, void *token, const struct ledger_pool_state *st, int ok, const char *what)
{
	char *before = token;

	if (st != NULL)
		audit_event(cd, "pool-apply",
		    ok ? CAROTATE__V1__STATUS__OK : CAROTATE__V1__STATUS__INTERNAL, before, NULL,
		    "generation %llu (%s on member %s): %s", (unsigned long long)st->generation,
		    st->call, st->member, what);
	free(before);
}

void
rpc_pool_init(struct carotated *cd)
{
	pool_init(cd, &rpc_pool_hooks);
}

int
rpc_pool_begin(struct carotated *cd, const char *call, Carotate__V1__Response *reply)
{
	Carotate__V1__Status status;
	char msg[1024];

	if (pool_mutation_begin(cd, call, &status, msg, sizeof(msg)) == 0)
		return 0;
	reply_error(reply, status, "%s", msg);
	return -1;
}
