/* The retained CAs: replaced CAs kept in the trust bundle for [bundle] retention. */
#ifndef CAROTATE_RETAINED_H
#define CAROTATE_RETAINED_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "pki.h"

struct config;

#define RETAINED_DIR "retained" /* in the state directory */

/* A retained CA. */
struct retained_ca {
	X509 *cert;
	char sha256[PKI_SHA256_HEX];
	int64_t replaced;       /* when it was replaced; 0 when its file has no time */
	int64_t retained_until; /* end of its retention window; 0 when its file has no time */
};

/*
 * The retained CAs whose window has not ended at now, the most recently
 * replaced first; files that do not parse are skipped and logged. *out (*n,
 * NULL when none) is freed with retained_free. 0, or -1 when the directory
 * cannot be read (none yet, for one).
 */
int retained_list(const struct config *, time_t now, struct retained_ca **out, size_t *n);
void retained_free(struct retained_ca *, size_t);

#define RETAINED_SIG_LEN 4
/* The identity of the retained CAs' directory (see ssldir_signature). */
void retained_signature(const struct config *, int64_t sig[RETAINED_SIG_LEN]);

#define RETAINED_KNOWN_ACTIVE "active.known" /* in the state directory */
#define RETAINED_NOTE_LEN     (2 * PKI_SHA256_HEX + 16)
/*
 * Compares the active set with the one recorded in state_dir/active.known
 * and records it. When the active CA changed, the one it replaced joins the
 * retained CAs (trusted for [bundle] retention). before and after describe
 * the sets ("ca=SHA server=SHA", "-" for what is absent). 1 when the active
 * set changed since the record, 0 when not (or there was no record), -1 on
 * error.
 */
int retained_note_active(const struct config *, time_t now, char before[RETAINED_NOTE_LEN],
    char after[RETAINED_NOTE_LEN], char *err, size_t errlen);

/*
 * Removes from state_dir/retained/ every CA that is neither the active nor
 * the staged one (dry_run: removes nothing), and fsyncs the directory; the
 * caller re-publishes the bundle. Files that hold no certificate, and
 * anything but regular files, are left alone. Refuses (removing nothing) when
 * the active or staged CA exists but cannot be read. *out (*n, sorted by
 * sha256, NULL when none) lists the CAs, even on -1: free it with
 * retained_free. 0, or -1 with err naming the first failure.
 */
int retained_retire(const struct config *, int dry_run, struct retained_ca **out, size_t *n,
    char *err, size_t errlen);

#endif
