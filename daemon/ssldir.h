/* Every read and write of the SSL directory goes through here. */
#ifndef CAROTATE_SSLDIR_H
#define CAROTATE_SSLDIR_H

#include <stddef.h>
#include <stdint.h>

#include "carotate.pb-c.h"

struct config;

#define SSLDIR_STAGING       "new"
#define SSLDIR_MAX_CERT_FILE (1024 * 1024) /* bytes; a PEM chain is far smaller */

/* What is on disk for one set (active or staged): raw file contents. */
struct ssldir_set {
	uint8_t *ca;
	size_t ca_len;
	uint8_t *cert;
	size_t cert_len;
	int ca_errno; /* 0 read, ENOENT missing, else why it could not be read */
	int cert_errno;
	int key_errno; /* 0 when the key file exists as a regular file */
};

/* Opens the SSL directory (or "new" inside it when staged is set); -1 with errno. */
int ssldir_open(const struct config *, int staged);
/* Reads ca and cert, probes key, relative to dirfd; never follows symlinks. */
void ssldir_read_set(const struct config *, int dirfd, struct ssldir_set *);
void ssldir_set_clear(struct ssldir_set *);
/* 1 when a set has at least its CA or server certificate on disk. */
int ssldir_set_present(const struct ssldir_set *);
/* The rotation phase as the directory shows it; -1 with errno when it cannot be read. */
int ssldir_phase(const struct config *, Carotate__V1__Phase *);
/*
 * Reads a regular file name inside dirfd without following symlinks, at most
 * cap bytes. 0 on success (*data malloc'd, NUL-terminated), -1 with errno
 * (EFBIG when larger than cap, EINVAL when not a regular file).
 */
int ssldir_read_file(int dirfd, const char *name, size_t cap, uint8_t **data, size_t *len);

#endif
