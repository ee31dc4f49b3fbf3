/*
 * A ledger that cannot count (a pool member cut off from its database) is never taken for
 * one with no agents: rotate's gate refuses, forced or not, report answers an error, check
 * reports the ledger unreadable, and the metrics leave the agent gauges out. The ledger is
 * the SQLite engine on a scratch state, wrapped (ledger_wrap) with a table whose count fails
 * on demand; the same calls with the count working are the control.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "carotated.h"
#include "config.h"
#include "dispatch.h"
#include "fixture.h"
#include "ledger.h"
#include "ledger_backend.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "reply.h"
#include "xmalloc.h"

#define T_AGENT "host-1.example"

static struct fixture fx;
static struct carotated cd;
static struct ledger_backend cut_off; /* the SQLite engine, its count failing on demand */
static int count_fails;
static char metrics_path[400];

static int
cut_off_count(void *self, time_t now, uint64_t window, struct ledger_counts *c)
{
	if (count_fails) {
		c->linked = 7; /* garbage the front must not pass on */
		return -1;
	}
	return ledger_sqlite_backend.count(self, now, window, c);
}

/* An active set, a staged one (its CA the ledger's target), and one agent that lacks it. */
static int
setup(void **state)
{
	static const uint8_t token[LEDGER_TOKEN_HASH_LEN] = { 1 };
	char err[512], staging[320], ca[PKI_SHA256_HEX];
	struct ledger_sqlite *s;

	log_init(1, 0, "test_count");
	if (fixture_init(&fx, "/tmp", "count", &cd.conf) == -1)
		return -1;
	fixture_write_set(fx.ssl, "count-active", 1, NULL, NULL);
	snprintf(staging, sizeof(staging), "%s/new", fx.ssl);
	if (mkdir(staging, 0700) == -1)
		return -1;
	fixture_write_set(staging, "count-staged", 1, ca, NULL);
	snprintf(cd.staged_ca, sizeof(cd.staged_ca), "%s", ca);
	snprintf(metrics_path, sizeof(metrics_path), "%s/carotate.prom", fx.base);
	cd.conf->metrics_textfile = xstrdup(metrics_path);
	cut_off = ledger_sqlite_backend;
	cut_off.count = cut_off_count;
	if ((s = ledger_sqlite_open(cd.conf->state_dir, err, sizeof(err))) == NULL ||
	    (cd.ledger = ledger_wrap(&cut_off, s)) == NULL) {
		print_error("ledger: %s\n", err);
		return -1;
	}
	if (ledger_set_target(cd.ledger, ca, NULL) == -1 || ledger_begin(cd.ledger) == -1 ||
	    ledger_link(cd.ledger, T_AGENT, token, time(NULL)) != LEDGER_OK ||
	    ledger_commit(cd.ledger) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	ledger_close(cd.ledger);
	config_free(cd.conf);
	return fixture_remove(&fx);
}

/* Runs a dry-run rotate (forced with a reason, or not); the reply's status, message in *msg. */
static Carotate__V1__Status
rotate(int force, char **msg)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__RotateRequest q = CAROTATE__V1__ROTATE_REQUEST__INIT;
	struct rpc_ctx ctx = {
		.cd = &cd, .role = ACL_ADMIN, .phase = CAROTATE__V1__PHASE__PHASE_STAGED
	};
	Carotate__V1__Response *reply = reply_new();
	Carotate__V1__Status status;

	q.dry_run = 1;
	q.force = force;
	q.reason = (char *)(force ? "maintenance window" : "");
	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_ROTATE;
	req.rotate = &q;
	rpc_rotate(&ctx, &req, reply);
	status = reply->status;
	*msg = xstrdup(reply->message);
	reply_free(reply);
	return status;
}

static void
test_count_front(void **state)
{
	struct ledger_counts c;

	count_fails = 0;
	assert_int_equal(ledger_count(cd.ledger, time(NULL), 86400, &c), 0);
	assert_int_equal(c.linked, 1);
	assert_int_equal(c.active, 1);
	count_fails = 1;
	assert_int_equal(ledger_count(cd.ledger, time(NULL), 86400, &c), -1);
	assert_int_equal(c.linked, 0); /* zeros, never what a failed engine left behind */
	count_fails = 0;
}

static void
test_gate_refuses(void **state)
{
	char *msg;

	/* Control: the agent has not acknowledged, so the gate refuses; forced, it would go. */
	count_fails = 0;
	assert_int_equal(rotate(0, &msg), CAROTATE__V1__STATUS__FAILED_PRECONDITION);
	assert_non_null(strstr(msg, "only 0 of 1 active agents"));
	free(msg);
	assert_int_equal(rotate(1, &msg), CAROTATE__V1__STATUS__OK);
	assert_non_null(strstr(msg, "dry run"));
	free(msg);

	/* Cut off: refused, and --force does not override what nobody can count. */
	count_fails = 1;
	assert_int_equal(rotate(0, &msg), CAROTATE__V1__STATUS__UNAVAILABLE);
	assert_non_null(strstr(msg, "the sqlite ledger cannot count the agents"));
	assert_non_null(strstr(msg, "nothing was rotated"));
	free(msg);
	assert_int_equal(rotate(1, &msg), CAROTATE__V1__STATUS__UNAVAILABLE);
	assert_non_null(strstr(msg, "not even with --force"));
	free(msg);
	count_fails = 0;
}

static void
test_report_fails(void **state)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__ReportRequest q = CAROTATE__V1__REPORT_REQUEST__INIT;
	struct rpc_ctx ctx = { .cd = &cd, .role = ACL_READER };
	Carotate__V1__Response *reply;

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_REPORT;
	req.report = &q;
	count_fails = 0;
	reply = reply_new();
	rpc_report(&ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__OK);
	assert_int_equal(reply->result_case, CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY);
	assert_int_equal(reply->report_reply->linked, 1);
	reply_free(reply);

	count_fails = 1;
	reply = reply_new();
	rpc_report(&ctx, &req, reply);
	assert_int_equal(reply->status, CAROTATE__V1__STATUS__UNAVAILABLE);
	assert_non_null(strstr(reply->message, "cannot count the agents"));
	assert_int_not_equal(reply->result_case, CAROTATE__V1__RESPONSE__RESULT_REPORT_REPLY);
	reply_free(reply);
	count_fails = 0;
}

/* check's reply: ledger_ok and its problem. */
static int
check(char **problem)
{
	Carotate__V1__Request req = CAROTATE__V1__REQUEST__INIT;
	Carotate__V1__CheckRequest q = CAROTATE__V1__CHECK_REQUEST__INIT;
	struct rpc_ctx ctx = {
		.cd = &cd, .role = ACL_READER, .phase = CAROTATE__V1__PHASE__PHASE_STAGED
	};
	Carotate__V1__Response *reply = reply_new();
	int ok;

	req.version = 1;
	req.call_case = CAROTATE__V1__REQUEST__CALL_CHECK;
	req.check = &q;
	rpc_check(&ctx, &req, reply);
	assert_int_equal(reply->result_case, CAROTATE__V1__RESPONSE__RESULT_CHECK_REPLY);
	ok = reply->check_reply->ledger_ok;
	*problem = xstrdup(reply->check_reply->ledger_problem);
	reply_free(reply);
	return ok;
}

static void
test_check_unreadable(void **state)
{
	char *problem;

	count_fails = 0;
	assert_int_equal(check(&problem), 1);
	assert_string_equal(problem, "");
	free(problem);
	count_fails = 1;
	assert_int_equal(check(&problem), 0);
	assert_non_null(strstr(problem, "unreadable: the sqlite ledger cannot count the agents"));
	free(problem);
	count_fails = 0;
	assert_int_equal(check(&problem), 1);
	free(problem);
}

/* The metrics file's text, as metrics_write just wrote it. */
static char *
metrics(void)
{
	static char text[16384];
	FILE *f;
	size_t n;

	metrics_write(&cd, cd.ledger, "", cd.staged_ca);
	assert_non_null(f = fopen(metrics_path, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void
test_metrics_flag(void **state)
{
	const char *text;

	count_fails = 0;
	text = metrics();
	assert_non_null(strstr(text, "\ncarotate_ledger_counted 1\n"));
	assert_non_null(strstr(text, "carotate_agents{state=\"active\"} 1\n"));
	assert_non_null(strstr(text, "\ncarotate_migration_ratio 0.000000\n"));
	count_fails = 1;
	text = metrics();
	assert_non_null(strstr(text, "\ncarotate_ledger_counted 0\n"));
	assert_null(strstr(text, "carotate_agents"));
	assert_null(strstr(text, "carotate_migration_ratio"));
	assert_non_null(strstr(text, "carotate_bundle_info")); /* the rest is still written */
	count_fails = 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_front),
		cmocka_unit_test(test_gate_refuses),
		cmocka_unit_test(test_report_fails),
		cmocka_unit_test(test_check_unreadable),
		cmocka_unit_test(test_metrics_flag),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
