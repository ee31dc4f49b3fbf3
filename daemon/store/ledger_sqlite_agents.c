/*
 * The SQLite engine's agents: link, check-in, token renewal, exclusions, join
 * tokens, the staging target and the counts over the in-memory index.
 *
 * - A staging is one episode of one staged CA: it starts when ledger_set_target names
 *   a CA other than the one recorded, and ends when it names another one
 *   (or none). Delivered/acknowledged/verified belong to an episode, so a CA
 *   staged again after a discard starts from nothing: in between, agents were
 *   sent bundles without it.
 * - Acknowledged: the agent presented the id of the bundle we last delivered to
 *   it, and that delivery happened during the episode (every bundle served
 *   while a CA is staged holds it).
 * - An agent's progress in the open staging lives in its agents row, tagged with
 *   the staging id (values tagged with an older staging mean nothing): a
 *   check-in writes one row. A check-in that changes nothing but last_seen
 *   writes nothing until last_seen has moved by LEDGER_SEEN_GRANULARITY; the
 *   index has last_seen to the second. Only agents that lack nothing take that
 *   path (a lacking agent is always sent the bundle, which is written), so a
 *   last_seen a few minutes old after a restart never hides a pending agent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "ledger.h"
#include "ledger_sqlite.h"
#include "log.h"
#include "xmalloc.h"

/* The columns of an agents row that a check-in reads and writes; *_set: not NULL. */
struct ledger_row {
	int64_t id, delivered, held, last_seen, staging;
	int64_t staged_delivered_at, acknowledged_at, verified_at;
	int excluded, delivered_set, acked, verified;
};

/* Active agents holding one bundle (ledger_sqlite_holdings). */
struct ledger_holding {
	uint16_t bundle;
	uint64_t agents;
};

static int ledger_sqlite_bundle_is(const struct ledger_sqlite *, int64_t, const char *);
static void ledger_sqlite_bind_ref(sqlite3_stmt *, int, int64_t);
static void ledger_sqlite_bind_time(sqlite3_stmt *, int, int, int64_t);
static int ledger_sqlite_row_same(const struct ledger_row *, const struct ledger_row *);
static int ledger_sqlite_write_row(struct ledger_sqlite *, const struct ledger_row *);
static enum ledger_result ledger_sqlite_do_link(
    struct ledger_sqlite *, const char *, const uint8_t *, time_t);
static enum ledger_result ledger_sqlite_do_checkin(
    struct ledger_sqlite *, const char *, const uint8_t *, const char *, int, time_t, int *);
static enum ledger_result ledger_sqlite_do_flag(
    struct ledger_sqlite *, enum ledger_st, const char *, const char *);
static int ledger_sqlite_intern_bundle(struct ledger_sqlite *, const char *, time_t, int64_t *);
static int ledger_sqlite_switch_staging(struct ledger_sqlite *, const char *, time_t, int64_t *);
static int64_t ledger_sqlite_since(time_t, uint64_t);
static int ledger_sqlite_lacking(const struct ledger_sqlite *, const struct ledger_entry *);
static void ledger_sqlite_select(uint64_t *, size_t, size_t);
static int ledger_sqlite_cmp_u64(const void *, const void *);
static enum ledger_result ledger_sqlite_find(
    struct ledger_sqlite *, const char *, const uint8_t *, struct ledger_row *);
static int ledger_sqlite_cmp_holding(const void *, const void *);

/* 1 when bundle row id is the bundle named s (bundle ids are public: no constant time). */
static int
ledger_sqlite_bundle_is(const struct ledger_sqlite *l, int64_t id, const char *s)
{
	return s != NULL && id > 0 && (size_t)id < l->nbundles && strcmp(l->bundles[id], s) == 0;
}

/* Binds a reference to bundles(id); 0 means none. */
static void
ledger_sqlite_bind_ref(sqlite3_stmt *st, int i, int64_t ref)
{
	if (ref > 0)
		sqlite3_bind_int64(st, i, ref);
	else
		sqlite3_bind_null(st, i);
}

static void
ledger_sqlite_bind_time(sqlite3_stmt *st, int i, int set, int64_t t)
{
	if (set)
		sqlite3_bind_int64(st, i, t);
	else
		sqlite3_bind_null(st, i);
}

static int
ledger_sqlite_row_same(const struct ledger_row *a, const struct ledger_row *b)
{
	return a->delivered == b->delivered && a->held == b->held && a->staging == b->staging &&
	       a->delivered_set == b->delivered_set && a->acked == b->acked &&
	       a->verified == b->verified;
}

static int
ledger_sqlite_write_row(struct ledger_sqlite *l, const struct ledger_row *w)
{
	sqlite3_stmt *st = l->st[LST_CHECKIN];
	int rc;

	sqlite3_bind_int64(st, 1, w->id);
	sqlite3_bind_int64(st, 2, w->last_seen);
	ledger_sqlite_bind_ref(st, 3, w->held);
	ledger_sqlite_bind_ref(st, 4, w->delivered);
	ledger_sqlite_bind_ref(st, 5, w->staging);
	ledger_sqlite_bind_time(st, 6, w->delivered_set, w->staged_delivered_at);
	ledger_sqlite_bind_time(st, 7, w->acked, w->acknowledged_at);
	ledger_sqlite_bind_time(st, 8, w->verified, w->verified_at);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "checkin");
}

enum ledger_result
ledger_sqlite_link(
    void *self, const char *agent_id, const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	struct ledger_sqlite *l = self;
	size_t mark = l->npend;

	if (ledger_sqlite_call_begin(l, "link") == -1)
		return LEDGER_ERROR;
	return ledger_sqlite_call_end(l, ledger_sqlite_do_link(l, agent_id, token_hash, now), mark);
}

/*
 * A new agent: it holds nothing we know of until it presents the bundle sent
 * with the link back. An id that exists is LEDGER_EXISTS and nothing changes:
 * the shared linking key must never let one host take another's place.
 */
static enum ledger_result
ledger_sqlite_do_link(
    struct ledger_sqlite *l, const char *agent_id, const uint8_t *token_hash, time_t now)
{
	sqlite3_stmt *st = l->st[LST_LINK];
	struct ledger_entry e = { 0 };
	int64_t id;
	int rc, excluded, delivered = l->staging != 0 && l->cur != 0;

	sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, token_hash, LEDGER_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now);
	ledger_sqlite_bind_ref(st, 4, l->cur);
	ledger_sqlite_bind_ref(st, 5, l->staging);
	ledger_sqlite_bind_time(st, 6, delivered, now);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		ledger_sqlite_done(st);
		return LEDGER_EXISTS;
	}
	if (rc != SQLITE_ROW) {
		ledger_sqlite_done(st);
		return ledger_sqlite_sqlerr(l, "link"), LEDGER_ERROR;
	}
	id = sqlite3_column_int64(st, 0);
	excluded = sqlite3_column_int(st, 1);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, "link"), LEDGER_ERROR;
	if (id < 1 || id > LEDGER_MAX_ROWID) {
		log_warnx("ledger %s: agent id %lld is out of range", l->path, (long long)id);
		return LEDGER_ERROR;
	}
	e.last_seen = ledger_sqlite_clamp(now);
	e.flags = LEDGER_F_EXISTS | (excluded ? LEDGER_F_EXCLUDED : 0) |
	          (delivered ? LEDGER_F_DELIVERED : 0);
	ledger_sqlite_pend(l, id, LEDGER_U_SET, &e);
	l->batch_new++;
	return LEDGER_OK;
}

enum ledger_result
ledger_sqlite_checkin(void *self, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *presented, int canary, time_t now,
    int *send_bundle)
{
	struct ledger_sqlite *l = self;
	size_t mark = l->npend;
	enum ledger_result r;

	*send_bundle = 0;
	if (ledger_sqlite_call_begin(l, "checkin") == -1)
		return LEDGER_ERROR;
	r = ledger_sqlite_do_checkin(l, agent_id, token_hash, presented, canary, now, send_bundle);
	if (r != LEDGER_OK)
		*send_bundle = 0;
	return ledger_sqlite_call_end(l, r, mark);
}

/* Finds the agent and checks its token in constant time; LEDGER_OK when it matches. */
static enum ledger_result
ledger_sqlite_find(
    struct ledger_sqlite *l, const char *agent_id, const uint8_t *token_hash, struct ledger_row *r)
{
	sqlite3_stmt *st = l->st[LST_FIND];
	const void *stored;
	enum ledger_result res;
	int rc;

	sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		ledger_sqlite_done(st);
		return LEDGER_UNKNOWN_AGENT;
	}
	if (rc != SQLITE_ROW) {
		ledger_sqlite_done(st);
		return ledger_sqlite_sqlerr(l, "find agent"), LEDGER_ERROR;
	}
	stored = sqlite3_column_blob(st, 1);
	res = stored != NULL && sqlite3_column_bytes(st, 1) == LEDGER_TOKEN_HASH_LEN &&
	              CRYPTO_memcmp(stored, token_hash, LEDGER_TOKEN_HASH_LEN) == 0
	          ? LEDGER_OK
	          : LEDGER_BAD_TOKEN;
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(st, 0);
	r->delivered = sqlite3_column_int64(st, 2);
	r->held = sqlite3_column_int64(st, 3);
	r->excluded = sqlite3_column_int(st, 4) != 0;
	r->last_seen = sqlite3_column_int64(st, 5);
	r->staging = sqlite3_column_int64(st, 6);
	r->delivered_set = sqlite3_column_type(st, 7) != SQLITE_NULL;
	r->staged_delivered_at = sqlite3_column_int64(st, 7);
	r->acked = sqlite3_column_type(st, 8) != SQLITE_NULL;
	r->acknowledged_at = sqlite3_column_int64(st, 8);
	r->verified = sqlite3_column_type(st, 9) != SQLITE_NULL;
	r->verified_at = sqlite3_column_int64(st, 9);
	ledger_sqlite_done(st);
	if (res == LEDGER_OK && (r->id < 1 || r->id > LEDGER_MAX_ROWID)) {
		log_warnx("ledger %s: agent id %lld is out of range", l->path, (long long)r->id);
		return LEDGER_ERROR;
	}
	return res;
}

/*
 * A check-in: the agent holds what it presents only if that is the bundle we
 * last delivered to it; it acknowledged the staged CA only if that delivery
 * happened during this staging. A 304 only for an agent that presents the
 * current bundle and is on record as having been sent it (during the staging,
 * if one is open), so a delivery lost with a failed batch is sent again
 * instead of never counting. Such an agent lacks nothing.
 */
static enum ledger_result
ledger_sqlite_do_checkin(struct ledger_sqlite *l, const char *agent_id, const uint8_t *token_hash,
    const char *presented, int canary, time_t now, int *send)
{
	struct ledger_row r, w;
	struct ledger_entry e = { 0 };
	enum ledger_result res;
	int holds;

	if ((res = ledger_sqlite_find(l, agent_id, token_hash, &r)) != LEDGER_OK)
		return res;
	w = r;
	if (l->staging != 0 && r.staging != l->staging) {
		w.staging = l->staging;
		w.delivered_set = w.acked = w.verified = 0;
	}
	if ((holds = ledger_sqlite_bundle_is(l, r.delivered, presented)))
		w.held = r.delivered;
	if (l->staging != 0 && holds && w.delivered_set && !w.acked) {
		w.acked = 1;
		w.acknowledged_at = now;
	}
	if (l->staging != 0 && canary && !w.verified) {
		w.verified = 1;
		w.verified_at = now;
	}
	*send = l->cur != 0 &&
	        !(holds && r.delivered == l->cur && (l->staging == 0 || w.delivered_set));
	if (*send) {
		w.delivered = l->cur;
		if (l->staging != 0) {
			w.delivered_set = 1;
			w.staged_delivered_at = now;
		}
	}
	w.last_seen = now;
	if ((*send || !ledger_sqlite_row_same(&r, &w) || now < r.last_seen ||
	        now - r.last_seen >= LEDGER_SEEN_GRANULARITY) &&
	    ledger_sqlite_write_row(l, &w) == -1)
		return LEDGER_ERROR;
	e.last_seen = ledger_sqlite_clamp(now);
	e.held = w.held > 0 && (size_t)w.held < l->nbundles ? (uint16_t)w.held : 0;
	e.flags = LEDGER_F_EXISTS | (r.excluded ? LEDGER_F_EXCLUDED : 0) |
	          ledger_sqlite_staged_flags(l, w.staging, w.delivered_set, w.acked, w.verified);
	ledger_sqlite_pend(l, w.id, LEDGER_U_SET, &e);
	return LEDGER_OK;
}

enum ledger_result
ledger_sqlite_exclude(void *self, const char *agent_id, const char *reason)
{
	struct ledger_sqlite *l = self;
	size_t mark = l->npend;

	if (ledger_sqlite_call_begin(l, "exclude") == -1)
		return LEDGER_ERROR;
	return ledger_sqlite_call_end(
	    l, ledger_sqlite_do_flag(l, LST_EXCLUDE, agent_id, reason), mark);
}

enum ledger_result
ledger_sqlite_include(void *self, const char *agent_id)
{
	struct ledger_sqlite *l = self;
	size_t mark = l->npend;

	if (ledger_sqlite_call_begin(l, "include") == -1)
		return LEDGER_ERROR;
	return ledger_sqlite_call_end(
	    l, ledger_sqlite_do_flag(l, LST_INCLUDE, agent_id, NULL), mark);
}

/* Exclude or include (which); the index changes only that flag at commit. */
static enum ledger_result
ledger_sqlite_do_flag(
    struct ledger_sqlite *l, enum ledger_st which, const char *agent_id, const char *reason)
{
	sqlite3_stmt *st = l->st[which];
	struct ledger_entry e = { 0 };
	int64_t id;
	int rc;

	sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_TRANSIENT);
	if (reason != NULL)
		sqlite3_bind_text(st, 2, reason, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		ledger_sqlite_done(st);
		if (rc == SQLITE_DONE)
			return LEDGER_UNKNOWN_AGENT;
		return ledger_sqlite_sqlerr(l, ledger_sqlite_sql[which]), LEDGER_ERROR;
	}
	id = sqlite3_column_int64(st, 0);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, ledger_sqlite_sql[which]), LEDGER_ERROR;
	if (id < 1 || id > LEDGER_MAX_ROWID)
		return LEDGER_ERROR;
	ledger_sqlite_pend(l, id, which == LST_EXCLUDE ? LEDGER_U_EXCLUDE : LEDGER_U_INCLUDE, &e);
	return LEDGER_OK;
}

uint64_t
ledger_sqlite_total(const void *self)
{
	const struct ledger_sqlite *l = self;
	return l->nagents + (l->in_batch ? l->batch_new : 0);
}

/* Reads the join token and checks it: hash (constant time), expiry, uses left. */
static enum ledger_result
ledger_sqlite_do_join_check(
    struct ledger_sqlite *l, const char *join_id, const uint8_t *hash, time_t now)
{
	sqlite3_stmt *st = l->st[LST_JOIN_FIND];
	const void *stored;
	int rc, ok;

	sqlite3_bind_text(st, 1, join_id, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		ledger_sqlite_done(st);
		return LEDGER_NOT_FOUND;
	}
	if (rc != SQLITE_ROW) {
		ledger_sqlite_done(st);
		return ledger_sqlite_sqlerr(l, "find join token"), LEDGER_ERROR;
	}
	stored = sqlite3_column_blob(st, 0);
	ok = stored != NULL && sqlite3_column_bytes(st, 0) == LEDGER_TOKEN_HASH_LEN &&
	     CRYPTO_memcmp(stored, hash, LEDGER_TOKEN_HASH_LEN) == 0;
	ok = ok && sqlite3_column_int64(st, 1) > 0 && sqlite3_column_int64(st, 2) > (int64_t)now;
	ledger_sqlite_done(st);
	return ok ? LEDGER_OK : LEDGER_NOT_FOUND;
}

enum ledger_result
ledger_sqlite_join_check(
    void *self, const char *join_id, const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	struct ledger_sqlite *l = self;
	if (ledger_sqlite_call_begin(l, "join_check") == -1)
		return LEDGER_ERROR;
	return ledger_sqlite_do_join_check(l, join_id, join_hash, now);
}

/* One use of the token, then the link; a savepoint undoes the use when the link fails. */
static enum ledger_result
ledger_sqlite_do_link_join(struct ledger_sqlite *l, const char *agent_id, const uint8_t *token_hash,
    const char *join_id, const uint8_t *join_hash, time_t now)
{
	sqlite3_stmt *st = l->st[LST_JOIN_USE];
	enum ledger_result r;
	int rc;

	if ((r = ledger_sqlite_do_join_check(l, join_id, join_hash, now)) != LEDGER_OK)
		return r;
	if (ledger_sqlite_run(l, LST_SAVEPOINT) == -1)
		return LEDGER_ERROR;
	sqlite3_bind_text(st, 1, join_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE || sqlite3_changes(l->db) != 1)
		r = rc != SQLITE_DONE ? (ledger_sqlite_sqlerr(l, "use join token"), LEDGER_ERROR)
		                      : LEDGER_NOT_FOUND;
	else
		r = ledger_sqlite_do_link(l, agent_id, token_hash, now);
	if (r != LEDGER_OK && !sqlite3_get_autocommit(l->db))
		ledger_sqlite_run(l, LST_ROLLBACK_TO);
	if (!sqlite3_get_autocommit(l->db) && ledger_sqlite_run(l, LST_RELEASE) == -1)
		return LEDGER_ERROR;
	return r;
}

enum ledger_result
ledger_sqlite_link_join(void *self, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *join_id,
    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	struct ledger_sqlite *l = self;
	size_t mark = l->npend;
	uint64_t new = l->batch_new;
	enum ledger_result r;

	if (ledger_sqlite_call_begin(l, "link") == -1)
		return LEDGER_ERROR;
	r = ledger_sqlite_do_link_join(l, agent_id, token_hash, join_id, join_hash, now);
	if (r != LEDGER_OK) {
		/* The savepoint undid both writes: so goes the index update. */
		l->npend = mark;
		l->batch_new = new;
	}
	return ledger_sqlite_call_end(l, r, mark);
}

enum ledger_result
ledger_sqlite_renew(void *self, const char *agent_id, const uint8_t old_hash[LEDGER_TOKEN_HASH_LEN],
    const uint8_t new_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_RENEW];
	struct ledger_entry e = { 0 };
	struct ledger_row r;
	size_t mark = l->npend;
	enum ledger_result res;
	int rc;

	if (ledger_sqlite_call_begin(l, "renew") == -1)
		return LEDGER_ERROR;
	if ((res = ledger_sqlite_find(l, agent_id, old_hash, &r)) != LEDGER_OK)
		return ledger_sqlite_call_end(l, res, mark);
	sqlite3_bind_int64(st, 1, r.id);
	sqlite3_bind_blob(st, 2, new_hash, LEDGER_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, now);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_call_end(
		    l, (ledger_sqlite_sqlerr(l, "renew"), LEDGER_ERROR), mark);
	e.last_seen = ledger_sqlite_clamp(now > r.last_seen ? now : r.last_seen);
	ledger_sqlite_pend(l, r.id, LEDGER_U_SEEN, &e);
	return LEDGER_OK;
}

/* Runs a DELETE ... RETURNING id on agents; each row deleted leaves the index at commit. */
static enum ledger_result
ledger_sqlite_do_delete(struct ledger_sqlite *l, sqlite3_stmt *st, uint64_t *n)
{
	struct ledger_entry e = { 0 };
	int64_t id;
	int rc;

	*n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (id >= 1 && id <= LEDGER_MAX_ROWID)
			ledger_sqlite_pend(l, id, LEDGER_U_FORGET, &e);
		(*n)++;
	}
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, "forget"), LEDGER_ERROR;
	return LEDGER_OK;
}

enum ledger_result
ledger_sqlite_forget(void *self, const char *agent_id)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_FORGET];
	size_t mark = l->npend;
	enum ledger_result r;
	uint64_t n;

	if (ledger_sqlite_call_begin(l, "forget") == -1)
		return LEDGER_ERROR;
	sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_TRANSIENT);
	r = ledger_sqlite_do_delete(l, st, &n);
	if (r == LEDGER_OK && n == 0)
		r = LEDGER_UNKNOWN_AGENT;
	return ledger_sqlite_call_end(l, r, mark);
}

enum ledger_result
ledger_sqlite_forget_unconfirmed(void *self, int64_t before, uint64_t *n)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_FORGET_UNCONFIRMED];
	size_t mark = l->npend;

	*n = 0;
	if (ledger_sqlite_call_begin(l, "forget") == -1)
		return LEDGER_ERROR;
	sqlite3_bind_int64(st, 1, before);
	return ledger_sqlite_call_end(l, ledger_sqlite_do_delete(l, st, n), mark);
}

enum ledger_result
ledger_sqlite_join_create(void *self, const struct ledger_join *j)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_JOIN_ADD];
	int rc;

	if (ledger_sqlite_call_begin(l, "join_create") == -1)
		return LEDGER_ERROR;
	sqlite3_bind_text(st, 1, j->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, j->hash, LEDGER_TOKEN_HASH_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, j->uses_left);
	sqlite3_bind_int64(st, 4, j->expires_at);
	sqlite3_bind_text(st, 5, j->description, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 6, j->created_at);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc == SQLITE_DONE)
		return LEDGER_OK;
	if ((rc & 0xff) == SQLITE_CONSTRAINT && !sqlite3_get_autocommit(l->db))
		return LEDGER_EXISTS;
	return ledger_sqlite_call_end(
	    l, (ledger_sqlite_sqlerr(l, "join_create"), LEDGER_ERROR), l->npend);
}

enum ledger_result
ledger_sqlite_join_revoke(void *self, const char *join_id)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_JOIN_DEL];
	int rc;

	if (ledger_sqlite_call_begin(l, "join_revoke") == -1)
		return LEDGER_ERROR;
	sqlite3_bind_text(st, 1, join_id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_ROW : SQLITE_ERROR;
	ledger_sqlite_done(st);
	if (rc == SQLITE_ROW)
		return LEDGER_OK;
	if (rc == SQLITE_DONE)
		return LEDGER_NOT_FOUND;
	return ledger_sqlite_call_end(
	    l, (ledger_sqlite_sqlerr(l, "join_revoke"), LEDGER_ERROR), l->npend);
}

int
ledger_sqlite_join_list(void *self, ledger_join_cb cb, void *arg)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_JOIN_LIST];
	struct ledger_join j;
	const unsigned char *s;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&j, 0, sizeof(j));
		s = sqlite3_column_text(st, 0);
		snprintf(j.id, sizeof(j.id), "%s", s != NULL ? (const char *)s : "");
		j.uses_left = ledger_sqlite_clamp(sqlite3_column_int64(st, 1));
		j.expires_at = sqlite3_column_int64(st, 2);
		s = sqlite3_column_text(st, 3);
		snprintf(
		    j.description, sizeof(j.description), "%s", s != NULL ? (const char *)s : "");
		j.created_at = sqlite3_column_int64(st, 4);
		cb(&j, arg);
	}
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "join_list");
}

enum ledger_result
ledger_sqlite_get(void *self, const char *agent_id, struct ledger_agent *a)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_GET];
	const unsigned char *s;
	int rc;

	memset(a, 0, sizeof(*a));
	sqlite3_bind_text(st, 1, agent_id, -1, SQLITE_TRANSIENT);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		ledger_sqlite_done(st);
		if (rc == SQLITE_DONE)
			return LEDGER_UNKNOWN_AGENT;
		return ledger_sqlite_sqlerr(l, "get agent"), LEDGER_ERROR;
	}
	s = sqlite3_column_text(st, 0);
	snprintf(a->id, sizeof(a->id), "%s", s != NULL ? (const char *)s : "");
	a->linked_at = sqlite3_column_int64(st, 1);
	a->last_seen = sqlite3_column_int64(st, 2);
	a->excluded = sqlite3_column_int(st, 3) != 0;
	s = sqlite3_column_text(st, 4);
	snprintf(a->reason, sizeof(a->reason), "%s", s != NULL ? (const char *)s : "");
	ledger_sqlite_done(st);
	return LEDGER_OK;
}

int
ledger_sqlite_set_target(void *self, const char *staged_ca, const char *bundle_id)
{
	struct ledger_sqlite *l = self;
	int64_t cur = 0, staging = l->staging;
	time_t now = time(NULL);
	int changed;

	if (!ledger_sqlite_owner_ok(l, "set_target"))
		return -1;
	if (l->in_batch) {
		log_warnx("ledger %s: set_target inside a batch", l->path);
		return -1;
	}
	changed = strcmp(staged_ca != NULL ? staged_ca : "", l->staged_ca) != 0;
	if (ledger_sqlite_run(l, LST_BEGIN) == -1)
		return -1;
	if ((bundle_id != NULL && ledger_sqlite_intern_bundle(l, bundle_id, now, &cur) == -1) ||
	    (changed && ledger_sqlite_switch_staging(l, staged_ca, now, &staging) == -1) ||
	    ledger_sqlite_run(l, LST_COMMIT) == -1) {
		if (!sqlite3_get_autocommit(l->db))
			ledger_sqlite_run(l, LST_ROLLBACK);
		return -1;
	}
	if (cur != 0 && ((size_t)cur >= l->nbundles || strcmp(l->bundles[cur], bundle_id) != 0) &&
	    ledger_sqlite_load_bundles(l) == -1)
		return -1;
	l->cur = (uint16_t)cur;
	if (!changed)
		return 0;
	l->staging = staging;
	snprintf(l->staged_ca, sizeof(l->staged_ca), "%s", staged_ca != NULL ? staged_ca : "");
	log_info("ledger %s: target CA %s (staging %lld)", l->path,
	    l->staged_ca[0] != '\0' ? l->staged_ca : "none", (long long)l->staging);
	ledger_sqlite_clear_flags(l);
	return 0;
}

/* The bundles row for id, added if new; its row id must fit the index's 16 bits. */
static int
ledger_sqlite_intern_bundle(struct ledger_sqlite *l, const char *id, time_t now, int64_t *row)
{
	sqlite3_stmt *st = l->st[LST_ADD_BUNDLE];
	int rc;

	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, "add bundle");
	st = l->st[LST_BUNDLE_ID];
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	*row = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	ledger_sqlite_done(st);
	if (rc != SQLITE_ROW)
		return ledger_sqlite_sqlerr(l, "bundle id");
	if (*row < 1 || *row > LEDGER_MAX_BUNDLES) {
		log_warnx("ledger %s: too many bundles (%lld)", l->path, (long long)*row);
		return -1;
	}
	return 0;
}

/* Ends the open staging and, for a CA, starts a new one (*staging: its id, or 0). */
static int
ledger_sqlite_switch_staging(struct ledger_sqlite *l, const char *ca, time_t now, int64_t *staging)
{
	sqlite3_stmt *st = l->st[LST_END_STAGING];
	int rc;

	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, "end staging");
	*staging = 0;
	if (ca == NULL)
		return 0;
	st = l->st[LST_NEW_STAGING];
	sqlite3_bind_text(st, 1, ca, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	if (rc != SQLITE_DONE)
		return ledger_sqlite_sqlerr(l, "new staging");
	*staging = sqlite3_last_insert_rowid(l->db);
	return 0;
}

/* The first second of the active window (everything is active when window reaches 1970). */
static int64_t
ledger_sqlite_since(time_t now, uint64_t window)
{
	if (now <= 0 || window >= (uint64_t)now)
		return 0;
	return (int64_t)now - (int64_t)window;
}

/* Not excluded and lacking the target: the staged CA acknowledged, else the current bundle. */
static int
ledger_sqlite_lacking(const struct ledger_sqlite *l, const struct ledger_entry *e)
{
	if (l->staging != 0)
		return !(e->flags & LEDGER_F_ACKED);
	return l->cur != 0 && e->held != l->cur;
}

int
ledger_sqlite_count(void *self, time_t now, uint64_t window, struct ledger_counts *c)
{
	struct ledger_sqlite *l = self;
	int64_t since = ledger_sqlite_since(now, window);
	const struct ledger_entry *e, *end = l->ents + l->nents;
	int staged = l->staging != 0;

	memset(c, 0, sizeof(*c));
	for (e = l->ents; e < end; e++) {
		if (!(e->flags & LEDGER_F_EXISTS))
			continue;
		c->linked++;
		if (e->flags & LEDGER_F_EXCLUDED) {
			c->excluded++;
			continue;
		}
		c->never_confirmed += e->held == 0 && !(e->flags & LEDGER_F_ACKED);
		if ((int64_t)e->last_seen < since) {
			c->inactive_lacking += ledger_sqlite_lacking(l, e);
			continue;
		}
		c->active++;
		c->pending += ledger_sqlite_lacking(l, e);
		c->current += l->cur != 0 && e->held == l->cur;
		if (!staged)
			continue;
		c->delivered += (e->flags & LEDGER_F_DELIVERED) != 0;
		c->acknowledged += (e->flags & LEDGER_F_ACKED) != 0;
		c->verified += (e->flags & LEDGER_F_VERIFIED) != 0;
	}
	return 0;
}

static int
ledger_sqlite_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Reorders a[0..n) so that a[k] holds what sorting would put there, smaller keys before it. */
static void
ledger_sqlite_select(uint64_t *a, size_t n, size_t k)
{
	ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, i, j;
	uint64_t p, t, x, y, z;
	int depth = 0;

	while (lo < hi) {
		if (++depth > 64) {
			/* Pathological pivots: finish with a sort. */
			qsort(a + lo, (size_t)(hi - lo + 1), sizeof(*a), ledger_sqlite_cmp_u64);
			return;
		}
		x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
		p = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
		for (i = lo, j = hi; i <= j;) {
			while (a[i] < p)
				i++;
			while (a[j] > p)
				j--;
			if (i <= j) {
				t = a[i], a[i] = a[j], a[j] = t;
				i++, j--;
			}
		}
		if ((ptrdiff_t)k <= j)
			hi = j;
		else if ((ptrdiff_t)k >= i)
			lo = i;
		else
			return;
	}
}

/*
 * Pending agents come from the index, like the counts they must agree with:
 * keys (last_seen descending, then id) of every pending agent, two selections
 * to isolate the page, a sort of the page only; then the ids' names from SQL.
 */
int
ledger_sqlite_pending(void *self, time_t now, uint64_t window, uint64_t offset, uint32_t limit,
    ledger_agent_cb cb, void *arg)
{
	struct ledger_sqlite *l = self;
	int64_t since = ledger_sqlite_since(now, window);
	sqlite3_stmt *st = l->st[LST_NAME];
	const struct ledger_entry *e;
	uint64_t *keys, id;
	size_t i, n = 0, end;
	int rc, ret = 0;

	for (i = 0; i < l->nents; i++) {
		e = &l->ents[i];
		n += (e->flags & (LEDGER_F_EXISTS | LEDGER_F_EXCLUDED)) == LEDGER_F_EXISTS &&
		     (int64_t)e->last_seen >= since && ledger_sqlite_lacking(l, e);
	}
	if (offset >= n || limit == 0)
		return 0;
	keys = xreallocarray(NULL, n, sizeof(*keys));
	for (i = 0, n = 0; i < l->nents; i++) {
		e = &l->ents[i];
		if ((e->flags & (LEDGER_F_EXISTS | LEDGER_F_EXCLUDED)) == LEDGER_F_EXISTS &&
		    (int64_t)e->last_seen >= since && ledger_sqlite_lacking(l, e))
			keys[n++] = (uint64_t)(UINT32_MAX - e->last_seen) << 32 | i;
	}
	end = offset + limit < n ? offset + limit : n;
	ledger_sqlite_select(keys, n, offset);
	if (end < n)
		ledger_sqlite_select(keys + offset, n - offset, end - offset);
	qsort(keys + offset, end - offset, sizeof(*keys), ledger_sqlite_cmp_u64);
	for (i = offset; i < end && ret == 0; i++) {
		id = keys[i] & 0xffffffff;
		sqlite3_bind_int64(st, 1, (int64_t)id);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			cb((const char *)sqlite3_column_text(st, 0), UINT32_MAX - (keys[i] >> 32),
			    (l->ents[id].flags & LEDGER_F_DELIVERED) != 0, arg);
		else
			ret = ledger_sqlite_sqlerr(l, "agent name");
		ledger_sqlite_done(st);
	}
	free(keys);
	return ret;
}

static int
ledger_sqlite_cmp_holding(const void *a, const void *b)
{
	const struct ledger_holding *x = a, *y = b;

	if (x->agents != y->agents)
		return x->agents > y->agents ? -1 : 1;
	return x->bundle < y->bundle ? -1 : x->bundle > y->bundle;
}

/* Active agents per bundle held, most held first; bundle 0 ("") is none we know of. */
int
ledger_sqlite_holdings(void *self, time_t now, uint64_t window, ledger_holding_cb cb, void *arg)
{
	struct ledger_sqlite *l = self;
	int64_t since = ledger_sqlite_since(now, window);
	struct ledger_holding *h = xcalloc(l->nbundles, sizeof(*h));
	const struct ledger_entry *e;
	size_t i, n = 0;

	for (i = 0; i < l->nbundles; i++)
		h[i].bundle = (uint16_t)i;
	for (i = 0; i < l->nents; i++) {
		e = &l->ents[i];
		if ((e->flags & (LEDGER_F_EXISTS | LEDGER_F_EXCLUDED)) == LEDGER_F_EXISTS &&
		    (int64_t)e->last_seen >= since)
			h[e->held < l->nbundles ? e->held : 0].agents++;
	}
	qsort(h, l->nbundles, sizeof(*h), ledger_sqlite_cmp_holding);
	for (n = 0; n < l->nbundles && h[n].agents > 0; n++)
		cb(l->bundles[h[n].bundle], h[n].agents, arg);
	free(h);
	return 0;
}
