/*
 * File mechanics shared by the owners of the SSL and state directories. A
 * reader never sees a half-written file: new content goes to a temporary
 * name, is fsynced, renamed over the old name, and the rename made durable by
 * fsyncing the directory.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "fsx.h"
#include "io.h"
#include "xmalloc.h"

int
fsx_open_dir(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int
fsx_read(int dirfd, const char *name, size_t cap, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0, want;
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
	/* Ask for one byte past the size seen, to notice a file that grew. */
	want = (size_t)st.st_size + 1;
	buf = xmalloc(want + 1);
	while (got < want) {
		n = read(fd, buf + got, want - got);
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

int
fsx_create(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	int fd, saved;

	/* The mode is right from creation: a key is never readable by others, not even briefly. */
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd == -1)
		return -1;
	if (fchmod(fd, mode) == -1 || io_write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* The name fsx_replace writes NAME under first: 0, or -1 (ENAMETOOLONG). */
static int
fsx_tmp_name(char *tmp, size_t len, const char *name)
{
	if ((size_t)snprintf(tmp, len, ".%s.tmp", name) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
fsx_replace(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	char tmp[300];
	int saved;

	if (fsx_tmp_name(tmp, sizeof(tmp), name) == -1)
		return -1;
	/* A temporary file left by a crash is ours to remove. */
	if (unlinkat(dirfd, tmp, 0) == -1 && errno != ENOENT)
		return -1;
	if (fsx_create(dirfd, tmp, data, len, mode) == -1)
		return -1;
	fault_point("replace-before-rename");
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		saved = errno;
		unlinkat(dirfd, tmp, 0);
		errno = saved;
		return -1;
	}
	return fsx_fsync_dir(dirfd);
}

int
fsx_remove(int dirfd, const char *name)
{
	char tmp[300];

	if (fsx_tmp_name(tmp, sizeof(tmp), name) == -1)
		return -1;
	if ((unlinkat(dirfd, name, 0) == -1 && errno != ENOENT) ||
	    (unlinkat(dirfd, tmp, 0) == -1 && errno != ENOENT))
		return -1;
	return fsx_fsync_dir(dirfd);
}

int
fsx_same(int dirfd, const char *name, const void *data, size_t len)
{
	uint8_t *cur;
	size_t curlen;
	int same;

	if (fsx_read(dirfd, name, len, &cur, &curlen) == -1)
		return 0;
	same = curlen == len && memcmp(cur, data, len) == 0;
	free(cur);
	return same;
}

int
fsx_fsync_dir(int dirfd)
{
	return fsync(dirfd);
}

int
fsx_remove_dir(int dirfd, const char *name)
{
	struct dirent *de;
	DIR *dir;
	int fd, r = 0, saved;

	if ((fd = fsx_open_dir(dirfd, name)) == -1)
		return -1;
	if ((dir = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	while (r == 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = unlinkat(fd, de->d_name, 0);
	}
	saved = errno;
	closedir(dir);
	if (r == -1) {
		errno = saved;
		return -1;
	}
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}
