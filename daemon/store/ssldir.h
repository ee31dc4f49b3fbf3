/* Every read and write of the SSL directory goes through here. */
#ifndef CAROTATE_SSLDIR_H
#define CAROTATE_SSLDIR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "carotate.pb-c.h"

struct config;

#define SSLDIR_STAGING     "new"
#define SSLDIR_RENEWING    "renew" /* renew's set, complete, until its swap moves it live */
#define SSLDIR_BUNDLE      "ca-bundle.pem"
#define SSLDIR_CANARY_CERT "canary.crt"
#define SSLDIR_CANARY_KEY  "canary.key"
#define SSLDIR_SETINFO                                                                             \
	".carotate-set" /* hidden: a manual copy of a backup with a glob leaves it out */
#define SSLDIR_MAX_CERT_FILE (1024 * 1024) /* bytes; a PEM chain is far smaller */

#define SSLDIR_SET_FILES    4 /* CA, certificate, key (required), set info (optional) */
#define SSLDIR_SET_REQUIRED 7 /* mask of the three required files */

/* What is on disk for one set (active or staged). */
struct ssldir_set {
	uint8_t *ca;
	size_t ca_len;
	uint8_t *cert;
	size_t cert_len;
	int ca_errno; /* 0 read, ENOENT missing, else why it could not be read */
	int cert_errno;
	int key_errno;   /* 0 when the key file exists as a regular file */
	char origin[16]; /* "generated", "custom" or "" */
	int64_t created; /* when it was staged, 0 when unknown */
};

/* A set to stage, as PEM text. */
struct ssldir_files {
	const char *ca, *cert, *key;
	size_t ca_len, cert_len, key_len;
	const char *origin;
	time_t created;
};

/* Opens the SSL directory (or "new" inside it when staged is set); -1 with errno. */
int ssldir_open(const struct config *, int staged);
/* Reads ca and cert, probes key, relative to dirfd; never follows symlinks. */
void ssldir_read_set(const struct config *, int dirfd, struct ssldir_set *);
void ssldir_set_clear(struct ssldir_set *);
/* 1 when a set has at least its CA or server certificate on disk. */
int ssldir_set_present(const struct ssldir_set *);
/* The file names of a set, in the order of SSLDIR_SET_FILES: ssl_ca, ssl_cert, ssl_key, info. */
void ssldir_set_names(const struct config *, const char *names[SSLDIR_SET_FILES]);
/* The index of name among names, -1 when it is none of them. */
int ssldir_set_index(const char *const names[SSLDIR_SET_FILES], const char *name);
/*
 * Which of the set's files are in dirfd (bit i: names[i]), each a regular file
 * with one link; a symlink, a hard-linked file or anything else refuses, err
 * naming ssl_dir/where<name> (where: "" or "dir/"). 0, or -1 with err.
 */
int ssldir_set_mask(
    const struct config *, int dirfd, const char *where, int *mask, char *err, size_t errlen);
/* The rotation phase as the directory shows it; -1 with errno when it cannot be read. */
int ssldir_phase(const struct config *, Carotate__V1__Phase *);
/* The CA certificate file of the active (or staged) set; -1 with errno. */
int ssldir_read_ca(const struct config *, int staged, uint8_t **data, size_t *len);

/*
 * Writes a complete set into a temporary directory, fsyncs it, and renames it
 * to new/: after a crash there is either no staged set or a whole one.
 */
int ssldir_stage(const struct config *, const struct ssldir_files *, char *err, size_t errlen);
/*
 * ssldir_stage, replacing a staged set there is (ssldir_stage refuses one): the new
 * set is written whole, then exchanged with new/ in one rename, so that after a
 * crash new/ holds the old set or the new one, whole; the old one is removed. 0, or
 * -1 with err (new/ as it was).
 */
int ssldir_stage_replace(
    const struct config *, const struct ssldir_files *, char *err, size_t errlen);
/*
 * renew: writes the renewed set (the active CA, the new leaf and key) as
 * SSLDIR_RENEWING, whole or not at all (written in a temporary directory,
 * fsynced, renamed); a leftover of a renew cut short is replaced. The phase
 * does not change: only new/ is a staged set. 0, or -1 with err.
 */
int ssldir_renewal(const struct config *, const struct ssldir_files *, char *err, size_t errlen);
/*
 * Publishes the trust bundle and the canary certificate and key (the staged
 * set's when there is one, else the active set's). Files already current are
 * left alone. Returns 1 when something changed, 0 when not, -1 on error.
 */
int ssldir_publish(
    const struct config *, const char *bundle_pem, size_t bundle_len, char *err, size_t errlen);
/* 1 when ca-bundle.pem holds exactly bundle_pem. */
int ssldir_published(const struct config *, const char *bundle_pem, size_t bundle_len);
/*
 * carotated --init: makes canary.crt/canary.key exist before the first start
 * (what start-up would publish, else the placeholder PEM pair given); a
 * complete pair is kept. 1 when written, 0 when nothing was needed, -1 with err.
 */
int ssldir_init_canary(const struct config *, const char *placeholder_cert,
    const char *placeholder_key, char *err, size_t errlen);
#define SSLDIR_SIG_ENTRY 7
#define SSLDIR_SIG_FILES 6
#define SSLDIR_SIG_LEN   ((SSLDIR_SIG_FILES + 4) * SSLDIR_SIG_ENTRY)
/*
 * The identity of every file a status reply is built from (inode, size,
 * modification and change times): equal signatures mean unchanged files.
 */
void ssldir_signature(const struct config *, int64_t sig[SSLDIR_SIG_LEN]);
/* Removes what a crash may have left: half-built staging directories, temporary files. */
void ssldir_recover(const struct config *);

#endif
