/*
 * A pool member's secret files (daemon/store/poolfiles.c): the DSN file and
 * the pool key are read only from a regular root-owned file of mode 0600 or
 * stricter, never through a symbolic link; the DSN must be one line libpq
 * parses whose hosts are all Unix sockets unless it sets
 * sslmode=verify-full; the key is 64 hex digits. Every refusal leaves the
 * output wiped and never quotes the file's contents. The files must be
 * root's, so the tests need root (they skip otherwise).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/types.h>

#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture_fs.h"
#include "poolfiles.h"

#define PASSWORD "hunter2-secret"
#define KEY_HEX  "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"

static struct fixture_fs fx;
static const char *tmpdir = fx.root;
static char path[PATH_MAX];

static int
setup_tmpdir(void **state)
{
	return fixture_fs_init(&fx, "poolfiles");
}

static int
teardown_tmpdir(void **state)
{
	return fixture_fs_remove(&fx);
}

static void
need_root(void)
{
	if (geteuid() != 0) {
		print_message("the files must be root's: run as root\n");
		skip();
	}
}

/* tmpdir/name (the global path) holding len bytes of data with mode. */
static const char *
put(const char *name, const void *data, size_t len, mode_t mode)
{
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	unlink(path);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static const char *
put_str(const char *name, const char *text, mode_t mode)
{
	return put(name, text, strlen(text), mode);
}

static void
assert_all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			fail_msg("byte %zu not wiped", i);
}

/* The DSN of file is accepted, and read back as expect. */
static void
dsn_ok(const char *text, const char *expect)
{
	char buf[POOLFILES_MAX_DSN + 1], err[512];
	const char *p = put_str("ok.dsn", text, 0600);

	if (poolfiles_read_dsn(p, buf, sizeof(buf), err, sizeof(err)) != 0)
		fail_msg("\"%s\" refused: %s", text, err);
	assert_string_equal(buf, expect);
}

/* The DSN file p is refused with phrase, buf is wiped, and the error quotes no password. */
static void
dsn_refused_file(const char *p, const char *phrase)
{
	char buf[POOLFILES_MAX_DSN + 1], err[512] = "";

	memset(buf, 'x', sizeof(buf));
	if (poolfiles_read_dsn(p, buf, sizeof(buf), err, sizeof(err)) == 0)
		fail_msg("%s accepted", p);
	if (strncmp(err, p, strlen(p)) != 0 || strstr(err, phrase) == NULL)
		fail_msg("error \"%s\" is not \"%s: ...%s...\"", err, p, phrase);
	assert_null(strstr(err, PASSWORD));
	assert_null(strstr(err, "dbname"));
	assert_all_zero(buf, sizeof(buf));
}

static void
dsn_refused(const char *text, const char *phrase)
{
	dsn_refused_file(put_str("bad.dsn", text, 0600), phrase);
}

static void
test_dsn_accepted(void **state)
{
	need_root();
	dsn_ok("host=/run/postgresql dbname=carotate user=carotate\n",
	    "host=/run/postgresql dbname=carotate user=carotate");
	dsn_ok("host=/tmp/pg dbname=carotate password=" PASSWORD,
	    "host=/tmp/pg dbname=carotate password=" PASSWORD);
	dsn_ok("host=/a,/b dbname=c", "host=/a,/b dbname=c");
	dsn_ok("host=db.example.com dbname=c sslmode=verify-full sslrootcert=/etc/ca.pem",
	    "host=db.example.com dbname=c sslmode=verify-full sslrootcert=/etc/ca.pem");
	dsn_ok("hostaddr=192.0.2.1 host=db.example sslmode=verify-full",
	    "hostaddr=192.0.2.1 host=db.example sslmode=verify-full");
	dsn_ok("postgresql://carotate@%2Frun%2Fpostgresql/carotate",
	    "postgresql://carotate@%2Frun%2Fpostgresql/carotate");
	dsn_ok("postgresql://u:" PASSWORD "@db.example/carotate?sslmode=verify-full",
	    "postgresql://u:" PASSWORD "@db.example/carotate?sslmode=verify-full");
}

/* A network host needs sslmode=verify-full; nothing else may bring one in. */
static void
test_dsn_network(void **state)
{
	need_root();
	dsn_refused("host=db.example dbname=c password=" PASSWORD,
	    "network host needs sslmode=verify-full");
	dsn_refused("host=db.example sslmode=require password=" PASSWORD, "verify-full");
	dsn_refused("host=db.example sslmode=verify-ca", "verify-full");
	dsn_refused("host=127.0.0.1 dbname=c", "not a Unix socket directory");
	dsn_refused("host=/run/postgresql,db.example dbname=c", "not a Unix socket directory");
	dsn_refused("host=/run/postgresql, dbname=c", "not a Unix socket directory");
	dsn_refused("host=@abstract dbname=c", "not a Unix socket directory");
	dsn_refused("host=/run/postgresql hostaddr=192.0.2.1", "hostaddr");
	dsn_refused("service=carotate dbname=c", "service");
	dsn_refused("dbname=carotate user=carotate", "names no host");
	dsn_refused("host='' dbname=carotate", "names no host");
	/* libpq reads the next word as the value: host is "dbname=carotate" here. */
	dsn_refused("host= dbname=carotate", "not a Unix socket directory");
	dsn_refused("postgresql://u:" PASSWORD "@db.example/carotate", "verify-full");
	dsn_refused("postgresql:///carotate", "names no host");
}

static void
test_dsn_syntax(void **state)
{
	char big[POOLFILES_MAX_DSN + 2];
	size_t n;

	need_root();
	dsn_refused("host=/x password=" PASSWORD " bogus=1", "not a libpq connection string");
	dsn_refused("host=/x dbname password=" PASSWORD, "not a libpq connection string");
	dsn_refused("host='/x password=" PASSWORD, "not a libpq connection string");
	dsn_refused("postgresql://u:" PASSWORD "@[::1/c", "not a libpq connection string");
	dsn_refused("", "empty");
	dsn_refused("\n", "empty");
	dsn_refused("host=/x\ndbname=c password=" PASSWORD "\n", "more than one line");
	dsn_refused("host=/x dbname=c\n\n", "more than one line");
	dsn_refused("host=/x\r\n", "more than one line");
	dsn_refused_file(
	    put("nul.dsn", "host=/x\0password=" PASSWORD, 8 + 9 + strlen(PASSWORD), 0600), "NUL");
	/* 4096 bytes with the newline is the limit; one more is refused. */
	n = snprintf(big, sizeof(big), "host=/run/postgresql dbname=c application_name=");
	memset(big + n, 'a', POOLFILES_MAX_DSN - 1 - n);
	big[POOLFILES_MAX_DSN - 1] = '\n';
	big[POOLFILES_MAX_DSN] = '\0';
	put("big.dsn", big, POOLFILES_MAX_DSN, 0600);
	{
		char buf[POOLFILES_MAX_DSN + 1], err[512];

		if (poolfiles_read_dsn(path, buf, sizeof(buf), err, sizeof(err)) != 0)
			fail_msg("4096 bytes refused: %s", err);
		assert_int_equal(strlen(buf), POOLFILES_MAX_DSN - 1);
	}
	big[POOLFILES_MAX_DSN - 1] = 'a';
	big[POOLFILES_MAX_DSN] = '\n';
	dsn_refused_file(put("big.dsn", big, POOLFILES_MAX_DSN + 1, 0600),
	    "too large (4097 bytes, at most 4096)");
}

/* What the file is: mode, owner, type, link; the same rules for both files. */
static void
check_file_rules(const char *name, const char *good, int is_key)
{
	char buf[POOLFILES_MAX_DSN + 1], err[512], link[PATH_MAX + 16];
	static const mode_t bad_modes[] = { 0640, 0604, 0644, 0700, 0610, 0601, 04600, 01600 };
	uint8_t key[POOLFILES_KEY_LEN];
	struct passwd *pw;
	size_t i;
	int rc;

#define READ(p)                                                                                    \
	(is_key ? poolfiles_read_key((p), key, err, sizeof(err))                                   \
	        : poolfiles_read_dsn((p), buf, sizeof(buf), err, sizeof(err)))
	put_str(name, good, 0400);
	if (READ(path) != 0)
		fail_msg("mode 0400 refused: %s", err);
	for (i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
		put_str(name, good, bad_modes[i]);
		assert_int_equal(READ(path), -1);
		if (strstr(err, "must be 0600 or stricter") == NULL)
			fail_msg("mode %04o: \"%s\"", (unsigned)bad_modes[i], err);
	}
	put_str(name, good, 0600);
	assert_non_null(pw = getpwnam("nobody"));
	assert_int_equal(chown(path, pw->pw_uid, 0), 0);
	assert_int_equal(READ(path), -1);
	assert_non_null(strstr(err, "not root"));
	put_str(name, good, 0600);
	snprintf(link, sizeof(link), "%s.link", path);
	unlink(link);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(READ(link), -1);
	assert_non_null(strstr(err, "symbolic link"));
	unlink(link);
	snprintf(link, sizeof(link), "%s/%s.dir", tmpdir, name);
	assert_int_equal(mkdir(link, 0700), 0);
	assert_int_equal(READ(link), -1);
	assert_non_null(strstr(err, "not a regular file"));
	rmdir(link);
	snprintf(link, sizeof(link), "%s/%s.fifo", tmpdir, name);
	assert_int_equal(mkfifo(link, 0600), 0);
	assert_int_equal(READ(link), -1);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(link);
	snprintf(link, sizeof(link), "%s/missing", tmpdir);
	rc = READ(link);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(err, "cannot open"));
#undef READ
}

static void
test_dsn_file_rules(void **state)
{
	need_root();
	check_file_rules("rules.dsn", "host=/run/postgresql dbname=c\n", 0);
}

static void
test_key_file_rules(void **state)
{
	need_root();
	check_file_rules("rules.key", KEY_HEX "\n", 1);
}

static void
key_ok(const char *text)
{
	uint8_t key[POOLFILES_KEY_LEN];
	char err[512];
	size_t i;

	put_str("ok.key", text, 0600);
	if (poolfiles_read_key(path, key, err, sizeof(err)) != 0)
		fail_msg("\"%s\" refused: %s", text, err);
	for (i = 0; i < POOLFILES_KEY_LEN; i++)
		assert_int_equal(key[i], i);
}

static void
key_refused(const void *data, size_t len, const char *phrase)
{
	uint8_t key[POOLFILES_KEY_LEN];
	char err[512] = "";

	put("bad.key", data, len, 0600);
	memset(key, 0xa5, sizeof(key));
	if (poolfiles_read_key(path, key, err, sizeof(err)) == 0)
		fail_msg("a key of %zu bytes accepted", len);
	if (strstr(err, phrase) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, phrase);
	assert_null(strstr(err, "0a0b0c"));
	assert_null(strstr(err, "1A1B1C"));
	assert_all_zero(key, sizeof(key));
}

static void
test_key(void **state)
{
	static const char raw[POOLFILES_KEY_LEN] = { 1, 2, 3 };

	need_root();
	key_ok(KEY_HEX "\n");
	key_ok(KEY_HEX);
	key_refused(KEY_HEX, 63, "expected 64 hexadecimal digits");
	key_refused(KEY_HEX "0", 65, "expected 64 hexadecimal digits");
	key_refused(KEY_HEX "\n\n", 66, "too large");
	key_refused(KEY_HEX "\r\n", 66, "too large");
	key_refused(" " KEY_HEX, 65, "expected 64 hexadecimal digits");
	key_refused(raw, sizeof(raw), "hexadecimal digit");
	key_refused("", 0, "expected 64 hexadecimal digits");
	key_refused("\n", 1, "expected 64 hexadecimal digits");
	key_refused("g00102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", 64,
	    "not a hexadecimal digit");
	key_refused("000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1-", 64,
	    "not a hexadecimal digit");
	key_refused(KEY_HEX KEY_HEX "\n", 129, "too large");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn_accepted),
		cmocka_unit_test(test_dsn_network),
		cmocka_unit_test(test_dsn_syntax),
		cmocka_unit_test(test_dsn_file_rules),
		cmocka_unit_test(test_key_file_rules),
		cmocka_unit_test(test_key),
	};

	return cmocka_run_group_tests_name("poolfiles", tests, setup_tmpdir, teardown_tmpdir);
}
