/* The private PostgreSQL server of the pool's ledger tests (fixture_pg.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "fixture_pg.h"
#include "ledger.h"

const char *fixture_pg_dsn;
PGconn *fixture_pg_adm;

static void fixture_pg_quiet(void *, const char *);

/* The server's notices (DROP ... CASCADE) are not the test's output. */
static void
fixture_pg_quiet(void *arg, const char *msg)
{
}

int
fixture_pg_connect(const char *name)
{
	const char *dsn = getenv("CAROTATE_TEST_PG_DSN");

	if (dsn == NULL || dsn[0] == '\0') {
		printf("%s: skipped: CAROTATE_TEST_PG_DSN is not set (run it through "
		       "tests/unit/pg_run.sh, which starts a PostgreSQL server)\n",
		    name);
		return 0;
	}
	fixture_pg_dsn = dsn;
	fixture_pg_adm = PQconnectdb(dsn);
	if (PQstatus(fixture_pg_adm) != CONNECTION_OK) {
		fprintf(stderr, "%s: cannot connect: %s", name, PQerrorMessage(fixture_pg_adm));
		return -1;
	}
	PQsetNoticeProcessor(fixture_pg_adm, fixture_pg_quiet, NULL);
	/* A lock a broken engine never releases fails the test instead of hanging it. */
	PQclear(PQexec(fixture_pg_adm, "SET lock_timeout = '20s'"));
	return 1;
}

void
fixture_pg_close(void)
{
	PQfinish(fixture_pg_adm);
	fixture_pg_adm = NULL;
}

struct ledger *
fixture_pg_open(const char *member)
{
	char err[512] = "";
	struct ledger *l = ledger_open_pg(fixture_pg_dsn, member, err, sizeof(err));

	if (l == NULL)
		fail_msg("ledger_open_pg: %s", err);
	return l;
}

int64_t
fixture_pg_int(const char *sql)
{
	PGresult *r = PQexec(fixture_pg_adm, sql);
	int64_t v = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(fixture_pg_adm));
	if (PQntuples(r) > 0)
		v = PQgetisnull(r, 0, 0) ? -2 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

int
fixture_pg_try(const char *sql)
{
	PGresult *r = PQexec(fixture_pg_adm, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	PQclear(r);
	return ok ? 0 : -1;
}

void
fixture_pg_exec(const char *sql)
{
	if (fixture_pg_try(sql) != 0)
		fail_msg("%s: %s", sql, PQerrorMessage(fixture_pg_adm));
}
