/*
 * The record of the active set (retained_note_active): a change of the active
 * set is seen, whoever made it, and the CA it replaced joins the retained CAs
 * of the trust bundle until the retention window ends.
 */
#include <sys/stat.h>

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

static struct fixture_fs fx;
static struct config conf;
static struct pki_material sets[2];

/* Makes set i the active one, as a manual copy of a backup would. */
static void
activate(int i)
{
	fixture_fs_put(fx.ssl, "ca.crt", sets[i].ca, 0644);
	fixture_fs_put(fx.ssl, "server.crt", sets[i].cert, 0644);
	fixture_fs_put(fx.ssl, "server.key", sets[i].key, 0600);
}

static int
group_setup(void **st)
{
	int i;

	if (fixture_fs_init(&fx, "active") == -1 || fixture_fs_reset(&fx) == -1)
		return -1;
	fixture_fs_conf(&fx, &conf);
	conf.retention = 30 * 86400;
	for (i = 0; i < 2; i++)
		if (fixture_pki_generate("test", 3650, 397, time(NULL), &sets[i]) == -1)
			return -1;
	return 0;
}

static int
group_teardown(void **st)
{
	pki_material_clear(&sets[0]);
	pki_material_clear(&sets[1]);
	return fixture_fs_remove(&fx);
}

static void
test_note_active(void **st)
{
	char before[RETAINED_NOTE_LEN], after[RETAINED_NOTE_LEN], err[256], sha0[PKI_SHA256_HEX],
	    sha1[PKI_SHA256_HEX], want[RETAINED_NOTE_LEN], path[512];
	struct bundle b;
	time_t now = time(NULL);
	struct stat sb;
	FILE *f;
	long long replaced = 0;

	fixture_pki_sha(sets[0].ca, sha0);
	fixture_pki_sha(sets[1].ca, sha1);

	/* Nothing recorded yet: the first sight is recorded, not a change. */
	activate(0);
	assert_int_equal(retained_note_active(&conf, now, before, after, err, sizeof(err)), 0);
	assert_string_equal(before, "-");
	snprintf(want, sizeof(want), "ca=%s server=", sha0);
	assert_memory_equal(after, want, strlen(want));
	/* Unchanged: nothing to say. */
	assert_int_equal(retained_note_active(&conf, now, before, after, err, sizeof(err)), 0);

	/* Another set, copied in by hand: a change; the old CA is retained. */
	activate(1);
	assert_int_equal(retained_note_active(&conf, now + 5, before, after, err, sizeof(err)), 1);
	assert_memory_equal(before, want, strlen(want));
	snprintf(path, sizeof(path), "%s/%s/%s.crt", fx.state, RETAINED_DIR, sha0);
	assert_int_equal(stat(path, &sb), 0);
	assert_non_null(f = fopen(path, "r"));
	assert_int_equal(fscanf(f, "# replaced %lld", &replaced), 1);
	fclose(f);
	assert_int_equal(replaced, (long long)now + 5);
	assert_int_equal(retained_note_active(&conf, now + 6, before, after, err, sizeof(err)), 0);

	/* The bundle: the active CA and the retained one, until the window ends. */
	assert_int_equal(bundle_derive(&conf, now + 10, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 2);
	bundle_clear(&b);
	assert_int_equal(bundle_derive(&conf, now + 5 + 30 * 86400, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.cas[0].sha256, sha1);
	bundle_clear(&b);

	/* Back to the first set: the second CA is retained too; the first stays retained. */
	activate(0);
	assert_int_equal(retained_note_active(&conf, now + 20, before, after, err, sizeof(err)), 1);
	snprintf(path, sizeof(path), "%s/%s/%s.crt", fx.state, RETAINED_DIR, sha1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(bundle_derive(&conf, now + 21, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 2);
	bundle_clear(&b);

	/* No active set at all is a state too. */
	snprintf(path, sizeof(path), "%s/ca.crt", fx.ssl);
	unlink(path);
	snprintf(path, sizeof(path), "%s/server.crt", fx.ssl);
	unlink(path);
	assert_int_equal(retained_note_active(&conf, now + 30, before, after, err, sizeof(err)), 1);
	assert_string_equal(after, "ca=- server=-");
}

#define CERT_MARK "-----BEGIN CERTIFICATE-----\n"

/* A record that is not ours is replaced, never trusted. */
static void
test_note_garbage(void **st)
{
	char before[RETAINED_NOTE_LEN], after[RETAINED_NOTE_LEN], err[256];

	activate(0);
	fixture_fs_put(fx.state, RETAINED_KNOWN_ACTIVE, "carotate-active 1\nca ../../etc\n", 0644);
	assert_int_equal(
	    retained_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
	assert_int_equal(
	    retained_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
	/* Well-formed but naming a path: not trusted either (no retained file is named from it). */
	fixture_fs_put(fx.state, RETAINED_KNOWN_ACTIVE,
	    "carotate-active 1\nca ../../../../tmp/x\nserver -\n" CERT_MARK, 0644);
	assert_int_equal(
	    retained_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
	assert_string_equal(before, "-");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_note_active),
		cmocka_unit_test(test_note_garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
