/*
 * A single proxy's ledger copied into the pool (ledger_migrate): agents and
 * join tokens added in one transaction, each only when the pool lacks its id,
 * and the migration's audit record chained in the same transaction, so that
 * the copy and its record are durable together or not at all. Run once by
 * hand: its statements are prepared by the migration, not by every connection.
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_pg.h"
#include "log.h"

/*
 * The row goes in when the id is free; otherwise the pool's row is left and
 * compared (the SELECT sees the statement's snapshot: the pool's row, never
 * the one inserted). Answers (rows inserted, token hashes equal). The bundle
 * the agent last presented back ($9, NULL for none) comes with it, so that a
 * migrated agent is not taken for one that never confirmed anything
 * (ledger_forget_unconfirmed would delete it).
 */
#define LEDGER_PG_IMPORT_AGENT                                                                     \
	"WITH b AS (INSERT INTO bundles (bundle_id, first_served) "                                \
	"SELECT $9::text, $5::bigint WHERE $9::text IS NOT NULL "                                  \
	"ON CONFLICT (bundle_id) DO NOTHING RETURNING id), "                                       \
	"ins AS (INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, "                \
	"last_seen, linked_by, is_excluded, exclude_reason, held_bundle) "                         \
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce((SELECT id FROM b), "                    \
	"(SELECT id FROM bundles WHERE bundle_id = $9::text))) "                                   \
	"ON CONFLICT (agent_id) DO NOTHING RETURNING id) "                                         \
	"SELECT (SELECT count(*) FROM ins), "                                                      \
	"coalesce((SELECT token_hash = $2 FROM agents WHERE agent_id = $1), true)"
#define LEDGER_PG_IMPORT_JOIN                                                                      \
	"WITH ins AS (INSERT INTO join_tokens (id, token_hash, uses_left, expires_at, "            \
	"description, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "                \
	"ON CONFLICT (id) DO NOTHING RETURNING id) "                                               \
	"SELECT (SELECT count(*) FROM ins), "                                                      \
	"coalesce((SELECT token_hash = $2 FROM join_tokens WHERE id = $1), true)"

/* Prepared by the first migration of a connection, before its transaction. */
#define LEDGER_PG_IMPORT_AGENT_ST "carotate_import_agent"
#define LEDGER_PG_IMPORT_JOIN_ST  "carotate_import_join"

static int ledger_pg_import_prepare(struct ledger_pg *, const char *, const char *, char *, size_t);
static int ledger_pg_import_row(
    struct ledger_pg *, const char *, const struct ledger_pg_args *, char *, size_t);

/*
 * A row costs one round trip: prepared once, it is not planned again for each
 * of a large fleet's rows. One the connection has already is kept.
 */
static int
ledger_pg_import_prepare(
    struct ledger_pg *p, const char *name, const char *sql, char *err, size_t errlen)
{
	PGresult *q = PQprepare(p->conn, name, sql, 0, NULL);
	const char *state = PQresultErrorField(q, PG_DIAG_SQLSTATE);
	char msg[LEDGER_PG_ERRMAX];
	int ok = PQresultStatus(q) == PGRES_COMMAND_OK ||
	         (state != NULL && strcmp(state, "42P05") == 0); /* duplicate_prepared_statement */

	if (!ok) {
		ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
		snprintf(err, errlen, "ledger (postgresql): prepare the migration: %s", msg);
	}
	PQclear(q);
	return ok ? 0 : -1;
}

/* Outside a batch, on a connection that answers: BEGIN. */
int
ledger_pg_import_begin(void *self, char *err, size_t errlen)
{
	struct ledger_pg *p = self;

	if (p->in_batch) {
		snprintf(err, errlen, "ledger (postgresql): a migration inside a batch");
		return -1;
	}
	if (ledger_pg_ready(p) == 0 && (ledger_pg_import_prepare(p, LEDGER_PG_IMPORT_AGENT_ST,
	                                    LEDGER_PG_IMPORT_AGENT, err, errlen) == -1 ||
	                                   ledger_pg_import_prepare(p, LEDGER_PG_IMPORT_JOIN_ST,
	                                       LEDGER_PG_IMPORT_JOIN, err, errlen) == -1))
		return -1;
	if (ledger_pg_begin_tx(p) == -1) {
		snprintf(err, errlen,
		    "ledger (postgresql): cannot begin the migration's "
		    "transaction: %s",
		    p->last_error[0] != '\0' ? p->last_error : "see the log");
		return -1;
	}
	return 0;
}

/* One row's statement: an enum ledger_import, or -1 with the server's reason in err. */
static int
ledger_pg_import_row(
    struct ledger_pg *p, const char *name, const struct ledger_pg_args *a, char *err, size_t errlen)
{
	PGresult *q = PQexecPrepared(p->conn, name, a->n, a->v, a->len, a->fmt, 0);
	const char *primary = PQresultErrorField(q, PG_DIAG_MESSAGE_PRIMARY);
	char msg[LEDGER_PG_ERRMAX];
	int r;

	if (PQresultStatus(q) != PGRES_TUPLES_OK || PQntuples(q) != 1) {
		ledger_pg_scrub(
		    p->conn, primary != NULL ? primary : PQerrorMessage(p->conn), msg, sizeof(msg));
		snprintf(err, errlen, "ledger (postgresql): %s", msg);
		PQclear(q);
		return -1;
	}
	if (ledger_pg_int(q, 0, 0) == 1)
		r = LEDGER_IMPORT_COPIED;
	else
		r = ledger_pg_int(q, 0, 1) == 1 ? LEDGER_IMPORT_PRESENT : LEDGER_IMPORT_CONFLICT;
	PQclear(q);
	return r;
}

/* linked_by names the member that ran the migration: the pool's first sight of the agent. */
int
ledger_pg_import_agent(void *self, const struct ledger_export_agent *ag, char *err, size_t errlen)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };

	ledger_pg_arg_text(&a, ag->id);
	ledger_pg_arg_bytes(&a, ag->hash, sizeof(ag->hash));
	ledger_pg_arg_int(&a, ag->linked_at);
	ledger_pg_arg_int(&a, ag->first_seen);
	ledger_pg_arg_int(&a, ag->last_seen);
	ledger_pg_arg_text(&a, p->member);
	ledger_pg_arg_text(&a, ag->excluded ? "true" : "false");
	ledger_pg_arg_text(&a, ag->excluded ? ag->reason : NULL);
	ledger_pg_arg_text(&a, ag->held[0] != '\0' ? ag->held : NULL);
	return ledger_pg_import_row(p, LEDGER_PG_IMPORT_AGENT_ST, &a, err, errlen);
}

int
ledger_pg_import_join(void *self, const struct ledger_join *j, char *err, size_t errlen)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };

	ledger_pg_arg_text(&a, j->id);
	ledger_pg_arg_bytes(&a, j->hash, sizeof(j->hash));
	ledger_pg_arg_int(&a, j->uses_left);
	ledger_pg_arg_int(&a, j->expires_at);
	ledger_pg_arg_text(&a, j->description);
	ledger_pg_arg_int(&a, j->created_at);
	ledger_pg_arg_text(&a, p->member);
	return ledger_pg_import_row(p, LEDGER_PG_IMPORT_JOIN_ST, &a, err, errlen);
}

/* The record, then COMMIT; or ROLLBACK (rec NULL, or the record failed). */
int
ledger_pg_import_end(void *self, struct ledger_audit *rec, char *err, size_t errlen)
{
	struct ledger_pg *p = self;
	PGresult *q = NULL;
	int ok = 0;

	if (rec != NULL && ledger_pg_audit_chain(p, rec) == 0 &&
	    (q = ledger_pg_exec(p, LPG_COMMIT, NULL)) != NULL)
		ok = strcmp(PQcmdStatus(q), "COMMIT") == 0;
	PQclear(q);
	if (!ok && p->up && PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		ledger_pg_run(p, LPG_ROLLBACK, NULL);
	if (!ok && rec != NULL)
		snprintf(err, errlen,
		    "ledger (postgresql): the migration could not be committed (%s); nothing was "
		    "copied",
		    p->last_error[0] != '\0' ? p->last_error : "see the log");
	return ok || rec == NULL ? 0 : -1;
}
