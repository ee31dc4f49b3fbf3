/* The one table that routes every control request: {call, minimum role, phases, handler}. */
#ifndef CAROTATE_DISPATCH_H
#define CAROTATE_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "acl.h"
#include "carotate.pb-c.h"

struct audit_call;
struct carotated;
struct config;

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
	int phase_errno; /* why the phase could not be read; 0 when it was */
	void *conn;      /* the control connection, for op_defer() */
	int deferred;    /* the handler will answer later, through op_complete() */
	/* An admin call's audit record, closed when its reply is sent (op_defer takes it). */
	struct audit_call *audit;
	/* watch_generation() before anything was read for the request; 0: cache nothing. */
	uint64_t watch_gen;
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
	unsigned flags; /* DISPATCH_EXCLUSIVE */
};

/* The call changes state: one at a time; cd->busy names it until it ends. */
#define DISPATCH_EXCLUSIVE 0x1

/*
 * Finds the call in table, checks role and phase, then runs its handler.
 * Every call whose entry needs ACL_ADMIN is audited, refused or not: the
 * record opens here and closes when the reply is sent (here, or in
 * op_complete for a deferred reply). A new admin entry needs nothing more.
 */
void dispatch_run(const struct dispatch_entry *table, size_t n, struct rpc_ctx *,
    const Carotate__V1__Request *, Carotate__V1__Response *);
/* The entry that would run, or NULL with the refusal in reply: every check, no handler. */
const struct dispatch_entry *dispatch_check(const struct dispatch_entry *table, size_t n,
    struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
/* dispatch_check over the daemon's own table. */
const struct dispatch_entry *dispatch_check_request(
    struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
/* dispatch_run over the daemon's own table. */
void dispatch_request(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

/* Handlers, one file per group of calls. */
void rpc_status(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_stage_generate(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_stage_install(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_audit(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
/* At shutdown: answers every audit --verify still walking the chain. */
void rpc_audit_abandon(void);
void rpc_stage_discard(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
/* At shutdown, after job_kill_all and proxy_abandon_all: ends a generate, install or discard. */
void rpc_stage_abandon(void);
/*
 * At start-up, once the ledger is open and before audit_start: a generate,
 * install or discard a stop cut short before its record was committed is
 * recorded from its intent note as its caller's (audit_call_settle), so that
 * audit_adopt finds nothing changed outside carotated. 1 when recorded.
 */
int rpc_stage_resume(struct carotated *);
/*
 * At shutdown, after job_kill_all and proxy_abandon_all: tells the client of a
 * rotate or restore cut short; its record stays for rpc_rotate_resume.
 */
void rpc_rotate_abandon(void);
/*
 * At start-up, with the event loop ready: finishes (reload, TLS check, roll
 * back, audit as the call it was) a rotate or restore a stop cut short after
 * its swap. 1 when one was resumed, 0 none, -1 (logged) when its record was
 * unusable.
 */
int rpc_rotate_resume(struct carotated *);
/*
 * A pool member at start-up, once the ledger is open and before audit_start:
 * the SSL directory brought to the pool's sets, each apply audited
 * (engine/pool.h). Nothing outside a pool.
 */
void rpc_pool_init(struct carotated *);
/*
 * Before a state-changing call in a pool: the pool's mutation lock, and this
 * member in step with the pool (pool_mutation_begin). 0 to go on, -1 with the
 * refusal in reply. pool_mutation_end (op_finish, dispatch_run) lets it go.
 */
int rpc_pool_begin(struct carotated *, const char *call, Carotate__V1__Response *);
void rpc_report(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_report_exclude(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_report_include(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_report_forget(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_join_token_create(
    struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_join_token_list(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_join_token_revoke(
    struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_rotate(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_rotate_restore(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_rotate_renew(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

/* check: the facts carotatectl check judges (certificates, migration, ledger, last swap). */
void rpc_check(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

void rpc_backups(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);
void rpc_backups_retire(struct rpc_ctx *, const Carotate__V1__Request *, Carotate__V1__Response *);

#endif
