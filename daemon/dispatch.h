/* The one table that routes every control request: {call, minimum role, phases, handler}. */
#ifndef CAROTATE_DISPATCH_H
#define CAROTATE_DISPATCH_H

#include <stddef.h>

#include "acl.h"
#include "carotate.pb-c.h"

struct carotated;

#define DISPATCH_PHASE(p)  (1u << (p))
#define DISPATCH_STEADY    DISPATCH_PHASE(CAROTATE__V1__PHASE__PHASE_STEADY)
#define DISPATCH_STAGED    DISPATCH_PHASE(CAROTATE__V1__PHASE__PHASE_STAGED)
#define DISPATCH_ANY_PHASE (DISPATCH_STEADY | DISPATCH_STAGED)

/* What a handler knows of the request beyond its body. */
struct rpc_ctx {
	struct carotated *cd;
	const struct acl_peer *peer;
	enum acl_role role;
	Carotate__V1__Phase phase;
};

/* Fills reply (already initialized with status OK); every string and sub-message on the heap. */
typedef void (*dispatch_handler)(
    struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

struct dispatch_entry {
	Carotate__V1__Request__CallCase call;
	const char *name;
	enum acl_role min_role;
	unsigned phases; /* DISPATCH_* bits */
	dispatch_handler handler;
};

/* Finds the call in table, checks role and phase, then runs its handler. */
void dispatch_run(const struct dispatch_entry *table, size_t n, struct rpc_ctx *,
    const Carotate__V1__Request *, Carotate__V1__Response *);
/* dispatch_run over the daemon's own table. */
void dispatch_request(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
/* The reply's status and message (printf-style); replaces an earlier message. */
void dispatch_error(Carotate__V1__Response *, Carotate__V1__Status, const char *, ...)
    __attribute__((format(printf, 3, 4)));
/* A new reply, status OK; free it with dispatch_reply_free. */
Carotate__V1__Response *dispatch_reply_new(void);
void dispatch_reply_free(Carotate__V1__Response *);
const char *dispatch_phase_name(Carotate__V1__Phase);

/* Handlers, one file per group of calls. */
void rpc_status(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

#endif
