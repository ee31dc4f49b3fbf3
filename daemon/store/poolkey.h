/*
 * A pool member's key against the pool's: poolkey_check proves that the key
 * of [ledger] pool_key is the one the pool's sealed data is under.
 */
#ifndef CAROTATE_POOLKEY_H
#define CAROTATE_POOLKEY_H

#include <stddef.h>
#include <stdint.h>

#define POOLKEY_LEN 32

struct ledger;

/*
 * 0 when key opens the pool's key check (the first member to start seals
 * it); -1 with err filled when it does not (another key: the member must not
 * start) or when the database cannot be read or written.
 */
int poolkey_check(struct ledger *, const uint8_t key[POOLKEY_LEN], char *err, size_t errlen);

#endif
