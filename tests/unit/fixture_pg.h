/*
 * The private PostgreSQL server tests/unit/pg_run.sh starts, as the tests of
 * the pool's ledger use it: its connection string, a connection of the test's
 * own (a reader, a tamperer), and the pool's ledger opened as a member.
 * Failures are cmocka failures.
 */
#ifndef CAROTATE_FIXTURE_PG_H
#define CAROTATE_FIXTURE_PG_H

#include <stdint.h>

#include <libpq-fe.h>

struct ledger;

extern const char *fixture_pg_dsn;
extern PGconn *fixture_pg_adm;

/*
 * Connects to $CAROTATE_TEST_PG_DSN for the program name: 1 connected, 0 when
 * it is unset (the program then says it skips, and exits 0), -1 when the
 * server does not answer (said on stderr).
 */
int fixture_pg_connect(const char *name);
void fixture_pg_close(void);
/* The pool's ledger as member, which must open. */
struct ledger *fixture_pg_open(const char *member);
/* One integer through the test's connection (-2 NULL, -1 no row). */
int64_t fixture_pg_int(const char *sql);
/* sql through the test's connection: 0 when it succeeded. */
int fixture_pg_try(const char *sql);
/* sql through the test's connection, which must succeed. */
void fixture_pg_exec(const char *sql);

#endif
