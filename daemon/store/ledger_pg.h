/*
 * The PostgreSQL ledger's private parts, shared by ledger_pg.c (open, schema,
 * batches, target), ledger_pg_conn.c (the connection and its statements),
 * ledger_pg_sql.c (every SQL text), ledger_pg_agents.c (agents, join tokens, counts),
 * ledger_pg_audit.c (the audit chain), ledger_pg_member.c (each member's
 * state and heartbeat), ledger_pg_pool.c (the pool's shared state, its lock and
 * notifications) and ledger_pg_cache.c (the token cache
 * a member answers check-ins from while it is cut off). Nothing outside those
 * files includes it.
 */
#ifndef CAROTATE_LEDGER_PG_H
#define CAROTATE_LEDGER_PG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <libpq-fe.h>

#include "ledger.h"

#define LEDGER_PG_MAX_MEMBER 63
#define LEDGER_PG_MAX_ARGS   16
/* Check-ins decided in one statement at most (ledger_pg_checkin_run). */
#define LEDGER_PG_RUN_MAX 256
/* The longest bundle presented that a run takes (longer ones are made alone). */
#define LEDGER_PG_MAX_PRESENTED 128

/* Advisory locks, (namespace, key) pairs: one pool-wide lock per job. */
#define LEDGER_PG_LOCK_NS      0x63726f74 /* "crot" */
#define LEDGER_PG_LOCK_MIGRATE 1
#define LEDGER_PG_LOCK_AUDIT   2
#define LEDGER_PG_LOCK_TARGET  3
#define LEDGER_PG_LOCK_POOL    4 /* session-level: the pool-wide mutation lock */

/* The channel ledger_pool_state_put notifies and every connection listens on. */
#define LEDGER_PG_POOL_CHANNEL "carotate_pool"

enum ledger_pg_st {
	LPG_BEGIN,
	LPG_COMMIT,
	LPG_ROLLBACK,
	LPG_SAVEPOINT,
	LPG_RELEASE,
	LPG_ROLLBACK_TO,
	LPG_LOCK,
	LPG_LINK,
	LPG_FIND,
	LPG_CHECKIN,
	LPG_CHECKIN_LOCKED,
	LPG_CHECKIN_MANY,
	LPG_EXCLUDE,
	LPG_INCLUDE,
	LPG_GET,
	LPG_TOTAL,
	LPG_FOLD,
	LPG_OPEN_STAGING,
	LPG_END_STAGING,
	LPG_NEW_STAGING,
	LPG_ADD_BUNDLE,
	LPG_BUNDLE_ID,
	LPG_RENEW,
	LPG_FORGET,
	LPG_FORGET_UNCONFIRMED,
	LPG_JOIN_ADD,
	LPG_JOIN_FIND,
	LPG_JOIN_USE,
	LPG_JOIN_DEL,
	LPG_JOIN_LIST,
	LPG_COUNT,
	LPG_PENDING,
	LPG_HOLDINGS,
	LPG_AUDIT_HEAD,
	LPG_AUDIT_INSERT,
	LPG_AUDIT_PAGE,
	LPG_AUDIT_CHAIN,
	LPG_AUDIT_COUNT,
	LPG_AUDIT_LAST,
	LPG_QUICK_CHECK,
	LPG_BLOB_GET,
	LPG_BLOB_ADD,
	LPG_COUNT_MEMBERS,
	LPG_MEMBER_BEAT,
	LPG_MEMBER_LIST,
	LPG_MEMBER_APPLIED,
	LPG_POOL_GET,
	LPG_POOL_SEED,
	LPG_POOL_PUT,
	LPG_POOL_NOTIFY,
	LPG_POOL_LOCK,
	LPG_POOL_UNLOCK,
	LPG_COUNT_ST
};

/* Parameters of one statement, as text (format 0) or bytes (format 1); NULL is SQL NULL. */
struct ledger_pg_args {
	int n;
	const char *v[LEDGER_PG_MAX_ARGS];
	int len[LEDGER_PG_MAX_ARGS];
	int fmt[LEDGER_PG_MAX_ARGS];
	char num[LEDGER_PG_MAX_ARGS][24];
};

/* One agent in the cache of agents seen (ledger_pg_cache.c). */
struct ledger_pg_cached {
	uint8_t hash[LEDGER_TOKEN_HASH_LEN];
	int64_t delivered; /* bundles.id last delivered to it, 0 for none */
	int64_t staging;   /* the staging that delivery belongs to, 0 for none */
};

struct ledger_pg_cache;

/* A cache change that waits for its batch to commit. */
struct ledger_pg_update {
	char id[LEDGER_MAX_AGENT_ID + 1];
	int forget;
	struct ledger_pg_cached c;
};

struct ledger_pg {
	PGconn *conn;
	char member[LEDGER_PG_MAX_MEMBER + 1];
	int up;               /* connected, session set, statements prepared */
	time_t retry_at;      /* no connection attempt before then */
	unsigned backoff;     /* seconds between attempts, doubled by each failure */
	int said_down;        /* "cut off" was logged for this outage */
	char last_error[256]; /* why the last outage began (ledger_health), scrubbed */
	int64_t last_error_at;

	/* The target as this member last set it, and what it wants when cut off. */
	int64_t cur;     /* bundles.id served now, 0 none, -1 not known (cut off) */
	int64_t staging; /* stagings.id open now, 0 none */
	char staged_ca[LEDGER_CA_ID_LEN + 1];
	char cur_name[LEDGER_BUNDLE_ID_LEN + 1];
	int target_stale; /* set_target failed: apply it at reconnection */
	int pool_missed;  /* connected again: notifications may have gone unheard meanwhile */
	void (*retarget)(struct ledger_pg *); /* ledger_pg.c's, called by the connection */

	int in_batch, batch_failed, offline;
	/* A call's savepoint and the last call's release go with the call's first statement. */
	int owe_savepoint, owe_release, call_saved;
	/*
	 * The call wrote nothing (a check-in with nothing to write): its savepoint stays open
	 * for the next call (saved_clean), which needs no release and no savepoint of its own.
	 */
	int call_clean, saved_clean;
	struct ledger_pg_update *pend;
	size_t npend, pendcap;
	struct ledger_pg_cache *cache;
};

#define LEDGER_PG_ERRMAX    512 /* an operator's error message */
#define LEDGER_PG_NTRIGGERS 3   /* the audit table's append-only triggers */

/* ledger_pg_sql.c: the statements, by enum ledger_pg_st (each connection prepares them all), */
extern const char *const ledger_pg_sql[LPG_COUNT_ST];
/* the migrations ([i] takes schema version i to i + 1) and the audit triggers' SQL. */
extern const char *const ledger_pg_migrations[];
extern const int ledger_pg_version;
extern const char ledger_pg_audit_triggers[];

/* The connection (ledger_pg_conn.c, which has each one's contract). */
int ledger_pg_member_ok(const char *);
int ledger_pg_connect(struct ledger_pg *, const char *, char *, size_t);
int ledger_pg_simple(struct ledger_pg *, const char *, char *, size_t);
int ledger_pg_session(struct ledger_pg *, char *, size_t);
int ledger_pg_setup(struct ledger_pg *, char *, size_t);
void ledger_pg_scrub(PGconn *, const char *, char *, size_t);
int ledger_pg_ready(struct ledger_pg *);
void ledger_pg_lost(struct ledger_pg *);
PGresult *ledger_pg_exec(struct ledger_pg *, enum ledger_pg_st, const struct ledger_pg_args *);
int ledger_pg_run(struct ledger_pg *, enum ledger_pg_st, const struct ledger_pg_args *);
int ledger_pg_lock(struct ledger_pg *, int);
void ledger_pg_arg_text(struct ledger_pg_args *, const char *);
void ledger_pg_arg_int(struct ledger_pg_args *, int64_t);
void ledger_pg_arg_ref(struct ledger_pg_args *, int64_t);
void ledger_pg_arg_time(struct ledger_pg_args *, int, int64_t);
void ledger_pg_arg_bytes(struct ledger_pg_args *, const uint8_t *, size_t);
int64_t ledger_pg_int(const PGresult *, int, int);
int ledger_pg_bytes(const PGresult *, int, int, uint8_t *, size_t);
int ledger_pg_blob(const PGresult *, int, int, uint8_t *, size_t, size_t *);
int ledger_pg_call_begin(struct ledger_pg *, const char *);
int ledger_pg_sync_staging(struct ledger_pg *);
int ledger_pg_count_args(
    struct ledger_pg *, const char *, time_t, uint64_t, struct ledger_pg_args *);
int ledger_pg_read_begin(struct ledger_pg *);
int ledger_pg_begin_tx(struct ledger_pg *);
enum ledger_result ledger_pg_call_end(struct ledger_pg *, enum ledger_result, size_t);
void ledger_pg_pend(struct ledger_pg *, const char *, int, const struct ledger_pg_cached *);
int ledger_pg_set_target(void *, const char *, const char *);

/* The cache of agents seen (token hash, last delivery): ledger_pg_cache.c. */
struct ledger_pg_cache *ledger_pg_cache_new(void);
void ledger_pg_cache_free(struct ledger_pg_cache *);
void ledger_pg_cache_put(struct ledger_pg_cache *, const char *, const struct ledger_pg_cached *);
void ledger_pg_cache_del(struct ledger_pg_cache *, const char *);
const struct ledger_pg_cached *ledger_pg_cache_get(const struct ledger_pg_cache *, const char *);

/* Backend entries defined in ledger_pg_agents.c and ledger_pg_audit.c. */
enum ledger_result ledger_pg_link(void *, const char *, const uint8_t *, time_t);
enum ledger_result ledger_pg_link_join(
    void *, const char *, const uint8_t *, const char *, const uint8_t *, time_t);
enum ledger_result ledger_pg_join_check(void *, const char *, const uint8_t *, time_t);
enum ledger_result ledger_pg_renew(void *, const char *, const uint8_t *, const uint8_t *, time_t);
uint64_t ledger_pg_total(const void *);
enum ledger_result ledger_pg_forget(void *, const char *);
enum ledger_result ledger_pg_forget_unconfirmed(void *, int64_t, uint64_t *);
enum ledger_result ledger_pg_join_create(void *, const struct ledger_join *);
enum ledger_result ledger_pg_join_revoke(void *, const char *);
int ledger_pg_join_list(void *, ledger_join_cb, void *);
void ledger_pg_checkin_run(void *, struct ledger_checkin *, size_t, time_t);
enum ledger_result ledger_pg_checkin(
    void *, const char *, const uint8_t *, const char *, int, time_t, int *);
enum ledger_result ledger_pg_exclude(void *, const char *, const char *);
enum ledger_result ledger_pg_include(void *, const char *);
enum ledger_result ledger_pg_get(void *, const char *, struct ledger_agent *);
int ledger_pg_count(void *, time_t, uint64_t, struct ledger_counts *);
int ledger_pg_pending(void *, time_t, uint64_t, uint64_t, uint32_t, ledger_agent_cb, void *);
int ledger_pg_holdings(void *, time_t, uint64_t, ledger_holding_cb, void *);
int ledger_pg_audit_append(void *, struct ledger_audit *);
int ledger_pg_audit_list(void *, uint64_t, uint32_t, ledger_audit_cb, void *);
int ledger_pg_audit_last(
    void *, uint64_t, const char *const *, size_t, const char *, struct ledger_audit *);
int ledger_pg_audit_count(void *, uint64_t *);
int ledger_pg_audit_verify_step(void *, struct ledger_audit_walk *, uint32_t, char *, size_t);
int ledger_pg_blob_get(void *, const char *, uint8_t *, size_t, size_t *);
int ledger_pg_blob_put_new(void *, const char *, const uint8_t *, size_t);
int ledger_pg_member_beat(void *, const struct ledger_member *);
int ledger_pg_member_list(void *, ledger_member_cb, void *);
int ledger_pg_count_members(void *, time_t, uint64_t, ledger_member_counts_cb, void *);
int ledger_pg_member_applied(void *, uint64_t, int, const char *);

/* The pool's shared state, lock and notifications (ledger_pg_pool.c; ledger.h, ledger_pool_*). */
int ledger_pg_pool_state_get(void *, struct ledger_pool_state *);
int ledger_pg_pool_state_put(void *, struct ledger_pool_state *, uint64_t);
int ledger_pg_pool_lock(void *);
void ledger_pg_pool_unlock(void *);
int ledger_pg_pool_socket(void *);
int ledger_pg_pool_notified(void *);

/* A record appended inside the caller's transaction (ledger_pg_audit.c). */
int ledger_pg_audit_chain(struct ledger_pg *, struct ledger_audit *);

/* A single proxy's ledger copied in (ledger_pg_import.c; ledger_backend.h, import_*). */
int ledger_pg_import_begin(void *, char *, size_t);
int ledger_pg_import_agent(void *, const struct ledger_export_agent *, char *, size_t);
int ledger_pg_import_join(void *, const struct ledger_join *, char *, size_t);
int ledger_pg_import_end(void *, struct ledger_audit *, char *, size_t);

/* The engine's state, connected and migrated (ledger_open_pg wraps it), and its end. */
struct ledger_pg *ledger_pg_open(const char *dsn, const char *member, char *err, size_t errlen);
void ledger_pg_close(void *);

#endif
