/*
 * The pool's named blobs on PostgreSQL (ledger.h): bytes the ledger keeps for
 * the pool without reading them (sealed key material, the pool key's check).
 * A name is written once: the first member to store it wins, and the others
 * read what it stored.
 */
#include <string.h>
#include <time.h>

#include "ledger.h"
#include "ledger_pg.h"
#include "log.h"

/* Outside a batch, on a connection that answers. */
static int
ledger_pg_blob_ready(struct ledger_pg *p, const char *what)
{
	if (p->in_batch) {
		log_warnx("ledger (postgresql): %s inside a batch", what);
		return -1;
	}
	return ledger_pg_ready(p);
}

int
ledger_pg_blob_get(void *self, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int r = 0;

	*len = 0;
	if (ledger_pg_blob_ready(p, "blob_get") == -1)
		return -1;
	ledger_pg_arg_text(&a, name);
	if ((q = ledger_pg_exec(p, LPG_BLOB_GET, &a)) == NULL)
		return -1;
	if (PQntuples(q) == 1 && (r = ledger_pg_blob(q, 0, 0, buf, cap, len) == 0 ? 1 : -1) == -1)
		log_warnx("ledger (postgresql): blob %s is larger than %zu bytes", name, cap);
	PQclear(q);
	return r;
}

int
ledger_pg_blob_put_new(void *self, const char *name, const uint8_t *blob, size_t len)
{
	struct ledger_pg *p = self;
	struct ledger_pg_args a = { 0 };
	PGresult *q;
	int r;

	if (ledger_pg_blob_ready(p, "blob_put_new") == -1)
		return -1;
	ledger_pg_arg_text(&a, name);
	ledger_pg_arg_bytes(&a, blob, len);
	ledger_pg_arg_int(&a, (int64_t)time(NULL));
	ledger_pg_arg_text(&a, p->member);
	if ((q = ledger_pg_exec(p, LPG_BLOB_ADD, &a)) == NULL)
		return -1;
	r = PQntuples(q) == 1;
	PQclear(q);
	return r;
}
