/*
 * The record of the active set (bundle_note_active): a change of the active
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
#include "pki.h"

static char ssl[] = "/tmp/carotate-test-active-ssl-XXXXXX";
static char state[] = "/tmp/carotate-test-active-state-XXXXXX";
static struct config conf;
static struct pki_material sets[2];

static void
put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* Makes set i the active one, as a manual copy of a backup would. */
static void
activate(int i)
{
	put(ssl, "ca.crt", sets[i].ca);
	put(ssl, "server.crt", sets[i].cert);
	put(ssl, "server.key", sets[i].key);
}

static void
sha_of(const char *pem, char out[PKI_SHA256_HEX])
{
	STACK_OF(X509) * certs;
	char why[128];

	assert_non_null(
	    certs = pki_certs_from_pem((const uint8_t *)pem, strlen(pem), why, sizeof(why)));
	pki_cert_sha256(sk_X509_value(certs, 0), out);
	sk_X509_pop_free(certs, X509_free);
}

static int
group_setup(void **st)
{
	char *sans[] = { (char *)"DNS:proxy.test" };
	struct pki_profile p = { PKI_KEY_EC_P256, 3650, 397, "test", sans, 1, time(NULL) };
	char err[256];
	int i;

	if (mkdtemp(ssl) == NULL || mkdtemp(state) == NULL)
		return -1;
	conf.ssl_dir = ssl;
	conf.state_dir = state;
	conf.ssl_ca = (char *)"ca.crt";
	conf.ssl_cert = (char *)"server.crt";
	conf.ssl_key = (char *)"server.key";
	conf.retention = 30 * 86400;
	for (i = 0; i < 2; i++)
		if (pki_generate(&p, &sets[i], err, sizeof(err)) == -1)
			return -1;
	return 0;
}

static int
group_teardown(void **st)
{
	char cmd[200];

	pki_material_clear(&sets[0]);
	pki_material_clear(&sets[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", ssl, state);
	return system(cmd);
}

static void
test_note_active(void **st)
{
	char before[BUNDLE_NOTE_LEN], after[BUNDLE_NOTE_LEN], err[256], sha0[PKI_SHA256_HEX],
	    sha1[PKI_SHA256_HEX], want[BUNDLE_NOTE_LEN], path[512];
	struct bundle b;
	time_t now = time(NULL);
	struct stat sb;
	FILE *f;
	long long replaced = 0;

	sha_of(sets[0].ca, sha0);
	sha_of(sets[1].ca, sha1);

	/* Nothing recorded yet: the first sight is recorded, not a change. */
	activate(0);
	assert_int_equal(bundle_note_active(&conf, now, before, after, err, sizeof(err)), 0);
	assert_string_equal(before, "-");
	snprintf(want, sizeof(want), "ca=%s server=", sha0);
	assert_memory_equal(after, want, strlen(want));
	/* Unchanged: nothing to say. */
	assert_int_equal(bundle_note_active(&conf, now, before, after, err, sizeof(err)), 0);

	/* Another set, copied in by hand: a change; the old CA is retained. */
	activate(1);
	assert_int_equal(bundle_note_active(&conf, now + 5, before, after, err, sizeof(err)), 1);
	assert_memory_equal(before, want, strlen(want));
	snprintf(path, sizeof(path), "%s/%s/%s.crt", state, BUNDLE_RETAINED_DIR, sha0);
	assert_int_equal(stat(path, &sb), 0);
	assert_non_null(f = fopen(path, "r"));
	assert_int_equal(fscanf(f, "# replaced %lld", &replaced), 1);
	fclose(f);
	assert_int_equal(replaced, (long long)now + 5);
	assert_int_equal(bundle_note_active(&conf, now + 6, before, after, err, sizeof(err)), 0);

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
	assert_int_equal(bundle_note_active(&conf, now + 20, before, after, err, sizeof(err)), 1);
	snprintf(path, sizeof(path), "%s/%s/%s.crt", state, BUNDLE_RETAINED_DIR, sha1);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(bundle_derive(&conf, now + 21, &b, err, sizeof(err)), 0);
	assert_int_equal(b.n, 2);
	bundle_clear(&b);

	/* No active set at all is a state too. */
	snprintf(path, sizeof(path), "%s/ca.crt", ssl);
	unlink(path);
	snprintf(path, sizeof(path), "%s/server.crt", ssl);
	unlink(path);
	assert_int_equal(bundle_note_active(&conf, now + 30, before, after, err, sizeof(err)), 1);
	assert_string_equal(after, "ca=- server=-");
}

#define CERT_MARK "-----BEGIN CERTIFICATE-----\n"

/* A record that is not ours is replaced, never trusted. */
static void
test_note_garbage(void **st)
{
	char before[BUNDLE_NOTE_LEN], after[BUNDLE_NOTE_LEN], err[256];

	activate(0);
	put(state, BUNDLE_KNOWN_ACTIVE, "carotate-active 1\nca ../../etc\n");
	assert_int_equal(bundle_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
	assert_int_equal(bundle_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
	/* Well-formed but naming a path: not trusted either (no retained file is named from it). */
	put(state, BUNDLE_KNOWN_ACTIVE,
	    "carotate-active 1\nca ../../../../tmp/x\nserver -\n" CERT_MARK);
	assert_int_equal(bundle_note_active(&conf, time(NULL), before, after, err, sizeof(err)), 0);
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
