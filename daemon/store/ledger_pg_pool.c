/*
 * The pool's shared state on PostgreSQL (ledger.h, ledger_pool_*): one row
 * that says which sets the pool's last mutation left and its generation, the
 * lock a member holds while it mutates the pool, and the notification that
 * tells the other members a new generation was written.
 *
 * Rules:
 * - A write is compare-and-set on the generation the writer read, with its
 *   NOTIFY in the same transaction: a listener hears of a generation only
 *   once it is committed, and two writers never both win.
 * - The lock is a session-level advisory lock: it outlives transactions, so
 *   a mutation can span several of them, and dies with the connection, so a
 *   member that crashed or was cut off never keeps the pool locked.
 * - Every connection LISTENs (ledger_pg_setup); after a reconnection the
 *   next ledger_pool_notified says 1, since what came meanwhile went unheard.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger.h"
#include "ledger_pg.h"
#include "log.h"

static int ledger_pg_pool_ready(struct ledger_pg *, const char *);
static int ledger_pg_pool_put_tx(struct ledger_pg *, struct ledger_pool_state *, uint64_t);
static void ledger_pg_pool_lock_args(struct ledger_pg_args *);
static PGresult *ledger_pg_pool_exec(
    struct ledger_pg *, enum ledger_pg_st, const struct ledger_pg_args *);

/* Outside a batch (its transaction is not ours to end), on a connection that answers. */
static int
ledger_pg_pool_ready(struct ledger_pg *p, const char *what)
{
	if (p->in_batch) {
		log_warnx("ledger (postgresql): %s inside a batch", what);
		return -1;
	}
	return ledger_pg_ready(p);
}

/*
 * A statement that may run again, once more on a fresh connection when the old one
 * turns out lost (a server restarted while the member was idle), as a batch's BEGIN does.
 */
static PGresult *
ledger_pg_pool_exec(struct ledger_pg *p, enum ledger_pg_st which, const struct ledger_pg_args *a)
{
	PGresult *q = ledger_pg_exec(p, which, a);

	if (q != NULL || PQstatus(p->conn) == CONNECTION_OK)
		return q;
	p->retry_at = 0;
	return ledger_pg_ready(p) == 0 ? ledger_pg_exec(p, which, a) : NULL;
}

int
ledger_pg_pool_state_get(void *self, struct ledger_pool_state *st)
{
	struct ledger_pg *p = self;
	PGresult *q;

	memset(st, 0, sizeof(*st));
	if (ledger_pg_pool_ready(p, "pool_state_get") == -1 ||
	    (q = ledger_pg_pool_exec(p, LPG_POOL_GET, NULL)) == NULL)
		return -1;
	/* No row (removed by hand): nothing was published, as far as anyone can tell. */
	if (PQntuples(q) == 1) {
		st->generation = (uint64_t)ledger_pg_int(q, 0, 0);
		snprintf(st->active, sizeof(st->active), "%s", PQgetvalue(q, 0, 1));
		snprintf(st->staged, sizeof(st->staged), "%s", PQgetvalue(q, 0, 2));
		snprintf(st->call, sizeof(st->call), "%s", PQgetvalue(q, 0, 3));
		snprintf(st->member, sizeof(st->member), "%s", PQgetvalue(q, 0, 4));
		st->written_at = ledger_pg_int(q, 0, 5);
	}
	PQclear(q);
	return 0;
}

/* Inside the put's transaction: 1 written and notified, 0 the generation moved on, -1. */
static int
ledger_pg_pool_put_tx(struct ledger_pg *p, struct ledger_pool_state *st, uint64_t expect)
{
	struct ledger_pg_args a = { 0 }, n = { 0 };
	char gen[24];
	PGresult *q;
	int r;

	if (ledger_pg_run(p, LPG_POOL_SEED, NULL) == -1)
		return -1;
	ledger_pg_arg_int(&a, (int64_t)expect);
	ledger_pg_arg_text(&a, st->active);
	ledger_pg_arg_text(&a, st->staged);
	ledger_pg_arg_text(&a, st->call);
	ledger_pg_arg_text(&a, p->member);
	if ((q = ledger_pg_exec(p, LPG_POOL_PUT, &a)) == NULL)
		return -1;
	if ((r = PQntuples(q) == 1) == 1) {
		st->generation = (uint64_t)ledger_pg_int(q, 0, 0);
		st->written_at = ledger_pg_int(q, 0, 1);
	}
	PQclear(q);
	if (r == 0)
		return 0;
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)st->generation);
	ledger_pg_arg_text(&n, gen);
	return ledger_pg_run(p, LPG_POOL_NOTIFY, &n) == -1 ? -1 : 1;
}

int
ledger_pg_pool_state_put(void *self, struct ledger_pool_state *st, uint64_t expect)
{
	struct ledger_pg *p = self;
	struct ledger_pool_state was = *st;
	int r;

	if (p->in_batch) {
		log_warnx("ledger (postgresql): pool_state_put inside a batch");
		return -1;
	}
	if (ledger_pg_begin_tx(p) == -1)
		return -1;
	r = ledger_pg_pool_put_tx(p, st, expect);
	if (r == 1 && ledger_pg_run(p, LPG_COMMIT, NULL) == -1)
		r = -1;
	if (r != 1) {
		if (p->up && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			ledger_pg_run(p, LPG_ROLLBACK, NULL);
		*st = was;
		return r;
	}
	snprintf(st->member, sizeof(st->member), "%s", p->member);
	log_info("ledger (postgresql): pool generation %llu written (%s)",
	    (unsigned long long)st->generation, st->call);
	return 1;
}

static void
ledger_pg_pool_lock_args(struct ledger_pg_args *a)
{
	ledger_pg_arg_int(a, LEDGER_PG_LOCK_NS);
	ledger_pg_arg_int(a, LEDGER_PG_LOCK_POOL);
}

int
ledger_pg_pool_lock(void *self)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int r;

	if (ledger_pg_pool_ready(p, "pool_lock") == -1)
		return -1;
	ledger_pg_pool_lock_args(&a);
	/* Taking it on a new connection is safe: the lost one's lock went with it. */
	if ((q = ledger_pg_pool_exec(p, LPG_POOL_LOCK, &a)) == NULL)
		return -1;
	r = PQntuples(q) == 1 && ledger_pg_int(q, 0, 0) == 1;
	PQclear(q);
	return r;
}

/* Never connects: a lost connection took the lock with it. */
void
ledger_pg_pool_unlock(void *self)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };

	if (!p->up || PQstatus(p->conn) != CONNECTION_OK)
		return;
	ledger_pg_pool_lock_args(&a);
	ledger_pg_run(p, LPG_POOL_UNLOCK, &a);
}

int
ledger_pg_pool_socket(void *self)
{
	struct ledger_pg *p = self;

	if (!p->up || PQstatus(p->conn) != CONNECTION_OK)
		return -1;
	return PQsocket(p->conn);
}

/*
 * Reads what the socket holds (without blocking) and drains libpq's queue, which
 * also holds what other calls read while their statements ran.
 */
int
ledger_pg_pool_notified(void *self)
{
	struct ledger_pg *p = self;
	PGnotify *n;
	int got = 0;

	if (ledger_pg_pool_ready(p, "pool_notified") == -1)
		return -1;
	if (PQconsumeInput(p->conn) != 1 || PQstatus(p->conn) != CONNECTION_OK) {
		ledger_pg_lost(p);
		return -1;
	}
	while ((n = PQnotifies(p->conn)) != NULL) {
		if (strcmp(n->relname, LEDGER_PG_POOL_CHANNEL) == 0)
			got = 1;
		PQfreemem(n);
	}
	if (p->pool_missed) {
		p->pool_missed = 0;
		got = 1;
	}
	return got;
}
