/*
 * The ledger on SQLite: the contract checks every engine passes
 * (ledger_contract.c), and what is SQLite's own: schema and migrations,
 * corruption refused, failed commits and writes through a fault-injecting VFS,
 * the in-memory index's last_seen granularity, every way of tampering with the
 * audit log's hash chain that it must show; the front (ledger.c): its argument
 * checks, and an engine's table taken whole or not at all.
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
#include "ledger_contract.h"
#include "log.h"

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
		ledger_contract_token(i, h);
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

/* ---- the contract checks' fixture: one handle, reopened in place ---- */

static struct ledger_contract contract;

static void
contract_reopen(struct ledger_contract *c)
{
	ledger_close(c->l);
	c->l = c->other = NULL; /* closed, should the open fail */
	c->l = c->other = lopen();
}

/* Triggers refuse the writes ledger_contract.h names; the ledger is reopened over them. */
static void
contract_refuse(struct ledger_contract *c)
{
	sql_exec("CREATE TRIGGER boom BEFORE INSERT ON agents WHEN NEW.agent_id = 'boom' "
	         "BEGIN SELECT RAISE(ABORT, 'boom'); END;"
	         "CREATE TRIGGER boom_verified BEFORE UPDATE ON agents WHEN NEW.verified_at = 4242 "
	         "BEGIN SELECT RAISE(ABORT, 'boom'); END");
	contract_reopen(c);
}

/* An empty state directory and the ledger opened in it. */
static int
contract_setup(void **state)
{
	if (setup(state) != 0)
		return -1;
	contract.l = contract.other = lopen();
	contract.reopen = contract_reopen;
	contract.sql_int = sql_int;
	contract.refuse = contract_refuse;
	contract.counts_in_batch = 1;
	*state = &contract;
	return 0;
}

static int
contract_teardown(void **state)
{
	ledger_close(contract.l);
	contract.l = contract.other = NULL;
	return 0;
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
	ledger_contract_link(l, "alpha", 1, T0);
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
	ledger_contract_expect(l, T0, 1, 1, 0, 0, 0, 0, 0, 0, 0);
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

/* COMMIT failing (fsync error, disk full): -1, memory untouched, the ledger goes on. */
static void
test_commit_failure(void **state)
{
	struct ledger *l = lopen();
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts before, after;
	int send, round;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_count(l, T0, WEEK, &before);
	for (round = 0; round < 2; round++) {
		assert_int_equal(ledger_begin(l), 0);
		ledger_contract_token(1, h);
		assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, T0 + 1, &send), LEDGER_OK);
		ledger_contract_token(2, h);
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
	ledger_contract_link(l, "a3", 3, T0 + 2);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 3), 0);
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
	ledger_contract_link(l, "a1", 1, T0);
	ledger_count(l, T0, WEEK, &before);
	assert_int_equal(ledger_begin(l), 0);
	fail_write = 1;
	for (i = 0; i < 200000 && r == LEDGER_OK; i++) {
		snprintf(id, sizeof(id), "spill-%06d", i);
		ledger_contract_token(i, h);
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
	ledger_contract_link(l, "a2", 2, T0);
	ledger_count(l, T0, WEEK, &after);
	assert_int_equal(after.linked, reopened.linked + 1);
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
	ledger_contract_link(l, "lags", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "done", 2, T0);
	assert_int_equal(ledger_contract_send(l, "done", 2, B1, 0, T0 + 1), 0); /* acknowledged */
	assert_int_equal(ledger_contract_send(l, "done", 2, B1, 0, T0 + g - 1), 0);
	assert_int_equal(ledger_get(l, "done", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 1); /* not written */
	ledger_count(l, T0 + g + 5, 10, &c);
	assert_int_equal(c.active, 1); /* the index has T0 + g - 1 */
	assert_int_equal(c.acknowledged, 1);
	assert_int_equal(ledger_contract_send(l, "done", 2, B1, 0, T0 + g + 1), 0);
	assert_int_equal(ledger_get(l, "done", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + g + 1); /* moved by g: written */
	/* A lacking agent (it never takes the bundle): every check-in is written. */
	assert_int_equal(ledger_contract_send(l, "lags", 1, B0, 0, T0 + 2), 1);
	assert_int_equal(ledger_contract_send(l, "lags", 1, B0, 0, T0 + 3), 1);
	assert_int_equal(ledger_get(l, "lags", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 3);
	assert_int_equal(
	    sql_int("SELECT staged_delivered_at FROM agents WHERE agent_id = 'lags'"), T0 + 3);
	/* Steady, the same: it lacks the current bundle. */
	assert_int_equal(ledger_set_target(l, NULL, B1), 0);
	assert_int_equal(ledger_contract_send(l, "lags", 1, B0, 0, T0 + 4), 1);
	assert_int_equal(ledger_get(l, "lags", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0 + 4);
	/* After a restart, an agent lacking nothing may be seen up to g earlier. */
	assert_int_equal(ledger_contract_send(l, "done", 2, B1, 0, T0 + g + 9), 0);
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

/* ---- the audit log ---- */

/* A log of n records (1..n), the ledger closed again. */
static void
audit_log(int n)
{
	struct ledger *l = lopen();
	struct ledger_audit a;
	int i;

	for (i = 1; i <= n; i++) {
		ledger_contract_audit_rec(&a, i);
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
	snprintf(a.prev_hash, sizeof(a.prev_hash), B0);
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

/*
 * The walk a slice at a time names a record changed or missing where it is,
 * also at a slice's edge; count and list go by number (the newest record's,
 * records below skipped).
 */
static void
test_audit_tamper_slices(void **state)
{
	struct audit_page p = { .n = 0 };
	struct ledger_audit_walk w;
	struct ledger *l;
	char problem[512];
	uint64_t total;
	int steps;

	audit_log(11);
	/* Record 7 changed: found in the third slice of 3, not before. */
	sql_exec("DROP TRIGGER audit_no_update; UPDATE audit SET result = 'DENIED' WHERE seq = 7");
	l = lopen();
	ledger_audit_walk_init(&w);
	assert_int_equal(ledger_contract_walk(l, &w, 3, &steps, problem), 0);
	assert_int_equal(steps, 3);
	assert_int_equal(w.next, 7);
	assert_non_null(strstr(problem, "record 7 was changed"));
	ledger_close(l);

	/* Record 4, the first of a slice, removed: the slice starting after 3 names it. */
	sql_exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = 4");
	l = lopen();
	ledger_audit_walk_init(&w);
	assert_int_equal(ledger_contract_walk(l, &w, 3, &steps, problem), 0);
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
	ledger_contract_audit_rec(&a, 1);
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

/* A single proxy's ledger is not a pool: member and pool calls answer -1, call nothing back. */
static void
test_not_a_pool(void **state)
{
	struct ledger *l = lopen();
	struct ledger_member m = { .active_ca = "-", .active_server = "-", .staged_ca = "-" };

	assert_int_equal(ledger_member_beat(l, &m), -1);
	assert_int_equal(ledger_member_list(l, member_cb, NULL), -1);
	assert_int_equal(ledger_count_members(l, T0, 7 * 86400, member_counts_cb, NULL), -1);
	assert_int_equal(ledger_member_applied(l, 1, 1, NULL), -1);
	/* Nor has it a pool's shared state, lock or notifications. */
	{
		struct ledger_pool_state st = { .call = "rotate" };

		assert_int_equal(ledger_pool_state_get(l, &st), -1);
		assert_int_equal(ledger_pool_state_put(l, &st, 0), -1);
		assert_int_equal(ledger_pool_lock(l), -1);
		ledger_pool_unlock(l);
		assert_int_equal(ledger_pool_socket(l), -1);
		assert_int_equal(ledger_pool_notified(l), -1);
	}
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

	ledger_contract_token(1, h);
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
		LEDGER_CONTRACT_TESTS(contract_setup, contract_teardown),
		cmocka_unit_test_setup(test_commit_failure, setup),
		cmocka_unit_test_setup(test_call_failure, setup),
		cmocka_unit_test_setup(test_seen_granularity, setup),
		cmocka_unit_test_setup(test_audit_hash_encoding, setup),
		cmocka_unit_test_setup(test_audit_append_only, setup),
		cmocka_unit_test_setup(test_audit_tamper_update, setup),
		cmocka_unit_test_setup(test_audit_tamper_integer, setup),
		cmocka_unit_test_setup(test_audit_tamper_delete, setup),
		cmocka_unit_test_setup(test_audit_tamper_rehash, setup),
		cmocka_unit_test_setup(test_audit_tamper_slices, setup),
		cmocka_unit_test_setup(test_audit_tamper_types, setup),
		cmocka_unit_test_setup(test_migrate_v1, setup),
		cmocka_unit_test(test_audit_outcome),
		cmocka_unit_test_setup(test_wrap, setup),
		cmocka_unit_test_setup(test_front_arguments, setup),
		cmocka_unit_test_setup(test_not_a_pool, setup),
	};

	return cmocka_run_group_tests_name("ledger", tests, group_setup, group_teardown);
}
