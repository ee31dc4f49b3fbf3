/*
 * The migration ledger: which agents exist, their token hashes, when they
 * were seen, which bundle they hold, and per staged CA whether it was
 * delivered, acknowledged and verified; and the audit log, a hash chain of
 * every state-changing call. Only the parent process opens it.
 * Kept by one of two engines behind one contract (ledger_backend.h): SQLite
 * in the state directory for a single proxy (ledger_sqlite*.c), PostgreSQL
 * for a pool (ledger_pg.c). ledger.c checks the arguments and calls the
 * engine; the engines' files own all SQL.
 */
#ifndef CAROTATE_LEDGER_H
#define CAROTATE_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto_limits.h"

#define LEDGER_FILE           "ledger.db"
#define LEDGER_TOKEN_HASH_LEN 32 /* SHA-256 of the token */
#define LEDGER_MAX_AGENT_ID   LIMITS_MAX_AGENT_ID
#define LEDGER_MAX_REASON     256
#define LEDGER_BUNDLE_ID_LEN  64 /* hex */
#define LEDGER_CA_ID_LEN      64 /* hex SHA-256 of the staged CA */
/*
 * A check-in that changes nothing else (the agent lacks nothing) writes
 * last_seen only once it moved by this many seconds; the counts have it to
 * the second, and a restart may set it back by up to this much.
 */
#define LEDGER_SEEN_GRANULARITY 300

struct ledger;
struct ledger_counts;

enum ledger_result {
	LEDGER_OK = 0,
	LEDGER_UNKNOWN_AGENT, /* no such agent id */
	LEDGER_BAD_TOKEN,     /* the token does not match the agent's */
	LEDGER_ERROR,         /* SQLite failed; logged */
	LEDGER_EXISTS,        /* link: the agent id is taken */
	LEDGER_NOT_FOUND,     /* no such join token */
};

/*
 * Opens (creating if needed) state_dir/ledger.db: WAL, synchronous=FULL,
 * schema migrated to the current user_version, PRAGMA integrity_check
 * passed, in-memory index loaded. NULL with err filled on any failure
 * (a corrupt ledger is an error, never an empty one).
 */
struct ledger *ledger_open(const char *state_dir, char *err, size_t errlen);
/*
 * A pool member's ledger: the PostgreSQL database that dsn names (a libpq
 * connection string; the caller read it from [ledger] dsn_file and never logs
 * it), shared by every member of the pool, member being this one's name.
 * Creates or migrates the schema (one member at a time), checks it. NULL with
 * err filled on failure; err never holds the connection string or a password.
 */
struct ledger *ledger_open_pg(const char *dsn, const char *member, char *err, size_t errlen);
/*
 * How a pool member's ledger differs, the contract otherwise the same:
 * - Counts (ledger_count, ledger_pending, ledger_holdings) are SQL over the
 *   pool's committed rows, one snapshot each, whichever member wrote them;
 *   inside a batch they fail (-1): the batch's connection would see its own
 *   uncommitted writes. ledger_total inside a batch counts the batch's links.
 *   A check-in that changes nothing else writes last_seen only every
 *   LEDGER_SEEN_GRANULARITY seconds, and no member holds the others' check-ins
 *   in memory, so the active window is widened by that much: an agent counts
 *   as active up to LEDGER_SEEN_GRANULARITY seconds longer than on SQLite
 *   (one more agent the gate waits for, never one less).
 * - The staged CA is the pool's: ledger_set_target compares it with the
 *   staging open in the database, so every member naming the same CA shares
 *   one staging. When the database cannot be reached it fails (-1) but keeps
 *   the target, and stores it once the database is back.
 * - A lost connection fails the call that met it (LEDGER_ERROR or -1, logged
 *   once per outage); the next call connects again. While the database stays
 *   out of reach, attempts back off from 1 s to 32 s between them.
 * - Cut off from the database, ledger_begin still opens a batch (0), an
 *   offline one: in it ledger_checkin answers agents this member saw since it
 *   started (their token hash and the bundle last delivered are cached) with
 *   LEDGER_OK and *send_bundle as it would be, and records nothing, so nothing
 *   is counted (an acknowledgement is simply repeated at the next check-in);
 *   any other agent, or a token the cache does not hold (it may have been
 *   renewed through another member), gets LEDGER_ERROR. Every other call of
 *   the batch returns LEDGER_ERROR; ledger_commit returns 0 (nothing to write).
 * - Audit records are numbered across the pool, one chain for every member;
 *   the table also keeps which member appended each (a column the hash does
 *   not cover: the detail's member= argument is the one it covers).
 * - ledger_health: unreachable from the call that found the connection lost
 *   until one connects again; last_error is libpq's reason, password cut out.
 */
/* "sqlite" or "postgresql". */
const char *ledger_backend_name(const struct ledger *);
/*
 * Whether the ledger answers: a pool member's database may be out of reach (a
 * single proxy's SQLite file always answers or fails for good). last_error is
 * the reason of the last outage, kept after it ended ("" and 0 when none).
 */
struct ledger_health {
	int reachable;
	char last_error[256];
	int64_t last_error_at; /* seconds since the epoch */
};
void ledger_health(const struct ledger *, struct ledger_health *);
/*
 * One round trip to a pool's database now (a single proxy's ledger: nothing to do): 0 when
 * it answered, -1 when it is out of reach (ledger_health then says why). Not inside a batch.
 */
int ledger_probe(struct ledger *);
/*
 * A pool's named blobs, opaque to the ledger (sealed key material, the pool
 * key's check); name is printable ASCII, at most LEDGER_MAX_BLOB_NAME.
 * ledger_blob_get: 1 with the blob in buf (*len its length), 0 when there is
 * none, -1 on error or when it does not fit cap. ledger_blob_put_new stores
 * a blob under a name that has none (1), leaves an existing one as it is (0),
 * or fails (-1). Not inside a batch. A single proxy's ledger has none (-1).
 */
#define LEDGER_MAX_BLOB_NAME 128
#define LEDGER_MAX_BLOB      (1024 * 1024)
int ledger_blob_get(struct ledger *, const char *name, uint8_t *buf, size_t cap, size_t *len);
int ledger_blob_put_new(struct ledger *, const char *name, const uint8_t *blob, size_t len);
void ledger_close(struct ledger *);
/*
 * A pool member's state, one row per member in the pool's database: what it
 * serves and how its last reload and TLS check went, with a heartbeat taken
 * from the database's clock (members' clocks do not matter). Fingerprints are
 * SHA-256 hex as certset_fingerprints gives them ("-" none, "?" unreadable).
 */
#define LEDGER_MAX_MEMBER       63
#define LEDGER_MAX_MEMBER_ERROR 255
struct ledger_member {
	char name[LEDGER_MAX_MEMBER + 1]; /* list: the member's; beat: ignored */
	int64_t started_at;               /* seconds since the epoch, the member's clock */
	int64_t heartbeat_at;             /* list: the last beat, the database's clock */
	int64_t heartbeat_age;            /* list: seconds since it, by the database's clock */
	char active_ca[LEDGER_CA_ID_LEN + 1];
	char active_server[LEDGER_CA_ID_LEN + 1];
	char staged_ca[LEDGER_CA_ID_LEN + 1];
	int64_t last_reload_at; /* 0: none since the member started */
	int last_reload_ok;
	int64_t last_check_at; /* 0: none since the member started */
	int last_check_ok;
	char last_error[LEDGER_MAX_MEMBER_ERROR + 1]; /* printable one-line text */
	/* list: ledger_member_applied's last report (0 and "" when it never reported). */
	uint64_t applied_generation;
	int applied_ok;
	char apply_error[LEDGER_MAX_MEMBER_ERROR + 1];
	int64_t applied_at; /* the database's clock */
};
/*
 * Writes this member's row (the name given to ledger_open_pg, never m->name)
 * with m's state and a heartbeat of the database's now; the applied_* and
 * apply_error fields are ledger_member_applied's and left as they are. Not inside a batch.
 * 0 / -1 (a database out of reach fails it; a single proxy's ledger is not a
 * pool: -1).
 */
int ledger_member_beat(struct ledger *, const struct ledger_member *m);
/*
 * Every member's row, by name, ages computed by the database. 0 / -1 (not a
 * pool, or out of reach). Not inside a batch.
 */
typedef void (*ledger_member_cb)(const struct ledger_member *, void *arg);
int ledger_member_list(struct ledger *, ledger_member_cb, void *arg);
/*
 * This member's result of applying pool generation `generation` (1 or more): written in
 * its row with applied_at the database's now, nothing else of the row changed. error
 * (NULL: none) is stored as one printable line: bytes outside printable ASCII become
 * '?', and it is cut to LEDGER_MAX_MEMBER_ERROR bytes. A member that never beat gets a
 * row with a heartbeat at the epoch (as stale as can be) until its first beat. 0 / -1
 * (not a pool, out of reach, inside a batch).
 */
int ledger_member_applied(struct ledger *, uint64_t generation, int ok, const char *error);

/*
 * The pool's shared state: the generation of its last mutation and the sets it left,
 * which every member applies. One row in the pool's database; a single proxy's ledger
 * has none (every call below fails, -1; ledger_pool_socket -1).
 */
#define LEDGER_POOL_MAX_CALL 15
struct ledger_pool_state {
	uint64_t generation; /* 0: nothing was ever published */
	char
	    active[LEDGER_CA_ID_LEN + 1]; /* SHA-256 hex of the active set's server leaf; "" none */
	char staged[LEDGER_CA_ID_LEN + 1];   /* the staged set's leaf; "" none */
	char call[LEDGER_POOL_MAX_CALL + 1]; /* the call that wrote it ("rotate", ...) */
	char member[LEDGER_MAX_MEMBER + 1];  /* the member that wrote it */
	int64_t written_at;                  /* the database's clock, seconds; 0 never written */
};
/* 0 with *st (generation 0 and "" when never written), -1 error. Not inside a batch. */
int ledger_pool_state_get(struct ledger *, struct ledger_pool_state *st);
/*
 * One transaction: when the pool's generation is still `expect`, writes st's active,
 * staged (each "" or 64 lower-case hex digits) and call (1 to LEDGER_POOL_MAX_CALL of
 * a-z 0-9 _ -) with generation expect + 1 and this member's name, and NOTIFY
 * carotate_pool (payload: the new generation, decimal) in the same transaction, so a
 * listener hears of it once it is committed, never before. 1 written (st->generation,
 * member and written_at set), 0 the generation moved on (nothing written, st as it
 * was), -1 error or bad arguments. Not inside a batch.
 */
int ledger_pool_state_put(struct ledger *, struct ledger_pool_state *st, uint64_t expect);
/*
 * The pool-wide mutation lock: a session-level advisory lock on a key of its own
 * (not the migration, audit or target locks), taken without waiting. 1 taken (or
 * held already by this member: taking it again does not nest), 0 another member
 * holds it, -1 error. The lock lives with the connection: a member whose connection
 * is lost (a server restart, a network cut) has lost the lock with it, and another
 * member may take it at once; the next ledger_pool_lock tells (it takes it anew or
 * answers 0). Not inside a batch. ledger_pool_unlock releases it; quiet when not held
 * or when the connection is gone (the lock went with it).
 */
int ledger_pool_lock(struct ledger *);
void ledger_pool_unlock(struct ledger *);
/*
 * Hearing of another member's ledger_pool_state_put: LISTEN carotate_pool is issued
 * on every connection and every reconnection. ledger_pool_socket: the connection's
 * socket, to watch for readability (-1 while cut off, or not a pool); it changes
 * after a reconnection, so ask again after every call that may have reconnected.
 * ledger_pool_notified reads what the socket holds and drains the notifications:
 * 1 one or more came, or the connection was made again since the last call (what
 * was published meanwhile went unheard: read the state), 0 none, -1 the connection
 * is lost (ledger_health says why; the next call connects again, after the back-off).
 * A notification that arrived while another ledger call ran is queued by that call
 * and never makes the socket readable: call ledger_pool_notified after other calls
 * too (a timer), not only when the socket is readable. Not inside a batch.
 */
int ledger_pool_socket(struct ledger *);
int ledger_pool_notified(struct ledger *);

/*
 * Counts per member, the agents split by the member each last checked in through
 * (set by a link, check-in or renewal; "" for agents no member recorded), as
 * ledger_count counts them; from one snapshot. 0 / -1 (not a pool, out of reach).
 */
typedef void (*ledger_member_counts_cb)(const char *member, const struct ledger_counts *, void *);
int ledger_count_members(
    struct ledger *, time_t now, uint64_t window, ledger_member_counts_cb, void *arg);
/*
 * PRAGMA quick_check (O(N) in the file's pages, no index cross-check) on the
 * open connection: 1 when it reports "ok", 0 when it found damage (its first
 * message in problem), -1 when it could not run (problem says why).
 */
int ledger_quick_check(struct ledger *, char *problem, size_t len);

/*
 * What the migration is about: the staged CA's SHA-256 (NULL when nothing is
 * staged) and the id of the bundle served now (NULL when there is none).
 * Reloads the in-memory state for that CA when it changed.
 * The staged CA is stored: naming a CA other than the stored one (NULL
 * included) ends that staging and starts a new one, with nothing delivered,
 * acknowledged or verified (a CA staged again after a discard starts over).
 * Not inside a batch (-1). 0 / -1.
 */
int ledger_set_target(struct ledger *, const char *staged_ca, const char *bundle_id);

/*
 * Group commit: ledger_begin, then any number of link/checkin/exclude/include
 * calls, then ledger_commit, which makes them durable (fsync) before the
 * in-memory counters see them. Nothing is counted before it is on disk.
 * ledger_rollback discards the batch (the counters never saw it).
 * Those four calls outside a batch return LEDGER_ERROR (logged). A call that
 * returns LEDGER_ERROR is undone alone and the batch goes on, unless SQLite
 * abandoned the transaction: then ledger_commit fails. A failed
 * ledger_commit has rolled back already; ledger_rollback after it is a no-op.
 */
int ledger_begin(struct ledger *);
int ledger_commit(struct ledger *);
void ledger_rollback(struct ledger *);
/* Ends a transaction by the result of its write: commits on LEDGER_OK (LEDGER_ERROR when
 * that fails), rolls back otherwise; returns the result. */
enum ledger_result ledger_end(struct ledger *, enum ledger_result);
/* 1 while a batch is open. */
int ledger_in_batch(const struct ledger *);

/*
 * Links a new agent_id: stores the token's hash, linked_at = last_seen = now.
 * The caller sends it the current bundle: it is recorded as delivered. An id
 * that exists is LEDGER_EXISTS and changes nothing (carotate-protocol(7): a re-link
 * needs the agent's current token, ledger_renew, or a forget first).
 */
enum ledger_result ledger_link(struct ledger *, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], time_t now);

#define LEDGER_JOIN_ID_LEN   16 /* hex: the public half of a join token */
#define LEDGER_MAX_JOIN_DESC 256
/*
 * ledger_link for a new agent that presented join token join_id (whose whole
 * text hashes to join_hash): the token loses one use and the agent is linked,
 * both or neither. LEDGER_NOT_FOUND when the token is unknown, does not match,
 * expired (expires_at <= now) or has no use left; LEDGER_EXISTS as ledger_link.
 */
enum ledger_result ledger_link_join(struct ledger *, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *join_id,
    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
/* The join token would be accepted now (as ledger_link_join, nothing used). Inside a batch. */
enum ledger_result ledger_join_check(struct ledger *, const char *join_id,
    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now);
/*
 * Token renewal: the agent proves its current token (old_hash, constant-time
 * compare) and gets new_hash in its place; last_seen = now. Nothing else of
 * the agent changes. LEDGER_UNKNOWN_AGENT / LEDGER_BAD_TOKEN change nothing.
 */
enum ledger_result ledger_renew(struct ledger *, const char *agent_id,
    const uint8_t old_hash[LEDGER_TOKEN_HASH_LEN], const uint8_t new_hash[LEDGER_TOKEN_HASH_LEN],
    time_t now);
/* Agents in the ledger: committed ones and those the open batch linked. */
uint64_t ledger_total(const struct ledger *);
/* Deletes an agent's row (its host may link again). Inside a batch. */
enum ledger_result ledger_forget(struct ledger *, const char *agent_id);
/*
 * Deletes every agent, not excluded, that never presented a bundle back and
 * linked before `before`; *n: how many. Inside a batch.
 */
enum ledger_result ledger_forget_unconfirmed(struct ledger *, int64_t before, uint64_t *n);

struct ledger_join {
	char id[LEDGER_JOIN_ID_LEN + 1]; /* lower-case hex */
	uint8_t hash[LEDGER_TOKEN_HASH_LEN];
	uint32_t uses_left;
	int64_t expires_at, created_at;
	char description[LEDGER_MAX_JOIN_DESC + 1]; /* printable ASCII */
};
/* Stores a join token (ids are random: a clash is LEDGER_EXISTS). Inside a batch. */
enum ledger_result ledger_join_create(struct ledger *, const struct ledger_join *);
/* LEDGER_NOT_FOUND when there is no such token. Inside a batch. */
enum ledger_result ledger_join_revoke(struct ledger *, const char *join_id);
/* Every join token, oldest first (hash zeroed: the callback never sees it). 0 / -1. */
typedef void (*ledger_join_cb)(const struct ledger_join *, void *arg);
int ledger_join_list(struct ledger *, ledger_join_cb, void *arg);

/*
 * A check-in with a token (compared in constant time with the stored hash).
 * On LEDGER_OK: last_seen = now; when presented (the If-None-Match bundle id,
 * or NULL) is the bundle last delivered to this agent, the agent holds it
 * (acknowledged for the staged CA when that bundle contains it); a canary
 * check-in while a CA is staged marks it verified. *send_bundle is set when
 * presented is not the current bundle (the caller answers 200 with it, and it
 * is recorded as delivered), cleared for 304. It is also set when presented
 * is the current bundle but the ledger has no record of delivering it to this
 * agent (a forged If-None-Match, or a delivery lost with a failed batch): the
 * agent then gets it on record and can acknowledge it next time, never now.
 * Unknown agents and bad tokens change nothing.
 */
enum ledger_result ledger_checkin(struct ledger *, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *presented, int canary, time_t now,
    int *send_bundle);

/* One check-in of a run (ledger_checkin_run): ledger_checkin's arguments, then its answer. */
struct ledger_checkin {
	const char *agent_id;
	const uint8_t *token_hash; /* LEDGER_TOKEN_HASH_LEN bytes */
	const char *presented;     /* the If-None-Match bundle id, or NULL */
	int canary;
	enum ledger_result result; /* set by ledger_checkin_run */
	int send_bundle;           /* set by ledger_checkin_run */
};
/*
 * n check-ins at now, inside a batch, each answered (result, send_bundle) as
 * ledger_checkin would answer it had they been called one after another in
 * this order: an agent's later check-ins in the run see its earlier ones. A
 * pool member decides a run of distinct agents in one statement; a check-in
 * that fails (LEDGER_ERROR) fails alone, as a single call would.
 */
void ledger_checkin_run(struct ledger *, struct ledger_checkin *, size_t n, time_t now);

/* Excludes (reason kept) or re-includes an agent. */
enum ledger_result ledger_exclude(struct ledger *, const char *agent_id, const char *reason);
enum ledger_result ledger_include(struct ledger *, const char *agent_id);

struct ledger_agent {
	char id[LEDGER_MAX_AGENT_ID + 1];
	int64_t linked_at;
	int64_t last_seen;
	int excluded;
	char reason[LEDGER_MAX_REASON + 1];
};
/* Reads the database: inside a batch, its uncommitted changes included. */
enum ledger_result ledger_get(struct ledger *, const char *agent_id, struct ledger_agent *);

struct ledger_counts {
	uint64_t linked;           /* every agent, excluded ones included */
	uint64_t active;           /* not excluded; last_seen >= now - window */
	uint64_t acknowledged;     /* active, staged CA acknowledged */
	uint64_t verified;         /* active, staged CA verified */
	uint64_t delivered;        /* active, staged CA delivered */
	uint64_t pending;          /* active, not acknowledged */
	uint64_t inactive_lacking; /* not excluded, not active, not acknowledged */
	uint64_t excluded;
	uint64_t current; /* active agents holding the current bundle */
	/* not excluded, never presented any bundle back (ledger_forget_unconfirmed's kind) */
	uint64_t never_confirmed;
};

/*
 * Counts of the committed state (SQLite: from the in-memory index, no SQL on
 * this path). With nothing staged, acknowledged, verified and delivered are 0
 * and "lacking" (pending, inactive_lacking) means not holding the current
 * bundle (0 when there is no current bundle).
 * 0, or -1 when the engine cannot count (a pool member cut off from its
 * database): c is all zeros then, which is no fleet's state; a caller must
 * never take it for zero agents (a gate refuses, a report fails).
 */
int ledger_count(struct ledger *, time_t now, uint64_t window, struct ledger_counts *);

/*
 * One page of pending agents (active, not acknowledged; with nothing staged:
 * not holding the current bundle), most recently seen first, ties by link
 * order; from the same committed state as ledger_count. delivered is for the
 * staged CA (0 when nothing is staged). 0 / -1.
 */
typedef void (*ledger_agent_cb)(const char *id, int64_t last_seen, int delivered, void *arg);
int ledger_pending(struct ledger *, time_t now, uint64_t window, uint64_t offset, uint32_t limit,
    ledger_agent_cb, void *arg);

/* Active agents per bundle held (nothing staged); "" for agents that hold none we know of. */
typedef void (*ledger_holding_cb)(const char *bundle_id, uint64_t agents, void *arg);
int ledger_holdings(struct ledger *, time_t now, uint64_t window, ledger_holding_cb, void *arg);

/*
 * The audit log: an append-only table (triggers refuse UPDATE and DELETE) in
 * which each record carries the SHA-256 of the one before it. The hash of a
 * record is SHA-256 over this encoding, so any tool can check the chain:
 *   the 17 bytes "carotate-audit-v1" and a NUL byte, then
 *   seq, time, uid, pid as 8-byte big-endian integers (time two's complement),
 *   then user, call, result, detail, before, after, prev_hash, each as a
 *   4-byte big-endian length and that many bytes;
 * written as 64 lower-case hex digits. The first record's prev_hash is 64
 * zeros. The chain shows a record altered, removed or inserted; records cut
 * off the end leave a shorter chain that checks out, which is why every
 * record also goes to syslog with its seq and hash.
 */
#define LEDGER_AUDIT_HASH_LEN   64 /* hex */
#define LEDGER_AUDIT_MAX_USER   64
#define LEDGER_AUDIT_MAX_CALL   32
#define LEDGER_AUDIT_MAX_RESULT 32
#define LEDGER_AUDIT_MAX_DETAIL 1024
#define LEDGER_AUDIT_MAX_STATE  256 /* "active=<ca>/<server> staged=<ca>" */

/* One record. The strings are printable one-line text; the caller sanitizes them. */
struct ledger_audit {
	uint64_t seq; /* 1, 2, ...: set by ledger_audit_append */
	int64_t time; /* seconds since the epoch */
	uint32_t uid;
	uint32_t pid; /* 0 for the daemon's own events */
	char user[LEDGER_AUDIT_MAX_USER + 1];
	char call[LEDGER_AUDIT_MAX_CALL + 1];
	char result[LEDGER_AUDIT_MAX_RESULT + 1];
	char detail[LEDGER_AUDIT_MAX_DETAIL + 1];
	char before[LEDGER_AUDIT_MAX_STATE + 1];
	char after[LEDGER_AUDIT_MAX_STATE + 1];
	char prev_hash[LEDGER_AUDIT_HASH_LEN + 1]; /* set by ledger_audit_append */
	char hash[LEDGER_AUDIT_HASH_LEN + 1];      /* set by ledger_audit_append */
};

/*
 * Appends a record in a transaction of its own (durable when it returns 0):
 * fills seq, prev_hash and hash from the newest record. Refused (-1, logged)
 * inside a batch, whose rollback would take the record with it.
 */
int ledger_audit_append(struct ledger *, struct ledger_audit *);
/*
 * Records are numbered 1, 2, ... with no gap (a gap is what ledger_audit_verify
 * reports), so both calls below go by number and cost the same at any length
 * of the log. Records newest first, from number (newest - offset) down;
 * strings cut to the struct's sizes. 0 / -1.
 */
typedef void (*ledger_audit_cb)(const struct ledger_audit *, void *arg);
int ledger_audit_list(struct ledger *, uint64_t offset, uint32_t limit, ledger_audit_cb, void *arg);
/*
 * The newest record after number `after` whose call is one of calls (at most
 * LEDGER_AUDIT_LAST_CALLS) and whose detail contains marker: 1 with it in a
 * (strings cut as ledger_audit_list cuts them), 0 when there is none, -1.
 * Reads from the newest down and stops at the first match.
 */
#define LEDGER_AUDIT_LAST_CALLS 4
int ledger_audit_last(struct ledger *, uint64_t after, const char *const *calls, size_t ncalls,
    const char *marker, struct ledger_audit *);
/* The newest record's number: how many records the log holds (0 when empty). 0 / -1. */
int ledger_audit_count(struct ledger *, uint64_t *total);
/*
 * Walks the whole chain from seq 1 (the table's own bytes, not the cut
 * strings of ledger_audit_list): seqs consecutive from 1, each prev_hash the
 * previous record's hash (zeros for the first), each hash that of the
 * record's fields. 1 intact; 0 broken, *broken_at the first record that does
 * not check out and problem says why; -1 when it cannot be read (problem).
 */
int ledger_audit_verify(struct ledger *, uint64_t *broken_at, char *problem, size_t len);
/*
 * The same walk a slice at a time, so that a long log does not hold up the
 * caller: init, then step until it returns other than 2. A step checks up to
 * max records: 2 when it checked max of them (call again), 1 when the chain
 * ended intact, 0 when record w->next is broken (problem says why), -1 when
 * the log cannot be read (problem). Records appended between steps are walked.
 */
struct ledger_audit_walk {
	uint64_t next; /* the seq the next record must have */
	char prev[LEDGER_AUDIT_HASH_LEN + 1];
};
void ledger_audit_walk_init(struct ledger_audit_walk *);
int ledger_audit_verify_step(
    struct ledger *, struct ledger_audit_walk *, uint32_t max, char *problem, size_t len);
/* The hash of a record's fields (prev_hash included, hash excluded), hex. */
void ledger_audit_hash(const struct ledger_audit *, char out[LEDGER_AUDIT_HASH_LEN + 1]);

/*
 * A single proxy's ledger copied into a pool (carotated --migrate-ledger).
 * ledger_open_source opens path, a single proxy's ledger.db, read-only
 * through the SQLite engine: it refuses a file another process has open (a
 * running daemon), a file that is not a carotate ledger, one whose schema is
 * not this carotated's (newer, or older and not yet migrated by its daemon),
 * and one that fails PRAGMA integrity_check. NULL with err filled.
 */
struct ledger *ledger_open_source(const char *path, char *err, size_t errlen);
/* One agent as a pool receives it: what a migration copies, nothing else. */
struct ledger_export_agent {
	char id[LEDGER_MAX_AGENT_ID + 1];
	uint8_t hash[LEDGER_TOKEN_HASH_LEN];
	int64_t linked_at, first_seen, last_seen;
	int excluded;
	char reason[LEDGER_MAX_REASON + 1];
	char held[LEDGER_BUNDLE_ID_LEN + 1]; /* the bundle it last presented back; "" none */
};
/* export_walk's callbacks (ledger_backend.h): 0 goes on, -1 stops the walk. */
typedef int (*ledger_export_agent_cb)(const struct ledger_export_agent *, void *arg);
typedef int (*ledger_export_join_cb)(const struct ledger_join *, void *arg);
#define LEDGER_MIGRATE_NAMED 10 /* conflicting agent ids named in the outcome */
struct ledger_migration {
	uint64_t agents_copied, agents_present, agents_conflicts;
	uint64_t joins_copied, joins_present, joins_conflicts;
	char conflicts[LEDGER_MIGRATE_NAMED][LEDGER_MAX_AGENT_ID + 1]; /* the first ones */
	size_t named;
	uint64_t source_records; /* the source's audit chain, verified: its length and head */
	char source_head[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t pool_record; /* the pool's migrate-ledger record */
};
/*
 * Copies source (ledger_open_source) into pool (ledger_open_pg) in one pool
 * transaction: every agent (token hash, linked_at, last_seen, exclusion and
 * reason) and every join token whose id the pool lacks. An id the pool has is
 * left as it is: counted present, or a conflict when its token hash differs
 * (the first LEDGER_MIGRATE_NAMED named). Not copied: acknowledgements,
 * verifications, bundles delivered or held, and the source's audit records;
 * the source's chain is verified first (a broken one is refused) and the
 * same transaction appends rec to the pool's chain: call migrate-ledger, its
 * detail (which may start with the caller's arguments) given the counts,
 * source path and the source chain's head. rec's time, uid, user and pid
 * are the caller's. 0 with m filled and committed; -1 with err filled and
 * nothing written.
 */
int ledger_migrate(struct ledger *pool, struct ledger *source, const char *source_path,
    struct ledger_audit *rec, struct ledger_migration *m, char *err, size_t errlen);

#ifdef CAROTATE_FUZZ
/*
 * Makes the open ledger's rows those of the database file from (a ledger of
 * the same schema) and reloads what it keeps in memory, keeping the
 * connection and its statements: a fuzz target's way back to its template
 * between inputs.
 * The caller sets the target again (ledger_set_target).
 */
int ledger_fuzz_restore(struct ledger *, const char *from, char *err, size_t errlen);
#endif

/*
 * The outcome of a swap (rotate, restore, renew) in an audit record's detail: the bare
 * verified= and rolled_back= arguments rpc/audit.c writes after the call's own. Read by the
 * detail's grammar, so an admin's quoted --reason or the message never passes for it. 0
 * with both flags (1 yes, 0 no), or -1 when the detail holds no outcome.
 */
int ledger_audit_outcome(const char *detail, int *verified, int *rolled_back);
/* What ledger_audit_last's marker looks for in the records of swaps with an outcome. */
#define LEDGER_AUDIT_OUTCOME_MARK "rolled_back="

#endif
