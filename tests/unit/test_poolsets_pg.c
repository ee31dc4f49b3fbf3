/*
 * A pool's sealed certificate sets (poolsets.c) against a real PostgreSQL
 * server (tests/unit/pg_run.sh): real generated sets stored from a scratch SSL
 * directory and read back byte for byte, and every way a blob from the
 * database can be wrong refused with nothing returned.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "cakeys.h"
#include "config.h"
#include "fixture_fs.h"
#include "fixture_pg.h"
#include "fixture_pki.h"
#include "internal.pb-c.h"
#include "ledger.h"
#include "log.h"
#include "poolsets.h"
#include "seal.h"

#define T0 1764201600 /* 2025-11-27 00:00:00 UTC */

static const uint8_t pool_key[SEAL_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const uint8_t other_key[SEAL_KEY_LEN] = { 9, 9, 9 };

static struct fixture_fs fx;
static struct config conf;
static struct pki_material one, two; /* one: active, its CA key kept; two: staged, custom */
static char one_leaf[PKI_SHA256_HEX], two_leaf[PKI_SHA256_HEX];

/* Every test on an empty database and an empty SSL directory. */
static int
setup(void **state)
{
	if (fixture_fs_reset(&fx) == -1 ||
	    fixture_pg_try("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
	                   "WHERE datname = current_database() AND pid <> pg_backend_pid()") != 0)
		return -1;
	return fixture_pg_try("DROP SCHEMA public CASCADE; CREATE SCHEMA public") == 0 ? 0 : -1;
}

static int
group_setup(void **state)
{
	if (fixture_fs_init(&fx, "poolsets") == -1 ||
	    fixture_pki_generate("one", 3650, 397, T0, &one) == -1 ||
	    fixture_pki_generate("two", 3650, 397, T0, &two) == -1)
		return -1;
	fixture_fs_conf(&fx, &conf);
	fixture_pki_sha(one.cert, one_leaf);
	fixture_pki_sha(two.cert, two_leaf);
	return 0;
}

static int
group_teardown(void **state)
{
	pki_material_clear(&one);
	pki_material_clear(&two);
	return fixture_fs_remove(&fx);
}

/* m's CA, leaf and key in dir ("" the active set, "new/" the staged one), with origin. */
static void
put_set(const char *dir, const struct pki_material *m, const char *key, const char *origin)
{
	char rel[128], info[64];

	if (dir[0] != '\0') {
		snprintf(rel, sizeof(rel), "%s/new", fx.ssl);
		assert_int_equal(mkdir(rel, 0700), 0);
	}
	snprintf(rel, sizeof(rel), "%sca.crt", dir);
	fixture_fs_put(fx.ssl, rel, m->ca, 0644);
	snprintf(rel, sizeof(rel), "%sserver.crt", dir);
	fixture_fs_put(fx.ssl, rel, m->cert, 0644);
	snprintf(rel, sizeof(rel), "%sserver.key", dir);
	fixture_fs_put(fx.ssl, rel, key, 0600);
	snprintf(rel, sizeof(rel), "%s.carotate-set", dir);
	snprintf(info, sizeof(info), "origin=%s\ncreated=%d\n", origin, T0 + 7);
	fixture_fs_put(fx.ssl, rel, info, 0644);
}

/* The active set is one (its CA key kept, as a generated set's), the staged set two. */
static void
put_both(void)
{
	char name[CAKEYS_NAME_MAX], err[256];

	put_set("", &one, one.key, "generated");
	put_set("new/", &two, two.key, "custom");
	assert_int_equal(
	    cakeys_save(&conf, (const uint8_t *)one.ca, strlen(one.ca), (const uint8_t *)one.ca_key,
	        strlen(one.ca_key), name, err, sizeof(err)),
	    0);
}

static void
assert_pem(const uint8_t *got, size_t len, const char *want)
{
	assert_non_null(got);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(got, want, len);
	assert_int_equal(got[len], '\0');
}

/* A set the way back refuses: -1, err naming the slot, nothing returned. */
static void
assert_refused(struct ledger *l, const uint8_t *key, const char *leaf, const char *why)
{
	struct poolset set;
	char err[512] = "";

	memset(&set, 0x5a, sizeof(set));
	assert_int_equal(poolsets_get(l, key, leaf, &set, err, sizeof(err)), -1);
	print_message("refused: %s\n", err);
	assert_non_null(strstr(err, leaf));
	assert_non_null(strstr(err, why));
	assert_null(set.ca);
	assert_null(set.cert);
	assert_null(set.key);
	assert_null(set.ca_key);
	assert_int_equal(set.leaf[0], '\0');
}

/* Seals a PoolSet of the given parts under the pool key as set/<slot_leaf>, as poolsets_put would.
 */
static void
seal_as(struct ledger *l, const char *slot_leaf, const char *ca, const char *cert, const char *key)
{
	Carotate__Internal__PoolSet m = CAROTATE__INTERNAL__POOL_SET__INIT;
	uint8_t plain[16384], blob[16384 + SEAL_OVERHEAD];
	char slot[POOLSETS_SLOT_MAX], err[256];
	size_t n, blen = sizeof(blob);

	m.ca = (ProtobufCBinaryData){ strlen(ca), (uint8_t *)ca };
	m.cert = (ProtobufCBinaryData){ strlen(cert), (uint8_t *)cert };
	m.key = (ProtobufCBinaryData){ strlen(key), (uint8_t *)key };
	m.origin = (char *)"custom";
	assert_true(carotate__internal__pool_set__get_packed_size(&m) <= sizeof(plain));
	n = carotate__internal__pool_set__pack(&m, plain);
	snprintf(slot, sizeof(slot), "set/%s", slot_leaf);
	assert_int_equal(
	    seal_encrypt(pool_key, slot, strlen(slot), plain, n, blob, &blen, err, sizeof(err)), 0);
	assert_int_equal(ledger_blob_put_new(l, slot, blob, blen), 1);
}

/* The active and the staged set stored, and read back byte for byte with what they are. */
static void
test_round_trip(void **state)
{
	struct ledger *l = fixture_pg_open("a");
	char leaf[PKI_SHA256_HEX], err[256], ca_sha[PKI_SHA256_HEX];
	struct poolset set;

	put_both();
	assert_int_equal(poolsets_put(&conf, l, pool_key, 0, leaf, err, sizeof(err)), 1);
	assert_string_equal(leaf, one_leaf);
	assert_int_equal(poolsets_put(&conf, l, pool_key, 1, leaf, err, sizeof(err)), 1);
	assert_string_equal(leaf, two_leaf);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM blobs WHERE name LIKE 'set/%'"), 2);
	/* Sealed: no PEM in the clear in the database. */
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM blobs WHERE position("
	                                "'PRIVATE KEY'::bytea IN blob) > 0 OR position("
	                                "'CERTIFICATE'::bytea IN blob) > 0"),
	    0);

	assert_int_equal(poolsets_get(l, pool_key, one_leaf, &set, err, sizeof(err)), 0);
	assert_pem(set.ca, set.ca_len, one.ca);
	assert_pem(set.cert, set.cert_len, one.cert);
	assert_pem(set.key, set.key_len, one.key);
	assert_pem(set.ca_key, set.ca_key_len, one.ca_key);
	assert_string_equal(set.origin, "generated");
	assert_int_equal(set.created, T0 + 7);
	assert_string_equal(set.leaf, one_leaf);
	fixture_pki_sha(one.ca, ca_sha);
	assert_string_equal(set.ca_sha, ca_sha);
	poolsets_clear(&set);
	assert_null(set.key);

	assert_int_equal(poolsets_get(l, pool_key, two_leaf, &set, err, sizeof(err)), 0);
	assert_pem(set.cert, set.cert_len, two.cert);
	assert_pem(set.key, set.key_len, two.key);
	assert_null(set.ca_key); /* a custom set: the CA's key is not held */
	assert_string_equal(set.origin, "custom");
	poolsets_clear(&set);
	poolsets_clear(NULL);
	ledger_close(l);
}

/* A second put of the same set, from any member, stores nothing: the first one's stays. */
static void
test_put_twice(void **state)
{
	struct ledger *a = fixture_pg_open("a"), *b = fixture_pg_open("b");
	char leaf[PKI_SHA256_HEX], err[256];

	put_both();
	assert_int_equal(poolsets_put(&conf, a, pool_key, 0, leaf, err, sizeof(err)), 1);
	assert_int_equal(poolsets_put(&conf, a, pool_key, 0, leaf, err, sizeof(err)), 0);
	assert_int_equal(poolsets_put(&conf, b, pool_key, 0, leaf, err, sizeof(err)), 0);
	assert_string_equal(leaf, one_leaf);
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM blobs WHERE created_by = 'b'"), 0);
	ledger_close(a);
	ledger_close(b);
}

/* Nothing staged: no leaf, nothing stored. A set that does not belong together: refused. */
static void
test_no_set(void **state)
{
	struct ledger *l = fixture_pg_open("a");
	char leaf[PKI_SHA256_HEX], err[256];

	assert_int_equal(poolsets_put(&conf, l, pool_key, 1, leaf, err, sizeof(err)), 0);
	assert_string_equal(leaf, "");
	assert_int_equal(poolsets_put(&conf, l, pool_key, 0, leaf, err, sizeof(err)), 0);
	assert_string_equal(leaf, "");
	put_set("", &one, two.key, "generated");
	assert_int_equal(poolsets_put(&conf, l, pool_key, 0, leaf, err, sizeof(err)), -1);
	assert_string_equal(leaf, "");
	assert_int_equal(fixture_pg_int("SELECT count(*) FROM blobs WHERE name LIKE 'set/%'"), 0);
	ledger_close(l);
}

/* A byte flipped in the database, another pool key, a set the pool lacks, a bad name. */
static void
test_damaged_refused(void **state)
{
	struct ledger *l = fixture_pg_open("a");
	char leaf[PKI_SHA256_HEX], err[256], sql[256];
	struct poolset set;

	put_both();
	assert_int_equal(poolsets_put(&conf, l, pool_key, 0, leaf, err, sizeof(err)), 1);
	assert_refused(l, other_key, one_leaf, "does not open");
	assert_refused(l, pool_key, two_leaf, "no such set");
	snprintf(sql, sizeof(sql),
	    "UPDATE blobs SET blob = set_byte(blob, 40, get_byte(blob, 40) # 1) "
	    "WHERE name = 'set/%s'",
	    one_leaf);
	fixture_pg_exec(sql);
	assert_refused(l, pool_key, one_leaf, "does not open");
	/* A name that is not a leaf's SHA-256 is never looked up. */
	assert_int_equal(poolsets_get(l, pool_key, "ABC", &set, err, sizeof(err)), -1);
	assert_null(set.ca);
	ledger_close(l);
}

/* A blob copied under another leaf's name does not open: the name is sealed with it. */
static void
test_moved_refused(void **state)
{
	struct ledger *l = fixture_pg_open("a");
	char leaf[PKI_SHA256_HEX], err[256], sql[512];

	put_both();
	assert_int_equal(poolsets_put(&conf, l, pool_key, 0, leaf, err, sizeof(err)), 1);
	snprintf(sql, sizeof(sql),
	    "INSERT INTO blobs (name, blob, created_at, created_by) SELECT 'set/%s', blob, "
	    "created_at, created_by FROM blobs WHERE name = 'set/%s'",
	    two_leaf, one_leaf);
	fixture_pg_exec(sql);
	assert_refused(l, pool_key, two_leaf, "does not open");
	ledger_close(l);
}

/*
 * Sealed properly, under the pool key and its own name, and still wrong: a leaf that is
 * not the one named, a key that is not the leaf's, a leaf another CA signed.
 */
static void
test_mismatch_refused(void **state)
{
	struct ledger *l = fixture_pg_open("a");

	seal_as(l, two_leaf, one.ca, one.cert, one.key);
	assert_refused(l, pool_key, two_leaf, "another leaf");
	seal_as(l, one_leaf, one.ca, one.cert, two.key);
	assert_refused(l, pool_key, one_leaf, "key");
	fixture_pg_exec("DELETE FROM blobs");
	seal_as(l, one_leaf, two.ca, one.cert, one.key);
	assert_refused(l, pool_key, one_leaf, "ca");
	ledger_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_round_trip, setup),
		cmocka_unit_test_setup(test_put_twice, setup),
		cmocka_unit_test_setup(test_no_set, setup),
		cmocka_unit_test_setup(test_damaged_refused, setup),
		cmocka_unit_test_setup(test_moved_refused, setup),
		cmocka_unit_test_setup(test_mismatch_refused, setup),
	};
	int rc;

	log_init(1, 0, "test_poolsets_pg");
	if ((rc = fixture_pg_connect("test_poolsets_pg")) != 1)
		return rc == 0 ? 0 : 1;
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	fixture_pg_close();
	return rc;
}
