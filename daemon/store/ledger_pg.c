/*
 * The pool's ledger on PostgreSQL (libpq): one database shared by every
 * member of a pool of proxies. This file owns the connection (and its
 * re-connection), the schema and its migrations, the batches and the target;
 * ledger_pg_agents.c the agents and the counts, ledger_pg_audit.c the audit
 * chain, ledger_pg_cache.c what a member answers from while cut off.
 *
 * Rules:
 * - Several members write the same tables, so nothing is counted from
 *   memory: every count is one SQL statement over committed rows.
 * - A batch is one transaction; each call in it runs inside a SAVEPOINT, so a
 *   call that fails is undone alone and the batch goes on. Only a lost
 *   connection (or a failed savepoint) fails the whole batch.
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

#define LEDGER_PG_CONNECT_TIMEOUT "10" /* seconds; a DSN's own connect_timeout wins */
#define LEDGER_PG_ERRMAX          512

/* An audit row in the order ledger_pg_audit.c reads it. */
#define LEDGER_PG_AUDIT_COLUMNS                                                                    \
	"seq, time, uid, pid, \"user\", call, result, detail, \"before\", \"after\", prev_hash, "  \
	"hash"

/* An agent's progress in the open staging ($2, 0 for none); current is held_bundle = $3. */
#define LEDGER_PG_ACKED     "coalesce(staging = $2 AND acknowledged_at IS NOT NULL, false)"
#define LEDGER_PG_DELIVERED "coalesce(staging = $2 AND staged_delivered_at IS NOT NULL, false)"
/* Lacking the target: the staged CA acknowledged, else the current bundle (ledger.h). */
#define LEDGER_PG_LACKING                                                                          \
	"CASE WHEN $2::bigint <> 0 THEN NOT " LEDGER_PG_ACKED " ELSE $3::bigint <> 0 AND "         \
	"held_bundle IS DISTINCT FROM $3 END"

/* The triggers that keep the audit log append-only (re-created at open when missing). */
#define LEDGER_PG_AUDIT_TRIGGERS                                                                   \
	"DROP TRIGGER IF EXISTS audit_no_update ON audit;"                                         \
	"DROP TRIGGER IF EXISTS audit_no_delete ON audit;"                                         \
	"DROP TRIGGER IF EXISTS audit_no_truncate ON audit;"                                       \
	"CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "                                   \
	"FOR EACH ROW EXECUTE FUNCTION carotate_audit_refuse();"                                   \
	"CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "                                   \
	"FOR EACH ROW EXECUTE FUNCTION carotate_audit_refuse();"                                   \
	"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "                               \
	"FOR EACH STATEMENT EXECUTE FUNCTION carotate_audit_refuse();"
#define LEDGER_PG_TRIGGERS_OK                                                                      \
	"SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit'::regclass AND tgenabled <> 'D' "  \
	"AND tgname IN ('audit_no_update', 'audit_no_delete', 'audit_no_truncate')"
#define LEDGER_PG_NTRIGGERS 3

const char *const ledger_pg_sql[LPG_COUNT_ST] = {
	[LPG_BEGIN] = "BEGIN ISOLATION LEVEL READ COMMITTED",
	[LPG_COMMIT] = "COMMIT",
	[LPG_ROLLBACK] = "ROLLBACK",
	[LPG_SAVEPOINT] = "SAVEPOINT call",
	[LPG_RELEASE] = "RELEASE SAVEPOINT call",
	[LPG_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT call",
	/* Held to the end of the transaction: a pool-wide job runs one member at a time. */
	[LPG_LOCK] = "SELECT pg_advisory_xact_lock($1::integer, $2::integer)",
	[LPG_LINK] = "INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, last_seen, "
	             "linked_by, delivered_bundle, staging, staged_delivered_at) "
	             "VALUES ($1, $2, $3, $3, $3, $4, $5, $6, $7) "
	             "ON CONFLICT (agent_id) DO NOTHING RETURNING id",
	/* The row is locked to the batch's end: two members never interleave one agent's writes. */
	[LPG_FIND] = "SELECT a.id, a.token_hash, a.delivered_bundle, a.held_bundle, a.is_excluded, "
	             "a.last_seen, a.staging, a.staged_delivered_at, a.acknowledged_at, "
	             "a.verified_at, b.bundle_id FROM agents a "
	             "LEFT JOIN bundles b ON b.id = a.delivered_bundle "
	             "WHERE a.agent_id = $1 FOR UPDATE OF a",
	[LPG_CHECKIN] = "UPDATE agents SET last_seen = $2, held_bundle = $3, "
	                "delivered_bundle = $4, staging = $5, staged_delivered_at = $6, "
	                "acknowledged_at = $7, verified_at = $8 WHERE id = $1",
	[LPG_EXCLUDE] = "UPDATE agents SET is_excluded = true, exclude_reason = $2 "
	                "WHERE agent_id = $1 RETURNING id",
	[LPG_INCLUDE] = "UPDATE agents SET is_excluded = false, exclude_reason = NULL "
	                "WHERE agent_id = $1 RETURNING id",
	[LPG_GET] = "SELECT agent_id, linked_at, last_seen, is_excluded, exclude_reason "
	            "FROM agents WHERE agent_id = $1",
	[LPG_TOTAL] = "SELECT count(*) FROM agents",
	[LPG_OPEN_STAGING] = "SELECT id, ca FROM stagings WHERE ended_at IS NULL "
	                     "ORDER BY id DESC LIMIT 1",
	[LPG_END_STAGING] = "UPDATE stagings SET ended_at = $1 WHERE ended_at IS NULL",
	[LPG_NEW_STAGING] = "INSERT INTO stagings (ca, started_at, started_by) VALUES ($1, $2, $3) "
	                    "RETURNING id",
	[LPG_ADD_BUNDLE] = "INSERT INTO bundles (bundle_id, first_served) VALUES ($1, $2) "
	                   "ON CONFLICT (bundle_id) DO NOTHING",
	[LPG_BUNDLE_ID] = "SELECT id FROM bundles WHERE bundle_id = $1",
	[LPG_RENEW] =
	    "UPDATE agents SET token_hash = $2, last_seen = greatest(last_seen, $3) WHERE id = $1",
	[LPG_FORGET] = "DELETE FROM agents WHERE agent_id = $1 RETURNING agent_id",
	/* Never confirmed: never presented a bundle back (held_bundle is set by the first). */
	[LPG_FORGET_UNCONFIRMED] = "DELETE FROM agents WHERE held_bundle IS NULL AND "
	                           "acknowledged_at IS NULL AND NOT is_excluded AND linked_at < $1 "
	                           "RETURNING agent_id",
	[LPG_JOIN_ADD] = "INSERT INTO join_tokens (id, token_hash, uses_left, expires_at, "
	                 "description, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
	                 "ON CONFLICT (id) DO NOTHING RETURNING id",
	[LPG_JOIN_FIND] = "SELECT token_hash, uses_left, expires_at FROM join_tokens WHERE id = $1",
	[LPG_JOIN_USE] = "UPDATE join_tokens SET uses_left = uses_left - 1 "
	                 "WHERE id = $1 AND uses_left > 0 RETURNING id",
	[LPG_JOIN_DEL] = "DELETE FROM join_tokens WHERE id = $1 RETURNING id",
	[LPG_JOIN_LIST] = "SELECT id, uses_left, expires_at, description, created_at "
	                  "FROM join_tokens ORDER BY created_at, id",
	/*
	 * Every count in one statement, so in one snapshot of committed rows.
	 * $1 the active window's first second, $2 the open staging, $3 the current bundle.
	 */
	[LPG_COUNT] = "SELECT count(*), count(*) FILTER (WHERE NOT x AND act), "
	              "count(*) FILTER (WHERE NOT x AND act AND ack), "
	              "count(*) FILTER (WHERE NOT x AND act AND ver), "
	              "count(*) FILTER (WHERE NOT x AND act AND dlv), "
	              "count(*) FILTER (WHERE NOT x AND act AND lack), "
	              "count(*) FILTER (WHERE NOT x AND NOT act AND lack), "
	              "count(*) FILTER (WHERE x), "
	              "count(*) FILTER (WHERE NOT x AND act AND cur), "
	              "count(*) FILTER (WHERE NOT x AND held_bundle IS NULL AND NOT ack) "
	              "FROM (SELECT is_excluded AS x, last_seen >= $1::bigint AS act, held_bundle, "
	              " " LEDGER_PG_ACKED " AS ack, "
	              " coalesce(staging = $2 AND verified_at IS NOT NULL, false) AS ver, "
	              " " LEDGER_PG_DELIVERED " AS dlv, coalesce(held_bundle = $3, false) AS cur, "
	              " " LEDGER_PG_LACKING " AS lack FROM agents) a",
	/* Most recently seen first, ties by link order; $4 limit, $5 offset. */
	[LPG_PENDING] = "SELECT agent_id, last_seen, " LEDGER_PG_DELIVERED " FROM agents "
	                "WHERE NOT is_excluded AND last_seen >= $1::bigint AND " LEDGER_PG_LACKING
	                " ORDER BY last_seen DESC, id LIMIT $4 OFFSET $5",
	[LPG_HOLDINGS] = "SELECT coalesce(b.bundle_id, ''), count(*) FROM agents a "
	                 "LEFT JOIN bundles b ON b.id = a.held_bundle "
	                 "WHERE NOT a.is_excluded AND a.last_seen >= $1 "
	                 "GROUP BY a.held_bundle, b.bundle_id "
	                 "ORDER BY count(*) DESC, coalesce(a.held_bundle, 0)",
	[LPG_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[LPG_AUDIT_INSERT] = "INSERT INTO audit (seq, time, uid, \"user\", pid, call, result, "
	                     "detail, \"before\", \"after\", prev_hash, hash, member) "
	                     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
	/* By seq, not OFFSET or count(*): both would read the whole log at every call. */
	[LPG_AUDIT_PAGE] = "SELECT " LEDGER_PG_AUDIT_COLUMNS " FROM audit "
	                   "WHERE seq <= (SELECT max(seq) FROM audit) - $2 "
	                   "ORDER BY seq DESC LIMIT $1",
	[LPG_AUDIT_CHAIN] = "SELECT " LEDGER_PG_AUDIT_COLUMNS " FROM audit WHERE seq > $1 "
	                    "ORDER BY seq LIMIT $2",
	[LPG_AUDIT_COUNT] = "SELECT coalesce(max(seq), 0) FROM audit",
	/* From the newest down, stopping at the first match; seq > $1 skips what was seen. */
	[LPG_AUDIT_LAST] = "SELECT " LEDGER_PG_AUDIT_COLUMNS " FROM audit "
	                   "WHERE seq > $1 AND call IN ($2, $3, $4, $5) AND strpos(detail, $6) > 0 "
	                   /* calls that reached an outcome (status_record_name's spelling) */
	                   "AND result IN ('OK', 'INTERNAL') ORDER BY seq DESC LIMIT 1",
	[LPG_QUICK_CHECK] = LEDGER_PG_TRIGGERS_OK,
};

/* Schema migrations: [i] takes version i to i + 1. Append only, never edit. */
static const char *const ledger_pg_migrations[] = {
	/* 0 -> 1: the schema of the SQLite ledger, with the member that did each thing. */
	"CREATE TABLE bundles ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" bundle_id text NOT NULL UNIQUE CHECK (length(bundle_id) BETWEEN 1 AND 64),"
	" first_served bigint NOT NULL);"
	"CREATE TABLE stagings ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" ca text NOT NULL CHECK (length(ca) BETWEEN 1 AND 64),"
	" started_at bigint NOT NULL,"
	" ended_at bigint,"
	" started_by text NOT NULL);"
	"CREATE TABLE agents ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" agent_id text NOT NULL UNIQUE CHECK (length(agent_id) BETWEEN 1 AND 64),"
	" token_hash bytea NOT NULL CHECK (length(token_hash) = 32),"
	" linked_at bigint NOT NULL,"
	" first_seen bigint NOT NULL,"
	" last_seen bigint NOT NULL,"
	" linked_by text NOT NULL,"
	" delivered_bundle bigint REFERENCES bundles (id),"
	" held_bundle bigint REFERENCES bundles (id),"
	" is_excluded boolean NOT NULL DEFAULT false,"
	" exclude_reason text,"
	/* Progress in staging `staging`; meaningless once another staging is open. */
	" staging bigint REFERENCES stagings (id),"
	" staged_delivered_at bigint,"
	" acknowledged_at bigint,"
	" verified_at bigint);"
	/* The pending page reads in this order. */
	"CREATE INDEX agents_seen ON agents (last_seen DESC, id);"
	"CREATE TABLE join_tokens ("
	" id text PRIMARY KEY CHECK (length(id) = 16),"
	" token_hash bytea NOT NULL CHECK (length(token_hash) = 32),"
	" uses_left bigint NOT NULL CHECK (uses_left >= 0),"
	" expires_at bigint NOT NULL,"
	" description text NOT NULL CHECK (length(description) <= 256),"
	" created_at bigint NOT NULL,"
	" created_by text NOT NULL);"
	/* The hash chain of ledger.h; member is not hashed (the encoding predates pools). */
	"CREATE TABLE audit ("
	" seq bigint PRIMARY KEY CHECK (seq >= 1),"
	" time bigint NOT NULL,"
	" uid bigint NOT NULL,"
	" \"user\" text NOT NULL,"
	" pid bigint NOT NULL,"
	" call text NOT NULL,"
	" result text NOT NULL,"
	" detail text NOT NULL,"
	" \"before\" text NOT NULL,"
	" \"after\" text NOT NULL,"
	" prev_hash text NOT NULL CHECK (length(prev_hash) = 64),"
	" hash text NOT NULL CHECK (length(hash) = 64),"
	" member text NOT NULL);"
	"CREATE FUNCTION carotate_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
	"$$BEGIN RAISE EXCEPTION 'the audit log is append-only'; END$$;" LEDGER_PG_AUDIT_TRIGGERS,
};
#define LEDGER_PG_VERSION ((int)(sizeof(ledger_pg_migrations) / sizeof(ledger_pg_migrations[0])))

static void ledger_pg_scrub(PGconn *, const char *, char *, size_t);
static int ledger_pg_member_ok(const char *);
static int ledger_pg_dsn_ok(const char *, char *, size_t);
static int ledger_pg_connect(struct ledger_pg *, const char *, char *, size_t);
static int ledger_pg_simple(struct ledger_pg *, const char *, char *, size_t);
static int ledger_pg_show(struct ledger_pg *, const char *, const char *, char *, size_t);
static int ledger_pg_session(struct ledger_pg *, char *, size_t);
static int ledger_pg_migrate(struct ledger_pg *, char *, size_t);
static int ledger_pg_migrate_tx(struct ledger_pg *, char *, size_t);
static int ledger_pg_guard(struct ledger_pg *, char *, size_t);
static int ledger_pg_prepare(struct ledger_pg *, char *, size_t);
static int ledger_pg_setup(struct ledger_pg *, char *, size_t);
static int ledger_pg_reconnect(struct ledger_pg *);
static void ledger_pg_retarget(struct ledger_pg *);
static void ledger_pg_notice(void *, const char *);
static void ledger_pg_fail(struct ledger_pg *, enum ledger_pg_st, PGresult *);
static void ledger_pg_apply(struct ledger_pg *);
static int ledger_pg_target_tx(struct ledger_pg *, time_t, int64_t *, int64_t *);
static int ledger_pg_load_staging(struct ledger_pg *, int64_t *, char *);
static int ledger_pg_begin(void *);
static int ledger_pg_commit(void *);
static void ledger_pg_rollback(void *);
static int ledger_pg_in_batch(const void *);
static int ledger_pg_quick_check(void *, char *, size_t);

/*
 * libpq's message on one line, with the password cut out: a message may echo
 * what it was given. Parse errors never get here (ledger_pg_dsn_ok).
 */
static void
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
static int
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

static int
ledger_pg_connect(struct ledger_pg *p, const char *dsn, char *err, size_t errlen)
{
	static const char *const keys[] = { "connect_timeout", "fallback_application_name",
		"dbname", NULL };
	const char *vals[] = { LEDGER_PG_CONNECT_TIMEOUT, "carotated", dsn, NULL };
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
static int
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
 * Durable commits (synchronous_commit on, checked: a role or database default
 * could say otherwise) and the isolation the statements are written for.
 */
static int
ledger_pg_session(struct ledger_pg *p, char *err, size_t errlen)
{
	char fsync_err[128];

	if (ledger_pg_simple(p,
	        "SET synchronous_commit = on; "
	        "SET default_transaction_isolation = 'read committed'; "
	        "SET default_transaction_read_only = off; SET client_min_messages = warning",
	        err, errlen) == -1 ||
	    ledger_pg_show(p, "synchronous_commit", "on", err, errlen) == -1)
		return -1;
	if (ledger_pg_show(p, "fsync", "on", fsync_err, sizeof(fsync_err)) == -1)
		log_warnx("ledger (postgresql): the server runs with fsync off: a crash of its "
		          "host can lose check-ins the ledger counted");
	return 0;
}

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
	if (v < 0 || v > LEDGER_PG_VERSION) {
		snprintf(err, errlen,
		    "ledger (postgresql) has schema version %d, but this carotated knows versions "
		    "up to %d: upgrade every member of the pool",
		    v, LEDGER_PG_VERSION);
		return -1;
	}
	for (; v < LEDGER_PG_VERSION; v++) {
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
	PGresult *res = PQexec(p->conn, LEDGER_PG_TRIGGERS_OK);
	int n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoi(PQgetvalue(res, 0, 0)) : -1;

	PQclear(res);
	if (n == LEDGER_PG_NTRIGGERS)
		return 0;
	log_warnx("ledger (postgresql): the triggers that keep the audit log append-only were "
	          "removed or disabled outside carotated; putting them back (carotatectl audit "
	          "--verify checks the records)");
	return ledger_pg_simple(p, LEDGER_PG_AUDIT_TRIGGERS, err, errlen);
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

/* What every new connection needs before its first call. */
static int
ledger_pg_setup(struct ledger_pg *p, char *err, size_t errlen)
{
	if (ledger_pg_session(p, err, errlen) == -1 || ledger_pg_prepare(p, err, errlen) == -1)
		return -1;
	p->up = 1;
	return 0;
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
	    LEDGER_PG_VERSION);
	return p;
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

/*
 * A new connection (PQreset keeps the parameters) with the session and the
 * statements set up again, and a target that could not be stored meanwhile.
 */
static int
ledger_pg_reconnect(struct ledger_pg *p)
{
	char err[LEDGER_PG_ERRMAX], msg[LEDGER_PG_ERRMAX];

	p->up = 0;
	p->last_attempt = time(NULL);
	PQreset(p->conn);
	if (PQstatus(p->conn) != CONNECTION_OK) {
		if (!p->said_down) {
			ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
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
	p->said_down = 0;
	if (p->target_stale && !p->in_batch)
		ledger_pg_retarget(p);
	return 0;
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

/* 0 when the connection is usable, connecting again if need be (once a second at most). */
int
ledger_pg_ready(struct ledger_pg *p)
{
	if (p->up && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	if (p->last_attempt == time(NULL))
		return -1;
	return ledger_pg_reconnect(p);
}

/* Logs a failed statement: the server's message, or the lost connection (once). */
static void
ledger_pg_fail(struct ledger_pg *p, enum ledger_pg_st which, PGresult *res)
{
	const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[LEDGER_PG_ERRMAX];

	if (PQstatus(p->conn) != CONNECTION_OK) {
		p->up = 0;
		if (p->said_down)
			return;
		ledger_pg_scrub(p->conn, PQerrorMessage(p->conn), msg, sizeof(msg));
		log_warnx("ledger (postgresql): lost the connection: %s", msg);
		return;
	}
	ledger_pg_scrub(
	    p->conn, primary != NULL ? primary : PQerrorMessage(p->conn), msg, sizeof(msg));
	log_warnx("ledger (postgresql): %.60s: %s", ledger_pg_sql[which], msg);
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

/* BEGIN, once more on a fresh connection when the old one turns out lost. */
int
ledger_pg_begin_tx(struct ledger_pg *p)
{
	int was_up = p->up;

	if (ledger_pg_ready(p) == 0 && ledger_pg_run(p, LPG_BEGIN, NULL) == 0)
		return 0;
	if (!was_up || PQstatus(p->conn) == CONNECTION_OK)
		return -1;
	p->last_attempt = 0;
	return ledger_pg_ready(p) == 0 ? ledger_pg_run(p, LPG_BEGIN, NULL) : -1;
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
	p->offline = ledger_pg_begin_tx(p) == -1;
	p->in_batch = 1;
	p->batch_failed = 0;
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

/* Write calls need an open batch that has not failed; each runs inside a savepoint. */
int
ledger_pg_call_begin(struct ledger_pg *p, const char *what)
{
	if (!p->in_batch) {
		log_warnx("ledger (postgresql): %s outside a batch", what);
		return -1;
	}
	if (p->batch_failed || p->offline)
		return -1;
	if (ledger_pg_run(p, LPG_SAVEPOINT, NULL) == -1) {
		p->batch_failed = 1;
		return -1;
	}
	return 0;
}

/*
 * After a call: a failed one is undone alone (back to its savepoint, its cache
 * updates from mark on dropped); the batch fails only when that cannot be done.
 */
enum ledger_result
ledger_pg_call_end(struct ledger_pg *p, enum ledger_result r, size_t mark)
{
	if (r == LEDGER_ERROR) {
		p->npend = mark;
		if (ledger_pg_run(p, LPG_ROLLBACK_TO, NULL) == -1 ||
		    ledger_pg_run(p, LPG_RELEASE, NULL) == -1) {
			log_warnx("ledger (postgresql): the transaction is lost; the batch fails");
			p->batch_failed = 1;
			p->npend = 0;
		}
		return r;
	}
	if (ledger_pg_run(p, LPG_RELEASE, NULL) == -1) {
		p->batch_failed = 1;
		p->npend = 0;
		return LEDGER_ERROR;
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
	if ((staged_ca != NULL && (staged_ca[0] == '\0' || strlen(staged_ca) > LEDGER_CA_ID_LEN)) ||
	    (bundle_id != NULL &&
	        (bundle_id[0] == '\0' || strlen(bundle_id) > LEDGER_BUNDLE_ID_LEN))) {
		log_warnx("ledger (postgresql): set_target: a malformed CA or bundle id");
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
};
