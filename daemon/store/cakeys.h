/*
 * The private keys of the CAs carotated generated: in the state directory
 * (state_dir/ca-keys/<SHA-256 of the CA's DER>.key, 0600), never in the SSL one.
 */
#ifndef CAROTATE_CAKEYS_H
#define CAROTATE_CAKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "pki.h"

struct config;

#define CAKEYS_DIR      "ca-keys"            /* in the state directory */
#define CAKEYS_NAME_MAX (PKI_SHA256_HEX + 8) /* <sha>.key and its NUL */

/*
 * Keeps key, the private key of the CA in ca (PEM), durably (the file and both
 * directories fsynced) or not at all. name gets the file's name. 0, or -1 with err.
 */
int cakeys_save(const struct config *, const uint8_t *ca, size_t ca_len, const uint8_t *key,
    size_t key_len, char name[CAKEYS_NAME_MAX], char *err, size_t errlen);
/*
 * The key kept for the CA whose SHA-256 is sha (lower-case hex), for renew to
 * sign a leaf with: 1 with *key (heap; the caller wipes it, xfreezero), 0 when
 * none is kept (a custom set), -1 with err when it cannot be read.
 */
int cakeys_load(const struct config *, const char *sha, uint8_t **key, size_t *key_len, char *err,
    size_t errlen);
/*
 * Whether the key of CA sha (cakeys_load's) is kept, without reading it: 1, 0, or -1 with
 * err when the state directory cannot be asked.
 */
int cakeys_held(const struct config *, const char *sha, char *err, size_t errlen);
/* Removes the key file name (cakeys_save's); quiet when there is none, logged otherwise. */
void cakeys_drop(const struct config *, const char *name);

#endif
