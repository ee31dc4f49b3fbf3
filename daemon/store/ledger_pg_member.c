/*
 * Each pool member's state on PostgreSQL (ledger.h): what it serves, how its
 * last reload and TLS check went, and a heartbeat stamped with the database's
 * clock, so that members whose clocks disagree still agree on who is stale.
 * A member writes its own row only, under the name it opened the ledger with:
 * its beats, and apart from them what it made of the pool's last generation.
 */
#include <stdio.h>
#include <string.h>

#include "ledger.h"
#include "ledger_pg.h"
#include "log.h"

static int ledger_pg_member_ready(struct ledger_pg *, const char *);
static void ledger_pg_member_row(const PGresult *, int, struct ledger_member *);
static void ledger_pg_member_counts(const PGresult *, int, struct ledger_counts *);

/* Outside a batch (its rollback would take the row with it), on a connection that answers. */
static int
ledger_pg_member_ready(struct ledger_pg *p, const char *what)
{
	if (p->in_batch) {
		log_warnx("ledger (postgresql): %s inside a batch", what);
		return -1;
	}
	return ledger_pg_ready(p);
}

int
ledger_pg_member_beat(void *self, const struct ledger_member *m)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };

	if (ledger_pg_member_ready(p, "member_beat") == -1)
		return -1;
	ledger_pg_arg_text(&a, p->member); /* never m->name: a member speaks for itself */
	ledger_pg_arg_int(&a, m->started_at);
	ledger_pg_arg_text(&a, m->active_ca);
	ledger_pg_arg_text(&a, m->active_server);
	ledger_pg_arg_text(&a, m->staged_ca);
	ledger_pg_arg_int(&a, m->last_reload_at);
	ledger_pg_arg_text(&a, m->last_reload_ok ? "true" : "false");
	ledger_pg_arg_int(&a, m->last_check_at);
	ledger_pg_arg_text(&a, m->last_check_ok ? "true" : "false");
	ledger_pg_arg_text(&a, m->last_error);
	return ledger_pg_run(p, LPG_MEMBER_BEAT, &a);
}

/* This member's row only: the front made error one printable line within the schema's limit. */
int
ledger_pg_member_applied(void *self, uint64_t generation, int ok, const char *error)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };

	if (ledger_pg_member_ready(p, "member_applied") == -1)
		return -1;
	ledger_pg_arg_text(&a, p->member);
	ledger_pg_arg_int(&a, (int64_t)generation);
	ledger_pg_arg_text(&a, ok ? "true" : "false");
	ledger_pg_arg_text(&a, error);
	return ledger_pg_run(p, LPG_MEMBER_APPLIED, &a);
}

/* LPG_MEMBER_LIST's row i into m (LEDGER_PG_MEMBER_COLUMNS' order). */
static void
ledger_pg_member_row(const PGresult *q, int i, struct ledger_member *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", PQgetvalue(q, i, 0));
	m->started_at = ledger_pg_int(q, i, 1);
	m->heartbeat_at = ledger_pg_int(q, i, 2);
	m->heartbeat_age = ledger_pg_int(q, i, 3);
	snprintf(m->active_ca, sizeof(m->active_ca), "%s", PQgetvalue(q, i, 4));
	snprintf(m->active_server, sizeof(m->active_server), "%s", PQgetvalue(q, i, 5));
	snprintf(m->staged_ca, sizeof(m->staged_ca), "%s", PQgetvalue(q, i, 6));
	m->last_reload_at = ledger_pg_int(q, i, 7);
	m->last_reload_ok = ledger_pg_int(q, i, 8) != 0;
	m->last_check_at = ledger_pg_int(q, i, 9);
	m->last_check_ok = ledger_pg_int(q, i, 10) != 0;
	snprintf(m->last_error, sizeof(m->last_error), "%s", PQgetvalue(q, i, 11));
	m->applied_generation = (uint64_t)ledger_pg_int(q, i, 12);
	m->applied_ok = ledger_pg_int(q, i, 13) != 0;
	snprintf(m->apply_error, sizeof(m->apply_error), "%s", PQgetvalue(q, i, 14));
	m->applied_at = ledger_pg_int(q, i, 15);
}

int
ledger_pg_member_list(void *self, ledger_member_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_member m;
	PGresult *q;
	int i;

	if (ledger_pg_member_ready(p, "member_list") == -1 ||
	    (q = ledger_pg_exec(p, LPG_MEMBER_LIST, NULL)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++) {
		ledger_pg_member_row(q, i, &m);
		cb(&m, arg);
	}
	PQclear(q);
	return 0;
}

/* LPG_COUNT_MEMBERS' row i, after the member's name, into c (LEDGER_PG_COUNTS' order). */
static void
ledger_pg_member_counts(const PGresult *q, int i, struct ledger_counts *c)
{
	uint64_t *f[] = { &c->linked, &c->active, &c->acknowledged, &c->verified, &c->delivered,
		&c->pending, &c->inactive_lacking, &c->excluded, &c->current, &c->never_confirmed };
	int k;

	memset(c, 0, sizeof(*c));
	for (k = 0; k < (int)(sizeof(f) / sizeof(f[0])); k++)
		*f[k] = (uint64_t)ledger_pg_int(q, i, k + 1);
}

int
ledger_pg_count_members(
    void *self, time_t now, uint64_t window, ledger_member_counts_cb cb, void *arg)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	struct ledger_counts c;
	PGresult *q;
	int i;

	if (ledger_pg_count_args(p, "count_members", now, window, &a) == -1 ||
	    (q = ledger_pg_exec(p, LPG_COUNT_MEMBERS, &a)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(q); i++) {
		ledger_pg_member_counts(q, i, &c);
		cb(PQgetvalue(q, i, 0), &c, arg);
	}
	PQclear(q);
	return 0;
}
