/*
 * The ledger's SQLite engine, for a single proxy: every SQL statement of
 * carotated's own ledger. SQLite (WAL, synchronous=FULL) holds the truth; a
 * flat in-memory index of 8 bytes per agent answers the counts without SQL. A
 * batch's changes reach the index only after its COMMIT returned, so nothing
 * is counted before it is durable. This file owns the connection, the schema
 * and its migrations, the batches and the index; ledger_sqlite_agents.c the
 * agents, ledger_sqlite_audit.c the audit records, ledger_sqlite_backend.c the
 * engine's table (ledger_sqlite_backend). ledger.c checks the arguments and
 * calls in through the table; each entry has the contract of the ledger.h
 * function of the same name.
 *
 * Rules:
 * - link, checkin, exclude and include run only inside a batch (ledger_begin);
 *   outside one they return LEDGER_ERROR and log. Each writes with a single
 *   statement, which SQLite undoes alone when it fails: the batch goes on,
 *   unless SQLite abandoned the whole transaction; then the batch fails.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_sqlite.h"
#include "log.h"
#include "xmalloc.h"

#define LEDGER_BUSY_MS   200 /* only an operator's sqlite3 shell competes */
#define LEDGER_PAGE_SIZE "1024"
#define LEDGER_WAL_PAGES "8000"     /* checkpoint when the WAL holds ~8 MiB */
#define LEDGER_WAL_LIMIT "33554432" /* truncate a WAL a reader made grow, to 32 MiB */
#define LEDGER_ADVICE                                                                              \
	"restore it from a backup or move it aside (the daemon will not report numbers it "        \
	"cannot trust)"

/* integrity_check starts its report with this line; the first message follows. */
#define LEDGER_IC_PREFIX "*** in database main ***\n"

/* An audit row in the order ledger_sqlite_audit_row reads it. */
#define LEDGER_AUDIT_COLUMNS                                                                       \
	"seq, time, uid, pid, user, call, result, detail, \"before\", \"after\", prev_hash, hash"

/*
 * The audit table refuses changes to its rows: defence in depth only, since
 * whoever can write the file can drop the triggers (the hash chain shows
 * what they did then). Part of migration 1 -> 2 and re-created at open when
 * missing: never edit.
 */
#define LEDGER_AUDIT_TRIGGERS                                                                      \
	"CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "                     \
	"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"                          \
	"CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "                     \
	"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"

const char *const ledger_sqlite_sql[LST_COUNT] = {
	[LST_BEGIN] = "BEGIN IMMEDIATE",
	[LST_COMMIT] = "COMMIT",
	[LST_ROLLBACK] = "ROLLBACK",
	[LST_LINK] = "INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, last_seen, "
	             "delivered_bundle, staging, staged_delivered_at) "
	             "VALUES (?1, ?2, ?3, ?3, ?3, ?4, ?5, ?6) "
	             "ON CONFLICT (agent_id) DO NOTHING RETURNING id, is_excluded",
	[LST_FIND] =
	    "SELECT id, token_hash, delivered_bundle, held_bundle, is_excluded, last_seen, "
	    "staging, staged_delivered_at, acknowledged_at, verified_at "
	    "FROM agents WHERE agent_id = ?1",
	[LST_CHECKIN] = "UPDATE agents SET last_seen = ?2, held_bundle = ?3, "
	                "delivered_bundle = ?4, staging = ?5, staged_delivered_at = ?6, "
	                "acknowledged_at = ?7, verified_at = ?8 WHERE id = ?1",
	[LST_EXCLUDE] = "UPDATE agents SET is_excluded = 1, exclude_reason = ?2 "
	                "WHERE agent_id = ?1 RETURNING id",
	[LST_INCLUDE] = "UPDATE agents SET is_excluded = 0, exclude_reason = NULL "
	                "WHERE agent_id = ?1 RETURNING id",
	[LST_GET] = "SELECT agent_id, linked_at, last_seen, is_excluded, exclude_reason "
	            "FROM agents WHERE agent_id = ?1",
	[LST_NAME] = "SELECT agent_id FROM agents WHERE id = ?1",
	[LST_MAX_ID] = "SELECT coalesce(max(id), 0) FROM agents",
	[LST_LOAD_AGENTS] = "SELECT id, last_seen, held_bundle, is_excluded, staging, "
	                    "staged_delivered_at IS NOT NULL, acknowledged_at IS NOT NULL, "
	                    "verified_at IS NOT NULL FROM agents",
	[LST_LOAD_BUNDLES] = "SELECT id, bundle_id FROM bundles",
	[LST_OPEN_STAGING] = "SELECT id, ca FROM stagings WHERE ended_at IS NULL "
	                     "ORDER BY id DESC LIMIT 1",
	[LST_END_STAGING] = "UPDATE stagings SET ended_at = ?1 WHERE ended_at IS NULL",
	[LST_NEW_STAGING] = "INSERT INTO stagings (ca, started_at) VALUES (?1, ?2)",
	[LST_ADD_BUNDLE] = "INSERT INTO bundles (bundle_id, first_served) VALUES (?1, ?2) "
	                   "ON CONFLICT (bundle_id) DO NOTHING",
	[LST_BUNDLE_ID] = "SELECT id FROM bundles WHERE bundle_id = ?1",
	[LST_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
	[LST_AUDIT_INSERT] = "INSERT INTO audit (seq, time, uid, user, pid, call, result, detail, "
	                     "\"before\", \"after\", prev_hash, hash) "
	                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	/* By seq, not OFFSET or count(*): both would read the whole log at every call. */
	[LST_AUDIT_PAGE] =
	    "SELECT " LEDGER_AUDIT_COLUMNS " FROM audit "
	    "WHERE seq <= (SELECT max(seq) FROM audit) - ?2 ORDER BY seq DESC LIMIT ?1",
	[LST_AUDIT_CHAIN] = "SELECT " LEDGER_AUDIT_COLUMNS " FROM audit WHERE seq > ?1 "
	                    "ORDER BY seq LIMIT ?2",
	[LST_AUDIT_COUNT] = "SELECT coalesce(max(seq), 0) FROM audit",
	[LST_RENEW] =
	    "UPDATE agents SET token_hash = ?2, last_seen = max(last_seen, ?3) WHERE id = ?1",
	[LST_FORGET] = "DELETE FROM agents WHERE agent_id = ?1 RETURNING id",
	/* Never confirmed: never presented a bundle back (held_bundle is set by the first). */
	[LST_FORGET_UNCONFIRMED] = "DELETE FROM agents WHERE held_bundle IS NULL AND "
	                           "acknowledged_at IS NULL AND is_excluded = 0 AND linked_at < ?1 "
	                           "RETURNING id",
	[LST_JOIN_ADD] = "INSERT INTO join_tokens (id, token_hash, uses_left, expires_at, "
	                 "description, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[LST_JOIN_FIND] = "SELECT token_hash, uses_left, expires_at FROM join_tokens WHERE id = ?1",
	[LST_JOIN_USE] = "UPDATE join_tokens SET uses_left = uses_left - 1 "
	                 "WHERE id = ?1 AND uses_left > 0",
	[LST_JOIN_DEL] = "DELETE FROM join_tokens WHERE id = ?1 RETURNING id",
	[LST_JOIN_LIST] = "SELECT id, uses_left, expires_at, description, created_at "
	                  "FROM join_tokens ORDER BY created_at, id",
	/* A link that uses a join token: both writes or neither. */
	[LST_SAVEPOINT] = "SAVEPOINT link_join",
	[LST_RELEASE] = "RELEASE link_join",
	[LST_ROLLBACK_TO] = "ROLLBACK TO link_join",
	/* The cheap check (no index against its table): ledger_sqlite_quick_check. */
	[LST_QUICK_CHECK] = "PRAGMA quick_check(1)",
	/* From the newest down, stopping at the first match; seq > ?1 skips what was seen. */
	[LST_AUDIT_LAST] = "SELECT " LEDGER_AUDIT_COLUMNS " FROM audit "
	                   "WHERE seq > ?1 AND call IN (?2, ?3, ?4, ?5) AND instr(detail, ?6) > 0 "
	                   /* calls that reached an outcome (status_record_name's spelling) */
	                   "AND result IN ('OK', 'INTERNAL') "
	                   "ORDER BY seq DESC LIMIT 1",
};

/* Schema migrations: [i] takes user_version i to i + 1. Append only, never edit. */
static const char *const ledger_sqlite_migrations[] = {
	/* 0 -> 1: the schema. Bundle ids and staged CAs are interned as integers. */
	"CREATE TABLE bundles ("
	" id INTEGER PRIMARY KEY,"
	" bundle_id TEXT NOT NULL UNIQUE CHECK (length(bundle_id) BETWEEN 1 AND 64),"
	" first_served INTEGER NOT NULL"
	") STRICT;"
	"CREATE TABLE stagings ("
	" id INTEGER PRIMARY KEY,"
	" ca TEXT NOT NULL CHECK (length(ca) BETWEEN 1 AND 64),"
	" started_at INTEGER NOT NULL,"
	" ended_at INTEGER"
	") STRICT;"
	"CREATE TABLE agents ("
	" id INTEGER PRIMARY KEY,"
	" agent_id TEXT NOT NULL UNIQUE CHECK (length(agent_id) BETWEEN 1 AND 64),"
	" token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),"
	" linked_at INTEGER NOT NULL,"
	" first_seen INTEGER NOT NULL,"
	" last_seen INTEGER NOT NULL,"
	" delivered_bundle INTEGER REFERENCES bundles (id),"
	" held_bundle INTEGER REFERENCES bundles (id),"
	" is_excluded INTEGER NOT NULL DEFAULT 0 CHECK (is_excluded IN (0, 1)),"
	" exclude_reason TEXT,"
	/* Progress in staging `staging`; meaningless once another staging is open. */
	" staging INTEGER REFERENCES stagings (id),"
	" staged_delivered_at INTEGER,"
	" acknowledged_at INTEGER,"
	" verified_at INTEGER"
	") STRICT;",
	/* 1 -> 2: the audit log, a hash chain (ledger.h); rows are only ever inserted. */
	"CREATE TABLE audit ("
	" seq INTEGER PRIMARY KEY CHECK (seq >= 1),"
	" time INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" user TEXT NOT NULL,"
	" pid INTEGER NOT NULL,"
	" call TEXT NOT NULL,"
	" result TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" \"before\" TEXT NOT NULL,"
	" \"after\" TEXT NOT NULL,"
	" prev_hash TEXT NOT NULL CHECK (length(prev_hash) = 64),"
	" hash TEXT NOT NULL CHECK (length(hash) = 64)"
	") STRICT;" LEDGER_AUDIT_TRIGGERS,
	/*
	 * 2 -> 3: join tokens (carotate-protocol(7) AGENT PROTOCOL), kept as the SHA-256 of the
	 * whole token; the id is public (it names the token in list and revoke).
	 */
	"CREATE TABLE join_tokens ("
	" id TEXT PRIMARY KEY CHECK (length(id) = 16),"
	" token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),"
	" uses_left INTEGER NOT NULL CHECK (uses_left >= 0),"
	" expires_at INTEGER NOT NULL,"
	" description TEXT NOT NULL CHECK (length(description) <= 256),"
	" created_at INTEGER NOT NULL"
	") STRICT;",
};
#define LEDGER_VERSION                                                                             \
	((int)(sizeof(ledger_sqlite_migrations) / sizeof(ledger_sqlite_migrations[0])))

static int ledger_sqlite_fail(struct ledger_sqlite *, char *, size_t, const char *, int);
static int ledger_sqlite_exec(struct ledger_sqlite *, const char *, const char *, char *, size_t);
static int ledger_sqlite_create_file(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_connect(struct ledger_sqlite *, int, char *, size_t);
static int ledger_sqlite_check(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_pragmas(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_migrate(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_audit_guard(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_prepare(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_load(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_load_staging(struct ledger_sqlite *);
static int ledger_sqlite_load_agents(struct ledger_sqlite *);
static void ledger_sqlite_grow(struct ledger_sqlite *, size_t);
static void ledger_sqlite_apply(struct ledger_sqlite *);
static int ledger_sqlite_source_file(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_in_use(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_source_version(struct ledger_sqlite *, char *, size_t);
static int ledger_sqlite_user_version(struct ledger_sqlite *, int *, char *, size_t);

/* Fills err for the operator from an SQLite failure; corruption gets the advice. */
static int
ledger_sqlite_fail(struct ledger_sqlite *l, char *err, size_t errlen, const char *what, int rc)
{
	const char *msg = l->db != NULL ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);

	if ((rc & 0xff) == SQLITE_CORRUPT)
		snprintf(err, errlen, "ledger %s is corrupt: %s; %s", l->path, msg, LEDGER_ADVICE);
	else if ((rc & 0xff) == SQLITE_NOTADB)
		snprintf(err, errlen, "ledger %s is not an SQLite database (%s); %s", l->path, msg,
		    LEDGER_ADVICE);
	else if ((rc & 0xff) == SQLITE_BUSY)
		snprintf(err, errlen, "ledger %s is locked by another process: %s", l->path, msg);
	else
		snprintf(err, errlen, "ledger %s: %s: %s", l->path, what, msg);
	log_debugf("%s", err);
	return -1;
}

/* Runs sql (what names it for the operator). */
static int
ledger_sqlite_exec(
    struct ledger_sqlite *l, const char *sql, const char *what, char *err, size_t errlen)
{
	int rc;

	if ((rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return ledger_sqlite_fail(l, err, errlen, what, rc);
	return 0;
}

struct ledger_sqlite *
ledger_sqlite_open(const char *state_dir, char *err, size_t errlen)
{
	struct ledger_sqlite *l = xcalloc(1, sizeof(*l));

	xasprintf(&l->path, "%s/%s", state_dir, LEDGER_FILE);
	l->pid = getpid();
	if (ledger_sqlite_create_file(l, err, errlen) == -1 ||
	    ledger_sqlite_connect(l, SQLITE_OPEN_READWRITE, err, errlen) == -1 ||
	    ledger_sqlite_check(l, err, errlen) == -1 ||
	    ledger_sqlite_pragmas(l, err, errlen) == -1 ||
	    ledger_sqlite_migrate(l, err, errlen) == -1 ||
	    ledger_sqlite_audit_guard(l, err, errlen) == -1 ||
	    ledger_sqlite_prepare(l, err, errlen) == -1 ||
	    ledger_sqlite_load(l, err, errlen) == -1) {
		ledger_sqlite_close(l);
		return NULL;
	}
	log_debugf("%s: %zu bundles, staging %lld", l->path, l->nbundles, (long long)l->staging);
	return l;
}

/*
 * A single proxy's ledger to copy from (ledger_open_source): read-only, checked
 * whole, of this carotated's schema. Nothing is written to it: no pragma that
 * writes, no migration, no trigger put back (its audit chain is verified).
 */
struct ledger_sqlite *
ledger_sqlite_open_source(const char *path, char *err, size_t errlen)
{
	struct ledger_sqlite *l = xcalloc(1, sizeof(*l));

	l->path = xstrdup(path);
	l->pid = getpid();
	if (ledger_sqlite_source_file(l, err, errlen) == -1 ||
	    ledger_sqlite_in_use(l, err, errlen) == -1)
		goto fail;
	if (ledger_sqlite_connect(l, SQLITE_OPEN_READONLY, err, errlen) == -1 ||
	    ledger_sqlite_check(l, err, errlen) == -1 ||
	    ledger_sqlite_source_version(l, err, errlen) == -1)
		goto fail;
	/* No in-memory index: a migration reads the rows once, through export_walk. */
	if (ledger_sqlite_prepare(l, err, errlen) == -1) {
		snprintf(err, errlen, "%s is not a carotate ledger (%s)", l->path,
		    sqlite3_errmsg(l->db));
		goto fail;
	}
	return l;
fail:
	ledger_sqlite_close(l);
	return NULL;
}

/* A regular file, not a link: said plainly before SQLite's "unable to open" would. */
static int
ledger_sqlite_source_file(struct ledger_sqlite *l, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(l->path, &st) == -1) {
		snprintf(err, errlen, "ledger %s: %s", l->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "ledger %s: not a regular file", l->path);
		return -1;
	}
	return 0;
}

/*
 * Every SQLite connection to a WAL database holds a read lock on one byte of
 * its -shm file (the unix VFS's "DMS" byte, 128) for as long as it is open:
 * a daemon running on the file holds it. A lock test, nothing taken.
 */
#define LEDGER_SHM_DMS 128
static int
ledger_sqlite_in_use(struct ledger_sqlite *l, char *err, size_t errlen)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LEDGER_SHM_DMS, .l_len = 1
	};
	char *shm;
	int fd;

	xasprintf(&shm, "%s-shm", l->path);
	fd = open(shm, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(shm);
	if (fd == -1)
		return 0; /* no -shm: no connection has it open */
	if (fcntl(fd, F_GETLK, &fl) == -1 || fl.l_type == F_UNLCK) {
		close(fd);
		return 0;
	}
	close(fd);
	snprintf(err, errlen,
	    "ledger %s is open in another process (pid %ld): stop the carotated that uses it "
	    "first",
	    l->path, (long)fl.l_pid);
	return -1;
}

/* The file's schema version (PRAGMA user_version) in *v. 0 / -1 with err filled. */
static int
ledger_sqlite_user_version(struct ledger_sqlite *l, int *v, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(l->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ledger_sqlite_fail(l, err, errlen, "user_version", rc);
	}
	*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* The schema must be this carotated's: a newer one is not understood, an older one not copied. */
static int
ledger_sqlite_source_version(struct ledger_sqlite *l, char *err, size_t errlen)
{
	int v;

	if (ledger_sqlite_user_version(l, &v, err, errlen) == -1)
		return -1;
	if (v == LEDGER_VERSION)
		return 0;
	if (v <= 0)
		snprintf(err, errlen,
		    "%s is not a carotate ledger (an SQLite file without its schema)", l->path);
	else if (v > LEDGER_VERSION)
		snprintf(err, errlen,
		    "ledger %s has schema version %d, newer than this carotated's %d: migrate it "
		    "with the carotated that wrote it",
		    l->path, v, LEDGER_VERSION);
	else
		snprintf(err, errlen,
		    "ledger %s has schema version %d, older than this carotated's %d: start this "
		    "carotated once on it (it migrates the file), stop it, then migrate",
		    l->path, v, LEDGER_VERSION);
	return -1;
}

/* Creates the file 0600 before SQLite sees it (its -wal and -shm copy the mode). */
static int
ledger_sqlite_create_file(struct ledger_sqlite *l, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(l->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 && errno == EEXIST)
		fd = open(l->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "ledger %s: %s", l->path,
		    errno == ELOOP ? "is a symbolic link" : strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "ledger %s: not a regular file", l->path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		log_warnx("ledger %s: mode %03o is too open; setting 0600", l->path,
		    (unsigned)(st.st_mode & 0777));
		if (fchmod(fd, 0600) == -1)
			log_warn("ledger %s: fchmod", l->path);
	}
	close(fd);
	return 0;
}

static int
ledger_sqlite_connect(struct ledger_sqlite *l, int mode, char *err, size_t errlen)
{
	int rc;

	rc = sqlite3_open_v2(
	    l->path, &l->db, mode | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK)
		return ledger_sqlite_fail(l, err, errlen, "cannot open", rc);
	sqlite3_extended_result_codes(l->db, 1);
	sqlite3_busy_timeout(l->db, LEDGER_BUSY_MS);
	return 0;
}

int
ledger_sqlite_quick_check(void *self, char *problem, size_t len)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_QUICK_CHECK];
	const char *msg;
	int rc, ok;

	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		snprintf(problem, len, "quick_check: %s", sqlite3_errstr(rc));
		ledger_sqlite_done(st);
		return rc == SQLITE_DONE || rc == SQLITE_CORRUPT ? 0 : -1;
	}
	msg = (const char *)sqlite3_column_text(st, 0);
	if (msg != NULL && strncmp(msg, LEDGER_IC_PREFIX, strlen(LEDGER_IC_PREFIX)) == 0)
		msg += strlen(LEDGER_IC_PREFIX);
	ok = msg != NULL && strcmp(msg, "ok") == 0;
	if (!ok)
		snprintf(problem, len, "%.*s", msg != NULL ? (int)strcspn(msg, "\n") : 0,
		    msg != NULL ? msg : "");
	ledger_sqlite_done(st);
	return ok;
}

/* Reads everything once before writing anything: a damaged file is never touched. */
static int
ledger_sqlite_check(struct ledger_sqlite *l, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *msg;
	int rc;

	if (ledger_sqlite_exec(l, "SELECT count(*) FROM sqlite_schema", "read", err, errlen) == -1)
		return -1;
	rc = sqlite3_prepare_v2(l->db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return ledger_sqlite_fail(l, err, errlen, "integrity_check", rc);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ledger_sqlite_fail(
		    l, err, errlen, "integrity_check", rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
	}
	msg = (const char *)sqlite3_column_text(st, 0);
	if (msg == NULL || strcmp(msg, "ok") != 0 || sqlite3_step(st) != SQLITE_DONE) {
		if (msg == NULL || strcmp(msg, "ok") == 0)
			msg = "integrity_check failed";
		if (strncmp(msg, LEDGER_IC_PREFIX, strlen(LEDGER_IC_PREFIX)) == 0)
			msg += strlen(LEDGER_IC_PREFIX);
		snprintf(err, errlen, "ledger %s is corrupt: %.*s; %s", l->path,
		    (int)strcspn(msg, "\n"), msg, LEDGER_ADVICE);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/*
 * Small pages: a check-in rewrites one random row, and WAL and checkpoint write
 * whole pages (1 KiB pages: ~40% more check-ins/s than 4 KiB on a 1M ledger).
 * A larger WAL between checkpoints saves DB-file fsyncs. Only a new ledger
 * takes the page size.
 */
static int
ledger_sqlite_pragmas(struct ledger_sqlite *l, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *mode;
	int rc, wal;

	if (ledger_sqlite_exec(
	        l, "PRAGMA page_size = " LEDGER_PAGE_SIZE, "page_size", err, errlen) == -1)
		return -1;
	rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ledger_sqlite_fail(l, err, errlen, "journal_mode", rc);
	}
	mode = (const char *)sqlite3_column_text(st, 0);
	wal = mode != NULL && strcmp(mode, "wal") == 0;
	sqlite3_finalize(st);
	if (!wal) {
		snprintf(err, errlen, "ledger %s: cannot switch to WAL mode", l->path);
		return -1;
	}
	return ledger_sqlite_exec(l,
	    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA wal_autocheckpoint = " LEDGER_WAL_PAGES "; "
	    "PRAGMA journal_size_limit = " LEDGER_WAL_LIMIT,
	    "pragmas", err, errlen);
}

static int
ledger_sqlite_migrate(struct ledger_sqlite *l, char *err, size_t errlen)
{
	char *sql, what[64];
	int rc, v;

	if (ledger_sqlite_user_version(l, &v, err, errlen) == -1)
		return -1;
	if (v < 0 || v > LEDGER_VERSION) {
		snprintf(err, errlen,
		    "ledger %s has schema version %d, but this carotated knows versions up to %d: "
		    "run the carotated that wrote it, or restore a backup of the ledger",
		    l->path, v, LEDGER_VERSION);
		return -1;
	}
	for (; v < LEDGER_VERSION; v++) {
		xasprintf(&sql, "BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT",
		    ledger_sqlite_migrations[v], v + 1);
		snprintf(what, sizeof(what), "migration to schema version %d", v + 1);
		rc = ledger_sqlite_exec(l, sql, what, err, errlen);
		free(sql);
		if (rc == -1) {
			if (!sqlite3_get_autocommit(l->db))
				sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		log_info("ledger %s: schema migrated to version %d", l->path, v + 1);
	}
	return 0;
}

/*
 * The triggers that keep the audit log append-only: whoever dropped them had
 * the file open for writing. Put back (and said loudly); the hash chain, not
 * the triggers, is what shows whether records were changed meanwhile.
 */
static int
ledger_sqlite_audit_guard(struct ledger_sqlite *l, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, n;

	rc = sqlite3_prepare_v2(l->db,
	    "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'audit' "
	    "AND name IN ('audit_no_update', 'audit_no_delete')",
	    -1, &st, NULL);
	if (rc != SQLITE_OK || (rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return ledger_sqlite_fail(l, err, errlen, "audit triggers", rc);
	}
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (n == 2)
		return 0;
	log_warnx("ledger %s: the triggers that keep the audit log append-only were removed "
	          "outside carotated; putting them back (carotatectl audit --verify checks the "
	          "records)",
	    l->path);
	return ledger_sqlite_exec(l, LEDGER_AUDIT_TRIGGERS, "audit triggers", err, errlen);
}

static int
ledger_sqlite_prepare(struct ledger_sqlite *l, char *err, size_t errlen)
{
	int i, rc;

	for (i = 0; i < LST_COUNT; i++) {
		rc = sqlite3_prepare_v3(
		    l->db, ledger_sqlite_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL);
		if (rc != SQLITE_OK)
			return ledger_sqlite_fail(l, err, errlen, ledger_sqlite_sql[i], rc);
	}
	return 0;
}

static int
ledger_sqlite_load(struct ledger_sqlite *l, char *err, size_t errlen)
{
	if (ledger_sqlite_load_bundles(l) == -1 || ledger_sqlite_load_staging(l) == -1 ||
	    ledger_sqlite_load_agents(l) == -1) {
		snprintf(
		    err, errlen, "ledger %s: cannot load it: %s", l->path, sqlite3_errmsg(l->db));
		return -1;
	}
	return 0;
}

/* The interned bundle ids, in memory by id (few: one per bundle ever served). */
int
ledger_sqlite_load_bundles(struct ledger_sqlite *l)
{
	sqlite3_stmt *st = l->st[LST_LOAD_BUNDLES];
	const unsigned char *s;
	int64_t id;
	int rc;

	free(l->bundles);
	l->nbundles = 1;
	l->bundles = xcalloc(l->nbundles, sizeof(*l->bundles));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		s = sqlite3_column_text(st, 1);
		if (id < 1 || id > LEDGER_MAX_BUNDLES || s == NULL ||
		    strlen((const char *)s) > LEDGER_BUNDLE_ID_LEN) {
			ledger_sqlite_done(st);
			log_warnx(
			    "ledger %s: bundle row %lld is out of range", l->path, (long long)id);
			return -1;
		}
		if ((size_t)id >= l->nbundles) {
			l->bundles = xreallocarray(l->bundles, id + 1, sizeof(*l->bundles));
			memset(l->bundles + l->nbundles, 0,
			    (id + 1 - l->nbundles) * sizeof(*l->bundles));
			l->nbundles = id + 1;
		}
		snprintf(l->bundles[id], sizeof(l->bundles[id]), "%s", (const char *)s);
	}
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "load bundles");
}

static int
ledger_sqlite_load_staging(struct ledger_sqlite *l)
{
	sqlite3_stmt *st = l->st[LST_OPEN_STAGING];
	const unsigned char *ca;
	int rc;

	l->staging = 0;
	l->staged_ca[0] = '\0';
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		l->staging = sqlite3_column_int64(st, 0);
		ca = sqlite3_column_text(st, 1);
		snprintf(
		    l->staged_ca, sizeof(l->staged_ca), "%s", ca != NULL ? (const char *)ca : "");
		rc = sqlite3_step(st);
	}
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "load staging");
}

/* One scan of agents; the index is sized to the largest id. */
static int
ledger_sqlite_load_agents(struct ledger_sqlite *l)
{
	sqlite3_stmt *st = l->st[LST_MAX_ID];
	struct ledger_entry *e;
	int64_t id, held;
	int rc;

	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		ledger_sqlite_done(st);
		return ledger_sqlite_sqlerr(l, "max id");
	}
	id = sqlite3_column_int64(st, 0);
	ledger_sqlite_done(st);
	if (id < 0 || id > LEDGER_MAX_ROWID) {
		log_warnx("ledger %s: agent id %lld is out of range", l->path, (long long)id);
		return -1;
	}
	ledger_sqlite_grow(l, id + 1);
	l->nagents = 0;
	st = l->st[LST_LOAD_AGENTS];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		held = sqlite3_column_int64(st, 2);
		if (id < 1 || (size_t)id >= l->nents) {
			ledger_sqlite_done(st);
			log_warnx(
			    "ledger %s: agent id %lld is out of range", l->path, (long long)id);
			return -1;
		}
		e = &l->ents[id];
		e->last_seen = ledger_sqlite_clamp(sqlite3_column_int64(st, 1));
		e->held = held > 0 && (size_t)held < l->nbundles ? (uint16_t)held : 0;
		e->flags = LEDGER_F_EXISTS | (sqlite3_column_int(st, 3) ? LEDGER_F_EXCLUDED : 0) |
		           ledger_sqlite_staged_flags(l, sqlite3_column_int64(st, 4),
		               sqlite3_column_int(st, 5), sqlite3_column_int(st, 6),
		               sqlite3_column_int(st, 7));
		l->nagents++;
	}
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "load agents");
}

/* A new staging: nobody has made progress in it (no row carries its fresh id). */
void
ledger_sqlite_clear_flags(struct ledger_sqlite *l)
{
	size_t i;

	for (i = 0; i < l->nents; i++)
		l->ents[i].flags &= ~LEDGER_F_STAGING;
}

void
ledger_sqlite_close(void *self)
{
	struct ledger_sqlite *l = self;
	int i;

	if (l == NULL)
		return;
	if (l->in_batch)
		ledger_sqlite_rollback(l);
	for (i = 0; i < LST_COUNT; i++)
		sqlite3_finalize(l->st[i]);
	if (l->db != NULL && sqlite3_close(l->db) != SQLITE_OK)
		log_warnx("ledger %s: close: %s", l->path, sqlite3_errmsg(l->db));
	free(l->path);
	free(l->ents);
	free(l->bundles);
	free(l->pend);
	free(l);
}

#ifdef CAROTATE_FUZZ
/*
 * A second connection to the ledger, with triggers off (the audit table
 * refuses DELETE) and each template attached, copies the template's rows
 * back. That is a change of data, not of schema, so the daemon's connection
 * keeps its prepared statements (SQLite's backup API would expire them all).
 */
#define LEDGER_FUZZ_TABLES 5
#define LEDGER_FUZZ_FROM   2
static const char *const ledger_sqlite_fuzz_tables[LEDGER_FUZZ_TABLES] = { "bundles", "stagings",
	"agents", "audit", "join_tokens" };
static struct {
	sqlite3 *db;
	char *path;
	char *from[LEDGER_FUZZ_FROM];
	sqlite3_stmt *del[LEDGER_FUZZ_TABLES], *ins[LEDGER_FUZZ_FROM][LEDGER_FUZZ_TABLES];
} ledger_sqlite_fuzz;

/* The attached schema of from ("t0", "t1"), attached and its statements made on first use. */
static int
ledger_sqlite_fuzz_source(const char *from)
{
	char sql[256], name[8];
	int i, t;

	for (i = 0; i < LEDGER_FUZZ_FROM && ledger_sqlite_fuzz.from[i] != NULL; i++)
		if (strcmp(ledger_sqlite_fuzz.from[i], from) == 0)
			return i;
	if (i == LEDGER_FUZZ_FROM)
		return -1;
	snprintf(name, sizeof(name), "t%d", i);
	snprintf(sql, sizeof(sql), "ATTACH 'file:%s?mode=ro' AS %s", from, name);
	if (sqlite3_exec(ledger_sqlite_fuzz.db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	for (t = 0; t < LEDGER_FUZZ_TABLES; t++) {
		snprintf(sql, sizeof(sql), "INSERT INTO main.%s SELECT * FROM %s.%s",
		    ledger_sqlite_fuzz_tables[t], name, ledger_sqlite_fuzz_tables[t]);
		if (sqlite3_prepare_v2(ledger_sqlite_fuzz.db, sql, -1,
		        &ledger_sqlite_fuzz.ins[i][t], NULL) != SQLITE_OK)
			return -1;
	}
	ledger_sqlite_fuzz.from[i] = xstrdup(from);
	return i;
}

static int
ledger_sqlite_fuzz_connect(const char *path)
{
	char sql[128];
	int t;

	if (ledger_sqlite_fuzz.db != NULL && strcmp(ledger_sqlite_fuzz.path, path) == 0)
		return 0;
	if (ledger_sqlite_fuzz.db != NULL)
		return -1; /* one ledger per process */
	if (sqlite3_open_v2(path, &ledger_sqlite_fuzz.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI,
	        NULL) != SQLITE_OK ||
	    sqlite3_db_config(ledger_sqlite_fuzz.db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL) !=
	        SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(ledger_sqlite_fuzz.db, LEDGER_BUSY_MS);
	for (t = 0; t < LEDGER_FUZZ_TABLES; t++) {
		snprintf(sql, sizeof(sql), "DELETE FROM main.%s", ledger_sqlite_fuzz_tables[t]);
		if (sqlite3_prepare_v2(ledger_sqlite_fuzz.db, sql, -1, &ledger_sqlite_fuzz.del[t],
		        NULL) != SQLITE_OK)
			return -1;
	}
	ledger_sqlite_fuzz.path = xstrdup(path);
	return 0;
}

static int
ledger_sqlite_fuzz_run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
ledger_sqlite_fuzz_restore(void *self, const char *from, char *err, size_t errlen)
{
	struct ledger_sqlite *l = self;
	int i, t, ok;

	if (l->in_batch)
		ledger_sqlite_rollback(l);
	l->npend = 0;
	l->cur = 0;
	free(l->ents);
	l->ents = NULL;
	l->nents = 0;
	if (ledger_sqlite_fuzz_connect(l->path) == -1 ||
	    (i = ledger_sqlite_fuzz_source(from)) == -1) {
		snprintf(err, errlen, "ledger %s: restore from %s: %s", l->path, from,
		    ledger_sqlite_fuzz.db != NULL ? sqlite3_errmsg(ledger_sqlite_fuzz.db)
		                                  : "cannot open");
		return -1;
	}
	ok = sqlite3_exec(ledger_sqlite_fuzz.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	for (t = 0; ok && t < LEDGER_FUZZ_TABLES; t++)
		ok = ledger_sqlite_fuzz_run(ledger_sqlite_fuzz.del[t]) == 0;
	for (t = 0; ok && t < LEDGER_FUZZ_TABLES; t++)
		ok = ledger_sqlite_fuzz_run(ledger_sqlite_fuzz.ins[i][t]) == 0;
	if (!ok || sqlite3_exec(ledger_sqlite_fuzz.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "ledger %s: restore from %s: %s", l->path, from,
		    sqlite3_errmsg(ledger_sqlite_fuzz.db));
		sqlite3_exec(ledger_sqlite_fuzz.db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return ledger_sqlite_load(l, err, errlen);
}
#endif

/* Logs an SQLite failure; -1 (LEDGER_ERROR's callers map it). */
int
ledger_sqlite_sqlerr(struct ledger_sqlite *l, const char *what)
{
	log_warnx("ledger %s: %s: %s (%d)", l->path, what, sqlite3_errmsg(l->db),
	    sqlite3_extended_errcode(l->db));
	return -1;
}

/* Runs a statement without results or bindings. */
int
ledger_sqlite_run(struct ledger_sqlite *l, enum ledger_st which)
{
	sqlite3_stmt *st = l->st[which];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, ledger_sqlite_sql[which]);
	return 0;
}

void
ledger_sqlite_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* An SQLite connection must not cross fork: only the process that opened it may write. */
int
ledger_sqlite_owner_ok(struct ledger_sqlite *l, const char *what)
{
	if (l->pid == getpid())
		return 1;
	log_warnx("ledger %s: %s from pid %ld, but pid %ld opened it", l->path, what,
	    (long)getpid(), (long)l->pid);
	return 0;
}

uint32_t
ledger_sqlite_clamp(int64_t t)
{
	if (t < 0)
		return 0;
	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

/* Makes room for ids below n in the index (new entries are zero: absent). */
static void
ledger_sqlite_grow(struct ledger_sqlite *l, size_t n)
{
	size_t cap;

	if (n <= l->nents)
		return;
	cap = l->nents == 0 ? n : l->nents;
	while (cap < n)
		cap = cap < (1u << 20) ? cap * 2 : cap + cap / 4;
	l->ents = xreallocarray(l->ents, cap, sizeof(*l->ents));
	memset(l->ents + l->nents, 0, (cap - l->nents) * sizeof(*l->ents));
	l->nents = cap;
}

void
ledger_sqlite_pend(struct ledger_sqlite *l, int64_t id, int op, const struct ledger_entry *e)
{
	if (l->npend == l->pendcap) {
		l->pendcap = l->pendcap == 0 ? 256 : l->pendcap * 2;
		l->pend = xreallocarray(l->pend, l->pendcap, sizeof(*l->pend));
	}
	l->pend[l->npend].id = (uint32_t)id;
	l->pend[l->npend].op = (uint8_t)op;
	l->pend[l->npend].e = *e;
	l->npend++;
}

/* After COMMIT: the batch's changes, in call order, reach the index. */
static void
ledger_sqlite_apply(struct ledger_sqlite *l)
{
	const struct ledger_update *u;
	size_t i;

	for (i = 0; i < l->npend; i++) {
		u = &l->pend[i];
		ledger_sqlite_grow(l, (size_t)u->id + 1);
		if (u->op == LEDGER_U_SET || u->op == LEDGER_U_FORGET) {
			l->nagents -= (l->ents[u->id].flags & LEDGER_F_EXISTS) != 0;
			l->ents[u->id] = u->e;
			l->nagents += (u->e.flags & LEDGER_F_EXISTS) != 0;
		} else if (u->op == LEDGER_U_SEEN)
			l->ents[u->id].last_seen = u->e.last_seen;
		else if (u->op == LEDGER_U_EXCLUDE)
			l->ents[u->id].flags |= LEDGER_F_EXCLUDED;
		else
			l->ents[u->id].flags &= ~LEDGER_F_EXCLUDED;
	}
	l->npend = 0;
}

int
ledger_sqlite_begin(void *self)
{
	struct ledger_sqlite *l = self;
	if (!ledger_sqlite_owner_ok(l, "begin"))
		return -1;
	if (l->in_batch) {
		log_warnx("ledger %s: begin: a batch is open already", l->path);
		return -1;
	}
	if (ledger_sqlite_run(l, LST_BEGIN) == -1)
		return -1;
	l->in_batch = 1;
	l->batch_failed = 0;
	l->npend = 0;
	l->batch_new = 0;
	return 0;
}

int
ledger_sqlite_commit(void *self)
{
	struct ledger_sqlite *l = self;
	if (!l->in_batch) {
		log_warnx("ledger %s: commit without a batch", l->path);
		return -1;
	}
	if (l->batch_failed || ledger_sqlite_run(l, LST_COMMIT) == -1) {
		ledger_sqlite_rollback(l);
		return -1;
	}
	l->in_batch = 0;
	l->batch_new = 0;
	ledger_sqlite_apply(l);
	return 0;
}

void
ledger_sqlite_rollback(void *self)
{
	struct ledger_sqlite *l = self;
	if (!l->in_batch)
		return;
	if (!sqlite3_get_autocommit(l->db))
		ledger_sqlite_run(l, LST_ROLLBACK);
	l->in_batch = 0;
	l->batch_failed = 0;
	l->npend = 0;
	l->batch_new = 0;
}

int
ledger_sqlite_in_batch(const void *self)
{
	const struct ledger_sqlite *l = self;
	return l->in_batch;
}

/* Write calls need an open batch that has not failed. */
int
ledger_sqlite_call_begin(struct ledger_sqlite *l, const char *what)
{
	if (!l->in_batch) {
		log_warnx("ledger %s: %s outside a batch", l->path, what);
		return -1;
	}
	return l->batch_failed ? -1 : 0;
}

/*
 * After a call: a failed one changed nothing (its one statement was undone and
 * its index updates, from mark on, are dropped), unless SQLite gave up the
 * whole transaction.
 */
enum ledger_result
ledger_sqlite_call_end(struct ledger_sqlite *l, enum ledger_result r, size_t mark)
{
	if (r != LEDGER_ERROR)
		return r;
	l->npend = mark;
	if (sqlite3_get_autocommit(l->db)) {
		/* SQLite abandoned the transaction (I/O error, disk full): the batch is lost. */
		log_warnx("ledger %s: the transaction was rolled back; the batch fails", l->path);
		l->batch_failed = 1;
		l->npend = 0;
		l->batch_new = 0;
	}
	return r;
}

/* The index flags of a row's staged progress: none unless it is for the open staging. */
uint8_t
ledger_sqlite_staged_flags(
    const struct ledger_sqlite *l, int64_t staging, int delivered, int acked, int verified)
{
	if (l->staging == 0 || staging != l->staging)
		return 0;
	return (delivered ? LEDGER_F_DELIVERED : 0) | (acked ? LEDGER_F_ACKED : 0) |
	       (verified ? LEDGER_F_VERIFIED : 0);
}
