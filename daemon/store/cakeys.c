/* The generated CAs' private keys in the state directory (cakeys.h). */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cakeys.h"
#include "config.h"
#include "digest.h"
#include "fsx.h"
#include "log.h"
#include "pki.h"
#include "xmalloc.h"

#define CAKEYS_MAX_KEY (64 * 1024) /* bytes: an RSA-4096 key in PEM is about 3.3 KiB */

static int cakeys_find(const struct config *, const char *, uint8_t **, size_t *, char *, size_t);

/*
 * Keeps the private key of a generated CA in the state directory, never in the
 * SSL one, durably (the file and both directories fsynced) or not at all.
 */
int
cakeys_save(const struct config *conf, const uint8_t *ca, size_t ca_len, const uint8_t *key,
    size_t key_len, char name[CAKEYS_NAME_MAX], char *err, size_t errlen)
{
	char sha[PKI_SHA256_HEX], why[128];
	int sfd, kfd, r;

	if (pki_pem_sha256(ca, ca_len, sha, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "generated CA: %s", why);
		return -1;
	}
	snprintf(name, CAKEYS_NAME_MAX, "%s.key", sha);
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    ((kfd = fsx_open_dir(sfd, CAKEYS_DIR)) == -1 &&
	        (errno != ENOENT || mkdirat(sfd, CAKEYS_DIR, 0700) == -1 ||
	            (kfd = fsx_open_dir(sfd, CAKEYS_DIR)) == -1))) {
		snprintf(err, errlen, "cannot open %s/%s: %s", conf->state_dir, CAKEYS_DIR,
		    strerror(errno));
		if (sfd != -1)
			close(sfd);
		return -1;
	}
	r = fsx_create(kfd, name, key, key_len, 0600);
	if (r == -1)
		snprintf(err, errlen, "cannot store the CA key in %s/%s: %s", conf->state_dir,
		    CAKEYS_DIR, strerror(errno));
	else if (fsx_fsync_dir(kfd) == -1 || fsx_fsync_dir(sfd) == -1) {
		/* A key that may vanish at the next power cut must not sign a staged set. */
		snprintf(err, errlen, "cannot store the CA key in %s/%s: fsync: %s",
		    conf->state_dir, CAKEYS_DIR, strerror(errno));
		unlinkat(kfd, name, 0);
		r = -1;
	}
	close(kfd);
	close(sfd);
	return r;
}

/*
 * The staging failed or its set was discarded: the CA key stored for it
 * belongs to no set. A custom set never had one (ENOENT is quiet).
 */
void
cakeys_drop(const struct config *conf, const char *name)
{
	int sfd, kfd = -1;

	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (kfd = fsx_open_dir(sfd, CAKEYS_DIR)) == -1 || unlinkat(kfd, name, 0) == -1 ||
	    fsx_fsync_dir(kfd) == -1) {
		if (errno != ENOENT)
			log_warn("cannot remove the unused CA key %s/%s/%s", conf->state_dir,
			    CAKEYS_DIR, name);
	} else
		log_info("removed the CA key %s/%s/%s: its set is gone", conf->state_dir,
		    CAKEYS_DIR, name);
	if (kfd != -1)
		close(kfd);
	if (sfd != -1)
		close(sfd);
}

/*
 * The key file of CA sha: read into *key when key is not NULL, else only
 * looked for. 1 found, 0 none (a custom CA), -1 with err.
 */
static int
cakeys_find(const struct config *conf, const char *sha, uint8_t **key, size_t *key_len, char *err,
    size_t errlen)
{
	char name[CAKEYS_NAME_MAX];
	struct stat st;
	int sfd, kfd = -1, r = 1;

	if (key != NULL) {
		*key = NULL;
		*key_len = 0;
	}
	if (!digest_sha256_hex_ok(sha)) {
		snprintf(err, errlen, "not a CA fingerprint");
		return -1;
	}
	snprintf(name, sizeof(name), "%s.key", sha);
	if ((sfd = open(conf->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (kfd = fsx_open_dir(sfd, CAKEYS_DIR)) == -1 ||
	    (key != NULL ? fsx_read(kfd, name, CAKEYS_MAX_KEY, key, key_len)
	                 : fstatat(kfd, name, &st, AT_SYMLINK_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			r = 0;
		else {
			snprintf(err, errlen, "cannot read the CA key %s/%s/%s: %s",
			    conf->state_dir, CAKEYS_DIR, name, strerror(errno));
			r = -1;
		}
	} else if (key == NULL && !S_ISREG(st.st_mode))
		r = 0;
	if (kfd != -1)
		close(kfd);
	if (sfd != -1)
		close(sfd);
	return r;
}

/* The key of a CA carotated generated; a custom CA has none (0). */
int
cakeys_load(const struct config *conf, const char *sha, uint8_t **key, size_t *key_len, char *err,
    size_t errlen)
{
	return cakeys_find(conf, sha, key, key_len, err, errlen);
}

int
cakeys_held(const struct config *conf, const char *sha, char *err, size_t errlen)
{
	return cakeys_find(conf, sha, NULL, NULL, err, errlen);
}
