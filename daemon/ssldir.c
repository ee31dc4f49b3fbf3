/*
 * The SSL directory: the active set in its top level, the staged set in new/.
 * Files are opened relative to a directory handle and never through a
 * symlink, so nothing planted in the directory can redirect a read.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ssldir.h"
#include "xmalloc.h"

static int ssldir_probe(int, const char *);

int
ssldir_open(const struct config *conf, int staged)
{
	int dfd, fd;

	if ((dfd = open(conf->ssl_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 || !staged)
		return dfd;
	fd = openat(dfd, SSLDIR_STAGING, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	return fd;
}

int
ssldir_read_file(int dirfd, const char *name, size_t cap, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	ssize_t n = 0;
	int fd, saved;

	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((size_t)st.st_size > cap) {
		errno = EFBIG;
		goto fail;
	}
	/* Read one byte past the size seen, in case the file grew under us. */
	buf = xmalloc((size_t)st.st_size + 2);
	while (got < (size_t)st.st_size + 1) {
		n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (n == -1 || got > (size_t)st.st_size) {
		saved = n == -1 ? errno : EAGAIN;
		free(buf);
		errno = saved;
		goto fail;
	}
	buf[got] = '\0';
	close(fd);
	*data = buf;
	*len = got;
	return 0;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* 0 when name is a regular file (not a symlink) in dirfd, else the errno why not. */
static int
ssldir_probe(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno;
	return S_ISREG(st.st_mode) ? 0 : EINVAL;
}

void
ssldir_read_set(const struct config *conf, int dirfd, struct ssldir_set *set)
{
	memset(set, 0, sizeof(*set));
	if (ssldir_read_file(dirfd, conf->ssl_ca, SSLDIR_MAX_CERT_FILE, &set->ca, &set->ca_len) ==
	    -1)
		set->ca_errno = errno;
	if (ssldir_read_file(
	        dirfd, conf->ssl_cert, SSLDIR_MAX_CERT_FILE, &set->cert, &set->cert_len) == -1)
		set->cert_errno = errno;
	set->key_errno = ssldir_probe(dirfd, conf->ssl_key);
}

void
ssldir_set_clear(struct ssldir_set *set)
{
	free(set->ca);
	free(set->cert);
	memset(set, 0, sizeof(*set));
}

int
ssldir_set_present(const struct ssldir_set *set)
{
	return set->ca_errno != ENOENT || set->cert_errno != ENOENT;
}

int
ssldir_phase(const struct config *conf, Carotate__V1__Phase *phase)
{
	struct stat st;
	int dfd, r;

	if ((dfd = ssldir_open(conf, 0)) == -1)
		return -1;
	r = fstatat(dfd, SSLDIR_STAGING, &st, AT_SYMLINK_NOFOLLOW);
	close(dfd);
	if (r == -1 && errno != ENOENT)
		return -1;
	*phase = r == 0 && S_ISDIR(st.st_mode) ? CAROTATE__V1__PHASE__PHASE_STAGED
	                                       : CAROTATE__V1__PHASE__PHASE_STEADY;
	return 0;
}
