/*
 * The ledger's front: ledger.h's contract over whichever engine keeps the
 * ledger (ledger_backend.h): SQLite for a single proxy, PostgreSQL for a pool.
 * It checks what does not depend on the engine (missing arguments, the id
 * grammar every engine's schema shares, sizes) and calls through the engine's
 * table, once per call. It owns no connection and no SQL; what the engines
 * share beyond that, the audit chain's encoding, is in ledger_audit.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "ledger.h"
#include "ledger_backend.h"
#include "log.h"
#include "xmalloc.h"

struct ledger {
	const struct ledger_backend *be;
	void *self;
};

static int ledger_table_ok(const struct ledger_backend *);
static int ledger_id_ok(const char *);
static int ledger_join_id_ok(const char *);
static int ledger_desc_ok(const char *);
static int ledger_target_ok(const char *, size_t);
static int ledger_blob_name_ok(const char *);
static int ledger_migrate_agent(const struct ledger_export_agent *, void *);
static int ledger_migrate_join(const struct ledger_join *, void *);
static int ledger_migrate_verify(
    struct ledger *, const char *, struct ledger_migration *, char *, size_t);
static void ledger_migrate_nothing(char *, size_t);
static void ledger_migrate_detail(
    struct ledger_audit *, const char *, const struct ledger_migration *);
static int ledger_member_ok(const struct ledger_member *);
static int ledger_leaf_ok(const char *);
static int ledger_pool_call_ok(const char *);
static int ledger_pool_state_ok(const struct ledger_pool_state *, uint64_t);

/* Every entry is there: the front calls them without looking. */
static int
ledger_table_ok(const struct ledger_backend *be)
{
	return be->name != NULL && be->close != NULL && be->quick_check != NULL &&
	       be->set_target != NULL && be->begin != NULL && be->commit != NULL &&
	       be->rollback != NULL && be->in_batch != NULL && be->link != NULL &&
	       be->link_join != NULL && be->join_check != NULL && be->renew != NULL &&
	       be->total != NULL && be->forget != NULL && be->forget_unconfirmed != NULL &&
	       be->join_create != NULL && be->join_revoke != NULL && be->join_list != NULL &&
	       be->checkin != NULL && be->exclude != NULL && be->include != NULL &&
	       be->get != NULL && be->count != NULL && be->pending != NULL &&
	       be->holdings != NULL && be->audit_append != NULL && be->audit_list != NULL &&
	       be->audit_last != NULL && be->audit_count != NULL && be->audit_verify_step != NULL;
}

/* The caller validated ids against the allow-list; this only guards the schemas. */
static int
ledger_id_ok(const char *id)
{
	size_t n;

	if (id == NULL || (n = strnlen(id, LEDGER_MAX_AGENT_ID + 1)) == 0 ||
	    n > LEDGER_MAX_AGENT_ID) {
		log_warnx("ledger: an agent id that is empty or longer than %d bytes",
		    LEDGER_MAX_AGENT_ID);
		return 0;
	}
	return 1;
}

/* A join token id as the schemas want it: 16 lower-case hex digits. */
static int
ledger_join_id_ok(const char *id)
{
	size_t i;

	if (id == NULL || strnlen(id, LEDGER_JOIN_ID_LEN + 1) != LEDGER_JOIN_ID_LEN)
		return 0;
	for (i = 0; i < LEDGER_JOIN_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

/* Printable ASCII, within the schemas' limit. */
static int
ledger_desc_ok(const char *s)
{
	size_t i, n = strnlen(s, LEDGER_MAX_JOIN_DESC + 1);

	for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f; i++)
		;
	return i == n && n <= LEDGER_MAX_JOIN_DESC;
}

/* A staged CA or bundle id for set_target: NULL (none), or 1 to max bytes. */
static int
ledger_target_ok(const char *id, size_t max)
{
	return id == NULL || (id[0] != '\0' && strnlen(id, max + 1) <= max);
}

struct ledger *
ledger_wrap(const struct ledger_backend *be, void *self)
{
	struct ledger *l;

	if (self == NULL)
		return NULL;
	if (be == NULL || !ledger_table_ok(be)) {
		log_warnx("ledger: an engine table without every entry");
		if (be != NULL && be->close != NULL)
			be->close(self);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->be = be;
	l->self = self;
	return l;
}

struct ledger *
ledger_open(const char *state_dir, char *err, size_t errlen)
{
	struct ledger_sqlite *s;
	struct ledger *l;

	if (state_dir == NULL) {
		snprintf(err, errlen, "ledger: no state directory");
		return NULL;
	}
	if ((s = ledger_sqlite_open(state_dir, err, errlen)) == NULL)
		return NULL;
	if ((l = ledger_wrap(&ledger_sqlite_backend, s)) == NULL)
		snprintf(err, errlen, "ledger %s: the SQLite engine is incomplete", state_dir);
	return l;
}

struct ledger *
ledger_open_source(const char *path, char *err, size_t errlen)
{
	struct ledger_sqlite *s;
	struct ledger *l;

	if (path == NULL || path[0] == '\0') {
		snprintf(err, errlen, "ledger: no file to migrate from");
		return NULL;
	}
	if ((s = ledger_sqlite_open_source(path, err, errlen)) == NULL)
		return NULL;
	if ((l = ledger_wrap(&ledger_sqlite_backend, s)) == NULL)
		snprintf(err, errlen, "ledger %s: the SQLite engine is incomplete", path);
	return l;
}

const char *
ledger_backend_name(const struct ledger *l)
{
	return l->be->name;
}

void
ledger_health(const struct ledger *l, struct ledger_health *h)
{
	memset(h, 0, sizeof(*h));
	h->reachable = 1;
	if (l->be->health != NULL)
		l->be->health(l->self, h);
}

int
ledger_probe(struct ledger *l)
{
	if (l->be->probe == NULL)
		return 0;
	return l->be->probe(l->self);
}

/* Printable ASCII without spaces, 1 to LEDGER_MAX_BLOB_NAME: names are ours, never a client's. */
static int
ledger_blob_name_ok(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return 0;
	for (i = 0; name[i] != '\0'; i++)
		if (i == LEDGER_MAX_BLOB_NAME || name[i] <= ' ' || name[i] > '~')
			return 0;
	return 1;
}

int
ledger_blob_get(struct ledger *l, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	if (!ledger_blob_name_ok(name) || buf == NULL || len == NULL) {
		log_warnx("ledger: blob_get: bad arguments");
		return -1;
	}
	if (l->be->blob_get == NULL) {
		log_warnx("ledger: the %s ledger keeps no pool blobs", l->be->name);
		return -1;
	}
	return l->be->blob_get(l->self, name, buf, cap, len);
}

int
ledger_blob_put_new(struct ledger *l, const char *name, const uint8_t *blob, size_t len)
{
	if (!ledger_blob_name_ok(name) || blob == NULL || len == 0 || len > LEDGER_MAX_BLOB) {
		log_warnx("ledger: blob_put_new: bad arguments");
		return -1;
	}
	if (l->be->blob_put_new == NULL) {
		log_warnx("ledger: the %s ledger keeps no pool blobs", l->be->name);
		return -1;
	}
	return l->be->blob_put_new(l->self, name, blob, len);
}

/* ledger_backend.h: printable ASCII, at most max bytes (read no further than s[max]). */
int
ledger_text_plain(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i == max || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* What a beat stores must fit the schema: the caller sanitized its texts. */
static int
ledger_member_ok(const struct ledger_member *m)
{
	/* each NUL-terminated within its field */
	return m != NULL && ledger_text_plain(m->active_ca, sizeof(m->active_ca) - 1) &&
	       ledger_text_plain(m->active_server, sizeof(m->active_server) - 1) &&
	       ledger_text_plain(m->staged_ca, sizeof(m->staged_ca) - 1) &&
	       ledger_text_plain(m->last_error, sizeof(m->last_error) - 1);
}

int
ledger_member_beat(struct ledger *l, const struct ledger_member *m)
{
	if (!ledger_member_ok(m)) {
		log_warnx("ledger: member_beat: bad arguments");
		return -1;
	}
	if (l->be->member_beat == NULL)
		return -1; /* not a pool: nobody to tell */
	return l->be->member_beat(l->self, m);
}

int
ledger_member_list(struct ledger *l, ledger_member_cb cb, void *arg)
{
	if (cb == NULL || l->be->member_list == NULL)
		return -1;
	return l->be->member_list(l->self, cb, arg);
}

int
ledger_count_members(
    struct ledger *l, time_t now, uint64_t window, ledger_member_counts_cb cb, void *arg)
{
	if (cb == NULL || l->be->count_members == NULL)
		return -1;
	return l->be->count_members(l->self, now, window, cb, arg);
}

int
ledger_member_applied(struct ledger *l, uint64_t generation, int ok, const char *error)
{
	char line[LEDGER_MAX_MEMBER_ERROR + 1];
	size_t i;

	if (generation == 0 || generation > INT64_MAX) {
		log_warnx("ledger: member_applied: bad arguments");
		return -1;
	}
	if (l->be->member_applied == NULL)
		return -1; /* not a pool: nobody to tell */
	/* The reason comes from anywhere (a path, a library's message): one printable line. */
	snprintf(line, sizeof(line), "%s", error != NULL ? error : "");
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] < 0x20 || line[i] > 0x7e)
			line[i] = '?';
	return l->be->member_applied(l->self, generation, ok != 0, line);
}

/* A set's leaf as the pool's state names it: "" (none) or 64 lower-case hex digits. */
static int
ledger_leaf_ok(const char *s)
{
	return s[0] == '\0' || digest_sha256_hex_ok(s);
}

/* A call's name: 1 to LEDGER_POOL_MAX_CALL of a-z 0-9 _ -, NUL-terminated in its field. */
static int
ledger_pool_call_ok(const char *s)
{
	size_t i, n = strnlen(s, LEDGER_POOL_MAX_CALL + 1);

	if (n == 0 || n > LEDGER_POOL_MAX_CALL)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-'))
			return 0;
	return 1;
}

/* What a put stores must fit the schema, and expect + 1 a bigint. */
static int
ledger_pool_state_ok(const struct ledger_pool_state *st, uint64_t expect)
{
	return st != NULL && expect < INT64_MAX && ledger_leaf_ok(st->active) &&
	       ledger_leaf_ok(st->staged) && ledger_pool_call_ok(st->call);
}

int
ledger_pool_state_get(struct ledger *l, struct ledger_pool_state *st)
{
	if (st == NULL) {
		log_warnx("ledger: pool_state_get: bad arguments");
		return -1;
	}
	memset(st, 0, sizeof(*st));
	if (l->be->pool_state_get == NULL)
		return -1;
	return l->be->pool_state_get(l->self, st);
}

int
ledger_pool_state_put(struct ledger *l, struct ledger_pool_state *st, uint64_t expect)
{
	if (!ledger_pool_state_ok(st, expect)) {
		log_warnx("ledger: pool_state_put: bad arguments");
		return -1;
	}
	if (l->be->pool_state_put == NULL)
		return -1;
	return l->be->pool_state_put(l->self, st, expect);
}

int
ledger_pool_lock(struct ledger *l)
{
	if (l->be->pool_lock == NULL)
		return -1;
	return l->be->pool_lock(l->self);
}

void
ledger_pool_unlock(struct ledger *l)
{
	if (l->be->pool_unlock != NULL)
		l->be->pool_unlock(l->self);
}

int
ledger_pool_socket(struct ledger *l)
{
	if (l->be->pool_socket == NULL)
		return -1;
	return l->be->pool_socket(l->self);
}

int
ledger_pool_notified(struct ledger *l)
{
	if (l->be->pool_notified == NULL)
		return -1;
	return l->be->pool_notified(l->self);
}

void
ledger_close(struct ledger *l)
{
	if (l == NULL)
		return;
	l->be->close(l->self);
	free(l);
}

int
ledger_quick_check(struct ledger *l, char *problem, size_t len)
{
	if (problem == NULL || len == 0)
		return -1;
	problem[0] = '\0';
	return l->be->quick_check(l->self, problem, len);
}

int
ledger_set_target(struct ledger *l, const char *staged_ca, const char *bundle_id)
{
	if (!ledger_target_ok(staged_ca, LEDGER_CA_ID_LEN) ||
	    !ledger_target_ok(bundle_id, LEDGER_BUNDLE_ID_LEN)) {
		log_warnx("ledger: set_target: a malformed CA or bundle id");
		return -1;
	}
	return l->be->set_target(l->self, staged_ca, bundle_id);
}

int
ledger_begin(struct ledger *l)
{
	return l->be->begin(l->self);
}

int
ledger_commit(struct ledger *l)
{
	return l->be->commit(l->self);
}

void
ledger_rollback(struct ledger *l)
{
	l->be->rollback(l->self);
}

enum ledger_result
ledger_end(struct ledger *l, enum ledger_result r)
{
	if (r == LEDGER_OK && ledger_commit(l) != 0)
		return LEDGER_ERROR;
	if (r != LEDGER_OK)
		ledger_rollback(l);
	return r;
}

int
ledger_in_batch(const struct ledger *l)
{
	return l->be->in_batch(l->self);
}

enum ledger_result
ledger_link(struct ledger *l, const char *agent_id, const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN],
    time_t now)
{
	if (!ledger_id_ok(agent_id) || token_hash == NULL)
		return LEDGER_ERROR;
	return l->be->link(l->self, agent_id, token_hash, now);
}

/* Outside a batch is an error before a malformed join id is "not found", as in ledger_link. */
enum ledger_result
ledger_link_join(struct ledger *l, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *join_id,
    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	if (!ledger_id_ok(agent_id) || token_hash == NULL || join_hash == NULL)
		return LEDGER_ERROR;
	if (!l->be->in_batch(l->self)) {
		log_warnx("ledger: link outside a batch");
		return LEDGER_ERROR;
	}
	if (!ledger_join_id_ok(join_id))
		return LEDGER_NOT_FOUND;
	return l->be->link_join(l->self, agent_id, token_hash, join_id, join_hash, now);
}

enum ledger_result
ledger_join_check(struct ledger *l, const char *join_id,
    const uint8_t join_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	if (!ledger_join_id_ok(join_id))
		return LEDGER_NOT_FOUND;
	if (join_hash == NULL)
		return LEDGER_ERROR;
	return l->be->join_check(l->self, join_id, join_hash, now);
}

enum ledger_result
ledger_renew(struct ledger *l, const char *agent_id, const uint8_t old_hash[LEDGER_TOKEN_HASH_LEN],
    const uint8_t new_hash[LEDGER_TOKEN_HASH_LEN], time_t now)
{
	if (!ledger_id_ok(agent_id) || old_hash == NULL || new_hash == NULL)
		return LEDGER_ERROR;
	return l->be->renew(l->self, agent_id, old_hash, new_hash, now);
}

uint64_t
ledger_total(const struct ledger *l)
{
	return l->be->total(l->self);
}

enum ledger_result
ledger_forget(struct ledger *l, const char *agent_id)
{
	if (!ledger_id_ok(agent_id))
		return LEDGER_ERROR;
	return l->be->forget(l->self, agent_id);
}

enum ledger_result
ledger_forget_unconfirmed(struct ledger *l, int64_t before, uint64_t *n)
{
	if (n == NULL)
		return LEDGER_ERROR;
	*n = 0;
	return l->be->forget_unconfirmed(l->self, before, n);
}

enum ledger_result
ledger_join_create(struct ledger *l, const struct ledger_join *j)
{
	if (j == NULL || !ledger_join_id_ok(j->id) || !ledger_desc_ok(j->description) ||
	    j->uses_left == 0) {
		log_warnx("ledger: a join token with a bad id, description or no use");
		return LEDGER_ERROR;
	}
	return l->be->join_create(l->self, j);
}

enum ledger_result
ledger_join_revoke(struct ledger *l, const char *join_id)
{
	if (!ledger_join_id_ok(join_id))
		return LEDGER_NOT_FOUND;
	return l->be->join_revoke(l->self, join_id);
}

int
ledger_join_list(struct ledger *l, ledger_join_cb cb, void *arg)
{
	if (cb == NULL)
		return -1;
	return l->be->join_list(l->self, cb, arg);
}

enum ledger_result
ledger_checkin(struct ledger *l, const char *agent_id,
    const uint8_t token_hash[LEDGER_TOKEN_HASH_LEN], const char *presented, int canary, time_t now,
    int *send_bundle)
{
	if (send_bundle == NULL)
		return LEDGER_ERROR;
	*send_bundle = 0;
	if (!ledger_id_ok(agent_id) || token_hash == NULL)
		return LEDGER_ERROR;
	return l->be->checkin(l->self, agent_id, token_hash, presented, canary, now, send_bundle);
}

/*
 * Runs of check-ins with valid arguments go to the engine's checkin_run, or
 * one by one through ledger_checkin; one with invalid arguments is
 * LEDGER_ERROR alone.
 */
void
ledger_checkin_run(struct ledger *l, struct ledger_checkin *c, size_t n, time_t now)
{
	size_t i, j;

	for (i = 0; i < n; i = j) {
		for (j = i; j < n && c[j].token_hash != NULL && ledger_id_ok(c[j].agent_id); j++)
			;
		if (l->be->checkin_run != NULL && j > i)
			l->be->checkin_run(l->self, c + i, j - i, now);
		else
			for (; i < j; i++)
				c[i].result = ledger_checkin(l, c[i].agent_id, c[i].token_hash,
				    c[i].presented, c[i].canary, now, &c[i].send_bundle);
		if (j < n) {
			c[j].result = LEDGER_ERROR;
			c[j].send_bundle = 0;
			j++;
		}
	}
}

enum ledger_result
ledger_exclude(struct ledger *l, const char *agent_id, const char *reason)
{
	if (reason == NULL)
		reason = "";
	if (strnlen(reason, LEDGER_MAX_REASON + 1) > LEDGER_MAX_REASON) {
		log_warnx("ledger: an exclusion reason longer than %d bytes", LEDGER_MAX_REASON);
		return LEDGER_ERROR;
	}
	if (!ledger_id_ok(agent_id))
		return LEDGER_ERROR;
	return l->be->exclude(l->self, agent_id, reason);
}

enum ledger_result
ledger_include(struct ledger *l, const char *agent_id)
{
	if (!ledger_id_ok(agent_id))
		return LEDGER_ERROR;
	return l->be->include(l->self, agent_id);
}

enum ledger_result
ledger_get(struct ledger *l, const char *agent_id, struct ledger_agent *a)
{
	if (a == NULL)
		return LEDGER_ERROR;
	memset(a, 0, sizeof(*a));
	if (!ledger_id_ok(agent_id))
		return LEDGER_ERROR;
	return l->be->get(l->self, agent_id, a);
}

/* Counts that could not be read are zeros no caller may take for an empty fleet: -1 says so. */
int
ledger_count(struct ledger *l, time_t now, uint64_t window, struct ledger_counts *c)
{
	if (c == NULL)
		return -1;
	memset(c, 0, sizeof(*c));
	if (l->be->count(l->self, now, window, c) == 0)
		return 0;
	memset(c, 0, sizeof(*c));
	return -1;
}

int
ledger_pending(struct ledger *l, time_t now, uint64_t window, uint64_t offset, uint32_t limit,
    ledger_agent_cb cb, void *arg)
{
	if (cb == NULL)
		return -1;
	return l->be->pending(l->self, now, window, offset, limit, cb, arg);
}

int
ledger_holdings(struct ledger *l, time_t now, uint64_t window, ledger_holding_cb cb, void *arg)
{
	if (cb == NULL)
		return -1;
	return l->be->holdings(l->self, now, window, cb, arg);
}

int
ledger_audit_append(struct ledger *l, struct ledger_audit *a)
{
	if (a == NULL)
		return -1;
	return l->be->audit_append(l->self, a);
}

/* Seqs and offsets are signed 64-bit integers in every engine's schema. */
int
ledger_audit_list(struct ledger *l, uint64_t offset, uint32_t limit, ledger_audit_cb cb, void *arg)
{
	if (cb == NULL)
		return -1;
	if (limit == 0 || offset > INT64_MAX)
		return 0;
	return l->be->audit_list(l->self, offset, limit, cb, arg);
}

int
ledger_audit_last(struct ledger *l, uint64_t after, const char *const *calls, size_t ncalls,
    const char *marker, struct ledger_audit *a)
{
	size_t i;

	if (a == NULL || marker == NULL || (calls == NULL && ncalls > 0) ||
	    ncalls > LEDGER_AUDIT_LAST_CALLS || after > INT64_MAX)
		return -1;
	for (i = 0; i < ncalls; i++)
		if (calls[i] == NULL)
			return -1;
	return l->be->audit_last(l->self, after, calls, ncalls, marker, a);
}

int
ledger_audit_count(struct ledger *l, uint64_t *total)
{
	if (total == NULL)
		return -1;
	*total = 0;
	return l->be->audit_count(l->self, total);
}

int
ledger_audit_verify_step(
    struct ledger *l, struct ledger_audit_walk *w, uint32_t max, char *problem, size_t len)
{
	if (w == NULL || problem == NULL || len == 0)
		return -1;
	return l->be->audit_verify_step(l->self, w, max, problem, len);
}

int
ledger_audit_verify(struct ledger *l, uint64_t *broken_at, char *problem, size_t len)
{
	struct ledger_audit_walk w;
	int r;

	if (broken_at == NULL)
		return -1;
	ledger_audit_walk_init(&w);
	while ((r = ledger_audit_verify_step(l, &w, UINT32_MAX, problem, len)) == 2)
		;
	*broken_at = r == 0 ? w.next : 0;
	return r;
}

/*
 * A migration (ledger_migrate): the source's rows go through the callbacks
 * straight into the pool's open transaction, counted on the way.
 */
#define LEDGER_MIGRATE_MAX_PATH 256 /* of the source's path in the audit record */
struct ledger_migrate_ctx {
	struct ledger *pool;
	struct ledger_migration *m;
	char *err;
	size_t errlen;
};

static int
ledger_migrate_agent(const struct ledger_export_agent *a, void *arg)
{
	struct ledger_migrate_ctx *c = arg;
	struct ledger_migration *m = c->m;
	int r;

	if (!ledger_id_ok(a->id)) {
		snprintf(c->err, c->errlen, "the source holds an agent id the pool does not allow");
		return -1;
	}
	if ((r = c->pool->be->import_agent(c->pool->self, a, c->err, c->errlen)) == -1)
		return -1;
	if (r == LEDGER_IMPORT_COPIED)
		m->agents_copied++;
	else if (r == LEDGER_IMPORT_PRESENT)
		m->agents_present++;
	else {
		m->agents_conflicts++;
		if (m->named < LEDGER_MIGRATE_NAMED)
			snprintf(m->conflicts[m->named++], sizeof(m->conflicts[0]), "%s", a->id);
	}
	return 0;
}

static int
ledger_migrate_join(const struct ledger_join *j, void *arg)
{
	struct ledger_migrate_ctx *c = arg;
	int r;

	if (!ledger_join_id_ok(j->id) || !ledger_desc_ok(j->description)) {
		snprintf(
		    c->err, c->errlen, "the source holds a join token the pool does not allow");
		return -1;
	}
	if ((r = c->pool->be->import_join(c->pool->self, j, c->err, c->errlen)) == -1)
		return -1;
	if (r == LEDGER_IMPORT_COPIED)
		c->m->joins_copied++;
	else if (r == LEDGER_IMPORT_PRESENT)
		c->m->joins_present++;
	else
		c->m->joins_conflicts++;
	return 0;
}

/* The source's chain, whole: its length and head, or err saying why it cannot be taken. */
static int
ledger_migrate_verify(
    struct ledger *source, const char *path, struct ledger_migration *m, char *err, size_t errlen)
{
	struct ledger_audit_walk w;
	char problem[256];
	int r;

	ledger_audit_walk_init(&w);
	while (
	    (r = ledger_audit_verify_step(source, &w, UINT32_MAX, problem, sizeof(problem))) == 2)
		;
	if (r == 1) {
		m->source_records = w.next - 1;
		memcpy(m->source_head, w.prev, sizeof(m->source_head));
		return 0;
	}
	if (r == 0)
		snprintf(err, errlen,
		    "%s: its audit chain is broken at record %llu (%s): nothing was copied; repair "
		    "or restore the source first (carotatectl audit --verify on its proxy)",
		    path, (unsigned long long)w.next, problem);
	else
		snprintf(err, errlen, "%s: its audit chain cannot be read: %s", path, problem);
	return -1;
}

/* The record's arguments after the caller's: counts, source and its head, as key=value. */
static void
ledger_migrate_detail(struct ledger_audit *rec, const char *path, const struct ledger_migration *m)
{
	char p[LEDGER_MIGRATE_MAX_PATH + 1];
	size_t i, n = strlen(rec->detail);

	for (i = 0; path[i] != '\0' && i < LEDGER_MIGRATE_MAX_PATH; i++)
		p[i] = path[i] > ' ' && path[i] < 0x7f && path[i] != '"' && path[i] != '\\'
		           ? path[i]
		           : '?';
	p[i] = '\0';
	snprintf(rec->detail + n, sizeof(rec->detail) - n,
	    "%ssource=\"%s\" agents_copied=%llu agents_present=%llu agents_conflicts=%llu "
	    "joins_copied=%llu joins_present=%llu joins_conflicts=%llu source_records=%llu "
	    "source_head=%s",
	    n > 0 ? " " : "", p, (unsigned long long)m->agents_copied,
	    (unsigned long long)m->agents_present, (unsigned long long)m->agents_conflicts,
	    (unsigned long long)m->joins_copied, (unsigned long long)m->joins_present,
	    (unsigned long long)m->joins_conflicts, (unsigned long long)m->source_records,
	    m->source_head);
	snprintf(rec->call, sizeof(rec->call), "migrate-ledger");
	snprintf(rec->result, sizeof(rec->result), "OK");
}

/* A failed copy left the pool as it was: the operator reads it at the end of the message. */
static void
ledger_migrate_nothing(char *err, size_t errlen)
{
	size_t n = strlen(err);

	snprintf(err + n, errlen - n, "; nothing was copied");
}

int
ledger_migrate(struct ledger *pool, struct ledger *source, const char *source_path,
    struct ledger_audit *rec, struct ledger_migration *m, char *err, size_t errlen)
{
	struct ledger_migrate_ctx c = { pool, m, err, errlen };
	const struct ledger_backend *to, *from;

	if (pool == NULL || source == NULL || source_path == NULL || rec == NULL || m == NULL) {
		snprintf(err, errlen, "ledger: migrate: bad arguments");
		return -1;
	}
	to = pool->be;
	from = source->be;
	memset(m, 0, sizeof(*m));
	if (errlen > 0)
		err[0] = '\0';
	if (from->export_walk == NULL || to->import_begin == NULL || to->import_agent == NULL ||
	    to->import_join == NULL || to->import_end == NULL) {
		snprintf(err, errlen,
		    "ledger: a migration goes from a single proxy's ledger into a "
		    "pool's, not from %s into %s",
		    from->name, to->name);
		return -1;
	}
	if (ledger_migrate_verify(source, source_path, m, err, errlen) == -1 ||
	    to->import_begin(pool->self, err, errlen) == -1)
		return -1;
	if (from->export_walk(source->self, ledger_migrate_agent, ledger_migrate_join, &c) == -1) {
		if (err[0] == '\0')
			snprintf(err, errlen, "%s: cannot be read (see the log)", source_path);
		ledger_migrate_nothing(err, errlen);
		to->import_end(pool->self, NULL, NULL, 0);
		return -1;
	}
	ledger_migrate_detail(rec, source_path, m);
	if (to->import_end(pool->self, rec, err, errlen) == -1)
		return -1;
	m->pool_record = rec->seq;
	return 0;
}

#ifdef CAROTATE_FUZZ
int
ledger_fuzz_restore(struct ledger *l, const char *from, char *err, size_t errlen)
{
	if (l->be != &ledger_sqlite_backend) {
		snprintf(
		    err, errlen, "ledger: restore needs the SQLite engine, not %s", l->be->name);
		return -1;
	}
	return ledger_sqlite_fuzz_restore(l->self, from, err, errlen);
}
#endif
