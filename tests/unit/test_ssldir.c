/* The SSL directory: atomic staging, publishing, crash debris, symlinks refused. */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "fixture_fs.h"
#include "fsx.h"
#include "ssldir.h"

static struct fixture_fs fx;
static struct config conf;

static int
setup(void **state)
{
	return fixture_fs_reset(&fx);
}

static int
group_setup(void **state)
{
	if (fixture_fs_init(&fx, "ssldir") == -1)
		return -1;
	fixture_fs_conf(&fx, &conf);
	return 0;
}

static int
group_teardown(void **state)
{
	return fixture_fs_remove(&fx);
}

static const struct ssldir_files files = { "CA\n", "CERT\n", "KEY\n", 3, 5, 4, "generated",
	1700000000 };

/* A pool's staged set replaces this member's whole, and nothing of the old one is left. */
static void
test_stage_replace(void **state)
{
	static const struct ssldir_files other = { "CA2\n", "CERT2\n", "KEY2\n", 4, 6, 5, "custom",
		1700000100 };
	char err[256];

	assert_int_equal(ssldir_stage_replace(&conf, &files, err, sizeof(err)), 0);
	assert_string_equal(fixture_fs_get(fx.ssl, "new/server.key"), "KEY\n");
	assert_int_equal(ssldir_stage(&conf, &other, err, sizeof(err)), -1);
	assert_int_equal(ssldir_stage_replace(&conf, &other, err, sizeof(err)), 0);
	assert_string_equal(fixture_fs_get(fx.ssl, "new/ca.crt"), "CA2\n");
	assert_string_equal(fixture_fs_get(fx.ssl, "new/server.crt"), "CERT2\n");
	assert_string_equal(fixture_fs_get(fx.ssl, "new/server.key"), "KEY2\n");
	assert_string_equal(
	    fixture_fs_get(fx.ssl, "new/.carotate-set"), "origin=custom\ncreated=1700000100\n");
	assert_int_equal(fixture_fs_mode(fx.ssl, "new"), 0700);
	assert_int_equal(fixture_fs_mode(fx.ssl, "new/server.key"), 0600);
	assert_int_equal(fixture_fs_count(fx.ssl, ".staging-"), 0);
}

static void
test_stage_and_phase(void **state)
{
	Carotate__V1__Phase phase;
	struct ssldir_set set;
	char err[256];
	int fd;

	assert_int_equal(ssldir_phase(&conf, &phase), 0);
	assert_int_equal(phase, CAROTATE__V1__PHASE__PHASE_STEADY);
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	assert_int_equal(ssldir_phase(&conf, &phase), 0);
	assert_int_equal(phase, CAROTATE__V1__PHASE__PHASE_STAGED);
	assert_int_equal(fixture_fs_mode(fx.ssl, "new"), 0700);
	assert_int_equal(fixture_fs_mode(fx.ssl, "new/server.key"), 0600);
	assert_int_equal(fixture_fs_mode(fx.ssl, "new/ca.crt"), 0644);

	fd = ssldir_open(&conf, 1);
	assert_true(fd >= 0);
	ssldir_read_set(&conf, fd, &set);
	close(fd);
	assert_int_equal(set.ca_len, 3);
	assert_memory_equal(set.cert, "CERT\n", 5);
	assert_int_equal(set.key_errno, 0);
	assert_string_equal(set.origin, "generated");
	assert_int_equal(set.created, 1700000000);
	ssldir_set_clear(&set);

	/* A second staging never replaces the first. */
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "new"));
	/* ...and leaves no half-built directory behind. */
	assert_int_equal(fixture_fs_count(fx.ssl, ".staging-"), 0);
}

static void
test_publish(void **state)
{
	char err[256], cmd[300];

	fixture_fs_put(fx.ssl, "server.crt", "ACTIVE CERT\n", 0644);
	fixture_fs_put(fx.ssl, "server.key", "ACTIVE KEY\n", 0600);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	assert_true(ssldir_published(&conf, "B1\n", 3));
	assert_false(ssldir_published(&conf, "B2\n", 3));
	assert_int_equal(fixture_fs_mode(fx.ssl, "canary.key"), 0600);
	/* Nothing changed: nothing rewritten. */
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 0);
	/* A staged set takes over the canary. */
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	assert_int_equal(ssldir_publish(&conf, "B2\n", 3, err, sizeof(err)), 1);
	snprintf(cmd, sizeof(cmd), "cmp -s %s/canary.crt %s/new/server.crt", fx.ssl, fx.ssl);
	assert_int_equal(system(cmd), 0);
}

/*
 * The canary certificate cannot be written after its key was: the old key
 * goes back, so the pair on disk still matches (nginx refuses a mismatch).
 */
static void
test_publish_canary_half(void **state)
{
	char err[256], path[512];

	fixture_fs_put(fx.ssl, "server.crt", "ACTIVE CERT\n", 0644);
	fixture_fs_put(fx.ssl, "server.key", "ACTIVE KEY\n", 0600);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	/* A directory where the certificate's temporary file goes: its write fails. */
	snprintf(path, sizeof(path), "%s/.canary.crt.tmp", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "canary"));
	assert_string_equal(fixture_fs_get(fx.ssl, "canary.key"), "ACTIVE KEY\n");
	assert_string_equal(fixture_fs_get(fx.ssl, "canary.crt"), "ACTIVE CERT\n");
	/* Once it can be written, both follow the staged set. */
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	assert_string_equal(fixture_fs_get(fx.ssl, "canary.key"), "KEY\n");
	assert_string_equal(fixture_fs_get(fx.ssl, "canary.crt"), "CERT\n");
}

/* A crash leaves a half-built staging directory and temporary files: recovery removes them. */
static void
test_recover(void **state)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/.staging-0011223344556677", fx.ssl);
	assert_int_equal(mkdir(path, 0700), 0);
	fixture_fs_put(fx.ssl, ".staging-0011223344556677/ca.crt", "half", 0644);
	fixture_fs_put(fx.ssl, ".ca-bundle.pem.tmp", "half", 0644);
	fixture_fs_put(fx.ssl, "keep.me", "operator's file", 0644);
	ssldir_recover(&conf);
	assert_false(fixture_fs_exists(fx.ssl, ".staging-0011223344556677"));
	assert_false(fixture_fs_exists(fx.ssl, ".ca-bundle.pem.tmp"));
	assert_true(fixture_fs_exists(fx.ssl, "keep.me"));
}

/* A symlink planted in the SSL directory is never followed. */
static void
test_symlinks_refused(void **state)
{
	char link[512];
	uint8_t *data;
	size_t len;
	int fd;

	fixture_fs_put(fx.ssl, "secret", "do not read", 0600);
	snprintf(link, sizeof(link), "%s/ca.crt", fx.ssl);
	assert_int_equal(symlink("secret", link), 0);
	fd = ssldir_open(&conf, 0);
	assert_int_equal(fsx_read(fd, "ca.crt", 1024, &data, &len), -1);
	close(fd);
	snprintf(link, sizeof(link), "%s/new", fx.ssl);
	assert_int_equal(symlink("/tmp", link), 0);
	assert_int_equal(ssldir_open(&conf, 1), -1);
}

static void
test_read_caps(void **state)
{
	uint8_t *data;
	size_t len;
	int fd;

	fixture_fs_put(fx.ssl, "big", "0123456789", 0644);
	fd = ssldir_open(&conf, 0);
	assert_int_equal(fsx_read(fd, "big", 9, &data, &len), -1);
	assert_int_equal(fsx_read(fd, "big", 10, &data, &len), 0);
	assert_int_equal(len, 10);
	free(data);
	assert_int_equal(fsx_read(fd, ".", 10, &data, &len), -1);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_stage_and_phase, setup),
		cmocka_unit_test_setup(test_stage_replace, setup),
		cmocka_unit_test_setup(test_publish, setup),
		cmocka_unit_test_setup(test_publish_canary_half, setup),
		cmocka_unit_test_setup(test_recover, setup),
		cmocka_unit_test_setup(test_symlinks_refused, setup),
		cmocka_unit_test_setup(test_read_caps, setup),
	};

	return cmocka_run_group_tests_name("ssldir", tests, group_setup, group_teardown);
}
