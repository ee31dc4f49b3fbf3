/*
 * The ledger: schema and migrations, corruption refused, link/check-in/ack/verify
 * semantics, gate truthfulness (tokens, forged If-None-Match), group commit
 * (rollback, failed commits through a fault-injecting VFS), the in-memory index
 * against the database, staging episodes, pending pages and holdings; the audit
 * log's hash chain and every way of tampering with it that it must show; the front
 * (ledger.c): its argument checks, and an engine's table taken whole or not at all.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "log.h"

#define B0   "0000000000000000000000000000000000000000000000000000000000000000"
#define B1   "1111111111111111111111111111111111111111111111111111111111111111"
#define B2   "2222222222222222222222222222222222222222222222222222222222222222"
#define S1   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S2   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DAY  86400
#define WEEK (7 * DAY)
#define T0   1700000000

static char dir[] = "/tmp/carotate-test-ledger-XXXXXX";
static char dbpath[256];

/* ---- a VFS that forwards to the default one and fails syncs or writes on demand ---- */

struct fault_file {
	sqlite3_file base;
	/* the real file follows */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static sqlite3_io_methods fault_io;
static int fail_sync, fail_write;

#define REAL(f) ((sqlite3_file *)((struct fault_file *)(f) + 1))

static int
fault_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
fault_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
fault_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	if (fail_write)
		return SQLITE_FULL;
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int
fault_truncate(sqlite3_file *f, sqlite3_int64 n)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), n);
}

static int
fault_sync(sqlite3_file *f, int flags)
{
	if (fail_sync)
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int
fault_size(sqlite3_file *f, sqlite3_int64 *n)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), n);
}

static int
fault_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
fault_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
fault_check_lock(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}

static int
fault_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
fault_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
fault_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
fault_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}

static int
fault_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
fault_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
fault_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	int rc;

	rc = real_vfs->xOpen(real_vfs, name, REAL(f), flags, out);
	f->pMethods = rc == SQLITE_OK && REAL(f)->pMethods != NULL ? &fault_io : NULL;
	return rc;
}

static int
fault_delete(sqlite3_vfs *vfs, const char *name, int sync)
{
	return real_vfs->xDelete(real_vfs, name, sync);
}

static int
fault_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int
fault_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static int
fault_random(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int
fault_sleep(sqlite3_vfs *vfs, int us)
{
	return real_vfs->xSleep(real_vfs, us);
}

static int
fault_time(sqlite3_vfs *vfs, double *t)
{
	return real_vfs->xCurrentTime(real_vfs, t);
}

static int
fault_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int
fault_time64(sqlite3_vfs *vfs, sqlite3_int64 *t)
{
	return real_vfs->xCurrentTimeInt64(real_vfs, t);
}

static void
fault_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	fault_vfs.iVersion = 2;
	fault_vfs.szOsFile = (int)sizeof(struct fault_file) + real_vfs->szOsFile;
	fault_vfs.mxPathname = real_vfs->mxPathname;
	fault_vfs.zName = "fault";
	fault_vfs.xOpen = fault_open;
	fault_vfs.xDelete = fault_delete;
	fault_vfs.xAccess = fault_access;
	fault_vfs.xFullPathname = fault_fullpath;
	fault_vfs.xRandomness = fault_random;
	fault_vfs.xSleep = fault_sleep;
	fault_vfs.xCurrentTime = fault_time;
	fault_vfs.xGetLastError = fault_lasterr;
	fault_vfs.xCurrentTimeInt64 = fault_time64;
	fault_io.iVersion = 2;
	fault_io.xClose = fault_close;
	fault_io.xRead = fault_read;
	fault_io.xWrite = fault_write;
	fault_io.xTruncate = fault_truncate;
	fault_io.xSync = fault_sync;
	fault_io.xFileSize = fault_size;
	fault_io.xLock = fault_lock;
	fault_io.xUnlock = fault_unlock;
	fault_io.xCheckReservedLock = fault_check_lock;
	fault_io.xFileControl = fault_fcntl;
	fault_io.xSectorSize = fault_sector;
	fault_io.xDeviceCharacteristics = fault_devchar;
	fault_io.xShmMap = fault_shm_map;
	fault_io.xShmLock = fault_shm_lock;
	fault_io.xShmBarrier = fault_shm_barrier;
	fault_io.xShmUnmap = fault_shm_unmap;
	assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
}

/* ---- helpers ---- */

static void
token(int n, uint8_t out[LEDGER_TOKEN_HASH_LEN])
{
	int i;

	for (i = 0; i < LEDGER_TOKEN_HASH_LEN; i++)
		out[i] = (uint8_t)(n * 31 + i * 7 + 1);
}

static struct ledger *
lopen(void)
{
	char err[512] = "";
	struct ledger *l = ledger_open(dir, err, sizeof(err));

	if (l == NULL)
		fail_msg("ledger_open: %s", err);
	return l;
}

/* The error ledger_open gives (it must fail). */
static void
lopen_fails(char *err, size_t errlen)
{
	struct ledger *l;

	err[0] = '\0';
	l = ledger_open(dir, err, errlen);
	if (l != NULL) {
		ledger_close(l);
		fail_msg("ledger_open succeeded");
	}
	assert_true(err[0] != '\0');
	print_message("ledger_open refused: %s\n", err);
}

static void
link1(struct ledger *l, const char *id, int tok, time_t now)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];

	token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link(l, id, h, now), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
}

/* One check-in in its own batch; returns the result, *send the bundle decision. */
static enum ledger_result
checkin1(struct ledger *l, const char *id, int tok, const char *presented, int canary, time_t now,
    int *send)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	enum ledger_result r;
	int s = -1;

	token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	r = ledger_checkin(l, id, h, presented, canary, now, &s);
	assert_int_equal(ledger_commit(l), 0);
	assert_true(s == 0 || s == 1);
	if (send != NULL)
		*send = s;
	return r;
}

static int
send_of(struct ledger *l, const char *id, int tok, const char *presented, int canary, time_t now)
{
	int send;

	assert_int_equal(checkin1(l, id, tok, presented, canary, now, &send), LEDGER_OK);
	return send;
}

/* Expected counts, in ledger_counts order. */
static void
expect(struct ledger *l, time_t now, uint64_t linked, uint64_t active, uint64_t acknowledged,
    uint64_t verified, uint64_t delivered, uint64_t pending, uint64_t inactive_lacking,
    uint64_t excluded, uint64_t current)
{
	struct ledger_counts c;

	ledger_count(l, now, WEEK, &c);
	assert_int_equal(c.linked, linked);
	assert_int_equal(c.active, active);
	assert_int_equal(c.acknowledged, acknowledged);
	assert_int_equal(c.verified, verified);
	assert_int_equal(c.delivered, delivered);
	assert_int_equal(c.pending, pending);
	assert_int_equal(c.inactive_lacking, inactive_lacking);
	assert_int_equal(c.excluded, excluded);
	assert_int_equal(c.current, current);
}

/* One integer from the database through a connection of our own. */
static int64_t
sql_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Runs sql through a connection of our own (the sqlite3 shell of a tamperer); its result code. */
static int
sql_try(const char *sql)
{
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc;
}

static void
sql_exec(const char *sql)
{
	sqlite3 *db;

	assert_int_equal(
	    sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* The acknowledged_at of agent id for the open staging (-2 NULL, -1 no row). */
static int64_t
acked_at(const char *id)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "SELECT a.acknowledged_at FROM agents a JOIN stagings s ON s.id = a.staging "
	    "WHERE s.ended_at IS NULL AND a.agent_id = '%s'",
	    id);
	return sql_int(sql);
}

static void
write_file(const char *path, const void *data, size_t len, off_t off, int trunc)
{
	int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0600);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
	close(fd);
}

static uint8_t *
read_all(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

/* A closed ledger with n linked agents (many pages) for the corruption tests. */
static void
make_ledger(int n)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	char id[32];
	int i;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "agent-%05d", i);
		token(i, h);
		assert_int_equal(ledger_link(l, id, h, T0), LEDGER_OK);
	}
	assert_int_equal(ledger_commit(l), 0);
	ledger_close(l);
}

static int
setup(void **state)
{
	char cmd[600];

	fail_sync = fail_write = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/.[!.]*", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
group_setup(void **state)
{
	log_init(1, 0, "test_ledger");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/%s", dir, LEDGER_FILE);
	fault_install();
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

static void
test_schema_and_reopen(void **state)
{
	struct ledger_agent a;
	struct ledger *l = lopen();
	struct stat st;
	char wal[300];

	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sql_int("PRAGMA user_version"), 3);
	assert_int_equal(sql_int("PRAGMA page_size"), 1024);
	link1(l, "alpha", 1, T0);
	assert_int_equal(stat(dbpath, &st), 0); /* still 0600; so are -wal and -shm */
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	ledger_close(l);

	l = lopen();
	assert_int_equal(sql_int("PRAGMA user_version"), 3);
	assert_int_equal(ledger_get(l, "alpha", &a), LEDGER_OK);
	assert_string_equal(a.id, "alpha");
	assert_int_equal(a.linked_at, T0);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(a.excluded, 0);
	assert_string_equal(a.reason, "");
	assert_int_equal(ledger_get(l, "beta", &a), LEDGER_UNKNOWN_AGENT);
	expect(l, T0, 1, 1, 0, 0, 0, 0, 0, 0, 0);
	ledger_close(l);
	/* WAL mode is a property of the file. */
	assert_int_equal(sql_int("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = "
	                         "'wal'"),
	    1);
}

static void
test_mode_tightened(void **state)
{
	struct ledger *l;
	struct stat st;

	write_file(dbpath, "", 0, 0, 1);
	assert_int_equal(chmod(dbpath, 0644), 0);
	l = lopen();
	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	ledger_close(l);
}

static void
test_future_version_refused(void **state)
{
	char err[512];

	ledger_close(lopen());
	sql_exec("PRAGMA user_version = 4");
	lopen_fails(err, sizeof(err));
	assert_non_null(strstr(err, "schema version 4"));
	assert_non_null(strstr(err, "versions up to 3"));
	assert_int_equal(sql_int("PRAGMA user_version"), 4); /* untouched */
}

static void
test_foreign_database_refused(void **state)
{
	char err[512];

	sql_exec("CREATE TABLE agents (x INTEGER)");
	lopen_fails(err, sizeof(err));
	assert_non_null(strstr(err, "already exists"));
}

static void
test_corrupt_page_refused(void **state)
{
	char err[1024], prefix[300];
	uint8_t garbage[4096], *before, *after;
	size_t i, n1, n2;

	make_ledger(3000);
	assert_true(sql_int("PRAGMA page_count") > 20);
	for (i = 0; i < sizeof(garbage); i++)
		garbage[i] = (uint8_t)(i * 131 + 7);
	write_file(dbpath, garbage, sizeof(garbage), 4096 * 10, 0);
	before = read_all(dbpath, &n1);
	lopen_fails(err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "ledger %s is corrupt: ", dbpath);
	assert_memory_equal(err, prefix, strlen(prefix));
	assert_non_null(strstr(err, "; restore it from a backup or move it aside (the daemon will "
	                            "not report numbers it cannot trust)"));
	after = read_all(dbpath, &n2);
	assert_int_equal(n1, n2); /* a damaged file is never written */
	assert_memory_equal(before, after, n1);
	free(before);
	free(after);
}

static void
test_truncated_refused(void **state)
{
	char err[1024], prefix[300];

	make_ledger(3000);
	assert_int_equal(truncate(dbpath, 4096 * 8), 0);
	lopen_fails(err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "ledger %s is corrupt: ", dbpath);
	assert_memory_equal(err, prefix, strlen(prefix));
}

static void
test_not_a_database_refused(void **state)
{
	char err[1024], prefix[300], text[8192];
	size_t i;

	for (i = 0; i < sizeof(text); i++)
		text[i] = "not an SQLite database at all\n"[i % 30];
	write_file(dbpath, text, sizeof(text), 0, 1);
	lopen_fails(err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "ledger %s is not an SQLite database (", dbpath);
	assert_memory_equal(err, prefix, strlen(prefix));
	assert_non_null(strstr(err, "restore it from a backup or move it aside"));
}

static void
test_symlink_refused(void **state)
{
	char err[512], target[300];

	snprintf(target, sizeof(target), "%s/elsewhere.db", dir);
	assert_int_equal(symlink(target, dbpath), 0);
	lopen_fails(err, sizeof(err));
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(access(target, F_OK), -1);
}

/* The whole path of one agent: link, hold, staged, delivered, acknowledged, verified. */
static void
test_flow(void **state)
{
	struct ledger *l = lopen();

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	link1(l, "a1", 1, T0);
	/* Steady: lacking = not holding the current bundle; just linked is pending. */
	expect(l, T0, 1, 1, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(send_of(l, "a1", 1, B0, 0, T0 + 10), 0);
	expect(l, T0 + 10, 1, 1, 0, 0, 0, 0, 0, 0, 1);

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	expect(l, T0 + 20, 1, 1, 0, 0, 0, 1, 0, 0, 0);
	/* It presents the old bundle it holds: it gets the new one. */
	assert_int_equal(send_of(l, "a1", 1, B0, 0, T0 + 30), 1);
	expect(l, T0 + 30, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(acked_at("a1"), -2);
	/* It presents the new one back: acknowledged, 304. */
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 40), 0);
	expect(l, T0 + 40, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	assert_int_equal(acked_at("a1"), T0 + 40);
	/* Later check-ins keep the first acknowledgement time. */
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 50), 0);
	assert_int_equal(acked_at("a1"), T0 + 40);
	/* Through the canary listener: verified. */
	assert_int_equal(send_of(l, "a1", 1, B1, 1, T0 + 60), 0);
	expect(l, T0 + 60, 1, 1, 1, 1, 1, 0, 0, 0, 1);
	assert_int_equal(sql_int("SELECT verified_at FROM agents"), T0 + 60);
	assert_int_equal(send_of(l, "a1", 1, B1, 1, T0 + 70), 0);
	assert_int_equal(sql_int("SELECT verified_at FROM agents"), T0 + 60);
	ledger_close(l);
}

/* A link while staged records the delivery; presenting it back acknowledges. */
static void
test_link_while_staged(void **state)
{
	struct ledger *l = lopen();

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	expect(l, T0, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	/* No If-None-Match: it did not keep the bundle; send it again, no ack. */
	assert_int_equal(send_of(l, "a1", 1, NULL, 0, T0 + 1), 1);
	expect(l, T0 + 1, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 2), 0);
	expect(l, T0 + 2, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	/* A canary check-in proves trust without acknowledging. */
	link1(l, "a2", 2, T0 + 3);
	assert_int_equal(send_of(l, "a2", 2, NULL, 1, T0 + 4), 1);
	expect(l, T0 + 4, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	ledger_close(l);
}

/* An If-None-Match naming a bundle never delivered to this agent never acknowledges. */
static void
test_forged_if_none_match(void **state)
{
	struct ledger *l = lopen();

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	link1(l, "old", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "new", 2, T0 + 1); /* was sent B1 */

	/* "old" was never sent B1, yet claims it: no ack, and it is sent B1 for the record. */
	assert_int_equal(send_of(l, "old", 1, B1, 0, T0 + 2), 1);
	expect(l, T0 + 2, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(acked_at("old"), -2);
	/* An id nobody was ever sent: nothing either. */
	assert_int_equal(send_of(l, "new", 2, B2, 0, T0 + 3), 1);
	assert_int_equal(send_of(l, "new", 2, S1, 0, T0 + 4), 1);
	expect(l, T0 + 4, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	/* Only after the delivery is on record does presenting it count. */
	assert_int_equal(send_of(l, "old", 1, B1, 0, T0 + 5), 0);
	expect(l, T0 + 5, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	ledger_close(l);
}

/* A delivery whose batch failed is sent again: the agent is not stuck behind a 304. */
static void
test_lost_delivery_resent(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	int send;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	link1(l, "a1", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	token(1, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_checkin(l, "a1", h, B0, 0, T0 + 1, &send), LEDGER_OK);
	assert_int_equal(send, 1);
	ledger_rollback(l); /* say the 200 went out anyway */
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 2), 1);
	expect(l, T0 + 2, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 3), 0);
	expect(l, T0 + 3, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	ledger_close(l);
}

static void
test_tokens(void **state)
{
	struct ledger *l = lopen();
	struct ledger_agent a;
	uint8_t h3[LEDGER_TOKEN_HASH_LEN];
	int send = -1;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	link1(l, "a2", 2, T0);
	/* Wrong token, another agent's token, an unknown agent: refused, nothing changes. */
	assert_int_equal(checkin1(l, "a1", 99, B1, 1, T0 + 5, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(send, 0);
	assert_int_equal(checkin1(l, "a1", 2, B1, 1, T0 + 5, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(checkin1(l, "nobody", 1, B1, 1, T0 + 5, &send), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(send, 0);
	expect(l, T0 + 5, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(acked_at("a1"), -2);
	assert_int_equal(sql_int("SELECT count(*) FROM agents WHERE verified_at IS NOT NULL"), 0);

	/*
	 * a1 acknowledges; a re-link of its id (the shared linking key is all it takes) is
	 * refused and changes nothing; after a forget it links anew: the old token stops
	 * working, the ack is gone.
	 */
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 10), 0);
	expect(l, T0 + 10, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	token(3, h3);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link(l, "a1", h3, T0 + 20), LEDGER_EXISTS);
	assert_int_equal(ledger_commit(l), 0);
	expect(l, T0 + 20, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 20), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_forget(l, "a1"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	expect(l, T0 + 20, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	link1(l, "a1", 3, T0 + 20);
	expect(l, T0 + 20, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(checkin1(l, "a1", 1, B1, 0, T0 + 21, &send), LEDGER_BAD_TOKEN);
	expect(l, T0 + 21, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.linked_at, T0 + 20);
	assert_int_equal(a.last_seen, T0 + 20);
	assert_int_equal(sql_int("SELECT first_seen FROM agents WHERE agent_id = 'a1'"), T0 + 20);
	assert_int_equal(send_of(l, "a1", 3, B1, 0, T0 + 22), 0);
	expect(l, T0 + 22, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	ledger_close(l);
}

/* A join token for the tests: id "00000000000000" + two hex of n, hash from token(n). */
static void
join1(struct ledger *l, int n, uint32_t uses, int64_t expires, struct ledger_join *j)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "00000000000000%02x", n);
	token(100 + n, j->hash);
	j->uses_left = uses;
	j->expires_at = expires;
	j->created_at = T0;
	snprintf(j->description, sizeof(j->description), "batch %d", n);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_create(l, j), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
}

static enum ledger_result
linkj(struct ledger *l, const char *id, int tok, const struct ledger_join *j, time_t now)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	enum ledger_result r;

	token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	r = ledger_link_join(l, id, h, j->id, j->hash, now);
	assert_int_equal(ledger_commit(l), 0);
	return r;
}

static void
count_join(const struct ledger_join *j, void *arg)
{
	struct ledger_join *out = arg;
	uint8_t zero[LEDGER_TOKEN_HASH_LEN] = { 0 };

	assert_memory_equal(j->hash, zero, sizeof(zero)); /* the list never carries it */
	out->uses_left += j->uses_left;
	out->created_at++;
}

/*
 * Join tokens (issue 14): each link uses one use in the same transaction; a used-up,
 * expired, revoked or wrong token links nobody and uses nothing; a link that fails
 * (the id is taken) gives the use back.
 */
static void
test_join_tokens(void **state)
{
	struct ledger *l = lopen();
	struct ledger_join j, k, sum;
	uint8_t wrong[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	join1(l, 1, 2, T0 + 100, &j);
	assert_int_equal(linkj(l, "j1", 1, &j, T0), LEDGER_OK);
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens"), 1);
	/* The id is taken: refused, and the use is not spent. */
	assert_int_equal(linkj(l, "j1", 2, &j, T0), LEDGER_EXISTS);
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens"), 1);
	assert_int_equal(linkj(l, "j2", 2, &j, T0), LEDGER_OK);
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens"), 0);
	assert_int_equal(linkj(l, "j3", 3, &j, T0), LEDGER_NOT_FOUND); /* used up */
	expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	/* Wrong secret, expired, malformed id, revoked. */
	join1(l, 2, 5, T0 + 100, &k);
	memcpy(wrong, k.hash, sizeof(wrong));
	wrong[0] ^= 1;
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "j3", wrong, k.id, wrong, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_link_join(l, "j3", wrong, "XYZ", k.hash, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_check(l, k.id, k.hash, T0 + 100), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_check(l, k.id, k.hash, T0 + 99), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(linkj(l, "j3", 3, &k, T0 + 100), LEDGER_NOT_FOUND); /* expired */
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens WHERE id LIKE '%02'"), 5);
	memset(&sum, 0, sizeof(sum));
	assert_int_equal(ledger_join_list(l, count_join, &sum), 0);
	assert_int_equal(sum.created_at, 2);
	assert_int_equal(sum.uses_left, 5);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_revoke(l, k.id), LEDGER_OK);
	assert_int_equal(ledger_join_revoke(l, k.id), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_revoke(l, "not-hex"), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(linkj(l, "j3", 3, &k, T0), LEDGER_NOT_FOUND);
	/* Bad inputs refused before SQL: no use, a control character, a bad id. */
	k.uses_left = 0;
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	k.uses_left = 1;
	snprintf(k.description, sizeof(k.description), "bad\nline");
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	snprintf(k.description, sizeof(k.description), "ok");
	snprintf(k.id, sizeof(k.id), "00000000000000ZZ");
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	/* The same id twice. */
	assert_int_equal(ledger_join_create(l, &j), LEDGER_EXISTS);
	assert_int_equal(ledger_commit(l), 0);
	expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	ledger_close(l);
}

/* The use and the link are one: a rolled-back batch keeps both the use and the id free. */
static void
test_join_atomic(void **state)
{
	struct ledger *l = lopen();
	struct ledger_join j;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	join1(l, 1, 1, T0 + 100, &j);
	token(1, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "j1", h, j.id, j.hash, T0), LEDGER_OK);
	assert_int_equal(ledger_total(l), 1);
	ledger_rollback(l);
	assert_int_equal(ledger_total(l), 0);
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens"), 1);
	assert_int_equal(sql_int("SELECT count(*) FROM agents"), 0);
	/* A link failing inside SQLite (a trigger) gives the use back. */
	sql_exec("CREATE TRIGGER boom BEFORE INSERT ON agents WHEN NEW.agent_id = 'boom' "
	         "BEGIN SELECT RAISE(ABORT, 'boom'); END");
	ledger_close(l);
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "boom", h, j.id, j.hash, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link_join(l, "j1", h, j.id, j.hash, T0), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(sql_int("SELECT uses_left FROM join_tokens"), 0);
	expect(l, T0, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	ledger_close(l);
}

/* Renewal needs the current token; forget and the never-confirmed sweep. */
static void
test_renew_forget(void **state)
{
	struct ledger *l = lopen();
	uint8_t h1[LEDGER_TOKEN_HASH_LEN], h2[LEDGER_TOKEN_HASH_LEN], h9[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts c;
	uint64_t n = 99;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	link1(l, "a2", 2, T0);
	link1(l, "young", 3, T0 + 500);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 10), 0); /* a1 acknowledges */
	token(1, h1);
	token(2, h2);
	token(9, h9);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_renew(l, "a1", h2, h9, T0 + 20), LEDGER_BAD_TOKEN);
	assert_int_equal(ledger_renew(l, "nobody", h1, h9, T0 + 20), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_renew(l, "a1", h1, h9, T0 + 20), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(checkin1(l, "a1", 1, B1, 0, T0 + 21, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(checkin1(l, "a1", 9, B1, 0, T0 + 21, &send), LEDGER_OK);
	expect(l, T0 + 21, 3, 3, 1, 0, 3, 2, 0, 0, 1); /* the ack is kept */
	ledger_count(l, T0 + 21, WEEK, &c);
	assert_int_equal(c.never_confirmed, 2);
	/* a2 and young never confirmed; only a2 linked before T0 + 100. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_forget_unconfirmed(l, T0 + 100, &n), LEDGER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_forget(l, "nobody"), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_forget(l, ""), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), 0);
	ledger_count(l, T0 + 21, WEEK, &c);
	assert_int_equal(c.linked, 2);
	assert_int_equal(c.never_confirmed, 1);
	assert_int_equal(ledger_total(l), 2);
	assert_int_equal(checkin1(l, "a2", 2, B1, 0, T0 + 22, &send), LEDGER_UNKNOWN_AGENT);
	/* Outside a batch: refused. */
	assert_int_equal(ledger_forget(l, "a1"), LEDGER_ERROR);
	ledger_close(l);
	/* Reopened: the index agrees. */
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_total(l), 2);
	ledger_count(l, T0 + 21, WEEK, &c);
	assert_int_equal(c.never_confirmed, 1);
	ledger_close(l);
}

static void
test_exclude_include(void **state)
{
	struct ledger *l = lopen();
	struct ledger_agent a;
	char reason[LEDGER_MAX_REASON + 2];
	uint8_t h1[LEDGER_TOKEN_HASH_LEN], h4[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	link1(l, "a2", 2, T0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "a1", "decommissioned"), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "ghost", "x"), LEDGER_UNKNOWN_AGENT);
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(ledger_exclude(l, "a2", reason), LEDGER_ERROR);
	/* Not counted before the commit. */
	expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(ledger_commit(l), 0);
	expect(l, T0, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 1);
	assert_string_equal(a.reason, "decommissioned");
	/* An excluded agent still checks in, is listed nowhere in the counts. */
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 1), 0);
	expect(l, T0 + 1, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	/* Renewing its token keeps the exclusion. */
	token(1, h1);
	token(4, h4);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_renew(l, "a1", h1, h4, T0 + 2), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 1);
	/* Exclude again: the reason is replaced. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "a1", "retired"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_string_equal(a.reason, "retired");
	/* Include: counted again, with what it did while excluded; the reason is cleared. */
	assert_int_equal(send_of(l, "a1", 4, B1, 0, T0 + 3), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_include(l, "a1"), LEDGER_OK);
	assert_int_equal(ledger_include(l, "ghost"), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_commit(l), 0);
	expect(l, T0 + 3, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 0);
	assert_string_equal(a.reason, "");
	ledger_close(l);
}

/* 999 of 1000 acknowledged: the counts the report rounds down from. */
static void
test_one_of_thousand(void **state)
{
	struct ledger *l = lopen();
	struct ledger_counts c;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	char id[32];
	int i, send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%04d", i);
		token(i, h);
		assert_int_equal(ledger_link(l, id, h, T0), LEDGER_OK);
	}
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_begin(l), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%04d", i);
		token(i, h);
		assert_int_equal(
		    ledger_checkin(l, id, h, i == 517 ? NULL : B1, 0, T0 + 1, &send), LEDGER_OK);
		assert_int_equal(send, i == 517);
	}
	assert_int_equal(ledger_commit(l), 0);
	ledger_count(l, T0 + 1, WEEK, &c);
	assert_int_equal(c.active, 1000);
	assert_int_equal(c.acknowledged, 999);
	assert_int_equal(c.pending, 1);
	assert_int_equal(c.acknowledged * 100 / c.active, 99);
	ledger_close(l);
}

static void
test_window_boundaries(void **state)
{
	struct ledger *l = lopen();
	struct ledger_counts c;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "edge", 1, T0);
	link1(l, "stale", 2, T0 - 1);
	link1(l, "done", 3, T0 - 5);
	assert_int_equal(send_of(l, "done", 3, B1, 0, T0 - 1), 0);
	/* last_seen == now - window is active; one second earlier is not. */
	expect(l, T0 + WEEK, 3, 1, 0, 0, 1, 1, 1, 0, 0);
	ledger_count(l, T0 + WEEK + 1, WEEK, &c);
	assert_int_equal(c.active, 0);
	assert_int_equal(c.inactive_lacking, 2); /* "done" acknowledged: not lacking */
	/* A window wider than the epoch: everything is active. */
	ledger_count(l, T0, UINT64_MAX, &c);
	assert_int_equal(c.active, 3);
	ledger_count(l, T0, 0, &c);
	assert_int_equal(c.active, 1);
	ledger_close(l);
}

static void
test_batch_rules(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_agent a;
	char id[LEDGER_MAX_AGENT_ID + 2];
	int send;

	token(1, h);
	/* Writes outside a batch are refused. */
	assert_int_equal(ledger_in_batch(l), 0);
	assert_int_equal(ledger_link(l, "a1", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(l, "a1", h, NULL, 0, T0, &send), LEDGER_ERROR);
	assert_int_equal(ledger_exclude(l, "a1", "x"), LEDGER_ERROR);
	assert_int_equal(ledger_include(l, "a1"), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), -1);
	ledger_rollback(l);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_UNKNOWN_AGENT);
	/* One batch at a time; no target change inside one. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_in_batch(l), 1);
	assert_int_equal(ledger_begin(l), -1);
	assert_int_equal(ledger_set_target(l, S1, B1), -1);
	/* Malformed ids are refused even though the caller checks them. */
	assert_int_equal(ledger_link(l, "", h, T0), LEDGER_ERROR);
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(ledger_link(l, id, h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_get(l, id, &a), LEDGER_ERROR);
	id[LEDGER_MAX_AGENT_ID] = '\0';
	assert_int_equal(ledger_link(l, id, h, T0), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_set_target(l, "", B1), -1);
	assert_int_equal(ledger_set_target(l, S1, B1 "1"), -1);
	expect(l, T0, 1, 1, 0, 0, 0, 0, 0, 0, 0);
	ledger_close(l);
}

/* A rolled-back batch leaves the counts, and the database, as they were. */
static void
test_rollback(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts before, after;
	struct ledger_agent a;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	ledger_count(l, T0, WEEK, &before);
	assert_int_equal(ledger_begin(l), 0);
	token(2, h);
	assert_int_equal(ledger_link(l, "a2", h, T0), LEDGER_OK);
	token(1, h);
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, T0 + 9, &send), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "a1", "x"), LEDGER_OK);
	/* Inside the batch, the database sees it; the counts do not. */
	assert_int_equal(ledger_get(l, "a2", &a), LEDGER_OK);
	ledger_count(l, T0, WEEK, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	ledger_rollback(l);
	ledger_count(l, T0, WEEK, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(ledger_get(l, "a2", &a), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(a.excluded, 0);
	ledger_close(l);
	l = lopen();
	ledger_count(l, T0, WEEK, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	ledger_close(l);
}

/* COMMIT failing (fsync error, disk full): -1, memory untouched, the ledger goes on. */
static void
test_commit_failure(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts before, after;
	int send, round;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	ledger_count(l, T0, WEEK, &before);
	for (round = 0; round < 2; round++) {
		assert_int_equal(ledger_begin(l), 0);
		token(1, h);
		assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, T0 + 1, &send), LEDGER_OK);
		token(2, h);
		assert_int_equal(ledger_link(l, "a2", h, T0 + 1), LEDGER_OK);
		if (round == 0)
			fail_sync = 1;
		else
			fail_write = 1;
		assert_int_equal(ledger_commit(l), -1);
		fail_sync = fail_write = 0;
		assert_int_equal(ledger_in_batch(l), 0);
		ledger_rollback(l); /* what the caller does: harmless */
		ledger_count(l, T0 + 1, WEEK, &after);
		assert_memory_equal(&before, &after, sizeof(before));
	}
	/* The next batch works and is counted. */
	link1(l, "a3", 3, T0 + 2);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 3), 0);
	ledger_count(l, T0 + 3, WEEK, &after);
	assert_int_equal(after.acknowledged, 1);
	assert_true(after.linked >= 2);
	ledger_close(l);
	l = lopen();
	ledger_count(l, T0 + 3, WEEK, &after);
	assert_int_equal(after.acknowledged, 1);
	ledger_close(l);
}

/*
 * A write failing inside a call (the page cache spills into the WAL): the call
 * fails; the batch commits the calls before it or fails whole, and either way
 * the index agrees with the database.
 */
static void
test_call_failure(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts before, after, reopened;
	char id[32];
	int i, r = LEDGER_OK, committed;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	ledger_count(l, T0, WEEK, &before);
	assert_int_equal(ledger_begin(l), 0);
	fail_write = 1;
	for (i = 0; i < 200000 && r == LEDGER_OK; i++) {
		snprintf(id, sizeof(id), "spill-%06d", i);
		token(i, h);
		r = ledger_link(l, id, h, T0);
	}
	fail_write = 0;
	assert_int_equal(r, LEDGER_ERROR);
	committed = ledger_commit(l) == 0;
	ledger_count(l, T0, WEEK, &after);
	if (committed)
		assert_int_equal(after.linked, before.linked + (uint64_t)i - 1);
	else
		assert_memory_equal(&before, &after, sizeof(before));
	ledger_close(l);
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_count(l, T0, WEEK, &reopened);
	assert_memory_equal(&after, &reopened, sizeof(after));
	link1(l, "a2", 2, T0);
	ledger_count(l, T0, WEEK, &after);
	assert_int_equal(after.linked, reopened.linked + 1);
	ledger_close(l);
}

/* One call failing (a trigger aborts its write): it is undone alone, the rest commits. */
static void
test_failed_call_undone(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_agent a;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	ledger_close(l);
	sql_exec("CREATE TRIGGER boom BEFORE UPDATE ON agents WHEN NEW.verified_at = 4242 "
	         "BEGIN SELECT RAISE(ABORT, 'boom'); END");
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	token(2, h);
	assert_int_equal(ledger_link(l, "a2", h, T0 + 1), LEDGER_OK);
	token(1, h);
	send = -1;
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, 4242, &send), LEDGER_ERROR);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_exclude(l, "a2", "spare"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	/* a1's check-in left nothing: neither last_seen nor the ack. */
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	expect(l, T0 + 1, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 2), 0);
	expect(l, T0 + 2, 2, 1, 1, 0, 1, 0, 0, 1, 1);
	ledger_close(l);
}

/*
 * A check-in that changes nothing writes last_seen only every
 * LEDGER_SEEN_GRANULARITY seconds; the counts have it to the second. A lacking
 * agent's check-ins are always written.
 */
static void
test_seen_granularity(void **state)
{
	struct ledger *l = lopen();
	struct ledger_agent a;
	struct ledger_counts c;
	const time_t g = LEDGER_SEEN_GRANULARITY;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	link1(l, "lags", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "done", 2, T0);
	assert_int_equal(send_of(l, "done", 2, B1, 0, T0 + 1), 0); /* acknowledged */
	assert_int_equal(send_of(l, "done", 2, B1, 0, T0 + g - 1), 0);
	assert_int_equal(ledger_get(l, "done", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 1); /* not written */
	ledger_count(l, T0 + g + 5, 10, &c);
	assert_int_equal(c.active, 1); /* the index has T0 + g - 1 */
	assert_int_equal(c.acknowledged, 1);
	assert_int_equal(send_of(l, "done", 2, B1, 0, T0 + g + 1), 0);
	assert_int_equal(ledger_get(l, "done", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + g + 1); /* moved by g: written */
	/* A lacking agent (it never takes the bundle): every check-in is written. */
	assert_int_equal(send_of(l, "lags", 1, B0, 0, T0 + 2), 1);
	assert_int_equal(send_of(l, "lags", 1, B0, 0, T0 + 3), 1);
	assert_int_equal(ledger_get(l, "lags", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 3);
	assert_int_equal(
	    sql_int("SELECT staged_delivered_at FROM agents WHERE agent_id = 'lags'"), T0 + 3);
	/* Steady, the same: it lacks the current bundle. */
	assert_int_equal(ledger_set_target(l, NULL, B1), 0);
	assert_int_equal(send_of(l, "lags", 1, B0, 0, T0 + 4), 1);
	assert_int_equal(ledger_get(l, "lags", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 4);
	/* After a restart, an agent lacking nothing may be seen up to g earlier. */
	assert_int_equal(send_of(l, "done", 2, B1, 0, T0 + g + 9), 0);
	ledger_close(l);
	l = lopen();
	assert_int_equal(ledger_set_target(l, NULL, B1), 0);
	ledger_count(l, T0 + g + 9, 7, &c); /* stored: T0 + g + 1 */
	assert_int_equal(c.active, 0);
	ledger_count(l, T0 + g + 9, 8 + g, &c);
	assert_int_equal(c.active, 2);
	assert_int_equal(c.pending, 1);
	ledger_close(l);
}

struct page {
	char ids[64][LEDGER_MAX_AGENT_ID + 1];
	int64_t seen[64];
	int delivered[64];
	int n;
};

static void
page_cb(const char *id, int64_t last_seen, int delivered, void *arg)
{
	struct page *p = arg;

	assert_true(p->n < 64);
	snprintf(p->ids[p->n], sizeof(p->ids[p->n]), "%s", id);
	p->seen[p->n] = last_seen;
	p->delivered[p->n] = delivered;
	p->n++;
}

static void
get_page(struct ledger *l, time_t now, uint64_t off, uint32_t lim, struct page *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(ledger_pending(l, now, WEEK, off, lim, page_cb, p), 0);
}

/* Pages of pending agents: last seen first, ties in link order, consistent with the counts. */
static void
test_pending_pages(void **state)
{
	struct ledger *l = lopen();
	struct page all, p;
	char id[32];
	int i, off, lim, k;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	/* 40 agents; last_seen T0 + (i % 10); every 4th acknowledges; one is excluded. */
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "p%02d", i);
		link1(l, id, i, T0 - WEEK - 5);
		if (i % 4 == 0)
			assert_int_equal(send_of(l, id, i, B1, 0, T0 + (i % 10)), 0);
		else if (i != 39)
			assert_int_equal(send_of(l, id, i, NULL, 0, T0 + (i % 10)), 1);
	}
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "p01", "gone"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	/* 40 - 10 acked - p01 excluded - p39 inactive = 28 pending. */
	expect(l, T0 + 10, 40, 38, 10, 0, 38, 28, 1, 1, 10);
	get_page(l, T0 + 10, 0, 64, &all);
	assert_int_equal(all.n, 28);
	for (i = 1; i < all.n; i++) {
		assert_true(all.seen[i - 1] >= all.seen[i]);
		if (all.seen[i - 1] == all.seen[i])
			assert_true(strcmp(all.ids[i - 1], all.ids[i]) < 0);
	}
	assert_string_equal(all.ids[0], "p09");
	assert_int_equal(all.seen[0], T0 + 9);
	assert_string_equal(all.ids[1], "p19");
	assert_int_equal(all.delivered[0], 1);
	for (lim = 1; lim <= 30; lim += 4)
		for (off = 0; off <= 30; off++) {
			get_page(l, T0 + 10, (uint64_t)off, (uint32_t)lim, &p);
			k = off >= 28 ? 0 : (off + lim > 28 ? 28 - off : lim);
			assert_int_equal(p.n, k);
			for (i = 0; i < p.n; i++)
				assert_string_equal(p.ids[i], all.ids[off + i]);
		}
	get_page(l, T0 + 10, UINT64_MAX, 10, &p);
	assert_int_equal(p.n, 0);
	get_page(l, T0 + 10, 0, 0, &p);
	assert_int_equal(p.n, 0);
	ledger_close(l);
}

struct holdings {
	char ids[8][LEDGER_BUNDLE_ID_LEN + 1];
	uint64_t n[8];
	int count;
};

static void
holding_cb(const char *bundle_id, uint64_t agents, void *arg)
{
	struct holdings *h = arg;

	assert_true(h->count < 8);
	snprintf(h->ids[h->count], sizeof(h->ids[h->count]), "%s", bundle_id);
	h->n[h->count++] = agents;
}

static void
test_holdings(void **state)
{
	struct ledger *l = lopen();
	struct holdings h = { 0 };
	struct page p;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	link1(l, "h1", 1, T0);
	link1(l, "h2", 2, T0);
	link1(l, "h3", 3, T0);
	link1(l, "h4", 4, T0);
	assert_int_equal(send_of(l, "h1", 1, B0, 0, T0), 0);
	assert_int_equal(send_of(l, "h2", 2, B0, 0, T0), 0);
	assert_int_equal(ledger_set_target(l, NULL, B2), 0); /* say a retire changed the bundle */
	assert_int_equal(send_of(l, "h3", 3, B0, 0, T0), 1); /* holds B0, sent B2 */
	assert_int_equal(send_of(l, "h3", 3, B2, 0, T0), 0);
	assert_int_equal(send_of(l, "h1", 1, B0, 0, T0), 1);
	expect(l, T0, 4, 4, 0, 0, 0, 3, 0, 0, 1);
	assert_int_equal(ledger_holdings(l, T0, WEEK, holding_cb, &h), 0);
	assert_int_equal(h.count, 3);
	assert_string_equal(h.ids[0], B0);
	assert_int_equal(h.n[0], 2);
	/* Equal counts: in bundle row order, "" (none known) first. */
	assert_int_equal(h.n[1], 1);
	assert_int_equal(h.n[2], 1);
	assert_string_equal(h.ids[1], "");
	assert_string_equal(h.ids[2], B2);
	/* Steady pending: not holding the current bundle. */
	get_page(l, T0, 0, 10, &p);
	assert_int_equal(p.n, 3);
	/* No bundle at all: nothing to lack. */
	assert_int_equal(ledger_set_target(l, NULL, NULL), 0);
	expect(l, T0, 4, 4, 0, 0, 0, 0, 0, 0, 0);
	ledger_close(l);
}

struct snapshot {
	struct ledger_counts c[3];
	struct page p;
	struct holdings h;
};

static void
snap(struct ledger *l, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	ledger_count(l, T0 + 100, WEEK, &s->c[0]);
	ledger_count(l, T0 + WEEK + 3, WEEK, &s->c[1]);
	ledger_count(l, T0 + 100, 10, &s->c[2]);
	get_page(l, T0 + 100, 0, 64, &s->p);
	assert_int_equal(ledger_holdings(l, T0 + 100, WEEK, holding_cb, &s->h), 0);
}

/* Closing and opening again rebuilds exactly the same index from the database. */
static void
test_reopen_same_index(void **state)
{
	struct ledger *l = lopen();
	struct snapshot *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char id[32];
	int i;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	for (i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "r%02d", i);
		link1(l, id, i, T0 + i % 7);
		if (i % 3 == 0)
			send_of(l, id, i, B0, 0, T0 + i);
	}
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	for (i = 0; i < 30; i += 2) {
		snprintf(id, sizeof(id), "r%02d", i);
		send_of(l, id, i, i % 4 == 0 ? B0 : NULL, i % 5 == 0, T0 + 50 + i);
		if (i % 8 == 0)
			send_of(l, id, i, B1, 0, T0 + 60 + i);
	}
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "r05", "x"), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "r08", "y"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	snap(l, a);
	assert_true(a->c[0].acknowledged > 0 && a->c[0].verified > 0 && a->c[0].pending > 0);
	ledger_close(l);
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	snap(l, b);
	assert_memory_equal(a, b, sizeof(*a));
	ledger_close(l);
	free(a);
	free(b);
}

/* Switching the target: a new staging starts from nothing; only a bundle change keeps it. */
static void
test_switch_target(void **state)
{
	struct ledger *l = lopen();

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	link1(l, "a1", 1, T0);
	link1(l, "a2", 2, T0);
	assert_int_equal(send_of(l, "a1", 1, B1, 1, T0 + 1), 0);
	expect(l, T0 + 1, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* The same CA, another bundle (a retained CA expired): flags kept. */
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	expect(l, T0 + 1, 2, 2, 1, 1, 2, 1, 0, 0, 0);
	assert_int_equal(send_of(l, "a1", 1, B1, 0, T0 + 2), 1);
	assert_int_equal(send_of(l, "a1", 1, B2, 0, T0 + 3), 0);
	expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* Restarting with the same CA keeps the staging (no set_target needed for the flags). */
	ledger_close(l);
	l = lopen();
	expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 0);
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* Another CA: nothing delivered, acknowledged or verified for it. */
	assert_int_equal(ledger_set_target(l, S2, B1), 0);
	expect(l, T0 + 3, 2, 2, 0, 0, 0, 2, 0, 0, 0);
	assert_int_equal(send_of(l, "a2", 2, B1, 0, T0 + 4), 1);
	assert_int_equal(send_of(l, "a2", 2, B1, 0, T0 + 5), 0);
	expect(l, T0 + 5, 2, 2, 1, 0, 1, 1, 0, 0, 1);
	/* S1 again (a discard, then the same CA installed): its old acks do not count. */
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	expect(l, T0 + 5, 2, 2, 0, 0, 0, 2, 0, 0, 0);
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	expect(l, T0 + 5, 2, 2, 0, 0, 0, 2, 0, 0, 1); /* a1 still holds B2 */
	assert_int_equal(sql_int("SELECT count(*) FROM stagings"), 3);
	assert_int_equal(sql_int("SELECT count(*) FROM stagings WHERE ended_at IS NULL"), 1);
	ledger_close(l);
}

/* ---- the audit log ---- */

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* Record i of a test log: every field differs from record to record. */
static void
audit_rec(struct ledger_audit *a, int i)
{
	memset(a, 0, sizeof(*a));
	a->time = T0 + i;
	a->uid = (uint32_t)(1000 + i);
	a->pid = (uint32_t)(4000 + i);
	snprintf(a->user, sizeof(a->user), "user%d", i);
	snprintf(a->call, sizeof(a->call), "%s", i % 2 ? "generate" : "exclude");
	snprintf(a->result, sizeof(a->result), "%s", i % 3 ? "OK" : "PERMISSION_DENIED");
	snprintf(a->detail, sizeof(a->detail), "agent=\"a%d\" reason=\"r%d\"", i, i);
	snprintf(a->before, sizeof(a->before), "active=%d/%d staged=-", i, i);
	snprintf(a->after, sizeof(a->after), "active=%d/%d staged=%d", i, i, i + 1);
}

/* A log of n records (1..n), the ledger closed again. */
static void
audit_log(int n)
{
	struct ledger *l = lopen();
	struct ledger_audit a;
	int i;

	for (i = 1; i <= n; i++) {
		audit_rec(&a, i);
		assert_int_equal(ledger_audit_append(l, &a), 0);
	}
	ledger_close(l);
}

/* ledger_audit_verify on a fresh ledger: its result, broken_at and problem. */
static int
audit_verify(uint64_t *broken_at, char *problem, size_t len)
{
	struct ledger *l = lopen();
	int r = ledger_audit_verify(l, broken_at, problem, len);

	ledger_close(l);
	if (r != 1)
		print_message(
		    "verify: broken at %llu: %s\n", (unsigned long long)*broken_at, problem);
	return r;
}

struct audit_page {
	struct ledger_audit recs[16];
	size_t n;
};

static void
audit_collect(const struct ledger_audit *a, void *arg)
{
	struct audit_page *p = arg;

	assert_true(p->n < 16);
	p->recs[p->n++] = *a;
}

/* The encoding documented in ledger.h, pinned by values computed outside C (Python hashlib). */
static void
test_audit_hash_encoding(void **state)
{
	struct ledger_audit a = { .seq = 1, .time = 1700000000, .uid = 0, .pid = 4242 };
	char h[LEDGER_AUDIT_HASH_LEN + 1];

	snprintf(a.user, sizeof(a.user), "root");
	snprintf(a.call, sizeof(a.call), "generate");
	snprintf(a.result, sizeof(a.result), "OK");
	snprintf(a.detail, sizeof(a.detail), "key_type=\"ec-p256\"");
	snprintf(a.before, sizeof(a.before), "active=aa/bb staged=-");
	snprintf(a.after, sizeof(a.after), "active=aa/bb staged=cc");
	snprintf(a.prev_hash, sizeof(a.prev_hash), ZEROS);
	ledger_audit_hash(&a, h);
	assert_string_equal(h, "f70333ce058ff21183302c67ae824ebcf5c06fc260032f2f56a9f33bd42d498d");

	memset(&a, 0, sizeof(a));
	a.seq = 7;
	a.time = -5;
	a.uid = 4294967295u;
	snprintf(a.call, sizeof(a.call), "x");
	memset(a.prev_hash, 'f', LEDGER_AUDIT_HASH_LEN);
	ledger_audit_hash(&a, h);
	assert_string_equal(h, "86ca3f8f5c5b840c10fbfa4ae168a9979886cfe894d5ad717436c6d043a01500");
}

static void
test_audit_append_list(void **state)
{
	struct audit_page p = { .n = 0 };
	struct ledger_audit a, want;
	struct ledger *l = lopen();
	char problem[512], h[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t total, at;
	int i;

	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(ledger_audit_verify(l, &at, problem, sizeof(problem)), 1);
	for (i = 1; i <= 3; i++) {
		audit_rec(&a, i);
		assert_int_equal(ledger_audit_append(l, &a), 0);
		assert_int_equal(a.seq, i);
		ledger_audit_hash(&a, h);
		assert_string_equal(a.hash, h);
		if (i == 1)
			assert_string_equal(a.prev_hash, ZEROS);
		else
			assert_string_equal(a.prev_hash, want.hash);
		want = a;
	}
	ledger_close(l);

	/* Reopened: the chain goes on from the newest record on disk. */
	l = lopen();
	audit_rec(&a, 4);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(a.seq, 4);
	assert_string_equal(a.prev_hash, want.hash);
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 4);

	/* Newest first, paged; every field as written. */
	assert_int_equal(ledger_audit_list(l, 0, 10, audit_collect, &p), 0);
	assert_int_equal(p.n, 4);
	for (i = 0; i < 4; i++) {
		audit_rec(&want, 4 - i);
		assert_int_equal(p.recs[i].seq, 4 - i);
		assert_int_equal(p.recs[i].time, want.time);
		assert_int_equal(p.recs[i].uid, want.uid);
		assert_int_equal(p.recs[i].pid, want.pid);
		assert_string_equal(p.recs[i].user, want.user);
		assert_string_equal(p.recs[i].call, want.call);
		assert_string_equal(p.recs[i].result, want.result);
		assert_string_equal(p.recs[i].detail, want.detail);
		assert_string_equal(p.recs[i].before, want.before);
		assert_string_equal(p.recs[i].after, want.after);
		ledger_audit_hash(&p.recs[i], h);
		assert_string_equal(p.recs[i].hash, h);
		if (i < 3)
			assert_string_equal(p.recs[i].prev_hash, p.recs[i + 1].hash);
	}
	p.n = 0;
	assert_int_equal(ledger_audit_list(l, 1, 2, audit_collect, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.recs[0].seq, 3);
	assert_int_equal(p.recs[1].seq, 2);
	p.n = 0;
	assert_int_equal(ledger_audit_list(l, 4, 10, audit_collect, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(ledger_audit_list(l, UINT64_MAX, 10, audit_collect, &p), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(ledger_audit_verify(l, &at, problem, sizeof(problem)), 1);
	assert_int_equal(at, 0);
	assert_string_equal(problem, "");
	ledger_close(l);
}

/* Inside a batch an append is refused: a rollback of the batch would take it along. */
static void
test_audit_not_in_batch(void **state)
{
	struct ledger *l = lopen();
	struct ledger_audit a;
	uint64_t total;

	audit_rec(&a, 1);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_audit_append(l, &a), -1);
	ledger_rollback(l);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 1);
	/* A batch still works after an append. */
	link1(l, "alpha", 1, T0);
	ledger_close(l);
}

/* The triggers refuse changes; dropped by hand, they come back at the next open. */
static void
test_audit_append_only(void **state)
{
	audit_log(3);
	assert_int_equal(sql_try("UPDATE audit SET detail = 'x' WHERE seq = 2"), SQLITE_CONSTRAINT);
	assert_int_equal(sql_try("DELETE FROM audit WHERE seq = 3"), SQLITE_CONSTRAINT);
	assert_int_equal(sql_int("SELECT count(*) FROM audit"), 3);
	sql_exec("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete");
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 0);
	ledger_close(lopen());
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), 2);
	assert_int_equal(sql_try("DELETE FROM audit"), SQLITE_CONSTRAINT);
}

static void
test_audit_tamper_update(void **state)
{
	char problem[512];
	uint64_t at;

	audit_log(5);
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 1);
	sql_exec("DROP TRIGGER audit_no_update;"
	         "UPDATE audit SET result = 'OK' WHERE seq = 3");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 3);
	assert_non_null(strstr(problem, "record 3 was changed"));
}

static void
test_audit_tamper_integer(void **state)
{
	char problem[512];
	uint64_t at;

	audit_log(5);
	sql_exec("DROP TRIGGER audit_no_update; UPDATE audit SET uid = 0 WHERE seq = 5");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 5);
	assert_non_null(strstr(problem, "record 5 was changed"));
}

static void
test_audit_tamper_delete(void **state)
{
	char problem[512];
	uint64_t at;

	audit_log(5);
	sql_exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 3");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 3);
	assert_non_null(strstr(problem, "record 3 is missing"));

	/* Each open puts the triggers back: the tamperer drops them each time. */
	sql_exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 4");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 3);
	assert_non_null(strstr(problem, "records 3 to 4 are missing"));

	sql_exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 1");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 1);
	assert_non_null(strstr(problem, "record 1 is missing"));
}

/* Record 3 changed and given a correct hash of its own: record 4 no longer links to it. */
static void
test_audit_tamper_rehash(void **state)
{
	struct audit_page p = { .n = 0 };
	struct ledger *l;
	char problem[512], sql[512];
	uint64_t at;

	audit_log(5);
	l = lopen();
	assert_int_equal(ledger_audit_list(l, 2, 1, audit_collect, &p), 0);
	ledger_close(l);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.recs[0].seq, 3);
	snprintf(p.recs[0].detail, sizeof(p.recs[0].detail), "nothing to see");
	ledger_audit_hash(&p.recs[0], p.recs[0].hash);
	snprintf(sql, sizeof(sql),
	    "DROP TRIGGER audit_no_update;"
	    "UPDATE audit SET detail = 'nothing to see', hash = '%s' WHERE seq = 3",
	    p.recs[0].hash);
	sql_exec(sql);
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 4);
	assert_non_null(strstr(problem, "record 4 does not link to record 3"));

	/* The first record re-hashed onto another start. */
	sql_exec("DROP TRIGGER audit_no_update;"
	         "UPDATE audit SET prev_hash = '" B1 "' WHERE seq = 1");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 1);
	assert_non_null(strstr(problem, "record 1 does not start the chain"));
}

/* walk_all: steps of max records until the end; *steps counts them. The step's last result. */
static int
walk_all(struct ledger *l, struct ledger_audit_walk *w, uint32_t max, int *steps, char *problem)
{
	int r;

	*steps = 0;
	do
		(*steps)++;
	while ((r = ledger_audit_verify_step(l, w, max, problem, 512)) == 2);
	return r;
}

/*
 * The walk a slice at a time reaches the whole walk's verdict, whatever the
 * slice: records appended between slices are walked, a record changed or
 * missing is named where it is, also at a slice's edge. count and list go
 * by number (the newest record's, records below skipped).
 */
static void
test_audit_verify_slices(void **state)
{
	struct audit_page p = { .n = 0 };
	struct ledger_audit_walk w;
	struct ledger_audit a;
	struct ledger *l;
	char problem[512];
	uint64_t total;
	int steps;

	audit_log(10);
	l = lopen();
	ledger_audit_walk_init(&w);
	assert_int_equal(walk_all(l, &w, 1, &steps, problem), 1);
	assert_int_equal(steps, 11); /* ten full slices of one, then the end */
	assert_int_equal(w.next, 11);
	assert_string_equal(problem, "");

	/* Slices of 3: records appended after the second are walked too. */
	ledger_audit_walk_init(&w);
	assert_int_equal(ledger_audit_verify_step(l, &w, 3, problem, sizeof(problem)), 2);
	assert_int_equal(ledger_audit_verify_step(l, &w, 3, problem, sizeof(problem)), 2);
	assert_int_equal(w.next, 7);
	audit_rec(&a, 11);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(walk_all(l, &w, 3, &steps, problem), 1);
	assert_int_equal(steps, 2); /* 7..9, then 10..11 */
	assert_int_equal(w.next, 12);
	ledger_close(l);

	/* Record 7 changed: found in the third slice of 3, not before. */
	sql_exec("DROP TRIGGER audit_no_update; UPDATE audit SET result = 'DENIED' WHERE seq = 7");
	l = lopen();
	ledger_audit_walk_init(&w);
	assert_int_equal(walk_all(l, &w, 3, &steps, problem), 0);
	assert_int_equal(steps, 3);
	assert_int_equal(w.next, 7);
	assert_non_null(strstr(problem, "record 7 was changed"));
	ledger_close(l);

	/* Record 4, the first of a slice, removed: the slice starting after 3 names it. */
	sql_exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 4");
	l = lopen();
	ledger_audit_walk_init(&w);
	assert_int_equal(walk_all(l, &w, 3, &steps, problem), 0);
	assert_int_equal(steps, 2);
	assert_int_equal(w.next, 4);
	assert_non_null(strstr(problem, "record 4 is missing"));

	/* count and list go by number: 11 is the newest; offset 8 starts at record 3. */
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 11);
	assert_int_equal(ledger_audit_list(l, 8, 16, audit_collect, &p), 0);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.recs[0].seq, 3);
	assert_int_equal(p.recs[2].seq, 1);
	p.n = 0;
	assert_int_equal(ledger_audit_list(l, 6, 2, audit_collect, &p), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(p.recs[0].seq, 5);
	assert_int_equal(p.recs[1].seq, 3); /* 4 is gone */
	ledger_close(l);
}

/* A table rebuilt without its constraints may hold anything; verify still answers. */
static void
test_audit_tamper_types(void **state)
{
	char problem[512];
	uint64_t at;

	audit_log(2);
	sql_exec("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"
	         "ALTER TABLE audit RENAME TO old;"
	         "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time, uid, user, pid, call, result,"
	         " detail, \"before\", \"after\", prev_hash, hash);"
	         "INSERT INTO audit SELECT * FROM old; DROP TABLE old;"
	         "UPDATE audit SET detail = NULL WHERE seq = 2");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_int_equal(at, 2);
	assert_non_null(strstr(problem, "record 2: detail is not text"));
	sql_exec("DROP TRIGGER audit_no_update;"
	         "UPDATE audit SET detail = 'x', time = 'soon' WHERE seq = 2");
	assert_int_equal(audit_verify(&at, problem, sizeof(problem)), 0);
	assert_non_null(strstr(problem, "record 2: time is not an integer"));
}

/* The schema of version 1, as migration 0 -> 1 made it (a copy: migrations never change). */
static const char v1_schema[] =
    "CREATE TABLE bundles (id INTEGER PRIMARY KEY,"
    " bundle_id TEXT NOT NULL UNIQUE CHECK (length(bundle_id) BETWEEN 1 AND 64),"
    " first_served INTEGER NOT NULL) STRICT;"
    "CREATE TABLE stagings (id INTEGER PRIMARY KEY,"
    " ca TEXT NOT NULL CHECK (length(ca) BETWEEN 1 AND 64),"
    " started_at INTEGER NOT NULL, ended_at INTEGER) STRICT;"
    "CREATE TABLE agents (id INTEGER PRIMARY KEY,"
    " agent_id TEXT NOT NULL UNIQUE CHECK (length(agent_id) BETWEEN 1 AND 64),"
    " token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),"
    " linked_at INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " delivered_bundle INTEGER REFERENCES bundles (id),"
    " held_bundle INTEGER REFERENCES bundles (id),"
    " is_excluded INTEGER NOT NULL DEFAULT 0 CHECK (is_excluded IN (0, 1)),"
    " exclude_reason TEXT, staging INTEGER REFERENCES stagings (id),"
    " staged_delivered_at INTEGER, acknowledged_at INTEGER, verified_at INTEGER) STRICT;";

/* A ledger written by the previous carotated is migrated in place, its agents kept. */
static void
test_migrate_v1(void **state)
{
	struct ledger_agent ag;
	struct ledger_audit a;
	struct ledger *l;
	char problem[512];
	uint64_t at;

	sql_exec("PRAGMA journal_mode = WAL");
	sql_exec(v1_schema);
	sql_exec("INSERT INTO bundles (bundle_id, first_served) VALUES ('" B1 "', 1);"
	         "INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, last_seen,"
	         " held_bundle, is_excluded, exclude_reason)"
	         " VALUES ('old-agent', zeroblob(32), 10, 10, 20, 1, 1, 'gone');"
	         "PRAGMA user_version = 1");
	l = lopen();
	assert_int_equal(sql_int("PRAGMA user_version"), 3);
	assert_int_equal(ledger_get(l, "old-agent", &ag), LEDGER_OK);
	assert_int_equal(ag.linked_at, 10);
	assert_int_equal(ag.last_seen, 20);
	assert_int_equal(ag.excluded, 1);
	assert_string_equal(ag.reason, "gone");
	audit_rec(&a, 1);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(a.seq, 1);
	assert_int_equal(ledger_audit_verify(l, &at, problem, sizeof(problem)), 1);
	ledger_close(l);
	assert_int_equal(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND "
	                         "tbl_name = 'audit'"),
	    2);
	assert_int_equal(sql_int("SELECT count(*) FROM agents"), 1);
	/* Opening again migrates nothing more. */
	ledger_close(lopen());
	assert_int_equal(sql_int("PRAGMA user_version"), 3);
	assert_int_equal(sql_int("SELECT count(*) FROM audit"), 1);
}

/*
 * A swap's outcome in an audit detail, as check and the renew metric read it: the bare
 * arguments audit.c writes, never a quoted --reason or the message that spell the same.
 */
static void
test_audit_outcome(void **state)
{
	int v, rb;

	assert_int_equal(ledger_audit_outcome("force=yes reason=\"x\" backup_made=\"certs-1\" "
	                                      "reload=ok verified=yes rolled_back=no",
	                     &v, &rb),
	    0);
	assert_int_equal(v, 1);
	assert_int_equal(rb, 0);
	assert_int_equal(ledger_audit_outcome("verified=no rolled_back=yes; rotate: the proxy "
	                                      "served the old leaf",
	                     &v, &rb),
	    0);
	assert_int_equal(v, 0);
	assert_int_equal(rb, 1);
	/* A refused call: its reason spells an outcome inside quotes, its message after "; ". */
	assert_int_equal(ledger_audit_outcome("force=yes reason=\"x\\x22 verified=no "
	                                      "rolled_back=yes\"; rotate: nothing is staged",
	                     &v, &rb),
	    -1);
	assert_int_equal(
	    ledger_audit_outcome("discard: verified=yes rolled_back=yes", &v, &rb), -1);
	assert_int_equal(ledger_audit_outcome("dry_run=yes", &v, &rb), -1);
	assert_int_equal(ledger_audit_outcome("verified=maybe rolled_back=no", &v, &rb), -1);
	assert_int_equal(ledger_audit_outcome("reason=\"unterminated verified=yes", &v, &rb), -1);
	assert_int_equal(ledger_audit_outcome("", &v, &rb), -1);
}

/* ---- the front: ledger.c over an engine's table ---- */

static int closes;

static void
counting_close(void *self)
{
	closes++;
	ledger_sqlite_backend.close(self);
}

/* An engine whose table lacks an entry is refused, and its state closed (not leaked). */
static void
test_wrap(void **state)
{
	struct ledger_backend partial = ledger_sqlite_backend;
	char err[512] = "";
	struct ledger_sqlite *s;
	struct ledger *l;

	assert_null(ledger_wrap(&ledger_sqlite_backend, NULL));
	partial.close = counting_close;
	partial.audit_verify_step = NULL;
	assert_non_null(s = ledger_sqlite_open(dir, err, sizeof(err)));
	closes = 0;
	assert_null(ledger_wrap(&partial, s));
	assert_int_equal(closes, 1);

	partial.audit_verify_step = ledger_sqlite_backend.audit_verify_step;
	assert_non_null(s = ledger_sqlite_open(dir, err, sizeof(err)));
	assert_non_null(l = ledger_wrap(&partial, s));
	assert_string_equal(ledger_backend_name(l), "sqlite");
	closes = 0;
	ledger_close(l);
	assert_int_equal(closes, 1);
	ledger_close(NULL);
}

static void
member_cb(const struct ledger_member *m, void *arg)
{
	fail_msg("a single proxy has no pool members (%s)", m->name);
}

static void
member_counts_cb(const char *member, const struct ledger_counts *c, void *arg)
{
	fail_msg("a single proxy has no per-member counts (%s)", member);
}

/* A single proxy's ledger is not a pool: member calls answer -1 and call nothing back. */
static void
test_not_a_pool(void **state)
{
	struct ledger *l = lopen();
	struct ledger_member m = { .active_ca = "-", .active_server = "-", .staged_ca = "-" };

	assert_int_equal(ledger_member_beat(l, &m), -1);
	assert_int_equal(ledger_member_list(l, member_cb, NULL), -1);
	assert_int_equal(ledger_count_members(l, T0, 7 * 86400, member_counts_cb, NULL), -1);
	ledger_close(l);
}

/* What the front refuses before any engine sees it, with the result the contract names. */
static void
test_front_arguments(void **state)
{
	static const char *const calls[] = { "rotate", "restore", "renew", "discard", "stage" };
	struct ledger *l = lopen();
	struct ledger_agent a;
	struct ledger_audit rec;
	struct ledger_join j = { .id = "0123456789abcdef", .uses_left = 1 };
	char reason[LEDGER_MAX_REASON + 2], problem[64];
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	uint64_t n = 9;
	int send = 1;

	token(1, h);
	assert_string_equal(ledger_backend_name(l), "sqlite");
	/* Outside a batch a link with a malformed join id is an error, inside one "not found". */
	assert_int_equal(ledger_link_join(l, "a1", h, "nope", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "a1", h, "nope", h, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_link_join(l, "a1", h, "0123456789ABCDEF", h, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_link_join(l, "a1", NULL, "0123456789abcdef", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link(l, NULL, h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link(l, "", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link(l, "a1", NULL, T0), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(l, "a1", h, NULL, 0, T0, NULL), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(l, NULL, h, NULL, 0, T0, &send), LEDGER_ERROR);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_renew(l, "a1", h, NULL, T0), LEDGER_ERROR);
	assert_int_equal(ledger_forget_unconfirmed(l, T0, NULL), LEDGER_ERROR);
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(ledger_exclude(l, "a1", reason), LEDGER_ERROR);
	assert_int_equal(ledger_join_create(l, NULL), LEDGER_ERROR);
	snprintf(j.description, sizeof(j.description), "tab\there");
	assert_int_equal(ledger_join_create(l, &j), LEDGER_ERROR);
	assert_int_equal(ledger_join_revoke(l, "XYZ"), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_check(l, "short", h, T0), LEDGER_NOT_FOUND);
	/* None of it reached the engine: the batch still commits, and nothing changed. */
	assert_int_equal(ledger_forget_unconfirmed(l, T0, &n), LEDGER_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_total(l), 0);

	memset(&a, 'x', sizeof(a));
	assert_int_equal(ledger_get(l, NULL, &a), LEDGER_ERROR);
	assert_string_equal(a.id, "");
	assert_int_equal(ledger_get(l, "a1", NULL), LEDGER_ERROR);
	assert_int_equal(ledger_count(l, T0, WEEK, NULL), -1);
	assert_int_equal(ledger_set_target(l, "", NULL), -1);
	assert_int_equal(ledger_set_target(l, S1 "0", NULL), -1);
	assert_int_equal(ledger_set_target(l, NULL, ""), -1);
	assert_int_equal(ledger_audit_last(l, 0, calls, 5, "x", &rec), -1);
	assert_int_equal(ledger_audit_last(l, 0, calls, 1, NULL, &rec), -1);
	assert_int_equal(ledger_audit_last(l, (uint64_t)INT64_MAX + 1, calls, 1, "x", &rec), -1);
	assert_int_equal(ledger_audit_list(l, 0, 1, NULL, NULL), -1);
	assert_int_equal(ledger_audit_count(l, NULL), -1);
	assert_int_equal(ledger_quick_check(l, NULL, 0), -1);
	assert_int_equal(ledger_quick_check(l, problem, sizeof(problem)), 1);
	assert_int_equal(ledger_audit_verify(l, NULL, problem, sizeof(problem)), -1);
	ledger_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_schema_and_reopen, setup),
		cmocka_unit_test_setup(test_mode_tightened, setup),
		cmocka_unit_test_setup(test_future_version_refused, setup),
		cmocka_unit_test_setup(test_foreign_database_refused, setup),
		cmocka_unit_test_setup(test_corrupt_page_refused, setup),
		cmocka_unit_test_setup(test_truncated_refused, setup),
		cmocka_unit_test_setup(test_not_a_database_refused, setup),
		cmocka_unit_test_setup(test_symlink_refused, setup),
		cmocka_unit_test_setup(test_flow, setup),
		cmocka_unit_test_setup(test_link_while_staged, setup),
		cmocka_unit_test_setup(test_forged_if_none_match, setup),
		cmocka_unit_test_setup(test_lost_delivery_resent, setup),
		cmocka_unit_test_setup(test_tokens, setup),
		cmocka_unit_test_setup(test_join_tokens, setup),
		cmocka_unit_test_setup(test_join_atomic, setup),
		cmocka_unit_test_setup(test_renew_forget, setup),
		cmocka_unit_test_setup(test_exclude_include, setup),
		cmocka_unit_test_setup(test_one_of_thousand, setup),
		cmocka_unit_test_setup(test_window_boundaries, setup),
		cmocka_unit_test_setup(test_batch_rules, setup),
		cmocka_unit_test_setup(test_rollback, setup),
		cmocka_unit_test_setup(test_commit_failure, setup),
		cmocka_unit_test_setup(test_call_failure, setup),
		cmocka_unit_test_setup(test_failed_call_undone, setup),
		cmocka_unit_test_setup(test_seen_granularity, setup),
		cmocka_unit_test_setup(test_pending_pages, setup),
		cmocka_unit_test_setup(test_holdings, setup),
		cmocka_unit_test_setup(test_reopen_same_index, setup),
		cmocka_unit_test_setup(test_switch_target, setup),
		cmocka_unit_test_setup(test_audit_hash_encoding, setup),
		cmocka_unit_test_setup(test_audit_append_list, setup),
		cmocka_unit_test_setup(test_audit_not_in_batch, setup),
		cmocka_unit_test_setup(test_audit_append_only, setup),
		cmocka_unit_test_setup(test_audit_tamper_update, setup),
		cmocka_unit_test_setup(test_audit_tamper_integer, setup),
		cmocka_unit_test_setup(test_audit_tamper_delete, setup),
		cmocka_unit_test_setup(test_audit_tamper_rehash, setup),
		cmocka_unit_test_setup(test_audit_verify_slices, setup),
		cmocka_unit_test_setup(test_audit_tamper_types, setup),
		cmocka_unit_test_setup(test_migrate_v1, setup),
		cmocka_unit_test(test_audit_outcome),
		cmocka_unit_test_setup(test_wrap, setup),
		cmocka_unit_test_setup(test_front_arguments, setup),
		cmocka_unit_test_setup(test_not_a_pool, setup),
	};

	return cmocka_run_group_tests_name("ledger", tests, group_setup, group_teardown);
}
