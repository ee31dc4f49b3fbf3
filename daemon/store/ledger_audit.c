/*
 * The audit chain's encoding, shared by the ledger's engines: the hash of a
 * record (ledger.h has the encoding), the verdict on one stored record against
 * the one before it, the start of a walk, and the outcome of a swap read back
 * from a record's detail. The engines store and read the records.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "digest.h"
#include "ledger.h"
#include "ledger_backend.h"
#include "log.h"

_Static_assert(LEDGER_AUDIT_HASH_LEN + 1 == DIGEST_SHA256_HEX, "a record hash is SHA-256 hex");

static void ledger_audit_digest_be(EVP_MD_CTX *, uint64_t, int);

#define LEDGER_AUDIT_TAG "carotate-audit-v1" /* hashed with its NUL */

static void
ledger_audit_digest_be(EVP_MD_CTX *md, uint64_t v, int bytes)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	if (EVP_DigestUpdate(md, b, (size_t)bytes) != 1)
		fatalx("%s: EVP_DigestUpdate failed", __func__);
}

void
ledger_audit_digest(const int64_t ints[LEDGER_AUDIT_INTS], const char *const s[LEDGER_AUDIT_STRS],
    const size_t n[LEDGER_AUDIT_STRS], char out[LEDGER_AUDIT_HASH_LEN + 1])
{
	EVP_MD_CTX *md;
	unsigned int i;

	if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, LEDGER_AUDIT_TAG, sizeof(LEDGER_AUDIT_TAG)) != 1)
		fatalx("%s: cannot start a SHA-256 digest", __func__);
	for (i = 0; i < LEDGER_AUDIT_INTS; i++)
		ledger_audit_digest_be(md, (uint64_t)ints[i], 8);
	for (i = 0; i < LEDGER_AUDIT_STRS; i++) {
		ledger_audit_digest_be(md, n[i], 4);
		if (n[i] > 0 && EVP_DigestUpdate(md, s[i], n[i]) != 1)
			fatalx("%s: EVP_DigestUpdate failed", __func__);
	}
	if (digest_sha256_final_hex(md, out) != 0)
		fatalx("%s: EVP_DigestFinal_ex failed", __func__);
	EVP_MD_CTX_free(md);
}

void
ledger_audit_hash(const struct ledger_audit *a, char out[LEDGER_AUDIT_HASH_LEN + 1])
{
	const int64_t ints[LEDGER_AUDIT_INTS] = { (int64_t)a->seq, a->time, a->uid, a->pid };
	const char *s[LEDGER_AUDIT_STRS] = { a->user, a->call, a->result, a->detail, a->before,
		a->after, a->prev_hash };
	size_t n[LEDGER_AUDIT_STRS], i;

	for (i = 0; i < LEDGER_AUDIT_STRS; i++)
		n[i] = strlen(s[i]);
	ledger_audit_digest(ints, s, n, out);
}

/*
 * A stored record against the record expected next (seq want, linked to prev):
 * its ints, then its strings and the stored hash as the table holds them (n:
 * their lengths in bytes). NULL when it checks out, else why not, in msg.
 */
const char *
ledger_audit_check(uint64_t want, const char *prev, const int64_t ints[LEDGER_AUDIT_INTS],
    const char *const s[LEDGER_AUDIT_STRS + 1], const size_t n[LEDGER_AUDIT_STRS + 1],
    char msg[LEDGER_AUDIT_MAX_DETAIL])
{
	char hash[LEDGER_AUDIT_HASH_LEN + 1];
	uint64_t seq = (uint64_t)ints[0];

	if (ints[0] < 1 || seq < want) {
		snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
		    "record %lld is out of sequence (expected record %llu)", (long long)ints[0],
		    (unsigned long long)want);
		return msg;
	}
	if (seq != want) {
		if (seq == want + 1)
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record %llu is missing (the log goes on with record %llu)",
			    (unsigned long long)want, (unsigned long long)seq);
		else
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "records %llu to %llu are missing (the log goes on with record %llu)",
			    (unsigned long long)want, (unsigned long long)(seq - 1),
			    (unsigned long long)seq);
		return msg;
	}
	if (n[LEDGER_AUDIT_STRS - 1] != LEDGER_AUDIT_HASH_LEN ||
	    memcmp(s[LEDGER_AUDIT_STRS - 1], prev, LEDGER_AUDIT_HASH_LEN) != 0) {
		if (want == 1)
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record 1 does not start the chain (its prev_hash is not zeros): "
			    "earlier records were removed or it was changed");
		else
			snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
			    "record %llu does not link to record %llu (its prev_hash is not that "
			    "record's hash): one of them was changed and re-hashed",
			    (unsigned long long)want, (unsigned long long)(want - 1));
		return msg;
	}
	ledger_audit_digest(ints, s, n, hash);
	if (n[LEDGER_AUDIT_STRS] != LEDGER_AUDIT_HASH_LEN ||
	    memcmp(s[LEDGER_AUDIT_STRS], hash, LEDGER_AUDIT_HASH_LEN) != 0) {
		snprintf(msg, LEDGER_AUDIT_MAX_DETAIL,
		    "record %llu was changed: its hash does not match its contents",
		    (unsigned long long)want);
		return msg;
	}
	return NULL;
}

void
ledger_audit_walk_init(struct ledger_audit_walk *w)
{
	w->next = 1;
	memcpy(w->prev, LEDGER_AUDIT_ZEROS, sizeof(w->prev));
}

/*
 * The outcome of a swap in its audit detail: the bare verified= and rolled_back= arguments
 * audit_outcome writes. The detail is read by its grammar, left to right: arguments
 * "key=value" separated by one space, a string value in quotes (audit_sanitize escapes '"'
 * and '\\' inside it), then "; " and the reply's message, where reading stops. A --reason or
 * message that reads "rolled_back=yes" is inside quotes or after the arguments, and is never
 * taken for the outcome. 0 with both flags, or -1 when the detail holds no outcome.
 */
int
ledger_audit_outcome(const char *detail, int *verified, int *rolled_back)
{
	const char *p = detail, *eq, *end;
	size_t klen, vlen;
	int *flag;

	*verified = *rolled_back = -1;
	while (*p != '\0' && *p != ';') {
		eq = p + strcspn(p, "= ;\"");
		if (*eq != '=')
			break; /* not an argument: the message alone */
		klen = (size_t)(eq - p);
		end = eq + 1;
		if (*end == '"') {
			if ((end = strchr(end + 1, '"')) == NULL)
				break;
			end++;
		} else
			end += strcspn(end, " ;\"");
		vlen = (size_t)(end - eq - 1);
		flag = NULL;
		if (klen == strlen("verified") && memcmp(p, "verified", klen) == 0)
			flag = verified;
		else if (klen == strlen("rolled_back") && memcmp(p, "rolled_back", klen) == 0)
			flag = rolled_back;
		if (flag != NULL && vlen == 3 && memcmp(eq + 1, "yes", 3) == 0)
			*flag = 1;
		else if (flag != NULL && vlen == 2 && memcmp(eq + 1, "no", 2) == 0)
			*flag = 0;
		p = *end == ' ' ? end + 1 : end;
	}
	return *verified != -1 && *rolled_back != -1 ? 0 : -1;
}
