/*
 * The seam between the ledger's contract (ledger.h, ledger.c) and the engines
 * that keep it: SQLite for a single proxy (ledger_sqlite*.c), PostgreSQL for a
 * pool of proxies sharing one ledger (ledger_pg.c). ledger.c checks what does
 * not depend on the engine and calls through one of these tables; each entry
 * has the contract of the ledger.h function of the same name, on the
 * backend's own state (self). Nothing outside store/ledger*.c includes it.
 */
#ifndef CAROTATE_LEDGER_BACKEND_H
#define CAROTATE_LEDGER_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ledger.h"

struct ledger_backend {
	const char *name; /* "sqlite", "postgresql": for status and logs */
	void (*close)(void *self);
	int (*quick_check)(void *self, char *problem, size_t len);
	int (*set_target)(void *self, const char *staged_ca, const char *bundle_id);

	int (*begin)(void *self);
	int (*commit)(void *self);
	void (*rollback)(void *self);
	int (*in_batch)(const void *self);

	enum ledger_result (*link)(void *self, const char *agent_id,
	    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
	enum ledger_result (*link_join)(void *self, const char *agent_id,
	    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *join_id,
	    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
	enum ledger_result (*join_check)(void *self, const char *join_id,
	    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
	enum ledger_result (*renew)(void *self, const char *agent_id,
	    const uint8_t old_hash[LEDGER_TOKEN_HASH_LEN],
	    const uint8_t new_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
	uint64_t (*total)(const void *self);
	enum ledger_result (*forget)(void *self, const char *agent_id);
	enum ledger_result (*forget_unconfirmed)(void *self, int64_t before, uint64_t *n);
	enum ledger_result (*join_create)(void *self, const struct ledger_join *);
	enum ledger_result (*join_revoke)(void *self, const char *join_id);
	int (*join_list)(void *self, ledger_join_cb, void *arg);
	enum ledger_result (*checkin)(void *self, const char *agent_id,
	    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *presented, int canary,
	    time_t now, int *send_bundle);
	/* Optional: an engine without it has each check-in of a run made by checkin. */
	void (*checkin_run)(void *self, struct ledger_checkin *, size_t n, time_t now);
	enum ledger_result (*exclude)(void *self, const char *agent_id, const char *reason);
	enum ledger_result (*include)(void *self, const char *agent_id);
	enum ledger_result (*get)(void *self, const char *agent_id, struct ledger_agent *);

	int (*count)(void *self, time_t now, uint64_t window, struct ledger_counts *);
	int (*pending)(void *self, time_t now, uint64_t window, uint64_t offset, uint32_t limit,
	    ledger_agent_cb, void *arg);
	int (*holdings)(void *self, time_t now, uint64_t window, ledger_holding_cb, void *arg);

	int (*audit_append)(void *self, struct ledger_audit *);
	int (*audit_list)(void *self, uint64_t offset, uint32_t limit, ledger_audit_cb, void *arg);
	int (*audit_last)(void *self, uint64_t after, const char *const *calls, size_t ncalls,
	    const char *marker, struct ledger_audit *);
	int (*audit_count)(void *self, uint64_t *total);
	int (*audit_verify_step)(
	    void *self, struct ledger_audit_walk *, uint32_t max, char *problem, size_t len);
	/* Optional: an engine without it always answers (reachable, no error). */
	void (*health)(const void *self, struct ledger_health *);
	/* Optional: an engine without it has no connection to probe (0). */
	int (*probe)(void *self);
	/* Optional: an engine without them keeps no blobs (the front answers -1). */
	int (*blob_get)(void *self, const char *name, uint8_t *buf, size_t cap, size_t *len);
	int (*blob_put_new)(void *self, const char *name, const uint8_t *blob, size_t len);

	/*
	 * Optional, a migration's two ends (ledger_migrate). export_walk (a source):
	 * every agent, then every join token (hash included), in one read
	 * transaction; a callback's -1 stops the walk. 0, or -1 (logged).
	 */
	int (*export_walk)(void *self, ledger_export_agent_cb, ledger_export_join_cb, void *arg);
	/*
	 * import_begin opens the pool's transaction; import_agent and import_join
	 * add a row whose id the pool lacks (enum ledger_import); import_end commits
	 * with rec appended to the audit chain, or rolls back when rec is NULL. Each
	 * 0 (or a result) / -1 with err filled; after -1 only import_end(NULL) is called.
	 */
	int (*import_begin)(void *self, char *err, size_t errlen);
	int (*import_agent)(
	    void *self, const struct ledger_export_agent *, char *err, size_t errlen);
	int (*import_join)(void *self, const struct ledger_join *, char *err, size_t errlen);
	int (*import_end)(void *self, struct ledger_audit *rec, char *err, size_t errlen);
	/* Optional: an engine without them is not a pool (the front answers -1). */
	int (*member_beat)(void *self, const struct ledger_member *);
	int (*member_list)(void *self, ledger_member_cb, void *arg);
	int (*count_members)(
	    void *self, time_t now, uint64_t window, ledger_member_counts_cb, void *arg);
	int (*member_applied)(void *self, uint64_t generation, int ok, const char *error);
	/*
	 * Optional, the pool's shared state and its lock and notifications: an engine
	 * without them is not a pool (the front answers -1, and -1 for the socket).
	 */
	int (*pool_state_get)(void *self, struct ledger_pool_state *);
	int (*pool_state_put)(void *self, struct ledger_pool_state *, uint64_t expect);
	int (*pool_lock)(void *self);
	void (*pool_unlock)(void *self);
	int (*pool_socket)(void *self);
	int (*pool_notified)(void *self);
};

/* What import_agent and import_join did with a row. */
enum ledger_import {
	LEDGER_IMPORT_COPIED = 0,
	LEDGER_IMPORT_PRESENT,  /* the id is in the pool with the same token hash: left */
	LEDGER_IMPORT_CONFLICT, /* the id is in the pool with another token hash: left */
};

/* Printable ASCII, at most max bytes (ledger.c): 1, or 0. */
int ledger_text_plain(const char *s, size_t max);

/* A ledger over backend be and its state self (NULL only when be->close(self) ran). */
struct ledger *ledger_wrap(const struct ledger_backend *be, void *self);

extern const struct ledger_backend ledger_sqlite_backend;
extern const struct ledger_backend ledger_pg_backend;

/* The SQLite engine's state for ledger_open (ledger_sqlite.c): NULL with err filled. */
struct ledger_sqlite;
struct ledger_sqlite *ledger_sqlite_open(const char *state_dir, char *err, size_t errlen);
/* The same engine on a single proxy's ledger file opened read-only (ledger_open_source). */
struct ledger_sqlite *ledger_sqlite_open_source(const char *path, char *err, size_t errlen);
#ifdef CAROTATE_FUZZ
int ledger_sqlite_fuzz_restore(void *self, const char *from, char *err, size_t errlen);
#endif

/*
 * The audit chain's encoding, which every engine uses (ledger_audit.c). A
 * record's parts: LEDGER_AUDIT_INTS integers (seq, time, uid, pid), then
 * LEDGER_AUDIT_STRS strings (user, call, result, detail, before, after,
 * prev_hash) given with their lengths, as stored (bytes, not cut strings).
 */
#define LEDGER_AUDIT_INTS  4
#define LEDGER_AUDIT_STRS  7
#define LEDGER_AUDIT_ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
/* The hash of a record's parts, hex. */
void ledger_audit_digest(const int64_t ints[LEDGER_AUDIT_INTS],
    const char *const s[LEDGER_AUDIT_STRS], const size_t n[LEDGER_AUDIT_STRS],
    char out[LEDGER_AUDIT_HASH_LEN + 1]);
/*
 * A stored record (its parts, then the stored hash as s[LEDGER_AUDIT_STRS])
 * against the record the walk expects next, seq want linked to prev: NULL when
 * it checks out, else why not, written in msg (one of audit_verify_step's
 * problems).
 */
const char *ledger_audit_check(uint64_t want, const char *prev,
    const int64_t ints[LEDGER_AUDIT_INTS], const char *const s[LEDGER_AUDIT_STRS + 1],
    const size_t n[LEDGER_AUDIT_STRS + 1], char msg[LEDGER_AUDIT_MAX_DETAIL]);

#endif
