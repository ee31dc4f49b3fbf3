/* The trust bundle agents receive: derived, never edited by hand. */
#ifndef CAROTATE_BUNDLE_H
#define CAROTATE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "carotate.pb-c.h"
#include "pki.h"

struct config;

#define BUNDLE_MAX          16         /* CAs in one bundle */
#define BUNDLE_RETAINED_DIR "retained" /* in the state directory */

enum bundle_role {
	BUNDLE_ACTIVE,
	BUNDLE_STAGED,
	BUNDLE_RETAINED,
};

struct bundle_ca {
	X509 *cert;
	char sha256[PKI_SHA256_HEX];
	enum bundle_role role;
	int64_t retained_until; /* BUNDLE_RETAINED: end of the retention window */
};

struct bundle {
	struct bundle_ca cas[BUNDLE_MAX]; /* sorted by DER, like the id */
	size_t n;
	char id[PKI_SHA256_HEX]; /* "" when the bundle is empty */
	char *pem;               /* the CAs in the same order, PEM */
	size_t pem_len;
};

/*
 * Derives the bundle (carotated(8) ROTATION): the active CA, the staged CA, and CAs
 * replaced less than [bundle] retention ago (state_dir/retained/). A CA file
 * that does not parse is skipped and logged: the bundle is never built from
 * guesses.
 */
int bundle_derive(const struct config *, time_t now, struct bundle *, char *err, size_t errlen);
void bundle_clear(struct bundle *);
/* The bundle as the protocol describes it; published says whether ca-bundle.pem matches. */
Carotate__V1__Bundle *bundle_describe(const struct bundle *, int published);
#define BUNDLE_SIG_LEN 4
/* The identity of the retained CAs' directory (see ssldir_signature). */
void bundle_signature(const struct config *, int64_t sig[BUNDLE_SIG_LEN]);
/* Derives the bundle and publishes it with the canary files; 1 changed, 0 not, -1 error. */
int bundle_publish(const struct config *, time_t now, struct bundle *, char *err, size_t errlen);

#define BUNDLE_KNOWN_ACTIVE "active.known" /* in the state directory */
#define BUNDLE_NOTE_LEN     (2 * PKI_SHA256_HEX + 16)
/*
 * Compares the active set with the one recorded in state_dir/active.known
 * and records it. When the active CA changed, the one it replaced joins the
 * retained CAs (trusted for [bundle] retention). before and after describe
 * the sets ("ca=SHA server=SHA", "-" for what is absent). 1 when the active
 * set changed since the record, 0 when not (or there was no record), -1 on
 * error.
 */
int bundle_note_active(const struct config *, time_t now, char before[BUNDLE_NOTE_LEN],
    char after[BUNDLE_NOTE_LEN], char *err, size_t errlen);

/*
 * The SHA-256 of the active (or staged) CA certificate (DER of the first
 * certificate of its file), read from disk now; "" when there is none. -1
 * (err filled) when it cannot be read or parsed.
 */
int bundle_set_ca_sha(
    const struct config *, int staged, char sha[PKI_SHA256_HEX], char *err, size_t errlen);

/* A retained CA that bundle_retire removed (or, in a dry run, would remove). */
struct bundle_retired {
	X509 *cert;
	char sha256[PKI_SHA256_HEX];
	int64_t retained_until; /* end of its retention window; 0 when its file has no time */
};

/*
 * Removes from state_dir/retained/ every CA that is neither the active nor
 * the staged one (dry_run: removes nothing), and fsyncs the directory; the
 * caller re-publishes the bundle. Files that hold no certificate, and
 * anything but regular files, are left alone. Refuses (removing nothing) when
 * the active or staged CA exists but cannot be read. *out (*n, sorted by
 * sha256, NULL when none) lists the CAs, even on -1: free it with
 * bundle_retired_free. 0, or -1 with err naming the first failure.
 */
int bundle_retire(const struct config *, int dry_run, struct bundle_retired **out, size_t *n,
    char *err, size_t errlen);
void bundle_retired_free(struct bundle_retired *, size_t);

#endif
