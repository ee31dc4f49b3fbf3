/*
 * The pool's ledger on PostgreSQL (libpq): one database shared by every
 * member of a pool of proxies. This file opens it (the schema and its
 * migrations), owns the batches and the target, and fills the backend table;
 * ledger_pg_conn.c the connection and the statements (ledger_pg_sql.c),
 * ledger_pg_agents.c the agents and the counts, ledger_pg_audit.c the audit
 * chain, ledger_pg_pool.c the pool's shared state, ledger_pg_cache.c what a
 * member answers from while cut off.
 *
 * Rules:
 * - Several members write the same tables, so nothing is counted from
 *   memory: every count is one SQL statement over committed rows.
 * - A batch is one transaction; each call in it runs inside a SAVEPOINT, so a
 *   call that fails is undone alone and the batch goes on. Only a lost
 *   connection (or a failed savepoint) fails the whole batch. A check-in that
 *   wrote nothing leaves its savepoint to the next call: no subtransaction
 *   for the fleet's steady check-ins.
 * - The counts read counters (agent_tally, agent_moves) that triggers keep in
 *   the transactions that move agents, and an index on last_seen for what
 *   depends on the window; each batch first folds this member's moves.
 * - synchronous_commit is set on for the session and checked: COMMIT returns
 *   once the batch is on the server's disk.
 * - Every statement is prepared once per connection with parameters; no SQL
 *   is ever built from input.
 * - A lost connection fails the call with a log line; the next call (at most
 *   once a second) connects again and prepares the statements again. While
 *   no connection can be made, ledger_begin opens an offline batch in which
 *   only check-ins are answered, from the cache, and nothing is recorded.
 * - The connection string is never logged: libpq's messages are cut of the
 *   password before they reach a log line or an err buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_pg.h"
#include "log.h"
#include "xmalloc.h"

static int ledger_pg_migrate(struct ledger_pg *, char *, size_t);
static int ledger_pg_migrate_tx(struct ledger_pg *, char *, size_t);
static int ledger_pg_guard(struct ledger_pg *, char *, size_t);
static void ledger_pg_retarget(struct ledger_pg *);
static void ledger_pg_apply(struct ledger_pg *);
static void ledger_pg_fold(struct ledger_pg *);
static int ledger_pg_target_tx(struct ledger_pg *, time_t, int64_t *, int64_t *);
static int ledger_pg_load_staging(struct ledger_pg *, int64_t *, char *);
static int ledger_pg_begin(void *);
static int ledger_pg_commit(void *);
static void ledger_pg_rollback(void *);
static int ledger_pg_in_batch(const void *);
static int ledger_pg_quick_check(void *, char *, size_t);
static void ledger_pg_health(const void *, struct ledger_health *);
static int ledger_pg_probe(void *);

/*
 * One member at a time (an advisory lock held by the transaction): three
 * members starting together see the schema created once.
 */
static int
ledger_pg_migrate(struct ledger_pg *p, char *err, size_t errlen)
{
	if (ledger_pg_simple(p, "BEGIN", err, errlen) == -1)
		return -1;
	if (ledger_pg_migrate_tx(p, err, errlen) == -1 ||
	    ledger_pg_simple(p, "COMMIT", err, errlen) == -1) {
		PQclear(PQexec(p->conn, "ROLLBACK"));
		return -1;
	}
	return 0;
}

static int
ledger_pg_migrate_tx(struct ledger_pg *p, char *err, size_t errlen)
{
	char lock[96], set[64], what[64], msg[LEDGER_PG_ERRMAX];
	PGresult *res;
	int v;

	snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%d, %d)", LEDGER_PG_LOCK_NS,
	    LEDGER_PG_LOCK_MIGRATE);
	if (ledger_pg_simple(p, lock, err, errlen) == -1 ||
	    ledger_pg_simple(p,
	        "CREATE TABLE IF NOT EXISTS carotate_schema (version integer NOT NULL); "
	        "INSERT INTO carotate_schema SELECT 0 WHERE NOT EXISTS "
	        "(SELECT 1 FROM carotate_schema)",
	        err, errlen) == -1)
		return -1;
	res = PQexec(p->conn, "SELECT min(version), count(*) FROM carotate_schema");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    strcmp(PQgetvalue(res, 0, 1), "1") != 0) {
		ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
		snprintf(err, errlen, "ledger (postgresql): cannot read the schema version%s%s",
		    msg[0] != '\0' ? ": " : " (carotate_schema must hold one row)", msg);
		PQclear(res);
		return -1;
	}
	v = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (v < 0 || v > ledger_pg_version) {
		snprintf(err, errlen,
		    "ledger (postgresql) has schema version %d, but this carotated knows versions "
		    "up to %d: upgrade every member of the pool",
		    v, ledger_pg_version);
		return -1;
	}
	for (; v < ledger_pg_version; v++) {
		snprintf(set, sizeof(set), "UPDATE carotate_schema SET version = %d", v + 1);
		snprintf(what, sizeof(what), "migration to schema version %d", v + 1);
		if (ledger_pg_simple(p, ledger_pg_migrations[v], err, errlen) == -1 ||
		    ledger_pg_simple(p, set, err, errlen) == -1) {
			snprintf(err + strlen(err), errlen - strlen(err), " (%s)", what);
			return -1;
		}
		log_info("ledger (postgresql): schema migrated to version %d", v + 1);
	}
	return ledger_pg_guard(p, err, errlen);
}

/*
 * The triggers that keep the audit log append-only: whoever dropped or
 * disabled them owns the tables. Put back (and said loudly); the hash chain,
 * not the triggers, shows whether records were changed meanwhile.
 */
static int
ledger_pg_guard(struct ledger_pg *p, char *err, size_t errlen)
{
	PGresult *res = PQexec(p->conn, ledger_pg_sql[LPG_QUICK_CHECK]);
	int n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoi(PQgetvalue(res, 0, 0)) : -1;

	PQclear(res);
	if (n == LEDGER_PG_NTRIGGERS)
		return 0;
	log_warnx("ledger (postgresql): the triggers that keep the audit log append-only were "
	          "removed or disabled outside carotated; putting them back (carotatectl audit "
	          "--verify checks the records)");
	return ledger_pg_simple(p, ledger_pg_audit_triggers, err, errlen);
}

struct ledger_pg *
ledger_pg_open(const char *dsn, const char *member, char *err, size_t errlen)
{
	struct ledger_pg *p;
	int64_t staging;

	if (!ledger_pg_member_ok(member)) {
		snprintf(err, errlen,
		    "ledger (postgresql): a member name is 1 to %d of A-Z a-z 0-9 . _ -",
		    LEDGER_PG_MAX_MEMBER);
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	snprintf(p->member, sizeof(p->member), "%s", member);
	p->cache = ledger_pg_cache_new();
	p->retarget = ledger_pg_retarget;
	if (ledger_pg_connect(p, dsn, err, errlen) == -1 ||
	    ledger_pg_migrate(p, err, errlen) == -1 || ledger_pg_setup(p, err, errlen) == -1 ||
	    ledger_pg_load_staging(p, &staging, p->staged_ca) == -1) {
		if (err[0] == '\0' || p->up)
			snprintf(err, errlen, "ledger (postgresql): cannot read the open staging");
		ledger_pg_close(p);
		return NULL;
	}
	p->staging = staging;
	log_info("ledger (postgresql): member %s connected, schema version %d", p->member,
	    ledger_pg_version);
	return p;
}

struct ledger *
ledger_open_pg(const char *dsn, const char *member, char *err, size_t errlen)
{
	struct ledger_pg *p;
	struct ledger *l;

	if ((p = ledger_pg_open(dsn, member, err, errlen)) == NULL)
		return NULL;
	if ((l = ledger_wrap(&ledger_pg_backend, p)) == NULL)
		snprintf(err, errlen, "ledger (postgresql): the engine is incomplete");
	return l;
}

void
ledger_pg_close(void *self)
{
	struct ledger_pg *p = self;

	if (p == NULL)
		return;
	if (p->in_batch)
		ledger_pg_rollback(p);
	PQfinish(p->conn);
	ledger_pg_cache_free(p->cache);
	if (p->pend != NULL)
		OPENSSL_cleanse(p->pend, p->pendcap * sizeof(*p->pend));
	free(p->pend);
	free(p);
}

/* The target this member wants but could not store: stored now (copies: set_target writes p). */
static void
ledger_pg_retarget(struct ledger_pg *p)
{
	char ca[LEDGER_CA_ID_LEN + 1], bundle[LEDGER_BUNDLE_ID_LEN + 1];

	memcpy(ca, p->staged_ca, sizeof(ca));
	memcpy(bundle, p->cur_name, sizeof(bundle));
	ledger_pg_set_target(p, ca[0] != '\0' ? ca : NULL, bundle[0] != '\0' ? bundle : NULL);
}

/*
 * A batch is a transaction; when none can be opened (cut off), an offline
 * batch in which only check-ins are answered (ledger.h).
 */
static int
ledger_pg_begin(void *self)
{
	struct ledger_pg *p = self;

	if (p->in_batch) {
		log_warnx("ledger (postgresql): begin: a batch is open already");
		return -1;
	}
	if (p->target_stale && ledger_pg_ready(p) == 0)
		ledger_pg_retarget(p);
	else if (p->staged_ca[0] != '\0' && ledger_pg_ready(p) == 0)
		ledger_pg_sync_staging(p); /* fails only with the connection: begin_tx says so */
	p->offline = ledger_pg_begin_tx(p) == -1;
	p->in_batch = 1;
	p->batch_failed = 0;
	if (!p->offline)
		ledger_pg_fold(p);
	p->owe_savepoint = p->owe_release = p->call_saved = 0;
	p->call_clean = p->saved_clean = 0;
	p->npend = 0;
	return 0;
}

static int
ledger_pg_commit(void *self)
{
	struct ledger_pg *p = self;
	PGresult *res;
	int ok;

	if (!p->in_batch) {
		log_warnx("ledger (postgresql): commit without a batch");
		return -1;
	}
	if (p->offline) {
		p->in_batch = p->offline = 0;
		return 0;
	}
	p->owe_release = p->saved_clean = 0; /* COMMIT releases every savepoint */
	if (p->batch_failed || (res = ledger_pg_exec(p, LPG_COMMIT, NULL)) == NULL) {
		ledger_pg_rollback(p);
		return -1;
	}
	/* An aborted transaction answers COMMIT with ROLLBACK, and no error. */
	ok = strcmp(PQcmdStatus(res), "COMMIT") == 0;
	PQclear(res);
	if (!ok) {
		log_warnx("ledger (postgresql): the batch's transaction was rolled back");
		p->in_batch = 0;
		p->npend = 0;
		return -1;
	}
	p->in_batch = 0;
	ledger_pg_apply(p);
	return 0;
}

static void
ledger_pg_rollback(void *self)
{
	struct ledger_pg *p = self;

	if (!p->in_batch)
		return;
	p->owe_savepoint = p->owe_release = p->call_saved = p->saved_clean = 0;
	if (!p->offline && p->up && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		ledger_pg_run(p, LPG_ROLLBACK, NULL);
	p->in_batch = p->offline = p->batch_failed = 0;
	p->npend = 0;
}

static int
ledger_pg_in_batch(const void *self)
{
	const struct ledger_pg *p = self;

	return p->in_batch;
}

/*
 * The agent moves that wait to be folded into this member's counters (ledger_pg_sql.c's
 * schema version 4), first in the batch: they are as many as the last batch moved, and the
 * batch's commit makes the fold durable with it. A fold that fails takes the batch along
 * (it can fail only with the connection or a timeout).
 */
static void
ledger_pg_fold(struct ledger_pg *p)
{
	struct ledger_pg_args a = { 0 };

	ledger_pg_arg_text(&a, p->member);
	if (ledger_pg_run(p, LPG_FOLD, &a) == -1)
		p->batch_failed = 1;
}

/* After COMMIT: the batch's agents reach the cache, in call order. */
static void
ledger_pg_apply(struct ledger_pg *p)
{
	size_t i;

	for (i = 0; i < p->npend; i++) {
		if (p->pend[i].forget)
			ledger_pg_cache_del(p->cache, p->pend[i].id);
		else
			ledger_pg_cache_put(p->cache, p->pend[i].id, &p->pend[i].c);
	}
	OPENSSL_cleanse(p->pend, p->npend * sizeof(*p->pend));
	p->npend = 0;
}

/* The open staging's id (0 for none) and CA. */
static int
ledger_pg_load_staging(struct ledger_pg *p, int64_t *staging, char *ca)
{
	PGresult *res = ledger_pg_exec(p, LPG_OPEN_STAGING, NULL);

	*staging = 0;
	ca[0] = '\0';
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*staging = ledger_pg_int(res, 0, 0);
		snprintf(ca, LEDGER_CA_ID_LEN + 1, "%s", PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	return 0;
}

/*
 * Inside the target's transaction and lock: the bundle interned (*cur), and
 * the pool's open staging ended and a new one started when it is for another
 * CA than p->staged_ca (*staging: the one open after).
 */
static int
ledger_pg_target_tx(struct ledger_pg *p, time_t now, int64_t *cur, int64_t *staging)
{
	struct ledger_pg_args a = { 0 }, b = { 0 };
	char ca[LEDGER_CA_ID_LEN + 1];
	PGresult *res;

	*cur = 0;
	if (p->cur_name[0] != '\0') {
		ledger_pg_arg_text(&a, p->cur_name);
		ledger_pg_arg_int(&a, now);
		if (ledger_pg_run(p, LPG_ADD_BUNDLE, &a) == -1)
			return -1;
		a.n = 1;
		if ((res = ledger_pg_exec(p, LPG_BUNDLE_ID, &a)) == NULL)
			return -1;
		*cur = PQntuples(res) == 1 ? ledger_pg_int(res, 0, 0) : 0;
		PQclear(res);
		if (*cur < 1)
			return -1;
	}
	if (ledger_pg_load_staging(p, staging, ca) == -1)
		return -1;
	if (strcmp(ca, p->staged_ca) == 0)
		return 0;
	ledger_pg_arg_int(&b, now);
	if (ledger_pg_run(p, LPG_END_STAGING, &b) == -1)
		return -1;
	*staging = 0;
	if (p->staged_ca[0] == '\0')
		return 0;
	b.n = 0;
	ledger_pg_arg_text(&b, p->staged_ca);
	ledger_pg_arg_int(&b, now);
	ledger_pg_arg_text(&b, p->member);
	if ((res = ledger_pg_exec(p, LPG_NEW_STAGING, &b)) == NULL)
		return -1;
	*staging = PQntuples(res) == 1 ? ledger_pg_int(res, 0, 0) : 0;
	PQclear(res);
	return *staging > 0 ? 0 : -1;
}

/*
 * The staged CA is the pool's: compared with the open staging in the
 * database, not with what this member saw last. The wish is kept when it
 * cannot be stored and applied once the database is back.
 */
int
ledger_pg_set_target(void *self, const char *staged_ca, const char *bundle_id)
{
	struct ledger_pg *p = self;
	int64_t cur = 0, staging = 0, was = p->staging;

	if (p->in_batch) {
		log_warnx("ledger (postgresql): set_target inside a batch");
		return -1;
	}
	if (strcmp(p->staged_ca, staged_ca != NULL ? staged_ca : "") != 0)
		p->staging = -1; /* not known until stored: the cache never matches it */
	if (strcmp(p->cur_name, bundle_id != NULL ? bundle_id : "") != 0)
		p->cur = bundle_id != NULL ? -1 : 0;
	snprintf(p->staged_ca, sizeof(p->staged_ca), "%s", staged_ca != NULL ? staged_ca : "");
	snprintf(p->cur_name, sizeof(p->cur_name), "%s", bundle_id != NULL ? bundle_id : "");
	p->target_stale = 1;
	if (ledger_pg_begin_tx(p) == -1)
		return -1;
	if (ledger_pg_lock(p, LEDGER_PG_LOCK_TARGET) == -1 ||
	    ledger_pg_target_tx(p, time(NULL), &cur, &staging) == -1 ||
	    ledger_pg_run(p, LPG_COMMIT, NULL) == -1) {
		if (p->up && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
			ledger_pg_run(p, LPG_ROLLBACK, NULL);
		return -1;
	}
	p->cur = cur;
	p->staging = staging;
	p->target_stale = 0;
	if (staging != was)
		log_info("ledger (postgresql): target CA %s (staging %lld)",
		    p->staged_ca[0] != '\0' ? p->staged_ca : "none", (long long)staging);
	return 0;
}

/* The append-only triggers are in place and enabled: 1, 0 (problem says which), -1. */
static int
ledger_pg_quick_check(void *self, char *problem, size_t len)
{
	struct ledger_pg *p = self;
	PGresult *res;
	int64_t n;

	problem[0] = '\0';
	if (ledger_pg_ready(p) == -1 || (res = ledger_pg_exec(p, LPG_QUICK_CHECK, NULL)) == NULL) {
		snprintf(problem, len, "cannot reach the pool's PostgreSQL database");
		return -1;
	}
	n = ledger_pg_int(res, 0, 0);
	PQclear(res);
	if (n == LEDGER_PG_NTRIGGERS)
		return 1;
	snprintf(problem, len,
	    "the audit log's append-only triggers were removed or disabled (%lld of %d in "
	    "place); they are put back at the next start",
	    (long long)n, LEDGER_PG_NTRIGGERS);
	return 0;
}

/* Reachable while the connection is up; the last outage's reason is kept after it. */
static void
ledger_pg_health(const void *self, struct ledger_health *h)
{
	const struct ledger_pg *p = self;

	h->reachable = p->up && PQstatus(p->conn) == CONNECTION_OK;
	snprintf(h->last_error, sizeof(h->last_error), "%s", p->last_error);
	h->last_error_at = p->last_error_at;
}

/* A read of the audit chain's head: the cheapest statement that crosses to the server. */
static int
ledger_pg_probe(void *self)
{
	uint64_t n;

	return ledger_pg_audit_count(self, &n);
}

const struct ledger_backend ledger_pg_backend = {
	.name = "postgresql",
	.close = ledger_pg_close,
	.quick_check = ledger_pg_quick_check,
	.set_target = ledger_pg_set_target,
	.begin = ledger_pg_begin,
	.commit = ledger_pg_commit,
	.rollback = ledger_pg_rollback,
	.in_batch = ledger_pg_in_batch,
	.link = ledger_pg_link,
	.link_join = ledger_pg_link_join,
	.join_check = ledger_pg_join_check,
	.renew = ledger_pg_renew,
	.total = ledger_pg_total,
	.forget = ledger_pg_forget,
	.forget_unconfirmed = ledger_pg_forget_unconfirmed,
	.join_create = ledger_pg_join_create,
	.join_revoke = ledger_pg_join_revoke,
	.join_list = ledger_pg_join_list,
	.checkin = ledger_pg_checkin,
	.checkin_run = ledger_pg_checkin_run,
	.exclude = ledger_pg_exclude,
	.include = ledger_pg_include,
	.get = ledger_pg_get,
	.count = ledger_pg_count,
	.pending = ledger_pg_pending,
	.holdings = ledger_pg_holdings,
	.audit_append = ledger_pg_audit_append,
	.audit_list = ledger_pg_audit_list,
	.audit_last = ledger_pg_audit_last,
	.audit_count = ledger_pg_audit_count,
	.audit_verify_step = ledger_pg_audit_verify_step,
	.health = ledger_pg_health,
	.probe = ledger_pg_probe,
	.blob_get = ledger_pg_blob_get,
	.blob_put_new = ledger_pg_blob_put_new,
	.import_begin = ledger_pg_import_begin,
	.import_agent = ledger_pg_import_agent,
	.import_join = ledger_pg_import_join,
	.import_end = ledger_pg_import_end,
	.member_beat = ledger_pg_member_beat,
	.member_list = ledger_pg_member_list,
	.count_members = ledger_pg_count_members,
	.member_applied = ledger_pg_member_applied,
	.pool_state_get = ledger_pg_pool_state_get,
	.pool_state_put = ledger_pg_pool_state_put,
	.pool_lock = ledger_pg_pool_lock,
	.pool_unlock = ledger_pg_pool_unlock,
	.pool_socket = ledger_pg_pool_socket,
	.pool_notified = ledger_pg_pool_notified,
};
