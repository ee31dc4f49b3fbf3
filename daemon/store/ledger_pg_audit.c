/*
 * The pool's audit log on PostgreSQL: one hash chain for every member (the
 * encoding of ledger.h, ledger_audit_hash), each record naming the member
 * that wrote it. Records are numbered without a gap across members: an
 * append takes a pool-wide advisory lock before it reads the newest record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_pg.h"
#include "log.h"

#define LEDGER_PG_AUDIT_NCOLS 12
#define LEDGER_PG_AUDIT_CHUNK 10000 /* records per statement of a verification */

static int ledger_pg_audit_head(struct ledger_pg *, uint64_t *, char *);
static int ledger_pg_audit_insert(struct ledger_pg *, const struct ledger_audit *);
static int ledger_pg_audit_append_tx(struct ledger_pg *, struct ledger_audit *);
static void ledger_pg_audit_copy(const PGresult *, int, int, char *, size_t);
static void ledger_pg_audit_row(const PGresult *, int, struct ledger_audit *);
static const char *ledger_pg_audit_check(const PGresult *, int, uint64_t, const char *, char *);
static int ledger_pg_audit_read(struct ledger_pg *);
static int ledger_pg_audit_chunk(
    struct ledger_pg *, struct ledger_audit_walk *, uint32_t, char *, size_t);

/* The newest record's seq and hash; 0 and zeros for an empty log. */
static int
ledger_pg_audit_head(struct ledger_pg *p, uint64_t *seq, char *hash)
{
	PGresult *q = ledger_pg_exec(p, LPG_AUDIT_HEAD, NULL);
	int64_t s;
	int ok;

	*seq = 0;
	memcpy(hash, LEDGER_AUDIT_ZEROS, LEDGER_AUDIT_HASH_LEN + 1);
	if (q == NULL)
		return -1;
	if (PQntuples(q) == 0) {
		PQclear(q);
		return 0;
	}
	s = ledger_pg_int(q, 0, 0);
	ok = PQgetlength(q, 0, 1) == LEDGER_AUDIT_HASH_LEN && s >= 1 && s < INT64_MAX;
	if (ok) {
		*seq = (uint64_t)s;
		memcpy(hash, PQgetvalue(q, 0, 1), LEDGER_AUDIT_HASH_LEN);
	}
	PQclear(q);
	if (!ok) {
		log_warnx("ledger (postgresql): the newest audit record (seq %lld) is malformed; "
		          "nothing can be chained to it (carotatectl audit --verify)",
		    (long long)s);
		return -1;
	}
	return 0;
}

static int
ledger_pg_audit_insert(struct ledger_pg *p, const struct ledger_audit *a)
{
	struct ledger_pg_args g = { 0 };

	ledger_pg_arg_int(&g, (int64_t)a->seq);
	ledger_pg_arg_int(&g, a->time);
	ledger_pg_arg_int(&g, a->uid);
	ledger_pg_arg_text(&g, a->user);
	ledger_pg_arg_int(&g, a->pid);
	ledger_pg_arg_text(&g, a->call);
	ledger_pg_arg_text(&g, a->result);
	ledger_pg_arg_text(&g, a->detail);
	ledger_pg_arg_text(&g, a->before);
	ledger_pg_arg_text(&g, a->after);
	ledger_pg_arg_text(&g, a->prev_hash);
	ledger_pg_arg_text(&g, a->hash);
	ledger_pg_arg_text(&g, p->member);
	return ledger_pg_run(p, LPG_AUDIT_INSERT, &g);
}

/*
 * Inside an open transaction, which commits it: the lock (held to its end),
 * then the head, then the record. 0 / -1.
 */
int
ledger_pg_audit_chain(struct ledger_pg *p, struct ledger_audit *a)
{
	char head[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t seq;

	if (ledger_pg_lock(p, LEDGER_PG_LOCK_AUDIT) == -1 ||
	    ledger_pg_audit_head(p, &seq, head) == -1)
		return -1;
	a->seq = seq + 1;
	memcpy(a->prev_hash, head, sizeof(a->prev_hash));
	ledger_audit_hash(a, a->hash);
	return ledger_pg_audit_insert(p, a);
}

/* The append's own transaction: the record, then COMMIT. */
static int
ledger_pg_audit_append_tx(struct ledger_pg *p, struct ledger_audit *a)
{
	PGresult *q;
	int ok;

	if (ledger_pg_audit_chain(p, a) == -1 || (q = ledger_pg_exec(p, LPG_COMMIT, NULL)) == NULL)
		return -1;
	ok = strcmp(PQcmdStatus(q), "COMMIT") == 0;
	PQclear(q);
	return ok ? 0 : -1;
}

int
ledger_pg_audit_append(void *self, struct ledger_audit *a)
{
	struct ledger_pg *p = self;

	if (p->in_batch) {
		log_warnx("ledger (postgresql): audit append inside a batch");
		return -1;
	}
	if (ledger_pg_begin_tx(p) == -1)
		return -1;
	if (ledger_pg_audit_append_tx(p, a) == 0)
		return 0;
	if (p->up && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		ledger_pg_run(p, LPG_ROLLBACK, NULL);
	return -1;
}

/* A text column into buf, cut to its size (display only: the chain is checked on the bytes). */
static void
ledger_pg_audit_copy(const PGresult *q, int row, int col, char *buf, size_t size)
{
	size_t n = (size_t)PQgetlength(q, row, col);

	if (n >= size)
		n = size - 1;
	memcpy(buf, PQgetvalue(q, row, col), n);
	buf[n] = '\0';
}

/* A row of the audit columns into a, strings cut to its sizes. */
static void
ledger_pg_audit_row(const PGresult *q, int row, struct ledger_audit *a)
{
	memset(a, 0, sizeof(*a));
	a->seq = (uint64_t)ledger_pg_int(q, row, 0);
	a->time = ledger_pg_int(q, row, 1);
	a->uid = (uint32_t)ledger_pg_int(q, row, 2);
	a->pid = (uint32_t)ledger_pg_int(q, row, 3);
	ledger_pg_audit_copy(q, row, 4, a->user, sizeof(a->user));
	ledger_pg_audit_copy(q, row, 5, a->call, sizeof(a->call));
	ledger_pg_audit_copy(q, row, 6, a->result, sizeof(a->result));
	ledger_pg_audit_copy(q, row, 7, a->detail, sizeof(a->detail));
	ledger_pg_audit_copy(q, row, 8, a->before, sizeof(a->before));
	ledger_pg_audit_copy(q, row, 9, a->after, sizeof(a->after));
	ledger_pg_audit_copy(q, row, 10, a->prev_hash, sizeof(a->prev_hash));
	ledger_pg_audit_copy(q, row, 11, a->hash, sizeof(a->hash));
}

/* The audit readers run outside batches: the log is not the batch's business. */
static int
ledger_pg_audit_read(struct ledger_pg *p)
{
	if (p->in_batch) {
		log_warnx("ledger (postgresql): audit read inside a batch");
		return -1;
	}
	return ledger_pg_ready(p);
}

int
ledger_pg_audit_list(void *self, uint64_t offset, uint32_t limit, ledger_audit_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args g = { 0 };
	struct ledger_audit a;
	PGresult *q;
	int i;

	if (limit == 0 || offset > INT64_MAX)
		return 0;
	if (ledger_pg_audit_read(p) == -1)
		return -1;
	ledger_pg_arg_int(&g, limit);
	ledger_pg_arg_int(&g, (int64_t)offset);
	if ((q = ledger_pg_exec(p, LPG_AUDIT_PAGE, &g)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++) {
		ledger_pg_audit_row(q, i, &a);
		cb(&a, arg);
	}
	PQclear(q);
	return 0;
}

int
ledger_pg_audit_last(void *self, uint64_t after, const char *const *calls, size_t ncalls,
    const char *marker, struct ledger_audit *a)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args g = { 0 };
	PGresult *q;
	size_t i;
	int found;

	if (ncalls > LEDGER_AUDIT_LAST_CALLS || after > INT64_MAX)
		return -1;
	if (ledger_pg_audit_read(p) == -1)
		return -1;
	ledger_pg_arg_int(&g, (int64_t)after);
	for (i = 0; i < LEDGER_AUDIT_LAST_CALLS; i++)
		ledger_pg_arg_text(&g, i < ncalls ? calls[i] : NULL);
	ledger_pg_arg_text(&g, marker);
	if ((q = ledger_pg_exec(p, LPG_AUDIT_LAST, &g)) == NULL)
		return -1;
	if ((found = PQntuples(q) == 1))
		ledger_pg_audit_row(q, 0, a);
	PQclear(q);
	return found;
}

int
ledger_pg_audit_count(void *self, uint64_t *total)
{
	struct ledger_pg *p = self;
	PGresult *q;

	*total = 0;
	if (ledger_pg_audit_read(p) == -1 || (q = ledger_pg_exec(p, LPG_AUDIT_COUNT, NULL)) == NULL)
		return -1;
	*total = (uint64_t)ledger_pg_int(q, 0, 0);
	PQclear(q);
	return 0;
}

/* One row of the chain against the record expected next: ledger_audit_check on its bytes. */
static const char *
ledger_pg_audit_check(const PGresult *q, int row, uint64_t want, const char *prev, char *msg)
{
	int64_t ints[LEDGER_AUDIT_INTS];
	const char *s[LEDGER_AUDIT_STRS + 1];
	size_t n[LEDGER_AUDIT_STRS + 1];
	int i;

	for (i = 0; i < LEDGER_AUDIT_INTS; i++)
		ints[i] = ledger_pg_int(q, row, i);
	for (i = 0; i <= LEDGER_AUDIT_STRS; i++) {
		s[i] = PQgetvalue(q, row, LEDGER_AUDIT_INTS + i);
		n[i] = (size_t)PQgetlength(q, row, LEDGER_AUDIT_INTS + i);
	}
	return ledger_audit_check(want, prev, ints, s, n, msg);
}

/*
 * One statement per chunk of a slice (a slice of the whole log is not loaded
 * at once): no transaction stays open between slices.
 */
int
ledger_pg_audit_verify_step(
    void *self, struct ledger_audit_walk *w, uint32_t max, char *problem, size_t len)
{
	struct ledger_pg *p = self;
	uint32_t seen = 0, n;
	int r;

	problem[0] = '\0';
	if (ledger_pg_audit_read(p) == -1) {
		snprintf(problem, len, "cannot read the audit log from the pool's database");
		return -1;
	}
	do {
		n = max - seen < LEDGER_PG_AUDIT_CHUNK ? max - seen : LEDGER_PG_AUDIT_CHUNK;
		if ((r = ledger_pg_audit_chunk(p, w, n, problem, len)) != 2)
			return r;
		seen += n;
	} while (seen < max);
	return 2;
}

/* Up to n records: 2 when n checked out, 1 at the intact end, 0 broken, -1 unreadable. */
static int
ledger_pg_audit_chunk(
    struct ledger_pg *p, struct ledger_audit_walk *w, uint32_t n, char *problem, size_t len)
{
	struct ledger_pg_args g = { 0 };
	char msg[LEDGER_AUDIT_MAX_DETAIL];
	const char *why = NULL;
	PGresult *q;
	int i, rows;

	/* From the start, a row below 1 (against the schema) is seen too, and refused. */
	ledger_pg_arg_int(&g, w->next == 1 ? INT64_MIN : (int64_t)w->next - 1);
	ledger_pg_arg_int(&g, n);
	if ((q = ledger_pg_exec(p, LPG_AUDIT_CHAIN, &g)) == NULL) {
		snprintf(problem, len, "cannot read the audit log from the pool's database");
		return -1;
	}
	rows = PQntuples(q);
	for (i = 0; i < rows; i++) {
		if ((why = ledger_pg_audit_check(q, i, w->next, w->prev, msg)) != NULL)
			break;
		memcpy(w->prev, PQgetvalue(q, i, LEDGER_PG_AUDIT_NCOLS - 1), LEDGER_AUDIT_HASH_LEN);
		w->next++;
	}
	PQclear(q);
	if (why != NULL) {
		snprintf(problem, len, "%s", why);
		return 0;
	}
	return (uint32_t)rows == n ? 2 : 1;
}
