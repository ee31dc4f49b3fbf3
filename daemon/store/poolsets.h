/*
 * A pool's certificate sets: the set a member staged or put live, sealed under
 * the pool key in the pool's database (a blob named "set/<leaf SHA-256>"), so
 * that every member can put the very same set live. The sealing's additional
 * data is the blob's name: a set copied under another leaf's name does not open.
 */
#ifndef CAROTATE_POOLSETS_H
#define CAROTATE_POOLSETS_H

#include <stddef.h>
#include <stdint.h>

#include "pki.h"
#include "seal.h"

struct config;
struct ledger;

#define POOLSETS_SLOT_PREFIX "set/" /* blob name: "set/<leaf sha256 hex>", also the seal's AAD */
#define POOLSETS_SLOT_MAX    (sizeof(POOLSETS_SLOT_PREFIX) - 1 + PKI_SHA256_HEX)

struct poolset {
	uint8_t *ca, *cert, *key, *ca_key; /* PEM, NUL-terminated; ca_key NULL when the CA's key is
	                                      not held (a custom set) */
	size_t ca_len, cert_len, key_len, ca_key_len;
	char origin[16];             /* "generated" / "custom" */
	int64_t created;             /* when it was staged; 0 unknown */
	char leaf[PKI_SHA256_HEX];   /* SHA-256 of the server leaf (pki_pem_sha256 of cert) */
	char ca_sha[PKI_SHA256_HEX]; /* SHA-256 of the CA (as certset_fingerprints gives it) */
};

/*
 * Reads this member's active (staged 0) or staged (1) set from the SSL directory
 * (ca, cert and key, never through a symbolic link; its origin and staging time),
 * and the CA's key from the state directory when kept (cakeys_load), checks that
 * they belong together (pki_check_set), and stores them sealed under key in blob
 * "set/<leaf>" unless the pool has it already (ledger_blob_put_new: the first
 * member to store a leaf's set wins). leaf gets the leaf's SHA-256, "" when there
 * is no such set (then 0, nothing stored). 1 stored, 0 already there or no set, -1
 * with err (an incomplete set, one that does not belong together, one too large
 * for a blob, the database out of reach). Keys are wiped from memory after use.
 */
int poolsets_put(const struct config *, struct ledger *, const uint8_t key[SEAL_KEY_LEN],
    int staged, char leaf[PKI_SHA256_HEX], char *err, size_t errlen);
/*
 * Fetches and opens set leaf (64 lower-case hex digits) into *set (heap;
 * poolsets_clear). Refuses (-1, err naming the slot and the reason, *set empty) a
 * set the pool does not have, a blob that does not open (damaged, another key,
 * another slot's), one that does not parse or lacks a part, whose leaf does not
 * hash to `leaf`, whose key is not the leaf's or whose leaf does not chain to its
 * CA, or whose CA key (when there is one) is not the CA's. 0 / -1.
 */
int poolsets_get(struct ledger *, const uint8_t key[SEAL_KEY_LEN], const char *leaf,
    struct poolset *set, char *err, size_t errlen);
/* Wipes the keys (OPENSSL_cleanse) and frees; *set is empty after it. NULL is a no-op. */
void poolsets_clear(struct poolset *);

#endif
