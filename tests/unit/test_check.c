/*
 * Unit tests for carotatectl check's judgement (client/ctl_check.c): the daemon's facts and
 * the thresholds in, the plugin state, the findings and the perfdata out. Each case is a
 * proxy an operator must hear about: a server certificate or a CA near its end, a migration
 * that stopped moving, a canary never confirmed, a damaged ledger, a rotate rolled back or
 * left unverified; and one that is fine, which must stay OK.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

#define NOW 1798254245LL /* 2026-12-26T03:04:05Z */
#define DAY 86400LL

struct facts {
	Carotate__V1__CheckReply r;
	Carotate__V1__CertInfo server, ca;
	Carotate__V1__CheckSwap swap;
};

/* A healthy proxy: 200 days on the server certificate, 5 years on the CA, nothing staged. */
static void
facts_init(struct facts *f)
{
	memset(f, 0, sizeof(*f));
	carotate__v1__check_reply__init(&f->r);
	carotate__v1__cert_info__init(&f->server);
	carotate__v1__cert_info__init(&f->ca);
	carotate__v1__check_swap__init(&f->swap);
	f->server.not_after = NOW + 200 * DAY;
	f->ca.not_after = NOW + 5 * 365 * DAY;
	f->r.now = NOW;
	f->r.server = &f->server;
	f->r.ca = &f->ca;
	f->r.ca_warn = 180 * DAY;
	f->r.renew_before = 30 * DAY;
	f->r.active_within = 7 * DAY;
	f->r.ledger_ok = 1;
	f->r.ledger_problem = (char *)"";
	f->r.staged_ca = (char *)"";
}

static void
judge(struct facts *f, struct ctl_check_result *res)
{
	ctl_check_judge(&f->r, CTL_CHECK_WARN_DEFAULT, CTL_CHECK_CRITICAL_DEFAULT, res);
}

/* The finding about name, or NULL. */
static const struct ctl_check_finding *
finding(const struct ctl_check_result *res, const char *name)
{
	size_t i;

	for (i = 0; i < res->n_findings; i++)
		if (strcmp(res->findings[i].name, name) == 0)
			return &res->findings[i];
	return NULL;
}

static char *
human(const struct ctl_check_result *res)
{
	static char buf[2048];
	FILE *fp = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(fp);
	assert_int_equal(ctl_check_human(fp, res), 0);
	fclose(fp);
	return buf;
}

static void
test_healthy_is_ok(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	assert_int_equal(res.n_findings, 0);
	assert_string_equal(human(&res),
	    "CAROTATE OK - server certificate expires in 200.0 days, CA in 1825.0 days, nothing "
	    "staged | server_days=200.0;30.0;7.0 ca_days=1825.0;180.0;30.0\n");
}

static void
test_server_thresholds(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.server.not_after = NOW + 10 * DAY;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	assert_non_null(finding(&res, "server_certificate"));
	assert_non_null(strstr(human(&res),
	    "CAROTATE WARNING - server certificate expires in 10.0 days (2027-01-05T03:04:05Z) | "
	    "server_days=10.0;30.0;7.0 "));
	ctl_check_judge(&f.r, 5 * DAY, 2 * DAY, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	ctl_check_judge(&f.r, 30 * DAY, 20 * DAY, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	/* Exactly on the threshold counts as inside it. */
	ctl_check_judge(&f.r, 10 * DAY, 2 * DAY, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	f.server.not_after = NOW - 1;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_non_null(strstr(finding(&res, "server_certificate")->text, "expired"));
	assert_non_null(strstr(human(&res), "server_days=-0.0;"));
	f.r.server = NULL;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_string_equal(
	    finding(&res, "server_certificate")->text, "no active server certificate");
	assert_null(strstr(human(&res), "server_days="));
}

static void
test_ca_thresholds(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.ca.not_after = NOW + 100 * DAY;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	assert_non_null(strstr(finding(&res, "ca")->text, "plan a CA rotation"));
	assert_non_null(strstr(human(&res), "ca_days=100.0;180.0;30.0"));
	/* [renew] ca_warn is the daemon's: a shorter one makes the same CA fine. */
	f.r.ca_warn = 90 * DAY;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	assert_non_null(strstr(human(&res), "ca_days=100.0;90.0;30.0"));
	f.ca.not_after = NOW + 29 * DAY;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
}

static void
test_migration_stuck(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.r.staged = 1;
	f.r.canary_confirmed = 1;
	f.r.percent = 40;
	f.r.active = 10;
	f.r.acknowledged = 4;
	f.r.percent_since = NOW - 7 * DAY + 1;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	assert_non_null(strstr(human(&res), ", migration moving | "));
	assert_non_null(strstr(human(&res), " acked_pct=40%;;;0;100\n"));
	f.r.percent_since = NOW - 7 * DAY;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	assert_string_equal(finding(&res, "migration")->text,
	    "staged migration stuck at 40 % acknowledged (4 of 10 active agents) for 7d 0h, "
	    "[agents] active_within 7d");
	/* At 100 % nothing is waiting: rotate is up to the operator. */
	f.r.percent = 100;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	/* Nothing staged: the percentage means nothing. */
	f.r.percent = 0;
	f.r.staged = 0;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	assert_null(strstr(human(&res), "acked_pct"));
}

static void
test_canary(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.r.staged = 1;
	f.r.percent_since = NOW;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	assert_non_null(finding(&res, "canary"));
	/* Without a canary_address it can never be confirmed: not a finding. */
	f.r.canary_check_unset = 1;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
}

static void
test_ledger_and_problems(void **state)
{
	static char *problems[] = { (char *)"server certificate expired",
		(char *)"private key missing or not a regular file" };
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.r.ledger_ok = 0;
	f.r.ledger_problem = (char *)"damaged: Page 7: btreeInitPage() returns error code 11";
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_string_equal(finding(&res, "ledger")->text,
	    "ledger damaged: Page 7: btreeInitPage() returns error code 11");
	/* A ledger that cannot count (a pool member cut off) is as critical as a damaged one. */
	facts_init(&f);
	f.r.ledger_ok = 0;
	f.r.ledger_problem =
	    (char *)"unreadable: the postgresql ledger cannot count the agents (the migration's "
	            "progress is unknown)";
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_string_equal(finding(&res, "ledger")->text,
	    "ledger unreadable: the postgresql ledger cannot count the agents (the migration's "
	    "progress is unknown)");
	facts_init(&f);
	f.r.problems = problems;
	f.r.n_problems = 2;
	judge(&f, &res);
	/* Expiry is judged from the dates: only the other problem is a finding of its own. */
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_int_equal(res.n_findings, 1);
	assert_string_equal(finding(&res, "active_set")->text,
	    "active set: private key missing or not a regular file");
}

static void
test_last_swap(void **state)
{
	struct ctl_check_result res;
	struct facts f;

	facts_init(&f);
	f.r.last_swap = &f.swap;
	f.swap.call = (char *)"rotate";
	f.swap.result = (char *)"OK";
	f.swap.time = NOW - DAY;
	f.swap.seq = 12;
	f.swap.verified = 1;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_OK);
	f.swap.verified = 0;
	f.swap.rolled_back = 1;
	f.swap.result = (char *)"INTERNAL";
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_WARNING);
	assert_string_equal(finding(&res, "last_swap")->text,
	    "last rotate (2026-12-25T03:04:05Z, audit record 12) was rolled back");
	f.swap.rolled_back = 0;
	f.swap.call = (char *)"restore";
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_string_equal(finding(&res, "last_swap")->text,
	    "last restore (2026-12-25T03:04:05Z, audit record 12) was not verified: INTERNAL");
}

/* The worst state wins and the summary names every finding. */
static void
test_worst_wins_all_named(void **state)
{
	struct ctl_check_result res;
	struct facts f;
	const char *line;

	facts_init(&f);
	f.server.not_after = NOW + 20 * DAY;
	f.ca.not_after = NOW + 10 * DAY;
	f.r.ledger_ok = 0;
	judge(&f, &res);
	assert_int_equal(res.state, CTL_CHECK_CRITICAL);
	assert_int_equal(res.n_findings, 3);
	line = human(&res);
	assert_non_null(
	    strstr(line, "CAROTATE CRITICAL - server certificate expires in 20.0 days"));
	assert_non_null(strstr(line, "; CA expires in 10.0 days"));
	assert_non_null(strstr(line, "; ledger damaged: quick_check failed | "));
	assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
}

static void
test_json(void **state)
{
	struct ctl_check_result res;
	struct facts f;
	json_t *o, *fs;
	char buf[4096];
	FILE *fp;

	facts_init(&f);
	f.server.not_after = NOW + 10 * DAY;
	f.r.staged = 1;
	f.r.canary_confirmed = 1;
	f.r.percent = 55;
	f.r.percent_since = NOW;
	judge(&f, &res);
	fp = fmemopen(buf, sizeof(buf), "w");
	assert_int_equal(ctl_check_json(fp, &res), 0);
	fclose(fp);
	assert_non_null(o = json_loads(buf, 0, NULL));
	assert_string_equal(json_string_value(json_object_get(o, "state")), "WARNING");
	assert_int_equal(json_integer_value(json_object_get(o, "exit_code")), 1);
	assert_non_null(json_string_value(json_object_get(o, "summary")));
	fs = json_object_get(o, "findings");
	assert_int_equal(json_array_size(fs), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fs, 0), "check")),
	    "server_certificate");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(fs, 0), "state")), "WARNING");
	assert_true(json_real_value(
	                json_object_get(json_object_get(o, "perfdata"), "server_days")) == 10.0);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "perfdata"), "acked_pct")), 55);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(o, "thresholds"), "ca_critical")),
	    30 * DAY);
	json_decref(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_healthy_is_ok),
		cmocka_unit_test(test_server_thresholds),
		cmocka_unit_test(test_ca_thresholds),
		cmocka_unit_test(test_migration_stuck),
		cmocka_unit_test(test_canary),
		cmocka_unit_test(test_ledger_and_problems),
		cmocka_unit_test(test_last_swap),
		cmocka_unit_test(test_worst_wins_all_named),
		cmocka_unit_test(test_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
