/*
 * The ledger's contract checks, engine-independent: they go through ledger.h
 * only, and peek at the tables (agents, stagings, join_tokens, whose columns
 * both engines share) through the test's own connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ledger_contract.h"

#define ZEROS B0

struct page {
	char ids[64][LEDGER_MAX_AGENT_ID + 1];
	int64_t seen[64];
	int delivered[64];
	int n;
};

struct holdings {
	char ids[8][LEDGER_BUNDLE_ID_LEN + 1];
	uint64_t n[8];
	int count;
};

struct snapshot {
	struct ledger_counts c[3];
	struct page p;
	struct holdings h;
};

struct audit_page {
	struct ledger_audit recs[16];
	size_t n;
};

static int64_t acked_at(struct ledger_contract *, const char *id);
static void counts(struct ledger *, time_t now, uint64_t window, struct ledger_counts *);
static uint64_t narrow(uint64_t);

uint64_t ledger_contract_slack;
static void join1(struct ledger *, int n, uint32_t uses, int64_t expires, struct ledger_join *);
static enum ledger_result linkj(
    struct ledger *, const char *id, int tok, const struct ledger_join *, time_t now);
static void count_join(const struct ledger_join *, void *arg);
static void page_cb(const char *id, int64_t last_seen, int delivered, void *arg);
static void get_page(struct ledger *, time_t now, uint64_t off, uint32_t lim, struct page *);
static void holding_cb(const char *bundle_id, uint64_t agents, void *arg);
static void snap(struct ledger *, struct snapshot *);
static void audit_collect(const struct ledger_audit *, void *arg);

/* ---- helpers ---- */

void
ledger_contract_token(int n, uint8_t out[LEDGER_TOKEN_HASH_LEN])
{
	int i;

	for (i = 0; i < LEDGER_TOKEN_HASH_LEN; i++)
		out[i] = (uint8_t)(n * 31 + i * 7 + 1);
}

void
ledger_contract_link(struct ledger *l, const char *id, int tok, time_t now)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];

	ledger_contract_token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link(l, id, h, now), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
}

enum ledger_result
ledger_contract_checkin(struct ledger *l, const char *id, int tok, const char *presented,
    int canary, time_t now, int *send)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	enum ledger_result r;
	int s = -1;

	ledger_contract_token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	r = ledger_checkin(l, id, h, presented, canary, now, &s);
	assert_int_equal(ledger_commit(l), 0);
	assert_true(s == 0 || s == 1);
	if (send != NULL)
		*send = s;
	return r;
}

int
ledger_contract_send(
    struct ledger *l, const char *id, int tok, const char *presented, int canary, time_t now)
{
	int send;

	assert_int_equal(
	    ledger_contract_checkin(l, id, tok, presented, canary, now, &send), LEDGER_OK);
	return send;
}

void
ledger_contract_expect(struct ledger *l, time_t now, uint64_t linked, uint64_t active,
    uint64_t acknowledged, uint64_t verified, uint64_t delivered, uint64_t pending,
    uint64_t inactive_lacking, uint64_t excluded, uint64_t current)
{
	struct ledger_counts c;

	counts(l, now, WEEK, &c);
	assert_int_equal(c.linked, linked);
	assert_int_equal(c.active, active);
	assert_int_equal(c.acknowledged, acknowledged);
	assert_int_equal(c.verified, verified);
	assert_int_equal(c.delivered, delivered);
	assert_int_equal(c.pending, pending);
	assert_int_equal(c.inactive_lacking, inactive_lacking);
	assert_int_equal(c.excluded, excluded);
	assert_int_equal(c.current, current);
}

/* The window to pass the engine for an active window of w (ledger_contract_slack). */
static uint64_t
narrow(uint64_t w)
{
	return w == UINT64_MAX || w <= ledger_contract_slack ? w : w - ledger_contract_slack;
}

/* ledger_count, which must answer. */
static void
counts(struct ledger *l, time_t now, uint64_t window, struct ledger_counts *c)
{
	assert_int_equal(ledger_count(l, now, narrow(window), c), 0);
}

/* The acknowledged_at of agent id for the open staging (-2 NULL, -1 no row). */
static int64_t
acked_at(struct ledger_contract *c, const char *id)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
	    "SELECT a.acknowledged_at FROM agents a JOIN stagings s ON s.id = a.staging "
	    "WHERE s.ended_at IS NULL AND a.agent_id = '%s'",
	    id);
	return c->sql_int(sql);
}

void
ledger_contract_audit_rec(struct ledger_audit *a, int i)
{
	memset(a, 0, sizeof(*a));
	a->time = T0 + i;
	a->uid = (uint32_t)(1000 + i);
	a->pid = (uint32_t)(4000 + i);
	snprintf(a->user, sizeof(a->user), "user%d", i);
	snprintf(a->call, sizeof(a->call), "%s", i % 2 ? "generate" : "exclude");
	snprintf(a->result, sizeof(a->result), "%s", i % 3 ? "OK" : "PERMISSION_DENIED");
	snprintf(a->detail, sizeof(a->detail), "agent=\"a%d\" reason=\"r%d\"", i, i);
	snprintf(a->before, sizeof(a->before), "active=%d/%d staged=-", i, i);
	snprintf(a->after, sizeof(a->after), "active=%d/%d staged=%d", i, i, i + 1);
}

int
ledger_contract_verify(struct ledger *l, uint64_t *broken_at, char *problem, size_t len)
{
	struct ledger_audit_walk w;
	int r;

	ledger_audit_walk_init(&w);
	while ((r = ledger_audit_verify_step(l, &w, 3, problem, len)) == 2)
		;
	*broken_at = r == 0 ? w.next : 0;
	return r;
}

int
ledger_contract_walk(
    struct ledger *l, struct ledger_audit_walk *w, uint32_t max, int *steps, char *problem)
{
	int r;

	*steps = 0;
	do
		(*steps)++;
	while ((r = ledger_audit_verify_step(l, w, max, problem, 512)) == 2);
	return r;
}

/* ---- check-ins: delivered, acknowledged, verified ---- */

/* The whole path of one agent: link, hold, staged, delivered, acknowledged, verified. */
void
ledger_contract_flow(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_link(l, "a1", 1, T0);
	/* Steady: lacking = not holding the current bundle; just linked is pending. */
	ledger_contract_expect(l, T0, 1, 1, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B0, 0, T0 + 10), 0);
	ledger_contract_expect(l, T0 + 10, 1, 1, 0, 0, 0, 0, 0, 0, 1);

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_expect(l, T0 + 20, 1, 1, 0, 0, 0, 1, 0, 0, 0);
	/* It presents the old bundle it holds: it gets the new one. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B0, 0, T0 + 30), 1);
	ledger_contract_expect(l, T0 + 30, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(acked_at(c, "a1"), -2);
	/* It presents the new one back: acknowledged, 304. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 40), 0);
	ledger_contract_expect(l, T0 + 40, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	assert_int_equal(acked_at(c, "a1"), T0 + 40);
	/* Later check-ins keep the first acknowledgement time. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 50), 0);
	assert_int_equal(acked_at(c, "a1"), T0 + 40);
	/* Through the canary listener: verified. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 1, T0 + 60), 0);
	ledger_contract_expect(l, T0 + 60, 1, 1, 1, 1, 1, 0, 0, 0, 1);
	assert_int_equal(c->sql_int("SELECT verified_at FROM agents"), T0 + 60);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 1, T0 + 70), 0);
	assert_int_equal(c->sql_int("SELECT verified_at FROM agents"), T0 + 60);
	/* Inactive beyond the window: counted as lacking nothing more. */
	ledger_contract_expect(l, T0 + 70 + WEEK + 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
}

/* A link while staged records the delivery; presenting it back acknowledges. */
void
ledger_contract_link_while_staged(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_expect(l, T0, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	/* No If-None-Match: it did not keep the bundle; send it again, no ack. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, NULL, 0, T0 + 1), 1);
	ledger_contract_expect(l, T0 + 1, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 2), 0);
	ledger_contract_expect(l, T0 + 2, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	/* A canary check-in proves trust without acknowledging. */
	ledger_contract_link(l, "a2", 2, T0 + 3);
	assert_int_equal(ledger_contract_send(l, "a2", 2, NULL, 1, T0 + 4), 1);
	ledger_contract_expect(l, T0 + 4, 2, 2, 1, 1, 2, 1, 0, 0, 1);
}

/* An If-None-Match naming a bundle never delivered to this agent never acknowledges. */
void
ledger_contract_forged_if_none_match(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_link(l, "old", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "new", 2, T0 + 1); /* was sent B1 */

	/* "old" was never sent B1, yet claims it: no ack, and it is sent B1 for the record. */
	assert_int_equal(ledger_contract_send(l, "old", 1, B1, 0, T0 + 2), 1);
	ledger_contract_expect(l, T0 + 2, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(acked_at(c, "old"), -2);
	/* An id nobody was ever sent: nothing either. */
	assert_int_equal(ledger_contract_send(l, "new", 2, B2, 0, T0 + 3), 1);
	assert_int_equal(ledger_contract_send(l, "new", 2, S1, 0, T0 + 4), 1);
	ledger_contract_expect(l, T0 + 4, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	/* Only after the delivery is on record does presenting it count. */
	assert_int_equal(ledger_contract_send(l, "old", 1, B1, 0, T0 + 5), 0);
	ledger_contract_expect(l, T0 + 5, 2, 2, 1, 0, 2, 1, 0, 0, 1);
}

/*
 * A delivery whose batch failed is sent again: the agent is not stuck behind a
 * 304. A staging restarted (a discard, the same CA staged again) starts over.
 */
void
ledger_contract_lost_delivery(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	int send;

	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_link(l, "a1", 1, T0);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_token(1, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_checkin(l, "a1", h, B0, 0, T0 + 1, &send), LEDGER_OK);
	assert_int_equal(send, 1);
	ledger_rollback(l); /* say the 200 went out anyway */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 2), 1);
	ledger_contract_expect(l, T0 + 2, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 3), 0);
	ledger_contract_expect(l, T0 + 3, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	/* Discard, then stage S1 again: nothing delivered in the new staging. */
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	ledger_contract_expect(l, T0 + 4, 1, 1, 0, 0, 0, 1, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 5), 1);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B2, 0, T0 + 6), 0);
	ledger_contract_expect(l, T0 + 6, 1, 1, 1, 0, 1, 0, 0, 0, 1);
	assert_int_equal(c->sql_int("SELECT count(*) FROM stagings"), 2);
	assert_int_equal(c->sql_int("SELECT count(*) FROM stagings WHERE ended_at IS NULL"), 1);
}

/* ---- tokens, join tokens, renewal, forget ---- */

void
ledger_contract_tokens(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_agent a;
	uint8_t h3[LEDGER_TOKEN_HASH_LEN];
	int send = -1;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0);
	/* Wrong token, another agent's token, an unknown agent: refused, nothing changes. */
	assert_int_equal(
	    ledger_contract_checkin(l, "a1", 99, B1, 1, T0 + 5, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(send, 0);
	assert_int_equal(
	    ledger_contract_checkin(l, "a1", 2, B1, 1, T0 + 5, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(
	    ledger_contract_checkin(l, "nobody", 1, B1, 1, T0 + 5, &send), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(send, 0);
	ledger_contract_expect(l, T0 + 5, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(acked_at(c, "a1"), -2);
	assert_int_equal(
	    c->sql_int("SELECT count(*) FROM agents WHERE verified_at IS NOT NULL"), 0);

	/*
	 * a1 acknowledges; a re-link of its id (the shared linking key is all it takes) is
	 * refused and changes nothing; after a forget it links anew: the old token stops
	 * working, the ack is gone.
	 */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 10), 0);
	ledger_contract_expect(l, T0 + 10, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	ledger_contract_token(3, h3);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link(l, "a1", h3, T0 + 20), LEDGER_EXISTS);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_expect(l, T0 + 20, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 20), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_forget(l, "a1"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_expect(l, T0 + 20, 1, 1, 0, 0, 1, 1, 0, 0, 0);
	ledger_contract_link(l, "a1", 3, T0 + 20);
	ledger_contract_expect(l, T0 + 20, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(
	    ledger_contract_checkin(l, "a1", 1, B1, 0, T0 + 21, &send), LEDGER_BAD_TOKEN);
	ledger_contract_expect(l, T0 + 21, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.linked_at, T0 + 20);
	assert_int_equal(a.last_seen, T0 + 20);
	assert_int_equal(
	    c->sql_int("SELECT first_seen FROM agents WHERE agent_id = 'a1'"), T0 + 20);
	assert_int_equal(ledger_contract_send(l, "a1", 3, B1, 0, T0 + 22), 0);
	ledger_contract_expect(l, T0 + 22, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	/* Outside a batch, the write calls are refused. */
	assert_int_equal(ledger_link(l, "a9", h3, T0), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(l, "a1", h3, B1, 0, T0, &send), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), -1);
	ledger_contract_expect(l, T0 + 22, 2, 2, 1, 0, 2, 1, 0, 0, 1);
}

/* A join token for the tests: id "00000000000000" + two hex of n, hash from
 * ledger_contract_token(n). */
static void
join1(struct ledger *l, int n, uint32_t uses, int64_t expires, struct ledger_join *j)
{
	memset(j, 0, sizeof(*j));
	snprintf(j->id, sizeof(j->id), "00000000000000%02x", n);
	ledger_contract_token(100 + n, j->hash);
	j->uses_left = uses;
	j->expires_at = expires;
	j->created_at = T0;
	snprintf(j->description, sizeof(j->description), "batch %d", n);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_create(l, j), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
}

static enum ledger_result
linkj(struct ledger *l, const char *id, int tok, const struct ledger_join *j, time_t now)
{
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	enum ledger_result r;

	ledger_contract_token(tok, h);
	assert_int_equal(ledger_begin(l), 0);
	r = ledger_link_join(l, id, h, j->id, j->hash, now);
	assert_int_equal(ledger_commit(l), 0);
	return r;
}

static void
count_join(const struct ledger_join *j, void *arg)
{
	struct ledger_join *out = arg;
	uint8_t zero[LEDGER_TOKEN_HASH_LEN] = { 0 };

	assert_memory_equal(j->hash, zero, sizeof(zero)); /* the list never carries it */
	out->uses_left += j->uses_left;
	out->created_at++;
}

/*
 * Join tokens, issued through one handle and used through the other: each link
 * uses one use in the same transaction; a used-up, expired, revoked or wrong
 * token links nobody and uses nothing; a link that fails (the id is taken)
 * gives the use back.
 */
void
ledger_contract_join_tokens(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l, *o = c->other;
	struct ledger_join j, k, sum;
	uint8_t wrong[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_set_target(o, S1, B1), 0);
	join1(l, 1, 2, T0 + 100, &j);
	assert_int_equal(linkj(o, "j1", 1, &j, T0), LEDGER_OK);
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens"), 1);
	/* The id is taken: refused, and the use is not spent. */
	assert_int_equal(linkj(l, "j1", 2, &j, T0), LEDGER_EXISTS);
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens"), 1);
	assert_int_equal(linkj(o, "j2", 2, &j, T0), LEDGER_OK);
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens"), 0);
	assert_int_equal(linkj(l, "j3", 3, &j, T0), LEDGER_NOT_FOUND); /* used up */
	ledger_contract_expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	/* Wrong secret, expired, malformed id, revoked. */
	join1(o, 2, 5, T0 + 100, &k);
	memcpy(wrong, k.hash, sizeof(wrong));
	wrong[0] ^= 1;
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "j3", wrong, k.id, wrong, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_link_join(l, "j3", wrong, "XYZ", k.hash, T0), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_check(l, k.id, k.hash, T0 + 100), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_check(l, k.id, k.hash, T0 + 99), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(linkj(l, "j3", 3, &k, T0 + 100), LEDGER_NOT_FOUND); /* expired */
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens WHERE id LIKE '%02'"), 5);
	memset(&sum, 0, sizeof(sum));
	assert_int_equal(ledger_join_list(l, count_join, &sum), 0);
	assert_int_equal(sum.created_at, 2);
	assert_int_equal(sum.uses_left, 5);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_revoke(l, k.id), LEDGER_OK);
	assert_int_equal(ledger_join_revoke(l, k.id), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_join_revoke(l, "not-hex"), LEDGER_NOT_FOUND);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(linkj(o, "j3", 3, &k, T0), LEDGER_NOT_FOUND);
	/* Bad inputs refused before SQL: no use, a control character, a bad id. */
	k.uses_left = 0;
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	k.uses_left = 1;
	snprintf(k.description, sizeof(k.description), "bad\nline");
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	snprintf(k.description, sizeof(k.description), "ok");
	snprintf(k.id, sizeof(k.id), "00000000000000ZZ");
	assert_int_equal(ledger_join_create(l, &k), LEDGER_ERROR);
	/* The same id twice. */
	assert_int_equal(ledger_join_create(l, &j), LEDGER_EXISTS);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
}

/*
 * The use and the link are one: a rolled-back batch keeps both the use and the
 * id free; a link failing inside the database is undone alone and gives the
 * use back, and the batch goes on and commits.
 */
void
ledger_contract_join_atomic(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_join j;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	join1(l, 1, 1, T0 + 100, &j);
	ledger_contract_token(1, h);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link_join(l, "j1", h, j.id, j.hash, T0), LEDGER_OK);
	assert_int_equal(ledger_total(l), 1);
	ledger_rollback(l);
	assert_int_equal(ledger_total(l), 0);
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens"), 1);
	assert_int_equal(c->sql_int("SELECT count(*) FROM agents"), 0);
	c->refuse(c);
	l = c->l;
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_link(l, "a1", h, T0), LEDGER_OK);
	assert_int_equal(ledger_link(l, "boom", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link_join(l, "boom", h, j.id, j.hash, T0), LEDGER_ERROR);
	assert_int_equal(ledger_link_join(l, "j1", h, j.id, j.hash, T0), LEDGER_OK);
	assert_int_equal(ledger_total(l), 2);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(c->sql_int("SELECT uses_left FROM join_tokens"), 0);
	assert_int_equal(c->sql_int("SELECT count(*) FROM agents"), 2);
	assert_int_equal(ledger_total(l), 2);
	ledger_contract_expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
}

/* One call failing (a trigger aborts its write): it is undone alone, the rest commits. */
void
ledger_contract_failed_call_undone(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_agent a;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	c->refuse(c);
	l = c->l;
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	ledger_contract_token(2, h);
	assert_int_equal(ledger_link(l, "a2", h, T0 + 1), LEDGER_OK);
	ledger_contract_token(1, h);
	send = -1;
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, 4242, &send), LEDGER_ERROR);
	assert_int_equal(send, 0);
	assert_int_equal(ledger_exclude(l, "a2", "spare"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	/* a1's check-in left nothing: neither last_seen nor the ack. */
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(acked_at(c, "a1"), -2);
	ledger_contract_expect(l, T0 + 1, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 2), 0);
	ledger_contract_expect(l, T0 + 2, 2, 1, 1, 0, 1, 0, 0, 1, 1);
}

/* Renewal needs the current token; forget and the never-confirmed sweep. */
void
ledger_contract_renew_forget(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l, *o = c->other;
	uint8_t h1[LEDGER_TOKEN_HASH_LEN], h2[LEDGER_TOKEN_HASH_LEN], h9[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts n_c;
	uint64_t n = 99;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_set_target(o, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0);
	ledger_contract_link(o, "young", 3, T0 + 500);
	assert_int_equal(ledger_contract_send(o, "a1", 1, B1, 0, T0 + 10), 0); /* a1 acknowledges */
	ledger_contract_token(1, h1);
	ledger_contract_token(2, h2);
	ledger_contract_token(9, h9);
	assert_int_equal(ledger_begin(o), 0);
	assert_int_equal(ledger_renew(o, "a1", h2, h9, T0 + 20), LEDGER_BAD_TOKEN);
	assert_int_equal(ledger_renew(o, "nobody", h1, h9, T0 + 20), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_renew(o, "a1", h1, h9, T0 + 20), LEDGER_OK);
	assert_int_equal(ledger_commit(o), 0);
	/* The renewed token works through the other handle, the old one nowhere. */
	assert_int_equal(
	    ledger_contract_checkin(l, "a1", 1, B1, 0, T0 + 21, &send), LEDGER_BAD_TOKEN);
	assert_int_equal(ledger_contract_checkin(l, "a1", 9, B1, 0, T0 + 21, &send), LEDGER_OK);
	ledger_contract_expect(l, T0 + 21, 3, 3, 1, 0, 3, 2, 0, 0, 1); /* the ack is kept */
	counts(o, T0 + 21, WEEK, &n_c);
	assert_int_equal(n_c.never_confirmed, 2);
	/* a2 and young never confirmed; only a2 linked before T0 + 100. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_forget_unconfirmed(l, T0 + 100, &n), LEDGER_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_forget(l, "nobody"), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_forget(l, ""), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), 0);
	counts(o, T0 + 21, WEEK, &n_c);
	assert_int_equal(n_c.linked, 2);
	assert_int_equal(n_c.never_confirmed, 1);
	assert_int_equal(ledger_total(o), 2);
	assert_int_equal(
	    ledger_contract_checkin(o, "a2", 2, B1, 0, T0 + 22, &send), LEDGER_UNKNOWN_AGENT);
	/* Outside a batch: refused. */
	assert_int_equal(ledger_forget(l, "a1"), LEDGER_ERROR);
	/* Reopened: the same. */
	c->reopen(c);
	l = c->l;
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_total(l), 2);
	counts(l, T0 + 21, WEEK, &n_c);
	assert_int_equal(n_c.never_confirmed, 1);
}

void
ledger_contract_exclude_include(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_agent a;
	struct ledger_counts n_c;
	char reason[LEDGER_MAX_REASON + 2];
	uint8_t h1[LEDGER_TOKEN_HASH_LEN], h4[LEDGER_TOKEN_HASH_LEN];

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "a1", "decommissioned"), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "ghost", "x"), LEDGER_UNKNOWN_AGENT);
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(ledger_exclude(l, "a2", reason), LEDGER_ERROR);
	/* Not counted before the commit (a pool's counts refuse to look inside a batch). */
	if (c->counts_in_batch)
		ledger_contract_expect(l, T0, 2, 2, 0, 0, 2, 2, 0, 0, 0);
	else
		assert_int_equal(ledger_count(l, T0, WEEK, &n_c), -1);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_expect(l, T0, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 1);
	assert_string_equal(a.reason, "decommissioned");
	/* An excluded agent still checks in, is listed nowhere in the counts. */
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 1), 0);
	ledger_contract_expect(l, T0 + 1, 2, 1, 0, 0, 1, 1, 0, 1, 0);
	/* Renewing its token keeps the exclusion. */
	ledger_contract_token(1, h1);
	ledger_contract_token(4, h4);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_renew(l, "a1", h1, h4, T0 + 2), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 1);
	/* Exclude again: the reason is replaced. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "a1", "retired"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_string_equal(a.reason, "retired");
	/* Include: counted again, with what it did while excluded; the reason is cleared. */
	assert_int_equal(ledger_contract_send(l, "a1", 4, B1, 0, T0 + 3), 0);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_include(l, "a1"), LEDGER_OK);
	assert_int_equal(ledger_include(l, "ghost"), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_commit(l), 0);
	ledger_contract_expect(l, T0 + 3, 2, 2, 1, 0, 2, 1, 0, 0, 1);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.excluded, 0);
	assert_string_equal(a.reason, "");
	assert_int_equal(ledger_get(l, "ghost", &a), LEDGER_UNKNOWN_AGENT);
}

/* ---- counts, batches ---- */

/* 999 of 1000 acknowledged: the counts the report rounds down from. */
void
ledger_contract_one_of_thousand(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_counts n_c;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	char id[32];
	int i, send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_begin(l), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%04d", i);
		ledger_contract_token(i, h);
		assert_int_equal(ledger_link(l, id, h, T0), LEDGER_OK);
	}
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_begin(l), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "agent-%04d", i);
		ledger_contract_token(i, h);
		assert_int_equal(
		    ledger_checkin(l, id, h, i == 517 ? NULL : B1, 0, T0 + 1, &send), LEDGER_OK);
		assert_int_equal(send, i == 517);
	}
	assert_int_equal(ledger_commit(l), 0);
	counts(l, T0 + 1, WEEK, &n_c);
	assert_int_equal(n_c.active, 1000);
	assert_int_equal(n_c.acknowledged, 999);
	assert_int_equal(n_c.pending, 1);
	assert_int_equal(n_c.acknowledged * 100 / n_c.active, 99);
}

void
ledger_contract_window_boundaries(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_counts n_c;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "edge", 1, T0);
	ledger_contract_link(l, "stale", 2, T0 - 1);
	ledger_contract_link(l, "done", 3, T0 - 5);
	assert_int_equal(ledger_contract_send(l, "done", 3, B1, 0, T0 - 1), 0);
	/* last_seen == now - window is active; one second earlier is not. */
	ledger_contract_expect(l, T0 + WEEK, 3, 1, 0, 0, 1, 1, 1, 0, 0);
	counts(l, T0 + WEEK + 1, WEEK, &n_c);
	assert_int_equal(n_c.active, 0);
	assert_int_equal(n_c.inactive_lacking, 2); /* "done" acknowledged: not lacking */
	/* A window wider than the epoch: everything is active. */
	counts(l, T0, UINT64_MAX, &n_c);
	assert_int_equal(n_c.active, 3);
	/* A window of 0 is only the second now; a pool's widening still takes in the two
	 * agents seen a second before. */
	counts(l, T0, 0, &n_c);
	assert_int_equal(n_c.active, ledger_contract_slack == 0 ? 1 : 3);
}

void
ledger_contract_batch_rules(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_agent a;
	char id[LEDGER_MAX_AGENT_ID + 2];
	int send;

	ledger_contract_token(1, h);
	/* Writes outside a batch are refused. */
	assert_int_equal(ledger_in_batch(l), 0);
	assert_int_equal(ledger_link(l, "a1", h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_checkin(l, "a1", h, NULL, 0, T0, &send), LEDGER_ERROR);
	assert_int_equal(ledger_exclude(l, "a1", "x"), LEDGER_ERROR);
	assert_int_equal(ledger_include(l, "a1"), LEDGER_ERROR);
	assert_int_equal(ledger_commit(l), -1);
	ledger_rollback(l);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_UNKNOWN_AGENT);
	/* One batch at a time; no target change inside one. */
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_in_batch(l), 1);
	assert_int_equal(ledger_begin(l), -1);
	assert_int_equal(ledger_set_target(l, S1, B1), -1);
	/* Malformed ids are refused even though the caller checks them. */
	assert_int_equal(ledger_link(l, "", h, T0), LEDGER_ERROR);
	memset(id, 'x', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(ledger_link(l, id, h, T0), LEDGER_ERROR);
	assert_int_equal(ledger_get(l, id, &a), LEDGER_ERROR);
	id[LEDGER_MAX_AGENT_ID] = '\0';
	assert_int_equal(ledger_link(l, id, h, T0), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	assert_int_equal(ledger_set_target(l, "", B1), -1);
	assert_int_equal(ledger_set_target(l, S1, B1 "1"), -1);
	ledger_contract_expect(l, T0, 1, 1, 0, 0, 0, 0, 0, 0, 0);
}

/*
 * A rolled-back batch leaves the counts, and the database, as they were. Inside
 * the batch the database shows its writes; the counts never do (SQLite answers
 * the committed ones, a pool's refuse).
 */
void
ledger_contract_rollback(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	uint8_t h[LEDGER_TOKEN_HASH_LEN];
	struct ledger_counts before, after;
	struct ledger_agent a;
	int send;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	counts(l, T0, WEEK, &before);
	assert_int_equal(ledger_begin(l), 0);
	ledger_contract_token(2, h);
	assert_int_equal(ledger_link(l, "a2", h, T0), LEDGER_OK);
	ledger_contract_token(1, h);
	assert_int_equal(ledger_checkin(l, "a1", h, B1, 1, T0 + 9, &send), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "a1", "x"), LEDGER_OK);
	assert_int_equal(ledger_get(l, "a2", &a), LEDGER_OK);
	assert_int_equal(ledger_total(l), 2);
	if (c->counts_in_batch) {
		counts(l, T0, WEEK, &after);
		assert_memory_equal(&before, &after, sizeof(before));
	} else {
		assert_int_equal(ledger_count(l, T0, WEEK, &after), -1);
	}
	ledger_rollback(l);
	assert_int_equal(ledger_total(l), 1);
	counts(l, T0, WEEK, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(ledger_get(l, "a2", &a), LEDGER_UNKNOWN_AGENT);
	assert_int_equal(ledger_get(l, "a1", &a), LEDGER_OK);
	assert_int_equal(a.last_seen, T0);
	assert_int_equal(a.excluded, 0);
	c->reopen(c);
	l = c->l;
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	counts(l, T0, WEEK, &after);
	assert_memory_equal(&before, &after, sizeof(before));
}

/* ---- pending pages, holdings ---- */

static void
page_cb(const char *id, int64_t last_seen, int delivered, void *arg)
{
	struct page *p = arg;

	assert_true(p->n < 64);
	snprintf(p->ids[p->n], sizeof(p->ids[p->n]), "%s", id);
	p->seen[p->n] = last_seen;
	p->delivered[p->n] = delivered;
	p->n++;
}

static void
get_page(struct ledger *l, time_t now, uint64_t off, uint32_t lim, struct page *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(ledger_pending(l, now, narrow(WEEK), off, lim, page_cb, p), 0);
}

/* Pages of pending agents: last seen first, ties in link order, consistent with the counts. */
void
ledger_contract_pending_pages(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct page *all = calloc(1, sizeof(*all)), *p = calloc(1, sizeof(*p));
	char id[32];
	int i, off, lim, k;

	assert_non_null(all);
	assert_non_null(p);
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	/* 40 agents; last_seen T0 + (i % 10); every 4th acknowledges; one is excluded. */
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "p%02d", i);
		ledger_contract_link(l, id, i, T0 - WEEK - 5);
		if (i % 4 == 0)
			assert_int_equal(ledger_contract_send(l, id, i, B1, 0, T0 + (i % 10)), 0);
		else if (i != 39)
			assert_int_equal(ledger_contract_send(l, id, i, NULL, 0, T0 + (i % 10)), 1);
	}
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "p01", "gone"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	/* 40 - 10 acked - p01 excluded - p39 inactive = 28 pending. */
	ledger_contract_expect(l, T0 + 10, 40, 38, 10, 0, 38, 28, 1, 1, 10);
	get_page(l, T0 + 10, 0, 64, all);
	assert_int_equal(all->n, 28);
	for (i = 1; i < all->n; i++) {
		assert_true(all->seen[i - 1] >= all->seen[i]);
		if (all->seen[i - 1] == all->seen[i])
			assert_true(strcmp(all->ids[i - 1], all->ids[i]) < 0);
	}
	assert_string_equal(all->ids[0], "p09");
	assert_int_equal(all->seen[0], T0 + 9);
	assert_string_equal(all->ids[1], "p19");
	assert_int_equal(all->delivered[0], 1);
	for (lim = 1; lim <= 30; lim += 4)
		for (off = 0; off <= 30; off++) {
			get_page(l, T0 + 10, (uint64_t)off, (uint32_t)lim, p);
			k = off >= 28 ? 0 : (off + lim > 28 ? 28 - off : lim);
			assert_int_equal(p->n, k);
			for (i = 0; i < p->n; i++)
				assert_string_equal(p->ids[i], all->ids[off + i]);
		}
	get_page(l, T0 + 10, UINT64_MAX, 10, p);
	assert_int_equal(p->n, 0);
	get_page(l, T0 + 10, 0, 0, p);
	assert_int_equal(p->n, 0);
	free(all);
	free(p);
}

/*
 * Ties in last_seen go by link order, not by id; with nothing staged pending
 * means not holding the current bundle, staged it means not acknowledged.
 */
void
ledger_contract_pending_ties(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct page *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_link(l, "a3", 3, T0 + 5);
	ledger_contract_link(l, "a2", 2, T0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a4", 4, T0);
	assert_int_equal(ledger_contract_send(l, "a4", 4, B0, 0, T0 + 1), 0);
	get_page(l, T0 + 10, 0, 8, p);
	assert_int_equal(p->n, 3);
	assert_string_equal(p->ids[0], "a3");
	assert_string_equal(p->ids[1], "a2");
	assert_string_equal(p->ids[2], "a1");
	get_page(l, T0 + 10, 1, 1, p);
	assert_int_equal(p->n, 1);
	assert_string_equal(p->ids[0], "a2");
	/* Staged: pending means not acknowledged, with the delivery flag. */
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, NULL, 0, T0 + 11), 1);
	get_page(l, T0 + 12, 0, 8, p);
	assert_int_equal(p->n, 4);
	assert_string_equal(p->ids[0], "a1");
	assert_int_equal(p->delivered[0], 1);
	assert_int_equal(p->delivered[1], 0);
	free(p);
}

static void
holding_cb(const char *bundle_id, uint64_t agents, void *arg)
{
	struct holdings *h = arg;

	assert_true(h->count < 8);
	snprintf(h->ids[h->count], sizeof(h->ids[h->count]), "%s", bundle_id);
	h->n[h->count++] = agents;
}

void
ledger_contract_holdings(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct holdings h = { 0 };
	struct page *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_link(l, "h1", 1, T0);
	ledger_contract_link(l, "h2", 2, T0);
	ledger_contract_link(l, "h3", 3, T0);
	ledger_contract_link(l, "h4", 4, T0);
	assert_int_equal(ledger_contract_send(l, "h1", 1, B0, 0, T0), 0);
	assert_int_equal(ledger_contract_send(l, "h2", 2, B0, 0, T0), 0);
	assert_int_equal(ledger_set_target(l, NULL, B2), 0); /* say a retire changed the bundle */
	assert_int_equal(ledger_contract_send(l, "h3", 3, B0, 0, T0), 1); /* holds B0, sent B2 */
	assert_int_equal(ledger_contract_send(l, "h3", 3, B2, 0, T0), 0);
	assert_int_equal(ledger_contract_send(l, "h1", 1, B0, 0, T0), 1);
	ledger_contract_expect(l, T0, 4, 4, 0, 0, 0, 3, 0, 0, 1);
	assert_int_equal(ledger_holdings(l, T0, narrow(WEEK), holding_cb, &h), 0);
	assert_int_equal(h.count, 3);
	assert_string_equal(h.ids[0], B0);
	assert_int_equal(h.n[0], 2);
	/* Equal counts: in bundle row order, "" (none known) first. */
	assert_int_equal(h.n[1], 1);
	assert_int_equal(h.n[2], 1);
	assert_string_equal(h.ids[1], "");
	assert_string_equal(h.ids[2], B2);
	/* Steady pending: not holding the current bundle. */
	get_page(l, T0, 0, 10, p);
	assert_int_equal(p->n, 3);
	/* No bundle at all: nothing to lack. */
	assert_int_equal(ledger_set_target(l, NULL, NULL), 0);
	ledger_contract_expect(l, T0, 4, 4, 0, 0, 0, 0, 0, 0, 0);
	free(p);
}

static void
snap(struct ledger *l, struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	counts(l, T0 + 100, WEEK, &s->c[0]);
	counts(l, T0 + WEEK + 3, WEEK, &s->c[1]);
	counts(l, T0 + 100, 10, &s->c[2]);
	get_page(l, T0 + 100, 0, 64, &s->p);
	assert_int_equal(ledger_holdings(l, T0 + 100, narrow(WEEK), holding_cb, &s->h), 0);
}

/* Closing and opening again gives exactly the same counts, pages and holdings. */
void
ledger_contract_reopen_same_counts(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct snapshot *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char id[32];
	int i;

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	for (i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "r%02d", i);
		ledger_contract_link(l, id, i, T0 + i % 7);
		if (i % 3 == 0)
			ledger_contract_send(l, id, i, B0, 0, T0 + i);
	}
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	for (i = 0; i < 30; i += 2) {
		snprintf(id, sizeof(id), "r%02d", i);
		ledger_contract_send(l, id, i, i % 4 == 0 ? B0 : NULL, i % 5 == 0, T0 + 50 + i);
		if (i % 8 == 0)
			ledger_contract_send(l, id, i, B1, 0, T0 + 60 + i);
	}
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_exclude(l, "r05", "x"), LEDGER_OK);
	assert_int_equal(ledger_exclude(l, "r08", "y"), LEDGER_OK);
	assert_int_equal(ledger_commit(l), 0);
	snap(l, a);
	assert_true(a->c[0].acknowledged > 0 && a->c[0].verified > 0 && a->c[0].pending > 0);
	c->reopen(c);
	l = c->l;
	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	snap(l, b);
	assert_memory_equal(a, b, sizeof(*a));
	free(a);
	free(b);
}

/* Switching the target: a new staging starts from nothing; only a bundle change keeps it. */
void
ledger_contract_switch_target(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;

	assert_int_equal(ledger_set_target(l, S1, B1), 0);
	ledger_contract_link(l, "a1", 1, T0);
	ledger_contract_link(l, "a2", 2, T0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 1, T0 + 1), 0);
	ledger_contract_expect(l, T0 + 1, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* The same CA, another bundle (a retained CA expired): flags kept. */
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	ledger_contract_expect(l, T0 + 1, 2, 2, 1, 1, 2, 1, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B1, 0, T0 + 2), 1);
	assert_int_equal(ledger_contract_send(l, "a1", 1, B2, 0, T0 + 3), 0);
	ledger_contract_expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* Restarting with the same CA keeps the staging (no set_target needed for the flags). */
	c->reopen(c);
	l = c->l;
	ledger_contract_expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 0);
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	ledger_contract_expect(l, T0 + 3, 2, 2, 1, 1, 2, 1, 0, 0, 1);
	/* Another CA: nothing delivered, acknowledged or verified for it. */
	assert_int_equal(ledger_set_target(l, S2, B1), 0);
	ledger_contract_expect(l, T0 + 3, 2, 2, 0, 0, 0, 2, 0, 0, 0);
	assert_int_equal(ledger_contract_send(l, "a2", 2, B1, 0, T0 + 4), 1);
	assert_int_equal(ledger_contract_send(l, "a2", 2, B1, 0, T0 + 5), 0);
	ledger_contract_expect(l, T0 + 5, 2, 2, 1, 0, 1, 1, 0, 0, 1);
	/* S1 again (a discard, then the same CA installed): its old acks do not count. */
	assert_int_equal(ledger_set_target(l, NULL, B0), 0);
	ledger_contract_expect(l, T0 + 5, 2, 2, 0, 0, 0, 2, 0, 0, 0);
	assert_int_equal(ledger_set_target(l, S1, B2), 0);
	ledger_contract_expect(l, T0 + 5, 2, 2, 0, 0, 0, 2, 0, 0, 1); /* a1 still holds B2 */
	assert_int_equal(c->sql_int("SELECT count(*) FROM stagings"), 3);
	assert_int_equal(c->sql_int("SELECT count(*) FROM stagings WHERE ended_at IS NULL"), 1);
}

/* ---- the audit log ---- */

static void
audit_collect(const struct ledger_audit *a, void *arg)
{
	struct audit_page *p = arg;

	assert_true(p->n < 16);
	p->recs[p->n++] = *a;
}

/* Appended records chain from the newest on disk; listed newest first, every field kept. */
void
ledger_contract_audit_append_list(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct audit_page *p = calloc(1, sizeof(*p));
	struct ledger_audit a, want;
	char problem[512], h[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t total, at;
	int i;

	assert_non_null(p);
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(ledger_audit_verify(l, &at, problem, sizeof(problem)), 1);
	for (i = 1; i <= 3; i++) {
		ledger_contract_audit_rec(&a, i);
		assert_int_equal(ledger_audit_append(i == 2 ? c->other : l, &a), 0);
		assert_int_equal(a.seq, i);
		ledger_audit_hash(&a, h);
		assert_string_equal(a.hash, h);
		if (i == 1)
			assert_string_equal(a.prev_hash, ZEROS);
		else
			assert_string_equal(a.prev_hash, want.hash);
		want = a;
	}

	/* Reopened: the chain goes on from the newest record on disk. */
	c->reopen(c);
	l = c->l;
	ledger_contract_audit_rec(&a, 4);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(a.seq, 4);
	assert_string_equal(a.prev_hash, want.hash);
	assert_int_equal(ledger_audit_count(c->other, &total), 0);
	assert_int_equal(total, 4);

	/* Newest first, paged; every field as written. */
	assert_int_equal(ledger_audit_list(l, 0, 10, audit_collect, p), 0);
	assert_int_equal(p->n, 4);
	for (i = 0; i < 4; i++) {
		ledger_contract_audit_rec(&want, 4 - i);
		assert_int_equal(p->recs[i].seq, 4 - i);
		assert_int_equal(p->recs[i].time, want.time);
		assert_int_equal(p->recs[i].uid, want.uid);
		assert_int_equal(p->recs[i].pid, want.pid);
		assert_string_equal(p->recs[i].user, want.user);
		assert_string_equal(p->recs[i].call, want.call);
		assert_string_equal(p->recs[i].result, want.result);
		assert_string_equal(p->recs[i].detail, want.detail);
		assert_string_equal(p->recs[i].before, want.before);
		assert_string_equal(p->recs[i].after, want.after);
		ledger_audit_hash(&p->recs[i], h);
		assert_string_equal(p->recs[i].hash, h);
		if (i < 3)
			assert_string_equal(p->recs[i].prev_hash, p->recs[i + 1].hash);
	}
	p->n = 0;
	assert_int_equal(ledger_audit_list(l, 1, 2, audit_collect, p), 0);
	assert_int_equal(p->n, 2);
	assert_int_equal(p->recs[0].seq, 3);
	assert_int_equal(p->recs[1].seq, 2);
	p->n = 0;
	assert_int_equal(ledger_audit_list(l, 4, 10, audit_collect, p), 0);
	assert_int_equal(p->n, 0);
	assert_int_equal(ledger_audit_list(l, UINT64_MAX, 10, audit_collect, p), 0);
	assert_int_equal(p->n, 0);
	assert_int_equal(ledger_audit_verify(l, &at, problem, sizeof(problem)), 1);
	assert_int_equal(at, 0);
	assert_string_equal(problem, "");
	free(p);
}

/* Inside a batch an append is refused: a rollback of the batch would take it along. */
void
ledger_contract_audit_not_in_batch(void **state)
{
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_audit a;
	uint64_t total;

	ledger_contract_audit_rec(&a, 1);
	assert_int_equal(ledger_begin(l), 0);
	assert_int_equal(ledger_audit_append(l, &a), -1);
	ledger_rollback(l);
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(ledger_audit_append(l, &a), 0);
	assert_int_equal(ledger_audit_count(l, &total), 0);
	assert_int_equal(total, 1);
	/* A batch still works after an append. */
	ledger_contract_link(l, "alpha", 1, T0);
}

/*
 * The walk a slice at a time reaches the whole walk's verdict, whatever the
 * slice; records appended between slices are walked. The newest record of
 * some calls with a marker is found from the top, above a given number.
 */
void
ledger_contract_audit_walk(void **state)
{
	static const char *const calls[] = { "generate" };
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	struct ledger_audit_walk w;
	struct ledger_audit a;
	char problem[512];
	uint64_t broken;
	int i, steps;

	for (i = 1; i <= 10; i++) {
		ledger_contract_audit_rec(&a, i);
		assert_int_equal(ledger_audit_append(i % 2 ? l : c->other, &a), 0);
		assert_int_equal(a.seq, (uint64_t)i);
	}
	ledger_audit_walk_init(&w);
	assert_int_equal(ledger_contract_walk(c->other, &w, 1, &steps, problem), 1);
	assert_int_equal(steps, 11); /* ten full slices of one, then the end */
	assert_int_equal(w.next, 11);
	assert_string_equal(problem, "");
	assert_int_equal(ledger_contract_verify(l, &broken, problem, sizeof(problem)), 1);

	/* Slices of 3: records appended after the second are walked too. */
	ledger_audit_walk_init(&w);
	assert_int_equal(ledger_audit_verify_step(l, &w, 3, problem, sizeof(problem)), 2);
	assert_int_equal(ledger_audit_verify_step(l, &w, 3, problem, sizeof(problem)), 2);
	assert_int_equal(w.next, 7);
	ledger_contract_audit_rec(&a, 11);
	assert_int_equal(ledger_audit_append(c->other, &a), 0);
	assert_int_equal(ledger_contract_walk(l, &w, 3, &steps, problem), 1);
	assert_int_equal(steps, 2); /* 7..9, then 10..11 */
	assert_int_equal(w.next, 12);

	/* The newest "generate" (odd records) whose detail holds the marker. */
	assert_int_equal(ledger_audit_last(l, 0, calls, 1, "reason=", &a), 1);
	assert_int_equal(a.seq, 11);
	assert_string_equal(a.detail, "agent=\"a11\" reason=\"r11\"");
	assert_int_equal(ledger_audit_last(c->other, 0, calls, 1, "\"r5\"", &a), 1);
	assert_int_equal(a.seq, 5);
	assert_int_equal(ledger_audit_last(l, 5, calls, 1, "\"r5\"", &a), 0);
	assert_int_equal(ledger_audit_last(l, 11, calls, 1, "reason=", &a), 0);
	assert_int_equal(ledger_audit_last(l, 0, calls, 1, "\"r4\"", &a), 0); /* an exclude */
}

/*
 * A run of check-ins (ledger_checkin_run) answers each as single calls one after another
 * would. Two fleets with the same history, "a-" checked in one call at a time and "b-" in
 * runs, batch for batch: a pseudo-random mix of agents (an agent twice or more in a batch,
 * unknown agents, invalid ids, an id full of the characters an array literal quotes), wrong
 * tokens, bundles presented (none, the current one, an old one, one never served, strings
 * meant to break quoting or encoding), canary check-ins, the target changing and agents
 * excluded between batches. Every answer must be the same for both fleets, and so must every
 * agent's row at the end.
 */
#define RUN_AGENTS 10
#define RUN_STEPS  80
#define RUN_MAX    24

static uint64_t
run_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The id of agent k of fleet f ('a' or 'b'): k == RUN_AGENTS the quoting one. */
static void
run_id(char f, int k, char *out, size_t len)
{
	if (k == RUN_AGENTS)
		snprintf(out, len, "%c-q\"{,}\\ NULL'", f);
	else if (k == RUN_AGENTS + 1)
		snprintf(out, len, "%c-unknown", f);
	else if (k == RUN_AGENTS + 2)
		out[0] = '\0'; /* invalid */
	else
		snprintf(out, len, "%c-%d", f, k);
}

static void
run_compare_rows(struct ledger_contract *c, int k)
{
	static const char *const cols[] = { "last_seen", "held_bundle", "delivered_bundle",
		"staging", "staged_delivered_at", "acknowledged_at", "verified_at", "is_excluded" };
	char a[LEDGER_MAX_AGENT_ID + 1], b[LEDGER_MAX_AGENT_ID + 1], sql[256];
	size_t i;
	int64_t va;

	run_id('a', k, a, sizeof(a));
	run_id('b', k, b, sizeof(b));
	for (i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		/* ids are compared by their place in the fleet, not spelled into the SQL */
		snprintf(sql, sizeof(sql),
		    "SELECT %s FROM agents WHERE id = (SELECT id FROM agents WHERE agent_id LIKE "
		    "'a-%%' ORDER BY id LIMIT 1 OFFSET %d)",
		    cols[i], k);
		va = c->sql_int(sql);
		snprintf(sql, sizeof(sql),
		    "SELECT %s FROM agents WHERE id = (SELECT id FROM agents WHERE agent_id LIKE "
		    "'b-%%' ORDER BY id LIMIT 1 OFFSET %d)",
		    cols[i], k);
		if (c->sql_int(sql) != va)
			fail_msg("agent %d: %s differs between %s and %s", k, cols[i], a, b);
	}
}

void
ledger_contract_checkin_run(void **state)
{
	static const char *const targets[][2] = { { NULL, B1 }, { S1, B2 }, { S1, B2 },
		{ NULL, B2 }, { S2, B1 } };
	static const char *const hostile[] = { B0, "\"", "\\", "{" B1 "}", "NULL", "", " , ",
		"x\",\"y", "\xc3\xa9", "\xff\xfe", B1 "\"" };
	struct ledger_contract *c = *state;
	struct ledger *l = c->l;
	char ids[2][RUN_MAX][LEDGER_MAX_AGENT_ID + 1];
	uint8_t hashes[RUN_MAX][LEDGER_TOKEN_HASH_LEN];
	struct ledger_checkin run[RUN_MAX];
	const char *pres[RUN_MAX], *cur = B1, *old = B2;
	int canary[RUN_MAX], step, i, k, m, t = 0, send;
	uint64_t s = 0x2545f4914f6cdd1dULL;
	enum ledger_result r;
	time_t now = T0;

	assert_int_equal(ledger_set_target(l, targets[0][0], targets[0][1]), 0);
	for (k = 0; k <= RUN_AGENTS; k++) {
		run_id('a', k, ids[0][0], sizeof(ids[0][0]));
		ledger_contract_link(l, ids[0][0], k + 1, now);
		run_id('b', k, ids[1][0], sizeof(ids[1][0]));
		ledger_contract_link(l, ids[1][0], k + 1, now);
	}
	for (step = 0; step < RUN_STEPS; step++) {
		now += 1 + (time_t)(run_rng(&s) % 400); /* sometimes past last_seen's granularity */
		if (step % 16 == 15) {
			t = (t + 1) % (int)(sizeof(targets) / sizeof(targets[0]));
			old = cur;
			cur = targets[t][1];
			assert_int_equal(ledger_set_target(l, targets[t][0], targets[t][1]), 0);
		}
		if (step % 7 == 6) {
			k = (int)(run_rng(&s) % RUN_AGENTS);
			for (i = 0; i < 2; i++) {
				run_id(i == 0 ? 'a' : 'b', k, ids[i][0], sizeof(ids[i][0]));
				assert_int_equal(ledger_begin(l), 0);
				if (step % 2 == 0)
					assert_int_equal(
					    ledger_exclude(l, ids[i][0], "x"), LEDGER_OK);
				else
					assert_int_equal(ledger_include(l, ids[i][0]), LEDGER_OK);
				assert_int_equal(ledger_commit(l), 0);
			}
		}
		m = 1 + (int)(run_rng(&s) % RUN_MAX);
		for (i = 0; i < m; i++) {
			/* half on four agents (repeats in a batch), then each of the others */
			k = (int)(run_rng(&s) % (8 + RUN_AGENTS + 3));
			k = k < 8 ? k % 4 : k - 8;
			run_id('a', k, ids[0][i], sizeof(ids[0][i]));
			run_id('b', k, ids[1][i], sizeof(ids[1][i]));
			ledger_contract_token(run_rng(&s) % 9 == 0 ? 99 : k + 1, hashes[i]);
			switch (run_rng(&s) % 8) {
			case 0:
				pres[i] = NULL;
				break;
			case 1:
				pres[i] = old;
				break;
			case 2:
				pres[i] =
				    hostile[run_rng(&s) % (sizeof(hostile) / sizeof(hostile[0]))];
				break;
			default:
				pres[i] = cur;
			}
			canary[i] = run_rng(&s) % 4 == 0;
		}
		assert_int_equal(ledger_begin(l), 0);
		for (i = 0; i < m; i++) {
			memset(&run[i], 0, sizeof(run[i]));
			run[i].result = (enum ledger_result) - 1;
			run[i].send_bundle = -1;
			run[i].agent_id = ids[0][i];
			send = -1;
			run[i].result =
			    ledger_checkin(l, ids[0][i], hashes[i], pres[i], canary[i], now, &send);
			run[i].send_bundle = send;
		}
		assert_int_equal(ledger_commit(l), 0);
		{
			struct ledger_checkin b[RUN_MAX];

			memset(b, 0, sizeof(b));
			for (i = 0; i < m; i++) {
				b[i].agent_id = ids[1][i];
				b[i].token_hash = hashes[i];
				b[i].presented = pres[i];
				b[i].canary = canary[i];
				b[i].result = (enum ledger_result) - 1;
				b[i].send_bundle = -1;
			}
			assert_int_equal(ledger_begin(l), 0);
			ledger_checkin_run(l, b, (size_t)m, now);
			assert_int_equal(ledger_commit(l), 0);
			for (i = 0; i < m; i++) {
				r = b[i].result;
				if (r != run[i].result || b[i].send_bundle != run[i].send_bundle)
					fail_msg(
					    "step %d, check-in %d of %d (%s, presented %s): one "
					    "at a time %d, send %d; in a run %d, send %d",
					    step, i, m, ids[1][i],
					    pres[i] != NULL ? pres[i] : "none", run[i].result,
					    run[i].send_bundle, r, b[i].send_bundle);
			}
		}
	}
	for (k = 0; k <= RUN_AGENTS; k++)
		run_compare_rows(c, k);
	/* Outside a batch a run is refused, each check-in of it. */
	run[0].agent_id = "a-0";
	run[0].token_hash = hashes[0];
	run[0].presented = NULL;
	run[0].canary = 0;
	run[1] = run[0];
	run[1].agent_id = "a-1";
	ledger_checkin_run(l, run, 2, now);
	assert_int_equal(run[0].result, LEDGER_ERROR);
	assert_int_equal(run[1].result, LEDGER_ERROR);
}
