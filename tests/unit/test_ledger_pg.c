/*
 * The pool's ledger on PostgreSQL, against a real server: the contract checks
 * every engine passes (ledger_contract.c, through members a and b of one
 * pool), and what only a pool has: two members on one database, migrations
 * racing, the chain numbered across members, a server that goes away.
 * tests/unit/pg_run.sh starts the server and passes its connection string in
 * CAROTATE_TEST_PG_DSN; without it every test is skipped, and says why.
 */
#include <sys/wait.h>

#include <poll.h>

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "ledger.h"
#include "fixture_pg.h"
#include "ledger_contract.h"
#include "log.h"

#define TEST_STR_(x) #x
#define TEST_STR(x)  TEST_STR_(x)

/* ---- helpers ---- */

static struct ledger *
lopen(void)
{
	return fixture_pg_open("m1");
}

/* Runs the server control command named by the environment variable var. */
static void
server(const char *var)
{
	const char *cmd = getenv(var);

	assert_non_null(cmd);
	assert_int_equal(system(cmd), 0);
}

/*
 * Every test starts on an empty database, and alone: the connections a failed
 * test left open (in a transaction holding locks) are ended first.
 */
static int
setup(void **state)
{
	/* A test that failed holding a row lock (BEGIN ... FOR UPDATE) left it open: ended. */
	if (PQtransactionStatus(fixture_pg_adm) != PQTRANS_IDLE)
		fixture_pg_try("ROLLBACK");
	if (fixture_pg_try("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                   "WHERE datname = current_database() AND pid <> pg_backend_pid()") != 0)
		return -1;
	return fixture_pg_try("DROP SCHEMA public CASCADE; CREATE SCHEMA public") == 0 ? 0 : -1;
}

/* ---- the contract checks' fixture: two members of one pool ---- */

static struct ledger_contract contract;

static void
contract_reopen(struct ledger_contract *c)
{
	ledger_close(c->l);
	ledger_close(c->other);
	c->l = c->other = NULL; /* closed, should an open fail */
	c->l = fixture_pg_open("a");
	c->other = fixture_pg_open("b");
}

/* Triggers refuse the writes ledger_contract.h names: the next statement sees them. */
static void
contract_refuse(struct ledger_contract *c)
{
	fixture_pg_exec("CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
	                "$$BEGIN RAISE EXCEPTION 'boom'; END$$;"
	                "CREATE TRIGGER boom BEFORE INSERT ON agents FOR EACH ROW "
	                "WHEN (NEW.agent_id = 'boom') EXECUTE FUNCTION boom();"
	                "CREATE TRIGGER boom_verified BEFORE UPDATE ON agents FOR EACH ROW "
	                "WHEN (NEW.verified_at = 4242) EXECUTE FUNCTION boom()");
}

/* An empty database, and members a (l) and b (other) on it. */
static int
contract_setup(void **state)
{
	if (setup(state) != 0)
		return -1;
	contract.l = fixture_pg_open("a");
	contract.other = fixture_pg_open("b");
	contract.reopen = contract_reopen;
	contract.sql_int = fixture_pg_int;
	contract.refuse = contract_refuse;
	contract.counts_in_batch = 0;
	ledger_contract_slack = LEDGER_SEEN_GRANULARITY;
	*state = &contract;
	return 0;
}

static int
contract_teardown(void **state)
{
	ledger_close(contract.l);
	ledger_close(contract.other);
	contract.l = contract.other = NULL;
	return 0;
}

/* ---- tests ---- */

/* The schema is made once, its version kept; a second open migrates nothing. */
static void
test_schema_and_reopen(void **state)
{
	struct ledger *l = lopen();
	char problem[256];

	assert_int_equal(fixture_pg_int("SELECT version FROM carotate_schema"), 4);
	assert_int_equal(ledger_quick_check(l, problem, sizeof(problem)), 1);
	ledger_close(l);
	l = lopen();
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM carotate_schema"), 1);
	ledger_close(l);
	/* A schema from a later carotated is refused with a clear reason. */
	fixture_pg_exec("UPDATE carotate_schema SET version = 99");
	{
		char err[512] = "";

		assert_null(ledger_open_pg(fixture_pg_dsn, "m1", err, sizeof(err)));
		assert_non_null(strstr(err, "schema version 99"));
	}
}

/* Three members starting together: one creates the schema, none fails. */
static void
test_migrate_race(void **state)
{
	pid_t pid[3];
	int i, st;

	for (i = 0; i < 3; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[512] = "", name[8];
			struct ledger *l;
			int ok;

			snprintf(name, sizeof(name), "m%d", i);
			l = ledger_open_pg(fixture_pg_dsn, name, err, sizeof(err));
			if (l == NULL)
				fprintf(stderr, "member %d: %s\n", i, err);
			ok = l != NULL && ledger_set_target(l, S1, B1) == 0;
			if (l != NULL)
				ledger_close(l); /* nothing left for memcheck to call lost */
			_exit(ok ? 0 : 1);
		}
		assert_true(pid[i] > 0);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assert_int_equal(fixture_pg_int("SELECT version FROM carotate_schema"), 4);
	/* And one staging for the three of them. */
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM stagings"), 1);
}

/* Bad members, bad connection strings: refused, and err never holds the password. */
static void
test_open_refused(void **state)
{
	char err[512];

	err[0] = '\0';
	assert_null(ledger_open_pg(fixture_pg_dsn, "bad name", err, sizeof(err)));
	assert_non_null(strstr(err, "member"));
	err[0] = '\0';
	assert_null(ledger_open_pg(fixture_pg_dsn, "", err, sizeof(err)));
	err[0] = '\0';
	assert_null(ledger_open_pg("password=hunter2secret oops", "m1", err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(strstr(err, "hunter2"));
	err[0] = '\0';
	assert_null(ledger_open_pg(
	    "host=/nonexistent/dir dbname=x password=hunter2secret", "m1", err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(strstr(err, "hunter2"));
	/* libpq's message names the socket's path: a password that reads the same is cut out. */
	err[0] = '\0';
	assert_null(ledger_open_pg(
	    "host=/nonexistent/hunter2secret password=hunter2secret", "m1", err, sizeof(err)));
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "/nonexistent/***"));
	print_message("refused: %s\n", err);
}

/*
 * A check-in that changes nothing writes last_seen only every LEDGER_SEEN_GRANULARITY
 * seconds, and another member cannot know of it: an agent whose last check-in went unwritten
 * still counts as active at the end of the window (the gate waits for it), never as gone.
 */
static void
test_window_widened(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_counts c;

	assert_int_equal(ledger_set_target(a, NULL, B1), 0);
	assert_int_equal(ledger_set_target(b, NULL, B1), 0);
	ledger_contract_link(a, "quiet", 1, T0);
	assert_int_equal(ledger_contract_send(a, "quiet", 1, B1, 0, T0 + 1), 0);
	assert_int_equal(ledger_contract_send(a, "quiet", 1, B1, 0, T0 + 100), 0);
	assert_int_equal(
	    fixture_pg_int("SELECT last_seen FROM agents WHERE agent_id = 'quiet'"), T0 + 1);
	/* Seen at T0 + 100: inside a week's window at T0 + WEEK + 50, on either member. */
	assert_int_equal(ledger_count(b, T0 + WEEK + 50, WEEK, &c), 0);
	assert_int_equal(c.active, 1);
	assert_int_equal(c.current, 1);
	/* Past the window and its widening, it is gone. */
	assert_int_equal(ledger_count(b, T0 + WEEK + LEDGER_SEEN_GRANULARITY + 2, WEEK, &c), 0);
	assert_int_equal(c.active, 0);
	ledger_close(a);
	ledger_close(b);
}

/*
 * A row another session holds locked (a member stalled inside its batch) costs a check-in
 * lock_timeout, not the event loop: the call fails alone, the batch commits, and once the
 * lock is gone the agent checks in.
 */
static void
test_lock_waits_bounded(void **state)
{
	struct ledger *a = fixture_pg_open("a");
	struct timespec t0, t1;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	int send;

	assert_int_equal(ledger_set_target(a, NULL, B1), 0);
	ledger_contract_link(a, "held", 1, T0);
	ledger_contract_link(a, "free", 2, T0);
	fixture_pg_exec("BEGIN; SELECT 1 FROM agents WHERE agent_id = 'held' FOR UPDATE");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ledger_contract_token(1, h);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_checkin(a, "held", h, B1, 0, T0 + 10, &send), LEDGER_ERROR);
	ledger_contract_token(2, h);
	assert_int_equal(ledger_checkin(a, "free", h, B1, 0, T0 + 10, &send), LEDGER_OK);
	assert_int_equal(ledger_commit(a), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 20); /* bounded (2 s), where it used to wait for ever */
	fixture_pg_exec("ROLLBACK");
	assert_int_equal(ledger_contract_send(a, "held", 1, B1, 0, T0 + 20), 0);
	ledger_close(a);
}

/*
 * A check-in with nothing to write (the agent holds the bundle, last_seen is recent) reads
 * the row and leaves it alone: another session holding the row locked does not hold it up,
 * and the row's version is the same after it. One that changes the row still waits, and
 * fails alone.
 */
static void
test_steady_takes_no_lock(void **state)
{
	struct ledger *a = fixture_pg_open("a");
	struct timespec t0, t1;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	int64_t version;
	int send = -1;

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	ledger_contract_link(a, "quiet", 1, T0);
	assert_int_equal(ledger_contract_send(a, "quiet", 1, B1, 0, T0 + 1), 0); /* acknowledged */
	version = fixture_pg_int("SELECT xmin::text::bigint FROM agents WHERE agent_id = 'quiet'");
	fixture_pg_exec("BEGIN; SELECT 1 FROM agents WHERE agent_id = 'quiet' FOR UPDATE");
	ledger_contract_token(1, h);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_checkin(a, "quiet", h, B1, 0, T0 + 2, &send), LEDGER_OK);
	assert_int_equal(send, 0);
	/* A forged If-None-Match on the same row: a delivery to write, so it waits and fails. */
	assert_int_equal(ledger_checkin(a, "quiet", h, B0, 0, T0 + 3, &send), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(a, "quiet", h, B1, 0, T0 + 4, &send), LEDGER_OK);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_commit(a), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 10); /* one lock_timeout (2 s), not three */
	fixture_pg_exec("ROLLBACK");
	assert_int_equal(
	    fixture_pg_int("SELECT xmin::text::bigint FROM agents WHERE agent_id = 'quiet'"),
	    version);
	ledger_contract_expect(a, T0 + 5, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	ledger_close(a);
}

/*
 * Another session (a child process) that changes agent "race" (verified_at 4343, in the open
 * staging) in a transaction it commits half a second after the caller returns: the caller's
 * check-in meanwhile waits on the row. ready: the pipe it signals through.
 */
static pid_t
race_writer(int ready[2])
{
	char byte;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	if ((pid = fork()) == 0) {
		PGconn *c = PQconnectdb(fixture_pg_dsn);
		PGresult *r = PQexec(c, "BEGIN; UPDATE agents SET verified_at = 4343, "
		                        "staging = (SELECT max(id) FROM stagings) "
		                        "WHERE agent_id = 'race'");
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

		PQclear(r);
		if (write(ready[1], "x", 1) != 1)
			_exit(2);
		usleep(500000);
		r = PQexec(c, "COMMIT");
		ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		PQfinish(c);
		_exit(ok ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(read(ready[0], &byte, 1), 1);
	return pid;
}

/* The writer committed. */
static void
race_writer_done(pid_t pid, int ready[2])
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(ready[0]);
	close(ready[1]);
}

/*
 * Another session changes an agent's row while a check-in that must write it waits for the
 * row: the check-in writes on top of that change (computed again from the row as it is
 * now), never over it with what it read before.
 */
static void
test_checkin_over_concurrent_write(void **state)
{
	struct ledger *a = fixture_pg_open("a");
	int ready[2], send = -1;
	pid_t pid;

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	ledger_contract_link(a, "race", 1, T0);
	pid = race_writer(ready);
	/* A forged If-None-Match: a delivery to record, read before the other write commits. */
	assert_int_equal(ledger_contract_checkin(a, "race", 1, B0, 0, T0 + 1, &send), LEDGER_OK);
	assert_int_equal(send, 1);
	race_writer_done(pid, ready);
	assert_int_equal(
	    fixture_pg_int("SELECT verified_at FROM agents WHERE agent_id = 'race'"), 4343);
	assert_int_equal(
	    fixture_pg_int("SELECT last_seen FROM agents WHERE agent_id = 'race'"), T0 + 1);
	ledger_contract_expect(a, T0 + 2, 1, 1, 0, 1, 1, 1, 0, 0, 0);
	ledger_close(a);
}

/* Check-in i of a test run: agent id with test token tok, presenting presented. */
static void
run_set(struct ledger_checkin *c, uint8_t *h, const char *id, int tok, const char *presented)
{
	memset(c, 0, sizeof(*c));
	ledger_contract_token(tok, h);
	c->agent_id = id;
	c->token_hash = h;
	c->presented = presented;
	c->result = (enum ledger_result) - 1;
	c->send_bundle = -1;
}

/*
 * A run in which one agent's row is held locked by another session (a member stalled in
 * its batch): that check-in fails alone, after one lock_timeout (2 s), not two; the others
 * of the run are written and answered.
 */
static void
test_run_row_held(void **state)
{
	struct ledger *a = fixture_pg_open("a");
	uint8_t h[3][LEDGER_TOKEN_HASH_LEN];
	struct ledger_checkin run[3];
	struct timespec t0, t1;

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	ledger_contract_link(a, "free1", 1, T0);
	ledger_contract_link(a, "held", 2, T0);
	ledger_contract_link(a, "free2", 3, T0);
	fixture_pg_exec("BEGIN; SELECT 1 FROM agents WHERE agent_id = 'held' FOR UPDATE");
	run_set(&run[0], h[0], "free1", 1, B1);
	run_set(&run[1], h[1], "held", 2, B1);
	run_set(&run[2], h[2], "free2", 3, B1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ledger_begin(a), 0);
	ledger_checkin_run(a, run, 3, T0 + 10);
	assert_int_equal(ledger_commit(a), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fixture_pg_exec("ROLLBACK");
	assert_int_equal(run[0].result, LEDGER_OK);
	assert_int_equal(run[0].send_bundle, 0);
	assert_int_equal(run[1].result, LEDGER_ERROR);
	assert_int_equal(run[1].send_bundle, 0);
	assert_int_equal(run[2].result, LEDGER_OK);
	assert_int_equal(run[2].send_bundle, 0);
	assert_true(t1.tv_sec - t0.tv_sec < 4); /* one lock_timeout */
	/* free1 and free2 acknowledged; held's check-in left nothing */
	ledger_contract_expect(a, T0 + 11, 3, 3, 2, 0, 3, 1, 0, 0, 2);
	assert_int_equal(
	    fixture_pg_int("SELECT acknowledged_at FROM agents WHERE agent_id = 'held'"), -2);
	ledger_close(a);
}

/*
 * A run whose agent another session changes meanwhile: that check-in is made again on the
 * row as the other write left it (never over it with what the run read), and the run's
 * other check-ins are answered as usual.
 */
static void
test_run_over_concurrent_write(void **state)
{
	struct ledger *a = fixture_pg_open("a");
	uint8_t h[2][LEDGER_TOKEN_HASH_LEN];
	struct ledger_checkin run[2];
	int ready[2];
	pid_t pid;

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	ledger_contract_link(a, "race", 1, T0);
	ledger_contract_link(a, "calm", 2, T0);
	pid = race_writer(ready);
	/* race: a forged If-None-Match, a delivery to record; calm: acknowledges */
	run_set(&run[0], h[0], "race", 1, B0);
	run_set(&run[1], h[1], "calm", 2, B1);
	assert_int_equal(ledger_begin(a), 0);
	ledger_checkin_run(a, run, 2, T0 + 1);
	assert_int_equal(ledger_commit(a), 0);
	race_writer_done(pid, ready);
	assert_int_equal(run[0].result, LEDGER_OK);
	assert_int_equal(run[0].send_bundle, 1);
	assert_int_equal(run[1].result, LEDGER_OK);
	assert_int_equal(run[1].send_bundle, 0);
	assert_int_equal(
	    fixture_pg_int("SELECT verified_at FROM agents WHERE agent_id = 'race'"), 4343);
	assert_int_equal(
	    fixture_pg_int("SELECT last_seen FROM agents WHERE agent_id = 'race'"), T0 + 1);
	assert_int_equal(
	    fixture_pg_int("SELECT acknowledged_at FROM agents WHERE agent_id = 'calm'"), T0 + 1);
	ledger_close(a);
}

/*
 * The counts as the first schema computed them, a scan of every agent: what ledger_count
 * must equal. $1 the active window's first second, $2 the open staging, $3 the current
 * bundle (0 for none).
 */
#define SCAN_ACKED     "coalesce(staging = $2 AND acknowledged_at IS NOT NULL, false)"
#define SCAN_DELIVERED "coalesce(staging = $2 AND staged_delivered_at IS NOT NULL, false)"
#define SCAN_LACKING                                                                               \
	"CASE WHEN $2::bigint <> 0 THEN NOT " SCAN_ACKED " ELSE $3::bigint <> 0 AND "              \
	"held_bundle IS DISTINCT FROM $3 END"
#define SCAN_COUNTS                                                                                \
	"SELECT count(*), count(*) FILTER (WHERE NOT x AND act), "                                 \
	"count(*) FILTER (WHERE NOT x AND act AND ack), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND ver), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND dlv), "                                          \
	"count(*) FILTER (WHERE NOT x AND act AND lack), "                                         \
	"count(*) FILTER (WHERE NOT x AND NOT act AND lack), "                                     \
	"count(*) FILTER (WHERE x), count(*) FILTER (WHERE NOT x AND act AND cur), "               \
	"count(*) FILTER (WHERE NOT x AND held_bundle IS NULL AND NOT ack) "                       \
	"FROM (SELECT is_excluded AS x, last_seen >= $1::bigint AS act, held_bundle, " SCAN_ACKED  \
	" AS ack, coalesce(staging = $2 AND verified_at IS NOT NULL, false) AS "                   \
	"ver, " SCAN_DELIVERED " AS dlv, coalesce(held_bundle = $3, false) AS cur, " SCAN_LACKING  \
	" AS lack FROM agents) a"

/* The scan's counts at now over window, for the pool's open staging and bundle cur. */
static void
scan_counts(time_t now, uint64_t window, const char *cur, struct ledger_counts *c)
{
	uint64_t *f[] = { &c->linked, &c->active, &c->acknowledged, &c->verified, &c->delivered,
		&c->pending, &c->inactive_lacking, &c->excluded, &c->current, &c->never_confirmed };
	char since[32], staging[32], bundle[32], sql[128];
	const char *params[3] = { since, staging, bundle };
	uint64_t w = window + LEDGER_SEEN_GRANULARITY; /* ledger_pg_since's widening */
	PGresult *r;
	int i;

	snprintf(since, sizeof(since), "%lld",
	    window >= (uint64_t)now || w >= (uint64_t)now ? 0LL : (long long)now - (long long)w);
	snprintf(staging, sizeof(staging), "%lld",
	    (long long)fixture_pg_int("SELECT coalesce(max(id), 0) FROM stagings "
	                              "WHERE ended_at IS NULL"));
	snprintf(sql, sizeof(sql),
	    "SELECT coalesce(max(id), 0) FROM bundles WHERE bundle_id = '%s'",
	    cur != NULL ? cur : "");
	snprintf(bundle, sizeof(bundle), "%lld", (long long)fixture_pg_int(sql));
	r = PQexecParams(fixture_pg_adm, SCAN_COUNTS, 3, NULL, params, NULL, NULL, 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	for (i = 0; i < (int)(sizeof(f) / sizeof(f[0])); i++)
		*f[i] = strtoull(PQgetvalue(r, 0, i), NULL, 10);
	PQclear(r);
}

static void
add_counts(const char *member, const struct ledger_counts *c, void *arg)
{
	struct ledger_counts *sum = arg;
	const uint64_t *from = (const uint64_t *)c;
	uint64_t *to = (uint64_t *)sum;
	size_t i;

	(void)member;
	for (i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		to[i] += from[i];
}

static void
add_holding(const char *bundle_id, uint64_t agents, void *arg)
{
	*(uint64_t *)arg += agents;
}

/*
 * ledger_count, the per-member split and the holdings all equal the scan, on either member,
 * at windows around the agents' last check-ins (a window the agents fall in and out of).
 */
static void
check_counts(struct ledger *m[2], time_t now, const char *cur)
{
	static const uint64_t windows[] = { 0, 30, 200, 700, 3000, WEEK, UINT64_MAX };
	struct ledger_counts want, got, split;
	uint64_t held;
	size_t i;
	time_t at;

	for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
		at = now + (time_t)(i * 97 % 600);
		scan_counts(at, windows[i], cur, &want);
		assert_int_equal(ledger_count(m[i % 2], at, windows[i], &got), 0);
		assert_memory_equal(&got, &want, sizeof(want));
		memset(&split, 0, sizeof(split));
		assert_int_equal(
		    ledger_count_members(m[(i + 1) % 2], at, windows[i], add_counts, &split), 0);
		assert_memory_equal(&split, &want, sizeof(want));
		held = 0;
		assert_int_equal(ledger_holdings(m[i % 2], at, windows[i], add_holding, &held), 0);
		assert_int_equal(held, want.active);
	}
}

/* One random call of the mix through member l, in a batch of its own. */
static void
random_call(struct ledger *l, unsigned *seed, time_t now)
{
	static const char *const presented[] = { B1, B2, B0, NULL };
	uint8_t h[LEDGER_TOKEN_HASH_LEN], h2[LEDGER_TOKEN_HASH_LEN];
	char id[16];
	int k = rand_r(seed) % 24, op = rand_r(seed) % 10, send;
	uint64_t n;

	snprintf(id, sizeof(id), "r%02d", k);
	ledger_contract_token(k, h);
	assert_int_equal(ledger_begin(l), 0);
	if (op < 5)
		ledger_checkin(
		    l, id, h, presented[rand_r(seed) % 4], rand_r(seed) % 7 == 0, now, &send);
	else if (op == 5)
		ledger_link(l, id, h, now);
	else if (op == 6)
		ledger_exclude(l, id, "test");
	else if (op == 7)
		ledger_include(l, id);
	else if (op == 8 && rand_r(seed) % 3 == 0)
		ledger_forget(l, id);
	else if (op == 8)
		ledger_forget_unconfirmed(l, now - 50, &n);
	else {
		/* A renewal to the same token: it moves the agent to l's member. */
		memcpy(h2, h, sizeof(h2));
		ledger_renew(l, id, h, h2, now);
	}
	if (rand_r(seed) % 8 == 0)
		ledger_rollback(l);
	else
		assert_int_equal(ledger_commit(l), 0);
}

/*
 * The counts kept as agents change (a tally and an index, not a scan) against the scan,
 * after every step of a random mix through two members: check-ins, links, exclusions,
 * forgets, renewals, rolled back batches, new targets, and rows changed by SQL outside
 * carotated (an operator's, a bulk load).
 */
static void
test_counts_match_scan(void **state)
{
	static const char *const cas[] = { S1, S2, NULL }, *const bundles[] = { B1, B2 };
	struct ledger *m[2] = { fixture_pg_open("a"), fixture_pg_open("b") };
	const char *ca = S1, *cur = B1;
	unsigned seed = 20240601;
	time_t now = T0;
	int step, i;

	for (i = 0; i < 2; i++)
		assert_int_equal(ledger_set_target(m[i], ca, cur), 0);
	for (step = 0; step < 300; step++) {
		now += rand_r(&seed) % 3 == 0 ? rand_r(&seed) % 900 : rand_r(&seed) % 20;
		random_call(m[rand_r(&seed) % 2], &seed, now);
		if (step % 37 == 36) {
			ca = cas[rand_r(&seed) % 3];
			cur = bundles[rand_r(&seed) % 2];
			for (i = 0; i < 2; i++)
				assert_int_equal(ledger_set_target(m[i], ca, cur), 0);
		}
		if (step == 100)
			fixture_pg_exec("INSERT INTO agents (agent_id, token_hash, linked_at, "
			                "first_seen, last_seen, linked_by) SELECT 'bulk' || i, "
			                "sha256(int8send(i)), 1, 1, " TEST_STR(
			                    T0) " + i, 'sql' "
			                        "FROM generate_series(1, 40) i");
		if (step == 150)
			fixture_pg_exec(
			    "UPDATE agents SET member = 'c', is_excluded = NOT is_excluded "
			    "WHERE agent_id LIKE 'bulk1%'");
		if (step == 200)
			fixture_pg_exec("DELETE FROM agents WHERE agent_id LIKE 'bulk2%'");
		if (step % 10 == 9)
			check_counts(m, now - 400, cur);
	}
	fixture_pg_exec("TRUNCATE agents");
	check_counts(m, now, cur);
	ledger_close(m[0]);
	ledger_close(m[1]);
}

/*
 * A member that unstages and stages the same set again opens a new staging; the others,
 * which kept the set staged, count that one from their next batch or count on: every
 * member reports the same, and an acknowledgement through any of them counts.
 */
static void
test_staging_reopened(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_counts ca, cb;

	assert_int_equal(ledger_set_target(a, S1, B2), 0);
	assert_int_equal(ledger_set_target(b, S1, B2), 0);
	ledger_contract_link(a, "x1", 1, T0);
	ledger_contract_link(a, "x2", 2, T0);
	assert_int_equal(ledger_contract_send(a, "x1", 1, B2, 0, T0 + 1), 0); /* acknowledged */
	ledger_contract_expect(b, T0 + 2, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	/* b's rotation rolls back: it unstages, then stages the same set again. */
	assert_int_equal(ledger_set_target(b, NULL, B1), 0);
	assert_int_equal(ledger_set_target(b, S1, B2), 0);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM stagings"), 2);
	/* a, which kept S1 staged, counts the new staging too: nothing acknowledged in it yet. */
	assert_int_equal(ledger_count(a, T0 + 3, WEEK, &ca), 0);
	assert_int_equal(ledger_count(b, T0 + 3, WEEK, &cb), 0);
	assert_memory_equal(&ca, &cb, sizeof(ca));
	assert_int_equal(ca.acknowledged, 0);
	/* x2 gets the bundle through b and acknowledges it through a: counted on both. */
	assert_int_equal(ledger_contract_send(b, "x2", 2, B1, 0, T0 + 4), 1);
	assert_int_equal(ledger_contract_send(a, "x2", 2, B2, 0, T0 + 5), 0);
	assert_int_equal(ledger_count(a, T0 + 6, WEEK, &ca), 0);
	assert_int_equal(ledger_count(b, T0 + 6, WEEK, &cb), 0);
	assert_memory_equal(&ca, &cb, sizeof(ca));
	assert_int_equal(ca.acknowledged, 1);
	ledger_close(a);
	ledger_close(b);
}

/* Two members on one database: the same agents, the same counts, through either. */
static void
test_two_members(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_counts ca, cb;
	int i;
	char id[16];

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	assert_int_equal(ledger_set_target(b, S1, B1), 0);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM stagings"), 1);
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "ag%02d", i);
		ledger_contract_link(i % 2 ? a : b, id, i, T0);
	}
	/* Linked through one, checked in through the other, in turn. */
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "ag%02d", i);
		assert_int_equal(
		    ledger_contract_send(i % 2 ? b : a, id, i, B1, i == 3, T0 + 10), 0);
	}
	assert_int_equal(ledger_count(a, T0 + 10, WEEK, &ca), 0);
	assert_int_equal(ledger_count(b, T0 + 10, WEEK, &cb), 0);
	assert_memory_equal(&ca, &cb, sizeof(ca));
	ledger_contract_expect(a, T0 + 10, 20, 20, 20, 1, 20, 0, 0, 0, 20);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM agents WHERE linked_by = 'a'"), 10);
	/* A new staging started through b is the pool's: a sees it once it sets its target. */
	assert_int_equal(ledger_set_target(b, S2, B2), 0);
	assert_int_equal(ledger_set_target(a, S2, B2), 0);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM stagings WHERE ended_at IS NULL"), 1);
	ledger_contract_expect(a, T0 + 11, 20, 20, 0, 0, 0, 20, 0, 0, 0);
	ledger_contract_expect(b, T0 + 11, 20, 20, 0, 0, 0, 20, 0, 0, 0);
	ledger_close(a);
	ledger_close(b);
}

/* ---- members ---- */

struct members_seen {
	int n;
	struct ledger_member m[4];
};

static void
members_cb(const struct ledger_member *m, void *arg)
{
	struct members_seen *s = arg;

	if (s->n < 4)
		s->m[s->n] = *m;
	s->n++;
}

static void
member_state(struct ledger_member *m, const char *name, const char *ca, int64_t started)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->started_at = started;
	snprintf(m->active_ca, sizeof(m->active_ca), "%s", ca);
	snprintf(m->active_server, sizeof(m->active_server), "%s", S1);
	snprintf(m->staged_ca, sizeof(m->staged_ca), "-");
	m->last_reload_at = T0 + 5;
	m->last_reload_ok = 1;
	m->last_check_at = T0 + 6;
	m->last_check_ok = 0;
	snprintf(m->last_error, sizeof(m->last_error), "TLS check: it serves another certificate");
}

/*
 * A beat writes the member's own row, whatever name the caller puts in it; the list
 * gives every member with what it serves, and the age comes from the database's clock.
 */
static void
test_members_beat_list(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct members_seen s = { 0 };
	struct ledger_member m;

	assert_int_equal(ledger_member_list(a, members_cb, &s), 0);
	assert_int_equal(s.n, 0);
	/* a names b in its state: it still writes its own row, never b's. */
	member_state(&m, "b", B1, 1); /* a member clock at 1970: it does not matter */
	assert_int_equal(ledger_member_beat(a, &m), 0);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM members"), 1);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM members WHERE name = 'a'"), 1);
	member_state(&m, "whatever", B2, T0);
	m.last_error[0] = '\0';
	m.last_check_ok = 1;
	assert_int_equal(ledger_member_beat(b, &m), 0);

	/* a's heartbeat 100 s old by the database's clock; b's fresh. */
	fixture_pg_exec("UPDATE members SET heartbeat_at = now() - interval '100 seconds' "
	                "WHERE name = 'a'");
	assert_int_equal(ledger_member_list(b, members_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.m[0].name, "a");
	assert_string_equal(s.m[1].name, "b");
	assert_true(s.m[0].heartbeat_age >= 100 && s.m[0].heartbeat_age < 110);
	assert_true(s.m[1].heartbeat_age >= 0 && s.m[1].heartbeat_age < 5);
	assert_true(s.m[0].heartbeat_at > T0); /* the database's now, not the member's 1 */
	assert_int_equal(s.m[0].started_at, 1);
	assert_string_equal(s.m[0].active_ca, B1);
	assert_string_equal(s.m[0].active_server, S1);
	assert_string_equal(s.m[0].staged_ca, "-");
	assert_int_equal(s.m[0].last_reload_at, T0 + 5);
	assert_int_equal(s.m[0].last_reload_ok, 1);
	assert_int_equal(s.m[0].last_check_at, T0 + 6);
	assert_int_equal(s.m[0].last_check_ok, 0);
	assert_string_equal(s.m[0].last_error, "TLS check: it serves another certificate");
	assert_string_equal(s.m[1].active_ca, B2);
	assert_int_equal(s.m[1].last_check_ok, 1);
	assert_string_equal(s.m[1].last_error, "");

	/* A new beat refreshes the row in place: the age drops, the state is the new one. */
	member_state(&m, "a", B2, T0 + 50);
	assert_int_equal(ledger_member_beat(a, &m), 0);
	s.n = 0;
	assert_int_equal(ledger_member_list(a, members_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(s.m[0].heartbeat_age < 5);
	assert_string_equal(s.m[0].active_ca, B2);
	assert_int_equal(s.m[0].started_at, T0 + 50);

	/* Text a row must not hold is refused; so is a beat inside a batch. */
	member_state(&m, "a", B1, T0);
	snprintf(m.last_error, sizeof(m.last_error), "two\nlines");
	assert_int_equal(ledger_member_beat(a, &m), -1);
	member_state(&m, "a", B1, T0);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_member_beat(a, &m), -1);
	assert_int_equal(ledger_member_list(a, members_cb, &s), -1);
	assert_int_equal(ledger_commit(a), 0);
	assert_int_equal(
	    fixture_pg_int("SELECT count(*) FROM members WHERE active_ca = '" B1 "'"), 0);
	ledger_close(a);
	ledger_close(b);
}

struct split {
	int n;
	char member[4][16];
	struct ledger_counts c[4];
};

static void
split_cb(const char *member, const struct ledger_counts *c, void *arg)
{
	struct split *s = arg;

	if (s->n < 4) {
		snprintf(s->member[s->n], sizeof(s->member[0]), "%s", member);
		s->c[s->n] = *c;
	}
	s->n++;
}

/*
 * Agents count for the member they last came through: link, check-in and renewal
 * move them; the split adds up to the pool's counts.
 */
static void
test_members_split(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	uint8_t h1[LEDGER_TOKEN_HASH_LEN], h2[LEDGER_TOKEN_HASH_LEN];
	struct split s = { 0 };
	struct ledger_counts all;

	assert_int_equal(ledger_set_target(a, S1, B1), 0);
	assert_int_equal(ledger_set_target(b, S1, B1), 0);
	ledger_contract_link(a, "x1", 1, T0);
	ledger_contract_link(a, "x2", 2, T0);
	ledger_contract_link(a, "x3", 3, T0);
	fixture_pg_exec(
	    "INSERT INTO agents (agent_id, token_hash, linked_at, first_seen, last_seen, "
	    "linked_by) VALUES ('old', '\\x"
	    "0000000000000000000000000000000000000000000000000000000000000000', 1, 1, "
	    "1, 'gone')");
	/* x1 acknowledges through b (within the seen granularity: still moved to b). */
	assert_int_equal(ledger_contract_send(b, "x1", 1, B1, 0, T0 + 1), 0);
	/* x2 renews its token through b. */
	ledger_contract_token(2, h1);
	ledger_contract_token(22, h2);
	assert_int_equal(ledger_begin(b), 0);
	assert_int_equal(ledger_renew(b, "x2", h1, h2, T0 + 2), LEDGER_OK);
	assert_int_equal(ledger_commit(b), 0);
	assert_int_equal(ledger_count_members(a, T0 + 3, WEEK, split_cb, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.member[0], ""); /* no member recorded */
	assert_int_equal(s.c[0].linked, 1);
	assert_int_equal(s.c[0].active, 0);
	assert_string_equal(s.member[1], "a");
	assert_int_equal(s.c[1].active, 1);
	assert_int_equal(s.c[1].acknowledged, 0);
	assert_int_equal(s.c[1].pending, 1);
	assert_string_equal(s.member[2], "b");
	assert_int_equal(s.c[2].active, 2);
	assert_int_equal(s.c[2].acknowledged, 1);
	assert_int_equal(s.c[2].pending, 1);
	assert_int_equal(ledger_count(a, T0 + 3, WEEK, &all), 0);
	assert_int_equal(all.active, s.c[1].active + s.c[2].active);
	assert_int_equal(all.acknowledged, s.c[1].acknowledged + s.c[2].acknowledged);
	/* x1 comes back through a: it moves. */
	assert_int_equal(ledger_contract_send(a, "x1", 1, B1, 0, T0 + 4), 0);
	s.n = 0;
	assert_int_equal(ledger_count_members(b, T0 + 5, WEEK, split_cb, &s), 0);
	assert_int_equal(s.c[1].active, 2);
	assert_int_equal(s.c[1].acknowledged, 1);
	assert_int_equal(s.c[2].active, 1);
	assert_int_equal(s.c[2].acknowledged, 0);
	/* Not inside a batch: its connection would count its own writes. */
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_count_members(a, T0 + 5, WEEK, split_cb, &s), -1);
	ledger_rollback(a);
	ledger_close(a);
	ledger_close(b);
}

/* One chain for the pool: numbered across members, each record naming its member. */
static void
test_audit_chain(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_audit r;
	char problem[LEDGER_AUDIT_MAX_DETAIL];
	uint64_t broken;
	int i;

	for (i = 1; i <= 10; i++) {
		ledger_contract_audit_rec(&r, i);
		assert_int_equal(ledger_audit_append(i % 2 ? a : b, &r), 0);
		assert_int_equal(r.seq, (uint64_t)i);
	}
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM audit WHERE member = 'b'"), 5);
	assert_int_equal(ledger_contract_verify(a, &broken, problem, sizeof(problem)), 1);
	/* The triggers refuse changes; with them disabled, the chain shows the change. */
	assert_int_equal(fixture_pg_try("UPDATE audit SET detail = 'x' WHERE seq = 4"), -1);
	assert_int_equal(fixture_pg_try("DELETE FROM audit WHERE seq = 4"), -1);
	assert_int_equal(fixture_pg_try("TRUNCATE audit"), -1);
	fixture_pg_exec("ALTER TABLE audit DISABLE TRIGGER USER");
	assert_int_equal(ledger_quick_check(a, problem, sizeof(problem)), 0);
	print_message("quick_check: %s\n", problem);
	fixture_pg_exec("UPDATE audit SET detail = 'x' WHERE seq = 4");
	assert_int_equal(ledger_contract_verify(b, &broken, problem, sizeof(problem)), 0);
	assert_int_equal(broken, 4);
	assert_non_null(strstr(problem, "record 4 was changed"));
	fixture_pg_exec("DELETE FROM audit WHERE seq = 4");
	assert_int_equal(ledger_contract_verify(b, &broken, problem, sizeof(problem)), 0);
	assert_int_equal(broken, 4);
	assert_non_null(strstr(problem, "record 4 is missing"));
	ledger_close(a);
	/* The next start puts the triggers back. */
	a = fixture_pg_open("a");
	assert_int_equal(ledger_quick_check(a, problem, sizeof(problem)), 1);
	assert_int_equal(fixture_pg_try("DELETE FROM audit WHERE seq = 5"), -1);
	ledger_close(a);
	ledger_close(b);
}

/* Members appending at once: no seq twice, none skipped, the chain intact. */
static void
test_audit_concurrent(void **state)
{
	char problem[LEDGER_AUDIT_MAX_DETAIL];
	uint64_t broken, n;
	pid_t pid[3];
	int i, k, st;
	struct ledger *l;

	for (i = 0; i < 3; i++) {
		if ((pid[i] = fork()) == 0) {
			char err[512] = "", name[8];
			struct ledger_audit r;
			struct ledger *m;

			snprintf(name, sizeof(name), "c%d", i);
			if ((m = ledger_open_pg(fixture_pg_dsn, name, err, sizeof(err))) == NULL)
				_exit(2);
			for (k = 0; k < 20; k++) {
				ledger_contract_audit_rec(&r, k);
				if (ledger_audit_append(m, &r) != 0)
					_exit(1);
			}
			ledger_close(m);
			_exit(0);
		}
		assert_true(pid[i] > 0);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	l = lopen();
	assert_int_equal(ledger_audit_count(l, &n), 0);
	assert_int_equal(n, 60);
	assert_int_equal(fixture_pg_int("SELECT count(DISTINCT member) FROM audit"), 3);
	assert_int_equal(ledger_contract_verify(l, &broken, problem, sizeof(problem)), 1);
	ledger_close(l);
}

/* Named blobs: written once by whichever member comes first, read by every member. */
static void
test_blobs(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	const uint8_t one[] = { 0x00, 0x01, 0xff, 0x5c, 0x78 }, two[] = { 0x02 };
	uint8_t buf[16];
	size_t len = 99;

	assert_int_equal(ledger_blob_get(a, "pool/check", buf, sizeof(buf), &len), 0);
	assert_int_equal(ledger_blob_put_new(a, "pool/check", one, sizeof(one)), 1);
	assert_int_equal(ledger_blob_put_new(b, "pool/check", two, sizeof(two)), 0);
	assert_int_equal(ledger_blob_get(b, "pool/check", buf, sizeof(buf), &len), 1);
	assert_int_equal(len, sizeof(one));
	assert_memory_equal(buf, one, sizeof(one));
	/* Too small a buffer, inside a batch: refused. */
	assert_int_equal(ledger_blob_get(b, "pool/check", buf, 4, &len), -1);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_blob_put_new(a, "pool/other", two, sizeof(two)), -1);
	assert_int_equal(ledger_blob_get(a, "pool/check", buf, sizeof(buf), &len), -1);
	ledger_rollback(a);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM blobs WHERE created_by = 'a'"), 1);
	ledger_close(a);
	ledger_close(b);
}

/* ---- the pool's shared state ---- */

/* A state to put: leaves active and staged (either may be ""), written by call. */
static void
pool_state(struct ledger_pool_state *st, const char *active, const char *staged, const char *call)
{
	memset(st, 0, sizeof(*st));
	snprintf(st->active, sizeof(st->active), "%s", active);
	snprintf(st->staged, sizeof(st->staged), "%s", staged);
	snprintf(st->call, sizeof(st->call), "%s", call);
}

/*
 * ledger_pool_notified on l, waiting up to ms for its socket when nothing came yet:
 * what it returned last.
 */
static int
pool_wait(struct ledger *l, int ms)
{
	struct pollfd pfd;
	int r;

	if ((r = ledger_pool_notified(l)) != 0)
		return r;
	pfd.fd = ledger_pool_socket(l);
	pfd.events = POLLIN;
	assert_true(pfd.fd >= 0);
	if (poll(&pfd, 1, ms) == 1)
		return ledger_pool_notified(l);
	return 0;
}

/*
 * Compare and set on the generation: a put over the generation read wins once; one over
 * a generation that moved on writes nothing. Both members read the same row.
 */
static void
test_pool_state(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_pool_state st, got;

	assert_int_equal(ledger_pool_state_get(a, &got), 0);
	assert_int_equal(got.generation, 0);
	assert_string_equal(got.active, "");
	assert_string_equal(got.staged, "");
	assert_string_equal(got.member, "");
	assert_int_equal(got.written_at, 0);

	pool_state(&st, B1, S1, "rotate");
	assert_int_equal(ledger_pool_state_put(a, &st, 0), 1);
	assert_int_equal(st.generation, 1);
	assert_string_equal(st.member, "a");
	assert_true(st.written_at > T0);
	assert_int_equal(ledger_pool_state_get(b, &got), 0);
	assert_int_equal(got.generation, 1);
	assert_string_equal(got.active, B1);
	assert_string_equal(got.staged, S1);
	assert_string_equal(got.call, "rotate");
	assert_string_equal(got.member, "a");
	assert_int_equal(got.written_at, st.written_at);

	/* b read generation 0 before a wrote: its put is stale, and changes nothing. */
	pool_state(&st, B2, "", "discard");
	assert_int_equal(ledger_pool_state_put(b, &st, 0), 0);
	assert_int_equal(st.generation, 0);
	assert_string_equal(st.member, "");
	assert_int_equal(ledger_pool_state_get(b, &got), 0);
	assert_int_equal(got.generation, 1);
	assert_string_equal(got.active, B1);
	assert_string_equal(got.member, "a");
	/* Over generation 1 it wins. */
	assert_int_equal(ledger_pool_state_put(b, &st, 1), 1);
	assert_int_equal(st.generation, 2);
	assert_int_equal(ledger_pool_state_get(a, &got), 0);
	assert_int_equal(got.generation, 2);
	assert_string_equal(got.active, B2);
	assert_string_equal(got.staged, "");
	assert_string_equal(got.call, "discard");
	assert_string_equal(got.member, "b");

	/* What the schema must not hold is refused, and nothing is written. */
	pool_state(&st, "B1", "", "rotate");
	assert_int_equal(ledger_pool_state_put(a, &st, 2), -1);
	pool_state(
	    &st, "", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "rotate");
	assert_int_equal(ledger_pool_state_put(a, &st, 2), -1);
	pool_state(&st, B1, "", "");
	assert_int_equal(ledger_pool_state_put(a, &st, 2), -1);
	pool_state(&st, B1, "", "two words");
	assert_int_equal(ledger_pool_state_put(a, &st, 2), -1);
	pool_state(&st, B1, "", "rotate");
	assert_int_equal(ledger_pool_state_put(a, &st, INT64_MAX), -1);
	assert_int_equal(ledger_pool_state_put(a, NULL, 2), -1);
	assert_int_equal(ledger_pool_state_get(a, NULL), -1);
	/* Inside a batch: refused (the batch's transaction is not the put's). */
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_pool_state_put(a, &st, 2), -1);
	assert_int_equal(ledger_pool_state_get(a, &got), -1);
	ledger_rollback(a);
	assert_int_equal(fixture_pg_int("SELECT generation FROM pool_state"), 2);
	ledger_close(a);
	ledger_close(b);
}

/*
 * One member holds the pool's lock at a time; taking it twice does not nest; it goes
 * with its holder's connection.
 */
static void
test_pool_lock(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");

	assert_int_equal(ledger_pool_lock(a), 1);
	assert_int_equal(ledger_pool_lock(a), 1);
	assert_int_equal(ledger_pool_lock(b), 0);
	ledger_pool_unlock(a);
	assert_int_equal(ledger_pool_lock(b), 1);
	assert_int_equal(ledger_pool_lock(a), 0);
	ledger_pool_unlock(b);
	ledger_pool_unlock(b); /* not held: quiet */
	assert_int_equal(ledger_pool_lock(a), 1);
	/* Not the transaction-scoped locks' key: a target set meanwhile does not wait on it. */
	assert_int_equal(ledger_set_target(b, S1, B1), 0);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_pool_lock(a), -1);
	ledger_rollback(a);
	/* a's connection ends (its member stopped): the lock went with it. */
	ledger_close(a);
	assert_int_equal(ledger_pool_lock(b), 1);
	/* A connection ended by the server: the same. */
	a = fixture_pg_open("a");
	ledger_pool_unlock(b);
	assert_int_equal(ledger_pool_lock(a), 1);
	fixture_pg_exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_locks "
	                "WHERE locktype = 'advisory' AND objid = 4");
	assert_int_equal(ledger_pool_lock(b), 1);
	assert_int_equal(ledger_pool_lock(a), 0); /* on a new connection: b holds it */
	ledger_close(a);
	ledger_close(b);
}

/*
 * A put is heard by every listening member once committed: a's socket turns readable,
 * ledger_pool_notified says 1, then 0. A stale put notifies nobody; a notification read
 * by another call is still reported.
 */
static void
test_pool_notify(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct ledger_pool_state st, got;

	assert_true(ledger_pool_socket(a) >= 0);
	assert_int_equal(ledger_pool_notified(a), 0);
	pool_state(&st, B1, "", "rotate");
	assert_int_equal(ledger_pool_state_put(b, &st, 0), 1);
	assert_int_equal(pool_wait(a, 5000), 1);
	assert_int_equal(ledger_pool_notified(a), 0);
	/* The writer listens too: it hears its own put. */
	assert_int_equal(pool_wait(b, 5000), 1);

	assert_int_equal(ledger_pool_state_put(b, &st, 0), 0);
	assert_int_equal(pool_wait(a, 300), 0);

	/* Read while another call's statement ran: queued, not lost. */
	assert_int_equal(ledger_pool_state_put(b, &st, 1), 1);
	usleep(200 * 1000);
	assert_int_equal(ledger_pool_state_get(a, &got), 0);
	assert_int_equal(got.generation, 2);
	assert_int_equal(pool_wait(a, 5000), 1);
	assert_int_equal(ledger_pool_notified(a), 0);

	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_pool_notified(a), -1);
	ledger_rollback(a);
	ledger_close(a);
	ledger_close(b);
}

struct applied_seen {
	int n;
	struct ledger_member m[2];
};

static void
applied_cb(const struct ledger_member *m, void *arg)
{
	struct applied_seen *s = arg;

	if (s->n < 2)
		s->m[s->n] = *m;
	s->n++;
}

/*
 * A member's apply result in its row: read back through the list, kept by later beats,
 * its text made one printable line; a member that never beat has a stale heartbeat.
 */
static void
test_member_applied(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	struct applied_seen s = { 0 };
	struct ledger_member m;
	char long_error[400];

	member_state(&m, "a", B1, T0);
	assert_int_equal(ledger_member_beat(a, &m), 0);
	assert_int_equal(ledger_member_list(a, applied_cb, &s), 0);
	assert_int_equal(s.m[0].applied_generation, 0);
	assert_int_equal(s.m[0].applied_ok, 0);
	assert_string_equal(s.m[0].apply_error, "");
	assert_int_equal(s.m[0].applied_at, 0);

	assert_int_equal(ledger_member_applied(a, 3, 0, "cannot write\nnew/\xff"), 0);
	assert_int_equal(ledger_member_beat(a, &m), 0); /* a later beat keeps it */
	s.n = 0;
	assert_int_equal(ledger_member_list(b, applied_cb, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.m[0].applied_generation, 3);
	assert_int_equal(s.m[0].applied_ok, 0);
	assert_string_equal(s.m[0].apply_error, "cannot write?new/?");
	assert_true(s.m[0].applied_at > T0);
	assert_string_equal(s.m[0].active_ca, B1);
	assert_string_equal(s.m[0].last_error, "TLS check: it serves another certificate");

	/* b never beat: its row says so by a heartbeat at the epoch. */
	memset(long_error, 'x', sizeof(long_error) - 1);
	long_error[sizeof(long_error) - 1] = '\0';
	assert_int_equal(ledger_member_applied(b, 4, 1, long_error), 0);
	assert_int_equal(ledger_member_applied(a, 4, 1, NULL), 0);
	s.n = 0;
	assert_int_equal(ledger_member_list(a, applied_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.m[0].applied_generation, 4);
	assert_int_equal(s.m[0].applied_ok, 1);
	assert_string_equal(s.m[0].apply_error, "");
	assert_string_equal(s.m[1].name, "b");
	assert_int_equal(s.m[1].applied_generation, 4);
	assert_int_equal(strlen(s.m[1].apply_error), LEDGER_MAX_MEMBER_ERROR);
	assert_int_equal(s.m[1].heartbeat_at, 0);
	assert_true(s.m[1].heartbeat_age > T0);

	assert_int_equal(ledger_member_applied(a, 0, 1, NULL), -1);
	assert_int_equal(ledger_member_applied(a, (uint64_t)INT64_MAX + 1, 1, NULL), -1);
	assert_int_equal(ledger_begin(a), 0);
	assert_int_equal(ledger_member_applied(a, 5, 1, NULL), -1);
	ledger_rollback(a);
	assert_int_equal(fixture_pg_int("SELECT max(applied_generation) FROM members"), 4);
	ledger_close(a);
	ledger_close(b);
}

/*
 * The server restarts: the lock went with the connections; the members connect again,
 * listen again (the first notified after it says 1: what came meanwhile went unheard),
 * and hear the next put.
 */
static void
test_pool_restart(void **state)
{
	struct ledger *a, *b;
	struct ledger_pool_state st;
	int i, r = -1, lost = 0;

	if (getenv("CAROTATE_TEST_PG_STOP") == NULL || getenv("CAROTATE_TEST_PG_START") == NULL)
		skip();
	a = fixture_pg_open("a");
	b = fixture_pg_open("b");
	assert_int_equal(ledger_pool_lock(a), 1);
	assert_true(ledger_pool_socket(a) >= 0);
	server("CAROTATE_TEST_PG_STOP");
	server("CAROTATE_TEST_PG_START");
	PQreset(fixture_pg_adm);
	/* The server's goodbye may come before the end of the stream: then a second read. */
	for (i = 0; i < 20 && (r = ledger_pool_notified(a)) != 1; i++) {
		if (r == -1) {
			lost = 1;
			assert_int_equal(ledger_pool_socket(a), -1);
		}
		usleep(100 * 1000);
	}
	assert_int_equal(r, 1);
	assert_true(lost);
	assert_int_equal(ledger_pool_notified(a), 0);
	assert_true(ledger_pool_socket(a) >= 0);

	/* Listening again: b's put (on its own new connection) is heard. */
	pool_state(&st, B1, "", "rotate");
	assert_int_equal(ledger_pool_state_put(b, &st, 0), 1);
	assert_int_equal(pool_wait(a, 5000), 1);
	assert_int_equal(ledger_pool_lock(b), 1); /* a's went with its old connection */
	assert_int_equal(ledger_pool_lock(a), 0);
	ledger_close(a);
	ledger_close(b);
}

/* Reads the file the log went to (stderr, redirected by the test). */
static int
file_has(const char *path, const char *needle)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/*
 * The server stops: every call fails cleanly (counts -1, writes LEDGER_ERROR),
 * a known agent's check-in is answered from the cache and recorded nowhere,
 * an unknown one fails; the log never shows the password. The server starts
 * again: the next calls connect anew and work, with what was cut off unrecorded.
 */
static void
test_connection_loss(void **state)
{
	char logpath[] = "/tmp/carotate-test-pglog-XXXXXX", *dsnpw;
	struct ledger_health health;
	struct ledger_counts c;
	struct ledger_audit r;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	int send = -1, saved, fd, i;
	struct ledger *l;

	if (getenv("CAROTATE_TEST_PG_STOP") == NULL || getenv("CAROTATE_TEST_PG_START") == NULL)
		skip();
	assert_true(asprintf(&dsnpw, "%s password=hunter2secret", fixture_pg_dsn) > 0);
	{
		char err[512] = "";

		if ((l = ledger_open_pg(dsnpw, "m1", err, sizeof(err))) == NULL)
			fail_msg("%s", err);
	}
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 1), 0); /* a1 acknowledged */

	ledger_health(l, &health);
	assert_int_equal(health.reachable, 1);
	assert_string_equal(health.last_error, "");
	assert_true((fd = mkstemp(logpath)) >= 0);
	saved = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	server("CAROTATE_TEST_PG_STOP");

	assert_int_equal(ledger_count(l, T0 + 2, WEEK, &c), -1);
	ledger_health(l, &health);
	assert_int_equal(health.reachable, 0);
	assert_true(health.last_error[0] != '\0' && health.last_error_at > 0);
	assert_null(strstr(health.last_error, "hunter2"));
	assert_int_equal(ledger_begin(l), 0); /* an offline batch */
	ledger_contract_token(1, h);
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 0, T0 + 2, &send), LEDGER_OK);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_checkin(l, "a1", h, B0, 0, T0 + 2, &send), LEDGER_OK);
	assert_int_equal(send, 1);
	ledger_contract_token(2, h);
	assert_int_equal(ledger_checkin(l, "a2", h, NULL, 0, T0 + 2, &send), LEDGER_OK);
	assert_int_equal(send, 1);
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 0, T0 + 2, &send), LEDGER_ERROR);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_checkin(l, "ghost", h, B1, 0, T0 + 2, &send), LEDGER_ERROR);
	assert_int_equal(ledger_link(l, "a3", h, T0 + 2), LEDGER_ERROR);
	assert_int_equal(ledger_exclude(l, "a1", "x"), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_audit_rec(&r, 1);
	assert_int_equal(ledger_audit_append(l, &r), -1);
	assert_int_equal(ledger_set_target(l, S1, B1), -1);
	sleep(2); /* past the first back-off: a new attempt, which fails */
	assert_int_equal(ledger_count(l, T0 + 2, WEEK, &c), -1);

	server("CAROTATE_TEST_PG_START");
	PQreset(fixture_pg_adm);
	/* Once the back-off (2 s now) has passed, a call connects again. */
	for (i = 0; i < 10 && ledger_count(l, T0 + 3, WEEK, &c) == -1; i++)
		sleep(1);
	assert_true(i < 10);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	assert_true(file_has(logpath, "cut off"));
	assert_false(file_has(logpath, "hunter2"));
	unlink(logpath);

	ledger_health(l, &health);
	assert_int_equal(health.reachable, 1);
	assert_true(health.last_error[0] != '\0'); /* the last outage's reason stays */
	/* Back: a2's check-in while cut off counted nothing; now it does. */
	ledger_contract_expect(l, T0 + 3, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	assert_int_equal(ledger_contract_send(l, "a2", 2, B1, 0, T0 + 3), 0);
	ledger_contract_expect(l, T0 + 3, 2, 2, 2, 0, 2, 0, 0, 0, 2);
	assert_int_equal(ledger_audit_append(l, &r), 0);
	ledger_close(l);
	free(dsnpw);
}

/* A server restarted between two batches: the next batch works on a new connection. */
static void
test_server_restart(void **state)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts c;
	struct ledger *l;
	int send, i;

	if (getenv("CAROTATE_TEST_PG_STOP") == NULL || getenv("CAROTATE_TEST_PG_START") == NULL)
		skip();
	l = lopen();
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	server("CAROTATE_TEST_PG_STOP");
	server("CAROTATE_TEST_PG_START");
	/* The test's own connection was cut too. */
	PQreset(fixture_pg_adm);
	assert_int_equal(PQstatus(fixture_pg_adm), CONNECTION_OK);
	ledger_contract_link(l, "a2", 2, T0);
	ledger_contract_expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	/* Stopped in the middle of a batch: the batch fails whole, the next one works. */
	ledger_contract_token(1, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 0, T0 + 1, &send), LEDGER_OK);
	server("CAROTATE_TEST_PG_STOP");
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 0, T0 + 2, &send), LEDGER_ERROR);
	ledger_contract_token(2, h);
	assert_int_equal(ledger_checkin(l, "a2", h, B1, 0, T0 + 2, &send), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), -1);
	server("CAROTATE_TEST_PG_START");
	PQreset(fixture_pg_adm);
	for (i = 0; i < 10 && ledger_count(l, T0 + 3, WEEK, &c) == -1; i++)
		sleep(1);
	assert_true(i < 10);
	assert_int_equal(c.acknowledged, 0); /* a1's acknowledgement went with its batch */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 4), 0);
	ledger_contract_expect(l, T0 + 4, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	ledger_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_schema_and_reopen, setup),
		cmocka_unit_test_setup(test_migrate_race, setup),
		cmocka_unit_test_setup(test_open_refused, setup),
		LEDGER_CONTRACT_TESTS(contract_setup, contract_teardown),
		cmocka_unit_test_setup(test_two_members, setup),
		cmocka_unit_test_setup(test_window_widened, setup),
		cmocka_unit_test_setup(test_steady_takes_no_lock, setup),
		cmocka_unit_test_setup(test_checkin_over_concurrent_write, setup),
		cmocka_unit_test_setup(test_run_row_held, setup),
		cmocka_unit_test_setup(test_run_over_concurrent_write, setup),
		cmocka_unit_test_setup(test_counts_match_scan, setup),
		cmocka_unit_test_setup(test_staging_reopened, setup),
		cmocka_unit_test_setup(test_lock_waits_bounded, setup),
		cmocka_unit_test_setup(test_members_beat_list, setup),
		cmocka_unit_test_setup(test_members_split, setup),
		cmocka_unit_test_setup(test_audit_chain, setup),
		cmocka_unit_test_setup(test_audit_concurrent, setup),
		cmocka_unit_test_setup(test_blobs, setup),
		cmocka_unit_test_setup(test_pool_state, setup),
		cmocka_unit_test_setup(test_pool_lock, setup),
		cmocka_unit_test_setup(test_pool_notify, setup),
		cmocka_unit_test_setup(test_member_applied, setup),
		cmocka_unit_test_setup(test_pool_restart, setup),
		cmocka_unit_test_setup(test_connection_loss, setup),
		cmocka_unit_test_setup(test_server_restart, setup),
	};
	int rc;

	log_init(1, 0, "test_ledger_pg");
	if ((rc = fixture_pg_connect("test_ledger_pg")) != 1)
		return rc == 0 ? 0 : 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fixture_pg_close();
	return rc;
}
