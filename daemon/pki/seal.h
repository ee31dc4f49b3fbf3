/*
 * Sealed blobs: key material at rest in a shared store (a pool's server key
 * and generated CA key in PostgreSQL), encrypted and authenticated with
 * AES-256-GCM under the pool key. A blob is
 *
 *   version (1 byte, SEAL_VERSION) || nonce (12) || ciphertext (len) || tag (16)
 *
 * with a fresh random nonce per blob. The additional data names the slot the
 * blob belongs to (e.g. "pool/active/server.key") and is authenticated, not
 * stored: a blob copied into another slot fails to open.
 */
#ifndef CAROTATE_SEAL_H
#define CAROTATE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN   32
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN   16
#define SEAL_VERSION   1
/* Bytes a blob adds to its plaintext. */
#define SEAL_OVERHEAD (1 + SEAL_NONCE_LEN + SEAL_TAG_LEN)
/* The largest plaintext sealed: far above any key or certificate set. */
#define SEAL_MAX_PLAIN (16 * 1024 * 1024)

/*
 * Seals plain[0..len) under key with aad into out, which holds *outlen bytes
 * (at least len + SEAL_OVERHEAD); *outlen becomes the blob's length.
 * 0, or -1 with err filled (out then holds nothing of the plaintext).
 */
int seal_encrypt(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aadlen,
    const uint8_t *plain, size_t len, uint8_t *out, size_t *outlen, char *err, size_t errlen);

/*
 * Opens blob[0..bloblen) sealed under key with aad into out, which holds
 * *outlen bytes (at least bloblen - SEAL_OVERHEAD); *outlen becomes the
 * plaintext's length. -1 with err filled for a short blob, an unknown
 * version, or a tag that does not verify (wrong key, wrong slot, tampering);
 * then out holds no byte of plaintext.
 */
int seal_decrypt(const uint8_t key[SEAL_KEY_LEN], const void *aad, size_t aadlen,
    const uint8_t *blob, size_t bloblen, uint8_t *out, size_t *outlen, char *err, size_t errlen);

#endif
