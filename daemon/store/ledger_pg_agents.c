/*
 * The pool's agents on PostgreSQL: link, check-in, token renewal, exclusions,
 * join tokens and the counts. The rules are the SQLite ledger's
 * (ledger_agents.c); what differs:
 * - The counts, the pending page and the holdings are SQL over committed
 *   rows, one statement each: other members write the same tables.
 * - A check-in is one statement (ledger_pg_sql.c's LEDGER_PG_CHECKIN) that
 *   reads the agent without a lock and writes only what changed, and only if
 *   no other member changed the row since it read it; else it runs again on
 *   the row locked to the end of the batch. A check-in with nothing to write
 *   locks nothing and writes nothing: no subtransaction, and a run of them
 *   shares one savepoint (ledger_pg_call_end).
 * - A batch's run of check-ins (ledger_checkin_run) is decided by the same
 *   statement over arrays, for up to LEDGER_PG_RUN_MAX distinct agents at a
 *   time, in one savepoint; it writes only the rows it can lock without
 *   waiting. What it leaves (an agent's second check-in in the run, a row
 *   another member changed or holds, a string the server might refuse) is
 *   made one check-in at a time afterwards, in the run's order.
 * - Cut off (an offline batch), a check-in is answered from the cache of
 *   agents seen and recorded nowhere; every other call fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_pg.h"
#include "log.h"
#include "xmalloc.h"

/* One row of LEDGER_PG_CHECKIN's answer (ledger_pg_checkin_answer). */
struct ledger_pg_answer {
	int64_t n;                   /* the check-in's place in what was asked, from 1 */
	int ok, send, must, written; /* ok: the token matched */
	int64_t delivered, staging;  /* for the cache (struct ledger_pg_cached) */
};

struct ledger_pg_run;

/* The columns of an agents row that a check-in reads and writes; *_set: not NULL. */
struct ledger_pg_row {
	int64_t id, delivered, held, last_seen, staging;
	int64_t staged_delivered_at, acknowledged_at, verified_at;
	int excluded, delivered_set, acked, verified;
	char delivered_name[LEDGER_BUNDLE_ID_LEN + 1];
	char member[LEDGER_PG_MAX_MEMBER + 1]; /* the member it last came through, "" none */
};

static enum ledger_result ledger_pg_find(
    struct ledger_pg *, const char *, const uint8_t *, struct ledger_pg_row *);
static void ledger_pg_find_row(const PGresult *, struct ledger_pg_row *);
static PGresult *ledger_pg_checkin_stmt(struct ledger_pg *, enum ledger_pg_st, const char *,
    const uint8_t *, const char *, int, time_t);
static enum ledger_result ledger_pg_do_link(
    struct ledger_pg *, const char *, const uint8_t *, time_t);
static enum ledger_result ledger_pg_do_checkin(
    struct ledger_pg *, const char *, const uint8_t *, const char *, int, time_t, int *);
static enum ledger_result ledger_pg_offline_checkin(
    struct ledger_pg *, const char *, const uint8_t *, const char *, int *);
static enum ledger_result ledger_pg_do_join_check(
    struct ledger_pg *, const char *, const uint8_t *, time_t);
static enum ledger_result ledger_pg_do_flag(
    struct ledger_pg *, enum ledger_pg_st, const char *, const char *);
static enum ledger_result ledger_pg_do_delete(
    struct ledger_pg *, enum ledger_pg_st, struct ledger_pg_args *, uint64_t *);
static int64_t ledger_pg_since(time_t, uint64_t);
static enum ledger_result ledger_pg_checkin_answer(
    const PGresult *, int, struct ledger_pg_answer *);
static void ledger_pg_checked_in(
    struct ledger_pg *, const char *, const uint8_t *, const struct ledger_pg_answer *);
static void ledger_pg_checkin_each(
    struct ledger_pg *, struct ledger_checkin *, size_t, time_t, const uint8_t *);
static void ledger_pg_checkin_chunk(struct ledger_pg *, struct ledger_checkin *, size_t, time_t);
static void ledger_pg_run_init(struct ledger_pg_run *, size_t);
static void ledger_pg_run_free(struct ledger_pg_run *);
static void ledger_pg_run_add(struct ledger_pg_run *, const struct ledger_checkin *, size_t);
static PGresult *ledger_pg_run_exec(struct ledger_pg *, struct ledger_pg_run *, time_t);
static int ledger_pg_runnable(const struct ledger_checkin *, size_t);
static void ledger_pg_checkin_args(struct ledger_pg *, struct ledger_pg_args *, time_t);

/* Finds the agent (its row locked) and checks its token in constant time. */
static enum ledger_result
ledger_pg_find(
    struct ledger_pg *p, const char *agent_id, const uint8_t *token_hash, struct ledger_pg_row *r)
{
	struct ledger_pg_args a = { 0 };
	uint8_t stored[LEDGER_TOKEN_HASH_LEN];
	enum ledger_result res;
	PGresult *q;

	ledger_pg_arg_text(&a, agent_id);
	if ((q = ledger_pg_exec(p, LPG_FIND, &a)) == NULL)
		return LEDGER_ERROR;
	if (PQntuples(q) != 1) {
		PQclear(q);
		return LEDGER_UNKNOWN_AGENT;
	}
	res = ledger_pg_bytes(q, 0, 1, stored, sizeof(stored)) == 0 &&
	              CRYPTO_memcmp(stored, token_hash, LEDGER_TOKEN_HASH_LEN) == 0
	          ? LEDGER_OK
	          : LEDGER_BAD_TOKEN;
	OPENSSL_cleanse(stored, sizeof(stored));
	ledger_pg_find_row(q, r);
	PQclear(q);
	return res;
}

/* LPG_FIND's columns into r. */
static void
ledger_pg_find_row(const PGresult *q, struct ledger_pg_row *r)
{
	memset(r, 0, sizeof(*r));
	r->id = ledger_pg_int(q, 0, 0);
	r->delivered = ledger_pg_int(q, 0, 2);
	r->held = ledger_pg_int(q, 0, 3);
	r->excluded = ledger_pg_int(q, 0, 4) != 0;
	r->last_seen = ledger_pg_int(q, 0, 5);
	r->staging = ledger_pg_int(q, 0, 6);
	r->delivered_set = !PQgetisnull(q, 0, 7);
	r->staged_delivered_at = ledger_pg_int(q, 0, 7);
	r->acked = !PQgetisnull(q, 0, 8);
	r->acknowledged_at = ledger_pg_int(q, 0, 8);
	r->verified = !PQgetisnull(q, 0, 9);
	r->verified_at = ledger_pg_int(q, 0, 9);
	snprintf(r->delivered_name, sizeof(r->delivered_name), "%s", PQgetvalue(q, 0, 10));
	snprintf(r->member, sizeof(r->member), "%s", PQgetvalue(q, 0, 11));
}

enum ledger_result
ledger_pg_link(void *self, const char *agent_id, const uint8_t *token_hash, time_t now)
{
	struct ledger_pg *p = self;
	size_t mark = p->npend;

	if (ledger_pg_call_begin(p, "link") == -1)
		return LEDGER_ERROR;
	return ledger_pg_call_end(p, ledger_pg_do_link(p, agent_id, token_hash, now), mark);
}

/* A new agent, sent the current bundle with its token; an id that exists changes nothing. */
static enum ledger_result
ledger_pg_do_link(struct ledger_pg *p, const char *agent_id, const uint8_t *token_hash, time_t now)
{
	struct ledger_pg_args a = { 0 };
	struct ledger_pg_cached c = { 0 };
	int delivered = p->staging != 0 && p->cur != 0;
	PGresult *q;
	int n;

	ledger_pg_arg_text(&a, agent_id);
	ledger_pg_arg_bytes(&a, token_hash, LEDGER_TOKEN_HASH_LEN);
	ledger_pg_arg_int(&a, now);
	ledger_pg_arg_text(&a, p->member);
	ledger_pg_arg_ref(&a, p->cur);
	ledger_pg_arg_ref(&a, p->staging);
	ledger_pg_arg_time(&a, delivered, now);
	if ((q = ledger_pg_exec(p, LPG_LINK, &a)) == NULL)
		return LEDGER_ERROR;
	n = PQntuples(q);
	PQclear(q);
	if (n == 0)
		return LEDGER_EXISTS;
	memcpy(c.hash, token_hash, LEDGER_TOKEN_HASH_LEN);
	c.delivered = p->cur;
	c.staging = delivered ? p->staging : 0;
	ledger_pg_pend(p, agent_id, 0, &c);
	OPENSSL_cleanse(&c, sizeof(c));
	return LEDGER_OK;
}

enum ledger_result
ledger_pg_checkin(void *self, const char *agent_id, const uint8_t *token_hash,
    const char *presented, int canary, time_t now, int *send_bundle)
{
	struct ledger_pg *p = self;
	size_t mark = p->npend;
	enum ledger_result r;

	*send_bundle = 0;
	if (p->in_batch && p->offline)
		return ledger_pg_offline_checkin(p, agent_id, token_hash, presented, send_bundle);
	if (ledger_pg_call_begin(p, "checkin") == -1)
		return LEDGER_ERROR;
	r = ledger_pg_do_checkin(p, agent_id, token_hash, presented, canary, now, send_bundle);
	if (r != LEDGER_OK)
		*send_bundle = 0;
	return ledger_pg_call_end(p, r, mark);
}

/*
 * ledger_agents.c's rule, which LEDGER_PG_CHECKIN applies in the database: the
 * agent holds what it presents only if that is the bundle last delivered to it;
 * it acknowledged the staged CA only if that delivery happened during this
 * staging; a 304 only for an agent on record as having been sent the current
 * bundle. The row is written when that changes anything, or when last_seen is
 * LEDGER_SEEN_GRANULARITY old.
 */
static enum ledger_result
ledger_pg_do_checkin(struct ledger_pg *p, const char *agent_id, const uint8_t *token_hash,
    const char *presented, int canary, time_t now, int *send)
{
	struct ledger_pg_answer ans;
	enum ledger_result r;
	PGresult *q;

	q = ledger_pg_checkin_stmt(p, LPG_CHECKIN, agent_id, token_hash, presented, canary, now);
	if (q != NULL && PQntuples(q) == 1 && ledger_pg_checkin_answer(q, 0, &ans) == LEDGER_OK &&
	    ans.must && !ans.written) {
		/* Another member changed the row after it was read: again, on the row locked. */
		PQclear(q);
		q = ledger_pg_checkin_stmt(
		    p, LPG_CHECKIN_LOCKED, agent_id, token_hash, presented, canary, now);
	}
	if (q == NULL)
		return LEDGER_ERROR;
	r = PQntuples(q) == 1 ? ledger_pg_checkin_answer(q, 0, &ans) : LEDGER_UNKNOWN_AGENT;
	PQclear(q);
	if (r != LEDGER_OK)
		return r;
	if (ans.must && !ans.written) {
		log_warnx("ledger (postgresql): a check-in's locked row was not written");
		return LEDGER_ERROR;
	}
	p->call_clean = !ans.written;
	*send = ans.send;
	ledger_pg_checked_in(p, agent_id, token_hash, &ans);
	return LEDGER_OK;
}

/* Row `row` of LEDGER_PG_CHECKIN's answer: LEDGER_OK, or LEDGER_BAD_TOKEN (ans->ok 0). */
static enum ledger_result
ledger_pg_checkin_answer(const PGresult *q, int row, struct ledger_pg_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->n = ledger_pg_int(q, row, 0);
	if (!(ans->ok = ledger_pg_int(q, row, 1) != 0))
		return LEDGER_BAD_TOKEN;
	ans->send = ledger_pg_int(q, row, 2) != 0;
	ans->must = ledger_pg_int(q, row, 3) != 0;
	ans->written = ledger_pg_int(q, row, 4) != 0;
	ans->delivered = ledger_pg_int(q, row, 5);
	ans->staging = ledger_pg_int(q, row, 6);
	return LEDGER_OK;
}

/* A check-in done: the agent's token and delivery into the cache at commit. */
static void
ledger_pg_checked_in(struct ledger_pg *p, const char *agent_id, const uint8_t *token_hash,
    const struct ledger_pg_answer *ans)
{
	struct ledger_pg_cached c = { 0 };

	memcpy(c.hash, token_hash, LEDGER_TOKEN_HASH_LEN);
	c.delivered = ans->delivered;
	c.staging = ans->staging;
	ledger_pg_pend(p, agent_id, 0, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

/*
 * A run: in chunks of LEDGER_PG_RUN_MAX, each decided in one statement
 * (LPG_CHECKIN_MANY) for the agents it can take, the others then made one by
 * one, in the run's order (ledger_pg_checkin_chunk).
 */
void
ledger_pg_checkin_run(void *self, struct ledger_checkin *c, size_t n, time_t now)
{
	struct ledger_pg *p = self;
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < LEDGER_PG_RUN_MAX ? n - i : LEDGER_PG_RUN_MAX;
		if (p->in_batch && !p->offline && k > 1)
			ledger_pg_checkin_chunk(p, c + i, k, now);
		else
			ledger_pg_checkin_each(p, c + i, k, now, NULL);
	}
}

/* The check-ins of c not yet answered by the statement (all when done is NULL), one by one. */
static void
ledger_pg_checkin_each(
    struct ledger_pg *p, struct ledger_checkin *c, size_t n, time_t now, const uint8_t *done)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (done == NULL || !done[i])
			c[i].result = ledger_pg_checkin(p, c[i].agent_id, c[i].token_hash,
			    c[i].presented, c[i].canary, now, &c[i].send_bundle);
}

/* LPG_CHECKIN_MANY's parameters, built one check-in at a time (ledger_pg_run_add). */
struct ledger_pg_run {
	char *ids, *pres; /* text[] literals, every element quoted */
	size_t ids_len, pres_len, cap;
	uint8_t hashes[LEDGER_PG_RUN_MAX * LEDGER_TOKEN_HASH_LEN];
	char canary[LEDGER_PG_RUN_MAX + 1]; /* 't' or 'f' each */
	size_t at[LEDGER_PG_RUN_MAX];       /* the chunk's index of each check-in taken */
	size_t n;
};

/* Room for n check-ins: each string at most doubled by escapes, with quotes and comma. */
static void
ledger_pg_run_init(struct ledger_pg_run *run, size_t n)
{
	size_t each =
	    2 * (LEDGER_MAX_AGENT_ID > LEDGER_PG_MAX_PRESENTED ? LEDGER_MAX_AGENT_ID
	                                                       : LEDGER_PG_MAX_PRESENTED) +
	    4;

	memset(run, 0, sizeof(*run));
	run->cap = n * each + 3;
	run->ids = xmalloc(run->cap);
	run->pres = xmalloc(run->cap);
	run->ids[run->ids_len++] = '{';
	run->pres[run->pres_len++] = '{';
}

static void
ledger_pg_run_free(struct ledger_pg_run *run)
{
	free(run->ids);
	free(run->pres);
	OPENSSL_cleanse(run->hashes, sizeof(run->hashes));
}

/* One element of a text[] literal: NULL, or s quoted (\ before every " and \). */
static void
ledger_pg_run_elem(char *buf, size_t *len, int first, const char *s)
{
	if (!first)
		buf[(*len)++] = ',';
	if (s == NULL) {
		memcpy(buf + *len, "NULL", 4);
		*len += 4;
		return;
	}
	buf[(*len)++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			buf[(*len)++] = '\\';
		buf[(*len)++] = *s;
	}
	buf[(*len)++] = '"';
}

/* Check-in i of the chunk c into the run (the caller checked it: ledger_pg_runnable). */
static void
ledger_pg_run_add(struct ledger_pg_run *run, const struct ledger_checkin *c, size_t i)
{
	ledger_pg_run_elem(run->ids, &run->ids_len, run->n == 0, c[i].agent_id);
	ledger_pg_run_elem(run->pres, &run->pres_len, run->n == 0, c[i].presented);
	memcpy(
	    run->hashes + run->n * LEDGER_TOKEN_HASH_LEN, c[i].token_hash, LEDGER_TOKEN_HASH_LEN);
	run->canary[run->n] = c[i].canary ? 't' : 'f';
	run->at[run->n++] = i;
}

/* Runs LPG_CHECKIN_MANY on the run: its rows, or NULL (logged). */
static PGresult *
ledger_pg_run_exec(struct ledger_pg *p, struct ledger_pg_run *run, time_t now)
{
	struct ledger_pg_args a = { 0 };

	run->ids[run->ids_len] = '}';
	run->ids[run->ids_len + 1] = '\0';
	run->pres[run->pres_len] = '}';
	run->pres[run->pres_len + 1] = '\0';
	run->canary[run->n] = '\0';
	ledger_pg_arg_text(&a, run->ids);
	ledger_pg_arg_bytes(&a, run->hashes, run->n * LEDGER_TOKEN_HASH_LEN);
	ledger_pg_arg_text(&a, run->pres);
	ledger_pg_arg_text(&a, run->canary);
	ledger_pg_checkin_args(p, &a, now);
	return ledger_pg_exec(p, LPG_CHECKIN_MANY, &a);
}

/*
 * Whether check-in i can go into the statement: the first of its agent in
 * the chunk (a later one must see it done: it waits its turn), and printable
 * ASCII no longer than the literal has room for, which needs no check of its
 * encoding by the server (a string the server refuses would fail the
 * statement for every agent in it; alone, it fails only its own check-in).
 */
static int
ledger_pg_runnable(const struct ledger_checkin *c, size_t i)
{
	size_t j;

	if (!ledger_text_plain(c[i].agent_id, LEDGER_MAX_AGENT_ID) ||
	    (c[i].presented != NULL && !ledger_text_plain(c[i].presented, LEDGER_PG_MAX_PRESENTED)))
		return 0;
	for (j = 0; j < i; j++)
		if (strcmp(c[j].agent_id, c[i].agent_id) == 0)
			return 0;
	return 1;
}

/*
 * One chunk: the statement answers the check-ins it took, in one call (one
 * savepoint); those whose row another member changed or holds locked, and
 * those it did not take, are then made one by one in the chunk's order. When
 * the statement fails, every check-in is made one by one, so that whatever
 * failed it fails alone.
 */
static void
ledger_pg_checkin_chunk(struct ledger_pg *p, struct ledger_checkin *c, size_t n, time_t now)
{
	uint8_t done[LEDGER_PG_RUN_MAX] = { 0 }, seen[LEDGER_PG_RUN_MAX] = { 0 };
	struct ledger_pg_answer ans;
	struct ledger_pg_run run;
	size_t i, mark = p->npend;
	int row, ok = 1, written = 0;
	PGresult *q;

	ledger_pg_run_init(&run, n);
	for (i = 0; i < n; i++)
		if (ledger_pg_runnable(c, i))
			ledger_pg_run_add(&run, c, i);
	if (run.n < 2 || ledger_pg_call_begin(p, "checkin") == -1) {
		ledger_pg_run_free(&run);
		ledger_pg_checkin_each(p, c, n, now, NULL);
		return;
	}
	q = ledger_pg_run_exec(p, &run, now);
	for (row = 0; q != NULL && ok && row < PQntuples(q); row++) {
		ledger_pg_checkin_answer(q, row, &ans);
		/* n: the place in the run, from 1; each at most once */
		if (ans.n < 1 || (size_t)ans.n > run.n || seen[ans.n - 1]) {
			log_warnx("ledger (postgresql): a check-in run answered a row it did "
			          "not ask for");
			ok = 0;
			break;
		}
		seen[ans.n - 1] = 1;
		if (ans.ok && ans.must && !ans.written)
			continue; /* another member's row: alone, on the row locked */
		i = run.at[ans.n - 1];
		done[i] = 1;
		c[i].result = ans.ok ? LEDGER_OK : LEDGER_BAD_TOKEN;
		c[i].send_bundle = ans.ok && ans.send;
		written |= ans.written;
		if (ans.ok)
			ledger_pg_checked_in(p, c[i].agent_id, c[i].token_hash, &ans);
	}
	ok = ok && q != NULL;
	for (i = 0; ok && i < run.n; i++)
		if (!seen[i]) { /* no row: no such agent */
			done[run.at[i]] = 1;
			c[run.at[i]].result = LEDGER_UNKNOWN_AGENT;
			c[run.at[i]].send_bundle = 0;
		}
	PQclear(q);
	ledger_pg_run_free(&run);
	p->call_clean = !written;
	ledger_pg_call_end(p, ok ? LEDGER_OK : LEDGER_ERROR, mark);
	if (!ok)
		memset(done, 0, sizeof(done));
	ledger_pg_checkin_each(p, c, n, now, done);
}

/* LEDGER_PG_CHECKIN's parameters after the check-ins': now ($5), the target's, this member's. */
static void
ledger_pg_checkin_args(struct ledger_pg *p, struct ledger_pg_args *a, time_t now)
{
	ledger_pg_arg_int(a, now);
	ledger_pg_arg_int(a, p->staging);
	ledger_pg_arg_int(a, p->cur);
	ledger_pg_arg_text(a, p->member);
	ledger_pg_arg_int(a, LEDGER_SEEN_GRANULARITY);
}

/* LEDGER_PG_CHECKIN (or its locked form) with the call's and the target's parameters. */
static PGresult *
ledger_pg_checkin_stmt(struct ledger_pg *p, enum ledger_pg_st which, const char *agent_id,
    const uint8_t *token_hash, const char *presented, int canary, time_t now)
{
	struct ledger_pg_args a = { 0 };

	ledger_pg_arg_text(&a, agent_id);
	ledger_pg_arg_bytes(&a, token_hash, LEDGER_TOKEN_HASH_LEN);
	ledger_pg_arg_text(&a, presented);
	ledger_pg_arg_text(&a, canary ? "t" : "f");
	ledger_pg_checkin_args(p, &a, now);
	return ledger_pg_exec(p, which, &a);
}

/*
 * Cut off: the agent is authenticated by the cache and told whether to fetch
 * the bundle; nothing is recorded, so nothing is counted. A token that does
 * not match may have been renewed through another member: LEDGER_ERROR (try
 * again later), never LEDGER_BAD_TOKEN, which the cache cannot know.
 */
static enum ledger_result
ledger_pg_offline_checkin(struct ledger_pg *p, const char *agent_id, const uint8_t *token_hash,
    const char *presented, int *send)
{
	const struct ledger_pg_cached *c = ledger_pg_cache_get(p->cache, agent_id);

	if (c == NULL || CRYPTO_memcmp(c->hash, token_hash, LEDGER_TOKEN_HASH_LEN) != 0)
		return LEDGER_ERROR;
	*send = p->cur_name[0] != '\0' &&
	        !(presented != NULL && strcmp(presented, p->cur_name) == 0 && p->cur > 0 &&
	            c->delivered == p->cur && (p->staging == 0 || c->staging == p->staging));
	return LEDGER_OK;
}

enum ledger_result
ledger_pg_exclude(void *self, const char *agent_id, const char *reason)
{
	struct ledger_pg *p = self;
	size_t mark = p->npend;

	if (ledger_pg_call_begin(p, "exclude") == -1)
		return LEDGER_ERROR;
	return ledger_pg_call_end(p, ledger_pg_do_flag(p, LPG_EXCLUDE, agent_id, reason), mark);
}

enum ledger_result
ledger_pg_include(void *self, const char *agent_id)
{
	struct ledger_pg *p = self;
	size_t mark = p->npend;

	if (ledger_pg_call_begin(p, "include") == -1)
		return LEDGER_ERROR;
	return ledger_pg_call_end(p, ledger_pg_do_flag(p, LPG_INCLUDE, agent_id, NULL), mark);
}

static enum ledger_result
ledger_pg_do_flag(
    struct ledger_pg *p, enum ledger_pg_st which, const char *agent_id, const char *reason)
{
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int n;

	ledger_pg_arg_text(&a, agent_id);
	if (reason != NULL)
		ledger_pg_arg_text(&a, reason);
	if ((q = ledger_pg_exec(p, which, &a)) == NULL)
		return LEDGER_ERROR;
	n = PQntuples(q);
	PQclear(q);
	return n == 0 ? LEDGER_UNKNOWN_AGENT : LEDGER_OK;
}

/* Committed agents and the open batch's, from the batch's own transaction. */
uint64_t
ledger_pg_total(const void *self)
{
	struct ledger_pg *p = (struct ledger_pg *)self; /* the connection's state changes */
	size_t mark = p->npend;
	PGresult *q = NULL;
	int64_t n = 0;
	int in;

	if ((in = ledger_pg_read_begin(p)) == -1)
		return 0;
	if ((q = ledger_pg_exec(p, LPG_TOTAL, NULL)) != NULL)
		n = ledger_pg_int(q, 0, 0);
	PQclear(q);
	if (in)
		ledger_pg_call_end(p, q != NULL ? LEDGER_OK : LEDGER_ERROR, mark);
	return n > 0 ? (uint64_t)n : 0;
}

/* Runs a DELETE ... RETURNING agent_id; each agent deleted leaves the cache at commit. */
static enum ledger_result
ledger_pg_do_delete(
    struct ledger_pg *p, enum ledger_pg_st which, struct ledger_pg_args *a, uint64_t *n)
{
	PGresult *q;
	int i;

	*n = 0;
	if ((q = ledger_pg_exec(p, which, a)) == NULL)
		return LEDGER_ERROR;
	for (i = 0; i < PQntuples(q); i++)
		ledger_pg_pend(p, PQgetvalue(q, i, 0), 1, NULL);
	*n = (uint64_t)PQntuples(q);
	PQclear(q);
	return LEDGER_OK;
}

enum ledger_result
ledger_pg_forget(void *self, const char *agent_id)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r;
	uint64_t n;

	if (ledger_pg_call_begin(p, "forget") == -1)
		return LEDGER_ERROR;
	ledger_pg_arg_text(&a, agent_id);
	r = ledger_pg_do_delete(p, LPG_FORGET, &a, &n);
	if (r == LEDGER_OK && n == 0)
		r = LEDGER_UNKNOWN_AGENT;
	return ledger_pg_call_end(p, r, mark);
}

enum ledger_result
ledger_pg_forget_unconfirmed(void *self, int64_t before, uint64_t *n)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r;

	if (ledger_pg_call_begin(p, "forget") == -1)
		return LEDGER_ERROR;
	ledger_pg_arg_int(&a, before);
	r = ledger_pg_call_end(p, ledger_pg_do_delete(p, LPG_FORGET_UNCONFIRMED, &a, n), mark);
	if (r != LEDGER_OK)
		*n = 0;
	return r;
}

/* Reads the join token and checks it: hash (constant time), expiry, uses left. */
static enum ledger_result
ledger_pg_do_join_check(struct ledger_pg *p, const char *join_id, const uint8_t *hash, time_t now)
{
	struct ledger_pg_args a = { 0 };
	uint8_t stored[LEDGER_TOKEN_HASH_LEN];
	PGresult *q;
	int ok;

	ledger_pg_arg_text(&a, join_id);
	if ((q = ledger_pg_exec(p, LPG_JOIN_FIND, &a)) == NULL)
		return LEDGER_ERROR;
	ok = PQntuples(q) == 1 && ledger_pg_bytes(q, 0, 0, stored, sizeof(stored)) == 0 &&
	     CRYPTO_memcmp(stored, hash, LEDGER_TOKEN_HASH_LEN) == 0;
	ok = ok && ledger_pg_int(q, 0, 1) > 0 && ledger_pg_int(q, 0, 2) > (int64_t)now;
	OPENSSL_cleanse(stored, sizeof(stored));
	PQclear(q);
	return ok ? LEDGER_OK : LEDGER_NOT_FOUND;
}

enum ledger_result
ledger_pg_join_check(void *self, const char *join_id, const uint8_t *join_hash, time_t now)
{
	struct ledger_pg *p = self;

	if (ledger_pg_call_begin(p, "join_check") == -1)
		return LEDGER_ERROR;
	return ledger_pg_call_end(p, ledger_pg_do_join_check(p, join_id, join_hash, now), p->npend);
}

/* One use of the token, then the link: both or neither (back to the call's savepoint). */
enum ledger_result
ledger_pg_link_join(void *self, const char *agent_id, const uint8_t *token_hash,
    const char *join_id, const uint8_t *join_hash, time_t now)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r;
	PGresult *q;

	if (ledger_pg_call_begin(p, "link") == -1)
		return LEDGER_ERROR;
	if ((r = ledger_pg_do_join_check(p, join_id, join_hash, now)) != LEDGER_OK)
		return ledger_pg_call_end(p, r, mark);
	ledger_pg_arg_text(&a, join_id);
	if ((q = ledger_pg_exec(p, LPG_JOIN_USE, &a)) == NULL)
		return ledger_pg_call_end(p, LEDGER_ERROR, mark);
	r = PQntuples(q) == 1 ? LEDGER_OK : LEDGER_NOT_FOUND;
	PQclear(q);
	if (r == LEDGER_OK)
		r = ledger_pg_do_link(p, agent_id, token_hash, now);
	if (r != LEDGER_OK && r != LEDGER_ERROR) {
		/* The use is given back; a failure to do so fails the call. */
		p->npend = mark;
		if (ledger_pg_run(p, LPG_ROLLBACK_TO, NULL) == -1)
			r = LEDGER_ERROR;
	}
	return ledger_pg_call_end(p, r, mark);
}

enum ledger_result
ledger_pg_renew(
    void *self, const char *agent_id, const uint8_t *old_hash, const uint8_t *new_hash, time_t now)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	struct ledger_pg_cached c = { 0 };
	struct ledger_pg_row r;
	size_t mark = p->npend;
	enum ledger_result res;

	if (ledger_pg_call_begin(p, "renew") == -1)
		return LEDGER_ERROR;
	if ((res = ledger_pg_find(p, agent_id, old_hash, &r)) != LEDGER_OK)
		return ledger_pg_call_end(p, res, mark);
	ledger_pg_arg_int(&a, r.id);
	ledger_pg_arg_bytes(&a, new_hash, LEDGER_TOKEN_HASH_LEN);
	ledger_pg_arg_int(&a, now);
	ledger_pg_arg_text(&a, p->member);
	if (ledger_pg_run(p, LPG_RENEW, &a) == -1)
		return ledger_pg_call_end(p, LEDGER_ERROR, mark);
	memcpy(c.hash, new_hash, LEDGER_TOKEN_HASH_LEN);
	c.delivered = r.delivered;
	c.staging = r.delivered_set ? r.staging : 0;
	ledger_pg_pend(p, agent_id, 0, &c);
	OPENSSL_cleanse(&c, sizeof(c));
	return ledger_pg_call_end(p, LEDGER_OK, mark);
}

enum ledger_result
ledger_pg_join_create(void *self, const struct ledger_join *j)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r = LEDGER_ERROR;
	PGresult *q;

	if (ledger_pg_call_begin(p, "join_create") == -1)
		return LEDGER_ERROR;
	ledger_pg_arg_text(&a, j->id);
	ledger_pg_arg_bytes(&a, j->hash, LEDGER_TOKEN_HASH_LEN);
	ledger_pg_arg_int(&a, j->uses_left);
	ledger_pg_arg_int(&a, j->expires_at);
	ledger_pg_arg_text(&a, j->description);
	ledger_pg_arg_int(&a, j->created_at);
	ledger_pg_arg_text(&a, p->member);
	if ((q = ledger_pg_exec(p, LPG_JOIN_ADD, &a)) != NULL)
		r = PQntuples(q) == 1 ? LEDGER_OK : LEDGER_EXISTS;
	PQclear(q);
	return ledger_pg_call_end(p, r, mark);
}

enum ledger_result
ledger_pg_join_revoke(void *self, const char *join_id)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r = LEDGER_ERROR;
	PGresult *q;

	if (ledger_pg_call_begin(p, "join_revoke") == -1)
		return LEDGER_ERROR;
	ledger_pg_arg_text(&a, join_id);
	if ((q = ledger_pg_exec(p, LPG_JOIN_DEL, &a)) != NULL)
		r = PQntuples(q) == 1 ? LEDGER_OK : LEDGER_NOT_FOUND;
	PQclear(q);
	return ledger_pg_call_end(p, r, mark);
}

int
ledger_pg_join_list(void *self, ledger_join_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_join j;
	size_t mark = p->npend;
	PGresult *q;
	int i, in;

	if ((in = ledger_pg_read_begin(p)) == -1)
		return -1;
	q = ledger_pg_exec(p, LPG_JOIN_LIST, NULL);
	if (in)
		ledger_pg_call_end(p, q != NULL ? LEDGER_OK : LEDGER_ERROR, mark);
	if (q == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++) {
		memset(&j, 0, sizeof(j));
		snprintf(j.id, sizeof(j.id), "%s", PQgetvalue(q, i, 0));
		j.uses_left = (uint32_t)ledger_pg_int(q, i, 1);
		j.expires_at = ledger_pg_int(q, i, 2);
		snprintf(j.description, sizeof(j.description), "%s", PQgetvalue(q, i, 3));
		j.created_at = ledger_pg_int(q, i, 4);
		cb(&j, arg);
	}
	PQclear(q);
	return 0;
}

enum ledger_result
ledger_pg_get(void *self, const char *agent_id, struct ledger_agent *ag)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	size_t mark = p->npend;
	enum ledger_result r = LEDGER_ERROR;
	PGresult *q;
	int in;

	if ((in = ledger_pg_read_begin(p)) == -1)
		return LEDGER_ERROR;
	ledger_pg_arg_text(&a, agent_id);
	if ((q = ledger_pg_exec(p, LPG_GET, &a)) != NULL && PQntuples(q) == 1) {
		snprintf(ag->id, sizeof(ag->id), "%s", PQgetvalue(q, 0, 0));
		ag->linked_at = ledger_pg_int(q, 0, 1);
		ag->last_seen = ledger_pg_int(q, 0, 2);
		ag->excluded = ledger_pg_int(q, 0, 3) != 0;
		snprintf(ag->reason, sizeof(ag->reason), "%s", PQgetvalue(q, 0, 4));
		r = LEDGER_OK;
	} else if (q != NULL)
		r = LEDGER_UNKNOWN_AGENT;
	PQclear(q);
	return in ? ledger_pg_call_end(p, r, mark) : r;
}

/*
 * The first second of the active window (everything is active when window reaches 1970),
 * widened by LEDGER_SEEN_GRANULARITY: a check-in that changed nothing else may not have
 * written last_seen, so the row can be that much older than the agent's last check-in.
 * Counting such an agent active errs on the gate's side (one more agent to wait for);
 * counting it inactive would let a rotation leave out an agent that checked in inside the
 * window.
 */
static int64_t
ledger_pg_since(time_t now, uint64_t window)
{
	uint64_t w = window + LEDGER_SEEN_GRANULARITY;

	if (now <= 0 || window >= (uint64_t)now || w >= (uint64_t)now)
		return 0;
	return (int64_t)now - (int64_t)w;
}

/*
 * The pool's open staging for this member's CA, when another member ended the one this
 * member counts and opened that CA's again (a member that unstaged and staged the same set
 * again): adopted, so that every member counts one staging. A staging of another CA is left
 * to set_target: a member that merely lags must not end what the others staged.
 */
int
ledger_pg_sync_staging(struct ledger_pg *p)
{
	PGresult *res;
	int64_t staging;

	if (p->in_batch || p->target_stale || p->staged_ca[0] == '\0' ||
	    (res = ledger_pg_exec(p, LPG_OPEN_STAGING, NULL)) == NULL)
		return -1;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), p->staged_ca) == 0 &&
	    (staging = ledger_pg_int(res, 0, 0)) != p->staging) {
		log_info("ledger (postgresql): the pool staged CA %s again (staging %lld)",
		    p->staged_ca, (long long)staging);
		p->staging = staging;
	}
	PQclear(res);
	return 0;
}

/*
 * The counts' parameters: since, the open staging, the current bundle. Only
 * on committed rows (never inside a batch: its connection would see its own
 * writes) and for the target as stored (not while a new one waits to be).
 */
int
ledger_pg_count_args(
    struct ledger_pg *p, const char *what, time_t now, uint64_t window, struct ledger_pg_args *a)
{
	if (p->in_batch) {
		log_warnx("ledger (postgresql): %s inside a batch", what);
		return -1;
	}
	if (ledger_pg_ready(p) == -1 || p->target_stale)
		return -1;
	if (p->staged_ca[0] != '\0' && ledger_pg_sync_staging(p) == -1)
		return -1;
	ledger_pg_arg_int(a, ledger_pg_since(now, window));
	ledger_pg_arg_int(a, p->staging);
	ledger_pg_arg_int(a, p->cur);
	return 0;
}

int
ledger_pg_count(void *self, time_t now, uint64_t window, struct ledger_counts *c)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	uint64_t *f[] = { &c->linked, &c->active, &c->acknowledged, &c->verified, &c->delivered,
		&c->pending, &c->inactive_lacking, &c->excluded, &c->current, &c->never_confirmed };
	PGresult *q;
	int i;

	memset(c, 0, sizeof(*c));
	if (ledger_pg_count_args(p, "count", now, window, &a) == -1 ||
	    (q = ledger_pg_exec(p, LPG_COUNT, &a)) == NULL)
		return -1;
	for (i = 0; i < (int)(sizeof(f) / sizeof(f[0])); i++)
		*f[i] = (uint64_t)ledger_pg_int(q, 0, i);
	PQclear(q);
	return 0;
}

int
ledger_pg_pending(void *self, time_t now, uint64_t window, uint64_t offset, uint32_t limit,
    ledger_agent_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int i;

	if (limit == 0 || offset > INT64_MAX)
		return 0;
	if (ledger_pg_count_args(p, "pending", now, window, &a) == -1)
		return -1;
	ledger_pg_arg_int(&a, limit);
	ledger_pg_arg_int(&a, (int64_t)offset);
	if ((q = ledger_pg_exec(p, LPG_PENDING, &a)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++)
		cb(PQgetvalue(q, i, 0), ledger_pg_int(q, i, 1), ledger_pg_int(q, i, 2) != 0, arg);
	PQclear(q);
	return 0;
}

int
ledger_pg_holdings(void *self, time_t now, uint64_t window, ledger_holding_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int i;

	if (ledger_pg_count_args(p, "holdings", now, window, &a) == -1)
		return -1;
	a.n = 1; /* since only */
	if ((q = ledger_pg_exec(p, LPG_HOLDINGS, &a)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++)
		cb(PQgetvalue(q, i, 0), (uint64_t)ledger_pg_int(q, i, 1), arg);
	PQclear(q);
	return 0;
}
