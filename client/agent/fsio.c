/* Whole-file reads and atomic replacement: the only writer of the agent's files. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "io.h"
#include "xmalloc.h"

/* rename is durable only once the directory holding the name is on disk. */
int
fsio_sync_dir(const char *path, char *err, size_t errlen)
{
	char *copy = xstrdup(path);
	int fd, rc = -1;

	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	if (rc == -1)
		snprintf(err, errlen, "%s: cannot fsync its directory: %s", path, strerror(errno));
	return rc;
}

int
fsio_stage(const char *path, const void *buf, size_t len, unsigned mode, char **tmpp, char *err,
    size_t errlen)
{
	const char *step = "create";
	char *tmp;
	int fd, saved;

	xasprintf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	(void)unlink(tmp); /* a leftover of a killed run with our pid */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)(mode & 0600));
	if (fd == -1)
		goto fail;
	step = "write";
	if (fchmod(fd, (mode_t)mode) == -1 || io_write_all(fd, buf, len) == -1)
		goto fail_fd;
	step = "fsync";
	if (fsync(fd) == -1)
		goto fail_fd;
	step = "close";
	if (close(fd) == -1) {
		fd = -1;
		goto fail_fd;
	}
	*tmpp = tmp;
	return 0;
fail_fd:
	saved = errno;
	if (fd != -1)
		close(fd);
	(void)unlink(tmp);
	errno = saved;
fail:
	snprintf(err, errlen, "%s: cannot %s: %s", path, step, strerror(errno));
	free(tmp);
	*tmpp = NULL;
	return -1;
}

void
fsio_discard(char *tmp)
{
	if (tmp == NULL)
		return;
	(void)unlink(tmp);
	free(tmp);
}

/*
 * The file at path gets the second name <path>.prev: a link under a temporary name, then a
 * rename over the old .prev, so that a failure leaves the old .prev, and path never goes
 * missing. No file at path: nothing to keep.
 */
int
fsio_keep_prev(const char *path, char *err, size_t errlen)
{
	char *prev, *tmp;
	int rc = 0;

	xasprintf(&prev, "%s.prev", path);
	xasprintf(&tmp, "%s.prev.tmp.%ld", path, (long)getpid());
	(void)unlink(tmp);
	if (link(path, tmp) == -1) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: cannot keep the previous file: %s", path,
			    strerror(errno));
			rc = -1;
		}
	} else if (rename(tmp, prev) == -1) {
		snprintf(
		    err, errlen, "%s: cannot keep the previous file: %s", path, strerror(errno));
		(void)unlink(tmp);
		rc = -1;
	}
	free(tmp);
	free(prev);
	return rc;
}

int
fsio_commit(const char *tmp, const char *path, char *err, size_t errlen)
{
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: cannot rename: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
fsio_write_atomic(
    const char *path, const void *buf, size_t len, unsigned mode, char *err, size_t errlen)
{
	char *tmp;

	if (fsio_stage(path, buf, len, mode, &tmp, err, errlen) == -1)
		return -1;
	if (fsio_commit(tmp, path, err, errlen) == -1) {
		fsio_discard(tmp);
		return -1;
	}
	free(tmp);
	return fsio_sync_dir(path, err, errlen);
}

int
fsio_read(const char *path, size_t max, char **bufp, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
		saved = errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		errno = EINVAL;
		return -1;
	}
	buf = xmalloc(max + 2);
	while ((n = read(fd, buf + len, max + 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			saved = errno;
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			goto fail;
		}
		len += (size_t)n;
		if (len > max) {
			saved = EFBIG;
			snprintf(err, errlen, "%s: larger than %zu bytes", path, max);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	close(fd);
	free(buf);
	errno = saved;
	return -1;
}
