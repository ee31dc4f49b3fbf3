/*
 * The ledger's contract (ledger.h), checked the same way on every engine:
 * test_ledger (SQLite) and test_ledger_pg (PostgreSQL) register the
 * ledger_contract_* checks in their cmocka tables, with a set-up of their own
 * that empties the ledger, opens it and hands the checks a struct
 * ledger_contract as the test's state. Where an engine differs by contract
 * (ledger.h says how), the struct says which way, and the check asserts it.
 */
#ifndef CAROTATE_LEDGER_CONTRACT_H
#define CAROTATE_LEDGER_CONTRACT_H

#include <stdint.h>
#include <time.h>

#include "ledger.h"

#define B0   "0000000000000000000000000000000000000000000000000000000000000000"
#define B1   "1111111111111111111111111111111111111111111111111111111111111111"
#define B2   "2222222222222222222222222222222222222222222222222222222222222222"
#define S1   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define S2   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DAY  86400
#define WEEK (7 * DAY)
#define T0   1700000000

struct ledger_contract {
	struct ledger *l; /* the ledger under test, empty at the start */
	/* Another way into the same ledger: a second pool member, or l itself. */
	struct ledger *other;
	/* Closes l and other and opens the same ledger again (new handles in l and other). */
	void (*reopen)(struct ledger_contract *);
	/* One integer through the test's own connection (-2 NULL, -1 no row). */
	int64_t (*sql_int)(const char *sql);
	/*
	 * Makes the database refuse (triggers) a new agent named "boom" and an
	 * update that sets verified_at to 4242; may reopen.
	 */
	void (*refuse)(struct ledger_contract *);
	/*
	 * ledger_count inside a batch: 1 it answers the committed counts (SQLite's
	 * index), 0 it fails (-1): a pool's counts would see the batch's own rows.
	 */
	int counts_in_batch;
};

/*
 * Seconds the engine widens the active window by (ledger.h: a pool's counts, since a
 * check-in that changes nothing else writes last_seen only every LEDGER_SEEN_GRANULARITY
 * seconds): 0 for SQLite. The checks pass the engine a window narrowed by it, so that the
 * same boundaries hold on both engines, and say where a window too narrow for that differs.
 */
extern uint64_t ledger_contract_slack;

/* The token hash of test token n. */
void ledger_contract_token(int n, uint8_t out[LEDGER_TOKEN_HASH_LEN]);
/* Links id with token tok at now, in a batch of its own. */
void ledger_contract_link(struct ledger *, const char *id, int tok, time_t now);
/* One check-in in its own batch; returns the result, *send (may be NULL) the bundle decision. */
enum ledger_result ledger_contract_checkin(struct ledger *, const char *id, int tok,
    const char *presented, int canary, time_t now, int *send);
/* A check-in that must succeed: whether the bundle is sent. */
int ledger_contract_send(
    struct ledger *, const char *id, int tok, const char *presented, int canary, time_t now);
/* The counts at now over a week's window must be these, in ledger_counts order. */
void ledger_contract_expect(struct ledger *, time_t now, uint64_t linked, uint64_t active,
    uint64_t acknowledged, uint64_t verified, uint64_t delivered, uint64_t pending,
    uint64_t inactive_lacking, uint64_t excluded, uint64_t current);
/* Audit record i of a test log: every field differs from record to record. */
void ledger_contract_audit_rec(struct ledger_audit *, int i);
/* The chain walked in slices of 3: the last step's result, *broken_at the record it names. */
int ledger_contract_verify(struct ledger *, uint64_t *broken_at, char *problem, size_t len);

/*
 * Walks on from w in steps of max records until the end: the last step's result;
 * *steps counts them, problem (512 bytes) says why the chain broke.
 */
int ledger_contract_walk(
    struct ledger *, struct ledger_audit_walk *w, uint32_t max, int *steps, char *problem);

/* The checks: each a cmocka test whose state is a struct ledger_contract. */
void ledger_contract_flow(void **state);
void ledger_contract_link_while_staged(void **state);
void ledger_contract_forged_if_none_match(void **state);
void ledger_contract_lost_delivery(void **state);
void ledger_contract_tokens(void **state);
void ledger_contract_join_tokens(void **state);
void ledger_contract_join_atomic(void **state);
void ledger_contract_failed_call_undone(void **state);
void ledger_contract_renew_forget(void **state);
void ledger_contract_exclude_include(void **state);
void ledger_contract_one_of_thousand(void **state);
void ledger_contract_window_boundaries(void **state);
void ledger_contract_batch_rules(void **state);
void ledger_contract_rollback(void **state);
void ledger_contract_pending_pages(void **state);
void ledger_contract_pending_ties(void **state);
void ledger_contract_holdings(void **state);
void ledger_contract_reopen_same_counts(void **state);
void ledger_contract_switch_target(void **state);
void ledger_contract_audit_append_list(void **state);
void ledger_contract_audit_not_in_batch(void **state);
void ledger_contract_audit_walk(void **state);
void ledger_contract_checkin_run(void **state);

/* The table rows: every check with the engine's set-up and tear-down. */
#define LEDGER_CONTRACT_TESTS(setup, teardown)                                                     \
	cmocka_unit_test_setup_teardown(ledger_contract_flow, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(ledger_contract_link_while_staged, setup, teardown),   \
	    cmocka_unit_test_setup_teardown(                                                       \
	        ledger_contract_forged_if_none_match, setup, teardown),                            \
	    cmocka_unit_test_setup_teardown(ledger_contract_lost_delivery, setup, teardown),       \
	    cmocka_unit_test_setup_teardown(ledger_contract_tokens, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(ledger_contract_join_tokens, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(ledger_contract_join_atomic, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(ledger_contract_failed_call_undone, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(ledger_contract_renew_forget, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(ledger_contract_exclude_include, setup, teardown),     \
	    cmocka_unit_test_setup_teardown(ledger_contract_one_of_thousand, setup, teardown),     \
	    cmocka_unit_test_setup_teardown(ledger_contract_window_boundaries, setup, teardown),   \
	    cmocka_unit_test_setup_teardown(ledger_contract_batch_rules, setup, teardown),         \
	    cmocka_unit_test_setup_teardown(ledger_contract_rollback, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(ledger_contract_pending_pages, setup, teardown),       \
	    cmocka_unit_test_setup_teardown(ledger_contract_pending_ties, setup, teardown),        \
	    cmocka_unit_test_setup_teardown(ledger_contract_holdings, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(ledger_contract_reopen_same_counts, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(ledger_contract_switch_target, setup, teardown),       \
	    cmocka_unit_test_setup_teardown(ledger_contract_audit_append_list, setup, teardown),   \
	    cmocka_unit_test_setup_teardown(ledger_contract_audit_not_in_batch, setup, teardown),  \
	    cmocka_unit_test_setup_teardown(ledger_contract_audit_walk, setup, teardown),          \
	    cmocka_unit_test_setup_teardown(ledger_contract_checkin_run, setup, teardown)

#endif
