/*
 * The SQLite engine's audit log: the records of the hash chain in the audit
 * table, appended, listed, counted and walked a slice at a time (ledger_audit.c
 * has the chain's encoding, ledger.c the whole walk).
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "ledger.h"
#include "ledger_backend.h"
#include "ledger_sqlite.h"
#include "log.h"

static int ledger_sqlite_audit_head(struct ledger_sqlite *, uint64_t *, char *);
static int ledger_sqlite_audit_insert(struct ledger_sqlite *, const struct ledger_audit *);
static void ledger_sqlite_audit_copy(sqlite3_stmt *, int, char *, size_t);
static void ledger_sqlite_audit_row(sqlite3_stmt *, struct ledger_audit *);
static const char *ledger_sqlite_audit_check(sqlite3_stmt *, uint64_t, const char *, char *);

/* The newest record's seq and hash; 0 and zeros for an empty log. */
static int
ledger_sqlite_audit_head(struct ledger_sqlite *l, uint64_t *seq, char *hash)
{
	sqlite3_stmt *st = l->st[LST_AUDIT_HEAD];
	const unsigned char *h;
	int64_t s;
	int rc;

	*seq = 0;
	memcpy(hash, LEDGER_AUDIT_ZEROS, LEDGER_AUDIT_HASH_LEN + 1);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		ledger_sqlite_done(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		ledger_sqlite_done(st);
		return ledger_sqlite_sqlerr(l, "audit head");
	}
	s = sqlite3_column_int64(st, 0);
	h = sqlite3_column_text(st, 1);
	rc = h != NULL && sqlite3_column_bytes(st, 1) == LEDGER_AUDIT_HASH_LEN && s >= 1 &&
	     s < INT64_MAX;
	if (rc) {
		*seq = (uint64_t)s;
		memcpy(hash, h, LEDGER_AUDIT_HASH_LEN);
	}
	ledger_sqlite_done(st);
	if (!rc) {
		log_warnx("ledger %s: the newest audit record (seq %lld) is malformed; nothing can "
		          "be chained to it (carotatectl audit --verify)",
		    l->path, (long long)s);
		return -1;
	}
	return 0;
}

static int
ledger_sqlite_audit_insert(struct ledger_sqlite *l, const struct ledger_audit *a)
{
	sqlite3_stmt *st = l->st[LST_AUDIT_INSERT];
	const char *s[] = { a->user, a->call, a->result, a->detail, a->before, a->after,
		a->prev_hash, a->hash };
	static const int col[] = { 4, 6, 7, 8, 9, 10, 11, 12 };
	size_t i;
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)a->seq);
	sqlite3_bind_int64(st, 2, a->time);
	sqlite3_bind_int64(st, 3, a->uid);
	sqlite3_bind_int64(st, 5, a->pid);
	for (i = 0; i < sizeof(col) / sizeof(col[0]); i++)
		sqlite3_bind_text(st, col[i], s[i], -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "audit append");
}

int
ledger_sqlite_audit_append(void *self, struct ledger_audit *a)
{
	struct ledger_sqlite *l = self;
	char head[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t seq;

	if (!ledger_sqlite_owner_ok(l, "audit append"))
		return -1;
	if (l->in_batch) {
		log_warnx("ledger %s: audit append inside a batch", l->path);
		return -1;
	}
	if (ledger_sqlite_run(l, LST_BEGIN) == -1)
		return -1;
	if (ledger_sqlite_audit_head(l, &seq, head) == 0) {
		a->seq = seq + 1;
		memcpy(a->prev_hash, head, sizeof(a->prev_hash));
		ledger_audit_hash(a, a->hash);
		if (ledger_sqlite_audit_insert(l, a) == 0 && ledger_sqlite_run(l, LST_COMMIT) == 0)
			return 0;
	}
	if (!sqlite3_get_autocommit(l->db))
		ledger_sqlite_run(l, LST_ROLLBACK);
	return -1;
}

/* A text column into buf, cut to its size (display only: the chain is checked on the bytes). */
static void
ledger_sqlite_audit_copy(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	size_t n = s != NULL ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(buf, s, n);
	buf[n] = '\0';
}

/* A row of LEDGER_AUDIT_COLUMNS into a, strings cut to its sizes. */
static void
ledger_sqlite_audit_row(sqlite3_stmt *st, struct ledger_audit *a)
{
	memset(a, 0, sizeof(*a));
	a->seq = (uint64_t)sqlite3_column_int64(st, 0);
	a->time = sqlite3_column_int64(st, 1);
	a->uid = (uint32_t)sqlite3_column_int64(st, 2);
	a->pid = (uint32_t)sqlite3_column_int64(st, 3);
	ledger_sqlite_audit_copy(st, 4, a->user, sizeof(a->user));
	ledger_sqlite_audit_copy(st, 5, a->call, sizeof(a->call));
	ledger_sqlite_audit_copy(st, 6, a->result, sizeof(a->result));
	ledger_sqlite_audit_copy(st, 7, a->detail, sizeof(a->detail));
	ledger_sqlite_audit_copy(st, 8, a->before, sizeof(a->before));
	ledger_sqlite_audit_copy(st, 9, a->after, sizeof(a->after));
	ledger_sqlite_audit_copy(st, 10, a->prev_hash, sizeof(a->prev_hash));
	ledger_sqlite_audit_copy(st, 11, a->hash, sizeof(a->hash));
}

int
ledger_sqlite_audit_list(void *self, uint64_t offset, uint32_t limit, ledger_audit_cb cb, void *arg)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_AUDIT_PAGE];
	struct ledger_audit a;
	int rc;

	if (limit == 0 || offset > INT64_MAX)
		return 0;
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int64(st, 2, (int64_t)offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ledger_sqlite_audit_row(st, &a);
		cb(&a, arg);
	}
	ledger_sqlite_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "audit list");
}

int
ledger_sqlite_audit_last(void *self, uint64_t after, const char *const *calls, size_t ncalls,
    const char *marker, struct ledger_audit *a)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_AUDIT_LAST];
	size_t i;
	int rc;

	if (ncalls > LEDGER_AUDIT_LAST_CALLS || after > INT64_MAX)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)after);
	for (i = 0; i < LEDGER_AUDIT_LAST_CALLS; i++)
		if (i < ncalls)
			sqlite3_bind_text(st, (int)i + 2, calls[i], -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, (int)i + 2);
	sqlite3_bind_text(st, LEDGER_AUDIT_LAST_CALLS + 2, marker, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		ledger_sqlite_audit_row(st, a);
	ledger_sqlite_done(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : ledger_sqlite_sqlerr(l, "audit last");
}

int
ledger_sqlite_audit_count(void *self, uint64_t *total)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_AUDIT_COUNT];
	int rc;

	*total = 0;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*total = (uint64_t)sqlite3_column_int64(st, 0);
	ledger_sqlite_done(st);
	return rc == SQLITE_ROW ? 0 : ledger_sqlite_sqlerr(l, "audit count");
}

/*
 * One row of the chain against the record expected next (seq want, linked
 * to prev): its columns' types, then ledger_audit_check on their bytes.
 */
static const char *
ledger_sqlite_audit_check(sqlite3_stmt *st, uint64_t want, const char *prev, char *msg)
{
	static const char *const names[] = { "seq", "time", "uid", "pid", "user", "call", "result",
		"detail", "before", "after", "prev_hash", "hash" };
	int64_t ints[LEDGER_AUDIT_INTS];
	const char *s[LEDGER_AUDIT_STRS + 1];
	size_t n[LEDGER_AUDIT_STRS + 1];
	int i, want_type;

	for (i = 0; i < LEDGER_AUDIT_INTS + LEDGER_AUDIT_STRS + 1; i++) {
		want_type = i < LEDGER_AUDIT_INTS ? SQLITE_INTEGER : SQLITE_TEXT;
		if (sqlite3_column_type(st, i) != want_type) {
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL, "record %llu: %s is not %s",
			    (unsigned long long)want, names[i],
			    want_type == SQLITE_INTEGER ? "an integer" : "text");
			return msg;
		}
		if (i < LEDGER_AUDIT_INTS)
			ints[i] = sqlite3_column_int64(st, i);
		else {
			s[i - LEDGER_AUDIT_INTS] = (const char *)sqlite3_column_text(st, i);
			n[i - LEDGER_AUDIT_INTS] = (size_t)sqlite3_column_bytes(st, i);
		}
	}
	return ledger_audit_check(want, prev, ints, s, n, msg);
}

/*
 * One statement per slice, reset before returning: no read transaction stays
 * open between slices, and records appended meanwhile are walked in turn.
 */
int
ledger_sqlite_audit_verify_step(
    void *self, struct ledger_audit_walk *w, uint32_t max, char *problem, size_t len)
{
	struct ledger_sqlite *l = self;
	sqlite3_stmt *st = l->st[LST_AUDIT_CHAIN];
	char msg[LEDGER_AUDIT_MAX_DETAIL];
	const char *why = NULL;
	uint32_t seen = 0;
	int rc;

	problem[0] = '\0';
	/* From the start, a row below 1 (against the schema) is seen too, and refused. */
	if (sqlite3_bind_int64(st, 1, w->next == 1 ? INT64_MIN : (int64_t)w->next - 1) !=
	        SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, max) != SQLITE_OK) {
		snprintf(problem, len, "cannot read the audit log: %s", sqlite3_errmsg(l->db));
		ledger_sqlite_sqlerr(l, "audit verify");
		ledger_sqlite_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((why = ledger_sqlite_audit_check(st, w->next, w->prev, msg)) != NULL)
			break;
		memcpy(w->prev, sqlite3_column_text(st, LEDGER_AUDIT_INTS + LEDGER_AUDIT_STRS),
		    LEDGER_AUDIT_HASH_LEN);
		w->next++;
		seen++;
	}
	ledger_sqlite_done(st);
	if (why != NULL) {
		snprintf(problem, len, "%s", why);
		return 0;
	}
	if (rc != SQLITE_DONE) {
		snprintf(problem, len, "cannot read the audit log: %s", sqlite3_errmsg(l->db));
		ledger_sqlite_sqlerr(l, "audit verify");
		return -1;
	}
	return seen == max ? 2 : 1;
}
