/* The trust bundle's retained CAs: derivation within the window, and retire. */
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bundle.h"
#include "config.h"
#include "fixture_fs.h"
#include "fixture_pki.h"
#include "pki.h"
#include "retained.h"

#define RETENTION (30 * 86400)

static struct fixture_fs fx;
static char retained[96];
static struct config conf;
static struct pki_material ca[4]; /* active, staged, old, older */
static char sha[4][PKI_SHA256_HEX];
static time_t now0;

static void put_retained(const char *, int, long long);

/* retained/<name>: "# replaced <when>", then CA i's PEM. */
static void
put_retained(const char *name, int i, long long when)
{
	char *text;

	assert_true(asprintf(&text, "# replaced %lld\n%s", when, ca[i].ca) > 0);
	fixture_fs_put(retained, name, text, 0644);
	free(text);
}

static int
setup(void **st)
{
	if (fixture_fs_reset(&fx) == -1 || mkdir(retained, 0700) == -1)
		return -1;
	fixture_fs_put(fx.ssl, "ca.crt", ca[0].ca, 0644);
	return 0;
}

static int
group_setup(void **st)
{
	int i;

	if (fixture_fs_init(&fx, "bundle") == -1)
		return -1;
	snprintf(retained, sizeof(retained), "%s/retained", fx.state);
	fixture_fs_conf(&fx, &conf);
	conf.retention = RETENTION;
	now0 = time(NULL);
	for (i = 0; i < 4; i++) {
		if (fixture_pki_generate("bundle test", 30, 10, now0, &ca[i]) == -1)
			return -1;
		fixture_pki_sha(ca[i].ca, sha[i]);
	}
	return 0;
}

static int
group_teardown(void **st)
{
	int i;

	for (i = 0; i < 4; i++)
		pki_material_clear(&ca[i]);
	return fixture_fs_remove(&fx);
}

/* The CAs of the bundle derived now, by sha256, in a fixed order: active, staged, old, older. */
static void
bundle_has(int want0, int want1, int want2, int want3)
{
	const int want[4] = { want0, want1, want2, want3 };
	struct bundle b;
	char err[256];
	size_t i, j;
	int found;

	assert_int_equal(bundle_derive(&conf, now0, &b, err, sizeof(err)), 0);
	for (i = 0; i < 4; i++) {
		for (found = 0, j = 0; j < b.n; j++)
			found |= strcmp(b.cas[j].sha256, sha[i]) == 0;
		if (found != want[i])
			fail_msg("CA %zu: in the bundle %d, expected %d", i, found, want[i]);
	}
	bundle_clear(&b);
}

static void
test_retire(void **st)
{
	struct retained_ca *list;
	char err[256], path[512];
	size_t n;

	put_retained("old.crt", 2, now0 - 86400);
	put_retained("older.crt", 3, now0 - RETENTION - 1); /* past its window already */
	put_retained("active.crt", 0, now0 - 3600);         /* the active CA came back */
	fixture_fs_put(retained, "junk.crt", "# replaced 1\nnot a certificate\n", 0644);
	snprintf(path, sizeof(path), "%s/old-link.crt", retained);
	assert_int_equal(symlink("old.crt", path), 0);
	bundle_has(1, 0, 1, 0);

	/* Dry run: listed, nothing removed. */
	assert_int_equal(retained_retire(&conf, 1, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_true(
	    fixture_fs_exists(retained, "old.crt") && fixture_fs_exists(retained, "older.crt"));
	assert_string_equal(list[0].sha256, strcmp(sha[2], sha[3]) < 0 ? sha[2] : sha[3]);
	assert_true(list[0].retained_until != 0);
	retained_free(list, n);
	bundle_has(1, 0, 1, 0);

	assert_int_equal(retained_retire(&conf, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_true(list[0].retained_until == now0 - 86400 + RETENTION ||
	            list[1].retained_until == now0 - 86400 + RETENTION);
	retained_free(list, n);
	assert_false(fixture_fs_exists(retained, "old.crt"));
	assert_false(fixture_fs_exists(retained, "older.crt"));
	assert_true(fixture_fs_exists(retained, "active.crt") &&
	            fixture_fs_exists(retained, "junk.crt") &&
	            fixture_fs_exists(retained, "old-link.crt"));
	bundle_has(1, 0, 0, 0);

	/* Nothing left to retire. */
	assert_int_equal(retained_retire(&conf, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_null(list);
}

/* The staged CA stays; an unreadable active CA refuses the whole call. */
static void
test_retire_keeps(void **st)
{
	struct retained_ca *list;
	char err[256], path[256];
	size_t n;

	snprintf(path, sizeof(path), "%s/new", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	fixture_fs_put(path, "ca.crt", ca[1].ca, 0644);
	put_retained("staged.crt", 1, now0);
	put_retained("old.crt", 2, now0);
	assert_int_equal(retained_retire(&conf, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].sha256, sha[2]);
	retained_free(list, n);
	assert_true(fixture_fs_exists(retained, "staged.crt"));

	put_retained("old.crt", 2, now0);
	fixture_fs_put(fx.ssl, "ca.crt", "garbage\n", 0644);
	assert_int_equal(retained_retire(&conf, 0, &list, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nothing retired"));
	assert_int_equal(n, 0);
	assert_true(fixture_fs_exists(retained, "old.crt"));

	/* No retained directory at all: nothing to do. */
	fixture_fs_put(fx.ssl, "ca.crt", ca[0].ca, 0644);
	snprintf(path, sizeof(path), "rm -rf %s", retained);
	assert_int_equal(system(path), 0);
	assert_int_equal(retained_retire(&conf, 0, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
}

/*
 * A retained CA whose file says it was replaced at the end of time: the
 * window's end (replaced + retention) once overflowed a signed 64-bit sum,
 * wrapped into the past, and the CA left the bundle (undefined behaviour;
 * UBSan aborts). It must saturate: the CA stays, retained until INT64_MAX.
 */
static void
test_retention_overflow(void **st)
{
	struct retained_ca *list;
	struct bundle b;
	char err[256];
	size_t n, j;
	int found = 0;

	conf.retention = 3650ULL * 86400; /* the largest [bundle] retention config.c accepts */
	put_retained("far.crt", 2, LLONG_MAX - 10);
	assert_int_equal(bundle_derive(&conf, now0, &b, err, sizeof(err)), 0);
	for (j = 0; j < b.n; j++)
		if (strcmp(b.cas[j].sha256, sha[2]) == 0) {
			found = 1;
			assert_true(b.cas[j].retained_until == INT64_MAX);
		}
	bundle_clear(&b);
	assert_true(found);
	assert_int_equal(retained_retire(&conf, 1, &list, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_true(list[0].retained_until == INT64_MAX);
	retained_free(list, n);
	conf.retention = RETENTION;
}

/*
 * More retained CAs than a bundle holds (BUNDLE_MAX): the ones replaced most
 * recently stay. Before, they were taken in directory order, so the CA
 * replaced by the last rotation could be the one left out: agents lost it,
 * and restore refused the newest backup as "not in the trust bundle".
 */
static void
test_full_keeps_newest(void **st)
{
	struct pki_material extra[BUNDLE_MAX + 1];
	char shas[BUNDLE_MAX + 1][PKI_SHA256_HEX], name[32], err[256], *text;
	struct bundle b;
	size_t i, j;
	int found;

	for (i = 0; i < BUNDLE_MAX + 1; i++) {
		assert_int_equal(fixture_pki_generate("bundle full", 30, 10, now0, &extra[i]), 0);
		fixture_pki_sha(extra[i].ca, shas[i]);
		/* extra[0] replaced a minute ago, the others a day and more ago. */
		snprintf(name, sizeof(name), "r%02zu.crt", (BUNDLE_MAX + 1 - i) * 7 % 17);
		assert_true(
		    asprintf(&text, "# replaced %lld\n%s",
		        (long long)now0 - (i == 0 ? 60 : 86400 + (long long)i), extra[i].ca) > 0);
		fixture_fs_put(retained, name, text, 0644);
		free(text);
	}
	assert_int_equal(bundle_derive(&conf, now0, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, BUNDLE_MAX);
	for (i = 0; i < BUNDLE_MAX + 1; i++) {
		for (found = 0, j = 0; j < b.n; j++)
			found |= strcmp(b.cas[j].sha256, shas[i]) == 0;
		/* The active CA takes one place: the two replaced longest ago are left out. */
		if (found != (i < BUNDLE_MAX - 1))
			fail_msg(
			    "retained CA %zu (of %d): in the bundle %d", i, BUNDLE_MAX + 1, found);
	}
	bundle_clear(&b);
	for (i = 0; i < BUNDLE_MAX + 1; i++)
		pki_material_clear(&extra[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_retire, setup),
		cmocka_unit_test_setup(test_retire_keeps, setup),
		cmocka_unit_test_setup(test_retention_overflow, setup),
		cmocka_unit_test_setup(test_full_keeps_newest, setup),
	};

	return cmocka_run_group_tests_name("bundle", tests, group_setup, group_teardown);
}
