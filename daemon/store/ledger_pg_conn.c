/*
 * The pool ledger's connection to PostgreSQL: connecting (and connecting
 * again once a second at most after a loss), the session's settings, the
 * prepared statements, running them with their parameters, reading their
 * results, and the savepoint around each call of a batch. libpq's messages
 * are cut of the password before they reach a log line or an err buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "ledger.h"
#include "ledger_pg.h"
#include "log.h"
#include "xmalloc.h"

/*
 * XXX A connection attempt blocks the daemon's event loop (PQreset), up to
 * this long when the server's host does not answer: attempts after a failure
 * back off, from 1 s to LEDGER_PG_BACKOFF_MAX s, so a cut-off member spends
 * at most a few percent of its time waiting on them.
 */
#define LEDGER_PG_CONNECT_TIMEOUT   "3" /* seconds; a DSN's own connect_timeout wins */
#define LEDGER_PG_LOCK_TIMEOUT      "2s"
#define LEDGER_PG_STATEMENT_TIMEOUT "30s" /* a pending page deep into millions: ~1 s */
#define LEDGER_PG_IDLE_TIMEOUT      "60s"
#define LEDGER_PG_BACKOFF_MAX       32 /* seconds between attempts while cut off */

static void ledger_pg_notice(void *, const char *);
static int ledger_pg_show(struct ledger_pg *, const char *, const char *, char *, size_t);
static int ledger_pg_writer(struct ledger_pg *, char *, size_t);
static int ledger_pg_prepare(struct ledger_pg *, char *, size_t);
static int ledger_pg_reconnect(struct ledger_pg *);
static void ledger_pg_fail(struct ledger_pg *, enum ledger_pg_st, PGresult *);
static int ledger_pg_hexval(char);
static void ledger_pg_outage(struct ledger_pg *, const char *);
static int ledger_pg_send(struct ledger_pg *, enum ledger_pg_st, const struct ledger_pg_args *);
static PGresult *ledger_pg_take(struct ledger_pg *);
static PGresult *ledger_pg_exec_owed(
    struct ledger_pg *, enum ledger_pg_st, const struct ledger_pg_args *);
static int ledger_pg_dsn_ok(const char *, char *, size_t);

/*
 * libpq's message on one line, with the password cut out: a message may echo
 * what it was given. Parse errors never get here (ledger_pg_dsn_ok).
 */
void
ledger_pg_scrub(PGconn *conn, const char *msg, char *out, size_t len)
{
	const char *pass = conn != NULL ? PQpass(conn) : NULL;
	size_t plen = pass != NULL ? strlen(pass) : 0, o = 0;

	if (msg == NULL)
		msg = "";
	while (*msg != '\0' && o + 1 < len) {
		if (plen > 0 && strncmp(msg, pass, plen) == 0) {
			o += (size_t)snprintf(out + o, len - o, "***");
			o = o < len ? o : len - 1;
			msg += plen;
			continue;
		}
		out[o++] = *msg == '\n' || *msg == '\t' ? ' ' : *msg;
		msg++;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* A member's name: 1 to 63 of A-Z a-z 0-9 . _ - (what [ledger] member allows). */
int
ledger_pg_member_ok(const char *m)
{
	size_t i, n = m != NULL ? strnlen(m, LEDGER_PG_MAX_MEMBER + 1) : 0;

	if (n == 0 || n > LEDGER_PG_MAX_MEMBER)
		return 0;
	for (i = 0; i < n; i++)
		if (!((m[i] >= 'a' && m[i] <= 'z') || (m[i] >= 'A' && m[i] <= 'Z') ||
		        (m[i] >= '0' && m[i] <= '9') || m[i] == '.' || m[i] == '_' || m[i] == '-'))
			return 0;
	return 1;
}

/* libpq's parse errors quote the string: ours says only that it does not parse. */
static int
ledger_pg_dsn_ok(const char *dsn, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *perr = NULL;

	if (dsn == NULL || dsn[0] == '\0') {
		snprintf(err, errlen, "ledger (postgresql): the connection string is empty");
		return 0;
	}
	opts = PQconninfoParse(dsn, &perr);
	if (perr != NULL) {
		OPENSSL_cleanse(perr, strlen(perr));
		PQfreemem(perr);
	}
	if (opts == NULL) {
		snprintf(err, errlen,
		    "ledger (postgresql): the connection string does not parse (libpq's "
		    "keyword=value or postgresql:// form)");
		return 0;
	}
	PQconninfoFree(opts);
	return 1;
}

int
ledger_pg_connect(struct ledger_pg *p, const char *dsn, char *err, size_t errlen)
{
	/*
	 * Defaults a DSN's own values override (it comes last): a peer gone silent over TCP is
	 * noticed in about 15 s rather than never, since every ledger call waits on the event
	 * loop. XXX: a server that stops answering on a Unix socket still blocks a call until
	 * it answers; only an asynchronous connection would bound that.
	 */
	static const char *const keys[] = { "connect_timeout", "fallback_application_name",
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
		"tcp_user_timeout", "dbname", NULL };
	const char *vals[] = { LEDGER_PG_CONNECT_TIMEOUT, "carotated", "1", "5", "2", "3", "15000",
		dsn, NULL };
	char msg[LEDGER_PG_ERRMAX];

	if (!ledger_pg_dsn_ok(dsn, err, errlen))
		return -1;
	p->conn = PQconnectdbParams(keys, vals, 1);
	if (p->conn == NULL)
		fatalx("%s: out of memory", __func__);
	PQsetNoticeProcessor(p->conn, ledger_pg_notice, NULL);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
		snprintf(err, errlen, "ledger (postgresql): cannot connect: %s", msg);
		return -1;
	}
	return 0;
}

/* The server's notices (a migration's "already exists, skipping") are for debugging only. */
static void
ledger_pg_notice(void *arg, const char *msg)
{
	log_debug("ledger (postgresql): %.*s", (int)strcspn(msg, "\n"), msg);
}

/* A constant statement without parameters or results (set-up only). */
int
ledger_pg_simple(struct ledger_pg *p, const char *sql, char *err, size_t errlen)
{
	PGresult *res = PQexec(p->conn, sql);
	char msg[LEDGER_PG_ERRMAX];
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok) {
		ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
		snprintf(err, errlen, "ledger (postgresql): %.60s: %s", sql, msg);
	}
	PQclear(res);
	return ok ? 0 : -1;
}

/* The session setting name must read want. */
static int
ledger_pg_show(struct ledger_pg *p, const char *name, const char *want, char *err, size_t errlen)
{
	const char *params[1] = { name };
	PGresult *res =
	    PQexecParams(p->conn, "SELECT current_setting($1)", 1, NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	         strcmp(PQgetvalue(res, 0, 0), want) == 0;

	if (!ok)
		snprintf(
		    err, errlen, "ledger (postgresql): %s is not %s for this session", name, want);
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * The session's carotate.member: the agent_tally rows its writes add to (ledger_pg_sql.c's
 * schema version 4), so that members never wait on one another's counters.
 */
static int
ledger_pg_writer(struct ledger_pg *p, char *err, size_t errlen)
{
	const char *params[1] = { p->member };
	PGresult *res = PQexecParams(p->conn, "SELECT set_config('carotate.member', $1, false)", 1,
	    NULL, params, NULL, NULL, 0);
	int ok = PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "ledger (postgresql): cannot name the session's member");
	PQclear(res);
	return ok ? 0 : -1;
}

/*
 * Durable commits (synchronous_commit on, checked: a role or database default
 * could say otherwise) and the isolation the statements are written for.
 */
int
ledger_pg_session(struct ledger_pg *p, char *err, size_t errlen)
{
	char fsync_err[128];

	/*
	 * The timeouts bound what one member can make the others wait for: a statement
	 * waiting on a lock another member holds gives up after lock_timeout (the call
	 * fails, the agent repeats its check-in), a slow one after statement_timeout, and
	 * a member that stalls inside a transaction loses it (and its row locks) after
	 * idle_in_transaction_session_timeout.
	 */
	if (ledger_pg_simple(p,
	        "SET synchronous_commit = on; "
	        "SET default_transaction_isolation = 'read committed'; "
	        "SET default_transaction_read_only = off; SET client_min_messages = warning; "
	        "SET lock_timeout = '" LEDGER_PG_LOCK_TIMEOUT "'; "
	        "SET statement_timeout = '" LEDGER_PG_STATEMENT_TIMEOUT "'; "
	        "SET idle_in_transaction_session_timeout = '" LEDGER_PG_IDLE_TIMEOUT "'",
	        err, errlen) == -1 ||
	    ledger_pg_show(p, "synchronous_commit", "on", err, errlen) == -1 ||
	    ledger_pg_writer(p, err, errlen) == -1)
		return -1;
	if (ledger_pg_show(p, "fsync", "on", fsync_err, sizeof(fsync_err)) == -1)
		log_warnx("ledger (postgresql): the server runs with fsync off: a crash of its "
		          "host can lose check-ins the ledger counted");
	return 0;
}

static int
ledger_pg_prepare(struct ledger_pg *p, char *err, size_t errlen)
{
	char name[16], msg[LEDGER_PG_ERRMAX];
	PGresult *res;
	int i, ok;

	for (i = 0; i < LPG_COUNT_ST; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		res = PQprepare(p->conn, name, ledger_pg_sql[i], 0, NULL);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		PQclear(res);
		if (!ok) {
			ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
			snprintf(err, errlen, "ledger (postgresql): prepare %.60s: %s",
			    ledger_pg_sql[i], msg);
			return -1;
		}
	}
	return 0;
}

/*
 * What every new connection needs before its first call, LISTEN included: a
 * connection made again listens again (the old one's subscription died with it).
 */
int
ledger_pg_setup(struct ledger_pg *p, char *err, size_t errlen)
{
	if (ledger_pg_session(p, err, errlen) == -1 || ledger_pg_prepare(p, err, errlen) == -1 ||
	    ledger_pg_simple(p, "LISTEN " LEDGER_PG_POOL_CHANNEL, err, errlen) == -1)
		return -1;
	p->up = 1;
	return 0;
}

/*
 * A new connection (PQreset keeps the parameters) with the session and the
 * statements set up again, and a target that could not be stored meanwhile.
 */
static int
ledger_pg_reconnect(struct ledger_pg *p)
{
	char err[LEDGER_PG_ERRMAX], msg[LEDGER_PG_ERRMAX];

	p->up = 0;
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		p->backoff = p->backoff == 0 ? 1 : p->backoff * 2;
		if (p->backoff > LEDGER_PG_BACKOFF_MAX)
			p->backoff = LEDGER_PG_BACKOFF_MAX;
		p->retry_at = time(NULL) + p->backoff;
		if (!p->said_down) {
			ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
			ledger_pg_outage(p, msg);
			log_warnx(
			    "ledger (postgresql): cut off from the database (%s); check-ins "
			    "are answered from the cache and counted nowhere until it is back",
			    msg);
			p->said_down = 1;
		}
		return -1;
	}
	if (ledger_pg_setup(p, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		return -1;
	}
	log_info("ledger (postgresql): connected again");
	p->pool_missed = 1; /* whatever was notified meanwhile went to the old connection */
	p->said_down = 0;
	p->backoff = 0;
	p->retry_at = 0;
	if (p->target_stale && !p->in_batch && p->retarget != NULL)
		p->retarget(p);
	return 0;
}

/* The reason of an outage, for ledger_health (scrubbed already). */
static void
ledger_pg_outage(struct ledger_pg *p, const char *msg)
{
	snprintf(p->last_error, sizeof(p->last_error), "%.*s", (int)sizeof(p->last_error) - 1, msg);
	p->last_error_at = (int64_t)time(NULL);
}

/* 0 when the connection is usable, connecting again if need be (and not backing off). */
int
ledger_pg_ready(struct ledger_pg *p)
{
	if (p->up && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	if (time(NULL) < p->retry_at)
		return -1;
	return ledger_pg_reconnect(p);
}

/* The connection turned out lost outside a statement (reading notifications): said once. */
void
ledger_pg_lost(struct ledger_pg *p)
{
	char msg[LEDGER_PG_ERRMAX];

	p->up = 0;
	if (p->said_down)
		return;
	ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
	ledger_pg_outage(p, msg);
	log_warnx("ledger (postgresql): lost the connection: %s", msg);
}

/* Logs a failed statement: the server's message, or the lost connection (once). */
static void
ledger_pg_fail(struct ledger_pg *p, enum ledger_pg_st which, PGresult *res)
{
	const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[LEDGER_PG_ERRMAX];

	if (PQstatus(p->conn) != CONNECTION_OK) {
		ledger_pg_lost(p);
		return;
	}
	ledger_pg_scrub(
	    p->conn, primary != NULL ? primary : PQerrorMessage(p->conn), msg, sizeof(msg));
	log_warnx("ledger (postgresql): %.60s: %s", ledger_pg_sql[which], msg);
}

/* Sends a prepared statement in pipeline mode: 0, or -1. */
static int
ledger_pg_send(struct ledger_pg *p, enum ledger_pg_st which, const struct ledger_pg_args *a)
{
	char name[16];

	snprintf(name, sizeof(name), "s%d", (int)which);
	return PQsendQueryPrepared(p->conn, name, a != NULL ? a->n : 0, a != NULL ? a->v : NULL,
	           a != NULL ? a->len : NULL, a != NULL ? a->fmt : NULL, 0) == 1
	           ? 0
	           : -1;
}

/* The next statement's result in a pipeline (NULL when the connection is gone). */
static PGresult *
ledger_pg_take(struct ledger_pg *p)
{
	PGresult *res = PQgetResult(p->conn), *end;

	if (res != NULL && PQresultStatus(res) != PGRES_PIPELINE_SYNC)
		while ((end = PQgetResult(p->conn)) != NULL) /* the statement's end */
			PQclear(end);
	return res;
}

/*
 * The owed release and savepoint, then the statement, in one round trip
 * (libpq's pipeline mode): a check-in costs one or two round trips, not four.
 * A failed release or savepoint fails the batch: the savepoints would no
 * longer say which call undoes what.
 */
static PGresult *
ledger_pg_exec_owed(struct ledger_pg *p, enum ledger_pg_st which, const struct ledger_pg_args *a)
{
	enum ledger_pg_st pre[2];
	PGresult *res = NULL, *out = NULL;
	int i, npre = 0, ok = 1;

	if (p->owe_release)
		pre[npre++] = LPG_RELEASE;
	if (p->owe_savepoint)
		pre[npre++] = LPG_SAVEPOINT;
	if (PQenterPipelineMode(p->conn) != 1)
		return NULL;
	for (i = 0; i < npre; i++)
		ok = ok && ledger_pg_send(p, pre[i], NULL) == 0;
	ok = ok && ledger_pg_send(p, which, a) == 0 && PQpipelineSync(p->conn) == 1;
	for (i = 0; ok && i <= npre; i++) {
		res = ledger_pg_take(p);
		if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		    PQresultStatus(res) == PGRES_TUPLES_OK) {
			if (i < npre && pre[i] == LPG_SAVEPOINT)
				p->call_saved = 1;
			if (i == npre)
				out = res;
			else
				PQclear(res);
			continue;
		}
		ledger_pg_fail(p, i < npre ? pre[i] : which, res);
		PQclear(res);
		if (i < npre)
			p->batch_failed = 1;
		ok = 0;
	}
	while (PQstatus(p->conn) == CONNECTION_OK && (res = PQgetResult(p->conn)) != NULL &&
	       PQresultStatus(res) != PGRES_PIPELINE_SYNC)
		PQclear(res); /* what the failure left: aborted statements, up to the sync */
	PQclear(res);
	if (PQexitPipelineMode(p->conn) != 1 && PQstatus(p->conn) == CONNECTION_OK) {
		log_warnx("ledger (postgresql): the connection's pipeline did not end (the server "
		          "went away?); connecting again");
		p->up = 0;
	}
	p->owe_release = p->owe_savepoint = 0;
	if (!ok)
		PQclear(out);
	return ok ? out : NULL;
}

/* Runs a prepared statement; its result (the caller clears it), NULL on failure (logged). */
PGresult *
ledger_pg_exec(struct ledger_pg *p, enum ledger_pg_st which, const struct ledger_pg_args *a)
{
	char name[16];
	PGresult *res;
	ExecStatusType st;

	if (!p->up)
		return NULL;
	if (p->owe_release || p->owe_savepoint)
		return ledger_pg_exec_owed(p, which, a);
	snprintf(name, sizeof(name), "s%d", (int)which);
	res = PQexecPrepared(p->conn, name, a != NULL ? a->n : 0, a != NULL ? a->v : NULL,
	    a != NULL ? a->len : NULL, a != NULL ? a->fmt : NULL, 0);
	st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	ledger_pg_fail(p, which, res);
	PQclear(res);
	return NULL;
}

/* A statement whose result is not read. */
int
ledger_pg_run(struct ledger_pg *p, enum ledger_pg_st which, const struct ledger_pg_args *a)
{
	PGresult *res = ledger_pg_exec(p, which, a);

	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* Takes pool-wide lock key for the rest of the transaction. */
int
ledger_pg_lock(struct ledger_pg *p, int key)
{
	struct ledger_pg_args a = { 0 };

	ledger_pg_arg_int(&a, LEDGER_PG_LOCK_NS);
	ledger_pg_arg_int(&a, key);
	return ledger_pg_run(p, LPG_LOCK, &a);
}

void
ledger_pg_arg_text(struct ledger_pg_args *a, const char *s)
{
	a->v[a->n] = s;
	a->len[a->n] = 0;
	a->fmt[a->n] = 0;
	a->n++;
}

void
ledger_pg_arg_int(struct ledger_pg_args *a, int64_t v)
{
	snprintf(a->num[a->n], sizeof(a->num[a->n]), "%lld", (long long)v);
	ledger_pg_arg_text(a, a->num[a->n]);
}

/* A reference to another table's id; 0 means none (NULL). */
void
ledger_pg_arg_ref(struct ledger_pg_args *a, int64_t ref)
{
	if (ref > 0)
		ledger_pg_arg_int(a, ref);
	else
		ledger_pg_arg_text(a, NULL);
}

void
ledger_pg_arg_time(struct ledger_pg_args *a, int set, int64_t t)
{
	if (set)
		ledger_pg_arg_int(a, t);
	else
		ledger_pg_arg_text(a, NULL);
}

/* Bytes, sent as binary (bytea). */
void
ledger_pg_arg_bytes(struct ledger_pg_args *a, const uint8_t *b, size_t n)
{
	a->v[a->n] = (const char *)b;
	a->len[a->n] = (int)n;
	a->fmt[a->n] = 1;
	a->n++;
}

/* An integer column (text format); 0 for NULL. */
int64_t
ledger_pg_int(const PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col))
		return 0;
	if (strcmp(s, "t") == 0)
		return 1;
	return strtoll(s, NULL, 10);
}

static int
ledger_pg_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A bytea column of exactly n bytes (text format, hex: "\x..."): 0, or -1. */
int
ledger_pg_bytes(const PGresult *res, int row, int col, uint8_t *out, size_t n)
{
	const char *s = PQgetvalue(res, row, col);
	size_t i;
	int hi, lo;

	if (PQgetisnull(res, row, col) || (size_t)PQgetlength(res, row, col) != 2 + 2 * n ||
	    s[0] != '\\' || s[1] != 'x')
		return -1;
	for (i = 0; i < n; i++) {
		if ((hi = ledger_pg_hexval(s[2 + 2 * i])) < 0 ||
		    (lo = ledger_pg_hexval(s[3 + 2 * i])) < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* A bytea column of at most cap bytes (text format, hex) into buf, *len its length: 0, or -1. */
int
ledger_pg_blob(const PGresult *res, int row, int col, uint8_t *buf, size_t cap, size_t *len)
{
	size_t hex = (size_t)PQgetlength(res, row, col);

	if (PQgetisnull(res, row, col) || hex < 2 || hex % 2 != 0 || (hex - 2) / 2 > cap)
		return -1;
	*len = (hex - 2) / 2;
	return ledger_pg_bytes(res, row, col, buf, *len);
}

/* BEGIN, once more on a fresh connection when the old one turns out lost. */
int
ledger_pg_begin_tx(struct ledger_pg *p)
{
	int was_up = p->up;

	if (ledger_pg_ready(p) == 0 && ledger_pg_run(p, LPG_BEGIN, NULL) == 0)
		return 0;
	if (!was_up || PQstatus(p->conn) == CONNECTION_OK)
		return -1;
	p->retry_at = 0; /* lost just now (a server restarted): try at once */
	return ledger_pg_ready(p) == 0 ? ledger_pg_run(p, LPG_BEGIN, NULL) : -1;
}

/*
 * A read outside the batch rules (get, join_list): inside a batch it is a call
 * of the batch (a savepoint; ledger_pg_call_end after), outside one it needs
 * the connection. 1 inside a batch, 0 outside, -1 when it cannot run.
 */
int
ledger_pg_read_begin(struct ledger_pg *p)
{
	if (p->in_batch)
		return ledger_pg_call_begin(p, "read") == 0 ? 1 : -1;
	return ledger_pg_ready(p) == 0 ? 0 : -1;
}

/*
 * Write calls need an open batch that has not failed; each runs inside a
 * savepoint, sent with the call's first statement (ledger_pg_exec_owed).
 */
int
ledger_pg_call_begin(struct ledger_pg *p, const char *what)
{
	if (!p->in_batch) {
		log_warnx("ledger (postgresql): %s outside a batch", what);
		return -1;
	}
	if (p->batch_failed || p->offline)
		return -1;
	p->call_clean = 0;
	if (p->saved_clean) {
		/* The last call wrote nothing since its savepoint: this call's undo is the same. */
		p->saved_clean = 0;
		p->owe_savepoint = 0;
		p->call_saved = 1;
		return 0;
	}
	p->owe_savepoint = 1;
	p->call_saved = 0;
	return 0;
}

/*
 * After a call: a failed one is undone alone (back to its savepoint, its cache
 * updates from mark on dropped); the batch fails only when that cannot be
 * done. A call that ran nothing has nothing to undo or release; the release
 * of one that succeeded goes with the next statement (COMMIT releases all),
 * unless it wrote nothing (call_clean): its savepoint then serves the next call.
 */
enum ledger_result
ledger_pg_call_end(struct ledger_pg *p, enum ledger_result r, size_t mark)
{
	p->owe_savepoint = 0;
	if (!p->call_saved) {
		if (r == LEDGER_ERROR)
			p->npend = mark;
		return r;
	}
	p->call_saved = 0;
	if (r != LEDGER_ERROR && p->call_clean) {
		p->saved_clean = 1; /* kept for the next call */
		return r;
	}
	if (r != LEDGER_ERROR) {
		p->owe_release = 1;
		return r;
	}
	p->npend = mark;
	if (ledger_pg_run(p, LPG_ROLLBACK_TO, NULL) == -1 ||
	    ledger_pg_run(p, LPG_RELEASE, NULL) == -1) {
		log_warnx("ledger (postgresql): the transaction is lost; the batch fails");
		p->batch_failed = 1;
		p->npend = 0;
	}
	return r;
}

void
ledger_pg_pend(struct ledger_pg *p, const char *id, int forget, const struct ledger_pg_cached *c)
{
	struct ledger_pg_update *u;

	if (p->npend == p->pendcap) {
		p->pendcap = p->pendcap == 0 ? 64 : p->pendcap * 2;
		p->pend = xreallocarray(p->pend, p->pendcap, sizeof(*p->pend));
	}
	u = &p->pend[p->npend++];
	snprintf(u->id, sizeof(u->id), "%s", id);
	u->forget = forget;
	if (c != NULL)
		u->c = *c;
	else
		memset(&u->c, 0, sizeof(u->c));
}
