/*
 * The SQLite engine as a migration's source (ledger_migrate): a walk over a
 * single proxy's agents and join tokens, token hashes included, in one read
 * transaction. Only what a pool takes over is read: no staging progress, no
 * bundles (ledger.h says why).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_sqlite.h"
#include "log.h"

#define LEDGER_EXPORT_AGENTS                                                                       \
	"SELECT a.agent_id, a.token_hash, a.linked_at, a.first_seen, a.last_seen, a.is_excluded, " \
	"coalesce(a.exclude_reason, ''), coalesce(b.bundle_id, '') "                               \
	"FROM agents a LEFT JOIN bundles b ON b.id = a.held_bundle ORDER BY a.id"
#define LEDGER_EXPORT_JOINS                                                                        \
	"SELECT id, token_hash, uses_left, expires_at, description, created_at "                   \
	"FROM join_tokens ORDER BY created_at, id"

static int ledger_sqlite_export_text(sqlite3_stmt *, int, char *, size_t);
static int ledger_sqlite_export_hash(sqlite3_stmt *, int, uint8_t *);
static int ledger_sqlite_export_agents(struct ledger_sqlite *, ledger_export_agent_cb, void *);
static int ledger_sqlite_export_joins(struct ledger_sqlite *, ledger_export_join_cb, void *);

/* A text column that fits size (the schema's limits): 0, or -1 for a row it does not allow. */
static int
ledger_sqlite_export_text(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);

	if (s == NULL || n < 0 || (size_t)n >= size)
		return -1;
	memcpy(buf, s, (size_t)n);
	buf[n] = '\0';
	return 0;
}

static int
ledger_sqlite_export_hash(sqlite3_stmt *st, int col, uint8_t *hash)
{
	if (sqlite3_column_bytes(st, col) != LEDGER_TOKEN_HASH_LEN)
		return -1;
	memcpy(hash, sqlite3_column_blob(st, col), LEDGER_TOKEN_HASH_LEN);
	return 0;
}

static int
ledger_sqlite_export_agents(struct ledger_sqlite *l, ledger_export_agent_cb cb, void *arg)
{
	struct ledger_export_agent a;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(l->db, LEDGER_EXPORT_AGENTS, -1, &st, NULL) != SQLITE_OK)
		return ledger_sqlite_sqlerr(l, "export agents");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		if (ledger_sqlite_export_text(st, 0, a.id, sizeof(a.id)) == -1 ||
		    ledger_sqlite_export_hash(st, 1, a.hash) == -1 ||
		    ledger_sqlite_export_text(st, 6, a.reason, sizeof(a.reason)) == -1 ||
		    ledger_sqlite_export_text(st, 7, a.held, sizeof(a.held)) == -1) {
			log_warnx("ledger %s: an agent row the schema does not allow", l->path);
			r = -1;
			break;
		}
		a.linked_at = sqlite3_column_int64(st, 2);
		a.first_seen = sqlite3_column_int64(st, 3);
		a.last_seen = sqlite3_column_int64(st, 4);
		a.excluded = sqlite3_column_int(st, 5) != 0;
		r = cb(&a, arg);
	}
	OPENSSL_cleanse(&a, sizeof(a));
	if (r == 0 && rc != SQLITE_DONE)
		r = ledger_sqlite_sqlerr(l, "export agents");
	sqlite3_finalize(st);
	return r;
}

static int
ledger_sqlite_export_joins(struct ledger_sqlite *l, ledger_export_join_cb cb, void *arg)
{
	struct ledger_join j;
	sqlite3_stmt *st = NULL;
	int64_t uses;
	int rc, r = 0;

	if (sqlite3_prepare_v2(l->db, LEDGER_EXPORT_JOINS, -1, &st, NULL) != SQLITE_OK)
		return ledger_sqlite_sqlerr(l, "export join tokens");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&j, 0, sizeof(j));
		uses = sqlite3_column_int64(st, 2);
		if (ledger_sqlite_export_text(st, 0, j.id, sizeof(j.id)) == -1 ||
		    ledger_sqlite_export_hash(st, 1, j.hash) == -1 ||
		    ledger_sqlite_export_text(st, 4, j.description, sizeof(j.description)) == -1 ||
		    uses < 0 || uses > UINT32_MAX) {
			log_warnx("ledger %s: a join token row the schema does not allow", l->path);
			r = -1;
			break;
		}
		j.uses_left = (uint32_t)uses;
		j.expires_at = sqlite3_column_int64(st, 3);
		j.created_at = sqlite3_column_int64(st, 5);
		r = cb(&j, arg);
	}
	OPENSSL_cleanse(&j, sizeof(j));
	if (r == 0 && rc != SQLITE_DONE)
		r = ledger_sqlite_sqlerr(l, "export join tokens");
	sqlite3_finalize(st);
	return r;
}

/* One read transaction: the agents and join tokens of one moment. */
int
ledger_sqlite_export_walk(
    void *self, ledger_export_agent_cb agent, ledger_export_join_cb join, void *arg)
{
	struct ledger_sqlite *l = self;
	int r;

	if (l->in_batch) {
		log_warnx("ledger %s: export inside a batch", l->path);
		return -1;
	}
	if (sqlite3_exec(l->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return ledger_sqlite_sqlerr(l, "export");
	r = ledger_sqlite_export_agents(l, agent, arg);
	if (r == 0)
		r = ledger_sqlite_export_joins(l, join, arg);
	sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
	return r;
}
