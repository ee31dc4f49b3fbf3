/*
 * A pool's certificate sets in its database (poolsets.h): a set read from this
 * member's SSL directory (and its CA's key from the state directory),
 * serialised as one PoolSet message, sealed whole under the pool key with the
 * blob's name as additional data, and stored once; and the way back, which
 * believes nothing the database returns until the seal opened and the set
 * checked out (its leaf's hash, key and chain).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cakeys.h"
#include "config.h"
#include "digest.h"
#include "errbuf.h"
#include "fsx.h"
#include "internal.pb-c.h"
#include "ledger.h"
#include "poolsets.h"
#include "ssldir.h"
#include "xmalloc.h"

/* The largest serialised set: what a blob holds once sealed. */
#define POOLSETS_MAX_PLAIN (LEDGER_MAX_BLOB - SEAL_OVERHEAD)

/* A set as read from disk, before it is sealed. */
struct poolsets_disk {
	struct ssldir_set set; /* ca, cert, origin, created */
	uint8_t *key, *ca_key;
	size_t key_len, ca_key_len;
};

static int poolsets_read(const struct config *, int, struct poolsets_disk *, char[PKI_SHA256_HEX],
    char[PKI_SHA256_HEX], char *, size_t);
static void poolsets_disk_clear(struct poolsets_disk *);
static int poolsets_seal_put(
    struct ledger *, const uint8_t *, const char *, const struct poolsets_disk *, char *, size_t);
static int poolsets_open(
    struct ledger *, const uint8_t *, const char *, uint8_t **, size_t *, char *, size_t);
static int poolsets_fill(
    const Carotate__Internal__PoolSet *, const char *, struct poolset *, char *, size_t);
static int poolsets_check(struct poolset *, const char *, char *, size_t);
static uint8_t *poolsets_dup(const ProtobufCBinaryData *, size_t *);

static void
poolsets_disk_clear(struct poolsets_disk *d)
{
	ssldir_set_clear(&d->set);
	xfreezero(d->key, d->key_len);
	xfreezero(d->ca_key, d->ca_key_len);
	memset(d, 0, sizeof(*d));
}

/*
 * The set of the SSL directory (or new/), its leaf's and CA's SHA-256, and its
 * CA's key when kept: 1 read, 0 there is none, -1 with err.
 */
static int
poolsets_read(const struct config *conf, int staged, struct poolsets_disk *d,
    char leaf[PKI_SHA256_HEX], char ca_sha[PKI_SHA256_HEX], char *err, size_t errlen)
{
	const char *where = staged ? SSLDIR_STAGING "/" : "";
	char why[128];
	int dfd, mask, r = -1;

	memset(d, 0, sizeof(*d));
	if ((dfd = ssldir_open(conf, staged)) == -1) {
		if (staged && errno == ENOENT)
			return 0;
		return errbuf_fail(
		    err, errlen, "cannot open %s/%s: %s", conf->ssl_dir, where, strerror(errno));
	}
	if (ssldir_set_mask(conf, dfd, where, &mask, err, errlen) == -1)
		goto out;
	if ((mask & 3) == 0) { /* neither CA nor certificate: no set */
		r = 0;
		goto out;
	}
	if ((mask & SSLDIR_SET_REQUIRED) != SSLDIR_SET_REQUIRED) {
		errbuf_fail(err, errlen, "the set in %s/%s is incomplete", conf->ssl_dir, where);
		goto out;
	}
	ssldir_read_set(conf, dfd, &d->set);
	if (d->set.ca_errno != 0 || d->set.cert_errno != 0 ||
	    fsx_read(dfd, conf->ssl_key, SSLDIR_MAX_CERT_FILE, &d->key, &d->key_len) == -1) {
		errbuf_fail(err, errlen, "cannot read the set in %s/%s: %s", conf->ssl_dir, where,
		    strerror(d->set.ca_errno != 0     ? d->set.ca_errno
		             : d->set.cert_errno != 0 ? d->set.cert_errno
		                                      : errno));
		goto out;
	}
	if (pki_pem_sha256(d->set.cert, d->set.cert_len, leaf, why, sizeof(why)) == -1 ||
	    pki_pem_sha256(d->set.ca, d->set.ca_len, ca_sha, why, sizeof(why)) == -1 ||
	    pki_check_set(d->set.ca, d->set.ca_len, d->set.cert, d->set.cert_len, d->key,
	        d->key_len, why, sizeof(why)) == -1) {
		errbuf_fail(err, errlen, "the set in %s/%s: %s", conf->ssl_dir, where, why);
		goto out;
	}
	if (cakeys_load(conf, ca_sha, &d->ca_key, &d->ca_key_len, err, errlen) == -1)
		goto out;
	r = 1;
out:
	close(dfd);
	if (r != 1)
		poolsets_disk_clear(d);
	return r;
}

/* The set serialised and sealed under key as slot: 1 stored, 0 the pool had it, -1 with err. */
static int
poolsets_seal_put(struct ledger *l, const uint8_t *key, const char *slot,
    const struct poolsets_disk *d, char *err, size_t errlen)
{
	Carotate__Internal__PoolSet m = CAROTATE__INTERNAL__POOL_SET__INIT;
	uint8_t *plain, *blob;
	size_t plen, blen;
	int r = -1;

	m.ca = (ProtobufCBinaryData){ d->set.ca_len, d->set.ca };
	m.cert = (ProtobufCBinaryData){ d->set.cert_len, d->set.cert };
	m.key = (ProtobufCBinaryData){ d->key_len, d->key };
	m.ca_key = (ProtobufCBinaryData){ d->ca_key_len, d->ca_key };
	m.origin = (char *)(d->set.origin[0] != '\0' ? d->set.origin
	                    : d->ca_key != NULL      ? "generated"
	                                             : "custom");
	m.created = d->set.created;
	if ((plen = carotate__internal__pool_set__get_packed_size(&m)) > POOLSETS_MAX_PLAIN)
		return errbuf_fail(
		    err, errlen, "%s: the set is %zu bytes, more than a blob holds", slot, plen);
	plain = xmalloc(plen + 1);
	blob = xmalloc(plen + SEAL_OVERHEAD);
	blen = plen + SEAL_OVERHEAD;
	carotate__internal__pool_set__pack(&m, plain);
	if (seal_encrypt(key, slot, strlen(slot), plain, plen, blob, &blen, err, errlen) == 0) {
		if ((r = ledger_blob_put_new(l, slot, blob, blen)) == -1)
			errbuf_fail(
			    err, errlen, "%s: cannot store it in the pool's database", slot);
	}
	xfreezero(plain, plen + 1);
	free(blob);
	return r;
}

int
poolsets_put(const struct config *conf, struct ledger *l, const uint8_t key[SEAL_KEY_LEN],
    int staged, char leaf[PKI_SHA256_HEX], char *err, size_t errlen)
{
	char ca_sha[PKI_SHA256_HEX], slot[POOLSETS_SLOT_MAX];
	struct poolsets_disk d;
	int r;

	leaf[0] = '\0';
	if ((r = poolsets_read(conf, staged, &d, leaf, ca_sha, err, errlen)) != 1) {
		leaf[0] = '\0';
		return r;
	}
	snprintf(slot, sizeof(slot), POOLSETS_SLOT_PREFIX "%s", leaf);
	r = poolsets_seal_put(l, key, slot, &d, err, errlen);
	poolsets_disk_clear(&d);
	return r;
}

/* Blob slot, opened under key into *plain (heap; wiped by the caller): 0, or -1 with err. */
static int
poolsets_open(struct ledger *l, const uint8_t *key, const char *slot, uint8_t **plain, size_t *plen,
    char *err, size_t errlen)
{
	uint8_t *blob = xmalloc(LEDGER_MAX_BLOB);
	size_t blen = 0;
	char why[128];
	int r;

	*plain = NULL;
	if ((r = ledger_blob_get(l, slot, blob, LEDGER_MAX_BLOB, &blen)) != 1) {
		free(blob);
		return errbuf_fail(err, errlen, "%s: %s", slot,
		    r == 0 ? "the pool has no such set"
		           : "cannot read it from the pool's database");
	}
	*plain = xmalloc(blen);
	*plen = blen;
	r = seal_decrypt(key, slot, strlen(slot), blob, blen, *plain, plen, why, sizeof(why));
	free(blob);
	if (r == -1) {
		xfreezero(*plain, blen);
		*plain = NULL;
		return errbuf_fail(err, errlen,
		    "%s: does not open (damaged, stored under another name, or sealed under "
		    "another pool key): %s",
		    slot, why);
	}
	return 0;
}

/* A part of the message as a heap copy, NUL-terminated (PEM is text). */
static uint8_t *
poolsets_dup(const ProtobufCBinaryData *b, size_t *len)
{
	*len = b->len;
	return xmemdupz(b->data, b->len);
}

/* The message's parts into set, each present and bounded: 0, or -1 with err. */
static int
poolsets_fill(const Carotate__Internal__PoolSet *m, const char *slot, struct poolset *set,
    char *err, size_t errlen)
{
	if (m->ca.len == 0 || m->cert.len == 0 || m->key.len == 0 ||
	    m->ca.len > SSLDIR_MAX_CERT_FILE || m->cert.len > SSLDIR_MAX_CERT_FILE ||
	    m->key.len > SSLDIR_MAX_CERT_FILE || m->ca_key.len > SSLDIR_MAX_CERT_FILE)
		return errbuf_fail(
		    err, errlen, "%s: a part of the set is missing or too large", slot);
	if (strcmp(m->origin, "generated") != 0 && strcmp(m->origin, "custom") != 0)
		return errbuf_fail(err, errlen, "%s: an unknown origin", slot);
	set->ca = poolsets_dup(&m->ca, &set->ca_len);
	set->cert = poolsets_dup(&m->cert, &set->cert_len);
	set->key = poolsets_dup(&m->key, &set->key_len);
	if (m->ca_key.len > 0)
		set->ca_key = poolsets_dup(&m->ca_key, &set->ca_key_len);
	snprintf(set->origin, sizeof(set->origin), "%s", m->origin);
	set->created = m->created;
	return 0;
}

/* The set is the one named leaf, and belongs together (set->ca_sha filled): 0, or -1 with err. */
static int
poolsets_check(struct poolset *set, const char *slot, char *err, size_t errlen)
{
	char sha[PKI_SHA256_HEX], why[128];

	if (pki_pem_sha256(set->cert, set->cert_len, sha, why, sizeof(why)) == -1 ||
	    pki_pem_sha256(set->ca, set->ca_len, set->ca_sha, why, sizeof(why)) == -1)
		return errbuf_fail(err, errlen, "%s: %s", slot, why);
	if (strcmp(sha, set->leaf) != 0)
		return errbuf_fail(
		    err, errlen, "%s: holds another leaf (%s) than its name says", slot, sha);
	if (pki_check_set(set->ca, set->ca_len, set->cert, set->cert_len, set->key, set->key_len,
	        why, sizeof(why)) == -1)
		return errbuf_fail(err, errlen, "%s: %s", slot, why);
	/* A self-signed CA is its own leaf: its key must sign for it. */
	if (set->ca_key != NULL && pki_check_set(set->ca, set->ca_len, set->ca, set->ca_len,
	                               set->ca_key, set->ca_key_len, why, sizeof(why)) == -1)
		return errbuf_fail(err, errlen, "%s: the CA's key: %s", slot, why);
	return 0;
}

int
poolsets_get(struct ledger *l, const uint8_t key[SEAL_KEY_LEN], const char *leaf,
    struct poolset *set, char *err, size_t errlen)
{
	Carotate__Internal__PoolSet *m;
	char slot[POOLSETS_SLOT_MAX];
	uint8_t *plain;
	size_t plen;
	int r;

	memset(set, 0, sizeof(*set));
	if (leaf == NULL || !digest_sha256_hex_ok(leaf))
		return errbuf_fail(err, errlen, "not a leaf's SHA-256");
	snprintf(slot, sizeof(slot), POOLSETS_SLOT_PREFIX "%s", leaf);
	if (poolsets_open(l, key, slot, &plain, &plen, err, errlen) == -1)
		return -1;
	m = carotate__internal__pool_set__unpack(NULL, plen, plain);
	xfreezero(plain, plen);
	if (m == NULL)
		return errbuf_fail(err, errlen, "%s: does not parse", slot);
	snprintf(set->leaf, sizeof(set->leaf), "%s", leaf);
	r = poolsets_fill(m, slot, set, err, errlen);
	OPENSSL_cleanse(m->key.data, m->key.len);
	OPENSSL_cleanse(m->ca_key.data, m->ca_key.len);
	carotate__internal__pool_set__free_unpacked(m, NULL);
	if (r == 0)
		r = poolsets_check(set, slot, err, errlen);
	if (r == -1)
		poolsets_clear(set);
	return r;
}

void
poolsets_clear(struct poolset *set)
{
	if (set == NULL)
		return;
	free(set->ca);
	free(set->cert);
	if (set->key != NULL)
		OPENSSL_cleanse(set->key, set->key_len);
	if (set->ca_key != NULL)
		OPENSSL_cleanse(set->ca_key, set->ca_key_len);
	free(set->key);
	free(set->ca_key);
	memset(set, 0, sizeof(*set));
}
