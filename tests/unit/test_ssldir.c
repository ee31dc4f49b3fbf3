/* The SSL directory: atomic staging, discard, publishing, crash debris, symlinks refused. */
#include <sys/stat.h>

#include <dirent.h>
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
#include "fsx.h"
#include "ssldir.h"

static char dir[] = "/tmp/carotate-test-ssldir-XXXXXX";
static struct config conf;

static void
put(const char *rel, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int
exists(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	return lstat(path, &st) == 0;
}

static mode_t
mode_of(const char *rel)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static int
count_prefix(const char *prefix)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static int
setup(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s/* %s/.[!.]*", dir, dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static int
group_setup(void **state)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	conf.ssl_dir = dir;
	conf.ssl_ca = (char *)"ca.crt";
	conf.ssl_cert = (char *)"server.crt";
	conf.ssl_key = (char *)"server.key";
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static const struct ssldir_files files = { "CA\n", "CERT\n", "KEY\n", 3, 5, 4, "generated",
	1700000000 };

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
	assert_int_equal(mode_of("new"), 0700);
	assert_int_equal(mode_of("new/server.key"), 0600);
	assert_int_equal(mode_of("new/ca.crt"), 0644);

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
	assert_int_equal(count_prefix(".staging-"), 0);
}

static void
test_discard_names(void **state)
{
	char kept[64], kept2[64], err[256];
	time_t t = 1764201600; /* 2025-11-27 00:00:00 UTC */

	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	assert_int_equal(ssldir_discard(&conf, t, kept, sizeof(kept), err, sizeof(err)), 0);
	assert_string_equal(kept, "discarded-20251127-000000");
	assert_true(exists("discarded-20251127-000000/server.key"));
	assert_false(exists("new"));
	/* Same second again: a suffix, never an overwrite. */
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	assert_int_equal(ssldir_discard(&conf, t, kept2, sizeof(kept2), err, sizeof(err)), 0);
	assert_string_equal(kept2, "discarded-20251127-000000-2");
	/* Nothing staged: an error, not a crash. */
	assert_int_equal(ssldir_discard(&conf, t, kept, sizeof(kept), err, sizeof(err)), -1);
}

static void
test_publish(void **state)
{
	char err[256];

	put("server.crt", "ACTIVE CERT\n", 0644);
	put("server.key", "ACTIVE KEY\n", 0600);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	assert_true(ssldir_published(&conf, "B1\n", 3));
	assert_false(ssldir_published(&conf, "B2\n", 3));
	assert_int_equal(mode_of("canary.key"), 0600);
	/* Nothing changed: nothing rewritten. */
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 0);
	/* A staged set takes over the canary. */
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	assert_int_equal(ssldir_publish(&conf, "B2\n", 3, err, sizeof(err)), 1);
	assert_int_equal(system("cmp -s /tmp/carotate-test-ssldir-*/canary.crt "
	                        "/tmp/carotate-test-ssldir-*/new/server.crt"),
	    0);
}

/* Reads a file of the test directory into buf (NUL-terminated). */
static void
get(const char *rel, char *buf, size_t len)
{
	char path[512];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/*
 * The canary certificate cannot be written after its key was: the old key
 * goes back, so the pair on disk still matches (nginx refuses a mismatch).
 */
static void
test_publish_canary_half(void **state)
{
	char err[256], buf[64], path[512];

	put("server.crt", "ACTIVE CERT\n", 0644);
	put("server.key", "ACTIVE KEY\n", 0600);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	assert_int_equal(ssldir_stage(&conf, &files, err, sizeof(err)), 0);
	/* A directory where the certificate's temporary file goes: its write fails. */
	snprintf(path, sizeof(path), "%s/.canary.crt.tmp", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "canary"));
	get("canary.key", buf, sizeof(buf));
	assert_string_equal(buf, "ACTIVE KEY\n");
	get("canary.crt", buf, sizeof(buf));
	assert_string_equal(buf, "ACTIVE CERT\n");
	/* Once it can be written, both follow the staged set. */
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(ssldir_publish(&conf, "B1\n", 3, err, sizeof(err)), 1);
	get("canary.key", buf, sizeof(buf));
	assert_string_equal(buf, "KEY\n");
	get("canary.crt", buf, sizeof(buf));
	assert_string_equal(buf, "CERT\n");
}

/* A crash leaves a half-built staging directory and temporary files: recovery removes them. */
static void
test_recover(void **state)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/.staging-0011223344556677", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	put(".staging-0011223344556677/ca.crt", "half", 0644);
	put(".ca-bundle.pem.tmp", "half", 0644);
	put("keep.me", "operator's file", 0644);
	ssldir_recover(&conf);
	assert_false(exists(".staging-0011223344556677"));
	assert_false(exists(".ca-bundle.pem.tmp"));
	assert_true(exists("keep.me"));
}

/* A symlink planted in the SSL directory is never followed. */
static void
test_symlinks_refused(void **state)
{
	char link[512];
	uint8_t *data;
	size_t len;
	int fd;

	put("secret", "do not read", 0600);
	snprintf(link, sizeof(link), "%s/ca.crt", dir);
	assert_int_equal(symlink("secret", link), 0);
	fd = ssldir_open(&conf, 0);
	assert_int_equal(fsx_read(fd, "ca.crt", 1024, &data, &len), -1);
	close(fd);
	snprintf(link, sizeof(link), "%s/new", dir);
	assert_int_equal(symlink("/tmp", link), 0);
	assert_int_equal(ssldir_open(&conf, 1), -1);
}

static void
test_read_caps(void **state)
{
	uint8_t *data;
	size_t len;
	int fd;

	put("big", "0123456789", 0644);
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
		cmocka_unit_test_setup(test_discard_names, setup),
		cmocka_unit_test_setup(test_publish, setup),
		cmocka_unit_test_setup(test_publish_canary_half, setup),
		cmocka_unit_test_setup(test_recover, setup),
		cmocka_unit_test_setup(test_symlinks_refused, setup),
		cmocka_unit_test_setup(test_read_caps, setup),
	};

	return cmocka_run_group_tests_name("ssldir", tests, group_setup, group_teardown);
}
