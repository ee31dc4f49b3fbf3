/*
 * A pool's certificate sets, shared: every mutation (generate, install,
 * discard, rotate, restore, renew) runs on one member at a time and is then
 * published as the pool's new state, which every member applies to its own
 * SSL directory through the journal, reloads its proxy for, checks over TLS
 * and records. The member that made the change answers once every live member
 * serves the new state, or puts the whole pool back and names the member that
 * failed.
 *
 * The pool's state is a generation and two server leaves (active, staged) in
 * the pool's database (ledger_pool_state); the sets themselves are sealed
 * under [ledger] pool_key (store/poolsets.h). A member learns of a new
 * generation from a notification (LISTEN) or, failing that, its poll.
 */
#ifndef CAROTATE_POOL_H
#define CAROTATE_POOL_H

#include <stddef.h>

#include "carotate.pb-c.h"
#include "ledger.h"

struct carotated;

/*
 * The owner of the applies (rpc/rpc_pool.c): how each is recorded. begin runs
 * before the disk changes and gives a token end gets back; end gets the
 * state applied (NULL: nothing was to be done, nothing to record), whether it
 * went well, and what happened.
 */
struct pool_hooks {
	void *(*begin)(struct carotated *);
	void (*end)(struct carotated *, void *token, const struct ledger_pool_state *, int ok,
	    const char *what);
};

/* Milliseconds between two polls of the pool's state: the fallback when notifications are lost. */
#define POOL_POLL_MS 1000

/*
 * A pool member at start-up, before its proxy starts: reads the pool's key,
 * and brings the SSL directory to the pool's state (the disk only: the proxy
 * is reloaded and checked from the event loop, pool_run). Nothing when the
 * ledger is not a pool's. Fatal only when the key cannot be read.
 */
void pool_init(struct carotated *, const struct pool_hooks *);
/* The event loop runs: notifications and the poll start. */
void pool_run(struct carotated *);
void pool_stop(struct carotated *);

/*
 * Before a state-changing call on a pool member: takes the pool's mutation
 * lock and checks that this member serves the pool's state (a call made from
 * a member that lags would publish an old set as new). The sets this member
 * serves are sealed into the pool first, so that the call can be undone on
 * every member. 0 to go on (nothing to do outside a pool); -1 with the refusal
 * in *status and msg: UNAVAILABLE (the lock is held elsewhere, the database does
 * not answer, this member lags) or FAILED_PRECONDITION (its sets cannot be sealed).
 */
int pool_mutation_begin(
    struct carotated *, const char *call, Carotate__V1__Status *status, char *msg, size_t msglen);

/*
 * The call ended well on this member: its sets become the pool's (the next
 * generation), and done is called once every live member serves them (OK),
 * or once the pool was put back after a member failed (INTERNAL; message
 * names the member and what the pool serves now), or when the database did
 * not take the new state (UNAVAILABLE: this member goes back to the pool's
 * sets once it answers). Outside a pool done is called at once with OK.
 * message is valid during the call only.
 */
typedef void (*pool_done_cb)(Carotate__V1__Status, const char *message, void *arg);
void pool_mutation_publish(struct carotated *, const char *call, pool_done_cb, void *arg);

/* The call is over (answered): the mutation lock goes. Quiet when not held. */
void pool_mutation_end(struct carotated *);

#endif
