/*
 * The ledger's audit log: a hash chain of every state-changing call,
 * appended, listed and verified (ledger.h has the record's hash encoding).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "digest.h"
#include "ledger.h"
#include "ledger_sqlite.h"
#include "log.h"

_Static_assert(LEDGER_AUDIT_HASH_LEN + 1 == DIGEST_SHA256_HEX, "a record hash is SHA-256 hex");

static int ledger_audit_head(struct ledger *, uint64_t *, char *);
static int ledger_audit_insert(struct ledger *, const struct ledger_audit *);
static void ledger_audit_digest(const int64_t *, const char *const *, const size_t *, char *);
static void ledger_audit_copy(sqlite3_stmt *, int, char *, size_t);
static void ledger_audit_row(sqlite3_stmt *, struct ledger_audit *);
static const char *ledger_audit_check(sqlite3_stmt *, uint64_t, const char *, char *);

#define LEDGER_AUDIT_TAG   "carotate-audit-v1" /* hashed with its NUL */
#define LEDGER_AUDIT_INTS  4                   /* seq, time, uid, pid */
#define LEDGER_AUDIT_STRS  7 /* user, call, result, detail, before, after, prev_hash */
#define LEDGER_AUDIT_ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

static void
ledger_digest_be(EVP_MD_CTX *md, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	if (EVP_DigestUpdate(md, b, (size_t)bytes) != 1)
		fatalx("%s: EVP_DigestUpdate failed", __func__);
}

/* The hash of one record from its parts (LEDGER_AUDIT_INTS integers, LEDGER_AUDIT_STRS strings). */
static void
ledger_audit_digest(const int64_t *ints, const char *const *s, const size_t *n, char *out)
{
	EVP_MD_CTX *md;
	unsigned int i;

	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, LEDGER_AUDIT_TAG, sizeof(LEDGER_AUDIT_TAG)) != 1)
		fatalx("%s: cannot start a SHA-256 digest", __func__);
	for (i = 0; i < LEDGER_AUDIT_INTS; i++)
		ledger_digest_be(md, (uint64_t)ints[i], 8);
	for (i = 0; i < LEDGER_AUDIT_STRS; i++) {
		ledger_digest_be(md, n[i], 4);
		if (n[i] > 0 && EVP_DigestUpdate(md, s[i], n[i]) != 1)
			fatalx("%s: EVP_DigestUpdate failed", __func__);
	}
	if (digest_sha256_final_hex(md, out) != 0)
		fatalx("%s: EVP_DigestFinal_ex failed", __func__);
	EVP_MD_CTX_free(md);
}

void
ledger_audit_hash(const struct ledger_audit *a, char out[LEDGER_AUDIT_HASH_LEN + 1])
{
	const int64_t ints[LEDGER_AUDIT_INTS] = { (int64_t)a->seq, a->time, a->uid, a->pid };
	const char *s[LEDGER_AUDIT_STRS] = { a->user, a->call, a->result, a->detail, a->before,
		a->after, a->prev_hash };
	size_t n[LEDGER_AUDIT_STRS], i;

	for (i = 0; i < LEDGER_AUDIT_STRS; i++)
		n[i] = strlen(s[i]);
	ledger_audit_digest(ints, s, n, out);
}

/* The newest record's seq and hash; 0 and zeros for an empty log. */
static int
ledger_audit_head(struct ledger *l, uint64_t *seq, char *hash)
{
	sqlite3_stmt *st = l->st[LST_AUDIT_HEAD];
	const unsigned char *h;
	int64_t s;
	int rc;

	*seq = 0;
	memcpy(hash, LEDGER_AUDIT_ZEROS, LEDGER_AUDIT_HASH_LEN + 1);
	if ((rc = sqlite3_step(st)) == SQLITE_DONE) {
		ledger_done(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		ledger_done(st);
		return ledger_sqlerr(l, "audit head");
	}
	s = sqlite3_column_int64(st, 0);
	h = sqlite3_column_text(st, 1);
	rc = h != NULL && sqlite3_column_bytes(st, 1) == LEDGER_AUDIT_HASH_LEN && s >= 1 &&
	     s < INT64_MAX;
	if (rc) {
		*seq = (uint64_t)s;
		memcpy(hash, h, LEDGER_AUDIT_HASH_LEN);
	}
	ledger_done(st);
	if (!rc) {
		log_warnx("ledger %s: the newest audit record (seq %lld) is malformed; nothing can "
		          "be chained to it (carotatectl audit --verify)",
		    l->path, (long long)s);
		return -1;
	}
	return 0;
}

static int
ledger_audit_insert(struct ledger *l, const struct ledger_audit *a)
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
	ledger_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlerr(l, "audit append");
}

int
ledger_audit_append(struct ledger *l, struct ledger_audit *a)
{
	char head[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t seq;

	if (!ledger_owner_ok(l, "audit append"))
		return -1;
	if (l->in_batch) {
		log_warnx("ledger %s: audit append inside a batch", l->path);
		return -1;
	}
	if (ledger_run(l, LST_BEGIN) == -1)
		return -1;
	if (ledger_audit_head(l, &seq, head) == 0) {
		a->seq = seq + 1;
		memcpy(a->prev_hash, head, sizeof(a->prev_hash));
		ledger_audit_hash(a, a->hash);
		if (ledger_audit_insert(l, a) == 0 && ledger_run(l, LST_COMMIT) == 0)
			return 0;
	}
	if (!sqlite3_get_autocommit(l->db))
		ledger_run(l, LST_ROLLBACK);
	return -1;
}

/* A text column into buf, cut to its size (display only: the chain is checked on the bytes). */
static void
ledger_audit_copy(sqlite3_stmt *st, int col, char *buf, size_t size)
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
ledger_audit_row(sqlite3_stmt *st, struct ledger_audit *a)
{
	memset(a, 0, sizeof(*a));
	a->seq = (uint64_t)sqlite3_column_int64(st, 0);
	a->time = sqlite3_column_int64(st, 1);
	a->uid = (uint32_t)sqlite3_column_int64(st, 2);
	a->pid = (uint32_t)sqlite3_column_int64(st, 3);
	ledger_audit_copy(st, 4, a->user, sizeof(a->user));
	ledger_audit_copy(st, 5, a->call, sizeof(a->call));
	ledger_audit_copy(st, 6, a->result, sizeof(a->result));
	ledger_audit_copy(st, 7, a->detail, sizeof(a->detail));
	ledger_audit_copy(st, 8, a->before, sizeof(a->before));
	ledger_audit_copy(st, 9, a->after, sizeof(a->after));
	ledger_audit_copy(st, 10, a->prev_hash, sizeof(a->prev_hash));
	ledger_audit_copy(st, 11, a->hash, sizeof(a->hash));
}

int
ledger_audit_list(struct ledger *l, uint64_t offset, uint32_t limit, ledger_audit_cb cb, void *arg)
{
	sqlite3_stmt *st = l->st[LST_AUDIT_PAGE];
	struct ledger_audit a;
	int rc;

	if (limit == 0 || offset > INT64_MAX)
		return 0;
	sqlite3_bind_int64(st, 1, limit);
	sqlite3_bind_int64(st, 2, (int64_t)offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ledger_audit_row(st, &a);
		cb(&a, arg);
	}
	ledger_done(st);
	return rc == SQLITE_DONE ? 0 : ledger_sqlerr(l, "audit list");
}

int
ledger_audit_last(struct ledger *l, uint64_t after, const char *const *calls, size_t ncalls,
    const char *marker, struct ledger_audit *a)
{
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
		ledger_audit_row(st, a);
	ledger_done(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : ledger_sqlerr(l, "audit last");
}

int
ledger_audit_count(struct ledger *l, uint64_t *total)
{
	sqlite3_stmt *st = l->st[LST_AUDIT_COUNT];
	int rc;

	*total = 0;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*total = (uint64_t)sqlite3_column_int64(st, 0);
	ledger_done(st);
	return rc == SQLITE_ROW ? 0 : ledger_sqlerr(l, "audit count");
}

/*
 * One row of the chain against the record expected next (seq want, linked
 * to prev): NULL when it checks out (prev becomes its hash), else why not,
 * formatted in msg.
 */
static const char *
ledger_audit_check(sqlite3_stmt *st, uint64_t want, const char *prev, char *msg)
{
	static const char *const names[] = { "seq", "time", "uid", "pid", "user", "call", "result",
		"detail", "before", "after", "prev_hash", "hash" };
	int64_t ints[LEDGER_AUDIT_INTS];
	const char *s[LEDGER_AUDIT_STRS + 1];
	size_t n[LEDGER_AUDIT_STRS + 1];
	char hash[LEDGER_AUDIT_HASH_LEN + 1];
	int i, want_type;
	uint64_t seq;

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
	seq = (uint64_t)ints[0];
	if (ints[0] < 1 || seq < want) {
		snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
		    "record %lld is out of sequence (expected record %llu)", (long long)ints[0],
		    (unsigned long long)want);
		return msg;
	}
	if (seq != want) {
		if (seq == want + 1)
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record %llu is missing (the log goes on with record %llu)",
			    (unsigned long long)want, (unsigned long long)seq);
		else
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "records %llu to %llu are missing (the log goes on with record %llu)",
			    (unsigned long long)want, (unsigned long long)(seq - 1),
			    (unsigned long long)seq);
		return msg;
	}
	if (n[LEDGER_AUDIT_STRS - 1] != LEDGER_AUDIT_HASH_LEN ||
	    memcmp(s[LEDGER_AUDIT_STRS - 1], prev, LEDGER_AUDIT_HASH_LEN) != 0) {
		if (want == 1)
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record 1 does not start the chain (its prev_hash is not zeros): "
			    "earlier records were removed or it was changed");
		else
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record %llu does not link to record %llu (its prev_hash is not that "
			    "record's hash): one of them was changed and re-hashed",
			    (unsigned long long)want, (unsigned long long)(want - 1));
		return msg;
	}
	ledger_audit_digest(ints, s, n, hash);
	if (n[LEDGER_AUDIT_STRS] != LEDGER_AUDIT_HASH_LEN ||
	    memcmp(s[LEDGER_AUDIT_STRS], hash, LEDGER_AUDIT_HASH_LEN) != 0) {
		snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
		    "record %llu was changed: its hash does not match its contents",
		    (unsigned long long)want);
		return msg;
	}
	return NULL;
}

void
ledger_audit_walk_init(struct ledger_audit_walk *w)
{
	w->next = 1;
	memcpy(w->prev, LEDGER_AUDIT_ZEROS, sizeof(w->prev));
}

/*
 * One statement per slice, reset before returning: no read transaction stays
 * open between slices, and records appended meanwhile are walked in turn.
 */
int
ledger_audit_verify_step(
    struct ledger *l, struct ledger_audit_walk *w, uint32_t max, char *problem, size_t len)
{
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
		ledger_sqlerr(l, "audit verify");
		ledger_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((why = ledger_audit_check(st, w->next, w->prev, msg)) != NULL)
			break;
		memcpy(w->prev, sqlite3_column_text(st, LEDGER_AUDIT_INTS + LEDGER_AUDIT_STRS),
		    LEDGER_AUDIT_HASH_LEN);
		w->next++;
		seen++;
	}
	ledger_done(st);
	if (why != NULL) {
		snprintf(problem, len, "%s", why);
		return 0;
	}
	if (rc != SQLITE_DONE) {
		snprintf(problem, len, "cannot read the audit log: %s", sqlite3_errmsg(l->db));
		ledger_sqlerr(l, "audit verify");
		return -1;
	}
	return seen == max ? 2 : 1;
}

int
ledger_audit_verify(struct ledger *l, uint64_t *broken_at, char *problem, size_t len)
{
	struct ledger_audit_walk w;
	int r;

	ledger_audit_walk_init(&w);
	while ((r = ledger_audit_verify_step(l, &w, UINT32_MAX, problem, len)) == 2)
		;
	*broken_at = r == 0 ? w.next : 0;
	return r;
}

/*
 * The outcome of a swap in its audit detail: the bare verified= and rolled_back= arguments
 * audit_outcome writes. The detail is read by its grammar, left to right: arguments
 * "key=value" separated by one space, a string value in quotes (audit_sanitize escapes '"'
 * and '\\' inside it), then "; " and the reply's message, where reading stops. A --reason or
 * message that reads "rolled_back=yes" is inside quotes or after the arguments, and is never
 * taken for the outcome. 0 with both flags, or -1 when the detail holds no outcome.
 */
int
ledger_audit_outcome(const char *detail, int *verified, int *rolled_back)
{
	const char *p = detail, *eq, *end;
	size_t klen, vlen;
	int *flag;

	*verified = *rolled_back = -1;
	while (*p != '\0' && *p != ';') {
		eq = p + strcspn(p, "= ;\"");
		if (*eq != '=')
			break; /* not an argument: the message alone */
		klen = (size_t)(eq - p);
		end = eq + 1;
		if (*end == '"') {
			if ((end = strchr(end + 1, '"')) == NULL)
				break;
			end++;
		} else
			end += strcspn(end, " ;\"");
		vlen = (size_t)(end - eq - 1);
		flag = NULL;
		if (klen == strlen("verified") && memcmp(p, "verified", klen) == 0)
			flag = verified;
		else if (klen == strlen("rolled_back") && memcmp(p, "rolled_back", klen) == 0)
			flag = rolled_back;
		if (flag != NULL && vlen == 3 && memcmp(eq + 1, "yes", 3) == 0)
			*flag = 1;
		else if (flag != NULL && vlen == 2 && memcmp(eq + 1, "no", 2) == 0)
			*flag = 0;
		p = *end == ' ' ? end + 1 : end;
	}
	return *verified != -1 && *rolled_back != -1 ? 0 : -1;
}
