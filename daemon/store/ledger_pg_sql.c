/*
 * Every SQL statement of the pool's ledger on PostgreSQL, and its schema
 * migrations: the statements are prepared by ledger_pg_conn.c on each
 * connection, the migrations run by ledger_pg.c when a member starts.
 */
#include "ledger.h"
#include "ledger_pg.h"

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

/*
 * Every count of ledger_counts over the rows of LEDGER_PG_COUNTED, in its
 * order. $1 the active window's first second, $2 the open staging, $3 the
 * current bundle.
 */
#define LEDGER_PG_COUNTS                                                                           \
	"count(*), count(*) FILTER (WHERE NOT x AND act), "                                        \
	"count(*) FILTER (WHERE NOT x AND act AND ack), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND ver), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND dlv), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND lack), "                                         \
	"count(*) FILTER (WHERE NOT x AND NOT act AND lack), "                                     \
	"count(*) FILTER (WHERE x), "                                                              \
	"count(*) FILTER (WHERE NOT x AND act AND cur), "                                          \
	"count(*) FILTER (WHERE NOT x AND held_bundle IS NULL AND NOT ack)"
#define LEDGER_PG_COUNTED                                                                          \
	"member, is_excluded AS x, last_seen >= $1::bigint AS act, held_bundle, "                  \
	" " LEDGER_PG_ACKED " AS ack, "                                                            \
	" coalesce(staging = $2 AND verified_at IS NOT NULL, false) AS ver, "                      \
	" " LEDGER_PG_DELIVERED " AS dlv, coalesce(held_bundle = $3, false) AS cur, "              \
	" " LEDGER_PG_LACKING " AS lack"
/* A member's row in the order ledger_pg_member.c reads it; the age by the database's clock. */
#define LEDGER_PG_MEMBER_COLUMNS                                                                   \
	"name, started_at, extract(epoch FROM heartbeat_at)::bigint, "                             \
	"greatest(0, floor(extract(epoch FROM now() - heartbeat_at)))::bigint, active_ca, "        \
	"active_server, staged_ca, last_reload_at, last_reload_ok, last_check_at, last_check_ok, " \
	"last_error, applied_generation, applied_ok, apply_error, "                                \
	"coalesce(extract(epoch FROM applied_at)::bigint, 0)"

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

/* Run by ledger_pg.c when a start finds them missing or disabled. */
const char ledger_pg_audit_triggers[] = LEDGER_PG_AUDIT_TRIGGERS;

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
	             "linked_by, member, delivered_bundle, staging, staged_delivered_at) "
	             "VALUES ($1, $2, $3, $3, $3, $4, $4, $5, $6, $7) "
	             "ON CONFLICT (agent_id) DO NOTHING RETURNING id",
	/* The row is locked to the batch's end: two members never interleave one agent's writes. */
	[LPG_FIND] = "SELECT a.id, a.token_hash, a.delivered_bundle, a.held_bundle, a.is_excluded, "
	             "a.last_seen, a.staging, a.staged_delivered_at, a.acknowledged_at, "
	             "a.verified_at, b.bundle_id, coalesce(a.member, '') FROM agents a "
	             "LEFT JOIN bundles b ON b.id = a.delivered_bundle "
	             "WHERE a.agent_id = $1 FOR UPDATE OF a",
	[LPG_CHECKIN] = "UPDATE agents SET last_seen = $2, held_bundle = $3, "
	                "delivered_bundle = $4, staging = $5, staged_delivered_at = $6, "
	                "acknowledged_at = $7, verified_at = $8, member = $9 WHERE id = $1",
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
	    "UPDATE agents SET token_hash = $2, last_seen = greatest(last_seen, $3), member = $4 "
	    "WHERE id = $1",
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
	[LPG_COUNT] =
	    "SELECT " LEDGER_PG_COUNTS " FROM (SELECT " LEDGER_PG_COUNTED " FROM agents) a",
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
	[LPG_BLOB_GET] = "SELECT blob FROM blobs WHERE name = $1",
	/* The first member to store a name wins; the others read its blob. */
	[LPG_BLOB_ADD] = "INSERT INTO blobs (name, blob, created_at, created_by) "
	                 "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING RETURNING name",
	/* Every count per member, from one snapshot; "" for agents no member recorded. */
	[LPG_COUNT_MEMBERS] = "SELECT coalesce(member, ''), " LEDGER_PG_COUNTS
	                      " FROM (SELECT " LEDGER_PG_COUNTED " FROM agents) a "
	                      "GROUP BY coalesce(member, '') ORDER BY 1",
	/* This member's row only ($1 is the name it opened the ledger with). */
	[LPG_MEMBER_BEAT] =
	    "INSERT INTO members (name, started_at, heartbeat_at, active_ca, active_server, "
	    "staged_ca, last_reload_at, last_reload_ok, last_check_at, last_check_ok, last_error) "
	    "VALUES ($1, $2, now(), $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO UPDATE "
	    "SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
	    "active_ca = excluded.active_ca, active_server = excluded.active_server, "
	    "staged_ca = excluded.staged_ca, last_reload_at = excluded.last_reload_at, "
	    "last_reload_ok = excluded.last_reload_ok, last_check_at = excluded.last_check_at, "
	    "last_check_ok = excluded.last_check_ok, last_error = excluded.last_error",
	[LPG_MEMBER_LIST] = "SELECT " LEDGER_PG_MEMBER_COLUMNS " FROM members ORDER BY name",
	/*
	 * This member's apply result only, the beat's columns left alone; a member that
	 * never beat gets a row whose heartbeat is the epoch (stale) until it does.
	 */
	[LPG_MEMBER_APPLIED] =
	    "INSERT INTO members (name, started_at, heartbeat_at, active_ca, active_server, "
	    "staged_ca, last_reload_at, last_reload_ok, last_check_at, last_check_ok, last_error, "
	    "applied_generation, applied_ok, apply_error, applied_at) "
	    "VALUES ($1, 0, to_timestamp(0), '', '', '', 0, false, 0, false, '', $2, $3, $4, "
	    "now()) "
	    "ON CONFLICT (name) DO UPDATE SET applied_generation = excluded.applied_generation, "
	    "applied_ok = excluded.applied_ok, apply_error = excluded.apply_error, "
	    "applied_at = excluded.applied_at",
	[LPG_POOL_GET] = "SELECT generation, active, staged, call, member, "
	                 "coalesce(extract(epoch FROM written_at)::bigint, 0) FROM pool_state "
	                 "WHERE id = 1",
	/* The migration writes the row; a row removed by hand is put back at generation 0. */
	[LPG_POOL_SEED] = "INSERT INTO pool_state (id, generation, active, staged, call, member) "
	                  "VALUES (1, 0, '', '', '', '') ON CONFLICT (id) DO NOTHING",
	/* Compare and set: only over the generation the writer read. */
	[LPG_POOL_PUT] = "UPDATE pool_state SET generation = generation + 1, active = $2, "
	                 "staged = $3, call = $4, member = $5, written_at = now() "
	                 "WHERE id = 1 AND generation = $1 "
	                 "RETURNING generation, extract(epoch FROM written_at)::bigint",
	/* Delivered at COMMIT, to every listener but none before. */
	[LPG_POOL_NOTIFY] = "SELECT pg_notify('" LEDGER_PG_POOL_CHANNEL "', $1)",
	/* Taken once per session: held already, it is not taken again (no nesting to undo). */
	[LPG_POOL_LOCK] = "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE "
	                  "locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND "
	                  "classid = $1::integer::oid AND objid = $2::integer::oid AND "
	                  "objsubid = 2) THEN true ELSE pg_try_advisory_lock($1::integer, "
	                  "$2::integer) END",
	/* Released only when held: no server warning for a lock this session lacks. */
	[LPG_POOL_UNLOCK] = "SELECT pg_advisory_unlock($1::integer, $2::integer) FROM pg_locks "
	                    "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted "
	                    "AND classid = $1::integer::oid AND objid = $2::integer::oid AND "
	                    "objsubid = 2",
};

/* Schema migrations: [i] takes version i to i + 1. Append only, never edit. */
const char *const ledger_pg_migrations[] = {
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
	" verified_at bigint)"
	/*
	 * No index on last_seen, which every check-in that writes changes: without
	 * one, and with room left in each page, PostgreSQL updates the row in place
	 * (HOT) and leaves the other indexes alone. The pending page scans, as the
	 * counts do.
	 */
	" WITH (fillfactor = 80);"

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
	/* The pool's named blobs (sealed key material): opaque to the ledger. */
	"CREATE TABLE blobs ("
	" name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),"
	" blob bytea NOT NULL CHECK (length(blob) BETWEEN 1 AND 1048576),"
	" created_at bigint NOT NULL,"
	" created_by text NOT NULL);"
	"CREATE FUNCTION carotate_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
	"$$BEGIN RAISE EXCEPTION 'the audit log is append-only'; END$$;" LEDGER_PG_AUDIT_TRIGGERS,
	/* 1 -> 2: each member's state and heartbeat; the member each agent last came through. */
	"CREATE TABLE members ("
	" name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 63),"
	" started_at bigint NOT NULL,"
	" heartbeat_at timestamptz NOT NULL,"
	" active_ca text NOT NULL CHECK (length(active_ca) <= 64),"
	" active_server text NOT NULL CHECK (length(active_server) <= 64),"
	" staged_ca text NOT NULL CHECK (length(staged_ca) <= 64),"
	" last_reload_at bigint NOT NULL,"
	" last_reload_ok boolean NOT NULL,"
	" last_check_at bigint NOT NULL,"
	" last_check_ok boolean NOT NULL,"
	" last_error text NOT NULL CHECK (length(last_error) <= 255));"
	"ALTER TABLE agents ADD COLUMN member text CHECK (length(member) BETWEEN 1 AND 63);",
	/*
	 * 2 -> 3: the pool's shared state (the generation of its last mutation and the
	 * sets it left, one row), and what each member made of the last one it applied.
	 */
	"CREATE TABLE pool_state ("
	" id smallint PRIMARY KEY CHECK (id = 1),"
	" generation bigint NOT NULL CHECK (generation >= 0),"
	" active text NOT NULL CHECK (length(active) IN (0, 64)),"
	" staged text NOT NULL CHECK (length(staged) IN (0, 64)),"
	" call text NOT NULL CHECK (length(call) <= 15),"
	" member text NOT NULL CHECK (length(member) <= 63),"
	" written_at timestamptz);"
	"INSERT INTO pool_state (id, generation, active, staged, call, member) "
	"VALUES (1, 0, '', '', '', '');"
	"ALTER TABLE members ADD COLUMN applied_generation bigint NOT NULL DEFAULT 0 "
	"CHECK (applied_generation >= 0),"
	" ADD COLUMN applied_ok boolean NOT NULL DEFAULT false,"
	" ADD COLUMN apply_error text NOT NULL DEFAULT '' CHECK (length(apply_error) <= 255),"
	" ADD COLUMN applied_at timestamptz;",
};
const int ledger_pg_version = (int)(sizeof(ledger_pg_migrations) / sizeof(ledger_pg_migrations[0]));
