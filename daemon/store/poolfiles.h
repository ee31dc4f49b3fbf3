/*
 * The two files a pool member reads at start-up, [ledger] dsn_file and
 * [ledger] pool_key (carotated.conf(5)): secrets, so each must be a regular
 * file (never followed through a symbolic link) owned by root with mode 0600
 * or stricter. Errors name the file and what is wrong with it, never its
 * contents.
 */
#ifndef CAROTATE_POOLFILES_H
#define CAROTATE_POOLFILES_H

#include <stddef.h>
#include <stdint.h>

#define POOLFILES_MAX_DSN 4096 /* bytes of the DSN file, its newline included */
#define POOLFILES_KEY_LEN 32   /* bytes of the pool key (AES-256) */

/*
 * Reads the libpq connection string of path into buf (len bytes, at least
 * POOLFILES_MAX_DSN + 1): one line, which libpq must parse, whose every host
 * is a Unix socket directory (starts with '/') unless it sets
 * sslmode=verify-full. 0, or -1 with err filled and buf wiped.
 */
int poolfiles_read_dsn(const char *path, char *buf, size_t len, char *err, size_t errlen);

/*
 * Reads the pool key of path: exactly 64 hexadecimal digits (the output of
 * `openssl rand -hex 32`), optionally followed by one newline. 0, or -1 with
 * err filled and key wiped.
 */
int poolfiles_read_key(const char *path, uint8_t key[POOLFILES_KEY_LEN], char *err, size_t errlen);

#endif
