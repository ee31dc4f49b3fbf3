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
 * The agents as the counts see them, one row per group: agent_tally's and agent_moves' rows
 * (every agent, kept by triggers in the transaction that changes it) with n agents each, then each
 * agent not excluded and seen before the active window ($1, its first second) with n = -1, read
 * through agents_seen. A count of active agents is then the tally's minus those: no scan of the
 * agents who are active, however many. staging and held are 0 for none.
 */
#define LEDGER_PG_TALLIED                                                                          \
	"SELECT member, is_excluded AS x, staging, held, delivered AS d, acked AS k, "             \
	"verified AS v, n, false AS ina FROM agent_tally UNION ALL "                               \
	"SELECT member, is_excluded, staging, held, delivered, acked, verified, n, false "         \
	"FROM agent_moves UNION ALL "                                                              \
	"SELECT coalesce(member, ''), false, coalesce(staging, 0), coalesce(held_bundle, 0), "     \
	"staged_delivered_at IS NOT NULL, acknowledged_at IS NOT NULL, verified_at IS NOT NULL, "  \
	"-1, true FROM agents WHERE NOT is_excluded AND last_seen < $1::bigint"
/* Each group's progress: $2 the open staging (0 none), $3 the current bundle (0 none). */
#define LEDGER_PG_TALLY_ACK "$2::bigint <> 0 AND staging = $2::bigint AND k"
/*
 * The counts' groups; lack: lacking the target, the staged CA acknowledged, else the current
 * bundle (ledger.h).
 */
#define LEDGER_PG_GROUPS                                                                           \
	"SELECT member, x, ina, n, held, " LEDGER_PG_TALLY_ACK " AS ack, "                         \
	"$2::bigint <> 0 AND staging = $2::bigint AND v AS ver, "                                  \
	"$2::bigint <> 0 AND staging = $2::bigint AND d AS dlv, "                                  \
	"$3::bigint <> 0 AND held = $3::bigint AS cur, "                                           \
	"CASE WHEN $2::bigint <> 0 THEN NOT (" LEDGER_PG_TALLY_ACK ") "                            \
	"ELSE $3::bigint <> 0 AND held <> $3::bigint END AS lack FROM (" LEDGER_PG_TALLIED ") t"
/*
 * Every count of ledger_counts, in its order, over LEDGER_PG_GROUPS: an active count sums
 * the tally's agents not excluded and the inactive rows' -1s.
 */
#define LEDGER_PG_SUM(cond) "coalesce(sum(n) FILTER (WHERE " cond "), 0)"
/* One count a line. */
/* clang-format off */
#define LEDGER_PG_COUNTS                                                                           \
	LEDGER_PG_SUM("NOT ina") ", "                                                              \
	LEDGER_PG_SUM("NOT x") ", "                                                                \
	LEDGER_PG_SUM("NOT x AND ack") ", "                                                        \
	LEDGER_PG_SUM("NOT x AND ver") ", "                                                        \
	LEDGER_PG_SUM("NOT x AND dlv") ", "                                                        \
	LEDGER_PG_SUM("NOT x AND lack") ", "                                                       \
	"-" LEDGER_PG_SUM("ina AND lack") ", "                                                     \
	LEDGER_PG_SUM("x") ", "                                                                    \
	LEDGER_PG_SUM("NOT x AND cur") ", "                                                        \
	LEDGER_PG_SUM("NOT ina AND NOT x AND held = 0 AND NOT ack")
/* clang-format on */
/* A token hash's length, as the SQL below slices a run's hashes. */
#define LEDGER_PG_HASH_LEN_SQL "32"
_Static_assert(LEDGER_TOKEN_HASH_LEN == 32, "LEDGER_PG_HASH_LEN_SQL is not LEDGER_TOKEN_HASH_LEN");

/*
 * Check-ins in one statement (ledger_agents.c's rule; ledger_pg_agents.c says it in words),
 * over q, the check-ins asked (n their place, agent_id, hash the token's, pres the bundle
 * presented, canary), one or a run of them:
 * - r reads the agents without a lock (the token compared as SHA-256 of each, so that the
 *   time it takes says nothing of the stored one; materialized: its columns are read many
 *   times below);
 * - w works out what each would write ($5 now, $6 the open staging, $7 the current bundle,
 *   $8 this member, $9 LEDGER_SEEN_GRANULARITY);
 * - x says which must write: a change, or last_seen a granularity old (or ahead: a clock
 *   set back);
 * - u writes those whose row is still the version r read (its xmin tells the version
 *   whatever the plan finds the row by; PostgreSQL checks the row again once another
 *   member's write commits), and only the rows k lets it.
 * A row another member changed meanwhile is left alone, and that check-in runs again on
 * the row locked (LPG_CHECKIN_LOCKED). One with nothing to write takes no lock and writes
 * nothing. Each row answers n, ok, send, must, written, the delivery and its staging.
 */
#define LEDGER_PG_CHECKIN(q, find, lock, k, kfilter)                                               \
	"WITH q AS (" q "), "                                                                      \
	"r AS MATERIALIZED (SELECT q.n, a.ctid AS t, a.xmin AS xm, a.id, "                         \
	"sha256(a.token_hash) = sha256(q.hash) AS ok, q.canary AS can, "                           \
	"a.delivered_bundle AS dlv, a.held_bundle AS held, a.staging AS stg, "                     \
	"a.staged_delivered_at AS sda, a.acknowledged_at AS ack, a.verified_at AS ver, "           \
	"a.last_seen AS seen, a.member AS mem, "                                                   \
	"$6::bigint <> 0 AND coalesce(a.staging, 0) <> $6::bigint AS ns, "                         \
	"coalesce(q.pres IS NOT NULL AND a.delivered_bundle > 0 AND a.delivered_bundle = b.id, "   \
	"false) AS holds FROM q JOIN agents a ON a.agent_id = q.agent_id "                         \
	"LEFT JOIN bundles b ON b.bundle_id = q.pres " find lock "), "                             \
	"f AS (SELECT r.*, NOT ns AND sda IS NOT NULL AS d0, NOT ns AND ack IS NOT NULL AS a0, "   \
	"NOT ns AND ver IS NOT NULL AS v0 FROM r), "                                               \
	"g AS (SELECT f.*, $6::bigint <> 0 AND holds AND d0 AND NOT a0 AS acking, "                \
	"$6::bigint <> 0 AND can AND NOT v0 AS verifying, "                                        \
	"$7::bigint <> 0 AND NOT (holds AND coalesce(dlv, 0) = $7::bigint AND "                    \
	"($6::bigint = 0 OR d0)) AS send FROM f), "                                                \
	"w AS (SELECT g.*, CASE WHEN send THEN CASE WHEN $7::bigint > 0 THEN $7::bigint END "      \
	"ELSE dlv END AS w_dlv, CASE WHEN holds THEN dlv ELSE held END AS w_held, "                \
	"CASE WHEN ns THEN CASE WHEN $6::bigint > 0 THEN $6::bigint END ELSE stg END AS w_stg, "   \
	"CASE WHEN send AND $6::bigint <> 0 THEN $5::bigint WHEN d0 THEN sda END AS w_sda, "       \
	"CASE WHEN acking THEN $5::bigint WHEN a0 THEN ack END AS w_ack, "                         \
	"CASE WHEN verifying THEN $5::bigint WHEN v0 THEN ver END AS w_ver FROM g), "              \
	"x AS (SELECT w.*, ok AND (send OR ns OR w_held IS DISTINCT FROM held OR "                 \
	"(w_sda IS NULL) <> (sda IS NULL) OR (w_ack IS NULL) <> (ack IS NULL) OR "                 \
	"(w_ver IS NULL) <> (ver IS NULL) OR mem IS DISTINCT FROM $8::text OR "                    \
	"$5::bigint < seen OR $5::bigint - seen >= $9::bigint) AS must FROM w), " k                \
	"u AS (UPDATE agents a SET last_seen = $5::bigint, held_bundle = x.w_held, "               \
	"delivered_bundle = x.w_dlv, staging = x.w_stg, staged_delivered_at = x.w_sda, "           \
	"acknowledged_at = x.w_ack, verified_at = x.w_ver, member = $8::text FROM x "              \
	"WHERE x.must AND a.ctid = x.t AND a.id = x.id AND a.xmin = x.xm " kfilter                 \
	"RETURNING a.id) "                                                                         \
	"SELECT n, ok, send, must, coalesce(x.id = ANY (ARRAY (SELECT id FROM u)), false), "       \
	"coalesce(w_dlv, 0), CASE WHEN w_sda IS NOT NULL THEN coalesce(w_stg, 0) ELSE 0 END "      \
	"FROM x"
/* One check-in: $1 the agent, $2 its token's hash, $3 the bundle presented, $4 canary. */
#define LEDGER_PG_CHECKIN_ONE                                                                      \
	"SELECT 1 AS n, $1::text AS agent_id, $2::bytea AS hash, $3::text AS pres, "               \
	"$4::boolean AS canary"
/*
 * A run of check-ins of distinct agents: $1 the agents (text[]), $2 their tokens' hashes
 * one after another (LEDGER_TOKEN_HASH_LEN bytes each), $3 the bundles presented
 * (text[], NULL none), $4 one 't' or 'f' each (canary).
 */
#define LEDGER_PG_CHECKIN_MANY                                                                     \
	"SELECT u.n::integer AS n, u.agent_id, substring($2::bytea FROM (u.n::integer - 1) "       \
	"* " LEDGER_PG_HASH_LEN_SQL " + 1 FOR " LEDGER_PG_HASH_LEN_SQL ") AS hash, u.pres, "       \
	"substr($4::text, u.n::integer, 1) = 't' AS canary "                                       \
	"FROM unnest($1::text[], $3::text[]) WITH ORDINALITY AS u(agent_id, pres, n)"
/*
 * A run's rows to write, locked, skipping any another session holds locked: that check-in
 * is left unwritten and runs again alone, waiting for the row at most lock_timeout, so a
 * row held elsewhere fails its own check-in and no other.
 */
#define LEDGER_PG_CHECKIN_SKIP                                                                     \
	"k AS (SELECT id FROM agents WHERE id = ANY (ARRAY (SELECT id FROM x WHERE must)) "        \
	"FOR UPDATE SKIP LOCKED), "
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
	/* Renewal: the row is locked to the batch's end (two members never interleave its writes).
	 */
	[LPG_FIND] = "SELECT a.id, a.token_hash, a.delivered_bundle, a.held_bundle, a.is_excluded, "
	             "a.last_seen, a.staging, a.staged_delivered_at, a.acknowledged_at, "
	             "a.verified_at, b.bundle_id, coalesce(a.member, '') FROM agents a "
	             "LEFT JOIN bundles b ON b.id = a.delivered_bundle "
	             "WHERE a.agent_id = $1 FOR UPDATE OF a",
	[LPG_CHECKIN] = LEDGER_PG_CHECKIN(LEDGER_PG_CHECKIN_ONE, "", "", "", ""),
	/* The same on the row locked: when another member changed it after r read it. */
	[LPG_CHECKIN_LOCKED] =
	    LEDGER_PG_CHECKIN(LEDGER_PG_CHECKIN_ONE, "", "FOR UPDATE OF a", "", ""),
	/*
	 * A run: its agents found through their index whatever the table's size, and the
	 * rows written and locked told apart by arrays, not joins: a plan that guesses a run
	 * of a few rows would make each join a loop over the whole run.
	 */
	[LPG_CHECKIN_MANY] =
	    LEDGER_PG_CHECKIN(LEDGER_PG_CHECKIN_MANY, "WHERE a.agent_id = ANY ($1::text[]) ", "",
	        LEDGER_PG_CHECKIN_SKIP, "AND a.id = ANY (ARRAY (SELECT id FROM k)) "),
	[LPG_EXCLUDE] = "UPDATE agents SET is_excluded = true, exclude_reason = $2 "
	                "WHERE agent_id = $1 RETURNING id",
	[LPG_INCLUDE] = "UPDATE agents SET is_excluded = false, exclude_reason = NULL "
	                "WHERE agent_id = $1 RETURNING id",
	[LPG_GET] = "SELECT agent_id, linked_at, last_seen, is_excluded, exclude_reason "
	            "FROM agents WHERE agent_id = $1",
	/* The tally sees the batch's own links, as a count of the rows would. */
	[LPG_TOTAL] = "SELECT coalesce(sum(n), 0) FROM (SELECT n FROM agent_tally UNION ALL "
	              "SELECT n FROM agent_moves) t",
	/*
	 * The moves this member's writes and other sessions' left, into this member's tally
	 * rows, a group at a time; moves another member is folding are left to it.
	 */
	[LPG_FOLD] =
	    "WITH d AS (DELETE FROM agent_moves WHERE ctid = ANY (ARRAY(SELECT ctid "
	    "FROM agent_moves WHERE writer IN ($1, '') FOR UPDATE SKIP LOCKED)) "
	    "RETURNING *) INSERT INTO agent_tally AS t SELECT $1, member, is_excluded, "
	    "staging, held, delivered, acked, verified, sum(n) FROM d "
	    "GROUP BY 2, 3, 4, 5, 6, 7, 8 ON CONFLICT (writer, member, is_excluded, "
	    "staging, held, delivered, acked, verified) DO UPDATE SET n = t.n + excluded.n",
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
	[LPG_COUNT] = "SELECT " LEDGER_PG_COUNTS " FROM (" LEDGER_PG_GROUPS ") c",
	/*
	 * Most recently seen first, ties by link order ($4 limit, $5 offset): agents_seen in its
	 * order, from the newest, stopping at the page's end.
	 */
	[LPG_PENDING] = "SELECT agent_id, last_seen, " LEDGER_PG_DELIVERED " FROM agents "
	                "WHERE NOT is_excluded AND last_seen >= $1::bigint AND " LEDGER_PG_LACKING
	                " ORDER BY last_seen DESC, id LIMIT $4 OFFSET $5",
	/* Active agents per bundle held: the tally's less the inactive ones (only $1). */
	[LPG_HOLDINGS] = "SELECT coalesce(b.bundle_id, ''), h.n FROM (SELECT held, sum(n) AS n "
	                 "FROM (" LEDGER_PG_TALLIED ") t WHERE NOT x GROUP BY held "
	                 "HAVING sum(n) > 0) h LEFT JOIN bundles b ON b.id = h.held "
	                 "ORDER BY h.n DESC, h.held",
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
	/*
	 * Every count per member, from one snapshot; "" for agents no member recorded; members
	 * with no agent left are not named.
	 */
	[LPG_COUNT_MEMBERS] =
	    "SELECT member, " LEDGER_PG_COUNTS " FROM (" LEDGER_PG_GROUPS
	    ") c GROUP BY member HAVING " LEDGER_PG_SUM("NOT ina") " > 0 ORDER BY 1",
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
	/*
	 * 3 -> 4: the counts without a scan of the agents. agent_tally holds how many agents
	 * are in each group the counts tell apart, agent_moves what moved since: triggers
	 * add a row to it in the transaction that moves an agent between groups, whoever
	 * writes (a member, an import, an operator's SQL); a check-in that only moves
	 * last_seen fires nothing. Moves are only ever inserted (a row updated again and
	 * again in one transaction grows a chain each update walks), and each member folds
	 * them into rows of its own (writer) at the start of its batches, so members never
	 * wait on one another's counters; a group's count is the sum of both tables' rows.
	 * What depends on the window cannot be a counter: agents_seen gives the agents seen
	 * before it (and the pending page, newest first) without reading the others. It costs
	 * check-ins that write last_seen their in-place (HOT) updates, which the first version
	 * kept by having no such index.
	 */
	"CREATE TABLE agent_tally ("
	" writer text NOT NULL,"
	" member text NOT NULL,"
	" is_excluded boolean NOT NULL,"
	" staging bigint NOT NULL,"
	" held bigint NOT NULL,"
	" delivered boolean NOT NULL,"
	" acked boolean NOT NULL,"
	" verified boolean NOT NULL,"
	" n bigint NOT NULL,"
	" PRIMARY KEY (writer, member, is_excluded, staging, held, delivered, acked, verified));"
	"CREATE TABLE agent_moves (LIKE agent_tally);"
	/* Rows inserted (+1 each) or deleted (-1), a statement at a time: a bulk load is one. */
	"CREATE FUNCTION carotate_tally_rows() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
	"INSERT INTO agent_moves SELECT coalesce(current_setting('carotate.member', true), ''), "
	"coalesce(member, ''), is_excluded, coalesce(staging, 0), coalesce(held_bundle, 0), "
	"staged_delivered_at IS NOT NULL, acknowledged_at IS NOT NULL, verified_at IS NOT NULL, "
	"CASE TG_OP WHEN 'INSERT' THEN count(*) ELSE -count(*) END FROM changed "
	"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8; RETURN NULL; END$$;"
	/* A row that changed group: -1 for the old one, +1 for the new. */
	"CREATE FUNCTION carotate_tally_move() RETURNS trigger LANGUAGE plpgsql AS $$"
	"DECLARE w text := coalesce(current_setting('carotate.member', true), ''); BEGIN "
	"INSERT INTO agent_moves VALUES (w, coalesce(OLD.member, ''), OLD.is_excluded, "
	"coalesce(OLD.staging, 0), coalesce(OLD.held_bundle, 0), "
	"OLD.staged_delivered_at IS NOT NULL, OLD.acknowledged_at IS NOT NULL, "
	"OLD.verified_at IS NOT NULL, -1), (w, coalesce(NEW.member, ''), NEW.is_excluded, "
	"coalesce(NEW.staging, 0), coalesce(NEW.held_bundle, 0), "
	"NEW.staged_delivered_at IS NOT NULL, NEW.acknowledged_at IS NOT NULL, "
	"NEW.verified_at IS NOT NULL, 1); RETURN NULL; END$$;"
	"CREATE FUNCTION carotate_tally_clear() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
	"DELETE FROM agent_tally; DELETE FROM agent_moves; RETURN NULL; END$$;"
	"CREATE TRIGGER agents_tally_insert AFTER INSERT ON agents REFERENCING NEW TABLE AS "
	"changed FOR EACH STATEMENT EXECUTE FUNCTION carotate_tally_rows();"
	"CREATE TRIGGER agents_tally_delete AFTER DELETE ON agents REFERENCING OLD TABLE AS "
	"changed FOR EACH STATEMENT EXECUTE FUNCTION carotate_tally_rows();"
	"CREATE TRIGGER agents_tally_move AFTER UPDATE ON agents FOR EACH ROW WHEN ("
	"(coalesce(OLD.member, ''), OLD.is_excluded, coalesce(OLD.staging, 0), "
	"coalesce(OLD.held_bundle, 0), OLD.staged_delivered_at IS NULL, "
	"OLD.acknowledged_at IS NULL, OLD.verified_at IS NULL) IS DISTINCT FROM "
	"(coalesce(NEW.member, ''), NEW.is_excluded, coalesce(NEW.staging, 0), "
	"coalesce(NEW.held_bundle, 0), NEW.staged_delivered_at IS NULL, "
	"NEW.acknowledged_at IS NULL, NEW.verified_at IS NULL)) "
	"EXECUTE FUNCTION carotate_tally_move();"
	"CREATE TRIGGER agents_tally_truncate AFTER TRUNCATE ON agents "
	"FOR EACH STATEMENT EXECUTE FUNCTION carotate_tally_clear();"
	"INSERT INTO agent_tally SELECT '', coalesce(member, ''), is_excluded, "
	"coalesce(staging, 0), coalesce(held_bundle, 0), staged_delivered_at IS NOT NULL, "
	"acknowledged_at IS NOT NULL, verified_at IS NOT NULL, count(*) FROM agents "
	"GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;"
	"CREATE INDEX agents_seen ON agents (last_seen DESC, id) WHERE NOT is_excluded;",
};
const int ledger_pg_version = (int)(sizeof(ledger_pg_migrations) / sizeof(ledger_pg_migrations[0]));
