/*
 * The pool key's proof: every member of a pool must hold the same [ledger]
 * pool_key, or one member's sealed keys would be noise to the others. The
 * first member to start seals a known text under its key into the pool's
 * database; every member that starts later opens it, and one that cannot
 * holds another key and refuses to start.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ledger.h"
#include "poolkey.h"
#include "seal.h"

#define POOLKEY_SLOT "pool/keycheck"
#define POOLKEY_TEXT "carotate pool key check v1"

static int poolkey_seal_new(struct ledger *, const uint8_t *, char *, size_t);

/* Stores the check sealed under key unless a member was first. 0 / -1. */
static int
poolkey_seal_new(struct ledger *l, const uint8_t *key, char *err, size_t errlen)
{
	uint8_t blob[sizeof(POOLKEY_TEXT) - 1 + SEAL_OVERHEAD];
	size_t n = sizeof(blob);

	if (seal_encrypt(key, POOLKEY_SLOT, strlen(POOLKEY_SLOT), (const uint8_t *)POOLKEY_TEXT,
	        strlen(POOLKEY_TEXT), blob, &n, err, errlen) == -1)
		return -1;
	if (ledger_blob_put_new(l, POOLKEY_SLOT, blob, n) == -1) {
		snprintf(err, errlen, "cannot store the pool key's check in the pool's database");
		return -1;
	}
	return 0;
}

int
poolkey_check(struct ledger *l, const uint8_t key[POOLKEY_LEN], char *err, size_t errlen)
{
	uint8_t blob[256], plain[256];
	size_t blen = 0, plen = sizeof(plain);
	char why[128];
	int r;

	if ((r = ledger_blob_get(l, POOLKEY_SLOT, blob, sizeof(blob), &blen)) == 0) {
		if (poolkey_seal_new(l, key, err, errlen) == -1)
			return -1;
		r = ledger_blob_get(l, POOLKEY_SLOT, blob, sizeof(blob), &blen);
	}
	if (r != 1) {
		snprintf(err, errlen, "cannot read the pool key's check from the pool's database");
		return -1;
	}
	r = seal_decrypt(
	    key, POOLKEY_SLOT, strlen(POOLKEY_SLOT), blob, blen, plain, &plen, why, sizeof(why));
	if (r == -1 || plen != strlen(POOLKEY_TEXT) || memcmp(plain, POOLKEY_TEXT, plen) != 0) {
		snprintf(err, errlen,
		    "[ledger] pool_key does not open the pool's sealed data: this member holds "
		    "another key than the pool's (every member must hold the same pool_key "
		    "file), or the sealed data in the database was damaged");
		r = -1;
	} else
		r = 0;
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}
