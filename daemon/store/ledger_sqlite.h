/*
 * The SQLite engine's private parts, shared by ledger_sqlite.c,
 * ledger_sqlite_agents.c and ledger_sqlite_audit.c: the connection and its
 * statements, the in-memory index, the engine's entries (ledger_backend.h).
 * Nothing outside those files includes it.
 */
#ifndef CAROTATE_LEDGER_SQLITE_H
#define CAROTATE_LEDGER_SQLITE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "ledger.h"
#include "ledger_backend.h"

#define LEDGER_MAX_ROWID   0x7fffffff /* ids are packed in 32 bits of a sort key */
#define LEDGER_MAX_BUNDLES 0xffff     /* held bundles are 16 bits in the index */

/* Flags of an index entry; DELIVERED, ACKED and VERIFIED are for the open staging. */
#define LEDGER_F_EXISTS    0x01
#define LEDGER_F_EXCLUDED  0x02
#define LEDGER_F_DELIVERED 0x04
#define LEDGER_F_ACKED     0x08
#define LEDGER_F_VERIFIED  0x10
#define LEDGER_F_STAGING   (LEDGER_F_DELIVERED | LEDGER_F_ACKED | LEDGER_F_VERIFIED)

/* One agent in the index, at [agents.id]: 8 bytes, so 1M agents take 8 MiB. */
struct ledger_entry {
	uint32_t last_seen; /* seconds since the epoch, clamped to 0..UINT32_MAX */
	uint16_t held;      /* bundles.id of the bundle it holds, 0 for none known */
	uint8_t flags;
	uint8_t spare;
};

/* A change to the index that waits for its batch to commit. */
struct ledger_update {
	uint32_t id;
	uint8_t op; /* LEDGER_U_* */
	struct ledger_entry e;
};
#define LEDGER_U_SET     0 /* the entry is e */
#define LEDGER_U_EXCLUDE 1 /* set LEDGER_F_EXCLUDED only (last_seen may be newer in memory) */
#define LEDGER_U_INCLUDE 2
#define LEDGER_U_FORGET  3 /* the row is gone: the entry is absent */
#define LEDGER_U_SEEN    4 /* last_seen only (a token renewal) */

enum ledger_st {
	LST_BEGIN,
	LST_COMMIT,
	LST_ROLLBACK,
	LST_LINK,
	LST_FIND,
	LST_CHECKIN,
	LST_EXCLUDE,
	LST_INCLUDE,
	LST_GET,
	LST_NAME,
	LST_MAX_ID,
	LST_LOAD_AGENTS,
	LST_LOAD_BUNDLES,
	LST_OPEN_STAGING,
	LST_END_STAGING,
	LST_NEW_STAGING,
	LST_ADD_BUNDLE,
	LST_BUNDLE_ID,
	LST_AUDIT_HEAD,
	LST_AUDIT_INSERT,
	LST_AUDIT_PAGE,
	LST_AUDIT_CHAIN,
	LST_AUDIT_COUNT,
	LST_RENEW,
	LST_FORGET,
	LST_FORGET_UNCONFIRMED,
	LST_JOIN_ADD,
	LST_JOIN_FIND,
	LST_JOIN_USE,
	LST_JOIN_DEL,
	LST_JOIN_LIST,
	LST_SAVEPOINT,
	LST_RELEASE,
	LST_ROLLBACK_TO,
	LST_QUICK_CHECK,
	LST_AUDIT_LAST,
	LST_COUNT
};

struct ledger_sqlite {
	sqlite3 *db;
	char *path;
	pid_t pid; /* never used across fork */
	sqlite3_stmt *st[LST_COUNT];

	struct ledger_entry *ents; /* indexed by agents.id */
	size_t nents;
	char (*bundles)[LEDGER_BUNDLE_ID_LEN + 1]; /* indexed by bundles.id; [0] = "" */
	size_t nbundles;
	uint16_t cur;    /* bundles.id served now, 0 for none */
	int64_t staging; /* stagings.id open now, 0 for none */
	char staged_ca[LEDGER_CA_ID_LEN + 1];

	uint64_t nagents;   /* rows of agents, committed */
	uint64_t batch_new; /* agents the open batch added */
	int in_batch, batch_failed;
	struct ledger_update *pend;
	size_t npend, pendcap;
};

/* The statements, by enum ledger_st; ledger_sqlite_open prepares them all. */
extern const char *const ledger_sqlite_sql[LST_COUNT];

/* Shared by the engine's files; ledger_sqlite.c has each one's contract. */
int ledger_sqlite_sqlerr(struct ledger_sqlite *, const char *);
int ledger_sqlite_run(struct ledger_sqlite *, enum ledger_st);
void ledger_sqlite_done(sqlite3_stmt *);
int ledger_sqlite_owner_ok(struct ledger_sqlite *, const char *);
uint32_t ledger_sqlite_clamp(int64_t);
void ledger_sqlite_pend(struct ledger_sqlite *, int64_t, int, const struct ledger_entry *);
int ledger_sqlite_call_begin(struct ledger_sqlite *, const char *);
enum ledger_result ledger_sqlite_call_end(struct ledger_sqlite *, enum ledger_result, size_t);
uint8_t ledger_sqlite_staged_flags(const struct ledger_sqlite *, int64_t, int, int, int);
int ledger_sqlite_load_bundles(struct ledger_sqlite *);
void ledger_sqlite_clear_flags(struct ledger_sqlite *);

/*
 * The entries of ledger_sqlite_backend, on a struct ledger_sqlite (self): each
 * has the contract of the ledger.h function of the same name, its arguments
 * checked by ledger.c already.
 */
void ledger_sqlite_close(void *);
int ledger_sqlite_quick_check(void *, char *, size_t);
int ledger_sqlite_set_target(void *, const char *, const char *);
int ledger_sqlite_begin(void *);
int ledger_sqlite_commit(void *);
void ledger_sqlite_rollback(void *);
int ledger_sqlite_in_batch(const void *);
enum ledger_result ledger_sqlite_link(
    void *, const char *, const uint8_t[LEDGER_TOKEN_HASH_LEN], time_t);
enum ledger_result ledger_sqlite_link_join(void *, const char *,
    const uint8_t[LEDGER_TOKEN_HASH_LEN], const char *, const uint8_t[LEDGER_TOKEN_HASH_LEN],
    time_t);
enum ledger_result ledger_sqlite_join_check(
    void *, const char *, const uint8_t[LEDGER_TOKEN_HASH_LEN], time_t);
enum ledger_result ledger_sqlite_renew(void *, const char *, const uint8_t[LEDGER_TOKEN_HASH_LEN],
    const uint8_t[LEDGER_TOKEN_HASH_LEN], time_t);
uint64_t ledger_sqlite_total(const void *);
enum ledger_result ledger_sqlite_forget(void *, const char *);
enum ledger_result ledger_sqlite_forget_unconfirmed(void *, int64_t, uint64_t *);
enum ledger_result ledger_sqlite_join_create(void *, const struct ledger_join *);
enum ledger_result ledger_sqlite_join_revoke(void *, const char *);
int ledger_sqlite_join_list(void *, ledger_join_cb, void *);
enum ledger_result ledger_sqlite_checkin(
    void *, const char *, const uint8_t[LEDGER_TOKEN_HASH_LEN], const char *, int, time_t, int *);
enum ledger_result ledger_sqlite_exclude(void *, const char *, const char *);
enum ledger_result ledger_sqlite_include(void *, const char *);
enum ledger_result ledger_sqlite_get(void *, const char *, struct ledger_agent *);
int ledger_sqlite_count(void *, time_t, uint64_t, struct ledger_counts *);
int ledger_sqlite_pending(void *, time_t, uint64_t, uint64_t, uint32_t, ledger_agent_cb, void *);
int ledger_sqlite_holdings(void *, time_t, uint64_t, ledger_holding_cb, void *);
int ledger_sqlite_audit_append(void *, struct ledger_audit *);
int ledger_sqlite_audit_list(void *, uint64_t, uint32_t, ledger_audit_cb, void *);
int ledger_sqlite_audit_last(
    void *, uint64_t, const char *const *, size_t, const char *, struct ledger_audit *);
int ledger_sqlite_audit_count(void *, uint64_t *);
int ledger_sqlite_audit_verify_step(void *, struct ledger_audit_walk *, uint32_t, char *, size_t);
/* ledger_sqlite_export.c: a migration's source (ledger_backend.h, export_walk). */
int ledger_sqlite_export_walk(void *, ledger_export_agent_cb, ledger_export_join_cb, void *);

#endif
