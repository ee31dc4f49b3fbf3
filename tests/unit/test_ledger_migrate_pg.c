/*
 * A single proxy's SQLite ledger copied into a pool's PostgreSQL ledger
 * (ledger_open_source, ledger_migrate), against a real server: what is copied,
 * what is left as the pool has it, the record linking the two chains, a second
 * run that copies nothing, and the sources refused with nothing written.
 * tests/unit/pg_run.sh starts the server (CAROTATE_TEST_PG_DSN); without it
 * every test is skipped, and says why.
 */
#include <sys/wait.h>

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

#include <libpq-fe.h>
#include <sqlite3.h>

#include "ledger.h"
#include "fixture_pg.h"
#include "ledger_contract.h"
#include "log.h"

#define JID "0123456789abcdef"

static char dir[] = "/tmp/carotate-migrate.XXXXXX";
static char src[256];

static void
audit1(struct ledger *l, const char *call)
{
	struct ledger_audit r = { .time = T0, .uid = 0 };

	snprintf(r.user, sizeof(r.user), "root");
	snprintf(r.call, sizeof(r.call), "%s", call);
	snprintf(r.result, sizeof(r.result), "OK");
	assert_int_equal(ledger_audit_append(l, &r), 0);
}

/* SQL on the source file, as an operator's sqlite3 shell would run it. */
static void
src_exec(const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(src, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/*
 * The single proxy: a1, a2, a3 (excluded), a4, a join token with 5 uses, two
 * audit records. Made fresh for each test.
 */
static void
make_source(void)
{
	struct ledger_join j = {
		.id = JID, .uses_left = 5, .expires_at = T0 + WEEK, .created_at = T0
	};
	char err[512] = "", path[300];
	struct ledger *l;

	snprintf(path, sizeof(path), "%s-wal", src);
	unlink(path);
	snprintf(path, sizeof(path), "%s-shm", src);
	unlink(path);
	unlink(src);
	snprintf(j.description, sizeof(j.description), "rack 4");
	ledger_contract_token(50, j.hash);
	if ((l = ledger_open(dir, err, sizeof(err))) == NULL)
		fail_msg("ledger_open: %s", err);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0 + 1);
	ledger_contract_link(l, "a3", 3, T0 + 2);
	ledger_contract_link(l, "a4", 4, T0 + 3);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "a3", "decommissioned"), LEDGER_OK);
	assert_int_equal(ledger_join_create(l, &j), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	audit1(l, "generate");
	audit1(l, "rotate");
	ledger_close(l);
}

static void
migrate_rec(struct ledger_audit *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->time = T0 + 100;
	snprintf(rec->user, sizeof(rec->user), "root");
	snprintf(rec->detail, sizeof(rec->detail), "member=m1");
}

/* Every test starts on an empty pool and a fresh source. */
static int
setup(void **state)
{
	PGresult *r = PQexec(fixture_pg_adm, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	PQclear(r);
	make_source();
	return ok ? 0 : -1;
}

/* ---- tests ---- */

/*
 * What the pool had is left (a2 the same, a4 another token: a conflict named);
 * the rest is copied with its exclusion; tokens and the join token work on
 * the pool; one record links the chains; a second run copies nothing.
 */
static void
test_copy_and_again(void **state)
{
	struct ledger *pool = fixture_pg_open("m1"), *s;
	struct ledger_migration m;
	struct ledger_audit rec, last;
	struct ledger_agent ag;
	uint8_t h[LEDGER_TOKEN_HASH_LEN], jh[LEDGER_TOKEN_HASH_LEN];
	char err[1024] = "", problem[256];
	const char *calls[] = { "migrate-ledger" };
	uint64_t broken, n;
	int send;

	ledger_contract_link(pool, "a2", 2, T0 + 50);
	ledger_contract_link(pool, "a4", 99, T0 + 50);
	audit1(pool, "status-check");
	if ((s = ledger_open_source(src, err, sizeof(err))) == NULL)
		fail_msg("ledger_open_source: %s", err);
	migrate_rec(&rec);
	if (ledger_migrate(pool, s, src, &rec, &m, err, sizeof(err)) != 0)
		fail_msg("ledger_migrate: %s", err);
	assert_int_equal(m.agents_copied, 2);
	assert_int_equal(m.agents_present, 1);
	assert_int_equal(m.agents_conflicts, 1);
	assert_int_equal(m.named, 1);
	assert_string_equal(m.conflicts[0], "a4");
	assert_int_equal(m.joins_copied, 1);
	assert_int_equal(m.source_records, 2);
	assert_int_equal(m.pool_record, 2);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents"), 4);

	/* a1's token works on the pool; a4 keeps the pool's token. */
	ledger_contract_token(1, h);
	assert_int_equal(ledger_begin(pool), 0);
	assert_int_equal(ledger_checkin(pool, "a1", h, NULL, 0, T0 + 200, &send), LEDGER_OK);
	ledger_contract_token(4, h);
	assert_int_equal(ledger_checkin(pool, "a4", h, NULL, 0, T0 + 200, &send), LEDGER_BAD_TOKEN);
	ledger_contract_token(99, h);
	assert_int_equal(ledger_checkin(pool, "a4", h, NULL, 0, T0 + 200, &send), LEDGER_OK);
	assert_int_equal(ledger_commit(pool), 0);
	assert_int_equal(ledger_get(pool, "a3", &ag), LEDGER_OK);
	assert_true(ag.excluded);
	assert_string_equal(ag.reason, "decommissioned");
	assert_int_equal(ag.linked_at, T0 + 2);
	assert_int_equal(ledger_get(pool, "a1", &ag), LEDGER_OK);
	assert_false(ag.excluded);
	assert_int_equal(ag.linked_at, T0);
	/* The join token links a new agent on the pool, and loses one use. */
	ledger_contract_token(50, jh);
	ledger_contract_token(7, h);
	assert_int_equal(ledger_begin(pool), 0);
	assert_int_equal(ledger_link_join(pool, "new1", h, JID, jh, T0 + 300), LEDGER_OK);
	assert_int_equal(ledger_commit(pool), 0);
	assert_int_equal(
	    fixture_pg_int("SELECT uses_left FROM join_tokens WHERE id = '" JID "'"), 4);

	/* One record, naming the source's head; the pool's chain verifies. */
	assert_int_equal(ledger_audit_last(pool, 0, calls, 1, "source_head=", &last), 1);
	assert_int_equal(last.seq, 2);
	assert_non_null(strstr(last.detail, m.source_head));
	assert_non_null(strstr(last.detail, "member=m1 source=\""));
	assert_non_null(strstr(last.detail, "agents_copied=2 agents_present=1 agents_conflicts=1"));
	assert_int_equal(ledger_audit_verify(pool, &broken, problem, sizeof(problem)), 1);

	/* Again: nothing copied, nothing overwritten, one more record. */
	migrate_rec(&rec);
	assert_int_equal(ledger_migrate(pool, s, src, &rec, &m, err, sizeof(err)), 0);
	assert_int_equal(m.agents_copied, 0);
	assert_int_equal(m.agents_present, 3);
	assert_int_equal(m.agents_conflicts, 1);
	assert_int_equal(m.joins_copied, 0);
	assert_int_equal(m.joins_present, 1);
	assert_int_equal(
	    fixture_pg_int("SELECT uses_left FROM join_tokens WHERE id = '" JID "'"), 4);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents"), 5);
	assert_int_equal(ledger_audit_count(pool, &n), 0);
	assert_int_equal(n, 3);
	ledger_close(s);
	ledger_close(pool);
}

/*
 * An agent that presented a bundle back on the single proxy comes with it: the pool does not
 * take it for one that never confirmed anything, so forget --never-confirmed leaves it, and
 * it holds the bundle the pool serves when that is the same.
 */
static void
test_confirmed_kept(void **state)
{
	static const char b1[] = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
	struct ledger *pool, *l, *s;
	struct ledger_migration m;
	struct ledger_counts c;
	struct ledger_audit rec;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	char err[1024] = "";
	uint64_t n = 0;
	int send;

	if ((l = ledger_open(dir, err, sizeof(err))) == NULL)
		fail_msg("ledger_open: %s", err);
	assert_int_equal(ledger_set_target(l, NULL, b1), 0);
	ledger_contract_link(l, "held1", 11, T0 + 10); /* delivered b1 at its link */
	ledger_contract_token(11, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_checkin(l, "held1", h, b1, 0, T0 + 20, &send), LEDGER_OK);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_commit(l), 0);
	ledger_close(l);

	pool = fixture_pg_open("m1");
	if ((s = ledger_open_source(src, err, sizeof(err))) == NULL)
		fail_msg("ledger_open_source: %s", err);
	migrate_rec(&rec);
	if (ledger_migrate(pool, s, src, &rec, &m, err, sizeof(err)) != 0)
		fail_msg("ledger_migrate: %s", err);
	ledger_close(s);
	assert_int_equal(m.agents_copied, 5);
	assert_int_equal(ledger_set_target(pool, NULL, b1), 0);
	assert_int_equal(ledger_count(pool, T0 + 30, WEEK, &c), 0);
	assert_int_equal(c.current, 1);         /* held1 holds what the pool serves */
	assert_int_equal(c.never_confirmed, 3); /* a1, a2, a4 (a3 is excluded) */
	assert_int_equal(ledger_begin(pool), 0);
	assert_int_equal(ledger_forget_unconfirmed(pool, T0 + WEEK, &n), LEDGER_OK);
	assert_int_equal(ledger_commit(pool), 0);
	assert_int_equal(n, 3);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents WHERE agent_id = 'held1'"), 1);
	ledger_close(pool);
}

/* A row the pool refuses at the end of the copy: none of the others stays, no record. */
static void
test_failure_copies_nothing(void **state)
{
	struct ledger *pool = fixture_pg_open("m1"), *s;
	struct ledger_migration m;
	struct ledger_audit rec;
	char err[1024] = "";
	uint64_t n;

	fixture_pg_exec("ALTER TABLE join_tokens ADD CONSTRAINT t_no CHECK (id <> '" JID "')");
	if ((s = ledger_open_source(src, err, sizeof(err))) == NULL)
		fail_msg("ledger_open_source: %s", err);
	migrate_rec(&rec);
	assert_int_equal(ledger_migrate(pool, s, src, &rec, &m, err, sizeof(err)), -1);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "t_no"));
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents"), 0);
	assert_int_equal(ledger_audit_count(pool, &n), 0);
	assert_int_equal(n, 0);
	/* The pool's connection is usable afterwards. */
	ledger_contract_link(pool, "b1", 1, T0);
	ledger_close(s);
	ledger_close(pool);
}

/* A source whose chain was altered is refused before anything is written. */
static void
test_broken_chain(void **state)
{
	struct ledger *pool = fixture_pg_open("m1"), *s;
	struct ledger_migration m;
	struct ledger_audit rec;
	char err[1024] = "";

	src_exec("DROP TRIGGER audit_no_update; UPDATE audit SET detail = 'x' WHERE seq = 1");
	if ((s = ledger_open_source(src, err, sizeof(err))) == NULL)
		fail_msg("ledger_open_source: %s", err);
	migrate_rec(&rec);
	assert_int_equal(ledger_migrate(pool, s, src, &rec, &m, err, sizeof(err)), -1);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, "audit chain is broken at record 1"));
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents"), 0);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM audit"), 0);
	ledger_close(s);
	ledger_close(pool);
}

static void
refused(const char *path, const char *why)
{
	char err[1024] = "";
	struct ledger *s = ledger_open_source(path, err, sizeof(err));

	if (s != NULL)
		fail_msg("%s was opened", path);
	print_message("refused: %s\n", err);
	if (strstr(err, why) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", path, err, why);
}

/* Sources that are not a stopped single proxy's whole ledger of this schema. */
static void
test_sources_refused(void **state)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/none.db", dir);
	refused(path, "No such file");
	snprintf(path, sizeof(path), "%s/text.db", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_int_equal(
	    write(fd, "not a database at all, but long enough to be read as one\n", 58), 58);
	close(fd);
	refused(path, "is not an SQLite database");
	/* An SQLite file of another program. */
	snprintf(path, sizeof(path), "%s/other.db", dir);
	{
		sqlite3 *db;
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(
		    sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	refused(path, "is not a carotate ledger");
	/* Cut in half. */
	assert_int_equal(truncate(src, 3 * 1024), 0);
	refused(src, "corrupt");
	make_source();
	src_exec("PRAGMA user_version = 99");
	refused(src, "newer");
	make_source();
	src_exec("PRAGMA user_version = 2");
	refused(src, "older");
	make_source();
	snprintf(path, sizeof(path), "%s/link.db", dir);
	assert_int_equal(symlink(src, path), 0);
	refused(path, "not a regular file");
}

/* A daemon's open ledger: another process holds it open until told to stop (stop closes). */
static void
test_open_elsewhere(void **state)
{
	char err[512] = "", c;
	struct ledger *l;
	int ready[2], stop[2], status;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(stop), 0);
	if ((pid = fork()) == 0) {
		close(ready[0]);
		close(stop[1]);
		if ((l = ledger_open(dir, err, sizeof(err))) == NULL)
			_exit(1);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		while (read(stop[0], &c, 1) > 0)
			;
		ledger_close(l);
		_exit(0);
	}
	close(ready[1]);
	close(stop[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	refused(src, "is open in another process");
	close(stop[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Stopped: taken. */
	assert_non_null(l = ledger_open_source(src, err, sizeof(err)));
	ledger_close(l);
}

/* Only from a single proxy's ledger into a pool's. */
static void
test_engines(void **state)
{
	struct ledger *pool = fixture_pg_open("m1"), *s, *single;
	struct ledger_migration m;
	struct ledger_audit rec;
	char err[1024] = "";

	assert_non_null(s = ledger_open_source(src, err, sizeof(err)));
	migrate_rec(&rec);
	assert_int_equal(ledger_migrate(pool, pool, "x", &rec, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not from postgresql into postgresql"));
	assert_int_equal(ledger_migrate(s, s, src, &rec, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not from sqlite into sqlite"));
	ledger_close(s);
	assert_non_null(single = ledger_open(dir, err, sizeof(err)));
	assert_int_equal(ledger_migrate(single, pool, src, &rec, &m, err, sizeof(err)), -1);
	ledger_close(single);
	ledger_close(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_copy_and_again, setup),
		cmocka_unit_test_setup(test_confirmed_kept, setup),
		cmocka_unit_test_setup(test_failure_copies_nothing, setup),
		cmocka_unit_test_setup(test_broken_chain, setup),
		cmocka_unit_test_setup(test_sources_refused, setup),
		cmocka_unit_test_setup(test_open_elsewhere, setup),
		cmocka_unit_test_setup(test_engines, setup),
	};
	char cmd[600];
	int rc;

	log_init(1, 0, "test_ledger_migrate_pg");
	if ((rc = fixture_pg_connect("test_ledger_migrate_pg")) != 1)
		return rc == 0 ? 0 : 1;
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(src, sizeof(src), "%s/%s", dir, LEDGER_FILE);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	fixture_pg_close();
	return rc;
}
